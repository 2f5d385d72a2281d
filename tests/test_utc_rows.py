"""``querysets.utc_rows`` reads datetimes as seconds since the epoch: the same instants as
``values_list`` on every database, microseconds, leap days and old dates included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from liveclass_booking.calendar.sources import create_busy_source
from liveclass_booking.models import BusyPeriod
from liveclass_booking.querysets import utc_rows

pytestmark = [pytest.mark.django_db, pytest.mark.every_database]

STARTS = [
    datetime(2030, 1, 7, 8, 0, tzinfo=UTC),
    datetime(2030, 1, 7, 8, 0, 0, 1, tzinfo=UTC),
    datetime(2028, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 30, 15, 500_000, tzinfo=UTC),
    datetime(2099, 6, 30, 12, 0, 0, 123_456, tzinfo=UTC),
]


def test_utc_rows_reads_the_same_instants_as_values_list(teacher: Any) -> None:
    source = create_busy_source(actor=None, teacher=teacher, kind="ics", url="https://c.test/")
    for start in STARTS:
        BusyPeriod.objects.create(
            source=source,
            teacher=teacher,
            start_at_utc=start,
            end_at_utc=start + timedelta(minutes=45, microseconds=7),
        )
    rows = BusyPeriod.objects.all()
    read = utc_rows(rows, "start_at_utc", "end_at_utc")
    assert sorted(read) == sorted(rows.values_list("start_at_utc", "end_at_utc"))
    assert sorted(start for start, _ in read) == sorted(STARTS)
    assert all(value.tzinfo is UTC for row in read for value in row)
