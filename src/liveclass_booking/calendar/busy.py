"""Busy times out of an iCalendar document (the parsing step of importing teachers' calendars).

Pure functions: no models, no network. :func:`busy_intervals` turns the bytes of an ICS feed
(Google, Outlook, Apple, Nextcloud...) into sorted, merged UTC intervals.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
import x_wr_timezone

__all__ = [
    "MAX_OCCURRENCES",
    "CalendarParseError",
    "CalendarTooLargeError",
    "busy_intervals",
    "read_calendar",
]

#: The most event occurrences one document may expand to within the window.
MAX_OCCURRENCES = 20_000

# The window is expanded in slices of this length, so the occurrence cap stops a runaway
# rule (FREQ=MINUTELY, say) after one slice instead of after expanding the whole window.
_SLICE = timedelta(days=7)

Interval = tuple[datetime, datetime]


class CalendarParseError(ValueError):
    """The document is not an iCalendar calendar this module can read."""


class CalendarTooLargeError(CalendarParseError):
    """The document expands to more occurrences than allowed within the window."""


def busy_intervals(
    data: bytes,
    start: datetime,
    end: datetime,
    default_zone: str,
    *,
    max_occurrences: int = MAX_OCCURRENCES,
) -> list[Interval]:
    """Return the busy intervals the events of ``data`` occupy within ``[start, end)``.

    The result is a sorted list of ``(start, end)`` pairs of aware UTC datetimes; intervals
    that overlap or touch are merged. Rules:

    - Every ``VEVENT`` occurrence is busy, recurring events expanded (``RRULE``, ``RDATE``,
      ``EXDATE`` and ``RECURRENCE-ID`` overrides, which move or cancel one occurrence), except
      ``TRANSP:TRANSPARENT`` ("free") and ``STATUS:CANCELLED`` events and occurrences.
      Tentative and confirmed events are busy.
    - Times with ``TZID`` use that zone (IANA names, Outlook's Windows names, or the
      document's own ``VTIMEZONE``); ``Z`` times are UTC; floating times (neither) and dates
      are in ``default_zone``. Google's ``X-WR-TIMEZONE`` feeds are first brought into
      standard form (their UTC times are rewritten in that zone, so weekly rules follow the
      zone's wall clock across DST).
    - An all-day event (``DATE`` values) is busy from midnight to midnight of each of its
      days in ``default_zone`` (a DST day is 23 or 25 hours long); ``DTEND`` is exclusive.
    - Without ``DTEND``: ``DURATION`` if given, else one day for a date and zero length for a
      date-time. Zero-length (and inverted) events occupy nothing and are left out.
    - Clipping: an event overlapping an edge of the window is **clipped** to the window, so
      every interval returned lies within ``[start, end)``.

    Raises :class:`CalendarParseError` when ``data`` is not a readable ``VCALENDAR`` (empty,
    HTML, truncated, broken recurrence), and :class:`CalendarTooLargeError` (a subclass) when
    more than ``max_occurrences`` occurrences fall within the window. ``start`` and ``end``
    must be aware with ``start < end``, and ``default_zone`` an IANA zone name
    (``ValueError`` otherwise).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes.")
    if not start < end:
        raise ValueError("start must be before end.")
    try:
        zone = ZoneInfo(default_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Unknown time zone {default_zone!r}.") from exc
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    calendar = _parse(data)
    seen: set[tuple[str, datetime, datetime]] = set()
    intervals: list[Interval] = []
    # Query in the default zone so that floating times and dates are read in it; one day of
    # margin on each side so that zone offsets cannot drop an event near the edges.
    slice_start = (start - timedelta(days=1)).astimezone(zone)
    query_end = (end + timedelta(days=1)).astimezone(zone)
    try:
        query = recurring_ical_events.of(calendar, components=["VEVENT"])
        while slice_start < query_end:
            slice_end = min(slice_start + _SLICE, query_end)
            for event in query.between(slice_start, slice_end):
                interval = _busy_interval(event, zone)
                if interval is None:
                    continue
                key = (str(event.get("UID", "")), *interval)
                if key in seen:  # an occurrence spanning two slices
                    continue
                seen.add(key)
                busy_start, busy_end = max(interval[0], start), min(interval[1], end)
                if busy_start < busy_end:
                    intervals.append((busy_start, busy_end))
                    if len(intervals) > max_occurrences:
                        raise CalendarTooLargeError(
                            f"The calendar has more than {max_occurrences} event occurrences "
                            "in the requested period."
                        )
            slice_start = slice_end
    except CalendarParseError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise CalendarParseError(f"The calendar's events could not be read: {_short(exc)}") from exc
    return _merge(intervals)


def _parse(data: bytes) -> icalendar.Calendar:
    """The document as a standard (X-WR-TIMEZONE repaired) calendar, or CalendarParseError."""
    if not data or not data.strip():
        raise CalendarParseError("The document is empty, not an iCalendar calendar.")
    head = data.lstrip()[:200].lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
        raise CalendarParseError("The document is HTML or XML, not an iCalendar calendar.")
    calendar = read_calendar(data, "The document")
    # recurring_ical_events.of() repairs X-WR-TIMEZONE too (since 2.x); doing it here as well
    # is harmless (the repaired calendar has no UTC times left to rewrite) and turns an unknown
    # zone into a CalendarParseError naming the property.
    try:
        standard: icalendar.Calendar = x_wr_timezone.to_standard(calendar)
    except (ValueError, KeyError, TypeError) as exc:  # an unknown X-WR-TIMEZONE, say
        message = f"The calendar's X-WR-TIMEZONE is not usable: {_short(exc)}"
        raise CalendarParseError(message) from exc
    return standard


def read_calendar(data: bytes | str, what: str) -> icalendar.Calendar:
    """``data`` read as one VCALENDAR, or CalendarParseError saying what is wrong with
    ``what`` ("The document", "The event x.ics")."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise CalendarParseError(f"{what} is not readable iCalendar data: {_short(exc)}") from exc
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        name = getattr(calendar, "name", None) or "unknown"
        raise CalendarParseError(f"{what} is a {name} component, not a VCALENDAR.")
    return calendar


def _short(exc: Exception) -> str:
    """An exception's message cut short (icalendar's quote the offending document)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _busy_interval(event: icalendar.Component, zone: tzinfo) -> Interval | None:
    """The UTC interval one occurrence occupies, or None if it occupies no time."""
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return None
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return None
    if "DTSTART" not in event:
        return None
    first = event.decoded("DTSTART")
    if "DTEND" in event:
        last = event.decoded("DTEND")
    elif "DURATION" in event:
        last = first + event.decoded("DURATION")
    elif isinstance(first, datetime):
        last = first
    else:
        last = first + timedelta(days=1)
    busy_start, busy_end = _to_utc(first, zone), _to_utc(last, zone)
    if busy_start >= busy_end:
        return None
    return busy_start, busy_end


def _to_utc(value: date | datetime, zone: tzinfo) -> datetime:
    """A DTSTART/DTEND value as an aware UTC datetime (dates and floating times in zone)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tzinfo=zone)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _merge(intervals: list[Interval]) -> list[Interval]:
    """Sort and merge intervals that overlap or touch."""
    merged: list[Interval] = []
    for busy_start, busy_end in sorted(intervals):
        if merged and busy_start <= merged[-1][1]:
            if busy_end > merged[-1][1]:
                merged[-1] = (merged[-1][0], busy_end)
        else:
            merged.append((busy_start, busy_end))
    return merged
