"""The instants and dates this app takes from outside: 1900-01-01 to the end of 2199.

Python's ``datetime`` ends at the years 1 and 9999, and an instant near either end overflows
as soon as a duration, a buffer, a time-zone offset or a recurrence step is added to it. A
live class is booked for the near future, so the API refuses (``400 invalid``, naming the
field) any instant outside ``[EARLIEST, LATEST)`` in UTC and any date outside
``[EARLIEST_DATE, LATEST_DATE]``; everything computed from values inside that range stays far
from the ends of ``datetime``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

#: The first supported instant (inclusive).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
#: The end of the supported instants (exclusive).
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: The first and the last supported calendar date.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)

INSTANT_MESSAGE = (
    "Give an instant from 1900-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z."
)
DATE_MESSAGE = "Give a date from 1900-01-01 to 2199-12-31."


class OutOfRange(ValueError):
    """An instant or a date outside the supported range (or not one at all)."""


def to_utc(value: datetime) -> datetime:
    """Return the aware ``value`` in UTC; raise :class:`OutOfRange` outside the range."""
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+01:00
        raise OutOfRange(INSTANT_MESSAGE) from None
    if not EARLIEST <= utc < LATEST:
        raise OutOfRange(INSTANT_MESSAGE)
    return utc


def check_date(value: date) -> date:
    """Return ``value``; raise :class:`OutOfRange` outside the supported dates."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise OutOfRange(DATE_MESSAGE)
    return value


def add_years(day: date, years: int) -> date:
    """``day`` moved by ``years`` calendar years; 29 February becomes 28 February in a common
    year. Raise :class:`OutOfRange` past the ends of ``date``."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        pass
    try:
        return day.replace(year=day.year + years, day=28)
    except ValueError:
        raise OutOfRange(DATE_MESSAGE) from None
