"""Teacher availability and free one-on-one slots.

:class:`TeacherSchedule` loads, with a constant number of queries, everything that decides
whether a one-on-one interval is bookable for a teacher in a time range: weekly windows and
date exceptions (in their own IANA zones, so right across DST changes), the teacher's active
one-on-one bookings and scheduled sessions, the busy periods imported from the teacher's own
calendars, the policy's notice, buffers and daily limit.
:meth:`TeacherSchedule.broken_rule` is the one answer to "is this interval bookable?" (and
:meth:`~TeacherSchedule.first_violation` the error it makes),
used both by :func:`free_slots` and by the booking services.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from ..choices import ACTIVE_BOOKING_STATUSES, BookingType, ExceptionKind, SessionStatus
from ..exceptions import (
    BookingError,
    DailyLimitReached,
    InvalidInput,
    MinNotice,
    OutsideAvailability,
    SlotUnavailable,
)
from ..models import (
    AvailabilityException,
    BusyPeriod,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_session_model,
)
from ..policies import get_policy_resolver
from ..querysets import epoch_rows_of, overdue_requests

Interval = tuple[datetime, datetime]

#: Slot listings cover at most this long a range, to keep one request cheap.
MAX_SLOT_RANGE = timedelta(days=92)


def _local(day: date, at: time, zone: str) -> datetime:
    """``day`` at wall time ``at`` in ``zone``, as UTC (a time in a DST gap moves forward)."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _local_dates(start: datetime, end: datetime, zone: str) -> Iterator[date]:
    tz = ZoneInfo(zone)
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        yield day
        day += timedelta(days=1)


_At = TypeVar("_At", datetime, float)


def _merge(intervals: Iterable[tuple[_At, _At]]) -> list[tuple[_At, _At]]:
    merged: list[tuple[_At, _At]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(intervals: list[Interval], holes: list[Interval]) -> list[Interval]:
    result = []
    for start, end in intervals:
        pieces = [(start, end)]
        for h_start, h_end in holes:
            next_pieces = []
            for p_start, p_end in pieces:
                if h_end <= p_start or h_start >= p_end:
                    next_pieces.append((p_start, p_end))
                    continue
                if p_start < h_start:
                    next_pieces.append((p_start, h_start))
                if h_end < p_end:
                    next_pieces.append((h_end, p_end))
            pieces = next_pieces
        result.extend(pieces)
    return result


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 or hours <= -1 else f"{hours * 60:.0f} min"


def _span(interval: Interval) -> str:
    return f"{interval[0]:%Y-%m-%d %H:%M}–{interval[1]:%Y-%m-%d %H:%M} UTC"


@dataclass
class TeacherSchedule:
    """Everything that decides one-on-one bookability for one teacher and course in a range."""

    teacher: Any
    course: Any
    policy: TeacherBookingPolicy
    now: datetime
    zone: str
    open_intervals: list[Interval] = field(default_factory=list)
    busy: list[Interval] = field(default_factory=list)
    #: Imported busy periods as epoch seconds: thousands of them are read for one listing,
    #: and only the one an error names becomes a datetime.
    external: list[tuple[float, float]] = field(default_factory=list)
    per_day: Counter[date] = field(default_factory=Counter)
    _open_starts: list[datetime] = field(default_factory=list)
    _busy_starts: list[datetime] = field(default_factory=list)
    _external_starts: list[float] = field(default_factory=list)
    _before: timedelta = timedelta(0)
    _after: timedelta = timedelta(0)
    _earliest: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))

    @classmethod
    def load(
        cls,
        teacher: Any,
        course: Any,
        start: datetime,
        end: datetime,
        *,
        policy: TeacherBookingPolicy | None = None,
        now: datetime | None = None,
    ) -> TeacherSchedule:
        """Load the schedule of ``teacher`` for intervals between ``start`` and ``end``."""
        resolver = get_policy_resolver()
        policy = policy or resolver.get_policy(teacher, course)
        schedule = cls(
            teacher=teacher,
            course=course,
            policy=policy,
            now=now or timezone.now(),
            zone=resolver.get_user_timezone(teacher),
        )
        before = timedelta(minutes=policy.buffer_before_minutes)
        after = timedelta(minutes=policy.buffer_after_minutes)
        schedule._before, schedule._after = before, after
        schedule._earliest = schedule.now + timedelta(hours=policy.min_notice_hours)
        # Whole local days around the range, for the daily limit and the buffers.
        tz = ZoneInfo(schedule.zone)
        day_from = datetime.combine(
            (start - before).astimezone(tz).date(), time.min, tzinfo=tz
        ).astimezone(UTC)
        day_until = datetime.combine(
            (end + after).astimezone(tz).date() + timedelta(days=1), time.min, tzinfo=tz
        ).astimezone(UTC)
        schedule._load_open_intervals(start - before, end + after)
        schedule._load_busy(day_from, day_until, before, after)
        return schedule

    def _load_open_intervals(self, start: datetime, end: datetime) -> None:
        course_scope = Q(course__isnull=True)
        if self.course is not None:
            course_scope |= Q(course=self.course)
        windows = TeacherAvailability.objects.filter(course_scope, teacher=self.teacher)
        first_day = (start - timedelta(days=1)).date()
        last_day = (end + timedelta(days=1)).date()
        exceptions = AvailabilityException.objects.filter(
            Q(kind=ExceptionKind.UNAVAILABLE) | course_scope,
            teacher=self.teacher,
            date__gte=first_day,
            date__lte=last_day,
        )
        opened: list[Interval] = []
        for window in windows:
            for day in _local_dates(start, end, window.timezone):
                if day.weekday() != window.weekday:
                    continue
                if window.valid_from and day < window.valid_from:
                    continue
                if window.valid_until and day > window.valid_until:
                    continue
                opened.append(
                    (
                        _local(day, window.start_time, window.timezone),
                        _local(day, window.end_time, window.timezone),
                    )
                )
        closed: list[Interval] = []
        for exc in exceptions:
            if exc.start_time is None or exc.end_time is None:
                interval = (
                    _local(exc.date, time.min, exc.timezone),
                    _local(exc.date + timedelta(days=1), time.min, exc.timezone),
                )
            else:
                interval = (
                    _local(exc.date, exc.start_time, exc.timezone),
                    _local(exc.date, exc.end_time, exc.timezone),
                )
            (opened if exc.kind == ExceptionKind.AVAILABLE else closed).append(interval)
        self.open_intervals = _merge(_subtract(_merge(opened), _merge(closed)))
        self._open_starts = [interval[0] for interval in self.open_intervals]

    def _load_busy(
        self,
        start: datetime,
        end: datetime,
        before: timedelta,
        after: timedelta,
    ) -> None:
        tz = ZoneInfo(self.zone)
        bookings = (
            get_booking_model()
            .objects.filter(
                teacher=self.teacher,
                booking_type=BookingType.ONE_ON_ONE,
                status__in=ACTIVE_BOOKING_STATUSES,
                blocked_until_utc__gt=start,
                blocked_from_utc__lt=end,
            )
            .exclude(overdue_requests(self.now))
        )
        sessions = get_session_model().objects.filter(
            teacher=self.teacher,
            status=SessionStatus.SCHEDULED,
            end_at_utc__gt=start,
            start_at_utc__lt=end,
        )
        # Imported from the teacher's calendars (the sync stores no titles, so nothing
        # private can reach an error).
        periods = BusyPeriod.objects.filter(
            teacher=self.teacher, end_at_utc__gt=start, start_at_utc__lt=end
        )
        # Start times only matter for the daily limit; skip converting them otherwise.
        counting = self.policy.max_bookings_per_day is not None
        rows = epoch_rows_of(
            (
                bookings,
                ("blocked_from_utc", "blocked_until_utc", "start_at_utc" if counting else None),
            ),
            (sessions, ("start_at_utc", "end_at_utc", None)),
            (periods, ("start_at_utc", "end_at_utc", None)),
        )
        stamp = datetime.fromtimestamp
        busy: list[Interval] = []
        external: list[tuple[float, float]] = []
        for part, row_start, row_end, lesson_start in rows:
            if part == 2:
                external.append((row_start, row_end))
            elif part == 0:
                busy.append((stamp(row_start, UTC), stamp(row_end, UTC)))
                if counting:
                    self.per_day[stamp(lesson_start, tz).date()] += 1
            else:
                busy.append((stamp(row_start, UTC) - before, stamp(row_end, UTC) + after))
        self.busy = _merge(busy)
        self._busy_starts = [b[0] for b in self.busy]
        self.external = _merge(external)
        self._external_starts = [b[0] for b in self.external]

    def blocked_range(self, start: datetime, end: datetime) -> Interval:
        """The teacher's time a lesson from ``start`` to ``end`` blocks, buffers included."""
        return (start - self._before, end + self._after)

    def broken_rule(self, start: datetime, end: datetime) -> str | None:
        """Return the first rule a lesson from ``start`` to ``end`` breaks, by name
        (``invalid``, ``min_notice``, ``outside_availability``, ``slot_unavailable``,
        ``busy_period``, ``daily_limit_reached``), or None when it can be booked. The rules
        themselves, without building an error: slot listings ask this thousands of times."""
        if end <= start:
            return "invalid"
        if start < self._earliest:
            return "min_notice"
        index = bisect.bisect_right(self._open_starts, start)
        if index == 0 or self.open_intervals[index - 1][1] < end:
            return "outside_availability"
        blocked_from, blocked_until = start - self._before, end + self._after
        i = bisect.bisect_left(self._busy_starts, blocked_until)
        if i > 0 and self.busy[i - 1][1] > blocked_from:
            return "slot_unavailable"
        if self.external:
            i = bisect.bisect_left(self._external_starts, blocked_until.timestamp())
            if i > 0 and self.external[i - 1][1] > blocked_from.timestamp():
                return "busy_period"
        limit = self.policy.max_bookings_per_day
        if limit is not None and self.per_day[self._local_day(start)] >= limit:
            return "daily_limit_reached"
        return None

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(ZoneInfo(self.zone)).date()

    def is_free(self, start: datetime, end: datetime) -> bool:
        """Return whether a lesson from ``start`` to ``end`` can be booked."""
        return self.broken_rule(start, end) is None

    def first_violation(self, start: datetime, end: datetime) -> BookingError | None:
        """Return the first rule a lesson from ``start`` to ``end`` breaks (notice,
        availability, buffers, imported busy periods, daily limit, overlaps), as the error to
        raise, or None when it can be booked (see :meth:`broken_rule`)."""
        rule = self.broken_rule(start, end)
        if rule is None:
            return None
        if rule == "invalid":
            return InvalidInput("A lesson must end after it starts.", field="end_at_utc")
        if rule == "min_notice":
            when = (
                f"this starts in {_hours(start - self.now)}"
                if start > self.now
                else "this time has already passed"
            )
            return MinNotice(
                f"bookings need {self.policy.min_notice_hours} h notice; {when}.",
                min_notice_hours=self.policy.min_notice_hours,
            )
        if rule == "outside_availability":
            return OutsideAvailability(
                "this time is outside the teacher's availability "
                f"(the teacher's time zone is {self.zone})."
            )
        if rule == "slot_unavailable":
            return SlotUnavailable(
                "the teacher already has a lesson or class at this time, buffers included "
                f"({self.policy.buffer_before_minutes} min before, "
                f"{self.policy.buffer_after_minutes} min after)."
            )
        if rule == "busy_period":
            until = self.blocked_range(start, end)[1].timestamp()
            i = bisect.bisect_left(self._external_starts, until)
            busy_from, busy_until = (datetime.fromtimestamp(at, UTC) for at in self.external[i - 1])
            return SlotUnavailable(
                "the teacher is busy at this time according to their own calendar "
                f"(an imported busy period, {_span((busy_from, busy_until))}, buffers "
                "included).",
                busy_from=busy_from.isoformat(),
                busy_until=busy_until.isoformat(),
            )
        limit = self.policy.max_bookings_per_day
        day = self._local_day(start)
        return DailyLimitReached(
            f"the teacher takes at most {limit} one-on-one bookings a day and {day} "
            f"({self.zone}) already has {self.per_day[day]}.",
            max_bookings_per_day=limit,
        )

    def reserve(self, start: datetime, end: datetime) -> None:
        """Count a lesson from ``start`` to ``end`` as booked, so that later questions in the
        same run (the next occurrences of a series) see it."""
        self.busy = _merge([*self.busy, self.blocked_range(start, end)])
        self._busy_starts = [b[0] for b in self.busy]
        self.per_day[start.astimezone(ZoneInfo(self.zone)).date()] += 1

    def check(self, start: datetime, end: datetime) -> None:
        """Raise the domain error that stops a lesson from ``start`` to ``end``, if any."""
        error = self.first_violation(start, end)
        if error is not None:
            raise error

    def free_starts(
        self, start: datetime, end: datetime, duration: timedelta, step: timedelta
    ) -> list[datetime]:
        """The starts of free lessons of ``duration`` within ``start``–``end``, stepping by
        ``step`` from each open window's start. Every candidate is asked
        :meth:`broken_rule`; past a lesson, session or busy period that blocks one, the
        candidates it blocks as well are skipped without asking."""
        found = []
        for open_start, open_end in self.open_intervals:
            last = min(open_end, end) - duration
            at = _step_up(open_start, max(start, open_start), step)
            while at <= last:
                rule = self.broken_rule(at, at + duration)
                if rule is None:
                    found.append(at)
                    at += step
                    continue
                resume = self._free_again(rule, at, at + duration)
                at += step
                if resume > at:
                    at = _step_up(open_start, resume, step)
        return found

    def _free_again(self, rule: str, start: datetime, end: datetime) -> datetime:
        """The earliest start from which the interval or time that made ``rule`` break for a
        lesson from ``start`` to ``end`` no longer blocks (``start`` if unknown)."""
        if rule == "min_notice":
            return self._earliest
        if rule == "slot_unavailable":
            i = bisect.bisect_left(self._busy_starts, end + self._after)
            return self.busy[i - 1][1] + self._before
        if rule == "busy_period":
            i = bisect.bisect_left(self._external_starts, (end + self._after).timestamp())
            return datetime.fromtimestamp(self.external[i - 1][1], UTC) + self._before
        return start


def _step_up(origin: datetime, at: datetime, step: timedelta) -> datetime:
    """The first of ``origin``, ``origin + step``, ``origin + 2 * step``… at or after ``at``."""
    return origin + -((origin - at) // step) * step


def is_interval_bookable(
    teacher: Any, course: Any, start: datetime, end: datetime, **kwargs: Any
) -> bool:
    """Return whether ``teacher`` can take a one-on-one lesson from ``start`` to ``end``."""
    from .common import require_aware

    require_aware(start, "start")
    require_aware(end, "end")
    schedule = TeacherSchedule.load(teacher, course, start, end, **kwargs)
    return schedule.is_free(start, end)


def free_slots(
    teacher: Any,
    course: Any,
    start: datetime,
    end: datetime,
    duration: timedelta,
    step: timedelta | None = None,
) -> list[datetime]:
    """Return the start times of free one-on-one lessons of ``duration`` between ``start`` and
    ``end`` (UTC), stepping by ``step`` (default: ``duration``) from each window's start.
    ``teacher`` must be a teacher the resolver's ``can_teach`` accepts for ``course``."""
    from .common import require_aware
    from .rules import require_teacher

    require_aware(start, "start")
    require_aware(end, "end")
    require_teacher(teacher, course)
    step = step or duration
    if duration <= timedelta(0) or step <= timedelta(0):
        raise InvalidInput("duration and step must be positive.", field="duration")
    if end <= start:
        raise InvalidInput("end must be after start.", field="end")
    if end - start > MAX_SLOT_RANGE:
        raise InvalidInput(
            f"a slot listing covers at most {MAX_SLOT_RANGE.days} days.", field="end"
        )
    return TeacherSchedule.load(teacher, course, start, end).free_starts(start, end, duration, step)
