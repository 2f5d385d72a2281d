"""Busy times out of iCalendar documents: `liveclass_booking.calendar.busy.busy_intervals`.

The fixtures under tests/fixtures/busy imitate real exports (Google, Outlook, Apple,
Nextcloud). Every expected interval was worked out by hand from the documents and the zones'
DST rules (Europe/Berlin: 28 March and 31 October 2027; America/New_York: 14 March and
7 November 2027) and is written literally in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from liveclass_booking.calendar.busy import (
    CalendarParseError,
    CalendarTooLargeError,
    busy_intervals,
)

FIXTURES = Path(__file__).parent / "fixtures" / "busy"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def document(*events: str, header: str = "") -> bytes:
    """A VCALENDAR around the given VEVENT bodies (CRLF line ends, as on the wire)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    lines += [line for line in header.splitlines() if line.strip()]
    for number, body in enumerate(events):
        lines += ["BEGIN:VEVENT", f"UID:event-{number}", "DTSTAMP:20270101T000000Z"]
        lines += [line.strip() for line in body.splitlines() if line.strip()]
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_google_feed_with_x_wr_timezone() -> None:
    """UTC times in an X-WR-TIMEZONE feed: the weekly rule keeps Berlin's 10:00 across DST
    (09:00Z in winter, 08:00Z from 29 March); EXDATE skips 25 March; the transparent event
    is free; the all-day event is Berlin's 20 March."""
    assert busy_intervals(
        fixture("google.ics"), utc(2027, 3, 15), utc(2027, 4, 5), "Europe/Berlin"
    ) == [
        (utc(2027, 3, 15, 9), utc(2027, 3, 15, 10)),
        (utc(2027, 3, 18, 13), utc(2027, 3, 18, 14)),
        (utc(2027, 3, 19, 23), utc(2027, 3, 20, 23)),
        (utc(2027, 3, 22, 9), utc(2027, 3, 22, 10)),
        (utc(2027, 3, 29, 8), utc(2027, 3, 29, 9)),
        (utc(2027, 4, 1, 12), utc(2027, 4, 1, 13)),
    ]


def test_outlook_export_with_windows_zone_names() -> None:
    """Windows zone names (and a "Customized Time Zone" known only from its VTIMEZONE);
    New York's Monday 09:00 is 13:00Z before 7 November and 14:00Z after; the 8 November
    occurrence moved to 15:00 EST; the monthly first-Monday meeting at Berlin's 18:00 has its
    December occurrence cancelled; a cancelled single event is free."""
    assert busy_intervals(
        fixture("outlook.ics"), utc(2027, 10, 1), utc(2027, 12, 31), "Europe/Berlin"
    ) == [
        (utc(2027, 10, 4, 16), utc(2027, 10, 4, 17)),
        (utc(2027, 11, 1, 13), utc(2027, 11, 1, 14)),
        (utc(2027, 11, 1, 17), utc(2027, 11, 1, 18)),
        (utc(2027, 11, 3, 16), utc(2027, 11, 3, 17)),
        (utc(2027, 11, 8, 20), utc(2027, 11, 8, 21)),
        (utc(2027, 11, 15, 14), utc(2027, 11, 15, 15)),
    ]


def test_apple_export_all_day_floating_and_durations() -> None:
    """Weekly 17:00 New York across 14 March (22:00Z, then 21:00Z); a three-day all-day
    event from New York's midnight of 13 March to that of 16 March (the DST day is 23 hours);
    a floating lunch at 12:00 New York; DURATION instead of DTEND; a date-time without end
    occupies nothing; a date without end is one day."""
    assert busy_intervals(
        fixture("apple.ics"), utc(2027, 3, 1), utc(2027, 3, 31), "America/New_York"
    ) == [
        (utc(2027, 3, 5, 22), utc(2027, 3, 5, 23)),
        (utc(2027, 3, 8, 13), utc(2027, 3, 8, 14, 30)),
        (utc(2027, 3, 10, 17), utc(2027, 3, 10, 18)),
        (utc(2027, 3, 12, 22), utc(2027, 3, 12, 23)),
        (utc(2027, 3, 13, 5), utc(2027, 3, 16, 4)),
        (utc(2027, 3, 19, 21), utc(2027, 3, 19, 22)),
        (utc(2027, 3, 20, 4), utc(2027, 3, 21, 4)),
    ]


def test_nextcloud_export_monthly_rule_merging_and_dst_night() -> None:
    """Monthly on the 15th at Berlin's 07:00 with October excluded and November's moved to
    the 16th at 09:00; two overlapping events and one touching them merge into one interval;
    a night event across the end of DST lasts four hours."""
    assert busy_intervals(
        fixture("nextcloud.ics"), utc(2027, 9, 1), utc(2027, 12, 1), "Europe/Berlin"
    ) == [
        (utc(2027, 9, 15, 5), utc(2027, 9, 15, 6)),
        (utc(2027, 10, 20, 8), utc(2027, 10, 20, 11)),
        (utc(2027, 10, 30, 23, 30), utc(2027, 10, 31, 3, 30)),
        (utc(2027, 11, 16, 8), utc(2027, 11, 16, 9)),
    ]


def test_floating_times_and_dates_follow_the_default_zone() -> None:
    data = document(
        "DTSTART:20271110T120000\nDTEND:20271110T130000",
        "DTSTART;VALUE=DATE:20271112\nDTEND;VALUE=DATE:20271113",
    )
    assert busy_intervals(data, utc(2027, 11, 1), utc(2027, 12, 1), "Europe/Berlin") == [
        (utc(2027, 11, 10, 11), utc(2027, 11, 10, 12)),
        (utc(2027, 11, 11, 23), utc(2027, 11, 12, 23)),
    ]
    assert busy_intervals(data, utc(2027, 11, 1), utc(2027, 12, 1), "America/New_York") == [
        (utc(2027, 11, 10, 17), utc(2027, 11, 10, 18)),
        (utc(2027, 11, 12, 5), utc(2027, 11, 13, 5)),
    ]


def test_windows_zone_name_without_vtimezone() -> None:
    """icalendar maps Outlook's Windows names to IANA zones even without a VTIMEZONE."""
    data = document(
        "DTSTART;TZID=W. Europe Standard Time:20270701T100000\n"
        "DTEND;TZID=W. Europe Standard Time:20270701T110000"
    )
    assert busy_intervals(data, utc(2027, 7, 1), utc(2027, 7, 2), "America/New_York") == [
        (utc(2027, 7, 1, 8), utc(2027, 7, 1, 9)),
    ]


def test_events_over_the_window_edges_are_clipped() -> None:
    data = document(
        "DTSTART:20270301T220000Z\nDTEND:20270302T020000Z",
        "DTSTART:20270302T100000Z\nDTEND:20270302T110000Z",
        "DTSTART:20270302T230000Z\nDTEND:20270303T010000Z",
        "DTSTART:20270303T000000Z\nDTEND:20270303T010000Z",
        "DTSTART:20270301T230000Z\nDTEND:20270302T000000Z",
    )
    assert busy_intervals(data, utc(2027, 3, 2), utc(2027, 3, 3), "UTC") == [
        (utc(2027, 3, 2, 0), utc(2027, 3, 2, 2)),
        (utc(2027, 3, 2, 10), utc(2027, 3, 2, 11)),
        (utc(2027, 3, 2, 23), utc(2027, 3, 3, 0)),
    ]


def test_overlapping_and_touching_intervals_merge_but_gaps_stay() -> None:
    data = document(
        "DTSTART:20270302T090000Z\nDTEND:20270302T100000Z",
        "DTSTART:20270302T093000Z\nDTEND:20270302T094500Z",
        "DTSTART:20270302T100000Z\nDTEND:20270302T103000Z",
        "DTSTART:20270302T103100Z\nDTEND:20270302T110000Z",
        "DTSTART:20270302T080000Z\nDTEND:20270302T120000Z\nTRANSP:TRANSPARENT",
    )
    assert busy_intervals(data, utc(2027, 3, 1), utc(2027, 3, 3), "UTC") == [
        (utc(2027, 3, 2, 9), utc(2027, 3, 2, 10, 30)),
        (utc(2027, 3, 2, 10, 31), utc(2027, 3, 2, 11)),
    ]


def test_long_events_across_expansion_slices_count_once() -> None:
    """A three-week all-day event and a daily rule: each occurrence once, merged."""
    data = document(
        "DTSTART;VALUE=DATE:20270301\nDTEND;VALUE=DATE:20270322",
        "DTSTART:20270401T090000Z\nDTEND:20270401T100000Z\nRRULE:FREQ=DAILY",
    )
    result = busy_intervals(data, utc(2027, 2, 20), utc(2027, 4, 4), "UTC")
    assert result == [
        (utc(2027, 3, 1), utc(2027, 3, 22)),
        (utc(2027, 4, 1, 9), utc(2027, 4, 1, 10)),
        (utc(2027, 4, 2, 9), utc(2027, 4, 2, 10)),
        (utc(2027, 4, 3, 9), utc(2027, 4, 3, 10)),
    ]


def test_occurrence_cap() -> None:
    data = document("DTSTART:20270301T090000Z\nDTEND:20270301T100000Z\nRRULE:FREQ=DAILY")
    assert len(busy_intervals(data, utc(2027, 3, 1), utc(2027, 3, 11), "UTC", max_occurrences=10))
    with pytest.raises(CalendarTooLargeError, match="more than 9 event occurrences"):
        busy_intervals(data, utc(2027, 3, 1), utc(2027, 3, 11), "UTC", max_occurrences=9)
    assert issubclass(CalendarTooLargeError, CalendarParseError)


def test_a_runaway_rule_stops_at_the_default_cap_quickly() -> None:
    data = document("DTSTART:20270301T000000Z\nDURATION:PT30S\nRRULE:FREQ=MINUTELY")
    with pytest.raises(CalendarTooLargeError, match="more than 20000"):
        busy_intervals(data, utc(2027, 3, 1), utc(2028, 3, 1), "UTC")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"  \r\n", "empty"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "HTML"),
        (b"\n<html>\n<head><title>Error</title></head>\n</html>", "HTML"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART:20270101T1", "readable"),
        (b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "VEVENT component"),
        (b"garbage\x00\xff not a calendar", "readable"),
        (b'{"events": []}', "readable"),
    ],
)
def test_unparsable_documents(data: bytes, message: str) -> None:
    with pytest.raises(CalendarParseError, match=message):
        busy_intervals(data, utc(2027, 1, 1), utc(2027, 2, 1), "UTC")


def test_unknown_x_wr_timezone_is_a_parse_error() -> None:
    data = document(
        "DTSTART:20270102T090000Z\nDTEND:20270102T100000Z", header="X-WR-TIMEZONE:Mars/Olympus"
    )
    with pytest.raises(CalendarParseError, match="X-WR-TIMEZONE"):
        busy_intervals(data, utc(2027, 1, 1), utc(2027, 2, 1), "UTC")


def test_an_empty_calendar_is_free() -> None:
    assert busy_intervals(document(), utc(2027, 1, 1), utc(2027, 2, 1), "UTC") == []


def test_bad_arguments() -> None:
    data = document()
    with pytest.raises(ValueError, match="aware"):
        busy_intervals(data, datetime(2027, 1, 1), utc(2027, 2, 1), "UTC")  # noqa: DTZ001
    with pytest.raises(ValueError, match="before"):
        busy_intervals(data, utc(2027, 2, 1), utc(2027, 2, 1), "UTC")
    with pytest.raises(ValueError, match="Unknown time zone"):
        busy_intervals(data, utc(2027, 1, 1), utc(2027, 2, 1), "Nowhere/Else")
