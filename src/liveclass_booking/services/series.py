"""Recurring series: a weekly lesson for a term, or enrolment in a recurring group class.

A series expands its rule (:mod:`liveclass_booking.recurrence`, in local wall time) into
occurrences and books each one under the same rules as a single booking, with a constant
number of queries however long the series:

* ``one_on_one_series``: every occurrence is checked by the one function that answers "is this
  interval bookable?" (:meth:`TeacherSchedule.first_violation`: availability, notice, buffers, daily
  limit, overlaps, the series' own earlier occurrences included) and becomes a one-on-one
  booking;
* ``group_series``: every occurrence is matched to the teacher's scheduled session of the
  course starting at that instant; the student takes a seat, joins the waitlist of a full
  session, or (no session yet) waits for the teacher to create one, which then enrols the
  student at once.

Every occurrence gets a :class:`BookingSeriesItem`, booked or not, so the series keeps its
history; changing or cancelling one occurrence's booking never touches the others.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .. import signals
from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    OPEN_WAITLIST_STATUSES,
    BookingStatus,
    NotificationKind,
    SeriesItemStatus,
    SeriesStatus,
    SeriesType,
)
from ..exceptions import (
    InvalidInput,
    InvalidTransition,
    NotAllowed,
)
from ..models import (
    BookingSeries,
    BookingSeriesItem,
)
from ..policies import get_policy_resolver
from ..recurrence import Recurrence, SkippedTime
from .common import is_staff, require_manager, retry_on_deadlock, same_user, send_after_commit
from .outbox import notify
from .rules import (
    require_bounded_text,
    require_may_book,
    require_teacher,
)
from .series_plan import (
    OccurrenceResult,
    SeriesReport,
    check_series_limits,
    occurrence_result,
    plan_occurrences,
    refuse_failures,
    settle_occurrences,
)
from .series_write import enrol_waiting_series, write_occurrences
from .transitions import (
    APPROVAL_TIMEOUT_REASON,
    transition,
)
from .waitlist import leave_waitlist

#: Fields a series takes from the request besides its rule.
MEETING_FIELDS = ("default_meeting_link", "default_meeting_id", "default_meeting_passcode")


# Creating ---------------------------------------------------------------------------------


@retry_on_deadlock
def create_series(
    *,
    student: Any,
    teacher: Any,
    course: Any,
    series_type: str,
    rule: Recurrence,
    accept_partial: bool = False,
    note: str = "",
    actor: Any = None,
    **meeting: Any,
) -> SeriesReport:
    """Create a series and book its occurrences; return the per-occurrence report.

    All-or-nothing by default: if any occurrence cannot be booked nothing is created and
    ``series_conflict`` (409) carries the report. With ``accept_partial`` the bookable
    occurrences are booked and the others are kept as ``skipped`` with their error code.
    """
    if series_type not in SeriesType.values:
        raise InvalidInput(
            f"type must be one of {', '.join(SeriesType.values)}.",
            field="type",
            errors={"type": ["Not a series type."]},
        )
    unknown = set(meeting) - set(MEETING_FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    require_bounded_text(student_note=note)
    expansion = rule.expand()
    if same_user(student, teacher.pk):
        raise InvalidInput("A teacher cannot book a series with themselves.", field="teacher")
    require_may_book(actor, student, course)
    require_teacher(teacher, course)
    series = BookingSeries(
        student_user=student,
        teacher=teacher,
        course=course,
        type=series_type,
        status=SeriesStatus.ACTIVE,
        **{name: getattr(rule, name) for name in Recurrence.RULE_FIELDS},
        **meeting,
    )
    _validate(series)
    results = [occurrence_result(series, occurrence) for occurrence in expansion.occurrences]
    report = SeriesReport(series, results, expansion.skipped)
    now = timezone.now()
    settle_occurrences(series, results, now)
    with transaction.atomic():
        plan_occurrences(series, results, now)
        refuse_failures(report, accept_partial)
        check_series_limits(series, results, now, new_series=True)
        series.save()
        # Waitlist order is the time the locks were granted, as for a single join.
        write_occurrences(series, results, actor=actor, note=note, now=timezone.now())
        _tell_series(NotificationKind.SERIES_CREATED, series, actor=actor, report=report)
        send_after_commit(
            signals.series_created, BookingSeries, series=series, report=report, actor=actor
        )
    return report


def _tell_series(
    kind: str, series: Any, *, actor: Any, report: SeriesReport | None = None, reason: str = ""
) -> None:
    """The outbox event of a series change, to its student and teacher; ``report`` adds the
    summary (how many occurrences were booked, waitlisted, skipped, ...) and the first one."""
    summary: dict[str, Any] = {}
    if report is not None:
        summary["counts"] = report.counts
        booked = [r.item for r in report.occurrences if r.item.booking is not None]
        if booked:
            summary["first_start"] = booked[0].start_at_utc
    notify(
        kind,
        recipients=[series.student_user_id, series.teacher_id],
        series=series,
        actor=actor,
        reason=reason,
        **summary,
    )


def _validate(series: Any) -> None:
    try:
        series.clean_fields(exclude=["student_user", "teacher", "course"])
    except ValidationError as exc:
        first = next(iter(exc.message_dict.values()))[0]
        raise InvalidInput(first, errors=exc.message_dict) from exc


# Pause, resume, cancel, extend, complete -------------------------------------------------


def _require_party(actor: Any, series: Any, action: str) -> None:
    """The series' student, its teacher (as the resolver's ``can_manage`` allows), staff and
    the system may change a series."""
    if actor is None or is_staff(actor) or same_user(actor, series.student_user_id):
        return
    require_manager(actor, series, action)


def _require_still_bookable(series: Any) -> None:
    """Booking again (resume, extend) needs the resolver's ``can_book`` as booking did."""
    if not get_policy_resolver().can_book(series.student_user, series.course):
        raise NotAllowed("The student may no longer book this course.")


def _lock(series: Any, now: datetime, *allowed: str) -> Any:
    """Lock the series and check its status (the caller has completed it first if its last
    occurrence has passed, outside its transaction so that this is kept when it fails)."""
    locked = BookingSeries.objects.select_for_update().get(pk=series.pk)
    if locked.status not in allowed:
        raise InvalidTransition(
            f"A {locked.status} series cannot be changed this way "
            f"(only a {' or '.join(allowed)} one).",
            status=locked.status,
        )
    return locked


def _stop_future(
    series: Any, *, actor: Any, now: datetime, to: str, reason: str
) -> list[OccurrenceResult]:
    """Cancel the bookings and leave the waitlists of the occurrences still to come, and mark
    them ``to`` (``paused`` or ``cancelled``). A student keeps the occurrences inside the
    cancel window, as with a single booking; past occurrences are never touched."""
    by_student = same_user(actor, series.student_user_id) and not is_staff(actor)
    keep_until = now
    if by_student:
        policy = get_policy_resolver().get_policy(series.teacher, series.course)
        keep_until = now + timedelta(hours=policy.cancel_window_hours)
    # Lock the occurrences first, so that a session created meanwhile cannot enrol one of
    # them behind this change (enrol_waiting_series locks them too).
    future = series.items.filter(start_at_utc__gt=now)
    list(future.select_for_update().values_list("pk", flat=True))
    items = list(future.select_related("booking", "waitlist_entry"))
    changed: list[Any] = []
    results = []
    for item in items:
        result = OccurrenceResult(item)
        results.append(result)
        if item.status == SeriesItemStatus.BOOKED:
            if item.booking is None or item.booking.status not in ACTIVE_BOOKING_STATUSES:
                continue  # cancelled, declined or moved one by one: its own history
            if item.booking.approval_is_overdue:  # nobody decided in time: it expires
                transition(
                    item.booking, BookingStatus.EXPIRED, actor=None, reason=APPROVAL_TIMEOUT_REASON
                )
            elif item.start_at_utc <= keep_until:
                result.detail = "Inside the cancel window: kept."
                continue
            else:
                transition(
                    item.booking,
                    BookingStatus.CANCELLED,
                    actor=actor,
                    notice=False,  # the series event tells both parties
                    reason=reason or f"series {to}",
                    cancelled_by=actor,
                    cancelled_at=now,
                    cancel_reason=reason,
                )
        elif item.status == SeriesItemStatus.WAITLISTED:
            entry = item.waitlist_entry
            if entry is not None and entry.status in OPEN_WAITLIST_STATUSES:
                leave_waitlist(entry, actor=None)
        elif item.status in (SeriesItemStatus.CANCELLED, SeriesItemStatus.SKIPPED):
            continue
        item.status = to
        item.updated_at = now
        changed.append(item)
    BookingSeriesItem.objects.bulk_update(changed, ["status", "updated_at"])
    return results


@retry_on_deadlock
def pause_series(series: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Pause an active series: its future occurrences' bookings are cancelled (seats and the
    teacher's time freed, waitlists left) and the occurrences marked ``paused``; the booked
    past stays. :func:`resume_series` books them again where still possible."""
    require_bounded_text(reason=reason)
    _require_party(actor, series, "pause this series")
    now = timezone.now()
    complete_series(now, series=series)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.ACTIVE)
        _stop_future(locked, actor=actor, now=now, to=SeriesItemStatus.PAUSED, reason=reason)
        locked.status = SeriesStatus.PAUSED
        locked.save(update_fields=["status", "updated_at"])
        _tell_series(NotificationKind.SERIES_PAUSED, locked, actor=actor, reason=reason)
    return locked


@retry_on_deadlock
def resume_series(series: Any, *, actor: Any = None) -> SeriesReport:
    """Resume a paused series: each paused occurrence still to come is booked again under
    the usual rules (or waitlisted, or skipped with its code); returns the report."""
    _require_party(actor, series, "resume this series")
    now = timezone.now()
    complete_series(now, series=series)
    paused = series.items.filter(status=SeriesItemStatus.PAUSED, start_at_utc__gt=now)
    settle_occurrences(series, [OccurrenceResult(item) for item in paused], now)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.PAUSED)
        _require_still_bookable(locked)
        items = list(
            locked.items.filter(status=SeriesItemStatus.PAUSED, start_at_utc__gt=now).order_by(
                "occurrence_index"
            )
        )
        results = [OccurrenceResult(item) for item in items]
        report = SeriesReport(locked, results)
        plan_occurrences(locked, results, now)
        check_series_limits(locked, results, now, new_series=True)
        write_occurrences(locked, results, actor=actor, note="", now=timezone.now())
        locked.status = SeriesStatus.ACTIVE
        locked.save(update_fields=["status", "updated_at"])
        _tell_series(NotificationKind.SERIES_RESUMED, locked, actor=actor, report=report)
    return report


@retry_on_deadlock
def cancel_series(series: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Cancel an active or paused series: only the occurrences still to come are cancelled
    (past ones, their bookings and attendance stay as they were)."""
    require_bounded_text(reason=reason)
    _require_party(actor, series, "cancel this series")
    now = timezone.now()
    complete_series(now, series=series)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.ACTIVE, SeriesStatus.PAUSED)
        _stop_future(locked, actor=actor, now=now, to=SeriesItemStatus.CANCELLED, reason=reason)
        locked.status = SeriesStatus.CANCELLED
        locked.save(update_fields=["status", "updated_at"])
        _tell_series(NotificationKind.SERIES_CANCELLED, locked, actor=actor, reason=reason)
    return locked


@retry_on_deadlock
def extend_series(
    series: Any,
    *,
    occurrence_count: int | None = None,
    until_date: date | None = None,
    accept_partial: bool = False,
    actor: Any = None,
) -> SeriesReport:
    """Extend an active series to more occurrences or a later until date and book the new
    ones (all-or-nothing unless ``accept_partial``, as at creation)."""
    _require_party(actor, series, "extend this series")
    if (occurrence_count is None) == (until_date is None):
        raise InvalidInput(
            "Give exactly one of occurrence_count and until_date.", field="occurrence_count"
        )
    now = timezone.now()
    complete_series(now, series=series)
    # Settle what the new occurrences need before any lock (users come before sessions in
    # the lock order; the series row, locked below, comes first of all).
    settle_occurrences(series, _extension(series, occurrence_count, until_date)[0], now)
    with transaction.atomic():
        locked = _lock(series, now, SeriesStatus.ACTIVE)
        _require_still_bookable(locked)
        results, skipped = _extension(locked, occurrence_count, until_date)
        report = SeriesReport(locked, results, skipped)
        plan_occurrences(locked, results, now)
        refuse_failures(report, accept_partial)
        check_series_limits(locked, results, now)
        locked.occurrence_count, locked.until_date = occurrence_count, until_date
        locked.save(update_fields=["occurrence_count", "until_date", "updated_at"])
        write_occurrences(locked, results, actor=actor, note="", now=timezone.now())
        _tell_series(NotificationKind.SERIES_EXTENDED, locked, actor=actor, report=report)
    return report


def _extension(
    series: Any, occurrence_count: int | None, until_date: date | None
) -> tuple[list[OccurrenceResult], list[SkippedTime]]:
    """The occurrences (and the skipped local times) extending ``series`` to
    ``occurrence_count`` occurrences or to ``until_date`` would add."""
    rule = replace(Recurrence.of(series), occurrence_count=occurrence_count, until_date=until_date)
    expansion = rule.expand()
    have = series.items.count()
    new = expansion.occurrences[have:]
    if not new:
        raise InvalidInput(
            f"The series already has {have} occurrences; this adds none.",
            field="occurrence_count" if occurrence_count is not None else "until_date",
        )
    last_old = series.items.order_by("-occurrence_index").values_list("start_at_utc", flat=True)[:1]
    after = last_old[0] if last_old else None
    skipped = [s for s in expansion.skipped if after is None or _skipped_after(s, after)]
    return [occurrence_result(series, occurrence) for occurrence in new], skipped


def _skipped_after(skipped: SkippedTime, instant: datetime) -> bool:
    return skipped.instant() > instant


def complete_series(now: datetime | None = None, *, series: Any = None) -> int:
    """Mark every active or paused series (or just ``series``) whose last occurrence has
    ended as completed; return how many. For a periodic job; every action on a series does
    it for that series first."""
    now = now or timezone.now()
    finished = BookingSeries.objects.filter(
        status__in=[SeriesStatus.ACTIVE, SeriesStatus.PAUSED]
    ).exclude(items__end_at_utc__gt=now)
    if series is not None:
        finished = finished.filter(pk=series.pk)
    return int(
        BookingSeries.objects.filter(pk__in=list(finished.values_list("pk", flat=True))).update(
            status=SeriesStatus.COMPLETED, updated_at=now
        )
    )


__all__ = [
    "OccurrenceResult",
    "SeriesReport",
    "cancel_series",
    "complete_series",
    "create_series",
    "enrol_waiting_series",
    "extend_series",
    "pause_series",
    "resume_series",
]
