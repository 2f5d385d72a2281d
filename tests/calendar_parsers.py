"""Parse iCalendar documents with three independent parsers and compare what they read.

``parse_everywhere(*documents)`` checks each document's wire format (``check_wire_format``),
parses it with the Python libraries ``icalendar`` and ``vobject`` and with the JavaScript
library ical.js (``tests/js/parse_ics.mjs`` run by Node, one process for all the documents),
asserts that the three read the same thing and returns what ``icalendar`` read.

What the three read is normalised to ``ParsedCalendar`` and ``ParsedEvent``:

- date-times are aware ``datetime`` objects in UTC (a ``Z`` time or a TZID time converted to
  its instant); a DATE is a ``date``; a floating time or a TZID without a VTIMEZONE (for
  ical.js) is an error, since it names no instant;
- text is ``str`` with the iCalendar escaping undone (``\\,`` ``\\;`` ``\\\\`` ``\\n``), X-
  properties included (their default value type is TEXT);
- ``sequence`` is an ``int`` or ``None``; a DURATION value (``REFRESH-INTERVAL;VALUE=DURATION``)
  is a ``timedelta``;
- ``rrule`` is the rule's text with its parts in the order of RFC 5545's grammar (FREQ, UNTIL,
  COUNT, INTERVAL, BY..., WKST) and without ``WKST=MO``, the default, which ical.js drops;
- property names are lower case (``properties["refresh-interval"]``, ``x_props["x-foo"]``); a
  property that repeats maps to a tuple of its values in document order.

ical.js is installed by ``npm ci --prefix tests/js`` (``make install`` runs it). Without it, or
without ``node``, the tests that need it are skipped, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest
import vobject
from icalendar.prop import vDDDTypes, vRecur, vText, vUnknown
from vobject.icalendar import stringToDurations

JS_DIR = Path(__file__).resolve().parent / "js"
PARSE_ICS = JS_DIR / "parse_ics.mjs"
ICALJS_PACKAGE = JS_DIR / "node_modules" / "ical.js" / "package.json"
ICALJS_TIMEOUT = 60  # seconds, for one batch of documents

PARSERS = ("icalendar", "vobject", "ical.js")
MAX_LINE_OCTETS = 75

#: A calendar-level or X- property's value.
Value = str | int | datetime | date | timedelta | tuple[Any, ...]


@dataclass(frozen=True)
class ParsedEvent:
    uid: str | None
    sequence: int | None
    status: str | None
    summary: str | None
    description: str | None
    location: str | None
    url: str | None
    dtstart: datetime | date | None
    dtend: datetime | date | None
    dtstamp: datetime | date | None
    last_modified: datetime | date | None
    related_to: str | None
    rrule: str | None
    recurrence_id: datetime | date | None
    x_props: dict[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedCalendar:
    method: str | None
    properties: dict[str, Value]
    events: tuple[ParsedEvent, ...]


class IcalJsError(AssertionError):
    """ical.js could not parse a document (or Node failed); the message is its stderr."""


TEXT_FIELDS = ("uid", "status", "summary", "description", "location", "url", "related_to")
TIME_FIELDS = ("dtstart", "dtend", "dtstamp", "last_modified", "recurrence_id")
RRULE_ORDER = (
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
_ESCAPED = re.compile(r"\\([\\;,nN])")


# --- wire format --------------------------------------------------------------------------


def check_wire_format(data: bytes) -> None:
    """Assert RFC 5545's wire format: UTF-8, every line ended by CRLF, no line longer than 75
    octets (without the CRLF), no fold inside a UTF-8 character, no empty line,
    ``BEGIN:VCALENDAR`` first and ``END:VCALENDAR`` CRLF last."""
    assert isinstance(data, bytes), f"expected bytes, got {type(data).__name__}"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        unfolded = data.replace(b"\r\n ", b"").replace(b"\r\n\t", b"")
        try:
            unfolded.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError(f"the document is not UTF-8: {exc}") from None
        raise AssertionError(f"a fold splits a UTF-8 character: {exc}") from None
    assert data.startswith(b"BEGIN:VCALENDAR\r\n"), (
        f"does not begin with BEGIN:VCALENDAR CRLF: {data[:40]!r}"
    )
    assert data.endswith(b"\r\nEND:VCALENDAR\r\n"), (
        f"does not end with END:VCALENDAR CRLF: {data[-40:]!r}"
    )
    lines = data[: -len(b"\r\n")].split(b"\r\n")
    for number, line in enumerate(lines, start=1):
        assert not re.search(b"[\r\n]", line), (
            f"line {number} is not ended by CRLF (a bare LF or CR): {line[:60]!r}"
        )
        assert line, f"line {number} is empty"
        assert len(line) <= MAX_LINE_OCTETS, (
            f"line {number} is {len(line)} octets long (at most {MAX_LINE_OCTETS} without the "
            f"CRLF; fold it): {line[:60]!r}..."
        )


# --- shared normalisation -----------------------------------------------------------------


def unescape_text(text: str) -> str:
    """Undo iCalendar TEXT escaping (RFC 5545 3.3.11)."""
    return _ESCAPED.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


def canonical_rrule(rule: str) -> str:
    """The rule with its parts in RFC 5545 order and upper case, without ``WKST=MO``."""
    parts: dict[str, str] = {}
    for part in rule.strip().split(";"):
        if not part:
            continue
        key, _, value = part.partition("=")
        parts[key.strip().upper()] = value.strip().upper()
    if parts.get("WKST") == "MO":
        del parts["WKST"]
    order = {key: position for position, key in enumerate(RRULE_ORDER)}
    keys = sorted(parts, key=lambda key: (order.get(key, len(order)), key))
    return ";".join(f"{key}={parts[key]}" for key in keys)


def _instant(value: Any, where: str) -> datetime | date:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{where}: {value.isoformat()} is a floating time (no Z, no TZID)")
        return value.astimezone(UTC)
    if isinstance(value, date):
        return value
    raise TypeError(f"{where}: expected a date or date-time, got {value!r}")


def _collect(pairs: Iterable[tuple[str, Value]]) -> dict[str, Value]:
    """Properties by lower-case name; a name that repeats gets a tuple of its values."""
    out: dict[str, list[Value]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return {name: values[0] if len(values) == 1 else tuple(values) for name, values in out.items()}


def _one(values: list[Any], name: str, where: str) -> Any:
    if len(values) > 1:
        raise ValueError(f"{where}: {name} appears {len(values)} times")
    return values[0] if values else None


# --- icalendar ----------------------------------------------------------------------------


def _icalendar_value(value: Any, where: str) -> Value:
    if isinstance(value, vDDDTypes):
        decoded = value.dt
        return decoded if isinstance(decoded, timedelta) else _instant(decoded, where)
    if isinstance(value, vRecur):
        return canonical_rrule(value.to_ical().decode())
    if isinstance(value, vUnknown):  # X- and other unknown properties: the raw text
        return unescape_text(str(value))
    if isinstance(value, vText):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return str(value.to_ical().decode())


def _icalendar_items(component: Any) -> list[tuple[str, Any]]:
    return [
        (str(name).lower(), value)
        for name, value in component.property_items(recursive=False, sorted=False)
        if name not in ("BEGIN", "END")
    ]


def parse_icalendar(data: bytes) -> ParsedCalendar:
    """What the ``icalendar`` library reads in ``data``."""
    calendar = icalendar.Calendar.from_ical(data)
    items = _icalendar_items(calendar)
    method = _one([value for name, value in items if name == "method"], "METHOD", "calendar")
    properties = _collect(
        (name, _icalendar_value(value, f"calendar {name}"))
        for name, value in items
        if name != "method"
    )
    events = []
    for position, event in enumerate(calendar.walk("VEVENT")):
        where = f"event {position}"
        props: dict[str, list[Any]] = {}
        for name, value in _icalendar_items(event):
            props.setdefault(name, []).append(value)

        def get(name: str, props: dict[str, list[Any]] = props, where: str = where) -> Any:
            return _one(props.get(name, []), name.upper(), where)

        rrule = get("rrule")
        x_props = _collect(
            (name, _icalendar_value(value, f"{where} {name}"))
            for name, values in props.items()
            if name.startswith("x-")
            for value in values
        )
        events.append(
            _event(get, where, None if rrule is None else rrule.to_ical().decode(), x_props)
        )
    return ParsedCalendar(method=_opt_str(method), properties=properties, events=tuple(events))


def _event(
    get: Callable[[str], Any], where: str, rrule: str | None, x_props: dict[str, Value]
) -> ParsedEvent:
    """An event from ``get(property name)``, which returns a parser's value or ``None``."""
    values: dict[str, Any] = {name: _opt_str(get(name.replace("_", "-"))) for name in TEXT_FIELDS}
    for name in TIME_FIELDS:
        values[name] = _opt_time(get(name.replace("_", "-")), f"{where} {name}")
    sequence = get("sequence")
    return ParsedEvent(
        **values,
        sequence=None if sequence is None else int(sequence),
        rrule=None if rrule is None else canonical_rrule(rrule),
        x_props=x_props,
    )


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_time(value: Any, where: str) -> datetime | date | None:
    if value is None:
        return None
    return _instant(value.dt if isinstance(value, vDDDTypes) else value, where)


# --- vobject ------------------------------------------------------------------------------


def _vobject_value(line: Any, where: str) -> Value:
    value = line.value
    if "DURATION" in [v.upper() for v in line.params.get("VALUE", [])] and isinstance(value, str):
        durations = stringToDurations(value)
        return durations[0] if len(durations) == 1 else tuple(durations)
    if isinstance(value, date):
        return _instant(value, where)
    if isinstance(value, list):  # a multi-valued property, e.g. CATEGORIES
        return ",".join(str(v) for v in value)
    return str(value)


def _vobject_lines(component: Any) -> list[Any]:
    return [
        child for child in component.getChildren() if isinstance(child, vobject.base.ContentLine)
    ]


def parse_vobject(data: bytes) -> ParsedCalendar:
    """What the ``vobject`` library reads in ``data``."""
    calendar = vobject.readOne(data.decode("utf-8"))
    lines = _vobject_lines(calendar)
    method = _one([line.value for line in lines if line.name == "METHOD"], "METHOD", "calendar")
    properties = _collect(
        (line.name, _vobject_value(line, f"calendar {line.name}"))
        for line in lines
        if line.name != "METHOD"
    )
    events = []
    vevents = [child for child in calendar.getChildren() if child.name == "VEVENT"]
    for position, event in enumerate(vevents):
        where = f"event {position}"

        def get(name: str, event: Any = event, where: str = where) -> Any:
            line = _one(event.contents.get(name, []), name.upper(), where)
            return None if line is None else line.value

        rrule = get("rrule")
        x_props = _collect(
            (line.name, _vobject_value(line, f"{where} {line.name}"))
            for line in _vobject_lines(event)
            if line.name.upper().startswith("X-")
        )
        events.append(_event(get, where, None if rrule is None else str(rrule), x_props))
    return ParsedCalendar(method=_opt_str(method), properties=properties, events=tuple(events))


# --- ical.js ------------------------------------------------------------------------------


def _require_icaljs() -> str:
    """The path of ``node``; skips the test (fails it under ``CI=true``) when ``node`` or
    ical.js is missing."""
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node is not on PATH")
    if not ICALJS_PACKAGE.exists():
        missing.append(f"ical.js is not installed in {ICALJS_PACKAGE.parent.parent}")
    if missing:
        message = (
            f"{'; '.join(missing)}: install Node.js and run `npm ci --prefix tests/js` "
            "(make install does it)"
        )
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI is set and the calendar tests need ical.js: {message}", pytrace=False)
        pytest.skip(message)
    assert node is not None
    return node


def _from_json_value(value: Any) -> Value:
    if isinstance(value, dict) and set(value) == {"duration"}:
        return timedelta(seconds=value["duration"])
    if isinstance(value, dict) and set(value) == {"time"}:
        time = _from_json_time(value["time"])
        assert time is not None
        return time
    if isinstance(value, list):
        return tuple(_from_json_value(item) for item in value)
    return value


def _from_json_time(value: str | None) -> datetime | date | None:
    if value is None:
        return None
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value).astimezone(UTC)


def _from_json(document: dict[str, Any]) -> ParsedCalendar:
    events = []
    for event in document["events"]:
        values: dict[str, Any] = {name: event[name] for name in (*TEXT_FIELDS, "sequence")}
        for name in TIME_FIELDS:
            values[name] = _from_json_time(event[name])
        events.append(
            ParsedEvent(
                **values,
                rrule=None if event["rrule"] is None else canonical_rrule(event["rrule"]),
                x_props={name: _from_json_value(v) for name, v in event["x_props"].items()},
            )
        )
    return ParsedCalendar(
        method=document["method"],
        properties={
            name: _from_json_value(value) for name, value in document["properties"].items()
        },
        events=tuple(events),
    )


def parse_icaljs(documents: list[bytes]) -> list[ParsedCalendar]:
    """What ical.js reads in each document: one Node process for the whole list. Raises
    ``IcalJsError`` with ical.js's message when a document does not parse."""
    if not documents:
        return []
    node = _require_icaljs()
    payload = json.dumps([document.decode("utf-8") for document in documents])
    try:
        result = subprocess.run(
            [node, str(PARSE_ICS)],
            input=payload.encode(),
            capture_output=True,
            timeout=ICALJS_TIMEOUT,
            check=False,
            cwd=JS_DIR,
            env={**os.environ, "TZ": "UTC"},
        )
    except subprocess.TimeoutExpired:
        raise IcalJsError(
            f"ical.js took more than {ICALJS_TIMEOUT} s for {len(documents)} documents"
        ) from None
    if result.returncode != 0:
        raise IcalJsError(
            f"ical.js failed (exit {result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )
    parsed = json.loads(result.stdout)
    assert len(parsed) == len(documents), f"ical.js returned {len(parsed)} of {len(documents)}"
    return [_from_json(document) for document in parsed]


# --- all three ----------------------------------------------------------------------------


def _differences(results: dict[str, ParsedCalendar]) -> list[str]:
    """Where the parsers disagree, each line naming the field and every parser's value."""
    reference_name = PARSERS[0]
    reference = results[reference_name]
    problems = []

    def compare(what: str, values: dict[str, Any]) -> None:
        if any(value != values[reference_name] for value in values.values()):
            shown = ", ".join(f"{parser}={value!r}" for parser, value in values.items())
            problems.append(f"{what} differs: {shown}")

    compare("METHOD", {parser: result.method for parser, result in results.items()})
    names = sorted(set().union(*(result.properties for result in results.values())))
    for name in names:
        compare(
            f"calendar property {name!r}",
            {
                parser: result.properties.get(name, "<missing>")
                for parser, result in results.items()
            },
        )
    counts = {parser: len(result.events) for parser, result in results.items()}
    compare("the number of events", counts)
    for position in range(min(counts.values())):
        uid = reference.events[position].uid
        for event_field in fields(ParsedEvent):
            compare(
                f"event {position} (UID {uid}) field {event_field.name!r}",
                {
                    parser: getattr(result.events[position], event_field.name)
                    for parser, result in results.items()
                },
            )
    return problems


def parse_everywhere(*documents: bytes) -> list[ParsedCalendar]:
    """Check each document's wire format, parse it with icalendar, vobject and ical.js (one
    Node process for all), assert the three agree, and return what icalendar read."""
    for index, document in enumerate(documents):
        try:
            check_wire_format(document)
        except AssertionError as exc:
            raise AssertionError(f"document {index}: {exc}") from None
    by_icaljs = parse_icaljs(list(documents))
    parsed = []
    for index, (document, icaljs) in enumerate(zip(documents, by_icaljs, strict=True)):
        results = {
            "icalendar": parse_icalendar(document),
            "vobject": parse_vobject(document),
            "ical.js": icaljs,
        }
        problems = _differences(results)
        assert not problems, f"document {index}: the parsers disagree:\n" + "\n".join(problems)
        parsed.append(results["icalendar"])
    return parsed
