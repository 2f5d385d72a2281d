"""Recurrence rules expand in local wall time, right across daylight-saving changes.

The property tests compare the expansion with a day-by-day walk over the calendar that knows
nothing of dateutil, in four zones with different DST rules (and one without DST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.checks import run_checks
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from liveclass_booking.choices import DAY_CODES
from liveclass_booking.exceptions import InvalidInput
from liveclass_booking.recurrence import Recurrence

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]


def exists(day: date, at: time, zone: str) -> bool:
    local = datetime.combine(day, at, tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) == (
        local.replace(tzinfo=None)
    )


def calendar_walk(rule: Recurrence) -> list[date]:
    """The dates a weekly, biweekly or monthly rule names, by walking the calendar."""
    days: list[date] = []
    day = rule.start_date
    monday = rule.start_date - timedelta(days=rule.start_date.weekday())
    weekdays = {DAY_CODES.index(c) for c in rule.days} or {rule.start_date.weekday()}
    step = rule.interval * (2 if rule.frequency == "biweekly" else 1)
    # Far enough for 200 occurrences of the sparsest rule (the 31st, every second month).
    last = rule.until_date or rule.start_date + timedelta(days=366 * 100)
    while day <= last:
        if rule.frequency == "monthly":
            months = (day.year - rule.start_date.year) * 12 + day.month - rule.start_date.month
            hit = day.day == rule.start_date.day and months % step == 0
        else:
            hit = day.weekday() in weekdays and ((day - monday).days // 7) % step == 0
        if hit:
            days.append(day)
        day += timedelta(days=1)
    return days


# Wall times near the usual switch hours come up often, so gaps and repeats are hit.
wall_times = st.one_of(
    st.sampled_from([time(0, 30), time(1, 30), time(2, 0), time(2, 30), time(3, 0)]),
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
)
day_sets = st.lists(st.sampled_from(DAY_CODES), unique=True, max_size=3).map(",".join)


@st.composite
def rules(draw: st.DrawFn) -> Recurrence:
    frequency = draw(st.sampled_from(["weekly", "biweekly", "monthly"]))
    start = draw(st.dates(date(2026, 1, 1), date(2030, 12, 31)))
    days = "" if frequency == "monthly" else draw(day_sets)
    interval = draw(st.integers(1, 2))
    ends_by_count = draw(st.booleans())
    # Long enough to span at least two DST changes (over 13 months).
    if ends_by_count:
        per_year = {"weekly": 52, "biweekly": 26, "monthly": 12}[frequency]
        per_year = per_year * max(1, len(days.split(","))) // interval
        count = draw(st.integers(per_year + per_year // 12 + 2, 200))
        until = None
    else:
        count = None
        until = start + timedelta(days=draw(st.integers(400, 800)))
    return Recurrence(
        frequency=frequency,
        start_date=start,
        start_time=draw(wall_times),
        timezone=draw(st.sampled_from(ZONES)),
        duration_minutes=draw(st.integers(15, 180)),
        interval=interval,
        days_of_week=days,
        occurrence_count=count,
        until_date=until,
    )


def expand_or_none(rule: Recurrence):  # type: ignore[no-untyped-def]
    try:
        return rule.expand()
    except InvalidInput as exc:
        # Only the cap may refuse a valid rule, or the horizon one on a day some months
        # lack: a monthly rule from the 31st skips the shorter months (RFC 5545), so every
        # second month from August 31st meets only three months a year.
        refused_by_cap = "configured maximum" in exc.detail
        short_months = (
            rule.frequency == "monthly"
            and rule.start_date.day > 28
            and "occurrences in the 50 years" in exc.detail
        )
    assert refused_by_cap or short_months
    return None


@settings(max_examples=150, deadline=None)
@given(rules())
def test_expansion_keeps_wall_time_order_and_end(rule: Recurrence) -> None:
    expansion = expand_or_none(rule)
    if expansion is None:
        return
    zone = ZoneInfo(rule.timezone)
    occurrences = expansion.occurrences
    starts = [o.start for o in occurrences]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)
    assert [o.index for o in occurrences] == list(range(1, len(occurrences) + 1))
    for occurrence in occurrences:
        assert occurrence.start.tzinfo is UTC
        local = occurrence.start.astimezone(zone)
        assert local.time() == rule.start_time, "the wall time moved"
        assert exists(local.date(), rule.start_time, rule.timezone)
        assert occurrence.end - occurrence.start == timedelta(minutes=rule.duration_minutes)
    if rule.occurrence_count is not None:
        assert len(occurrences) == rule.occurrence_count
    else:
        assert occurrences[-1].start.astimezone(zone).date() <= rule.until_date
    # Exactly the calendar's dates, minus the wall times the zone skips (which don't count).
    named = calendar_walk(rule)
    real = [d for d in named if exists(d, rule.start_time, rule.timezone)]
    assert [o.start.astimezone(zone).date() for o in occurrences] == real[: len(occurrences)]
    skipped_dates = [s.date for s in expansion.skipped]
    last = occurrences[-1].start.astimezone(zone).date()
    assert skipped_dates == [
        d for d in named if d <= last and not exists(d, rule.start_time, rule.timezone)
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.dates(date(2026, 1, 1), date(2030, 12, 31)),
    wall_times,
    st.sampled_from(ZONES),
    st.sampled_from(["FREQ=DAILY;INTERVAL=3", "FREQ=WEEKLY;BYDAY=TU,TH", "FREQ=MONTHLY;BYDAY=2TU"]),
)
def test_custom_rules_keep_wall_time(start: date, at: time, zone: str, text: str) -> None:
    rule = Recurrence(
        frequency="custom",
        start_date=start,
        start_time=at,
        timezone=zone,
        duration_minutes=60,
        rrule=text,
        until_date=start + timedelta(days=420),
    )
    expansion = expand_or_none(rule)
    if expansion is None:
        return
    for occurrence in expansion.occurrences:
        assert occurrence.start.astimezone(ZoneInfo(zone)).time() == at
    for skipped in expansion.skipped:
        assert not exists(skipped.date, skipped.time, zone)


def berlin(**kwargs):  # type: ignore[no-untyped-def]
    values = {
        "frequency": "weekly",
        "start_date": date(2027, 3, 1),
        "start_time": time(17, 0),
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "occurrence_count": 6,
    }
    values.update(kwargs)
    return Recurrence(**values)


def test_17_00_berlin_stays_17_00_and_utc_shifts() -> None:
    starts = [o.start for o in berlin(days_of_week="SU").expand().occurrences]
    assert starts[3] == datetime(2027, 3, 28, 15, 0, tzinfo=UTC)  # CEST from 28 March
    assert starts[2] == datetime(2027, 3, 21, 16, 0, tzinfo=UTC)


def test_nonexistent_time_is_skipped_not_counted_and_reported() -> None:
    expansion = berlin(days_of_week="SU", start_time=time(2, 30)).expand()
    dates = [o.start.astimezone(ZoneInfo("Europe/Berlin")).date() for o in expansion.occurrences]
    assert date(2027, 3, 28) not in dates
    assert len(dates) == 6
    assert [s.as_dict() for s in expansion.skipped] == [
        {"date": "2027-03-28", "time": "02:30:00", "timezone": "Europe/Berlin",
         "code": "nonexistent_time"}
    ]  # fmt: skip


def test_ambiguous_time_takes_the_first_instant() -> None:
    rule = berlin(start_date=date(2027, 10, 31), start_time=time(2, 30), occurrence_count=1)
    (only,) = rule.expand().occurrences
    assert only.start == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # still CEST (+02:00)


def test_monthly_skips_months_without_the_day() -> None:
    rule = berlin(frequency="monthly", start_date=date(2027, 1, 31), occurrence_count=3)
    months = [o.start.month for o in rule.expand().occurrences]
    assert months == [1, 3, 5]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"occurrence_count": None}, "occurrence_count"),
        ({"until_date": date(2027, 6, 1)}, "occurrence_count"),
        ({"occurrence_count": 201}, "occurrence_count"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"interval": 0}, "interval"),
        ({"start_time": time(17, 0, 30)}, "start_time"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"days_of_week": "MO,XX"}, "days_of_week"),
        ({"days_of_week": "MO,MO"}, "days_of_week"),
        ({"frequency": "monthly", "days_of_week": "MO"}, "days_of_week"),
        ({"frequency": "hourly"}, "frequency"),
        ({"frequency": "custom"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=WEEKLY;COUNT=3"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=WEEKLY;UNTIL=20270101T000000Z"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=HOURLY"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=DAILY;BYHOUR=3"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule"),
        ({"frequency": "custom", "rrule": "nonsense"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=WEEKLY", "interval": 2}, "rrule"),
        ({"rrule": "FREQ=WEEKLY"}, "rrule"),
        ({"occurrence_count": None, "until_date": date(2026, 1, 1)}, "until_date"),
        ({"occurrence_count": None, "until_date": date(2031, 1, 1)}, "until_date"),
    ],
)
def test_bad_rules_are_invalid_and_name_the_field(changes: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        berlin(**changes).expand()
    assert caught.value.code == "invalid"
    assert field in caught.value.data["errors"]


def test_until_past_the_cap_is_refused_clearly() -> None:
    rule = berlin(occurrence_count=None, until_date=date(2031, 3, 1))  # 210 weeks
    with pytest.raises(InvalidInput, match="more than 200 occurrences"):
        rule.expand()


@override_settings(LIVECLASS_BOOKING_SERIES_MAX_OCCURRENCES=10)
def test_the_cap_is_configurable() -> None:
    with pytest.raises(InvalidInput, match="between 1 and 10"):
        berlin(occurrence_count=11).expand()
    assert len(berlin(occurrence_count=10).expand().occurrences) == 10


@override_settings(LIVECLASS_BOOKING_SERIES_MAX_OCCURRENCES=0)
def test_a_bad_cap_is_a_system_check_error() -> None:
    ids = {message.id for message in run_checks()}
    assert "liveclass_booking.E008" in ids


# Hostile rules: expansion raises nothing but ``invalid`` and stays bounded --------------------

RRULE_NAMES = ["FREQ", "INTERVAL", "WKST", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS"]
RRULE_NAMES += ["BYYEARDAY", "BYWEEKNO", "BYEASTER", "COUNT", "BYHOUR", "X-NAME"]
RRULE_VALUES = st.one_of(
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY", "MO", "2TU", "-1FR"]),
    st.integers(-1000, 1000).map(str),
    st.lists(st.integers(-400, 400).map(str), min_size=1, max_size=4).map(",".join),
    st.sampled_from(["99999999999999999999", "１", "1_0", " 1", "", "+5", "53MO", "0"]),
    st.text(max_size=5),
)


@st.composite
def rrule_texts(draw: st.DrawFn) -> str:
    parts = [f"FREQ={draw(st.sampled_from(['DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY']))}"]
    for name in draw(st.lists(st.sampled_from(RRULE_NAMES), max_size=4)):
        parts.append(f"{name}={draw(RRULE_VALUES)}")
    return ";".join(draw(st.permutations(parts)))


@settings(max_examples=150, deadline=None)
@given(
    rrule_texts(),
    st.sampled_from([date(2028, 2, 29), date(1900, 1, 1), date(2199, 12, 31), date(2027, 1, 31)]),
    st.one_of(st.none(), st.integers(1, 5)),
)
def test_any_custom_rule_expands_or_is_invalid_quickly(
    text: str, start: date, count: int | None
) -> None:
    rule = Recurrence(
        frequency="custom",
        start_date=start,
        start_time=time(12),
        timezone="Europe/Berlin",
        duration_minutes=60,
        rrule=text,
        occurrence_count=count,
        until_date=None if count else date(2199, 12, 31),
    )
    started = datetime.now(UTC)
    try:
        expansion = rule.expand()
    except InvalidInput as exc:
        errors = exc.data["errors"]
    else:
        errors = {}
        assert expansion.occurrences
        assert all(o.start.year < 2200 for o in expansion.occurrences)
    assert set(errors) <= {"rrule", "occurrence_count", "until_date"}
    assert datetime.now(UTC) - started < timedelta(seconds=2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"start_date": date(1899, 12, 31)}, "start_date"),
        ({"start_date": date(2200, 1, 1)}, "start_date"),
        ({"start_date": date(9999, 12, 31)}, "start_date"),
        ({"occurrence_count": None, "until_date": date(9999, 12, 31)}, "until_date"),
        ({"frequency": "custom", "rrule": "FREQ=DAILY;INTERVAL=0"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=DAILY;BYEASTER=0"}, "rrule"),
        ({"frequency": "custom", "rrule": "FREQ=MONTHLY;BYSETPOS=400"}, "rrule"),
    ],
)
def test_dates_and_rule_parts_out_of_range_are_invalid(changes: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        berlin(**changes).expand()
    assert field in caught.value.data["errors"]


@pytest.mark.parametrize("frequency", ["weekly", "monthly"])
def test_a_rule_starting_on_29_february_expands(frequency: str) -> None:
    rule = berlin(frequency=frequency, start_date=date(2028, 2, 29), occurrence_count=3)
    starts = [o.start.date() for o in rule.expand().occurrences]
    assert starts[0] == date(2028, 2, 29)
    if frequency == "monthly":  # the 29th of each month
        assert starts == [date(2028, 2, 29), date(2028, 3, 29), date(2028, 4, 29)]


def test_expansion_stops_at_the_end_of_the_supported_dates() -> None:
    five = berlin(start_date=date(2199, 12, 1), occurrence_count=5).expand().occurrences
    assert five[-1].start.date() == date(2199, 12, 29)
    with pytest.raises(InvalidInput) as caught:
        berlin(start_date=date(2199, 12, 1), occurrence_count=6).expand()  # no 2200
    assert "occurrence_count" in caught.value.data["errors"]
