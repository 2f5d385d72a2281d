"""``TeacherSchedule.free_starts`` skips candidates a blocking interval also blocks: it must
find exactly the candidates that asking ``broken_rule`` of every one of them finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from liveclass_booking.models import TeacherBookingPolicy
from liveclass_booking.services.availability import TeacherSchedule, _merge

T0 = datetime(2030, 3, 25, tzinfo=UTC)
# Whole hours often, so that candidates meet the notice and interval edges exactly.
minutes = st.integers(0, 72).map(lambda h: h * 60) | st.integers(0, 3 * 24 * 60)


def intervals(max_size: int) -> st.SearchStrategy[list[tuple[datetime, datetime]]]:
    return st.lists(
        st.tuples(minutes, st.integers(1, 300)).map(
            lambda p: (T0 + timedelta(minutes=p[0]), T0 + timedelta(minutes=p[0] + p[1]))
        ),
        max_size=max_size,
    )


@settings(max_examples=300, deadline=None)
@given(
    opened=intervals(6),
    busy=intervals(25),
    external=intervals(25),
    before=st.integers(0, 30),
    after=st.integers(0, 30),
    notice=st.integers(0, 48),
    limit=st.none() | st.integers(0, 3),
    per_day=st.integers(0, 3),
    duration=st.integers(5, 120),
    step=st.integers(5, 60),
    window=st.tuples(minutes, minutes),
)
def test_free_starts_finds_what_asking_every_candidate_finds(
    opened: list[tuple[datetime, datetime]],
    busy: list[tuple[datetime, datetime]],
    external: list[tuple[datetime, datetime]],
    before: int,
    after: int,
    notice: int,
    limit: int | None,
    per_day: int,
    duration: int,
    step: int,
    window: tuple[int, int],
) -> None:
    policy = TeacherBookingPolicy(
        buffer_before_minutes=before,
        buffer_after_minutes=after,
        min_notice_hours=notice,
        max_bookings_per_day=limit,
    )
    schedule = TeacherSchedule(
        teacher=None, course=None, policy=policy, now=T0, zone="Europe/Berlin"
    )
    schedule.open_intervals = _merge(opened)
    schedule._open_starts = [s for s, _ in schedule.open_intervals]
    schedule.busy = _merge(busy)
    schedule._busy_starts = [s for s, _ in schedule.busy]
    schedule.external = [(s.timestamp(), e.timestamp()) for s, e in _merge(external)]
    schedule._external_starts = [s for s, _ in schedule.external]
    schedule._before, schedule._after = timedelta(minutes=before), timedelta(minutes=after)
    schedule._earliest = T0 + timedelta(hours=notice)
    schedule.per_day.update({(T0 + timedelta(days=1)).date(): per_day})
    start = T0 + timedelta(minutes=min(window))
    end = T0 + timedelta(minutes=max(window))
    length, stride = timedelta(minutes=duration), timedelta(minutes=step)

    expected = []
    for open_start, open_end in schedule.open_intervals:
        at = open_start
        while at + length <= open_end:
            if start <= at and at + length <= end and schedule.broken_rule(at, at + length) is None:
                expected.append(at)
            at += stride
    assert schedule.free_starts(start, end, length, stride) == expected


def test_the_first_free_start_is_the_first_one_the_notice_allows() -> None:
    schedule = TeacherSchedule(
        teacher=None,
        course=None,
        policy=TeacherBookingPolicy(min_notice_hours=2),
        now=T0,
        zone="UTC",
    )
    schedule.open_intervals = [(T0, T0 + timedelta(hours=4))]
    schedule._open_starts = [T0]
    schedule._earliest = T0 + timedelta(hours=2)
    half_hour = timedelta(minutes=30)
    starts = schedule.free_starts(T0, T0 + timedelta(hours=4), half_hour, half_hour)
    assert starts == [T0 + timedelta(minutes=m) for m in (120, 150, 180, 210)]
