"""The FIFO waitlist of group sessions: join, timed seat offers, accept, leave, expiry.

A student joins the queue of a full session. When a seat comes free the student waiting
longest is offered it; the offer holds the seat (it counts in ``seats_taken``) until it is
accepted, left or expires after ``LIVECLASS_BOOKING_WAITLIST_OFFER_TTL`` (never after the
session starts). An offer past its time is expired whenever it is claimed, so correctness
never waits for a background job; :func:`expire_due_offers` (the
``liveclass_booking_expire_offers`` command, and a deferred task where the tasks backend
supports it) passes such seats on without anybody having to touch the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from .. import signals
from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    OPEN_WAITLIST_STATUSES,
    NotificationKind,
    SessionStatus,
    WaitlistStatus,
)
from ..exceptions import (
    AlreadyBooked,
    AlreadyWaitlisted,
    BookingError,
    InvalidTransition,
    NotAllowed,
    OfferExpired,
    SeatsAvailable,
    SessionNotBookable,
)
from ..models import BookingSeriesItem, SessionWaitlist, get_booking_model, get_session_model
from ..policies import get_policy_resolver
from .attempts import BookingAttempt, build_booking
from .bookings import group_booking_status, insert_group_booking
from .common import (
    hot_row_last,
    is_staff,
    lock_users,
    require_manager,
    retry_on_deadlock,
    same_user,
    send_after_commit,
)
from .outbox import write
from .rules import check_student_totals, limits_for, require_bounded_text, require_may_book
from .seats import (
    close_offers,
    close_waiting,
    drop_held_seats,
    link_series_items,
    lock_session,
    offer_free_seats,
    settle,
    tell_students,
)
from .transitions import announce, booking_notice, settle_session


def reset_entry(entry: Any, now: datetime) -> None:
    """Put ``entry`` back at the end of its queue as of ``now`` (a join or a rejoin)."""
    entry.status = WaitlistStatus.WAITING
    entry.created_at = now
    entry.offered_at = entry.offer_expires_at = None
    entry.accepted_at = entry.expired_at = entry.left_at = None
    entry.booking = None


def _require_bookable(session: Any, now: datetime) -> None:
    if session.status != SessionStatus.SCHEDULED:
        raise SessionNotBookable(f"This session is {session.status}.")
    if session.start_at_utc <= now:
        raise SessionNotBookable("This session has already started.")


@retry_on_deadlock
def join_waitlist(*, student: Any, session: Any, actor: Any = None) -> Any:
    """Put ``student`` at the back of the waitlist of a full, scheduled, future session.

    Refused with ``already_booked`` when the student holds an active booking there,
    ``already_waitlisted`` when already waiting or holding an offer, and ``seats_available``
    when a seat is free (book it instead). Rejoining after leaving or an expired offer starts
    again at the back of the queue.
    """
    require_may_book(actor, student, session.course, session)
    limits = limits_for(student, session.teacher, session.course)
    now = timezone.now()
    settle_session(session.pk, now)
    with transaction.atomic():
        lock_users(student)  # users before sessions: the lock order everywhere
        locked = lock_session(session.pk)
        # Queue order is the time the lock was granted: a join that waited for it goes
        # behind whoever got in first.
        now = timezone.now()
        _require_bookable(locked, now)
        if (
            get_booking_model()
            .objects.filter(
                session_id=locked.pk, student_user=student, status__in=ACTIVE_BOOKING_STATUSES
            )
            .exists()
        ):
            raise AlreadyBooked("You already hold an active booking for this session.")
        entry = (
            SessionWaitlist.objects.select_for_update()
            .filter(session_id=locked.pk, student_user=student)
            .first()
        )
        if entry is not None and entry.status in OPEN_WAITLIST_STATUSES:
            raise AlreadyWaitlisted(
                f"You are already on this session's waitlist ({entry.status}).",
                entry=entry.pk,
                status=entry.status,
            )
        if locked.seats_available > 0:
            raise SeatsAvailable(
                f"This session has {locked.seats_available} seat(s) free: book it instead.",
                seats_available=locked.seats_available,
            )
        check_student_totals(student, limits, now, entries=1)
        if entry is None:
            entry = SessionWaitlist(session=locked, student_user=student)
        reset_entry(entry, now)
        entry.save()
    return entry


@retry_on_deadlock
def accept_offer(entry: Any, *, actor: Any = None, note: str = "") -> Any:
    """Turn the seat an offer holds into a booking of the entry's student and return it.

    The booking is confirmed, or pending when the teacher's policy requires approval for group
    bookings; the entry becomes ``accepted`` and links to it. An offer past its time is
    expired on the spot (its seat passed on) and the call fails with ``offer_expired``, even
    when no expiry job has run.
    """
    if actor is not None and not (is_staff(actor) or same_user(actor, entry.student_user_id)):
        raise NotAllowed("Only the student on the waitlist may accept its offer.")
    require_bounded_text(student_note=note)
    booking = _accept_open_offer(entry, actor=actor, note=note)
    if booking is not None:
        return booking
    # Anything else (an offer past its time, an entry in another state, a refusal) is decided
    # with the session and the entry locked first.
    with transaction.atomic():
        lock_users(entry.student_user_id)  # users before sessions: the lock order everywhere
        session = lock_session(entry.session_id)
        locked = SessionWaitlist.objects.select_for_update().get(pk=entry.pk)
        now = timezone.now()  # after the wait for the locks
        if locked.status == WaitlistStatus.OFFERED and not locked.offer_is_open:
            close_offers(session, [locked], now)
            offer_free_seats(session, now)
        elif locked.status == WaitlistStatus.OFFERED:
            booking = _convert(session, locked, actor=actor, note=note, now=now)
            entry.__dict__.update(locked.__dict__)
            return booking
    if locked.status == WaitlistStatus.EXPIRED and locked.offer_expires_at is not None:
        raise OfferExpired(
            f"This offer expired at {locked.offer_expires_at:%Y-%m-%d %H:%M} UTC.",
            offer_expires_at=locked.offer_expires_at.isoformat(),
        )
    # Never offered a seat (still waiting, left, or closed while waiting), or already accepted.
    raise InvalidTransition(
        f"This waitlist entry is {locked.status}; only an open offer can be accepted.",
        status=locked.status,
    )


class _NotAsRead(Exception):
    """The offer or its session changed after :func:`_accept_open_offer` read them."""


def _accept_open_offer(entry: Any, *, actor: Any, note: str) -> Any:
    """Accept an offer that is open, with the session row locked only for the last two
    statements before the commit; return the booking, or None having changed nothing.

    The entry, its session and its student are read first, without a lock; under the
    student's row lock (the limits) the booking, its audit entry and its outbox event are
    written; then the session row is locked, provided the session is still scheduled and
    ahead, and the entry becomes ``accepted`` in one conditional ``UPDATE``, provided its
    offer is still open. The offer's seat is counted already, so no seat changes. Whenever
    something is not as read, or anything refuses, the transaction rolls back and None sends
    the caller to the path that locks first and gives the answer. (On MySQL/MariaDB the
    session row is locked before the writes that reference it; see
    :func:`~.common.hot_row_last`.)"""
    in_series = BookingSeriesItem.objects.filter(
        waitlist_entry_id=OuterRef("pk"), status=BookingSeriesItem.Status.WAITLISTED
    )
    found = (
        SessionWaitlist.objects.select_related("session__course", "session__teacher")
        .select_related("student_user")
        .annotate(in_series=Exists(in_series))
        .filter(pk=entry.pk)
        .first()
    )
    if found is None or not found.offer_is_open:
        return None
    session, student = found.session, found.student_user
    hot_last = hot_row_last()
    try:
        require_may_book(actor, student, session.course, session)
        limits = limits_for(student, session.teacher, session.course)
        policy = get_policy_resolver().get_policy(session.teacher, session.course)
        with transaction.atomic():
            lock_users(student)
            now = timezone.now()
            check_student_totals(student, limits, now, bookings=1)
            if not hot_last:
                _lock_scheduled(session.pk, now)
            booking = _book_offer(session, found, policy=policy, note=note, now=now)
            _tell_accepted(booking, found, actor=actor)
            if hot_last:
                _lock_scheduled(session.pk, now)
            now = timezone.now()  # after the wait for the lock
            claimed = SessionWaitlist.objects.filter(
                pk=found.pk, status=WaitlistStatus.OFFERED, offer_expires_at__gt=now
            ).update(status=WaitlistStatus.ACCEPTED, accepted_at=now, booking=booking)
            if not claimed:
                raise _NotAsRead
            found.status, found.accepted_at, found.booking = WaitlistStatus.ACCEPTED, now, booking
            if found.in_series:
                link_series_items(found, booking)
    except (BookingError, _NotAsRead):
        return None
    del found.in_series
    entry.__dict__.update(found.__dict__)
    return booking


def _lock_scheduled(session_pk: Any, now: datetime) -> None:
    """Lock the session row, provided the session is scheduled and starts after ``now``."""
    rows = (
        get_session_model()
        .objects.select_for_update()
        .filter(pk=session_pk, status=SessionStatus.SCHEDULED, start_at_utc__gt=now)
        .values_list("pk")
    )
    if not list(rows):
        raise _NotAsRead


def _book_offer(session: Any, entry: Any, *, policy: Any, note: str, now: datetime) -> Any:
    """Save the booking of the seat ``entry``'s offer holds (after the host's
    ``check_booking``): confirmed, or pending under approval."""
    status = group_booking_status(policy)
    attempt = BookingAttempt.for_session(
        "waitlist", entry.student_user, session, waitlist_entry=entry
    )
    booking = insert_group_booking(
        build_booking(attempt, status=status, policy=policy, now=now, note=note)
    )
    booking.course, booking.teacher = session.course, session.teacher
    return booking


def _tell_accepted(booking: Any, entry: Any, *, actor: Any) -> None:
    """Audit the booking made from ``entry``, write its outbox event, and signal both after
    the commit."""
    announce(booking, actor=actor, old="", waitlist_entry=entry.pk, notice=False)
    write(
        [
            booking_notice(
                booking,
                actor=actor,
                old="",
                kind=NotificationKind.WAITLIST_ACCEPTED,
                waitlist_entry=entry,
            )
        ]
    )
    send_after_commit(
        signals.waitlist_accepted, SessionWaitlist, entry=entry, booking=booking, actor=actor
    )


def _convert(session: Any, entry: Any, *, actor: Any, note: str, now: datetime) -> Any:
    """Book the seat ``entry``'s offer holds (session and entry locked)."""
    student = entry.student_user
    require_may_book(actor, student, session.course, session)
    _require_bookable(session, now)
    limits = limits_for(student, session.teacher, session.course)
    check_student_totals(student, limits, now, bookings=1)
    policy = get_policy_resolver().get_policy(session.teacher, session.course)
    booking = _book_offer(session, entry, policy=policy, note=note, now=now)
    entry.status, entry.accepted_at, entry.booking = WaitlistStatus.ACCEPTED, now, booking
    entry.save(update_fields=["status", "accepted_at", "booking"])
    link_series_items(entry, booking)
    _tell_accepted(booking, entry, actor=actor)
    return booking


@retry_on_deadlock
def leave_waitlist(entry: Any, *, actor: Any = None) -> Any:
    """Take the entry off the waitlist (its student, the session's teacher or staff).

    Leaving an open offer passes its seat to the next student waiting.
    """
    if actor is not None and not same_user(actor, entry.student_user_id):
        require_manager(actor, entry.session, "take a student off the waitlist")
    with transaction.atomic():
        session = lock_session(entry.session_id)
        locked = SessionWaitlist.objects.select_for_update().get(pk=entry.pk)
        now = timezone.now()  # after the wait for the locks
        if locked.status not in OPEN_WAITLIST_STATUSES:
            raise InvalidTransition(
                f"This waitlist entry is {locked.status}; only a waiting entry or an open offer "
                "can be left.",
                status=locked.status,
            )
        held = locked.status == WaitlistStatus.OFFERED
        locked.status, locked.left_at = WaitlistStatus.LEFT, now
        locked.save(update_fields=["status", "left_at"])
        if held:
            drop_held_seats(session, 1)
        if actor is not None and not same_user(actor, locked.student_user_id):
            # Taken off by the teacher or staff: the student hears it (the system, ending a
            # series' occurrences, tells through the series instead).
            tell_students(
                NotificationKind.WAITLIST_CLOSED,
                session,
                [locked],
                now,
                actor=actor,
                reason="removed",
            )
        settle(session, now)
    entry.__dict__.update(locked.__dict__)
    return entry


@retry_on_deadlock
def expire_offer(entry: Any, *, actor: Any = None, only_if_due: bool = False) -> Any:
    """Expire an open offer now and pass its seat on; with ``only_if_due``, only once its time
    is up. Returns the entry, or None when there was nothing to expire (idempotent)."""
    if actor is not None:
        require_manager(actor, entry.session, "expire a waitlist offer")
    with transaction.atomic():
        session = lock_session(entry.session_id)
        locked = SessionWaitlist.objects.select_for_update().get(pk=entry.pk)
        now = timezone.now()  # after the wait for the locks
        if locked.status != WaitlistStatus.OFFERED or (only_if_due and locked.offer_is_open):
            return None
        close_offers(session, [locked], now, actor=actor)
        settle(session, now)
    entry.__dict__.update(locked.__dict__)
    return entry


@retry_on_deadlock
def offer_seats(session: Any, *, actor: Any = None) -> list[Any]:
    """Expire the session's offers past their time and offer every free seat to the students
    waiting, in join order. Returns the new offers. Idempotent."""
    if actor is not None:
        require_manager(actor, session, "offer waitlist seats")
    now = timezone.now()
    with transaction.atomic():
        return settle(lock_session(session.pk), now)


@dataclass
class ExpiryReport:
    """What :func:`expire_due_offers` did."""

    expired: int = 0
    offered: int = 0
    closed: int = 0
    sessions: list[Any] = field(default_factory=list)


def expire_due_offers(now: datetime | None = None) -> ExpiryReport:
    """Expire every offer past its time and pass the seats on; close the entries still
    waiting for sessions that have started (their wait is over). Idempotent: run it from cron
    or a worker as often as you like."""
    now = now or timezone.now()
    report = ExpiryReport()
    due = Q(status=WaitlistStatus.OFFERED, offer_expires_at__lte=now)
    started = Q(status=WaitlistStatus.WAITING, session__start_at_utc__lte=now)
    unoffered = Q(
        status=WaitlistStatus.WAITING,
        session__status=SessionStatus.SCHEDULED,
        session__start_at_utc__gt=now,
        session__seats_taken__lt=F("session__capacity"),
    )
    pks = (
        SessionWaitlist.objects.filter(due | started | unoffered)
        .order_by("session_id")
        .values_list("session_id", flat=True)
        .distinct()
    )
    for session_pk in list(pks):
        with transaction.atomic():
            session = lock_session(session_pk)
            expiring = list(SessionWaitlist.objects.filter(due, session_id=session_pk))
            close_offers(session, expiring, now)
            report.expired += len(expiring)
            report.offered += len(offer_free_seats(session, now))
            if session.start_at_utc <= now or session.status != SessionStatus.SCHEDULED:
                report.closed += close_waiting(session, now, reason="session_started")
        report.sessions.append(session_pk)
    return report
