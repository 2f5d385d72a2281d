"""Bookings: group seats, one-on-one requests, decisions, cancellation, rescheduling,
attendance. The only code that changes a booking's status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    BookingStatus,
    BookingType,
    NotificationKind,
    SessionStatus,
)
from ..exceptions import (
    AlreadyBooked,
    CancelWindowClosed,
    InvalidInput,
    InvalidTransition,
    SessionFull,
    SessionNotBookable,
    SlotUnavailable,
)
from ..models import BookingSeriesItem, get_booking_model, get_session_model
from ..policies import get_policy_resolver
from .attempts import BookingAttempt, build_booking
from .availability import TeacherSchedule
from .common import (
    hot_row_last,
    is_staff,
    lock_users,
    require_aware,
    require_manager,
    retry_on_deadlock,
    same_user,
)
from .outbox import notify, write
from .rules import (
    LESSON_MEETING_FIELDS,
    check_group_totals,
    check_seats,
    check_student_totals,
    clean_meeting,
    default_lesson_meeting,
    limits_for,
    require_bounded_text,
    require_may_book,
    require_teacher,
)
from .seats import close_own_entry, lock_sessions, release_seats, take_seats
from .transitions import (
    TRANSITIONS,
    announce,
    booking_notice,
    check_transition,
    settle_session,
    settle_teacher,
    transition,
    unsettled,
)

__all__ = [
    "TRANSITIONS",
    "approve_booking",
    "book_group_session",
    "cancel_booking",
    "check_transition",
    "create_group_booking",
    "decline_booking",
    "mark_attended",
    "mark_no_show",
    "request_one_on_one",
    "reschedule_booking",
    "set_lesson_meeting",
]


# Group sessions ----------------------------------------------------------------------------


@retry_on_deadlock
def book_group_session(
    *, student: Any, session: Any, seats: int = 1, note: str = "", actor: Any = None
) -> Any:
    """Book ``seats`` seats of a group session for ``student``.

    Confirmed at once unless the teacher's policy requires approval for group bookings; a
    pending booking holds its seats until it is decided or its approval timeout passes.
    """
    if not isinstance(seats, int) or isinstance(seats, bool) or seats < 1:
        raise InvalidInput("A booking reserves at least one seat.", field="seats_reserved")
    require_bounded_text(student_note=note)
    require_may_book(actor, student, session.course, session)
    limits = limits_for(student, session.teacher, session.course)
    check_seats(limits, seats)
    policy = get_policy_resolver().get_policy(session.teacher, session.course)
    model = get_booking_model()
    settled = False
    while True:
        try:
            with transaction.atomic():
                # The student's row first (the lock order: users, sessions, bookings):
                # concurrent requests of one student are counted one after the other.
                lock_users(student)
                now = timezone.now()
                # A seat that looks free may be owed to the waitlist, and a request past its
                # approval timeout holds its seats no more: both are settled first (in
                # transactions of their own), so a direct booking never jumps the queue.
                facts = check_group_totals(
                    student, session.pk, limits, now, None if settled else unsettled
                )
                if facts.pop("overdue", False) | facts.pop("owed", False):
                    raise _Unsettled
                return create_group_booking(
                    model,
                    student=student,
                    session=session,
                    seats=seats,
                    policy=policy,
                    note=note,
                    waiting=facts["waiting"],
                    audit=lambda booking: announce(booking, actor=actor, old=""),
                )
        except _Unsettled:
            settle_session(session.pk, timezone.now())
            settled = True


class _Unsettled(Exception):
    """The session has something to settle before its seats are taken."""


def create_group_booking(
    model: Any,
    *,
    student: Any,
    session: Any,
    seats: int,
    policy: Any,
    note: str = "",
    rescheduled_from: Any = None,
    status: str | None = None,
    how: str = "book",
    waiting: bool = True,
    audit: Callable[[Any], None] | None = None,
) -> Any:
    """Create a group booking and take its seats, inside the caller's transaction. Pending
    unless ``policy`` needs no approval for group bookings or ``status`` says otherwise.
    ``how`` tells the host's ``check_booking`` how it comes to exist; ``audit(booking)``
    writes its audit and outbox rows. ``waiting`` False: the student holds no open entry on
    the session's waitlist (:func:`~.rules.check_group_totals` found none).

    The session row is what concurrent bookings of a class fight over, so it is touched
    last: the booking row and what ``audit`` writes go in first (the partial unique
    constraint refuses a second active booking of the student), then one conditional
    ``UPDATE`` takes the seats and locks the row until the commit. On MySQL/MariaDB (see
    :func:`~.common.hot_row_last`) the ``UPDATE`` comes first, and the check for a booking
    the student already holds, which no constraint makes there, is a read under its lock."""
    now = timezone.now()
    seats_first = not hot_row_last()
    if seats_first:
        claim_seats(session.pk, student, seats, now)
    if status is None:
        status = group_booking_status(policy)
    attempt = BookingAttempt.for_session(
        how, student, session, seats=seats, rescheduled_from=rescheduled_from
    )
    booking = insert_group_booking(
        build_booking(attempt, status=status, policy=policy, now=now, note=note)
    )
    # The booking's course and teacher are the session's: share the rows the caller has
    # loaded (the answer names them) rather than reading them again.
    for name in ("course", "teacher"):
        if session._meta.get_field(name).is_cached(session):
            setattr(booking, name, getattr(session, name))
    if audit is not None:
        audit(booking)
    if not seats_first:
        claim_seats(session.pk, student, seats, now)
    if waiting:
        # Booked directly while on the waitlist (a seat came free that nobody else waits
        # for): the student's own offer must not hold a second seat.
        close_own_entry(session.pk, student, booking, now)
    return booking


def group_booking_status(policy: Any) -> str:
    """The status a new group booking starts in under ``policy``: pending when it requires
    approval for group bookings, else confirmed."""
    return BookingStatus.PENDING if policy.requires_approval_for_group else BookingStatus.CONFIRMED


def insert_group_booking(booking: Any) -> Any:
    """Save a new group booking in the caller's transaction (no savepoint: a refusal rolls
    the caller back). Where the database has no partial unique constraint (MySQL/MariaDB),
    the student's active booking of the session is looked for first: the caller holds the
    session row's lock, under which every group booking of the session is made."""
    if not connection.features.supports_partial_indexes and _holds_seat(
        booking.session_id, booking.student_user_id
    ):
        raise AlreadyBooked("You already hold an active booking for this session.")
    try:
        booking.save(force_insert=True)
    except IntegrityError as exc:
        # The partial unique constraint: the student holds an active booking of the session.
        raise AlreadyBooked("You already hold an active booking for this session.") from exc
    return booking


def _holds_seat(session_pk: Any, student_pk: Any) -> bool:
    return bool(
        get_booking_model()
        .objects.filter(
            session_id=session_pk, student_user_id=student_pk, status__in=ACTIVE_BOOKING_STATUSES
        )
        .exists()
    )


def claim_seats(session_pk: Any, student: Any, seats: int, now: datetime) -> None:
    """Take ``seats`` of the session with its conditional ``UPDATE`` (which locks its row
    until the commit), or raise why not: ``already_booked``, ``session_not_bookable`` or
    ``session_full``."""
    if take_seats(session_pk, seats, now):
        return
    if not connection.features.supports_partial_indexes and _holds_seat(session_pk, student.pk):
        raise AlreadyBooked("You already hold an active booking for this session.")
    current = get_session_model().objects.get(pk=session_pk)
    if current.status != SessionStatus.SCHEDULED:
        raise SessionNotBookable(f"This session is {current.status}.")
    if current.start_at_utc <= now:
        raise SessionNotBookable("This session has already started.")
    raise SessionFull(
        f"This session has {current.seats_available} of {current.capacity} seats free; "
        f"you asked for {seats}. You can join its waitlist.",
        seats_available=current.seats_available,
    )


# One-on-one lessons ------------------------------------------------------------------------


@retry_on_deadlock
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
    """Request a one-on-one lesson with a teacher the resolver's ``can_teach`` accepts for
    ``course``. Pending unless the policy needs no approval."""
    require_aware(start_at_utc, "start_at_utc")
    require_aware(end_at_utc, "end_at_utc")
    require_bounded_text(student_note=note)
    if same_user(student, teacher.pk):
        raise InvalidInput("A teacher cannot book a lesson with themselves.", field="teacher")
    require_may_book(actor, student, course)
    require_teacher(teacher, course)
    settle_teacher(teacher, timezone.now())
    with transaction.atomic():
        booking = _create_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start=start_at_utc,
            end=end_at_utc,
            note=note,
            limits=limits_for(student, teacher, course),
        )
        announce(booking, actor=actor, old="")
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
    limits: dict[str, Any] | None = None,
    how: str = "request",
) -> Any:
    """Create a lesson (inside the caller's transaction) under every one-on-one rule; with
    ``limits``, also under the student's limits (a new request; a reschedule has none)."""
    # The teacher's settings (policy, windows, exceptions) first: the lock below does not
    # guard them, so it need not be held while they are read.
    schedule = TeacherSchedule.open_hours(teacher, course, start, end)
    # One teacher's one-on-one bookings are decided one at a time: the daily limit and the
    # overlap with group sessions cannot be database constraints. The student's row too, when
    # the student's limits are counted.
    lock_users(teacher, student if limits is not None else None)
    now = timezone.now()
    schedule.load_taken(start, end, now=now)
    schedule.check(start, end)
    if status is None:
        status = (
            BookingStatus.PENDING
            if schedule.policy.requires_approval_for_one_on_one
            else BookingStatus.CONFIRMED
        )
    if limits is not None:
        pending_to = teacher if status == BookingStatus.PENDING else None
        check_student_totals(student, limits, now, bookings=1, pending_to=pending_to)
    attempt = BookingAttempt(
        how=how,
        booking_type=BookingType.ONE_ON_ONE,
        student=student,
        teacher=teacher,
        course=course,
        start=start,
        end=end,
        rescheduled_from=rescheduled_from,
    )
    booking = build_booking(
        attempt,
        status=status,
        policy=schedule.policy,
        now=now,
        note=note,
        blocked=schedule.blocked_range(start, end),
    )
    try:
        # No savepoint: a refusal rolls the caller's transaction back.
        booking.save(force_insert=True)
    except IntegrityError as exc:
        # On PostgreSQL the exclusion constraint refuses an overlap the lock did not prevent.
        raise SlotUnavailable("The teacher already has a lesson at this time.") from exc
    return booking


# Decisions and status changes --------------------------------------------------------------


@retry_on_deadlock
def approve_booking(
    booking: Any, *, actor: Any = None, teacher_note: str = "", **meeting: str
) -> Any:
    """Confirm a pending booking (teacher or staff). A one-on-one lesson may get its meeting
    details (``meeting_link``, ``meeting_id``, ``meeting_passcode``) here; without any, the
    resolver's ``get_lesson_meeting`` fills those it has none of."""
    require_bounded_text(teacher_note=teacher_note)
    meeting = clean_meeting(meeting)
    require_manager(actor, booking, "approve this booking")
    if meeting and booking.booking_type != BookingType.ONE_ON_ONE:
        raise InvalidInput(
            "A group booking's meeting details are its session's.", field="meeting_link"
        )
    fields: dict[str, Any] = {"decision_at": timezone.now(), "decided_by": actor}
    if teacher_note:
        fields["teacher_note"] = teacher_note
    if booking.booking_type == BookingType.ONE_ON_ONE:
        if not meeting and not any(getattr(booking, n) for n in LESSON_MEETING_FIELDS):
            meeting = default_lesson_meeting(booking)
        fields.update(meeting)
    with transaction.atomic():
        return transition(booking, BookingStatus.CONFIRMED, actor=actor, **fields)


@retry_on_deadlock
def decline_booking(booking: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Decline a pending booking (teacher or staff); its seats are freed."""
    require_bounded_text(reason=reason)
    require_manager(actor, booking, "decline this booking")
    with transaction.atomic():
        return transition(
            booking,
            BookingStatus.DECLINED,
            actor=actor,
            reason=reason,
            decision_at=timezone.now(),
            decided_by=actor,
        )


@retry_on_deadlock
def cancel_booking(booking: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Cancel a pending or confirmed booking.

    The student may cancel only until ``cancel_window_hours`` before the start; the teacher and
    staff may cancel any time. Its seats are freed.
    """
    require_bounded_text(reason=reason)
    now = timezone.now()
    by_student = same_user(actor, booking.student_user_id) and not is_staff(actor)
    if not by_student:
        require_manager(actor, booking, "cancel this booking")

    def inside_window(locked: Any) -> None:
        if by_student:
            _check_cancel_window(locked, now, "cancel")

    with transaction.atomic():
        return transition(
            booking,
            BookingStatus.CANCELLED,
            actor=actor,
            reason=reason,
            check=inside_window,
            cancelled_by=actor,
            cancelled_at=now,
            cancel_reason=reason,
        )


def _time_left(left: timedelta) -> str:
    """How long until the start, to the minute and rounded down (so that 23 h 59 min never
    reads as the 24 h a window needs)."""
    minutes = int(left.total_seconds() // 60)
    if minutes < 0:
        return "this has already started"
    if minutes == 0:
        return "this starts in less than a minute"
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours} h"] if hours else []
    if minutes:
        parts.append(f"{minutes} min")
    return "this starts in " + " ".join(parts)


def _check_cancel_window(booking: Any, now: datetime, verb: str) -> None:
    """Students may cancel or move a booking only until ``cancel_window_hours`` before it."""
    policy = get_policy_resolver().get_policy(booking.teacher, booking.course)
    deadline = booking.start_at_utc - timedelta(hours=policy.cancel_window_hours)
    if now > deadline:
        raise CancelWindowClosed(
            f"students can {verb} until {policy.cancel_window_hours} h before the start; "
            f"{_time_left(booking.start_at_utc - now)}. Ask the teacher.",
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
        return transition(booking, status, actor=actor, check=started)


@retry_on_deadlock
def mark_attended(booking: Any, *, actor: Any = None) -> Any:
    """Mark a confirmed booking attended, once it has started (teacher or staff)."""
    return _mark(booking, BookingStatus.ATTENDED, actor)


@retry_on_deadlock
def mark_no_show(booking: Any, *, actor: Any = None) -> Any:
    """Mark a confirmed booking as a no-show, once it has started (teacher or staff)."""
    return _mark(booking, BookingStatus.NO_SHOW, actor)


@retry_on_deadlock
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

    The actor must be allowed to move the booking (its student, inside the cancel window, or
    who manages it) *and* to book the target: a teacher or staff member moves a seat only
    into a session they manage. The new booking is made under the rules of a new one for
    the target — the student's ``can_book``, the target's notice and availability, its
    policy's approval — except that the old booking's seats and time do not count against
    it, and that it is confirmed when its manager moves it (their consent is the approval).
    Atomic: the old booking becomes ``rescheduled``, pointing forward via
    ``rescheduled_to``. Returns the new booking.
    """
    require_bounded_text(reason=reason)
    by_student = same_user(actor, booking.student_user_id) and not is_staff(actor)
    if not by_student:
        require_manager(actor, booking, "reschedule this booking")
        if session is not None:
            require_manager(actor, session, "move a booking into this session")
    model = get_booking_model()
    resolver = get_policy_resolver()
    now = timezone.now()
    if session is not None:
        settle_session(session.pk, now)
    elif booking.booking_type == BookingType.ONE_ON_ONE:
        settle_teacher(booking.teacher, now)
    with transaction.atomic():
        # Only a seat moves to another session: a lesson's request locks no session (a
        # session lock before the teacher's row lock below could deadlock a group series).
        moving_seat = session is not None and booking.booking_type == BookingType.GROUP_SESSION
        # Users before sessions and bookings: the lock order everywhere. The student's row
        # orders the move with the student's own bookings of the target.
        lesson = booking.booking_type == BookingType.ONE_ON_ONE
        lock_users(booking.teacher_id if lesson else None, booking.student_user_id)
        lock_sessions(booking.session_id, session.pk if moving_seat else None)
        old = model.objects.select_for_update().get(pk=booking.pk)
        check_transition(old.status, BookingStatus.RESCHEDULED)
        require_may_book(None, old.student_user, old.course, session)
        if by_student:
            _check_cancel_window(old, now, "move")
        # Retire the old booking first, so neither its seats nor its time block the move (and
        # PostgreSQL's exclusion constraint sees no overlap); a failure below rolls this back.
        old.status = BookingStatus.RESCHEDULED
        old.calendar_sequence += 1
        old.save(update_fields=["status", "calendar_sequence", "updated_at"])
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
                status=BookingStatus.PENDING if needs_approval else BookingStatus.CONFIRMED,
                how="reschedule",
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
            new = create_group_booking(
                model,
                student=old.student_user,
                session=session,
                seats=old.seats_reserved,
                policy=policy,
                note=old.student_note,
                rescheduled_from=old,
                status=BookingStatus.PENDING if needs_approval else BookingStatus.CONFIRMED,
                how="reschedule",
            )
        # A rescheduled occurrence of a series stays in its series.
        BookingSeriesItem.objects.filter(booking=old).update(
            booking=new, session_id=new.session_id, updated_at=now
        )
        announce(
            old,
            actor=actor,
            old=BookingStatus.CONFIRMED,
            reason=reason,
            new_booking=new,
            notice=False,
        )
        announce(new, actor=actor, old="", reason=reason, rescheduled_from=old.pk, notice=False)
        write(
            [
                booking_notice(
                    new,
                    actor=actor,
                    old="",
                    reason=reason,
                    kind=NotificationKind.BOOKING_RESCHEDULED,
                    also=(old.teacher_id,),  # the seat may move to another teacher's session
                    old_booking=old.pk,
                    old_start=old.start_at_utc,
                    old_end=old.end_at_utc,
                )
            ]
        )
    return new


# A lesson's meeting details ----------------------------------------------------------------


@retry_on_deadlock
def set_lesson_meeting(booking: Any, *, actor: Any = None, **meeting: str) -> Any:
    """Give or change an active one-on-one lesson's meeting details (teacher or staff): the
    given fields of ``meeting_link``, ``meeting_id`` and ``meeting_passcode`` replace the
    lesson's (an empty string clears one). A change raises the calendar SEQUENCE and tells
    the student (and the teacher, when someone else made it)."""
    meeting = clean_meeting(meeting)
    require_manager(actor, booking, "change this lesson's meeting details")
    if booking.booking_type != BookingType.ONE_ON_ONE:
        raise InvalidInput(
            "A group booking's meeting details are its session's.", field="meeting_link"
        )
    if not meeting:
        raise InvalidInput("Give at least one of: " + ", ".join(LESSON_MEETING_FIELDS) + ".")
    with transaction.atomic():
        locked = get_booking_model().objects.select_for_update().get(pk=booking.pk)
        if not locked.is_active:
            raise InvalidTransition(
                f"This lesson is {locked.current_status}; only a pending or confirmed lesson "
                "gets meeting details.",
                status=locked.current_status,
            )
        changed = [name for name, value in meeting.items() if getattr(locked, name) != value]
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, meeting[name])
        locked.calendar_sequence += 1
        locked.save(update_fields=[*changed, "calendar_sequence", "updated_at"])
        teacher = [] if same_user(actor, locked.teacher_id) else [locked.teacher_id]
        notify(
            NotificationKind.SESSION_DETAILS_CHANGED,
            recipients=[locked.student_user_id, *teacher],
            booking=locked,
            actor=actor,
            changed=sorted(changed),
            sequence=locked.calendar_sequence,
        )
    return locked
