"""Recurring series under real concurrent connections on PostgreSQL and MariaDB/MySQL: threads, each
with its own connection, released together. Series racing each other and single bookings never
overbook a session, never double-book the teacher or break the daily limit, and an all-or-nothing
series is either booked whole or not at all."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, time, timedelta
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connections
from django.utils import timezone

from liveclass_booking import services
from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES
from liveclass_booking.choices import SeriesItemStatus as It
from liveclass_booking.choices import WaitlistStatus as W
from liveclass_booking.models import (
    BookingSeries,
    BookingSeriesItem,
    SessionWaitlist,
    TeacherBookingPolicy,
    get_booking_model,
    get_session_model,
)
from liveclass_booking.policies import get_policy_resolver
from liveclass_booking.recurrence import Recurrence
from liveclass_booking.services import series as series_services
from liveclass_booking.services import series_plan
from tests.concurrency import outcomes, race
from tests.test_waitlist_concurrency import assert_seats_exact, fresh, make_students

pytestmark = [pytest.mark.concurrent, pytest.mark.django_db(transaction=True)]

BERLIN = ZoneInfo("Europe/Berlin")
#: How an all-or-nothing series that lost its race is refused: by the plan (the winner is
#: already visible) or by the exclusion constraint (what the locks should have prevented).
REFUSED = {"series_conflict", "slot_unavailable"}


def first_day() -> date:
    """A Berlin date two weeks ahead: clear of the default 24 h notice, no clock to freeze."""
    return (timezone.now().astimezone(BERLIN) + timedelta(days=14)).date()


def weekly(count: int, *, start_date: date | None = None, at: time = time(17, 0)) -> Recurrence:
    return Recurrence(
        frequency="weekly",
        start_date=start_date or first_day(),
        start_time=at,
        timezone="Europe/Berlin",
        duration_minutes=60,
        occurrence_count=count,
    )


def lesson_series(student: Any, teacher: Any, course: Any, rule: Recurrence, **kw: Any) -> Any:
    return services.create_series(
        student=student,
        teacher=teacher,
        course=course,
        series_type="one_on_one_series",
        rule=rule,
        **kw,
    )


def active_lessons(teacher: Any) -> list[Any]:
    return list(
        get_booking_model()
        .objects.filter(
            teacher=teacher, booking_type="one_on_one", status__in=ACTIVE_BOOKING_STATUSES
        )
        .order_by("blocked_from_utc")
    )


def assert_no_overlapping_lessons(teacher: Any) -> list[Any]:
    """Pairwise: no two active one-on-one bookings of ``teacher`` block the same time."""
    lessons = active_lessons(teacher)
    for a, b in combinations(lessons, 2):
        overlap = (
            a.blocked_from_utc < b.blocked_until_utc and b.blocked_from_utc < a.blocked_until_utc
        )
        assert not overlap, (
            f"#{a.pk} ({a.student_user_id}) {a.blocked_from_utc}-{a.blocked_until_utc} overlaps "
            f"#{b.pk} ({b.student_user_id}) {b.blocked_from_utc}-{b.blocked_until_utc}"
        )
    return lessons


def assert_whole_lesson_series(student: Any, count: int) -> Any:
    """``student`` has one active series whose ``count`` occurrences are all booked."""
    series = BookingSeries.objects.get(student_user=student)
    items = list(series.items.select_related("booking").order_by("occurrence_index"))
    assert [item.occurrence_index for item in items] == list(range(1, count + 1))
    for item in items:
        assert item.status == It.BOOKED, (item.occurrence_index, item.status, item.code)
        assert item.booking.status in ACTIVE_BOOKING_STATUSES
        assert (item.booking.start_at_utc, item.booking.end_at_utc) == (
            item.start_at_utc,
            item.end_at_utc,
        )
    return series


def assert_left_nothing(student: Any) -> None:
    """A refused all-or-nothing series created nothing at all."""
    assert not BookingSeries.objects.filter(student_user=student).exists()
    assert not BookingSeriesItem.objects.filter(series__student_user=student).exists()
    assert not get_booking_model().objects.filter(student_user=student).exists()


# Group series ----------------------------------------------------------------------------


def test_group_series_and_direct_bookings_racing_for_the_last_seats(
    teacher: Any, course: Any, user_model: Any
) -> None:
    weeks, racers = 6, 6
    rule = weekly(weeks)
    sessions, _ = services.create_recurring_sessions(
        teacher=teacher, course=course, title="Weekly class", rule=rule, capacity=1
    )
    enrolling = make_students(user_model, racers, "series")
    direct = make_students(user_model, weeks, "direct")  # one per session, booking it alone

    def work(i: int) -> Any:
        if i < racers:
            return services.create_series(
                student=enrolling[i],
                teacher=teacher,
                course=course,
                series_type="group_series",
                rule=rule,
                accept_partial=True,
            )
        return services.book_group_session(student=direct[i - racers], session=sessions[i - racers])

    results = race(racers + weeks, work)

    # A waitlisted occurrence is not a failure: every series is created.
    assert outcomes(results[:racers]) == {"ok": racers}, results
    assert set(outcomes(results[racers:])) <= {"ok", "session_full"}, results
    assert sorted(BookingSeries.objects.values_list("student_user_id", flat=True)) == sorted(
        student.pk for student in enrolling
    )
    items = {
        (item.series.student_user_id, item.occurrence_index): item
        for item in BookingSeriesItem.objects.select_related("series", "waitlist_entry")
    }
    assert len(items) == racers * weeks
    for week, session in enumerate(sessions, start=1):
        seats = assert_seats_exact(session)  # seats_taken == booked + offered <= capacity
        assert (seats["seats_taken"], seats["booked"], seats["offered"]) == (1, 1, 0), seats
        (winner,) = session.bookings.filter(status__in=ACTIVE_BOOKING_STATUSES)
        direct_won = results[racers + week - 1][0] == "ok"
        assert (winner.student_user_id == direct[week - 1].pk) == direct_won
        # Everybody else who enrolled waits in the queue, once, for this occurrence.
        queued = []
        for student in enrolling:
            item = items[(student.pk, week)]
            assert item.session_id == session.pk
            if student.pk == winner.student_user_id:
                assert (item.status, item.booking_id) == (It.BOOKED, winner.pk)
                continue
            assert item.status == It.WAITLISTED, (week, student.username, item.status)
            entry = item.waitlist_entry
            assert (entry.session_id, entry.student_user_id, entry.status) == (
                session.pk,
                student.pk,
                W.WAITING,
            )
            queued.append(entry.pk)
        entries = list(
            SessionWaitlist.objects.filter(session=session).values_list("pk", "created_at")
        )
        assert sorted(pk for pk, _ in entries) == sorted(queued)
        joined = [at for _, at in entries]
        assert len(set(joined)) == len(joined), f"queue order of week {week} is a tie: {joined}"
    # A direct booker who lost is neither booked nor queued anywhere.
    for student, (code, _) in zip(direct, results[racers:], strict=True):
        if code != "ok":
            assert not get_booking_model().objects.filter(student_user=student).exists()
            assert not SessionWaitlist.objects.filter(student_user=student).exists()


def hold_thread(monkeypatch: Any, module: Any, name: str, thread_name: str) -> tuple[Any, Any]:
    """Hold the thread called ``thread_name`` each time it returns from ``module``'s function
    ``name``, until ``go`` is set; ``held`` is set when it gets there."""
    held, go = threading.Event(), threading.Event()
    original = getattr(module, name)

    def holding(*args: Any, **kwargs: Any) -> Any:
        value = original(*args, **kwargs)
        if threading.current_thread().name == thread_name:
            held.set()
            go.wait(10)
        return value

    monkeypatch.setattr(module, name, holding)
    return held, go


def in_thread(name: str, work: Any, out: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            out[name] = work()
        except Exception as exc:
            out[name] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name=name)
    thread.start()
    return thread


def test_a_group_series_that_waited_for_the_lock_queues_behind_earlier_joins(
    teacher: Any, course: Any, user_model: Any, monkeypatch: Any
) -> None:
    rule = weekly(2)
    sessions, _ = services.create_recurring_sessions(
        teacher=teacher, course=course, title="Weekly class", rule=rule, capacity=1
    )
    early = make_students(user_model, 2, "early")
    bookings = [
        services.book_group_session(student=student, session=session)
        for student, session in zip(early, sessions, strict=True)
    ]
    slow, quick = make_students(user_model, 2, "joiner")
    # The slow series has taken its time stamp and is on its way to the session locks: hold
    # it there, as sessions locked by somebody else would.
    held, go = hold_thread(monkeypatch, series_services, "settle_occurrences", "slow-series")
    out: dict[str, Any] = {}
    thread = in_thread(
        "slow-series",
        lambda: services.create_series(
            student=slow,
            teacher=teacher,
            course=course,
            series_type="group_series",
            rule=rule,
            accept_partial=True,
        ),
        out,
    )
    try:
        if not held.wait(10):
            pytest.fail(f"the slow series never started: {out}")
        quick_entry = services.join_waitlist(student=quick, session=sessions[0])
    finally:
        go.set()
        thread.join(30)
    report = out.get("slow-series")
    if not isinstance(report, series_services.SeriesReport):
        pytest.fail(f"the slow series failed: {report!r}")
    if [result.status for result in report.occurrences] != ["waitlisted"] * 2:
        pytest.fail(f"the slow series was not waitlisted: {report.as_dict()}")
    slow_entry = SessionWaitlist.objects.get(session=sessions[0], student_user=slow)
    # The seat that comes free goes to quick, who joined first.
    services.cancel_booking(bookings[0], actor=teacher)
    quick_entry, slow_entry = fresh(quick_entry), fresh(slow_entry)
    assert (quick_entry.status, slow_entry.status) == (W.OFFERED, W.WAITING), (
        f"quick joined first (entry {quick_entry.pk}, created_at {quick_entry.created_at}); "
        f"the slow series joined after it (entry {slow_entry.pk}) but with created_at "
        f"{slow_entry.created_at}"
    )
    assert quick_entry.created_at < slow_entry.created_at


def test_a_group_series_racing_the_teacher_creating_its_sessions_is_enrolled(
    teacher: Any, course: Any, student: Any, monkeypatch: Any
) -> None:
    rule = weekly(3)
    # The series has looked for its sessions (none yet) and is about to write its plan.
    held, go = hold_thread(monkeypatch, series_plan, "_sessions_at", "series")
    out: dict[str, Any] = {}
    series_thread = in_thread(
        "series",
        lambda: services.create_series(
            student=student,
            teacher=teacher,
            course=course,
            series_type="group_series",
            rule=rule,
        ),
        out,
    )
    try:
        if not held.wait(10):
            pytest.fail(f"the series never started: {out}")
        sessions_thread = in_thread(
            "sessions",
            lambda: services.create_recurring_sessions(
                teacher=teacher, course=course, title="Weekly class", rule=rule, capacity=3
            ),
            out,
        )
        # Creating the sessions may wait for the series (if something serialises the two).
        sessions_thread.join(3)
    finally:
        go.set()
        series_thread.join(30)
    sessions_thread.join(30)
    if not isinstance(out.get("series"), series_services.SeriesReport) or not isinstance(
        out.get("sessions"), tuple
    ):
        pytest.fail(f"the series or the sessions failed: {out}")
    sessions = list(get_session_model().objects.order_by("start_at_utc"))
    items = list(BookingSeriesItem.objects.order_by("occurrence_index"))
    assert [(item.status, item.session_id) for item in items] == [
        (It.BOOKED, session.pk) for session in sessions
    ]
    for session in sessions:
        seats = assert_seats_exact(session)
        assert (seats["seats_taken"], seats["booked"]) == (1, 1)


# One-on-one series -----------------------------------------------------------------------


@pytest.mark.usefixtures("open_all_week")
@pytest.mark.parametrize("attempt", range(3))  # who gets the teacher first is up to the scheduler
def test_one_on_one_series_racing_single_requests_is_whole_or_absent(
    attempt: int, teacher: Any, course: Any, user_model: Any
) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
    count = 12
    rule = weekly(count)
    occurrences = rule.expand().occurrences
    hour, half = timedelta(hours=1), timedelta(minutes=30)
    seventh = occurrences[6].start
    # (start, end, overlaps an occurrence of the series)
    requests = [
        (seventh, seventh + hour, True),
        (seventh + half, seventh + half + hour, True),
        (seventh - half, seventh + half, True),
        (seventh + timedelta(minutes=15), seventh + timedelta(minutes=45), True),
        (occurrences[2].start - half, occurrences[2].end - half, True),
        (occurrences[11].start + half, occurrences[11].end + half, True),
        (seventh + 2 * hour, seventh + 3 * hour, False),  # the same evening, later
        (seventh - 3 * hour, seventh - 2 * hour, False),  # the same day, earlier
    ]
    series_student, *singles = make_students(user_model, 1 + len(requests), "racer")

    def work(i: int) -> Any:
        if i == 0:
            return lesson_series(series_student, teacher, course, rule)  # all-or-nothing
        start, end, _ = requests[i - 1]
        return services.request_one_on_one(
            student=singles[i - 1],
            teacher=teacher,
            course=course,
            start_at_utc=start,
            end_at_utc=end,
        )

    results = race(1 + len(requests), work)

    series_code = results[0][0]
    single_codes = [code for code, _ in results[1:]]
    assert series_code in {"ok"} | REFUSED, results
    assert set(single_codes) <= {"ok", "slot_unavailable"}, results
    clashing = [
        code for code, (*_, overlaps) in zip(single_codes, requests, strict=True) if overlaps
    ]
    clear = [
        code for code, (*_, overlaps) in zip(single_codes, requests, strict=True) if not overlaps
    ]
    assert clear == ["ok"] * len(clear), results
    lessons = assert_no_overlapping_lessons(teacher)
    if series_code == "ok":
        assert_whole_lesson_series(series_student, count)
        assert "ok" not in clashing, results
        assert len(lessons) == count + len(clear)
    else:
        assert_left_nothing(series_student)
        assert "ok" in clashing, results  # refused because a single request got there first
        assert len(lessons) == single_codes.count("ok")


@pytest.mark.usefixtures("open_all_week")
@pytest.mark.parametrize("attempt", range(3))
def test_two_all_or_nothing_series_for_the_same_weekly_slot_one_wins(
    attempt: int, teacher: Any, course: Any, user_model: Any
) -> None:
    count = 12
    rule = weekly(count)
    students = make_students(user_model, 2, "racer")

    results = race(2, lambda i: lesson_series(students[i], teacher, course, rule))

    codes = [code for code, _ in results]
    assert codes.count("ok") == 1, results
    winner = codes.index("ok")
    assert codes[1 - winner] in REFUSED, results
    assert_whole_lesson_series(students[winner], count)
    assert_left_nothing(students[1 - winner])
    assert BookingSeries.objects.count() == 1
    lessons = assert_no_overlapping_lessons(teacher)
    assert len(lessons) == count
    assert {lesson.status for lesson in lessons} == {"pending"}  # the default policy


@pytest.mark.usefixtures("open_all_week")
@pytest.mark.parametrize("attempt", range(3))
def test_daily_limit_holds_for_two_partial_series_on_the_same_days(
    attempt: int, teacher: Any, course: Any, user_model: Any
) -> None:
    TeacherBookingPolicy.objects.create(
        teacher=teacher, requires_approval_for_one_on_one=False, max_bookings_per_day=1
    )
    weeks, shared = 6, 3
    start = first_day()
    # Weeks 1-6 at 17:00 and weeks 4-9 at 19:00 (Berlin): weeks 4-6 are wanted by both.
    rules = [
        weekly(weeks, start_date=start, at=time(17, 0)),
        weekly(weeks, start_date=start + timedelta(weeks=weeks - shared), at=time(19, 0)),
    ]
    students = make_students(user_model, 2, "racer")

    results = race(
        2, lambda i: lesson_series(students[i], teacher, course, rules[i], accept_partial=True)
    )

    assert outcomes(results) == {"ok": 2}, results
    zone = ZoneInfo(get_policy_resolver().get_user_timezone(teacher))
    lessons = assert_no_overlapping_lessons(teacher)
    per_day = Counter(lesson.start_at_utc.astimezone(zone).date() for lesson in lessons)
    assert max(per_day.values()) == 1, per_day
    assert len(per_day) == 2 * weeks - shared  # every wanted day got its one lesson
    # Each occurrence is booked or skipped for the limit; the shared days all went to the
    # series decided first (a series is decided as one run).
    won: dict[int, list[int]] = {}
    for student in students:
        items = BookingSeriesItem.objects.filter(series__student_user=student)
        for item in items.exclude(status=It.BOOKED):
            assert (item.status, item.code) == (It.SKIPPED, "daily_limit_reached")
            assert item.booking_id is None
        won[student.pk] = sorted(
            items.filter(status=It.BOOKED).values_list("occurrence_index", flat=True)
        )
    assert sorted(won.values()) in (
        [[1, 2, 3], [1, 2, 3, 4, 5, 6]],  # the 19:00 series first: 17:00 keeps weeks 1-3
        [[1, 2, 3, 4, 5, 6], [4, 5, 6]],  # the 17:00 series first: 19:00 keeps weeks 7-9
    ), won
