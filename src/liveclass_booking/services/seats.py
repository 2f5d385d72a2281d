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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import (
    Count,
    DateTimeField,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import signals
from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    OPEN_WAITLIST_STATUSES,
    NotificationKind,
    SessionStatus,
    WaitlistStatus,
)
from ..conf import booking_settings
from ..models import (
    WAITLIST_QUEUE_ORDER,
    BookingSeriesItem,
    SessionWaitlist,
    get_booking_model,
    get_session_model,
)
from ..prepared import Param, Prepared
from .common import send_after_commit
from .outbox import outbox_event, write

logger = logging.getLogger("liveclass_booking")


def held_seats() -> Any:
    """The seats a session's rows hold, as an expression over the session: the seats of its
    pending and confirmed bookings plus one seat per open (``offered``) waitlist offer. This
    is what ``seats_taken`` caches; :func:`seats_held` and :func:`recount_seats` read it."""
    booked = (
        get_booking_model()
        .objects.filter(session=OuterRef("pk"), status__in=ACTIVE_BOOKING_STATUSES)
        .order_by()
        .values("session")
        .annotate(total=Sum("seats_reserved"))
        .values("total")
    )
    offered = (
        SessionWaitlist.objects.filter(session=OuterRef("pk"), status=WaitlistStatus.OFFERED)
        .order_by()
        .values("session")
        .annotate(total=Count("pk"))
        .values("total")
    )
    zero = Value(0, output_field=IntegerField())
    return Coalesce(Subquery(booked, output_field=IntegerField()), zero) + Coalesce(
        Subquery(offered, output_field=IntegerField()), zero
    )


def seats_held(session_pk: Any) -> int:
    """The seats the bookings and open offers of one session hold now (see
    :func:`held_seats`)."""
    return int(
        get_session_model()
        .objects.filter(pk=session_pk)
        .annotate(held=held_seats())
        .values_list("held", flat=True)
        .get()
    )


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
    return bool(_TAKE_SEATS.update(session=session_pk, seats=seats, now=now))


def _bookable_with_seats() -> QuerySet[Any]:
    model = get_session_model()
    return model.objects.filter(
        pk=Param("session", model._meta.pk),
        status=SessionStatus.SCHEDULED,
        start_at_utc__gt=Param("now", DateTimeField()),
        # Not seats_taken <= capacity - seats: on MySQL/MariaDB the columns are unsigned and
        # the subtraction fails when the capacity is below the seats asked for.
        capacity__gte=F("seats_taken") + Param("seats", IntegerField()),
    )


_TAKE_SEATS = Prepared(
    _bookable_with_seats,
    update=lambda: {"seats_taken": F("seats_taken") + Param("seats", IntegerField())},
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
        SessionWaitlist.objects.filter(
            session_id=session.pk, status=WaitlistStatus.WAITING
        ).order_by(*WAITLIST_QUEUE_ORDER)[:free]
    )
    if not entries:
        return []
    if not take_seats(session.pk, len(entries), now):  # cannot fail while the row is locked
        return []
    session.seats_taken += len(entries)
    expires = offer_expiry(session, now)
    SessionWaitlist.objects.filter(pk__in=[entry.pk for entry in entries]).update(
        status=WaitlistStatus.OFFERED, offered_at=now, offer_expires_at=expires
    )
    for entry in entries:
        entry.status, entry.offered_at, entry.offer_expires_at = (
            WaitlistStatus.OFFERED,
            now,
            expires,
        )
        entry.session = session
        send_after_commit(signals.waitlist_offered, SessionWaitlist, entry=entry)
        schedule_offer_expiry(entry.pk, expires)
    tell_students(
        NotificationKind.WAITLIST_OFFERED, session, entries, now, offer_expires_at=expires
    )
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
        status=WaitlistStatus.EXPIRED, expired_at=now
    )
    drop_held_seats(session, len(entries))
    for entry in entries:
        entry.status, entry.expired_at = WaitlistStatus.EXPIRED, now
        send_after_commit(signals.waitlist_offer_expired, SessionWaitlist, entry=entry, actor=actor)
    tell_students(NotificationKind.WAITLIST_OFFER_EXPIRED, session, entries, now, actor=actor)


def drop_held_seats(session: Any, seats: int) -> None:
    """Give back seats that offers held, on the locked ``session`` and its row (not offered
    on yet: the caller settles once all its changes are made)."""
    get_session_model().objects.filter(pk=session.pk).update(seats_taken=F("seats_taken") - seats)
    session.seats_taken -= seats


def due_offers(session_pk: Any, now: datetime) -> list[Any]:
    """The offers of a session whose time is up (the session must be locked)."""
    return list(
        SessionWaitlist.objects.filter(
            session_id=session_pk, status=WaitlistStatus.OFFERED, offer_expires_at__lte=now
        )
    )


def settle(session: Any, now: datetime) -> list[Any]:
    """Bring the locked ``session``'s waitlist up to date: expire the offers whose time is up,
    pass their seats on, and offer any free seat to the students waiting. Returns the new
    offers."""
    close_offers(session, due_offers(session.pk, now), now)
    return offer_free_seats(session, now)


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
    held = entry.status == WaitlistStatus.OFFERED
    entry.status, entry.accepted_at, entry.booking = WaitlistStatus.ACCEPTED, now, booking
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
    """Once the transaction commits, announce that the offer ``entry_pk`` ends at ``at``
    (``offer_deadline_set``): the app schedules its expiry task on a backend that can defer
    (see :mod:`liveclass_booking.tasks`)."""
    send_after_commit(signals.offer_deadline_set, SessionWaitlist, entry_pk=entry_pk, at=at)


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
        status=WaitlistStatus.EXPIRED, expired_at=now
    )
    for entry in entries:
        previous = entry.status
        entry.status, entry.expired_at = WaitlistStatus.EXPIRED, now
        send_after_commit(
            signals.waitlist_closed,
            SessionWaitlist,
            entry=entry,
            actor=actor,
            reason=reason,
            previous_status=previous,
        )
    if reason != "session_cancelled":
        tell_students(
            NotificationKind.WAITLIST_CLOSED, session, entries, now, actor=actor, reason=reason
        )
    return len(entries)


@dataclass
class SeatDrift:
    """One session whose ``seats_taken`` did not match what its rows hold."""

    session_pk: Any
    title: str
    start_at_utc: datetime
    capacity: int
    recorded: int
    held: int
    repaired: bool = False
    offered: int = 0

    @property
    def repairable(self) -> bool:
        """Whether the count fits the capacity (the database refuses more seats than that)."""
        return self.held <= self.capacity


@dataclass
class RecountReport:
    """What :func:`recount_seats` found and did."""

    dry_run: bool
    checked: int = 0
    drifts: list[SeatDrift] = field(default_factory=list)

    @property
    def unrepairable(self) -> list[SeatDrift]:
        return [drift for drift in self.drifts if not drift.repairable]


def recount_seats(*, dry_run: bool = False, now: datetime | None = None) -> RecountReport:
    """Find the sessions whose ``seats_taken`` differs from what their bookings and open
    offers hold (:func:`held_seats`) and, unless ``dry_run``, set it right.

    Each repair happens in its own transaction with the session row locked, as the booking
    path locks it, and counts again under the lock, so a booking made meanwhile is neither
    lost nor counted twice. Seats a repair frees are offered to the session's waitlist at once,
    as anywhere else. A session whose rows hold more seats than its capacity cannot be
    repaired (the database refuses it): it is reported, and left as it is.
    """
    now = now or timezone.now()
    report = RecountReport(dry_run=dry_run)
    sessions = get_session_model().objects.annotate(held=held_seats()).order_by("pk")
    report.checked = sessions.count()
    for row in sessions.exclude(seats_taken=F("held")).values(
        "pk", "title", "start_at_utc", "capacity", "seats_taken", "held"
    ):
        drift = SeatDrift(
            session_pk=row["pk"],
            title=row["title"],
            start_at_utc=row["start_at_utc"],
            capacity=row["capacity"],
            recorded=row["seats_taken"],
            held=row["held"],
        )
        if not dry_run:
            _repair(drift, now)
        if drift.recorded != drift.held:
            report.drifts.append(drift)
    return report


def _repair(drift: SeatDrift, now: datetime) -> None:
    with transaction.atomic():
        session = lock_session(drift.session_pk)
        drift.recorded, drift.capacity = session.seats_taken, session.capacity
        drift.held = seats_held(session.pk)
        if drift.recorded == drift.held or not drift.repairable:
            return
        get_session_model().objects.filter(pk=session.pk).update(seats_taken=drift.held)
        session.seats_taken = drift.held
        drift.repaired = True
        if drift.held < drift.recorded:
            drift.offered = len(offer_free_seats(session, now))
