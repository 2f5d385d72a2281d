"""Bookings: group seats, one-on-one requests, decisions, cancellation, rescheduling,
attendance. The only code that changes a booking's status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from .. import signals
from ..choices import ACTIVE_BOOKING_STATUSES, BookingStatus, BookingType, SessionStatus
from ..exceptions import (
    AlreadyBooked,
    CancelWindowClosed,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    SessionFull,
    SessionNotBookable,
    SlotUnavailable,
)
from ..models import BookingSeriesItem, get_booking_model, get_session_model
from ..policies import get_policy_resolver
from .availability import TeacherSchedule
from .common import (
    is_staff,
    lock_user,
    record_event,
    require_aware,
    require_manager,
    same_user,
    send_after_commit,
)
from .seats import close_own_entry, lock_sessions, release_seats, settle_if_needed, take_seats

S = BookingStatus

#: SPEC §4: the only status changes there are.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.CONFIRMED, S.DECLINED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.CANCELLED, S.ATTENDED, S.NO_SHOW, S.RESCHEDULED}),
}

SIGNAL_FOR_STATUS: dict[str, Signal] = {
    S.PENDING: signals.booking_requested,
    S.CONFIRMED: signals.booking_confirmed,
    S.DECLINED: signals.booking_declined,
    S.CANCELLED: signals.booking_cancelled,
    S.RESCHEDULED: signals.booking_rescheduled,
    S.ATTENDED: signals.booking_attendance_marked,
    S.NO_SHOW: signals.booking_attendance_marked,
}


def check_transition(current: str, new: str) -> None:
    """Raise ``invalid_transition`` unless SPEC §4 allows ``current`` → ``new``."""
    allowed = TRANSITIONS.get(current, frozenset())
    if new not in allowed:
        options = ", ".join(sorted(allowed)) or "nothing (it is final)"
        raise InvalidTransition(
            f"A {current} booking cannot become {new}; it can become {options}.",
            status=current,
        )


def _announce(
    booking: Any, *, actor: Any, old: str, reason: str = "", new_booking: Any = None, **data: Any
) -> None:
    """Audit a status change and send its signal after commit."""
    extra: dict[str, Any] = {}
    if new_booking is not None:
        data["new_booking"] = new_booking.pk
        extra["new_booking"] = new_booking
    record_event(
        booking, actor=actor, from_status=old, to_status=booking.status, reason=reason, **data
    )
    send_after_commit(
        SIGNAL_FOR_STATUS[booking.status],
        type(booking),
        booking=booking,
        actor=actor,
        from_status=old,
        to_status=booking.status,
        **extra,
    )


def _transition(
    booking: Any, new: str, *, actor: Any, reason: str = "", check: Any = None, **fields: Any
) -> Any:
    """Lock the booking, check the transition (and ``check(locked)``), apply it, release seats
    if it stops holding them, audit it and signal it after commit."""
    model = get_booking_model()
    # Lock order everywhere: session rows (by pk), then the booking row.
    lock_sessions(booking.session_id)
    locked = model.objects.select_for_update().get(pk=booking.pk)
    check_transition(locked.status, new)
    if check is not None:
        check(locked)
    old = locked.status
    locked.status = new
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save(update_fields=["status", *fields, "updated_at"])
    frees_seats = old in ACTIVE_BOOKING_STATUSES and new not in ACTIVE_BOOKING_STATUSES
    if frees_seats and locked.session_id is not None:
        release_seats(locked.session_id, locked.seats_reserved)
    _announce(locked, actor=actor, old=old, reason=reason)
    return locked


def _require_may_book(actor: Any, student: Any, course: Any, session: Any = None) -> None:
    """Students book for themselves (staff and the system for anybody), where the resolver's
    ``can_book`` allows it."""
    if actor is not None and not (is_staff(actor) or same_user(actor, student.pk)):
        raise NotAllowed("Students book for themselves.")
    if not get_policy_resolver().can_book(student, course, session):
        raise NotAllowed("You may not book this course.")


# Group sessions ----------------------------------------------------------------------------


def book_group_session(
    *, student: Any, session: Any, seats: int = 1, note: str = "", actor: Any = None
) -> Any:
    """Book ``seats`` seats of a group session for ``student``.

    Confirmed at once unless the teacher's policy requires approval for group bookings; a
    pending booking holds its seats.
    """
    if not isinstance(seats, int) or seats < 1:
        raise InvalidInput("A booking reserves at least one seat.", field="seats_reserved")
    _require_may_book(actor, student, session.course, session)
    policy = get_policy_resolver().get_policy(session.teacher, session.course)
    model = get_booking_model()
    # A seat that looks free may be owed to the waitlist: a direct booking never jumps it.
    settle_if_needed(session.pk, timezone.now())
    with transaction.atomic():
        booking = _create_group_booking(
            model, student=student, session=session, seats=seats, policy=policy, note=note
        )
        _announce(booking, actor=actor, old="")
    return booking


def _create_group_booking(
    model: Any,
    *,
    student: Any,
    session: Any,
    seats: int,
    policy: Any,
    note: str = "",
    rescheduled_from: Any = None,
    status: str | None = None,
    seat_held: bool = False,
) -> Any:
    """Create a group booking; take its seats unless ``seat_held`` (a waitlist offer holds
    the seat already)."""
    now = timezone.now()

    def already_booked() -> bool:
        return bool(
            model.objects.filter(
                session_id=session.pk, student_user=student, status__in=ACTIVE_BOOKING_STATUSES
            ).exists()
        )

    # The conditional UPDATE takes the seats and locks the session row until commit, so the
    # check that follows it sees any concurrent booking of this student on every backend.
    if not seat_held and not take_seats(session.pk, seats, now):
        if already_booked():
            raise AlreadyBooked("You already hold an active booking for this session.")
        current = get_session_model().objects.get(pk=session.pk)
        if current.status != SessionStatus.SCHEDULED:
            raise SessionNotBookable(f"This session is {current.status}.")
        if current.start_at_utc <= now:
            raise SessionNotBookable("This session has already started.")
        raise SessionFull(
            f"This session has {current.seats_available} of {current.capacity} seats free; "
            f"you asked for {seats}. You can join its waitlist.",
            seats_available=current.seats_available,
        )
    if already_booked():
        raise AlreadyBooked("You already hold an active booking for this session.")
    if status is None:
        status = S.PENDING if policy.requires_approval_for_group else S.CONFIRMED
    try:
        with transaction.atomic():
            booking = model.objects.create(
                booking_type=BookingType.GROUP_SESSION,
                session_id=session.pk,
                course_id=session.course_id,
                teacher_id=session.teacher_id,
                student_user=student,
                start_at_utc=session.start_at_utc,
                end_at_utc=session.end_at_utc,
                seats_reserved=seats,
                status=status,
                student_note=note,
                rescheduled_from=rescheduled_from,
            )
    except IntegrityError as exc:
        # The partial unique constraint caught a concurrent second booking of this student;
        # the caller's transaction rolls the seat increment back.
        raise AlreadyBooked("You already hold an active booking for this session.") from exc
    if not seat_held:
        # Booked directly while on the waitlist (a seat came free that nobody else waits
        # for): the student's own offer must not hold a second seat.
        close_own_entry(session.pk, student, booking, now)
    return booking


# One-on-one lessons ------------------------------------------------------------------------


def request_one_on_one(
    *,
    student: Any,
    teacher: Any,
    course: Any,
    start_at_utc: datetime,
    end_at_utc: datetime,
    note: str = "",
    actor: Any = None,
) -> Any:
    """Request a one-on-one lesson. Pending unless the policy needs no approval."""
    require_aware(start_at_utc, "start_at_utc")
    require_aware(end_at_utc, "end_at_utc")
    if same_user(student, teacher.pk):
        raise InvalidInput("A teacher cannot book a lesson with themselves.", field="teacher")
    _require_may_book(actor, student, course)
    with transaction.atomic():
        booking = _create_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start=start_at_utc,
            end=end_at_utc,
            note=note,
        )
        _announce(booking, actor=actor, old="")
    return booking


def _create_one_on_one(
    *,
    student: Any,
    teacher: Any,
    course: Any,
    start: datetime,
    end: datetime,
    note: str = "",
    rescheduled_from: Any = None,
    status: str | None = None,
) -> Any:
    # One teacher's one-on-one bookings are decided one at a time: the daily limit and the
    # overlap with group sessions cannot be database constraints.
    lock_user(teacher)
    schedule = TeacherSchedule.load(teacher, course, start, end)
    schedule.check(start, end)
    blocked_from, blocked_until = schedule.blocked_range(start, end)
    if status is None:
        status = S.PENDING if schedule.policy.requires_approval_for_one_on_one else S.CONFIRMED
    try:
        with transaction.atomic():
            return get_booking_model().objects.create(
                booking_type=BookingType.ONE_ON_ONE,
                course=course,
                teacher=teacher,
                student_user=student,
                start_at_utc=start,
                end_at_utc=end,
                blocked_from_utc=blocked_from,
                blocked_until_utc=blocked_until,
                status=status,
                student_note=note,
                rescheduled_from=rescheduled_from,
            )
    except IntegrityError as exc:
        # On PostgreSQL the exclusion constraint refuses an overlap the lock did not prevent.
        raise SlotUnavailable("The teacher already has a lesson at this time.") from exc


# Decisions and status changes --------------------------------------------------------------


def approve_booking(booking: Any, *, actor: Any = None, teacher_note: str = "") -> Any:
    """Confirm a pending booking (teacher or staff)."""
    require_manager(actor, booking, "approve this booking")
    fields: dict[str, Any] = {"decision_at": timezone.now(), "decided_by": actor}
    if teacher_note:
        fields["teacher_note"] = teacher_note
    with transaction.atomic():
        return _transition(booking, S.CONFIRMED, actor=actor, **fields)


def decline_booking(booking: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Decline a pending booking (teacher or staff); its seats are freed."""
    require_manager(actor, booking, "decline this booking")
    with transaction.atomic():
        return _transition(
            booking,
            S.DECLINED,
            actor=actor,
            reason=reason,
            decision_at=timezone.now(),
            decided_by=actor,
        )


def cancel_booking(booking: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Cancel a pending or confirmed booking.

    The student may cancel only until ``cancel_window_hours`` before the start; the teacher and
    staff may cancel any time. Its seats are freed.
    """
    now = timezone.now()
    by_student = same_user(actor, booking.student_user_id) and not is_staff(actor)
    if not by_student:
        require_manager(actor, booking, "cancel this booking")

    def inside_window(locked: Any) -> None:
        if by_student:
            _check_cancel_window(locked, now, "cancel")

    with transaction.atomic():
        return _transition(
            booking,
            S.CANCELLED,
            actor=actor,
            reason=reason,
            check=inside_window,
            cancelled_by=actor,
            cancelled_at=now,
            cancel_reason=reason,
        )


def _check_cancel_window(booking: Any, now: datetime, verb: str) -> None:
    """Students may cancel or move a booking only until ``cancel_window_hours`` before it."""
    policy = get_policy_resolver().get_policy(booking.teacher, booking.course)
    deadline = booking.start_at_utc - timedelta(hours=policy.cancel_window_hours)
    if now > deadline:
        hours = (booking.start_at_utc - now).total_seconds() / 3600
        raise CancelWindowClosed(
            f"students can {verb} until {policy.cancel_window_hours} h before the start; "
            f"this starts in {hours:.0f} h. Ask the teacher.",
            cancel_window_hours=policy.cancel_window_hours,
        )


def _mark(booking: Any, status: str, actor: Any) -> Any:
    require_manager(actor, booking, "mark attendance")
    now = timezone.now()

    def started(locked: Any) -> None:
        if locked.start_at_utc > now:
            raise InvalidTransition(
                "Attendance can be marked only once the booking has started "
                f"({locked.start_at_utc:%Y-%m-%d %H:%M} UTC)."
            )

    with transaction.atomic():
        return _transition(booking, status, actor=actor, check=started)


def mark_attended(booking: Any, *, actor: Any = None) -> Any:
    """Mark a confirmed booking attended, once it has started (teacher or staff)."""
    return _mark(booking, S.ATTENDED, actor)


def mark_no_show(booking: Any, *, actor: Any = None) -> Any:
    """Mark a confirmed booking as a no-show, once it has started (teacher or staff)."""
    return _mark(booking, S.NO_SHOW, actor)


def reschedule_booking(
    booking: Any,
    *,
    actor: Any = None,
    start_at_utc: datetime | None = None,
    end_at_utc: datetime | None = None,
    session: Any = None,
    reason: str = "",
) -> Any:
    """Move a confirmed booking: a lesson to a new time, a group seat to another session.

    Atomic: the new booking is created under the same rules as a new one (the old one's time
    does not count against it) and the old one becomes ``rescheduled``, pointing forward via
    ``rescheduled_to``. Returns the new booking, confirmed when the teacher or staff moves it
    or when the policy needs no approval, pending otherwise.
    """
    by_student = same_user(actor, booking.student_user_id) and not is_staff(actor)
    if not by_student:
        require_manager(actor, booking, "reschedule this booking")
    model = get_booking_model()
    resolver = get_policy_resolver()
    now = timezone.now()
    if session is not None:
        settle_if_needed(session.pk, now)
    with transaction.atomic():
        # Only a seat moves to another session: a lesson's request locks no session (a
        # session lock before the teacher's row lock below could deadlock a group series).
        moving_seat = session is not None and booking.booking_type == BookingType.GROUP_SESSION
        lock_sessions(booking.session_id, session.pk if moving_seat else None)
        old = model.objects.select_for_update().get(pk=booking.pk)
        check_transition(old.status, S.RESCHEDULED)
        if by_student:
            if not resolver.can_book(old.student_user, old.course, session):
                raise NotAllowed("You may not book this course.")
            _check_cancel_window(old, now, "move")
        # Retire the old booking first, so neither its seats nor its time block the move (and
        # PostgreSQL's exclusion constraint sees no overlap); a failure below rolls this back.
        old.status = S.RESCHEDULED
        old.save(update_fields=["status", "updated_at"])
        if old.booking_type == BookingType.ONE_ON_ONE:
            if start_at_utc is None or end_at_utc is None:
                raise InvalidInput("Give start_at_utc and end_at_utc.", field="start_at_utc")
            require_aware(start_at_utc, "start_at_utc")
            require_aware(end_at_utc, "end_at_utc")
            policy = resolver.get_policy(old.teacher, old.course)
            needs_approval = by_student and policy.requires_approval_for_one_on_one
            new = _create_one_on_one(
                student=old.student_user,
                teacher=old.teacher,
                course=old.course,
                start=start_at_utc,
                end=end_at_utc,
                note=old.student_note,
                rescheduled_from=old,
                status=S.PENDING if needs_approval else S.CONFIRMED,
            )
        else:
            if session is None:
                raise InvalidInput("Give the session to move to.", field="session")
            if session.pk == old.session_id:
                raise InvalidInput("The booking is already for this session.", field="session")
            if session.course_id != old.course_id:
                raise InvalidInput(
                    "A seat moves only to a session of the same course.", field="session"
                )
            policy = resolver.get_policy(session.teacher, session.course)
            needs_approval = by_student and policy.requires_approval_for_group
            release_seats(old.session_id, old.seats_reserved)
            new = _create_group_booking(
                model,
                student=old.student_user,
                session=session,
                seats=old.seats_reserved,
                policy=policy,
                note=old.student_note,
                rescheduled_from=old,
                status=S.PENDING if needs_approval else S.CONFIRMED,
            )
        # A rescheduled occurrence of a series stays in its series.
        BookingSeriesItem.objects.filter(booking=old).update(
            booking=new, session_id=new.session_id, updated_at=now
        )
        _announce(old, actor=actor, old=S.CONFIRMED, reason=reason, new_booking=new)
        _announce(new, actor=actor, old="", reason=reason, rescheduled_from=old.pk)
    return new
