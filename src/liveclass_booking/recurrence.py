"""Recurrence rules expanded in local wall time.

A :class:`Recurrence` is the rule part of a :class:`~liveclass_booking.models.BookingSeries`
(and of a run of recurring group sessions): ``frequency`` (``weekly``, ``biweekly``,
``monthly`` or ``custom`` with an RFC 5545 ``RRULE``), ``interval``, ``days_of_week``, a local
``start_date`` and ``start_time`` in an IANA ``timezone``, ``duration_minutes`` and exactly one
of ``occurrence_count`` and ``until_date``.

:meth:`Recurrence.expand` walks the rule from an aware *local* start (never from UTC), so a
17:00 Europe/Berlin lesson stays 17:00 in Berlin when the clocks change and its UTC time moves
instead. Following RFC 5545 §3.3.10, a local time that does not exist (inside a spring-forward
gap) is not an occurrence: it is skipped, not counted, and reported in
:attr:`Expansion.skipped`. A local time that happens twice (the autumn fall-back) takes its
first instant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule as du

from . import timebounds
from .choices import DAY_CODES, Frequency
from .conf import booking_settings
from .exceptions import InvalidInput
from .validators import is_valid_timezone

#: Expansion stops this many years after the start date (and at the end of the supported
#: dates, :data:`~liveclass_booking.timebounds.LATEST_DATE`), whatever the rule says: a guard
#: against rules that never (or almost never) match, not a limit anybody should reach.
HORIZON_YEARS = 50

#: The Gregorian calendar repeats itself, weekdays and leap years included, every 400 years.
CALENDAR_CYCLE_YEARS = 400

#: The largest ``INTERVAL`` of a custom RRULE.
MAX_RRULE_INTERVAL = 1000

#: RRULE parts a custom rule may not use: the start, the end and the time of day come from
#: the series' own fields, and a live class repeats at most daily.
FORBIDDEN_RRULE_PARTS = {
    "COUNT": "give occurrence_count instead of COUNT in the RRULE",
    "UNTIL": "give until_date instead of UNTIL in the RRULE",
    "DTSTART": "give start_date and start_time instead of DTSTART",
    "BYHOUR": "the time of day is start_time",
    "BYMINUTE": "the time of day is start_time",
    "BYSECOND": "the time of day is start_time",
}
ALLOWED_RRULE_FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")

_NUMBER = r"[+-]?[0-9]{1,4}"
_DAY = rf"(?:{_NUMBER})?(?:{'|'.join(DAY_CODES)})"


def _numbers(low: int, high: int, signed: bool = True) -> tuple[str, Any]:
    """A comma-separated list of whole numbers in ``low..high`` (and ``-high..-low``)."""

    def valid(value: str) -> bool:
        number = int(value)
        return low <= number <= high or (signed and -high <= number <= -low)

    return rf"{_NUMBER}(?:,{_NUMBER})*", lambda value: all(map(valid, value.split(",")))


def _days(value: str) -> bool:
    ordinals = [re.sub("[A-Z]+$", "", day) for day in value.split(",")]
    return all(not n or 1 <= abs(int(n)) <= 53 for n in ordinals)


#: The parts a custom RRULE may use, with the RFC 5545 form and range of their values.
RRULE_PARTS: dict[str, tuple[str, Any]] = {
    "FREQ": ("|".join(ALLOWED_RRULE_FREQUENCIES), lambda value: True),
    "INTERVAL": _numbers(1, MAX_RRULE_INTERVAL, signed=False),
    "WKST": ("|".join(DAY_CODES), lambda value: True),
    "BYDAY": (rf"{_DAY}(?:,{_DAY})*", _days),
    "BYMONTHDAY": _numbers(1, 31),
    "BYMONTH": _numbers(1, 12, signed=False),
    "BYYEARDAY": _numbers(1, 366),
    "BYWEEKNO": _numbers(1, 53),
    "BYSETPOS": _numbers(1, 366),
}
_RRULE_RANGES = {
    "INTERVAL": f"1 to {MAX_RRULE_INTERVAL}",
    "BYMONTHDAY": "±1 to ±31",
    "BYMONTH": "1 to 12",
    "BYYEARDAY": "±1 to ±366",
    "BYWEEKNO": "±1 to ±53",
    "BYSETPOS": "±1 to ±366",
    "BYDAY": "day codes, each with an optional ordinal ±1 to ±53 (2TU, -1FR)",
    "WKST": "a day code",
}
_WEEKDAYS = dict(zip(DAY_CODES, (du.MO, du.TU, du.WE, du.TH, du.FR, du.SA, du.SU), strict=True))


@dataclass(frozen=True)
class Occurrence:
    """One occurrence: its 1-based ``index`` and its start and end in UTC."""

    index: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SkippedTime:
    """A local date and wall time the rule names but the zone does not have (a DST gap)."""

    date: date
    time: time
    timezone: str
    code: str = "nonexistent_time"

    def instant(self) -> datetime:
        """An instant to order this wall time by (moved forward, as zoneinfo does)."""
        return datetime.combine(self.date, self.time, tzinfo=ZoneInfo(self.timezone))

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "time": self.time.isoformat(),
            "timezone": self.timezone,
            "code": self.code,
        }


@dataclass
class Expansion:
    occurrences: list[Occurrence] = field(default_factory=list)
    skipped: list[SkippedTime] = field(default_factory=list)


def _fail(message: str, field_name: str) -> InvalidInput:
    return InvalidInput(message, field=field_name, errors={field_name: [message]})


def parse_rrule(text: str) -> dict[str, str]:
    """Split RRULE text (``FREQ=WEEKLY;BYDAY=MO,WE`` with or without ``RRULE:``) into its
    parts, refusing what a series' own fields decide; raise ``invalid`` on anything else."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body or "\n" in body:
        raise _fail("Give one RRULE line such as FREQ=WEEKLY;BYDAY=MO,WE.", "rrule")
    parts: dict[str, str] = {}
    for piece in body.split(";"):
        name, sep, value = piece.partition("=")
        name = name.strip().upper()
        if not sep or not name or not value.strip() or name in parts:
            raise _fail(f"“{piece}” is not a NAME=VALUE part of an RRULE.", "rrule")
        if name in FORBIDDEN_RRULE_PARTS:
            raise _fail(f"{name} is not allowed here: {FORBIDDEN_RRULE_PARTS[name]}.", "rrule")
        if name not in RRULE_PARTS:
            raise _fail(
                f"{name} is not an RRULE part this rule may use; use {', '.join(RRULE_PARTS)}.",
                "rrule",
            )
        parts[name] = value.strip().upper()
    if parts.get("FREQ") not in ALLOWED_RRULE_FREQUENCIES:
        raise _fail(
            f"FREQ must be one of {', '.join(ALLOWED_RRULE_FREQUENCIES)}.",
            "rrule",
        )
    for name, value in parts.items():
        pattern, in_range = RRULE_PARTS[name]
        if not re.fullmatch(pattern, value, flags=re.ASCII) or not in_range(value):
            message = f"{name}={value} is not valid: {name} takes {_RRULE_RANGES[name]}."
            raise _fail(message, "rrule")
    return parts


@dataclass(frozen=True)
class Recurrence:
    """The rule of a series or of a run of recurring sessions (see the module docstring)."""

    frequency: str
    start_date: date
    start_time: time
    timezone: str
    duration_minutes: int
    interval: int = 1
    days_of_week: str = ""
    occurrence_count: int | None = None
    until_date: date | None = None
    rrule: str = ""

    RULE_FIELDS = (
        "frequency",
        "start_date",
        "start_time",
        "timezone",
        "duration_minutes",
        "interval",
        "days_of_week",
        "occurrence_count",
        "until_date",
        "rrule",
    )

    @classmethod
    def of(cls, obj: Any) -> Recurrence:
        """The rule stored on ``obj`` (a series, or anything with the rule fields)."""
        return cls(**{name: getattr(obj, name) for name in cls.RULE_FIELDS})

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def days(self) -> list[str]:
        return [code.strip().upper() for code in self.days_of_week.split(",") if code.strip()]

    def validate(self) -> None:
        """Raise ``invalid`` (naming the field) unless the rule is complete and consistent."""
        if self.frequency not in Frequency.values:
            raise _fail(f"frequency must be one of {', '.join(Frequency.values)}.", "frequency")
        if not is_valid_timezone(self.timezone):
            raise _fail(
                f"“{self.timezone}” is not an IANA time-zone name (for example Europe/Berlin).",
                "timezone",
            )
        if self.start_time.second or self.start_time.microsecond or self.start_time.tzinfo:
            raise _fail(
                "start_time is a local wall time in whole minutes, without an offset.",
                "start_time",
            )
        if not isinstance(self.interval, int) or self.interval < 1:
            raise _fail("interval must be a whole number of at least 1.", "interval")
        if not isinstance(self.duration_minutes, int) or not 1 <= self.duration_minutes <= 1440:
            raise _fail("duration_minutes must be between 1 and 1440.", "duration_minutes")
        if (self.occurrence_count is None) == (self.until_date is None):
            raise _fail("Give exactly one of occurrence_count and until_date.", "occurrence_count")
        cap = booking_settings.SERIES_MAX_OCCURRENCES
        if self.occurrence_count is not None and not 1 <= self.occurrence_count <= cap:
            raise _fail(
                f"occurrence_count must be between 1 and {cap} (the configured maximum).",
                "occurrence_count",
            )
        for name in ("start_date", "until_date"):
            value = getattr(self, name)
            if value is not None:
                try:
                    timebounds.check_date(value)
                except timebounds.OutOfRange as exc:
                    raise _fail(str(exc), name) from None
        if self.until_date is not None and self.until_date < self.start_date:
            raise _fail("until_date cannot be before start_date.", "until_date")
        unknown = [code for code in self.days if code not in DAY_CODES]
        if unknown or len(set(self.days)) != len(self.days):
            raise _fail(
                "days_of_week is a comma-separated list of distinct MO, TU, WE, TH, FR, SA, SU.",
                "days_of_week",
            )
        if self.frequency == Frequency.CUSTOM:
            if not self.rrule:
                raise _fail("A custom frequency needs an RRULE.", "rrule")
            if self.interval != 1 or self.days:
                raise _fail(
                    "A custom rule keeps its interval and days in the RRULE "
                    "(INTERVAL=, BYDAY=); leave interval and days_of_week unset.",
                    "rrule",
                )
            parse_rrule(self.rrule)
        else:
            if self.rrule:
                raise _fail("rrule is only for the custom frequency.", "rrule")
            if self.frequency == Frequency.MONTHLY and self.days:
                raise _fail(
                    "A monthly rule repeats on the start date's day of the month; for rules "
                    "like “the second Tuesday” use frequency custom with an RRULE.",
                    "days_of_week",
                )

    def _rule(self, dtstart: datetime, until: datetime) -> du.rrule:
        """The dateutil rule from naive wall-time ``dtstart`` to ``until`` (inclusive)."""
        if self.frequency == Frequency.CUSTOM:
            parts = parse_rrule(self.rrule)
            text = ";".join(f"{name}={value}" for name, value in parts.items())
            rule = du.rrulestr(text, dtstart=dtstart)
            if not isinstance(rule, du.rrule):
                raise _fail("Give a single RRULE.", "rrule")
            return rule.replace(until=until)
        weekly = self.frequency in (Frequency.WEEKLY, Frequency.BIWEEKLY)
        step = self.interval * (2 if self.frequency == Frequency.BIWEEKLY else 1)
        return du.rrule(
            du.WEEKLY if weekly else du.MONTHLY,
            dtstart=dtstart,
            interval=step,
            wkst=du.MO,
            byweekday=[_WEEKDAYS[code] for code in self.days] or None,
            until=until,
        )

    def _local_times(self) -> Iterator[datetime]:
        """The naive local wall times the rule names, from the start date to the last day
        (``until_date``, capped by the horizon), in order."""
        horizon = timebounds.add_years(self.start_date, HORIZON_YEARS)
        last_day = min(self.until_date or horizon, horizon, timebounds.LATEST_DATE)
        # dateutil walks a rule period by period and looks at UNTIL only in a period that
        # matches, so a rule that stops matching (FEB with BYMONTHDAY=30, a BYSETPOS past
        # every set) would be walked day by day up to the year 9999. The rule is walked
        # instead in naive wall time moved by whole calendar cycles to end in the last cycle
        # before 9999, where dateutil stops by itself, and moved back: at most one cycle is
        # walked past the last day.
        shift = (MAXYEAR - last_day.year) // CALENDAR_CYCLE_YEARS * CALENDAR_CYCLE_YEARS
        dtstart = datetime.combine(
            self.start_date.replace(year=self.start_date.year + shift), self.start_time
        )
        until = datetime.combine(last_day.replace(year=last_day.year + shift), time.max)
        try:
            for moved in self._rule(dtstart, until):
                yield moved.replace(year=moved.year - shift)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            field_name = "rrule" if self.frequency == Frequency.CUSTOM else "start_date"
            raise _fail(f"This rule cannot be expanded: {exc}.", field_name) from exc

    def expand(self, *, first_index: int = 1) -> Expansion:
        """Validate the rule and return its occurrences in order, numbered from
        ``first_index``, with the local times it had to skip. Raise ``invalid`` when the rule
        gives more occurrences than ``LIVECLASS_BOOKING_SERIES_MAX_OCCURRENCES`` or none."""
        self.validate()
        tz = ZoneInfo(self.timezone)
        cap = booking_settings.SERIES_MAX_OCCURRENCES
        wanted = self.occurrence_count
        result = Expansion()
        duration = self.duration
        for wall in self._local_times():
            local = wall.replace(tzinfo=tz)
            # A wall time the zone skips does not survive the round trip through UTC.
            start = local.astimezone(UTC)
            if start.astimezone(tz).replace(tzinfo=None) != wall:
                result.skipped.append(SkippedTime(local.date(), local.time(), self.timezone))
                continue
            if len(result.occurrences) >= cap:
                raise _fail(
                    f"This rule gives more than {cap} occurrences, the configured maximum; "
                    "use an earlier until_date or an occurrence_count.",
                    "until_date",
                )
            index = first_index + len(result.occurrences)
            result.occurrences.append(Occurrence(index, start, start + duration))
            if wanted is not None and len(result.occurrences) >= wanted:
                break
        if wanted is not None and len(result.occurrences) < wanted:
            raise _fail(
                f"This rule gives only {len(result.occurrences)} occurrences in the "
                f"{HORIZON_YEARS} years after its start, not {wanted}.",
                "occurrence_count",
            )
        if not result.occurrences:
            raise _fail("This rule gives no occurrence.", "until_date")
        # Skipped times after the last occurrence were never part of the series.
        last = result.occurrences[-1].start
        result.skipped = [s for s in result.skipped if s.instant() < last]
        return result
