"""Teacher availability and free one-on-one slots.

:class:`TeacherSchedule` loads, with a constant number of queries, everything that decides
whether a one-on-one interval is bookable for a teacher in a time range: weekly windows and
date exceptions (in their own IANA zones, so right across DST changes), the teacher's active
one-on-one bookings and scheduled sessions, the busy periods imported from the teacher's own
calendars, the policy's notice, buffers and daily limit.
:meth:`TeacherSchedule.broken_rule` is the one answer to "is this interval bookable?" (and
:meth:`~TeacherSchedule.first_violation` the error it makes),
used both by :func:`free_slots` and by the booking services.

Inside, instants are whole microseconds since the epoch (``int``, see
:func:`~liveclass_booking.querysets.micros`): the database sends them so
(:func:`~liveclass_booking.querysets.micros_rows_of`), they add and compare exactly and
several times faster than aware datetimes, and a slot listing asks thousands of questions.
The public methods take and give aware datetimes.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import CharField, DateField, DateTimeField, IntegerField, Q, QuerySet, Value
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
    get_course_model,
    get_session_model,
)
from ..policies import get_policy_resolver
from ..prepared import Param, Prepared
from ..querysets import (
    EPOCH_VENDORS,
    from_micros,
    micros,
    micros_rows_of,
    micros_union,
    overdue_requests,
)

Interval = tuple[datetime, datetime]
#: An interval in whole microseconds since the epoch.
Span = tuple[int, int]

#: Slot listings cover at most this long a range, to keep one request cheap.
MAX_SLOT_RANGE = timedelta(days=92)

_MICROSECOND = timedelta(microseconds=1)


def _local(day: date, at: time, zone: ZoneInfo) -> int:
    """``day`` at wall time ``at`` in ``zone`` (a time in a DST gap moves forward)."""
    return micros(datetime.combine(day, at, tzinfo=zone))


def _merge(intervals: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _subtract(intervals: list[Span], holes: list[Span]) -> list[Span]:
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


def _covering(spans: list[Span], starts: list[int], at: int) -> Span | None:
    """The span of ``spans`` (sorted, disjoint; ``starts`` their starts) holding ``at``."""
    i = bisect.bisect_right(starts, at)
    if i and spans[i - 1][1] > at:
        return spans[i - 1]
    return None


@dataclass
class TeacherSchedule:
    """Everything that decides one-on-one bookability for one teacher and course in a range.

    Build one with :meth:`load`; the spans are microseconds since the epoch, sorted and
    merged (:meth:`index` recomputes what is derived from them after a change)."""

    teacher: Any
    course: Any
    policy: TeacherBookingPolicy
    now: datetime
    zone: str
    #: The teacher's open windows, exceptions applied.
    open_intervals: list[Span] = field(default_factory=list)
    #: The times the teacher's lessons (buffers included) and sessions (buffers added) take.
    busy: list[Span] = field(default_factory=list)
    #: The busy periods imported from the teacher's own calendars.
    external: list[Span] = field(default_factory=list)
    #: One-on-one lessons per local day of the teacher, for the daily limit.
    per_day: Counter[date] = field(default_factory=Counter)
    _open_starts: list[int] = field(default_factory=list)
    _busy_starts: list[int] = field(default_factory=list)
    _external_starts: list[int] = field(default_factory=list)
    #: The teacher's local days that have reached the daily limit.
    _full_days: list[Span] = field(default_factory=list)
    _full_day_starts: list[int] = field(default_factory=list)
    _before: int = 0
    _after: int = 0
    _earliest: int = micros(datetime.min.replace(tzinfo=UTC))

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
        schedule = cls.open_hours(teacher, course, start, end, policy=policy, now=now)
        schedule.load_taken(start, end)
        return schedule

    @classmethod
    def open_hours(
        cls,
        teacher: Any,
        course: Any,
        start: datetime,
        end: datetime,
        *,
        policy: TeacherBookingPolicy | None = None,
        now: datetime | None = None,
    ) -> TeacherSchedule:
        """The first half of :meth:`load`: the policy and the teacher's open windows
        (exceptions applied) around ``start`` and ``end``; :meth:`load_taken` adds what is
        taken. A booking reads these before it takes the teacher's row lock: the lock orders
        the teacher's bookings, not changes to the teacher's settings."""
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
        schedule._load_open_intervals(start - before, end + after)
        return schedule

    def load_taken(self, start: datetime, end: datetime, *, now: datetime | None = None) -> None:
        """The second half of :meth:`load`: the teacher's lessons, sessions and imported busy
        periods on the whole local days around ``start`` and ``end`` (as of ``now``, when
        given), in one query."""
        if now is not None:
            self.now = now
        before = timedelta(minutes=self.policy.buffer_before_minutes)
        after = timedelta(minutes=self.policy.buffer_after_minutes)
        # Whole local days around the range, for the daily limit and the buffers.
        tz = ZoneInfo(self.zone)
        day_from = datetime.combine(
            (start - before).astimezone(tz).date(), time.min, tzinfo=tz
        ).astimezone(UTC)
        day_until = datetime.combine(
            (end + after).astimezone(tz).date() + timedelta(days=1), time.min, tzinfo=tz
        ).astimezone(UTC)
        self._load_busy(day_from, day_until)
        self.index()

    def index(self) -> None:
        """Recompute the lookups derived from the spans, the policy and the day counts."""
        policy = self.policy
        self._before = timedelta(minutes=policy.buffer_before_minutes) // _MICROSECOND
        self._after = timedelta(minutes=policy.buffer_after_minutes) // _MICROSECOND
        self._earliest = micros(self.now + timedelta(hours=policy.min_notice_hours))
        self._open_starts = [span[0] for span in self.open_intervals]
        self._busy_starts = [span[0] for span in self.busy]
        self._external_starts = [span[0] for span in self.external]
        limit = policy.max_bookings_per_day
        tz = ZoneInfo(self.zone)
        self._full_days = _merge(
            (_local(day, time.min, tz), _local(day + timedelta(days=1), time.min, tz))
            for day, count in self.per_day.items()
            if limit is not None and count >= limit
        )
        self._full_day_starts = [span[0] for span in self._full_days]

    def _load_open_intervals(self, start: datetime, end: datetime) -> None:
        first_day = (start - timedelta(days=1)).date()
        last_day = (end + timedelta(days=1)).date()
        week = timedelta(days=7)
        opened: list[Span] = []
        closed: list[Span] = []
        rows = _OPEN_HOURS[self.course is not None].rows(
            teacher=self.teacher.pk,
            course=getattr(self.course, "pk", None),
            first_day=first_day,
            last_day=last_day,
        )
        for part, weekday, on, valid_from, valid_until, start_time, end_time, zone, kind in rows:
            tz = ZoneInfo(zone)
            if part == 0:
                # The local days around the range, from the first one on the window's weekday.
                day = start.astimezone(tz).date() - timedelta(days=1)
                day += timedelta(days=(int(weekday) - day.weekday()) % 7)
                last = end.astimezone(tz).date() + timedelta(days=1)
                if valid_until and valid_until < last:
                    last = valid_until
                while day <= last:
                    if not valid_from or day >= valid_from:
                        opened.append((_local(day, start_time, tz), _local(day, end_time, tz)))
                    day += week
                continue
            if start_time is None or end_time is None:
                interval = (_local(on, time.min, tz), _local(on + timedelta(days=1), time.min, tz))
            else:
                interval = (_local(on, start_time, tz), _local(on, end_time, tz))
            (opened if kind == ExceptionKind.AVAILABLE else closed).append(interval)
        self.open_intervals = _merge(_subtract(_merge(opened), _merge(closed)))

    def _load_busy(self, start: datetime, end: datetime) -> None:
        # Start times only matter for the daily limit; skip reading them otherwise.
        counting = self.policy.max_bookings_per_day is not None
        values = {"teacher": self.teacher.pk, "start": start, "end": end, "now": self.now}
        prepared = _TAKEN[counting]
        using = prepared.alias()
        if connections[using].vendor in EPOCH_VENDORS:
            rows = prepared.rows(using=using, **values)
        else:
            rows = micros_rows_of(*_taken_parts(counting, **values))
        before = timedelta(minutes=self.policy.buffer_before_minutes) // _MICROSECOND
        after = timedelta(minutes=self.policy.buffer_after_minutes) // _MICROSECOND
        busy: list[Span] = []
        external: list[Span] = []
        lesson_starts: list[int] = []
        for part, row_start, row_end, lesson_start in rows:
            if part == 2:
                external.append((row_start, row_end))
            elif part == 0:
                busy.append((row_start, row_end))
                if counting:
                    lesson_starts.append(lesson_start)
            else:
                busy.append((row_start - before, row_end + after))
        tz = ZoneInfo(self.zone)
        self.per_day.update(from_micros(at).astimezone(tz).date() for at in lesson_starts)
        self.busy = _merge(busy)
        self.external = _merge(external)

    def blocked_range(self, start: datetime, end: datetime) -> Interval:
        """The teacher's time a lesson from ``start`` to ``end`` blocks, buffers included."""
        return (
            start - timedelta(minutes=self.policy.buffer_before_minutes),
            end + timedelta(minutes=self.policy.buffer_after_minutes),
        )

    def broken_rule(self, start: datetime, end: datetime) -> str | None:
        """Return the first rule a lesson from ``start`` to ``end`` breaks, by name
        (``invalid``, ``min_notice``, ``outside_availability``, ``slot_unavailable``,
        ``busy_period``, ``daily_limit_reached``), or None when it can be booked. The rules
        themselves, without building an error: slot listings ask this thousands of times."""
        return self._broken(micros(start), micros(end))

    def _broken(self, start: int, end: int) -> str | None:
        """:meth:`broken_rule` in microseconds."""
        if end <= start:
            return "invalid"
        if start < self._earliest:
            return "min_notice"
        i = bisect.bisect_right(self._open_starts, start)
        if i == 0 or self.open_intervals[i - 1][1] < end:
            return "outside_availability"
        blocked_from, blocked_until = start - self._before, end + self._after
        i = bisect.bisect_left(self._busy_starts, blocked_until)
        if i and self.busy[i - 1][1] > blocked_from:
            return "slot_unavailable"
        i = bisect.bisect_left(self._external_starts, blocked_until)
        if i and self.external[i - 1][1] > blocked_from:
            return "busy_period"
        if self._full_days and _covering(self._full_days, self._full_day_starts, start):
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
            # The last imported span starting before the lesson's buffer ends: the blocker.
            i = bisect.bisect_left(self._external_starts, micros(end) + self._after)
            span = self.external[i - 1]
            busy_from, busy_until = from_micros(span[0]), from_micros(span[1])
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
        blocked_from, blocked_until = self.blocked_range(start, end)
        self.busy = _merge([*self.busy, (micros(blocked_from), micros(blocked_until))])
        self.per_day[self._local_day(start)] += 1
        self.index()

    def check(self, start: datetime, end: datetime) -> None:
        """Raise the domain error that stops a lesson from ``start`` to ``end``, if any."""
        error = self.first_violation(start, end)
        if error is not None:
            raise error

    def free_starts(
        self, start: datetime, end: datetime, duration: timedelta, step: timedelta
    ) -> list[datetime]:
        """The starts of free lessons of ``duration`` within ``start``–``end``, stepping by
        ``step`` from each open window's start: the candidates :meth:`broken_rule` lets
        through, found without asking it of each one. The rules, turned round into the
        starts they rule out (:meth:`_ruled_out_starts`), are walked once beside the open
        windows; a property test holds this to asking every candidate."""
        length, stride = duration // _MICROSECOND, step // _MICROSECOND
        first, final = max(micros(start), self._earliest), micros(end)
        ruled_out = self._ruled_out_starts(length)
        ruled_out_ends = [span[1] for span in ruled_out]
        found: list[datetime] = []
        for open_start, open_end in self.open_intervals:
            at, last = max(first, open_start), min(open_end, final) - length
            # The first ruled-out span that does not end before ``at``.
            i = bisect.bisect_left(ruled_out_ends, at)
            while at <= last:
                if i < len(ruled_out) and ruled_out[i][0] <= at:
                    at = ruled_out[i][1] + 1
                    i += 1
                    continue
                # Free from ``at`` up to the next ruled-out span (or the window's end).
                stop = last if i == len(ruled_out) else min(last, ruled_out[i][0] - 1)
                candidate = _step_up(open_start, at, stride)
                moment = from_micros(candidate)
                while candidate <= stop:
                    found.append(moment)
                    candidate += stride
                    moment += step
                at = stop + 1
        return found

    def _ruled_out_starts(self, length: int) -> list[Span]:
        """The starts a lesson of ``length`` may not have for the teacher's lessons,
        sessions, busy periods and full days, as closed spans (sorted, merged). A blocking
        span rules out the starts from which the lesson and its buffer after would reach into
        it up to those at which the buffer before would still touch it; a full day, its own
        starts. The notice and the open windows are the caller's."""
        after, before = self._after, self._before
        spans = [
            (span_start - length - after + 1, span_end + before - 1)
            for span_start, span_end in (*self.busy, *self.external)
        ]
        spans.extend((day_start, day_end - 1) for day_start, day_end in self._full_days)
        return _merge(spans)


def _step_up(origin: int, at: int, step: int) -> int:
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


def _open_hours(with_course: bool) -> QuerySet[Any]:
    """A teacher's weekly windows and date exceptions (placeholders ``teacher``, ``course``
    unless not ``with_course``, ``first_day`` and ``last_day``) in one query (UNION ALL),
    their columns lined up: part, weekday, date, valid from, valid until, times, zone, kind."""
    course_scope = Q(course__isnull=True)
    if with_course:
        course_scope |= Q(course_id=Param("course", get_course_model()._meta.pk))
    teacher = Param("teacher", get_user_model()._meta.pk)
    windows = (
        TeacherAvailability.objects.filter(course_scope, teacher_id=teacher)
        .order_by()
        .values_list(
            Value(0, output_field=IntegerField()),
            "weekday",
            Value(None, output_field=DateField()),
            "valid_from",
            "valid_until",
            "start_time",
            "end_time",
            "timezone",
            Value(None, output_field=CharField()),
        )
    )
    exceptions = (
        AvailabilityException.objects.filter(
            Q(kind=ExceptionKind.UNAVAILABLE) | course_scope,
            teacher_id=teacher,
            date__gte=Param("first_day", DateField()),
            date__lte=Param("last_day", DateField()),
        )
        .order_by()
        .values_list(
            Value(1, output_field=IntegerField()),
            Value(None, output_field=IntegerField()),
            "date",
            Value(None, output_field=DateField()),
            Value(None, output_field=DateField()),
            "start_time",
            "end_time",
            "timezone",
            "kind",
        )
    )
    return windows.union(exceptions, all=True).order_by()


#: :func:`_open_hours`, compiled: by whether a course is given.
_OPEN_HOURS = {
    with_course: Prepared(partial(_open_hours, with_course)) for with_course in (False, True)
}


def _taken_parts(
    counting: bool, *, teacher: Any, start: Any, end: Any, now: Any
) -> list[tuple[QuerySet[Any], tuple[str | None, ...]]]:
    """The parts of what takes a teacher's time between ``start`` and ``end`` (values or
    placeholders), for :func:`~liveclass_booking.querysets.micros_rows_of`: their lessons
    (blocked from, blocked until, and with ``counting`` the start), scheduled sessions and
    imported busy periods (start, end)."""
    bookings = (
        get_booking_model()
        .objects.filter(
            teacher_id=teacher,
            booking_type=BookingType.ONE_ON_ONE,
            status__in=ACTIVE_BOOKING_STATUSES,
            blocked_until_utc__gt=start,
            blocked_from_utc__lt=end,
        )
        .exclude(overdue_requests(now))
    )
    sessions = get_session_model().objects.filter(
        teacher_id=teacher,
        status=SessionStatus.SCHEDULED,
        end_at_utc__gt=start,
        start_at_utc__lt=end,
    )
    # Imported from the teacher's calendars (the sync stores no titles, so nothing private
    # can reach an error).
    periods = BusyPeriod.objects.filter(
        teacher_id=teacher, end_at_utc__gt=start, start_at_utc__lt=end
    )
    return [
        (bookings, ("blocked_from_utc", "blocked_until_utc", "start_at_utc" if counting else None)),
        (sessions, ("start_at_utc", "end_at_utc", None)),
        (periods, ("start_at_utc", "end_at_utc", None)),
    ]


def _taken(counting: bool) -> QuerySet[Any]:
    moment = DateTimeField()
    parts = _taken_parts(
        counting,
        teacher=Param("teacher", get_user_model()._meta.pk),
        start=Param("start", moment),
        end=Param("end", moment),
        now=Param("now", moment),
    )
    return micros_union(*parts)


#: :func:`_taken`, compiled: by whether lesson starts are counted (a daily limit).
_TAKEN = {counting: Prepared(partial(_taken, counting)) for counting in (False, True)}
