"""Who may book what, and how much one account may hold.

* :func:`require_may_book` — students book for themselves, where the resolver's ``can_book``
  allows it;
* :func:`require_teacher` — only a teacher the resolver's ``can_teach`` accepts for the course
  can be booked; unknown, inactive and non-teaching users all get the same answer;
* :func:`require_bounded_text` — free text (notes, reasons, descriptions) has a length limit;
* the per-account limits (OWASP API6): :func:`limits_for` asks the resolver's ``get_limits``,
  and the ``check_*`` functions compare what a student holds with them. The counting checks
  run inside the write's transaction, after the student's row is locked
  (:func:`~liveclass_booking.services.common.lock_users`), so concurrent requests of one
  student are counted one after the other and cannot pass a limit together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache, partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    OPEN_WAITLIST_STATUSES,
    BookingStatus,
    BookingType,
    SeriesStatus,
)
from ..conf import MAX_TEXT_LENGTH
from ..exceptions import InvalidInput, LimitReached, NotAllowed
from ..models import BookingSeries, SessionWaitlist, get_booking_model, get_session_model
from ..policies import get_policy_resolver
from ..prepared import Param, Prepared
from ..querysets import overdue_requests
from .common import is_staff, same_user

#: The one answer for a teacher that cannot be booked: no such user, an inactive one, or one
#: the resolver does not accept for the course (so the API reveals nothing about users).
NOT_A_TEACHER = "Not a teacher of this course."


def require_may_book(actor: Any, student: Any, course: Any, session: Any = None) -> None:
    """Students book for themselves (staff and the system for anybody), where the resolver's
    ``can_book`` allows it."""
    if actor is not None and not (is_staff(actor) or same_user(actor, student.pk)):
        raise NotAllowed("Students book for themselves.")
    if not get_policy_resolver().can_book(student, course, session):
        raise NotAllowed("You may not book this course.")


def require_teacher(teacher: Any, course: Any) -> None:
    """Raise ``invalid`` on the ``teacher`` field unless the resolver's ``can_teach`` accepts
    ``teacher`` for ``course`` (an inactive user never passes)."""
    if not getattr(teacher, "is_active", False) or not get_policy_resolver().can_teach(
        teacher, course
    ):
        raise InvalidInput(f"teacher: {NOT_A_TEACHER}", errors={"teacher": [NOT_A_TEACHER]})


def require_bounded_text(**fields: Any) -> None:
    """Raise ``invalid`` naming the first of ``fields`` longer than ``MAX_TEXT_LENGTH``."""
    for name, value in fields.items():
        if value is not None and len(str(value)) > MAX_TEXT_LENGTH:
            message = f"Ensure this field has no more than {MAX_TEXT_LENGTH} characters."
            raise InvalidInput(f"{name}: {message}", errors={name: [message]})


# Per-account limits ------------------------------------------------------------------------


def limits_for(student: Any, teacher: Any, course: Any) -> dict[str, Any]:
    """The limits that apply to ``student`` booking with ``teacher`` for ``course``."""
    return get_policy_resolver().get_limits(student, teacher, course)


def _refuse(limits: dict[str, Any], name: str, held: int, adding: int, what: str) -> None:
    maximum = limits.get(name)
    if maximum is not None and held + adding > maximum:
        raise LimitReached(
            f"{name} is {maximum}: you hold {held} {what}"
            + (f" and this would add {adding}." if adding != 1 else "."),
            limit=name,
            max=maximum,
        )


def check_seats(limits: dict[str, Any], seats: int) -> None:
    """One booking reserves at most ``seats_per_booking`` seats."""
    maximum = limits.get("seats_per_booking")
    if maximum is not None and seats > maximum:
        raise LimitReached(
            f"seats_per_booking is {maximum}: one booking reserves at most {maximum} seat(s); "
            f"you asked for {seats}.",
            limit="seats_per_booking",
            max=maximum,
        )


#: The time a prepared statement of this module is run for.
_NOW = Param("now", DateTimeField())


def _active(now: Any) -> Q:
    """The bookings that count against ``active_bookings_per_student``: pending and not
    overdue, or confirmed; not ended."""
    return Q(status__in=ACTIVE_BOOKING_STATUSES, end_at_utc__gt=now) & ~overdue_requests(now)


def _holdings(student: Any, now: datetime, teacher: Any = None) -> dict[str, int]:
    """What ``student`` holds, in one query: ``active`` bookings (pending and not overdue, or
    confirmed; not ended) and, with ``teacher``, the pending lesson requests to that teacher
    (``single`` ones and the ``series`` waiting for approval)."""
    names = ["active", "single", "series"] if teacher is not None else ["active"]
    found = _HOLDINGS[teacher is not None].rows(
        student=student.pk, now=now, teacher=getattr(teacher, "pk", teacher)
    )
    return dict(zip(names, found[0], strict=True)) if found else dict.fromkeys(names, 0)


def _holdings_query(with_teacher: bool) -> QuerySet[Any]:
    user_pk = get_user_model()._meta.pk
    counts: dict[str, Any] = {"active": Count("pk", filter=_active(_NOW))}
    if with_teacher:
        pending = Q(
            teacher_id=Param("teacher", user_pk),
            booking_type=BookingType.ONE_ON_ONE,
            status=BookingStatus.PENDING,
        ) & ~overdue_requests(_NOW)
        counts["single"] = Count("pk", filter=pending & Q(series_items__isnull=True))
        counts["series"] = Count("series_items__series", filter=pending, distinct=True)
    return (
        get_booking_model()
        .objects.filter(student_user_id=Param("student", user_pk))
        .order_by()
        .values("student_user")
        .annotate(**counts)
        .values_list(*counts)
    )


#: :func:`_holdings_query`, compiled: by whether a teacher's pending requests are counted.
_HOLDINGS = {teacher: Prepared(partial(_holdings_query, teacher)) for teacher in (False, True)}


def check_student_totals(
    student: Any,
    limits: dict[str, Any],
    now: datetime,
    *,
    bookings: int = 0,
    entries: int = 0,
    series: int = 0,
    pending_to: Any = None,
) -> None:
    """Refuse adding ``bookings`` active bookings, ``entries`` open waitlist entries and
    ``series`` active series to what ``student`` holds, past the limits; with
    ``pending_to`` (a teacher), also one more pending lesson request to that teacher past
    ``pending_requests_per_teacher`` (a series waiting for approval counts as one request).
    The student's row (and, with ``pending_to``, the teacher's) must be locked by the
    caller's transaction."""
    counting_bookings = bookings and limits.get("active_bookings_per_student") is not None
    counting_requests = (
        pending_to is not None and limits.get("pending_requests_per_teacher") is not None
    )
    if counting_bookings or counting_requests:
        held = _holdings(student, now, pending_to if counting_requests else None)
        if counting_bookings:
            _refuse(
                limits,
                "active_bookings_per_student",
                held["active"],
                bookings,
                "active booking(s)",
            )
        if counting_requests:
            _refuse(
                limits,
                "pending_requests_per_teacher",
                held["single"] + held["series"],
                1,
                "pending request(s) to this teacher",
            )
    if entries and limits.get("open_waitlist_entries_per_student") is not None:
        held_entries = SessionWaitlist.objects.filter(
            student_user=student, status__in=OPEN_WAITLIST_STATUSES, session__start_at_utc__gt=now
        ).count()
        _refuse(
            limits,
            "open_waitlist_entries_per_student",
            held_entries,
            entries,
            "open waitlist entry(ies)",
        )
    if series and limits.get("active_series_per_student") is not None:
        held_series = (
            BookingSeries.objects.filter(
                student_user=student,
                status__in=[SeriesStatus.ACTIVE, SeriesStatus.PAUSED],
                items__end_at_utc__gt=now,
            )
            .distinct()
            .count()
        )
        _refuse(limits, "active_series_per_student", held_series, series, "active series")


def check_group_totals(
    student: Any,
    session_pk: Any,
    limits: dict[str, Any],
    now: datetime,
    facts: Callable[[Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """:func:`check_student_totals` for one more group booking of the session ``session_pk``,
    in one query over the session row that also answers ``waiting``, whether ``student``
    holds an open entry on its waitlist, and the ``facts`` given: a function of the time (a
    :class:`~liveclass_booking.prepared.Param`) returning expressions over the session row.
    Returns their values (all false when there is no such session).

    The student's row must be locked by the caller's transaction: entries are opened only
    under it, so none opens before the commit when none is open now."""
    counting = limits.get("active_bookings_per_student") is not None
    prepared, names = _group_totals_statement(counting, facts)
    found = prepared.rows(session=session_pk, student=student.pk, now=now)
    row: dict[str, Any] = (
        dict(zip(names, found[0], strict=True)) if found else dict.fromkeys(names, False)
    )
    if counting:
        _refuse(limits, "active_bookings_per_student", row.pop("active"), 1, "active booking(s)")
    return row


@cache
def _group_totals_statement(counting: bool, facts: Any) -> tuple[Prepared, list[str]]:
    """The query of :func:`check_group_totals` and the names of its columns."""
    names = [*(facts(_NOW) if facts is not None else ()), "waiting"]
    names += ["active"] if counting else []
    return Prepared(partial(_group_totals, counting, facts)), names


def _group_totals(counting: bool, facts: Any) -> QuerySet[Any]:
    now = _NOW
    student = Param("student", get_user_model()._meta.pk)
    columns: dict[str, Any] = dict(facts(now)) if facts is not None else {}
    columns["waiting"] = Exists(
        SessionWaitlist.objects.filter(
            session_id=OuterRef("pk"), student_user_id=student, status__in=OPEN_WAITLIST_STATUSES
        )
    )
    if counting:
        active = (
            get_booking_model()
            .objects.filter(_active(now), student_user_id=student)
            .order_by()
            .values("student_user")
            .annotate(n=Count("pk"))
            .values("n")
        )
        columns["active"] = Coalesce(
            Subquery(active, output_field=IntegerField()), Value(0, output_field=IntegerField())
        )
    model = get_session_model()
    return (
        model.objects.filter(pk=Param("session", model._meta.pk))
        .order_by()
        .annotate(**columns)
        .values_list(*columns)[:1]
    )


# A lesson's meeting details ----------------------------------------------------------------

#: The meeting details a one-on-one lesson carries (a group booking uses its session's).
LESSON_MEETING_FIELDS = ("meeting_link", "meeting_id", "meeting_passcode")


def clean_meeting(meeting: dict[str, Any]) -> dict[str, str]:
    """``meeting`` checked as a lesson's meeting details: only ``LESSON_MEETING_FIELDS``,
    strings, the link a URL of at most 500 characters, the others at most 100. Raises
    ``invalid`` naming each wrong field."""
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    unknown = sorted(set(meeting) - set(LESSON_MEETING_FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown meeting fields: {', '.join(unknown)}.")
    errors: dict[str, list[str]] = {}
    for name, value in meeting.items():
        limit = 500 if name == "meeting_link" else 100
        if not isinstance(value, str):
            errors[name] = ["Not a string."]
        elif len(value) > limit:
            errors[name] = [f"Ensure this field has no more than {limit} characters."]
        elif name == "meeting_link" and value:
            try:
                URLValidator()(value)
            except ValidationError:
                errors[name] = ["Enter a valid URL."]
    if errors:
        name, messages = next(iter(errors.items()))
        raise InvalidInput(f"{name}: {messages[0]}", errors=errors)
    return {name: str(value) for name, value in meeting.items()}


def default_lesson_meeting(booking: Any) -> dict[str, str]:
    """The meeting details a lesson gets when it is confirmed without the teacher giving
    any: the resolver's ``get_lesson_meeting`` (checked like the teacher's own)."""
    return clean_meeting(dict(get_policy_resolver().get_lesson_meeting(booking) or {}))
