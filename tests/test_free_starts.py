"""``TeacherSchedule.free_starts`` skips candidates a blocking interval also blocks: it must
find exactly the candidates that asking ``broken_rule`` of every one of them finds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveclass_booking.models import TeacherBookingPolicy
from liveclass_booking.querysets import from_micros, micros
from liveclass_booking.services.availability import TeacherSchedule, _merge

T0 = datetime(2030, 3, 25, tzinfo=UTC)
# Whole hours and quarters often, so that candidates meet the notice, interval and day edges
# exactly.
minutes = (
    st.integers(0, 72).map(lambda h: h * 60)
    | st.integers(0, 3 * 24 * 4).map(lambda q: q * 15)
    | st.integers(0, 3 * 24 * 60)
)
quarters = st.sampled_from([15, 30, 45, 60, 90])


def spans(intervals: list[tuple[datetime, datetime]]) -> list[tuple[int, int]]:
    return [(micros(start), micros(end)) for start, end in intervals]


def ask_every_candidate(
    schedule: TeacherSchedule,
    start: datetime,
    end: datetime,
    length: timedelta,
    stride: timedelta,
) -> list[datetime]:
    """The free starts :meth:`TeacherSchedule.free_starts` should find, by brute force."""
    expected = []
    for open_span in schedule.open_intervals:
        at, open_end = (from_micros(v) for v in open_span)
        while at + length <= open_end:
            if start <= at and at + length <= end and schedule.broken_rule(at, at + length) is None:
                expected.append(at)
            at += stride
    return expected


def intervals(max_size: int) -> st.SearchStrategy[list[tuple[datetime, datetime]]]:
    return st.lists(
        st.tuples(minutes, quarters | st.integers(1, 300)).map(
            lambda p: (T0 + timedelta(minutes=p[0]), T0 + timedelta(minutes=p[0] + p[1]))
        ),
        max_size=max_size,
    )


@settings(max_examples=500, deadline=None)
@given(
    opened=intervals(6),
    busy=intervals(25),
    external=intervals(25),
    before=st.sampled_from([0, 15]) | st.integers(0, 30),
    after=st.sampled_from([0, 15]) | st.integers(0, 30),
    notice=st.integers(0, 48),
    limit=st.none() | st.integers(1, 3),
    per_day=st.lists(st.integers(0, 3), min_size=4, max_size=4),
    duration=quarters | st.integers(5, 120),
    step=quarters | st.integers(5, 60),
    window=st.tuples(minutes, minutes),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
)
def test_free_starts_finds_what_asking_every_candidate_finds(
    opened: list[tuple[datetime, datetime]],
    busy: list[tuple[datetime, datetime]],
    external: list[tuple[datetime, datetime]],
    before: int,
    after: int,
    notice: int,
    limit: int | None,
    per_day: list[int],
    duration: int,
    step: int,
    window: tuple[int, int],
    zone: str,
) -> None:
    policy = TeacherBookingPolicy(
        buffer_before_minutes=before,
        buffer_after_minutes=after,
        min_notice_hours=notice,
        max_bookings_per_day=limit,
    )
    schedule = TeacherSchedule(
        teacher=None,
        course=None,
        policy=policy,
        now=T0,
        zone=zone,
        open_intervals=_merge(spans(opened)),
        busy=_merge(spans(busy)),
        external=_merge(spans(external)),
    )
    # Lessons on the teacher's first four local days, some of them full.
    schedule.per_day.update({(T0 + timedelta(days=i)).date(): n for i, n in enumerate(per_day)})
    schedule.index()
    start = T0 + timedelta(minutes=min(window))
    end = T0 + timedelta(minutes=max(window))
    length, stride = timedelta(minutes=duration), timedelta(minutes=step)

    expected = ask_every_candidate(schedule, start, end, length, stride)
    assert schedule.free_starts(start, end, length, stride) == expected


def test_the_first_free_start_is_the_first_one_the_notice_allows() -> None:
    schedule = TeacherSchedule(
        teacher=None,
        course=None,
        policy=TeacherBookingPolicy(min_notice_hours=2),
        now=T0,
        zone="UTC",
        open_intervals=spans([(T0, T0 + timedelta(hours=4))]),
    )
    schedule.index()
    half_hour = timedelta(minutes=30)
    starts = schedule.free_starts(T0, T0 + timedelta(hours=4), half_hour, half_hour)
    assert starts == [T0 + timedelta(minutes=m) for m in (120, 150, 180, 210)]


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("UTC", date(2030, 3, 25)),
        ("Europe/Berlin", date(2030, 3, 30)),  # the next day is 23 hours long
        ("America/New_York", date(2030, 11, 2)),  # the next day is 25 hours long
    ],
)
def test_a_full_day_frees_its_slots_again_at_the_next_local_midnight(zone: str, day: date) -> None:
    """A day at the daily limit blocks the lessons starting on it, in the teacher's zone: the
    next free start is the next local midnight, and a lesson across midnight counts for the
    day it starts on."""
    tz = ZoneInfo(zone)
    evening = datetime.combine(day, time(20), tzinfo=tz).astimezone(UTC)
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    schedule = TeacherSchedule(
        teacher=None,
        course=None,
        policy=TeacherBookingPolicy(min_notice_hours=0, max_bookings_per_day=2),
        now=evening - timedelta(days=3),
        zone=zone,
        open_intervals=spans([(evening, evening + timedelta(hours=8))]),
    )
    schedule.per_day.update({day: 2, day + timedelta(days=2): 2})
    schedule.index()
    hour = timedelta(hours=1)
    starts = schedule.free_starts(evening, evening + timedelta(hours=8), hour, hour / 2)
    assert starts[0] == midnight
    assert starts == [midnight + i * hour / 2 for i in range(len(starts))]
    assert schedule.broken_rule(midnight - hour / 2, midnight + hour / 2) == "daily_limit_reached"
    schedule.per_day[day] = 1
    schedule.per_day[day + timedelta(days=1)] = 2
    schedule.index()
    assert schedule.broken_rule(midnight - hour / 2, midnight + hour / 2) is None
    assert schedule.broken_rule(midnight, midnight + hour) == "daily_limit_reached"
    error = schedule.first_violation(midnight, midnight + hour)
    assert error is not None
    assert error.code == "daily_limit_reached"


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("length", [15, 30, 60, 90])
def test_free_runs_stop_exactly_at_a_full_day(zone: str, length: int) -> None:
    """Free lessons after a lesson that ends shortly before a full day begins, at every
    quarter-hour distance: the run of free starts stops right at the day's local midnight."""
    tz = ZoneInfo(zone)
    day = date(2030, 3, 30)
    midnight = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    quarter = timedelta(minutes=15)
    for distance in range(8):
        lesson_end = midnight - distance * quarter
        schedule = TeacherSchedule(
            teacher=None,
            course=None,
            policy=TeacherBookingPolicy(
                min_notice_hours=0,
                max_bookings_per_day=1,
                buffer_before_minutes=0,
                buffer_after_minutes=0,
            ),
            now=midnight - timedelta(days=5),
            zone=zone,
            open_intervals=spans([(midnight - timedelta(days=1), midnight + timedelta(days=2))]),
            busy=spans([(lesson_end - 4 * quarter, lesson_end)]),
        )
        schedule.per_day[day] = 1
        schedule.index()
        start, end = (midnight - timedelta(days=1), midnight + timedelta(days=2))
        length_ = timedelta(minutes=length)
        starts = schedule.free_starts(start, end, length_, quarter)
        assert starts == ask_every_candidate(schedule, start, end, length_, quarter)
        assert (midnight - quarter in starts) == (distance > 0)
        assert midnight not in starts
