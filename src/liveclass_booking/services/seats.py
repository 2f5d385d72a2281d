"""Seat accounting of group sessions, shared by bookings and the waitlist.

``seats_taken`` counts the seats of pending and confirmed bookings plus one seat per open
waitlist offer. Every change to it, and every change to a session's waitlist, happens while
the session row is locked (``select_for_update``, or the conditional UPDATE of
:func:`take_seats`), so offers are made one session at a time and in queue order.

Whenever seats come free — a booking stops holding them, the capacity grows, an offer
expires or is left — :func:`offer_free_seats` offers them at once to the students waiting
longest, one seat each.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .. import signals
from ..choices import OPEN_WAITLIST_STATUSES, NotificationKind, SessionStatus, WaitlistStatus
from ..conf import booking_settings
from ..models import BookingSeriesItem, SessionWaitlist, get_session_model
from .common import send_after_commit
from .outbox import outbox_event, write

W = WaitlistStatus
K = NotificationKind
logger = logging.getLogger("liveclass_booking")


def lock_sessions(*pks: Any) -> None:
    """Row-lock the given sessions in primary-key order (the lock order used everywhere:
    sessions first, then bookings and waitlist entries), so that two transactions never wait
    on each other."""
    wanted = sorted({pk for pk in pks if pk is not None}, key=str)
    if wanted:
        list(
            get_session_model()
            .objects.select_for_update()
            .filter(pk__in=wanted)
            .order_by("pk")
            .values_list("pk")
        )


def lock_session(session_pk: Any) -> Any:
    """Lock one session row and return it as it is now."""
    return get_session_model().objects.select_for_update().get(pk=session_pk)


def take_seats(session_pk: Any, seats: int, now: datetime) -> bool:
    """Take ``seats`` of a scheduled future session in one conditional UPDATE.

    Returns False, changing nothing, when the session is not bookable or lacks the seats: the
    condition and the increment are one statement, so concurrent callers can never take more
    than the capacity.
    """
    return bool(
        get_session_model()
        .objects.filter(
            pk=session_pk,
            status=SessionStatus.SCHEDULED,
            start_at_utc__gt=now,
            # Not seats_taken <= capacity - seats: on MySQL/MariaDB the columns are unsigned
            # and the subtraction fails when the capacity is below the seats asked for.
            capacity__gte=F("seats_taken") + seats,
        )
        .update(seats_taken=F("seats_taken") + seats)
    )


def release_seats(session_pk: Any, seats: int, now: datetime | None = None) -> None:
    """Give back ``seats`` of a session and offer them to its waitlist."""
    get_session_model().objects.filter(pk=session_pk).update(seats_taken=F("seats_taken") - seats)
    offer_free_seats(lock_session(session_pk), now)


def offer_expiry(session: Any, now: datetime) -> datetime:
    """When an offer made ``now`` ends: after ``LIVECLASS_BOOKING_WAITLIST_OFFER_TTL``, but
    never after the session starts."""
    return min(now + booking_settings.WAITLIST_OFFER_TTL, session.start_at_utc)


def offer_free_seats(session: Any, now: datetime | None = None) -> list[Any]:
    """Offer each free seat of ``session`` (locked, with its current ``seats_taken``) to the
    next waiting student in join order. An offer holds its seat. Returns the new offers."""
    now = now or timezone.now()
    free = session.capacity - session.seats_taken
    if free <= 0 or session.status != SessionStatus.SCHEDULED or session.start_at_utc <= now:
        return []
    entries = list(
        SessionWaitlist.objects.filter(session_id=session.pk, status=W.WAITING).order_by(
            "created_at", "pk"
        )[:free]
    )
    if not entries:
        return []
    if not take_seats(session.pk, len(entries), now):  # cannot fail while the row is locked
        return []
    session.seats_taken += len(entries)
    expires = offer_expiry(session, now)
    SessionWaitlist.objects.filter(pk__in=[entry.pk for entry in entries]).update(
        status=W.OFFERED, offered_at=now, offer_expires_at=expires
    )
    for entry in entries:
        entry.status, entry.offered_at, entry.offer_expires_at = W.OFFERED, now, expires
        entry.session = session
        send_after_commit(signals.waitlist_offered, SessionWaitlist, entry=entry)
        transaction.on_commit(partial(schedule_offer_expiry, entry.pk, expires))
    tell_students(K.WAITLIST_OFFERED, session, entries, now, offer_expires_at=expires)
    return entries


def tell_students(
    kind: str, session: Any, entries: list[Any], now: datetime, actor: Any = None, **data: Any
) -> None:
    """One outbox event per waitlist entry, to its student, in one statement."""
    write(
        [
            outbox_event(
                kind,
                recipients=[entry.student_user_id],
                session=session,
                waitlist_entry=entry,
                actor=actor,
                at=now,
                start=session.start_at_utc,
                end=session.end_at_utc,
                **data,
            )
            for entry in entries
        ]
    )


def close_offers(session: Any, entries: list[Any], now: datetime, *, actor: Any = None) -> None:
    """Expire the open offers ``entries`` of the locked ``session`` and free their seats
    (without offering them yet: the caller does, once all its changes are made)."""
    if not entries:
        return
    SessionWaitlist.objects.filter(pk__in=[entry.pk for entry in entries]).update(
        status=W.EXPIRED, expired_at=now
    )
    drop_held_seats(session, len(entries))
    for entry in entries:
        entry.status, entry.expired_at = W.EXPIRED, now
        send_after_commit(signals.waitlist_offer_expired, SessionWaitlist, entry=entry, actor=actor)
    tell_students(K.WAITLIST_OFFER_EXPIRED, session, entries, now, actor=actor)


def drop_held_seats(session: Any, seats: int) -> None:
    """Give back seats that offers held, on the locked ``session`` and its row (not offered
    on yet: the caller settles once all its changes are made)."""
    get_session_model().objects.filter(pk=session.pk).update(seats_taken=F("seats_taken") - seats)
    session.seats_taken -= seats


def due_offers(session_pk: Any, now: datetime) -> list[Any]:
    """The offers of a session whose time is up (the session must be locked)."""
    return list(
        SessionWaitlist.objects.filter(
            session_id=session_pk, status=W.OFFERED, offer_expires_at__lte=now
        )
    )


def settle(session: Any, now: datetime) -> list[Any]:
    """Bring the locked ``session``'s waitlist up to date: expire the offers whose time is up,
    pass their seats on, and offer any free seat to the students waiting. Returns the new
    offers."""
    close_offers(session, due_offers(session.pk, now), now)
    return offer_free_seats(session, now)


def owed_a_seat(now: datetime) -> Q:
    """Waitlist entries owed a seat before anybody books: a student waiting, or an offer past
    its time whose seat passes on (as a filter)."""
    return Q(status=W.WAITING) | Q(status=W.OFFERED, offer_expires_at__lte=now)


def close_own_entry(session_pk: Any, student: Any, booking: Any, now: datetime) -> None:
    """A student who books a session directly leaves its waitlist: an open entry becomes
    ``accepted`` and links to ``booking``; the seat an open offer held goes to the next in
    line. (The session is locked: the booking has just taken its seats.)"""
    entry = (
        SessionWaitlist.objects.select_for_update()
        .filter(session_id=session_pk, student_user=student, status__in=OPEN_WAITLIST_STATUSES)
        .first()
    )
    if entry is None:
        return
    held = entry.status == W.OFFERED
    entry.status, entry.accepted_at, entry.booking = W.ACCEPTED, now, booking
    entry.save(update_fields=["status", "accepted_at", "booking"])
    link_series_items(entry, booking)
    if held:
        release_seats(session_pk, 1, now)


def link_series_items(entry: Any, booking: Any) -> None:
    """A series occurrence waiting on ``entry`` is booked now that the entry became
    ``booking``: the occurrence keeps its series link."""
    BookingSeriesItem.objects.filter(
        waitlist_entry_id=entry.pk, status=BookingSeriesItem.Status.WAITLISTED
    ).update(status=BookingSeriesItem.Status.BOOKED, booking=booking, updated_at=timezone.now())


def schedule_offer_expiry(entry_pk: Any, at: datetime) -> None:
    """Ask the tasks backend ``LIVECLASS_BOOKING_TASK_BACKEND`` to expire an offer at ``at``,
    when it supports deferred tasks. Best effort: an offer past its time is treated as expired
    whenever it is read or claimed, and the ``liveclass_booking_expire_offers`` command catches
    anything a worker missed."""
    from ..tasks import defer_offer_expiry

    try:
        defer_offer_expiry(entry_pk, at)
    except Exception:  # the booking has committed; a broken queue must not fail the request
        logger.exception("Could not schedule the expiry of waitlist offer %s", entry_pk)


def close_waiting(session: Any, now: datetime, *, reason: str, actor: Any = None) -> int:
    """Close every waiting entry and open offer of the locked ``session`` (it was cancelled
    or has started) and tell each student through ``waitlist_closed`` (the signal; the outbox
    event only when the session started: a cancelled session's one event tells everybody).
    Returns how many.

    Seats held by open offers are not given back: a cancelled session drops all its seats,
    and a started one has no open offers (they end at the start at the latest)."""
    entries = list(
        SessionWaitlist.objects.filter(session_id=session.pk, status__in=OPEN_WAITLIST_STATUSES)
    )
    if not entries:
        return 0
    SessionWaitlist.objects.filter(pk__in=[e.pk for e in entries]).update(
        status=W.EXPIRED, expired_at=now
    )
    for entry in entries:
        previous = entry.status
        entry.status, entry.expired_at = W.EXPIRED, now
        send_after_commit(
            signals.waitlist_closed,
            SessionWaitlist,
            entry=entry,
            actor=actor,
            reason=reason,
            previous_status=previous,
        )
    if reason != "session_cancelled":
        tell_students(K.WAITLIST_CLOSED, session, entries, now, actor=actor, reason=reason)
    return len(entries)
