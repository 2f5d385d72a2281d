"""``querysets.utc_rows_of`` reads datetimes as microseconds since the epoch, several
querysets in one query: the same instants as ``values_list`` on every database, microseconds,
leap days, dates before 1970 and nulls included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from liveclass_booking.calendar.sources import create_busy_source
from liveclass_booking.models import BusyPeriod, BusySource
from liveclass_booking.querysets import micros, micros_rows_of, utc_rows_of

pytestmark = [pytest.mark.django_db, pytest.mark.every_database]

STARTS = [
    datetime(2030, 1, 7, 8, 0, tzinfo=UTC),
    datetime(2030, 1, 7, 8, 0, 0, 1, tzinfo=UTC),
    datetime(2028, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 30, 15, 500_000, tzinfo=UTC),
    datetime(2099, 6, 30, 12, 0, 0, 123_456, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
    datetime(1900, 1, 1, 0, 0, 0, 10, tzinfo=UTC),
]


def test_utc_rows_of_reads_the_same_instants_as_values_list(teacher: Any) -> None:
    source = create_busy_source(actor=None, teacher=teacher, kind="ics", url="https://c.test/")
    synced = create_busy_source(actor=None, teacher=teacher, kind="ics", url="https://d.test/")
    BusySource.objects.filter(pk=synced.pk).update(last_synced_at=STARTS[2])
    for start in STARTS:
        BusyPeriod.objects.create(
            source=source,
            teacher=teacher,
            start_at_utc=start,
            end_at_utc=start + timedelta(minutes=45, microseconds=7),
        )
    periods = BusyPeriod.objects.all()
    sources = BusySource.objects.all()
    rows = utc_rows_of(
        (periods, ("start_at_utc", "end_at_utc")),
        (sources, ("last_synced_at", None)),
    )
    assert sorted(row[1:] for row in rows if row[0] == 0) == sorted(
        periods.values_list("start_at_utc", "end_at_utc")
    )
    assert sorted((row[1:] for row in rows if row[0] == 1), key=str) == [
        (None, None),
        (STARTS[2], None),
    ]
    assert all(value.tzinfo is UTC for row in rows for value in row[1:] if value is not None)
    assert utc_rows_of() == []


def test_micros_rows_of_counts_whole_microseconds(teacher: Any) -> None:
    source = create_busy_source(actor=None, teacher=teacher, kind="ics", url="https://c.test/")
    for start in STARTS:
        BusyPeriod.objects.create(
            source=source, teacher=teacher, start_at_utc=start, end_at_utc=start + timedelta(1)
        )
    rows = micros_rows_of((BusyPeriod.objects.all(), ("start_at_utc",)))
    assert all(type(row[1]) is int for row in rows)
    assert sorted(row[1] for row in rows) == sorted(micros(start) for start in STARTS)
    assert micros(datetime(1970, 1, 1, 0, 0, 1, 2, tzinfo=UTC)) == 1_000_002


def test_older_sqlite_reads_the_same_microseconds(
    teacher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.38 has no unixepoch(): strftime('%s') reads the seconds instead."""
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's own fallback")
    source = create_busy_source(actor=None, teacher=teacher, kind="ics", url="https://c.test/")
    for start in STARTS:
        BusyPeriod.objects.create(
            source=source, teacher=teacher, start_at_utc=start, end_at_utc=start + timedelta(1)
        )
    monkeypatch.setattr(connection.Database, "sqlite_version_info", (3, 37, 2))
    rows = micros_rows_of((BusyPeriod.objects.all(), ("start_at_utc", "end_at_utc")))
    assert sorted(row[1] for row in rows) == sorted(micros(start) for start in STARTS)
