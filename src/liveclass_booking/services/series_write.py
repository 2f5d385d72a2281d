"""Writing a planned run of series occurrences in a constant number of statements (bookings,
seats, waitlist entries, items, audit entries), and enrolling the series that wait for a
session when the teacher creates it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone

from ..choices import (
    OPEN_WAITLIST_STATUSES,
    SeriesItemStatus,
    SeriesStatus,
    SeriesType,
)
from ..exceptions import (
    SlotUnavailable,
)
from ..models import (
    BookingEvent,
    BookingSeriesItem,
    SessionWaitlist,
    get_booking_model,
    get_session_model,
)
from .common import lock_users, send_after_commit
from .outbox import write
from .series_plan import OccurrenceResult, plan_seats
from .transitions import (
    SIGNAL_FOR_STATUS,
    booking_notice,
)
from .waitlist import reset_entry

# Writing: a constant number of statements for the whole run ------------------------------


def write_occurrences(
    series: Any,
    results: list[OccurrenceResult],
    *,
    actor: Any,
    note: str,
    now: datetime,
) -> None:
    """Create the bookings and waitlist entries the plan decided, then save the items (new
    ones created, existing ones updated) and audit and signal each booking after commit."""
    model = get_booking_model()
    to_book = [
        r for r in results if r.item.status == SeriesItemStatus.BOOKED and r.item.booking is None
    ]
    lesson = series.type == SeriesType.ONE_ON_ONE_SERIES
    bookings: list[Any] = []
    for result in to_book:
        booking = result.row  # built by the plan, the host's rules passed
        booking.student_note = note
        bookings.append(booking)
    try:
        with transaction.atomic():
            model.objects.bulk_create(bookings)
            if not lesson:
                _take_seats([booking.session_id for booking in bookings])
    except IntegrityError as exc:
        # The exclusion constraint (PostgreSQL) or a seat or uniqueness constraint refused
        # what the locks should have prevented: nothing of the run is kept.
        raise SlotUnavailable("The teacher's calendar changed; try again.") from exc
    for result, booking in zip(to_book, bookings, strict=True):
        result.item.booking = booking
    _write_entries([r.item for r in results if r.item.status == SeriesItemStatus.WAITLISTED], now)
    items = [r.item for r in results]
    new = [item for item in items if item.pk is None]
    old = [item for item in items if item.pk is not None]
    for item in items:
        item.updated_at = now
    BookingSeriesItem.objects.bulk_create(new)
    if old:
        BookingSeriesItem.objects.bulk_update(
            old, ["status", "code", "booking", "session", "waitlist_entry", "updated_at"]
        )
    by_booking = {id(r.item.booking): r.item for r in to_book}
    BookingEvent.objects.bulk_create(
        [
            BookingEvent(
                booking=booking,
                actor=actor,
                from_status="",
                to_status=booking.status,
                reason="",
                data={
                    "series": by_booking[id(booking)].series_id,
                    "occurrence": by_booking[id(booking)].occurrence_index,
                },
            )
            for booking in bookings
        ]
    )
    for booking in bookings:
        send_after_commit(
            SIGNAL_FOR_STATUS[booking.status],
            model,
            booking=booking,
            actor=actor,
            from_status="",
            to_status=booking.status,
        )


def _take_seats(session_pks: list[Any]) -> None:
    """One UPDATE adds each session's new seats (the sessions are locked; the database's
    CHECK keeps ``seats_taken`` within ``capacity`` regardless)."""
    counts = Counter(session_pks)
    if not counts:
        return
    get_session_model().objects.filter(pk__in=list(counts)).update(
        seats_taken=F("seats_taken")
        + Case(
            *[When(pk=pk, then=Value(n)) for pk, n in counts.items()],
            default=Value(0),
            output_field=IntegerField(),
        )
    )


def _write_entries(items: list[Any], now: datetime) -> None:
    """Join the waitlists the plan decided: new entries and rejoined closed ones go to the
    back of their queue now, in plan order; open entries stay where they are."""
    joining = [
        item.waitlist_entry
        for item in items
        if item.waitlist_entry.pk is None
        or item.waitlist_entry.status not in OPEN_WAITLIST_STATUSES
    ]
    seen: set[int] = set()
    fresh: list[Any] = []
    rejoined: list[Any] = []
    for offset, entry in enumerate(joining):
        if id(entry) in seen:
            continue
        seen.add(id(entry))
        reset_entry(entry, now + timedelta(microseconds=offset))
        (rejoined if entry.pk else fresh).append(entry)
    SessionWaitlist.objects.bulk_create(fresh)
    if rejoined:
        SessionWaitlist.objects.bulk_update(
            rejoined,
            [
                "status",
                "created_at",
                "offered_at",
                "offer_expires_at",
                "accepted_at",
                "expired_at",
                "left_at",
                "booking",
            ],
        )


# A session created later enrols the series waiting for it --------------------------------


def enrol_waiting_series(sessions: list[Any]) -> int:
    """Enrol the students of active group series whose occurrence waits for a session at the
    start of one of ``sessions`` (just created, same teacher and course). Returns how many
    occurrences were placed.

    Takes the teacher's row lock first, as group series creation does, so that a series
    created at the same time either sees these sessions or is seen here."""
    if not sessions:
        return 0
    teacher, course_id = sessions[0].teacher, sessions[0].course_id
    lock_users(teacher)
    # Lock the items only (not their series rows: an extend holds its series, then waits
    # for the teacher lock held here).
    of = ("self",) if connection.features.has_select_for_update_of else ()
    items = list(
        BookingSeriesItem.objects.select_for_update(of=of)
        .select_related("series__student_user", "series__course")
        .filter(
            status=SeriesItemStatus.AWAITING_SESSION,
            start_at_utc__in=[session.start_at_utc for session in sessions],
            series__status=SeriesStatus.ACTIVE,
            series__type=SeriesType.GROUP_SERIES,
            series__teacher_id=teacher.pk,
            series__course_id=course_id,
        )
        .order_by("series__created_at", "series_id", "occurrence_index")
    )
    if not items:
        return 0
    locked = (
        get_session_model()
        .objects.select_for_update()
        .filter(pk__in=[session.pk for session in sessions])
        .order_by("pk")
    )
    by_start = {session.start_at_utc: session for session in locked}
    now = timezone.now()  # after the locks: waitlist order
    results = [OccurrenceResult(item) for item in items]
    students = [item.series.student_user for item in items]
    plan_seats(None, teacher, items[0].series.course, results, by_start, now, students=students)
    write_occurrences(items[0].series, results, actor=None, note="", now=now)
    write(
        [
            booking_notice(item.booking, actor=None, old="", series=item.series_id)
            for item in items
            if item.booking is not None
        ]
    )
    return len(items)
