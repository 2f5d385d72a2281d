"""Planning a series' occurrences: each one decided in memory (a lesson against the
teacher's schedule, a seat against the matched session, the host's ``check_booking`` on the
row it would be) after loading and locking what decides it, with the per-occurrence report.
Nothing here writes a booking; :mod:`.series_write` does, and :mod:`.series` runs the
lifecycle (create, pause, resume, cancel, extend, complete)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import F, Q

from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    OPEN_WAITLIST_STATUSES,
    BookingStatus,
    BookingType,
    SeriesItemStatus,
    SeriesType,
    SessionStatus,
    WaitlistStatus,
)
from ..exceptions import (
    AlreadyBooked,
    BookingError,
    BookingRefused,
    NotAllowed,
    SeriesConflict,
    SessionNotBookable,
)
from ..models import (
    BookingSeriesItem,
    SessionWaitlist,
    get_booking_model,
    get_session_model,
)
from ..policies import get_policy_resolver
from ..querysets import overdue_requests
from ..recurrence import Occurrence, SkippedTime
from .attempts import BookingAttempt, build_booking
from .availability import TeacherSchedule
from .common import lock_users
from .rules import (
    check_student_totals,
    limits_for,
)
from .transitions import (
    settle_session,
    settle_teacher,
)

# The per-occurrence report --------------------------------------------------------------


@dataclass
class OccurrenceResult:
    """What happened to one occurrence (``item`` is its :class:`BookingSeriesItem`)."""

    item: Any
    detail: str = ""
    #: The unsaved booking planned for this occurrence (written by ``_write``).
    row: Any = None

    @property
    def status(self) -> str:
        """``booked`` or ``pending`` (by the booking's status), ``waitlisted``,
        ``awaiting_session``, ``skipped``, ``paused`` or ``cancelled``."""
        item = self.item
        if item.status == SeriesItemStatus.BOOKED and item.booking is not None:
            confirmed = item.booking.status == BookingStatus.CONFIRMED
            return "booked" if confirmed else str(item.booking.status)
        return str(item.status)

    @property
    def failed(self) -> bool:
        return bool(self.item.status == SeriesItemStatus.SKIPPED)

    def as_dict(self) -> dict[str, Any]:
        item = self.item
        return {
            "occurrence_index": item.occurrence_index,
            "start_at_utc": item.start_at_utc,
            "end_at_utc": item.end_at_utc,
            "status": self.status,
            "code": item.code,
            "detail": self.detail,
            "booking": item.booking_id,
            "session": item.session_id,
            "waitlist_entry": item.waitlist_entry_id,
        }


@dataclass
class SeriesReport:
    """The series and one result per occurrence worked on, in order, plus the local times the
    rule named that do not exist (skipped, RFC 5545)."""

    series: Any
    occurrences: list[OccurrenceResult] = field(default_factory=list)
    skipped_times: list[SkippedTime] = field(default_factory=list)

    @property
    def failures(self) -> list[OccurrenceResult]:
        return [result for result in self.occurrences if result.failed]

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(result.status for result in self.occurrences))

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "occurrences": [result.as_dict() for result in self.occurrences],
            "skipped_times": [skipped.as_dict() for skipped in self.skipped_times],
        }


def series_conflict(report: SeriesReport, message: str) -> SeriesConflict:
    data = report.as_dict()
    for result in data["occurrences"]:
        for name in ("start_at_utc", "end_at_utc"):
            result[name] = result[name].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return SeriesConflict(message, **data)


def skip_occurrence(result: OccurrenceResult, error: BookingError) -> None:
    result.item.status, result.item.code, result.detail = (
        SeriesItemStatus.SKIPPED,
        error.code,
        error.detail,
    )
    result.item.booking = result.item.session = result.item.waitlist_entry = None


def occurrence_result(series: Any, occurrence: Occurrence) -> OccurrenceResult:
    item = BookingSeriesItem(
        series=series,
        occurrence_index=occurrence.index,
        start_at_utc=occurrence.start,
        end_at_utc=occurrence.end,
        status=SeriesItemStatus.BOOKED,
    )
    return OccurrenceResult(item)


def refuse_failures(report: SeriesReport, accept_partial: bool) -> None:
    failures = report.failures
    if failures and not accept_partial:
        first = failures[0]
        raise series_conflict(
            report,
            f"{len(failures)} of {len(report.occurrences)} occurrences cannot be booked "
            f"(the first, #{first.item.occurrence_index}: {first.detail}); nothing was "
            "booked. Change the rule or accept a partial series.",
        )
    if failures and len(failures) == len(report.occurrences):
        raise series_conflict(report, "No occurrence of this series can be booked.")


# Planning: decide each occurrence in memory, after loading what decides it --------------


def plan_occurrences(series: Any, results: list[OccurrenceResult], now: datetime) -> None:
    if not results:
        return
    if series.type == SeriesType.ONE_ON_ONE_SERIES:
        _plan_lessons(series, results, now)
    else:
        # The teacher's row lock orders a group series and the creation of the sessions it
        # waits for: whichever comes second sees the other (see enrol_waiting_series). The
        # student's row orders the checks of the student's limits.
        lock_users(series.teacher, series.student_user)
        plan_seats(
            series.student_user,
            series.teacher,
            series.course,
            results,
            _sessions_at(series, results),
            now,
        )


def _plan_lessons(series: Any, results: list[OccurrenceResult], now: datetime) -> None:
    # One teacher's one-on-one bookings are decided one run at a time (as single requests);
    # the student's row orders the checks of the student's limits.
    lock_users(series.teacher, series.student_user)
    schedule = TeacherSchedule.load(
        series.teacher,
        series.course,
        results[0].item.start_at_utc,
        results[-1].item.end_at_utc,
        now=now,
    )
    policy = schedule.policy
    needs_approval = policy.requires_approval_for_one_on_one
    status = BookingStatus.PENDING if needs_approval else BookingStatus.CONFIRMED
    accepted: list[BookingAttempt] = []
    for result in results:
        item = result.item
        error = schedule.first_violation(item.start_at_utc, item.end_at_utc)
        if error is None:
            attempt = BookingAttempt(
                how="series",
                booking_type=BookingType.ONE_ON_ONE,
                student=series.student_user,
                teacher=series.teacher,
                course=series.course,
                start=item.start_at_utc,
                end=item.end_at_utc,
                series=series,
                occurrence=item.occurrence_index,
                earlier=tuple(accepted),
            )
            try:
                result.row = build_booking(
                    attempt,
                    status=status,
                    policy=policy,
                    now=now,
                    blocked=schedule.blocked_range(item.start_at_utc, item.end_at_utc),
                )
                accepted.append(attempt)
            except BookingRefused as refusal:
                error = refusal
        if error is not None:
            skip_occurrence(result, error)
            continue
        schedule.reserve(item.start_at_utc, item.end_at_utc)
        item.status, item.code, item.booking = SeriesItemStatus.BOOKED, "", None
    series.lesson_policy = policy


def _matching_sessions(teacher_id: Any, course_id: Any, starts: list[datetime]) -> Any:
    return get_session_model().objects.filter(
        teacher_id=teacher_id,
        course_id=course_id,
        status=SessionStatus.SCHEDULED,
        start_at_utc__in=starts,
    )


def settle_occurrences(series: Any, results: list[OccurrenceResult], now: datetime) -> None:
    """Before planning, as a single booking does: expire the requests past their approval
    timeout that hold the time or seats wanted (the teacher's lessons; the matching
    sessions' seats), and settle the waitlists owed a seat — an offer past its time, or a
    free seat while students wait — so a series never jumps a queue."""
    if series.type == SeriesType.ONE_ON_ONE_SERIES:
        settle_teacher(series.teacher, now)
        return
    starts = [result.item.start_at_utc for result in results]
    sessions = _matching_sessions(series.teacher_id, series.course_id, starts)
    owed = Q(status=WaitlistStatus.OFFERED, offer_expires_at__lte=now) | Q(
        status=WaitlistStatus.WAITING, session__seats_taken__lt=F("session__capacity")
    )
    due = set(
        SessionWaitlist.objects.filter(owed, session__in=sessions).values_list(
            "session_id", flat=True
        )
    )
    due |= set(
        get_booking_model()
        .objects.filter(overdue_requests(now), session__in=sessions)
        .values_list("session_id", flat=True)
    )
    for session_pk in sorted(due, key=str):
        settle_session(session_pk, now)


def check_series_limits(
    series: Any, results: list[OccurrenceResult], now: datetime, *, new_series: bool = False
) -> None:
    """The student's limits, counted under the locks :func:`_plan` took: the bookings and
    waitlist entries this run adds, one more active series when it is new, and (a lesson
    series waiting for approval) one more pending request to the teacher."""
    student = series.student_user
    limits = limits_for(student, series.teacher, series.course)
    bookings = sum(
        1 for r in results if r.item.status == SeriesItemStatus.BOOKED and r.item.booking is None
    )
    entries = len(
        {
            id(r.item.waitlist_entry)
            for r in results
            if r.item.status == SeriesItemStatus.WAITLISTED
            and (
                r.item.waitlist_entry.pk is None
                or r.item.waitlist_entry.status not in OPEN_WAITLIST_STATUSES
            )
        }
    )
    lesson_policy = getattr(series, "lesson_policy", None)
    pending = bookings and lesson_policy and lesson_policy.requires_approval_for_one_on_one
    check_student_totals(
        student,
        limits,
        now,
        bookings=bookings,
        entries=entries,
        series=int(new_series),
        pending_to=series.teacher if pending else None,
    )


def _sessions_at(series: Any, results: list[OccurrenceResult]) -> dict[datetime, Any]:
    """Lock and return the teacher's scheduled sessions of the course starting at the
    occurrences, by start (the first by primary key where two start together)."""
    starts = [result.item.start_at_utc for result in results]
    sessions = list(
        _matching_sessions(series.teacher_id, series.course_id, starts)
        .select_for_update()
        .order_by("pk")
    )
    by_start: dict[datetime, Any] = {}
    for session in sessions:
        by_start.setdefault(session.start_at_utc, session)
    return by_start


def plan_seats(
    student: Any,
    teacher: Any,
    course: Any,
    results: list[OccurrenceResult],
    sessions: dict[datetime, Any],
    now: datetime,
    students: list[Any] | None = None,
) -> None:
    """Decide each occurrence of a group series against its (locked) session: a seat, the
    waitlist of a full session, or waiting for a session. ``students`` (one per result) lets
    several series' students be placed at once; by default all are ``student``."""
    students = students or [student] * len(results)
    session_pks = [session.pk for session in sessions.values()]
    student_pks = {person.pk for person in students}
    booked = set(
        get_booking_model()
        .objects.filter(
            session_id__in=session_pks,
            student_user_id__in=student_pks,
            status__in=ACTIVE_BOOKING_STATUSES,
        )
        .values_list("session_id", "student_user_id")
    )
    entries = {
        (entry.session_id, entry.student_user_id): entry
        for entry in SessionWaitlist.objects.filter(
            session_id__in=session_pks, student_user_id__in=student_pks
        )
    }
    free = {session.pk: session.capacity - session.seats_taken for session in sessions.values()}
    resolver = get_policy_resolver()
    # The sessions matched are the teacher's of the course: one policy for all.
    policy = resolver.get_policy(teacher, course) if sessions else None
    status = (
        BookingStatus.PENDING
        if policy is not None and policy.requires_approval_for_group
        else BookingStatus.CONFIRMED
    )
    accepted: list[BookingAttempt] = []
    for result, person in zip(results, students, strict=True):
        item = result.item
        session = sessions.get(item.start_at_utc)
        item.session, item.waitlist_entry, item.booking, item.code = session, None, None, ""
        if session is None:
            if item.start_at_utc <= now:
                skip_occurrence(result, SessionNotBookable("No session took place at this time."))
            else:
                item.status = SeriesItemStatus.AWAITING_SESSION
                result.detail = "The teacher has no session at this time yet."
            continue
        if session.start_at_utc <= now:
            skip_occurrence(result, SessionNotBookable("This session has already started."))
        elif not resolver.can_book(person, course, session):
            skip_occurrence(result, NotAllowed("You may not book this session."))
        elif (session.pk, person.pk) in booked:
            skip_occurrence(result, AlreadyBooked("You already hold a booking for this session."))
        elif (entry := entries.get((session.pk, person.pk))) is not None and (
            entry.status in OPEN_WAITLIST_STATUSES
        ):
            item.status, item.waitlist_entry = SeriesItemStatus.WAITLISTED, entry
            result.detail = "Already on this session's waitlist."
        elif free[session.pk] >= 1:
            attempt = BookingAttempt(
                how="series",
                booking_type=BookingType.GROUP_SESSION,
                student=person,
                teacher=teacher,
                course=course,
                start=session.start_at_utc,
                end=session.end_at_utc,
                session=session,
                series=item.series,
                occurrence=item.occurrence_index,
                earlier=tuple(a for a in accepted if a.student == person),
            )
            try:
                result.row = build_booking(attempt, status=status, policy=policy, now=now)
            except BookingRefused as refusal:
                skip_occurrence(result, refusal)
                continue
            accepted.append(attempt)
            free[session.pk] -= 1
            booked.add((session.pk, person.pk))
            item.status = SeriesItemStatus.BOOKED
        else:
            item.status = SeriesItemStatus.WAITLISTED
            result.detail = "The session is full: on its waitlist."
            item.waitlist_entry = entries.get((session.pk, person.pk)) or SessionWaitlist(
                session=session, student_user=person
            )
            entries[(session.pk, person.pk)] = item.waitlist_entry
