"""Recurring series: a weekly lesson for a term, or enrolment in a recurring group class.

A series expands its rule (:mod:`liveclass_booking.recurrence`, in local wall time) into
occurrences and books each one under the same rules as a single booking, with a constant
number of queries however long the series:

* ``one_on_one_series``: every occurrence is checked by the one function that answers "is this
  interval bookable?" (:meth:`TeacherSchedule.first_violation`: availability, notice, buffers, daily
  limit, overlaps, the series' own earlier occurrences included) and becomes a one-on-one
  booking;
* ``group_series``: every occurrence is matched to the teacher's scheduled session of the
  course starting at that instant; the student takes a seat, joins the waitlist of a full
  session, or (no session yet) waits for the teacher to create one, which then enrols the
  student at once.

Every occurrence gets a :class:`BookingSeriesItem`, booked or not, so the series keeps its
history; changing or cancelling one occurrence's booking never touches the others.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from .. import signals
from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    OPEN_WAITLIST_STATUSES,
    BookingStatus,
    BookingType,
    NotificationKind,
    SeriesItemStatus,
    SeriesStatus,
    SeriesType,
    SessionStatus,
    WaitlistStatus,
)
from ..exceptions import (
    AlreadyBooked,
    BookingError,
    BookingRefused,
    InvalidInput,
    InvalidTransition,
    NotAllowed,
    SeriesConflict,
    SessionNotBookable,
    SlotUnavailable,
)
from ..models import (
    BookingEvent,
    BookingSeries,
    BookingSeriesItem,
    SessionWaitlist,
    get_booking_model,
    get_session_model,
)
from ..policies import get_policy_resolver
from ..querysets import overdue_requests
from ..recurrence import Occurrence, Recurrence, SkippedTime
from .attempts import BookingAttempt, build_booking
from .availability import TeacherSchedule
from .common import is_staff, lock_users, require_manager, same_user, send_after_commit
from .outbox import notify, write
from .rules import (
    check_student_totals,
    limits_for,
    require_bounded_text,
    require_may_book,
    require_teacher,
)
from .transitions import (
    APPROVAL_TIMEOUT_REASON,
    SIGNAL_FOR_STATUS,
    booking_notice,
    settle_session,
    settle_teacher,
    transition,
)
from .waitlist import leave_waitlist, reset_entry

#: Fields a series takes from the request besides its rule.
MEETING_FIELDS = ("default_meeting_link", "default_meeting_id", "default_meeting_passcode")


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


def _conflict(report: SeriesReport, message: str) -> SeriesConflict:
    data = report.as_dict()
    for result in data["occurrences"]:
        for name in ("start_at_utc", "end_at_utc"):
            result[name] = result[name].astimezone(UTC).isoformat().replace("+00:00", "Z")
    return SeriesConflict(message, **data)


def _skip(result: OccurrenceResult, error: BookingError) -> None:
    result.item.status, result.item.code, result.detail = (
        SeriesItemStatus.SKIPPED,
        error.code,
        error.detail,
    )
    result.item.booking = result.item.session = result.item.waitlist_entry = None


# Creating ---------------------------------------------------------------------------------


def create_series(
    *,
    student: Any,
    teacher: Any,
    course: Any,
    series_type: str,
    rule: Recurrence,
    accept_partial: bool = False,
    note: str = "",
    actor: Any = None,
    **meeting: Any,
) -> SeriesReport:
    """Create a series and book its occurrences; return the per-occurrence report.

    All-or-nothing by default: if any occurrence cannot be booked nothing is created and
    ``series_conflict`` (409) carries the report. With ``accept_partial`` the bookable
    occurrences are booked and the others are kept as ``skipped`` with their error code.
    """
    if series_type not in SeriesType.values:
        raise InvalidInput(
            f"type must be one of {', '.join(SeriesType.values)}.",
            field="type",
            errors={"type": ["Not a series type."]},
        )
    unknown = set(meeting) - set(MEETING_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    require_bounded_text(student_note=note)
    expansion = rule.expand()
    if same_user(student, teacher.pk):
        raise InvalidInput("A teacher cannot book a series with themselves.", field="teacher")
    require_may_book(actor, student, course)
    require_teacher(teacher, course)
    series = BookingSeries(
        student_user=student,
        teacher=teacher,
        course=course,
        type=series_type,
        status=SeriesStatus.ACTIVE,
        **{name: getattr(rule, name) for name in Recurrence.RULE_FIELDS},
        **meeting,
    )
    _validate(series)
    results = [_new_result(series, occurrence) for occurrence in expansion.occurrences]
    report = SeriesReport(series, results, expansion.skipped)
    now = timezone.now()
    _settle(series, results, now)
    with transaction.atomic():
        _plan(series, results, now)
        _refuse_failures(report, accept_partial)
        _check_limits(series, results, now, new_series=True)
        series.save()
        # Waitlist order is the time the locks were granted, as for a single join.
        _write(series, results, actor=actor, note=note, now=timezone.now())
        _tell_series(NotificationKind.SERIES_CREATED, series, actor=actor, report=report)
        send_after_commit(
            signals.series_created, BookingSeries, series=series, report=report, actor=actor
        )
    return report


def _tell_series(
    kind: str, series: Any, *, actor: Any, report: SeriesReport | None = None, reason: str = ""
) -> None:
    """The outbox event of a series change, to its student and teacher; ``report`` adds the
    summary (how many occurrences were booked, waitlisted, skipped, ...) and the first one."""
    summary: dict[str, Any] = {}
    if report is not None:
        summary["counts"] = report.counts
        booked = [r.item for r in report.occurrences if r.item.booking is not None]
        if booked:
            summary["first_start"] = booked[0].start_at_utc
    notify(
        kind,
        recipients=[series.student_user_id, series.teacher_id],
        series=series,
        actor=actor,
        reason=reason,
        **summary,
    )


def _validate(series: Any) -> None:
    try:
        series.clean_fields(exclude=["student_user", "teacher", "course"])
    except ValidationError as exc:
        first = next(iter(exc.message_dict.values()))[0]
        raise InvalidInput(first, errors=exc.message_dict) from exc


def _new_result(series: Any, occurrence: Occurrence) -> OccurrenceResult:
    item = BookingSeriesItem(
        series=series,
        occurrence_index=occurrence.index,
        start_at_utc=occurrence.start,
        end_at_utc=occurrence.end,
        status=SeriesItemStatus.BOOKED,
    )
    return OccurrenceResult(item)


def _refuse_failures(report: SeriesReport, accept_partial: bool) -> None:
    failures = report.failures
    if failures and not accept_partial:
        first = failures[0]
        raise _conflict(
            report,
            f"{len(failures)} of {len(report.occurrences)} occurrences cannot be booked "
            f"(the first, #{first.item.occurrence_index}: {first.detail}); nothing was "
            "booked. Change the rule or accept a partial series.",
        )
    if failures and len(failures) == len(report.occurrences):
        raise _conflict(report, "No occurrence of this series can be booked.")


# Planning: decide each occurrence in memory, after loading what decides it --------------


def _plan(series: Any, results: list[OccurrenceResult], now: datetime) -> None:
    if not results:
        return
    if series.type == SeriesType.ONE_ON_ONE_SERIES:
        _plan_lessons(series, results, now)
    else:
        # The teacher's row lock orders a group series and the creation of the sessions it
        # waits for: whichever comes second sees the other (see enrol_waiting_series). The
        # student's row orders the checks of the student's limits.
        lock_users(series.teacher, series.student_user)
        _plan_seats(
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
            _skip(result, error)
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


def _settle(series: Any, results: list[OccurrenceResult], now: datetime) -> None:
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


def _check_limits(
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


def _plan_seats(
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
                _skip(result, SessionNotBookable("No session took place at this time."))
            else:
                item.status = SeriesItemStatus.AWAITING_SESSION
                result.detail = "The teacher has no session at this time yet."
            continue
        if session.start_at_utc <= now:
            _skip(result, SessionNotBookable("This session has already started."))
        elif not resolver.can_book(person, course, session):
            _skip(result, NotAllowed("You may not book this session."))
        elif (session.pk, person.pk) in booked:
            _skip(result, AlreadyBooked("You already hold a booking for this session."))
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
                _skip(result, refusal)
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


# Writing: a constant number of statements for the whole run ------------------------------


def _write(
    series: Any,
    results: list[OccurrenceResult],
    *,
    actor: Any,
    note: str,
    now: datetime,
) -> None:
    """Create the bookings and waitlist entries the plan decided, then save the items (new
    ones created, existing ones updated) and audit and signal each booking after commit."""
    model = get_booking_model()
    to_book = [
        r for r in results if r.item.status == SeriesItemStatus.BOOKED and r.item.booking is None
    ]
    lesson = series.type == SeriesType.ONE_ON_ONE_SERIES
    bookings: list[Any] = []
    for result in to_book:
        booking = result.row  # built by the plan, the host's rules passed
        booking.student_note = note
        bookings.append(booking)
    try:
        with transaction.atomic():
            model.objects.bulk_create(bookings)
            if not lesson:
                _take_seats([booking.session_id for booking in bookings])
    except IntegrityError as exc:
        # The exclusion constraint (PostgreSQL) or a seat or uniqueness constraint refused
        # what the locks should have prevented: nothing of the run is kept.
        raise SlotUnavailable("The teacher's calendar changed; try again.") from exc
    for result, booking in zip(to_book, bookings, strict=True):
        result.item.booking = booking
    _write_entries([r.item for r in results if r.item.status == SeriesItemStatus.WAITLISTED], now)
    items = [r.item for r in results]
    new = [item for item in items if item.pk is None]
    old = [item for item in items if item.pk is not None]
    for item in items:
        item.updated_at = now
    BookingSeriesItem.objects.bulk_create(new)
    if old:
        BookingSeriesItem.objects.bulk_update(
            old, ["status", "code", "booking", "session", "waitlist_entry", "updated_at"]
        )
    by_booking = {id(r.item.booking): r.item for r in to_book}
    BookingEvent.objects.bulk_create(
        [
            BookingEvent(
                booking=booking,
                actor=actor,
                from_status="",
                to_status=booking.status,
                reason="",
                data={
                    "series": by_booking[id(booking)].series_id,
                    "occurrence": by_booking[id(booking)].occurrence_index,
                },
            )
            for booking in bookings
        ]
    )
    for booking in bookings:
        send_after_commit(
            SIGNAL_FOR_STATUS[booking.status],
            model,
            booking=booking,
            actor=actor,
            from_status="",
            to_status=booking.status,
        )


def _take_seats(session_pks: list[Any]) -> None:
    """One UPDATE adds each session's new seats (the sessions are locked; the database's
    CHECK keeps ``seats_taken`` within ``capacity`` regardless)."""
    counts = Counter(session_pks)
    if not counts:
        return
    get_session_model().objects.filter(pk__in=list(counts)).update(
        seats_taken=F("seats_taken")
        + Case(
            *[When(pk=pk, then=Value(n)) for pk, n in counts.items()],
            default=Value(0),
            output_field=IntegerField(),
        )
    )


def _write_entries(items: list[Any], now: datetime) -> None:
    """Join the waitlists the plan decided: new entries and rejoined closed ones go to the
    back of their queue now, in plan order; open entries stay where they are."""
    joining = [
        item.waitlist_entry
        for item in items
        if item.waitlist_entry.pk is None
        or item.waitlist_entry.status not in OPEN_WAITLIST_STATUSES
    ]
    seen: set[int] = set()
    fresh: list[Any] = []
    rejoined: list[Any] = []
    for offset, entry in enumerate(joining):
        if id(entry) in seen:
            continue
        seen.add(id(entry))
        reset_entry(entry, now + timedelta(microseconds=offset))
        (rejoined if entry.pk else fresh).append(entry)
    SessionWaitlist.objects.bulk_create(fresh)
    if rejoined:
        SessionWaitlist.objects.bulk_update(
            rejoined,
            [
                "status",
                "created_at",
                "offered_at",
                "offer_expires_at",
                "accepted_at",
                "expired_at",
                "left_at",
                "booking",
            ],
        )


# A session created later enrols the series waiting for it --------------------------------


def enrol_waiting_series(sessions: list[Any]) -> int:
    """Enrol the students of active group series whose occurrence waits for a session at the
    start of one of ``sessions`` (just created, same teacher and course). Returns how many
    occurrences were placed.

    Takes the teacher's row lock first, as group series creation does, so that a series
    created at the same time either sees these sessions or is seen here."""
    if not sessions:
        return 0
    teacher, course_id = sessions[0].teacher, sessions[0].course_id
    lock_users(teacher)
    # Lock the items only (not their series rows: an extend holds its series, then waits
    # for the teacher lock held here).
    of = ("self",) if connection.features.has_select_for_update_of else ()
    items = list(
        BookingSeriesItem.objects.select_for_update(of=of)
        .select_related("series__student_user", "series__course")
        .filter(
            status=SeriesItemStatus.AWAITING_SESSION,
            start_at_utc__in=[session.start_at_utc for session in sessions],
            series__status=SeriesStatus.ACTIVE,
            series__type=SeriesType.GROUP_SERIES,
            series__teacher_id=teacher.pk,
            series__course_id=course_id,
        )
        .order_by("series__created_at", "series_id", "occurrence_index")
    )
    if not items:
        return 0
    locked = (
        get_session_model()
        .objects.select_for_update()
        .filter(pk__in=[session.pk for session in sessions])
        .order_by("pk")
    )
    by_start = {session.start_at_utc: session for session in locked}
    now = timezone.now()  # after the locks: waitlist order
    results = [OccurrenceResult(item) for item in items]
    students = [item.series.student_user for item in items]
    _plan_seats(None, teacher, items[0].series.course, results, by_start, now, students=students)
    _write(items[0].series, results, actor=None, note="", now=now)
    write(
        [
            booking_notice(item.booking, actor=None, old="", series=item.series_id)
            for item in items
            if item.booking is not None
        ]
    )
    return len(items)


# Pause, resume, cancel, extend, complete -------------------------------------------------


def _require_party(actor: Any, series: Any, action: str) -> None:
    """The series' student, its teacher (as the resolver's ``can_manage`` allows), staff and
    the system may change a series."""
    if actor is None or is_staff(actor) or same_user(actor, series.student_user_id):
        return
    require_manager(actor, series, action)


def _require_still_bookable(series: Any) -> None:
    """Booking again (resume, extend) needs the resolver's ``can_book`` as booking did."""
    if not get_policy_resolver().can_book(series.student_user, series.course):
        raise NotAllowed("The student may no longer book this course.")


def _lock(series: Any, now: datetime, *allowed: str) -> Any:
    """Lock the series and check its status (the caller has completed it first if its last
    occurrence has passed, outside its transaction so that this is kept when it fails)."""
    locked = BookingSeries.objects.select_for_update().get(pk=series.pk)
    if locked.status not in allowed:
        raise InvalidTransition(
            f"A {locked.status} series cannot be changed this way "
            f"(only a {' or '.join(allowed)} one).",
            status=locked.status,
        )
    return locked


def _stop_future(
    series: Any, *, actor: Any, now: datetime, to: str, reason: str
) -> list[OccurrenceResult]:
    """Cancel the bookings and leave the waitlists of the occurrences still to come, and mark
    them ``to`` (``paused`` or ``cancelled``). A student keeps the occurrences inside the
    cancel window, as with a single booking; past occurrences are never touched."""
    by_student = same_user(actor, series.student_user_id) and not is_staff(actor)
    keep_until = now
    if by_student:
        policy = get_policy_resolver().get_policy(series.teacher, series.course)
        keep_until = now + timedelta(hours=policy.cancel_window_hours)
    # Lock the occurrences first, so that a session created meanwhile cannot enrol one of
    # them behind this change (enrol_waiting_series locks them too).
    future = series.items.filter(start_at_utc__gt=now)
    list(future.select_for_update().values_list("pk", flat=True))
    items = list(future.select_related("booking", "waitlist_entry"))
    changed: list[Any] = []
    results = []
    for item in items:
        result = OccurrenceResult(item)
        results.append(result)
        if item.status == SeriesItemStatus.BOOKED:
            if item.booking is None or item.booking.status not in ACTIVE_BOOKING_STATUSES:
                continue  # cancelled, declined or moved one by one: its own history
            if item.booking.approval_is_overdue:  # nobody decided in time: it expires
                transition(
                    item.booking, BookingStatus.EXPIRED, actor=None, reason=APPROVAL_TIMEOUT_REASON
                )
            elif item.start_at_utc <= keep_until:
                result.detail = "Inside the cancel window: kept."
                continue
            else:
                transition(
                    item.booking,
                    BookingStatus.CANCELLED,
                    actor=actor,
                    notice=False,  # the series event tells both parties
                    reason=reason or f"series {to}",
                    cancelled_by=actor,
                    cancelled_at=now,
                    cancel_reason=reason,
                )
        elif item.status == SeriesItemStatus.WAITLISTED:
            entry = item.waitlist_entry
            if entry is not None and entry.status in OPEN_WAITLIST_STATUSES:
                leave_waitlist(entry, actor=None)
        elif item.status in (SeriesItemStatus.CANCELLED, SeriesItemStatus.SKIPPED):
            continue
        item.status = to
        item.updated_at = now
        changed.append(item)
    BookingSeriesItem.objects.bulk_update(changed, ["status", "updated_at"])
    return results


def pause_series(series: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Pause an active series: its future occurrences' bookings are cancelled (seats and the
    teacher's time freed, waitlists left) and the occurrences marked ``paused``; the booked
    past stays. :func:`resume_series` books them again where still possible."""
    require_bounded_text(reason=reason)
    _require_party(actor, series, "pause this series")
    now = timezone.now()
    complete_series(now, series=series)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.ACTIVE)
        _stop_future(locked, actor=actor, now=now, to=SeriesItemStatus.PAUSED, reason=reason)
        locked.status = SeriesStatus.PAUSED
        locked.save(update_fields=["status", "updated_at"])
        _tell_series(NotificationKind.SERIES_PAUSED, locked, actor=actor, reason=reason)
    return locked


def resume_series(series: Any, *, actor: Any = None) -> SeriesReport:
    """Resume a paused series: each paused occurrence still to come is booked again under
    the usual rules (or waitlisted, or skipped with its code); returns the report."""
    _require_party(actor, series, "resume this series")
    now = timezone.now()
    complete_series(now, series=series)
    paused = series.items.filter(status=SeriesItemStatus.PAUSED, start_at_utc__gt=now)
    _settle(series, [OccurrenceResult(item) for item in paused], now)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.PAUSED)
        _require_still_bookable(locked)
        items = list(
            locked.items.filter(status=SeriesItemStatus.PAUSED, start_at_utc__gt=now).order_by(
                "occurrence_index"
            )
        )
        results = [OccurrenceResult(item) for item in items]
        report = SeriesReport(locked, results)
        _plan(locked, results, now)
        _check_limits(locked, results, now, new_series=True)
        _write(locked, results, actor=actor, note="", now=timezone.now())
        locked.status = SeriesStatus.ACTIVE
        locked.save(update_fields=["status", "updated_at"])
        _tell_series(NotificationKind.SERIES_RESUMED, locked, actor=actor, report=report)
    return report


def cancel_series(series: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Cancel an active or paused series: only the occurrences still to come are cancelled
    (past ones, their bookings and attendance stay as they were)."""
    require_bounded_text(reason=reason)
    _require_party(actor, series, "cancel this series")
    now = timezone.now()
    complete_series(now, series=series)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.ACTIVE, SeriesStatus.PAUSED)
        _stop_future(locked, actor=actor, now=now, to=SeriesItemStatus.CANCELLED, reason=reason)
        locked.status = SeriesStatus.CANCELLED
        locked.save(update_fields=["status", "updated_at"])
        _tell_series(NotificationKind.SERIES_CANCELLED, locked, actor=actor, reason=reason)
    return locked


def extend_series(
    series: Any,
    *,
    occurrence_count: int | None = None,
    until_date: date | None = None,
    accept_partial: bool = False,
    actor: Any = None,
) -> SeriesReport:
    """Extend an active series to more occurrences or a later until date and book the new
    ones (all-or-nothing unless ``accept_partial``, as at creation)."""
    _require_party(actor, series, "extend this series")
    if (occurrence_count is None) == (until_date is None):
        raise InvalidInput(
            "Give exactly one of occurrence_count and until_date.", field="occurrence_count"
        )
    now = timezone.now()
    complete_series(now, series=series)
    # Settle what the new occurrences need before any lock (users come before sessions in
    # the lock order; the series row, locked below, comes first of all).
    _settle(series, _extension(series, occurrence_count, until_date)[0], now)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.ACTIVE)
        _require_still_bookable(locked)
        results, skipped = _extension(locked, occurrence_count, until_date)
        report = SeriesReport(locked, results, skipped)
        _plan(locked, results, now)
        _refuse_failures(report, accept_partial)
        _check_limits(locked, results, now)
        locked.occurrence_count, locked.until_date = occurrence_count, until_date
        locked.save(update_fields=["occurrence_count", "until_date", "updated_at"])
        _write(locked, results, actor=actor, note="", now=timezone.now())
        _tell_series(NotificationKind.SERIES_EXTENDED, locked, actor=actor, report=report)
    return report


def _extension(
    series: Any, occurrence_count: int | None, until_date: date | None
) -> tuple[list[OccurrenceResult], list[SkippedTime]]:
    """The occurrences (and the skipped local times) extending ``series`` to
    ``occurrence_count`` occurrences or to ``until_date`` would add."""
    rule = replace(Recurrence.of(series), occurrence_count=occurrence_count, until_date=until_date)
    expansion = rule.expand()
    have = series.items.count()
    new = expansion.occurrences[have:]
    if not new:
        raise InvalidInput(
            f"The series already has {have} occurrences; this adds none.",
            field="occurrence_count" if occurrence_count is not None else "until_date",
        )
    last_old = series.items.order_by("-occurrence_index").values_list("start_at_utc", flat=True)[:1]
    after = last_old[0] if last_old else None
    skipped = [s for s in expansion.skipped if after is None or _skipped_after(s, after)]
    return [_new_result(series, occurrence) for occurrence in new], skipped


def _skipped_after(skipped: SkippedTime, instant: datetime) -> bool:
    return skipped.instant() > instant


def complete_series(now: datetime | None = None, *, series: Any = None) -> int:
    """Mark every active or paused series (or just ``series``) whose last occurrence has
    ended as completed; return how many. For a periodic job; every action on a series does
    it for that series first."""
    now = now or timezone.now()
    finished = BookingSeries.objects.filter(
        status__in=[SeriesStatus.ACTIVE, SeriesStatus.PAUSED]
    ).exclude(items__end_at_utc__gt=now)
    if series is not None:
        finished = finished.filter(pk=series.pk)
    return int(
        BookingSeries.objects.filter(pk__in=list(finished.values_list("pk", flat=True))).update(
            status=SeriesStatus.COMPLETED, updated_at=now
        )
    )


__all__ = [
    "OccurrenceResult",
    "SeriesReport",
    "cancel_series",
    "complete_series",
    "create_series",
    "enrol_waiting_series",
    "extend_series",
    "pause_series",
    "resume_series",
]
