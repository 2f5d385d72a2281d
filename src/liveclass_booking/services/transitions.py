"""Status changes of bookings: the table of docs/booking-rules.md, the one function that
applies a change (lock, check, save, free seats, audit, signal after commit), and the
approval timeout.

A pending booking carries ``approval_expires_at`` (the policy's ``approval_timeout_hours``
after it was made, never after its start). Past that it reads as ``expired`` at once
(:attr:`~liveclass_booking.abstract.AbstractLiveClassBooking.current_status`), nothing may
approve, decline or cancel it, the slot listing ignores it, and every path that would book
the same seats or time first records the expiry (:func:`expire_due_requests`), so correctness
never waits for the ``liveclass_booking_expire_requests`` command.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import (
    BooleanField,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)
from django.dispatch import Signal
from django.utils import timezone

from .. import signals
from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    BookingStatus,
    BookingType,
    NotificationKind,
    WaitlistStatus,
)
from ..exceptions import InvalidTransition
from ..models import SessionWaitlist, get_booking_model, get_session_model
from ..policies import get_policy_resolver
from ..prepared import Param, Prepared
from ..querysets import overdue_requests
from .common import record_event, send_after_commit
from .outbox import outbox_event, write
from .seats import lock_session, lock_sessions, release_seats, settle

#: The only status changes there are (docs/booking-rules.md; ``expired``: the approval
#: timeout passed).
TRANSITIONS: dict[str, frozenset[str]] = {
    BookingStatus.PENDING: frozenset(
        {
            BookingStatus.CONFIRMED,
            BookingStatus.DECLINED,
            BookingStatus.CANCELLED,
            BookingStatus.EXPIRED,
        }
    ),
    BookingStatus.CONFIRMED: frozenset(
        {
            BookingStatus.CANCELLED,
            BookingStatus.ATTENDED,
            BookingStatus.NO_SHOW,
            BookingStatus.RESCHEDULED,
        }
    ),
}

SIGNAL_FOR_STATUS: dict[str, Signal] = {
    BookingStatus.PENDING: signals.booking_requested,
    BookingStatus.CONFIRMED: signals.booking_confirmed,
    BookingStatus.DECLINED: signals.booking_declined,
    BookingStatus.CANCELLED: signals.booking_cancelled,
    BookingStatus.RESCHEDULED: signals.booking_rescheduled,
    BookingStatus.ATTENDED: signals.booking_attendance_marked,
    BookingStatus.NO_SHOW: signals.booking_attendance_marked,
    BookingStatus.EXPIRED: signals.booking_expired,
}

#: The reason recorded on a booking that expired undecided.
APPROVAL_TIMEOUT_REASON = "approval timeout"


def check_transition(current: str, new: str) -> None:
    """Raise ``invalid_transition`` unless docs/booking-rules.md allows ``current`` → ``new``."""
    allowed = TRANSITIONS.get(current, frozenset())
    if new not in allowed:
        options = ", ".join(sorted(allowed - {BookingStatus.EXPIRED})) or "nothing (it is final)"
        raise InvalidTransition(
            f"A {current} booking cannot become {new}; it can become {options}.",
            status=current,
        )


#: The outbox event of a status change, and who hears it (``student``, ``teacher``).
NOTICE_FOR_STATUS: dict[str, tuple[str, tuple[str, ...]]] = {
    BookingStatus.PENDING: (NotificationKind.BOOKING_REQUESTED, ("student", "teacher")),
    BookingStatus.CONFIRMED: (NotificationKind.BOOKING_CONFIRMED, ("student", "teacher")),
    BookingStatus.DECLINED: (NotificationKind.BOOKING_DECLINED, ("student",)),
    BookingStatus.CANCELLED: (NotificationKind.BOOKING_CANCELLED, ("student", "teacher")),
    BookingStatus.RESCHEDULED: (NotificationKind.BOOKING_RESCHEDULED, ("student", "teacher")),
    BookingStatus.ATTENDED: (NotificationKind.ATTENDANCE_MARKED, ("student",)),
    BookingStatus.NO_SHOW: (NotificationKind.ATTENDANCE_MARKED, ("student",)),
    BookingStatus.EXPIRED: (NotificationKind.BOOKING_EXPIRED, ("student", "teacher")),
}


def next_sequence(replaced: Any) -> int:
    """The calendar SEQUENCE a new booking starts at: 0, or one past the booking it replaced
    (a reschedule keeps the calendar entry, so its number goes on growing)."""
    return 0 if replaced is None else int(replaced.calendar_sequence) + 1


def booking_notice(
    booking: Any,
    *,
    actor: Any,
    old: str,
    reason: str = "",
    kind: str = "",
    also: tuple[Any, ...] = (),
    **data: Any,
) -> Any:
    """The outbox event telling the booking's parties (and ``also`` these users) about its
    change to its status (or ``kind``), with the times as they are now. A declined lesson
    request tells its teacher too: their calendar holds it as tentative."""
    default_kind, parties = NOTICE_FOR_STATUS[booking.status]
    if booking.status == BookingStatus.DECLINED and booking.booking_type == BookingType.ONE_ON_ONE:
        parties = (*parties, "teacher")
    people = {"student": booking.student_user_id, "teacher": booking.teacher_id}
    return outbox_event(
        kind or default_kind,
        recipients=[*(people[party] for party in parties), *also],
        booking=booking,
        session=booking.session_id,
        actor=actor,
        from_status=old,
        to_status=booking.status,
        reason=reason,
        start=booking.start_at_utc,
        end=booking.end_at_utc,
        sequence=booking.calendar_sequence,
        **data,
    )


def announce(
    booking: Any,
    *,
    actor: Any,
    old: str,
    reason: str = "",
    new_booking: Any = None,
    notice: bool = True,
    **data: Any,
) -> None:
    """Audit a status change, write its outbox event (unless ``notice`` is False: the caller
    tells people otherwise) and send its signal after commit."""
    extra: dict[str, Any] = {}
    if new_booking is not None:
        data["new_booking"] = new_booking.pk
        extra["new_booking"] = new_booking
    record_event(
        booking, actor=actor, from_status=old, to_status=booking.status, reason=reason, **data
    )
    if notice:
        write([booking_notice(booking, actor=actor, old=old, reason=reason)])
    send_after_commit(
        SIGNAL_FOR_STATUS[booking.status],
        type(booking),
        booking=booking,
        actor=actor,
        from_status=old,
        to_status=booking.status,
        **extra,
    )


def transition(
    booking: Any,
    new: str,
    *,
    actor: Any,
    reason: str = "",
    check: Any = None,
    notice: bool = True,
    **fields: Any,
) -> Any:
    """Lock the booking, check the transition (and ``check(locked)``), apply it, release seats
    if it stops holding them, audit it and signal it after commit.

    A pending booking past its approval timeout counts as ``expired``: only the expiry itself
    may still be recorded."""
    model = get_booking_model()
    # Lock order everywhere: session rows (by pk), then the booking row.
    lock_sessions(booking.session_id)
    locked = model.objects.select_for_update().get(pk=booking.pk)
    current = locked.status if new == BookingStatus.EXPIRED else locked.current_status
    check_transition(current, new)
    if check is not None:
        check(locked)
    old = locked.status
    locked.status = new
    locked.calendar_sequence += 1
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", "calendar_sequence", *fields, "updated_at"])
    frees_seats = old in ACTIVE_BOOKING_STATUSES and new not in ACTIVE_BOOKING_STATUSES
    if frees_seats and locked.session_id is not None:
        release_seats(locked.session_id, locked.seats_reserved)
    announce(locked, actor=actor, old=old, reason=reason, notice=notice)
    return locked


# The approval timeout ----------------------------------------------------------------------


def approval_deadline(policy: Any, start: datetime, now: datetime) -> datetime:
    """When a request made ``now`` for a booking starting at ``start`` expires undecided: the
    policy's ``approval_timeout_hours`` later, but never after the start."""
    return min(now + timedelta(hours=policy.approval_timeout_hours), start)


def expire_due_requests(
    now: datetime | None = None, *, session_pk: Any = None, teacher: Any = None
) -> int:
    """Record the expiry of every pending booking past its approval timeout (or only those of
    one session, or one teacher's lessons): each becomes ``expired`` — audited, signalled
    (``booking_expired``), its seats offered to the waitlist — in a transaction of its own, so
    it stays done even when the request that noticed it then fails. Returns how many."""
    now = now or timezone.now()
    due = get_booking_model().objects.filter(overdue_requests(now))
    if session_pk is not None:
        due = due.filter(session_id=session_pk)
    if teacher is not None:
        due = due.filter(teacher=teacher, booking_type=BookingType.ONE_ON_ONE)
    expired = 0
    for booking in due.order_by("pk"):
        with transaction.atomic():
            try:
                transition(
                    booking, BookingStatus.EXPIRED, actor=None, reason=APPROVAL_TIMEOUT_REASON
                )
            except InvalidTransition:  # decided meanwhile
                continue
        expired += 1
    return expired


def give_deadlines(now: datetime | None = None) -> int:
    """Give pending bookings that have no approval deadline (made before the timeout existed)
    one: a full timeout from ``now``, never after the start. Returns how many."""
    now = now or timezone.now()
    model = get_booking_model()
    resolver = get_policy_resolver()
    rows = list(
        model.objects.filter(
            status=BookingStatus.PENDING, approval_expires_at__isnull=True
        ).select_related("teacher", "course")
    )
    for booking in rows:
        policy = resolver.get_policy(booking.teacher, booking.course)
        deadline = approval_deadline(policy, booking.start_at_utc, now)
        model.objects.filter(pk=booking.pk, approval_expires_at__isnull=True).update(
            approval_expires_at=deadline
        )
    return len(rows)


def unsettled(now: Any) -> dict[str, Any]:
    """What must be settled before a seat of a session is taken, as expressions over the
    session row at ``now`` (a datetime, or a placeholder of a prepared statement):
    ``overdue``, a request of it is past its approval timeout (its seats are free again);
    ``owed``, someone on its waitlist is owed a seat (an offer past its time, whose seat
    passes on, or a student waiting while a seat is free)."""
    overdue = get_booking_model().objects.filter(overdue_requests(now), session_id=OuterRef("pk"))
    due = SessionWaitlist.objects.filter(
        status=WaitlistStatus.OFFERED, offer_expires_at__lte=now, session_id=OuterRef("pk")
    )
    waiting = SessionWaitlist.objects.filter(
        status=WaitlistStatus.WAITING, session_id=OuterRef("pk")
    )
    owed = Q(Exists(due)) | Q(Exists(waiting), seats_taken__lt=F("capacity"))
    return {"overdue": Exists(overdue), "owed": ExpressionWrapper(owed, BooleanField())}


def settle_session(session_pk: Any, now: datetime) -> None:
    """Before anything takes a seat of a session: expire its requests past their approval
    timeout and bring its waitlist up to date (offers past their time expire, free seats go
    to the students waiting), so freed seats go to whoever they are owed. Each in a
    transaction of its own, so that it stays done even when the request that noticed then
    fails (``session_full``, ``seats_available``). One query when there is nothing to do."""
    found = get_session_model().objects.filter(pk=session_pk).order_by().values(**unsettled(now))
    flags = next(iter(found[:1]), None)
    if flags is None:
        return
    if flags["overdue"]:
        expire_due_requests(now, session_pk=session_pk)
    if flags["owed"]:
        with transaction.atomic():
            settle(lock_session(session_pk), now)


def settle_teacher(teacher: Any, now: datetime) -> None:
    """Before a teacher's time is booked: expire their lesson requests past their approval
    timeout, so the time (and the database's overlap constraint) is free again."""
    if _OVERDUE_LESSON.rows(teacher=getattr(teacher, "pk", teacher), now=now):
        expire_due_requests(now, teacher=teacher)


def _overdue_lesson() -> QuerySet[Any]:
    """A lesson request of a teacher (placeholder ``teacher``) past its approval timeout at
    ``now``, if there is one."""
    return (
        get_booking_model()
        .objects.filter(
            overdue_requests(Param("now", DateTimeField())),
            teacher_id=Param("teacher", get_user_model()._meta.pk),
            booking_type=BookingType.ONE_ON_ONE,
        )
        .order_by()
        .values_list("pk")[:1]
    )


_OVERDUE_LESSON = Prepared(_overdue_lesson)
