"""The dispatcher: turns outbox events into deliveries and hands each to the notifier.

One pass (:func:`dispatch`):

1. writes the reminders now due (:mod:`.reminders`);
2. *expands* new events: asks the resolver who hears each (``notification_recipients``,
   ``wants_notification``) and creates one delivery per (event, recipient, channel) — unique,
   so expanding twice changes nothing;
3. *claims* due deliveries in batches: a conditional UPDATE sets a claim token and a lease
   (``claimed_until``) on rows nobody holds (on PostgreSQL and MariaDB the candidates are
   picked with ``FOR UPDATE SKIP LOCKED``, so dispatchers do not wait on each other), commits,
   then sends them one by one, recording each result at once.

Two dispatchers never hold the same delivery: the claim is one statement whose condition is
re-checked by the database. A dispatcher that dies after sending and before recording leaves
that one delivery claimed; when the lease ends another dispatcher sends it again — the only
repeat there can be. Nothing is lost: an unsent delivery stays pending until it is sent, or
its attempts are used up (``failed``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..choices import DeliveryStatus, NotificationKind
from ..conf import booking_settings
from ..models import NotificationDelivery, NotificationEvent
from ..policies import get_policy_resolver
from .content import build_message
from .notifier import BaseNotifier, SkipDelivery, get_notifier, message_id
from .reminders import queue_due_reminders, reminder_still_due

D = DeliveryStatus
logger = logging.getLogger("liveclass_booking.notifications")

#: The longest wait between two attempts of one delivery.
MAX_RETRY_DELAY = timedelta(hours=6)


@dataclass
class DispatchReport:
    """What one pass did."""

    reminders: int = 0
    expanded: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0

    def __str__(self) -> str:
        return (
            f"{self.sent} sent, {self.retried} to retry, {self.failed} failed, "
            f"{self.skipped} skipped ({self.expanded} events expanded, "
            f"{self.reminders} reminders queued)"
        )


def _skip_locked(queryset: Any) -> Any:
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def expand_events(notifier: BaseNotifier, now: datetime, batch: int = 200) -> int:
    """Create the deliveries of up to ``batch`` events not expanded yet; return how many
    events were expanded."""
    resolver = get_policy_resolver()
    with transaction.atomic():
        events = list(
            _skip_locked(
                NotificationEvent.objects.filter(expanded_at__isnull=True).order_by(
                    "created_at", "pk"
                )
            )[:batch]
        )
        if not events:
            return 0
        wanted = {pk for event in events for pk in event.recipients}
        users = {str(u.pk): u for u in get_user_model().objects.filter(pk__in=list(wanted))}
        deliveries = []
        for event in events:
            try:
                deliveries.extend(_deliveries_of(event, users, resolver, notifier, now))
            except Exception:
                # A host hook that fails on one event must not stop every later one: the
                # event is marked expanded without deliveries, and the error is logged.
                logger.exception("Could not find the recipients of notification event %s", event.pk)
        NotificationDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        NotificationEvent.objects.filter(pk__in=[event.pk for event in events]).update(
            expanded_at=now
        )
    return len(events)


def _deliveries_of(
    event: Any, users: dict[str, Any], resolver: Any, notifier: BaseNotifier, now: datetime
) -> list[Any]:
    """One delivery per (recipient the resolver keeps, channel); opted out: ``skipped``."""
    people = [users[pk] for pk in event.recipients if pk in users]
    found = []
    for person in resolver.notification_recipients(event, people):
        for channel in notifier.channels:
            opted_in = resolver.wants_notification(person, event.kind, channel)
            found.append(
                NotificationDelivery(
                    event=event,
                    recipient=person,
                    channel=channel,
                    status=D.PENDING if opted_in else D.SKIPPED,
                    last_error="" if opted_in else "The recipient opted out.",
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    return found


def _claimable(now: datetime) -> Any:
    return NotificationDelivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now),
        status=D.PENDING,
        next_attempt_at__lte=now,
    )


def claim(now: datetime, *, batch: int, lease: timedelta) -> tuple[str, list[Any]]:
    """Claim up to ``batch`` due deliveries for ``lease``; return the claim token and them."""
    token = uuid.uuid4().hex
    with transaction.atomic():
        pks = list(
            _skip_locked(_claimable(now).order_by("next_attempt_at", "pk")).values_list(
                "pk", flat=True
            )[:batch]
        )
        if not pks:
            return token, []
        # The condition is evaluated again by the UPDATE: a row claimed meanwhile by another
        # dispatcher is not taken.
        _claimable(now).filter(pk__in=pks).update(claim_token=token, claimed_until=now + lease)
    claimed = list(
        NotificationDelivery.objects.filter(pk__in=pks, claim_token=token)
        .select_related(
            "recipient",
            "event__actor",
            "event__booking__teacher",
            "event__booking__student_user",
            "event__booking__course",
            "event__session__teacher",
            "event__waitlist_entry",
            "event__series__teacher",
            "event__series__course",
        )
        .order_by("next_attempt_at", "pk")
    )
    return token, claimed


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: the configured delay, doubled each
    time, at most six hours."""
    base = booking_settings.NOTIFICATION_RETRY_DELAY.total_seconds()
    doubled = base * 2 ** min(max(0, attempts - 1), 32)
    # Capped in seconds first: a timedelta of the doubled delay could overflow.
    return timedelta(seconds=min(doubled, MAX_RETRY_DELAY.total_seconds()))


def _record(delivery: Any, token: str, **fields: Any) -> bool:
    """Record the outcome of a claimed delivery, if the claim is still ours."""
    return bool(
        NotificationDelivery.objects.filter(pk=delivery.pk, claim_token=token).update(
            claim_token="", claimed_until=None, **fields
        )
    )


def _renew(delivery: Any, token: str, lease: timedelta) -> bool:
    """Make sure the claim is still ours and still pending, and extend it for one send: one
    conditional UPDATE, so a delivery whose lease ran out (and that someone else may have
    claimed) or that the admin made due again is never sent by this dispatcher."""
    return bool(
        NotificationDelivery.objects.filter(
            pk=delivery.pk, claim_token=token, status=D.PENDING
        ).update(claimed_until=timezone.now() + lease)
    )


def still_relevant(event: Any, now: datetime) -> bool:
    """Messages that would be wrong once things moved on: a reminder of what no longer stands
    at that time, a seat offer that is no longer open."""
    if event.kind == NotificationKind.REMINDER:
        return reminder_still_due(event, now)
    if event.kind == NotificationKind.WAITLIST_OFFERED:
        entry = event.waitlist_entry
        return entry is not None and entry.offer_is_open
    return True


def deliver(
    delivery: Any,
    token: str,
    notifier: BaseNotifier,
    report: DispatchReport,
    lease: timedelta | None = None,
) -> None:
    """Send one claimed delivery and record the result."""
    now = timezone.now()
    if not _renew(delivery, token, lease or booking_settings.NOTIFICATION_LEASE):
        return  # the lease ran out and another dispatcher may hold it, or it was reset
    event = delivery.event
    if not still_relevant(event, now):
        _record(delivery, token, status=D.SKIPPED, last_error="No longer due.")
        report.skipped += 1
        return
    try:
        message = build_message(
            event, delivery.recipient, delivery.channel, message_id(delivery.pk, event.pk)
        )
        notifier.send(message)
    except SkipDelivery as exc:
        _record(delivery, token, status=D.SKIPPED, last_error=str(exc)[:2000])
        report.skipped += 1
    except Exception as exc:
        attempts = delivery.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if attempts >= booking_settings.NOTIFICATION_MAX_ATTEMPTS:
            logger.error("Giving up on notification delivery %s: %s", delivery.pk, error)
            _record(delivery, token, status=D.FAILED, attempts=attempts, last_error=error)
            report.failed += 1
        else:
            logger.warning("Notification delivery %s failed, will retry: %s", delivery.pk, error)
            _record(
                delivery,
                token,
                attempts=attempts,
                last_error=error,
                next_attempt_at=timezone.now() + retry_delay(attempts),
            )
            report.retried += 1
    else:
        recorded = _record(
            delivery,
            token,
            status=D.SENT,
            sent_at=timezone.now(),
            attempts=F("attempts") + 1,
            last_error="",
        )
        if recorded:
            report.sent += 1
        else:  # the send outlived the lease renewed just before it
            logger.warning("Notification delivery %s was sent after its lease ended", delivery.pk)


def dispatch(
    *,
    now: datetime | None = None,
    batch: int = 100,
    limit: int | None = None,
    lease: timedelta | None = None,
    stop: Callable[[], bool] | None = None,
) -> DispatchReport:
    """One pass: queue due reminders, expand new events, and send every due delivery (at most
    ``limit`` if given), ``batch`` per claim. Safe to run in any number of processes at once.
    Call it outside a transaction (each step commits on its own). ``stop``, asked before each
    delivery: when it returns True the pass ends there, and the deliveries it claimed but did
    not send are released for any dispatcher to take at once."""
    report = DispatchReport()
    notifier = get_notifier()
    if notifier is None:
        return report
    lease = lease or booking_settings.NOTIFICATION_LEASE
    now = now or timezone.now()
    report.reminders = queue_due_reminders(now)
    while expanded := expand_events(notifier, now):
        report.expanded += expanded
    fixed = now
    handled = 0
    while limit is None or handled < limit:
        size = batch if limit is None else min(batch, limit - handled)
        token, claimed = claim(max(fixed, timezone.now()), batch=size, lease=lease)
        if not claimed:
            break
        for index, delivery in enumerate(claimed):
            if stop is not None and stop():
                _release(claimed[index:], token)
                return report
            deliver(delivery, token, notifier, report, lease)
        handled += len(claimed)
    return report


def _release(deliveries: list[Any], token: str) -> None:
    """Give up the claim on ``deliveries`` (not sent): due again at once, for anyone."""
    NotificationDelivery.objects.filter(
        pk__in=[delivery.pk for delivery in deliveries], claim_token=token
    ).update(claim_token="", claimed_until=None)


def retry_deliveries(pks: list[Any]) -> int:
    """Make failed or skipped deliveries pending again, due now (the admin's retry). Sent and
    pending ones (perhaps being sent at this moment) are left alone."""
    return int(
        NotificationDelivery.objects.filter(pk__in=pks, status__in=[D.FAILED, D.SKIPPED]).update(
            status=D.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claim_token="",
            claimed_until=None,
        )
    )
