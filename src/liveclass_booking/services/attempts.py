"""Every booking row is built here, for single bookings, series occurrences, reschedules and
waitlist seats alike, after the host's rules have seen the whole attempt (the resolver's
``check_booking``). Callers save the row inside their transaction (or bulk-create a run)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..choices import BookingStatus, BookingType
from ..models import get_booking_model
from ..policies import get_policy_resolver
from .rules import LESSON_MEETING_FIELDS, default_lesson_meeting
from .transitions import approval_deadline, next_sequence

#: How a booking comes to exist (``BookingAttempt.how``).
HOW = ("book", "request", "series", "reschedule", "waitlist")


@dataclass(frozen=True)
class BookingAttempt:
    """What is about to be booked, for the host's ``check_booking``.

    ``how``: ``book`` (a group seat booked directly), ``request`` (a one-on-one lesson),
    ``series`` (an occurrence of a series: ``series`` and ``occurrence`` say which),
    ``reschedule`` (``rescheduled_from`` is the booking it replaces) or ``waitlist`` (a
    waitlist offer accepted: ``waitlist_entry``). ``session`` is None for a lesson. A rule
    that counts the student's bookings counts ``earlier`` too: a series plans all its
    occurrences before it saves any."""

    how: str
    booking_type: str
    student: Any
    teacher: Any
    course: Any
    start: datetime
    end: datetime
    session: Any = None
    seats: int = 1
    series: Any = None
    occurrence: int | None = None
    rescheduled_from: Any = None
    waitlist_entry: Any = None
    #: The attempts of the same run (a series) let through before this one, not yet saved.
    earlier: tuple[BookingAttempt, ...] = ()

    @classmethod
    def for_session(cls, how: str, student: Any, session: Any, **more: Any) -> BookingAttempt:
        return cls(
            how=how,
            booking_type=BookingType.GROUP_SESSION,
            student=student,
            teacher=session.teacher,
            course=session.course,
            start=session.start_at_utc,
            end=session.end_at_utc,
            session=session,
            **more,
        )


def build_booking(
    attempt: BookingAttempt,
    *,
    status: str,
    policy: Any,
    now: datetime,
    note: str = "",
    blocked: tuple[datetime | None, datetime | None] = (None, None),
) -> Any:
    """The unsaved booking row of ``attempt`` with ``status`` (a pending one gets its
    approval deadline from ``policy``), once the host's ``check_booking`` let it through
    (it raises :class:`~liveclass_booking.exceptions.BookingRefused` otherwise)."""
    get_policy_resolver().check_booking(attempt)
    session = attempt.session
    if session is not None:
        where: dict[str, Any] = {
            "session_id": session.pk,
            "course_id": session.course_id,
            "teacher_id": session.teacher_id,
        }
    else:
        where = {"course": attempt.course, "teacher": attempt.teacher}
    booking = get_booking_model()(
        booking_type=attempt.booking_type,
        student_user=attempt.student,
        start_at_utc=attempt.start,
        end_at_utc=attempt.end,
        seats_reserved=attempt.seats,
        blocked_from_utc=blocked[0],
        blocked_until_utc=blocked[1],
        status=status,
        approval_expires_at=(
            approval_deadline(policy, attempt.start, now)
            if status == BookingStatus.PENDING
            else None
        ),
        student_note=note,
        rescheduled_from=attempt.rescheduled_from,
        calendar_sequence=next_sequence(attempt.rescheduled_from),
        **where,
    )
    if session is None:
        # A lesson keeps its meeting details when it moves; a new one confirmed at once gets
        # the host's default (one given later by the teacher replaces it).
        replaced = attempt.rescheduled_from
        if replaced is not None:
            meeting = {name: getattr(replaced, name) for name in LESSON_MEETING_FIELDS}
        elif status == BookingStatus.CONFIRMED:
            meeting = default_lesson_meeting(booking)
        else:
            meeting = {}
        for name, value in meeting.items():
            setattr(booking, name, value)
    return booking
