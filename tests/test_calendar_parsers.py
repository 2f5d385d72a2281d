"""The calendar test harness (tests/calendar_parsers.py): icalendar, vobject and ical.js read
hand-written documents alike, and the harness fails on documents it must refuse.

ical.js runs in two Node processes: one for all the good documents, one for a broken one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import vobject

from tests import calendar_parsers
from tests.calendar_parsers import (
    IcalJsError,
    ParsedCalendar,
    check_wire_format,
    parse_everywhere,
    parse_icalendar,
    parse_icaljs,
)


def crlf(text: str) -> bytes:
    """A document written with ``\\n`` line ends, as it goes on the wire."""
    return text.replace("\n", "\r\n").encode("utf-8")


UTC_EVENT = crlf(
    r"""BEGIN:VCALENDAR
PRODID:-//liveclass_booking//EN
VERSION:2.0
METHOD:REQUEST
BEGIN:VEVENT
UID:booking-1@example.com
SEQUENCE:0
DTSTAMP:20250301T080000Z
DTSTART:20250310T140000Z
DTEND:20250310T150000Z
SUMMARY:Guitar lesson
STATUS:CONFIRMED
URL:https://meet.example.com/abc?x=1&y=2
LOCATION:https://meet.example.com/abc?x=1&y=2
ORGANIZER;CN=Teacher:mailto:teacher@example.com
ATTENDEE;CN=Student;ROLE=REQ-PARTICIPANT:mailto:student@example.com
END:VEVENT
END:VCALENDAR
"""
)

# 30 March 2025 02:00 CET became 03:00 CEST; 26 October 2025 03:00 CEST became 02:00 CET.
BERLIN_DST = crlf(
    r"""BEGIN:VCALENDAR
PRODID:-//liveclass_booking//EN
VERSION:2.0
METHOD:PUBLISH
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:spring@example.com
DTSTAMP:20250101T000000Z
DTSTART;TZID=Europe/Berlin:20250330T013000
DTEND;TZID=Europe/Berlin:20250330T033000
SUMMARY:Across the spring change
RRULE:WKST=MO;BYDAY=SU;COUNT=4;FREQ=WEEKLY
END:VEVENT
BEGIN:VEVENT
UID:autumn@example.com
DTSTAMP:20250101T000000Z
DTSTART;TZID=Europe/Berlin:20251026T013000
DTEND;TZID=Europe/Berlin:20251026T033000
SUMMARY:Across the autumn change
END:VEVENT
END:VCALENDAR
"""
)

CANCELLED = crlf(
    r"""BEGIN:VCALENDAR
PRODID:-//liveclass_booking//EN
VERSION:2.0
METHOD:CANCEL
BEGIN:VEVENT
UID:series-7@example.com
SEQUENCE:4
DTSTAMP:20250301T080000Z
DTSTART:20250317T140000Z
DTEND:20250317T150000Z
RECURRENCE-ID:20250317T140000Z
RELATED-TO:series-7@example.com
LAST-MODIFIED:20250301T075959Z
SUMMARY:Guitar lesson
STATUS:CANCELLED
END:VEVENT
END:VCALENDAR
"""
)

# The DESCRIPTION is folded over four lines (a folded line goes on after one space, which
# unfolding removes); the last fold falls between two-octet characters.
TEXT = crlf(
    r"""BEGIN:VCALENDAR
PRODID:-//liveclass_booking//EN
VERSION:2.0
BEGIN:VEVENT
UID:text@example.com
DTSTAMP:20250301T080000Z
DTSTART:20250310T140000Z
DTEND:20250310T150000Z
SUMMARY:Müller\; Ärger\, \n zweite Zeile
DESCRIPTION:Ein langer Text über Größen\, Maße\; und Backslashes \\
  sowie einen Zeilenumbruch\nhier. Dann geht es weiter mit noch mehr
  Text\, damit die Zeile mehrfach gefaltet werden muss: äöüäöü
 äöüäöüäöüäöüäöüäöüäöüäöüß Ende.
LOCATION:Raum 4\, 2. Stock
X-LIVECLASS-NOTE:Bitte\, pünktlich\; danke
END:VEVENT
END:VCALENDAR
"""
)

FEED = crlf(
    r"""BEGIN:VCALENDAR
PRODID:-//liveclass_booking//EN
VERSION:2.0
METHOD:PUBLISH
X-WR-CALNAME:Lessons\, Anna
X-PUBLISHED-TTL:PT1H
REFRESH-INTERVAL;VALUE=DURATION:PT1H
BEGIN:VEVENT
UID:booking-1@example.com
SEQUENCE:2
DTSTAMP:20250301T080000Z
DTSTART:20250310T140000Z
DTEND:20250310T150000Z
SUMMARY:Guitar lesson
STATUS:TENTATIVE
X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE
END:VEVENT
BEGIN:VEVENT
UID:booking-2@example.com
SEQUENCE:0
DTSTAMP:20250301T080000Z
DTSTART:20250311T140000Z
DTEND:20250311T150000Z
SUMMARY:Piano lesson
STATUS:CONFIRMED
END:VEVENT
END:VCALENDAR
"""
)

GOOD = {
    "utc": UTC_EVENT,
    "berlin": BERLIN_DST,
    "cancelled": CANCELLED,
    "text": TEXT,
    "feed": FEED,
}


@pytest.fixture(scope="module")
def parsed() -> dict[str, ParsedCalendar]:
    """Every good document through all three parsers, in one Node process."""
    return dict(zip(GOOD, parse_everywhere(*GOOD.values()), strict=True))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_utc_single_event(parsed: dict[str, ParsedCalendar]) -> None:
    calendar = parsed["utc"]
    assert calendar.method == "REQUEST"
    assert calendar.properties == {"prodid": "-//liveclass_booking//EN", "version": "2.0"}
    (event,) = calendar.events
    assert event.uid == "booking-1@example.com"
    assert event.sequence == 0
    assert event.status == "CONFIRMED"
    assert event.dtstart == utc(2025, 3, 10, 14)
    assert event.dtend == utc(2025, 3, 10, 15)
    assert event.dtstamp == utc(2025, 3, 1, 8)
    assert event.url == event.location == "https://meet.example.com/abc?x=1&y=2"
    assert event.rrule is event.recurrence_id is event.description is None
    assert event.x_props == {}


def test_tzid_across_dst_changes_is_one_instant(parsed: dict[str, ParsedCalendar]) -> None:
    spring, autumn = parsed["berlin"].events
    assert isinstance(spring.dtstart, datetime)
    assert isinstance(spring.dtend, datetime)
    assert isinstance(autumn.dtstart, datetime)
    assert isinstance(autumn.dtend, datetime)
    assert (spring.dtstart, spring.dtend) == (utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 30))
    assert (autumn.dtstart, autumn.dtend) == (utc(2025, 10, 25, 23, 30), utc(2025, 10, 26, 2, 30))
    assert spring.dtend - spring.dtstart == timedelta(hours=1)  # two hours on the wall clock
    assert autumn.dtend - autumn.dtstart == timedelta(hours=3)
    assert spring.dtstart.tzinfo is UTC
    # Parts in RFC 5545 order, without the default WKST=MO (ical.js drops it).
    assert spring.rrule == "FREQ=WEEKLY;COUNT=4;BYDAY=SU"


def test_cancelled_occurrence(parsed: dict[str, ParsedCalendar]) -> None:
    calendar = parsed["cancelled"]
    assert calendar.method == "CANCEL"
    (event,) = calendar.events
    assert (event.status, event.sequence) == ("CANCELLED", 4)
    assert event.recurrence_id == event.dtstart == utc(2025, 3, 17, 14)
    assert event.related_to == "series-7@example.com"
    assert event.last_modified == utc(2025, 3, 1, 7, 59, 59)


def test_text_is_unescaped_and_unfolded(parsed: dict[str, ParsedCalendar]) -> None:
    (event,) = parsed["text"].events
    assert event.summary == "Müller; Ärger, \n zweite Zeile"
    assert event.description == (
        "Ein langer Text über Größen, Maße; und Backslashes \\ sowie einen Zeilenumbruch\n"
        "hier. Dann geht es weiter mit noch mehr Text, damit die Zeile mehrfach gefaltet "
        "werden muss: " + "äöü" * 10 + "ß Ende."
    )
    assert event.location == "Raum 4, 2. Stock"
    assert event.x_props == {"x-liveclass-note": "Bitte, pünktlich; danke"}


def test_feed_properties(parsed: dict[str, ParsedCalendar]) -> None:
    calendar = parsed["feed"]
    assert calendar.method == "PUBLISH"
    assert calendar.properties == {
        "prodid": "-//liveclass_booking//EN",
        "version": "2.0",
        "x-wr-calname": "Lessons, Anna",
        "x-published-ttl": "PT1H",
        "refresh-interval": timedelta(hours=1),
    }
    assert [(e.uid, e.sequence, e.status) for e in calendar.events] == [
        ("booking-1@example.com", 2, "TENTATIVE"),
        ("booking-2@example.com", 0, "CONFIRMED"),
    ]
    assert calendar.events[0].x_props == {"x-microsoft-cdo-busystatus": "TENTATIVE"}


def test_parse_everywhere_returns_what_icalendar_read(
    parsed: dict[str, ParsedCalendar],
) -> None:
    assert parsed == {name: parse_icalendar(document) for name, document in GOOD.items()}


# --- the harness refuses --------------------------------------------------------------------


@pytest.mark.parametrize("document", GOOD.values(), ids=GOOD.keys())
def test_good_documents_pass_the_wire_format_check(document: bytes) -> None:
    check_wire_format(document)


def test_lf_line_ends_fail() -> None:
    with pytest.raises(AssertionError, match="CRLF"):
        check_wire_format(UTC_EVENT.replace(b"\r\n", b"\n"))


def test_a_bare_lf_inside_fails() -> None:
    with pytest.raises(AssertionError, match="line 7 is not ended by CRLF"):
        check_wire_format(UTC_EVENT.replace(b"SEQUENCE:0\r\n", b"SEQUENCE:0\n"))


def test_a_line_of_80_octets_fails() -> None:
    line = b"SUMMARY:" + b"x" * 72
    assert len(line) == 80
    document = UTC_EVENT.replace(b"SUMMARY:Guitar lesson", line)
    with pytest.raises(AssertionError, match="80 octets"):
        check_wire_format(document)
    with pytest.raises(AssertionError, match="document 0: line 11 is 80 octets"):
        parse_everywhere(document)


def test_a_line_of_75_octets_passes() -> None:
    check_wire_format(UTC_EVENT.replace(b"SUMMARY:Guitar lesson", b"SUMMARY:" + b"x" * 67))


def test_a_fold_inside_a_utf8_character_fails() -> None:
    split = "SUMMARY:Ä".encode()
    document = UTC_EVENT.replace(b"SUMMARY:Guitar lesson", split[:-1] + b"\r\n " + split[-1:])
    with pytest.raises(AssertionError, match="a fold splits a UTF-8 character"):
        check_wire_format(document)


def test_not_utf8_fails() -> None:
    with pytest.raises(AssertionError, match="not UTF-8"):
        check_wire_format(UTC_EVENT.replace(b"Guitar", "Gitarré".encode("latin-1")))


def test_missing_end_vcalendar_fails() -> None:
    with pytest.raises(AssertionError, match="END:VCALENDAR"):
        check_wire_format(UTC_EVENT.removesuffix(b"END:VCALENDAR\r\n"))


def test_an_unparsable_document_fails_in_every_parser() -> None:
    broken = UTC_EVENT.replace(b"END:VEVENT\r\n", b"")
    with pytest.raises(IcalJsError, match=r"document 1: .*did not end"):
        parse_icaljs([UTC_EVENT, broken])
    with pytest.raises(ValueError, match="no components"):
        parse_icalendar(broken)
    with pytest.raises(vobject.base.ParseError):
        calendar_parsers.parse_vobject(broken)


def test_a_difference_names_the_parser_and_the_field() -> None:
    by_icalendar = parse_icalendar(UTC_EVENT)
    (event,) = by_icalendar.events
    moved = replace(by_icalendar, events=(replace(event, dtstart=utc(2025, 3, 10, 15)),))
    problems = calendar_parsers._differences(
        {"icalendar": by_icalendar, "vobject": by_icalendar, "ical.js": moved}
    )
    assert problems == [
        "event 0 (UID booking-1@example.com) field 'dtstart' differs: "
        "icalendar=datetime.datetime(2025, 3, 10, 14, 0, tzinfo=datetime.timezone.utc), "
        "vobject=datetime.datetime(2025, 3, 10, 14, 0, tzinfo=datetime.timezone.utc), "
        "ical.js=datetime.datetime(2025, 3, 10, 15, 0, tzinfo=datetime.timezone.utc)"
    ]


# --- without ical.js ------------------------------------------------------------------------


def test_missing_icaljs_skips_locally(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(calendar_parsers, "ICALJS_PACKAGE", tmp_path / "missing.json")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="npm ci --prefix tests/js"):
        parse_icaljs([UTC_EVENT])


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_missing_icaljs_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str
) -> None:
    monkeypatch.setattr(calendar_parsers, "ICALJS_PACKAGE", tmp_path / "missing.json")
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="npm ci --prefix tests/js"):
        parse_icaljs([UTC_EVENT])


def test_missing_node_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calendar_parsers.shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="node is not on PATH"):
        parse_icaljs([UTC_EVENT])
