"""Reminders before confirmed bookings start.

Offsets come from the resolver's ``get_reminder_offsets`` (default
``LIVECLASS_BOOKING_REMINDER_OFFSETS``: 24 hours and 1 hour). A whole number of days is
counted on the recipient's wall clock (the reminder of a 10:00 class one day before is at
10:00 the day before, also across a daylight-saving change); the rest of an offset is
elapsed time. Each (booking, recipient, offset, start) becomes at most one outbox event (a
unique key), so a reminder is sent once, a moved booking gets reminders for its new time, and
a booking made after an offset's moment gets no late reminder for it. When a dispatcher has
not run for a while and several offsets are due at once, only the nearest to the start is
sent; the others are recorded as passed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.dateparse import parse_datetime

from ..choices import BookingStatus, BookingType, NotificationKind
from ..conf import booking_settings
from ..models import NotificationEvent, get_booking_model
from ..policies import get_policy_resolver
from ..services.outbox import outbox_event, write

logger = logging.getLogger("liveclass_booking.notifications")


def reminder_moment(start: datetime, offset: timedelta, zone: str) -> datetime:
    """When the reminder ``offset`` before ``start`` is due for someone living in ``zone``:
    whole days back on that zone's wall clock (a wall time that does not exist that day moves
    forward by the gap), then the rest of the offset as elapsed time. Aware, in UTC."""
    rest = offset - timedelta(days=offset.days)
    if offset.days:
        tz = ZoneInfo(zone)
        wall = start.astimezone(tz).replace(tzinfo=None) - timedelta(days=offset.days)
        # Read with fold=0: a wall time the change skipped lands after the gap, a repeated
        # one is its first occurrence.
        start = wall.replace(tzinfo=tz).astimezone(UTC)
    return start - rest


def reminder_key(booking: Any, recipient_pk: Any, offset: timedelta) -> str:
    """The unique key of one reminder. Group sessions remind their teacher once per session,
    not once per booking."""
    seconds = int(offset.total_seconds())
    start = int(booking.start_at_utc.timestamp())
    if booking.booking_type == BookingType.GROUP_SESSION and recipient_pk == booking.teacher_id:
        return f"reminder:s{booking.session_id}:{recipient_pk}:{seconds}:{start}"
    return f"reminder:b{booking.pk}:{recipient_pk}:{seconds}:{start}"


def confirmed_since(booking: Any) -> datetime:
    """Since when the confirmed booking stands as it is: its last change (its creation, the
    decision that confirmed it, or the move of its session to a new time)."""
    return max(booking.updated_at, booking.decision_at or booking.created_at)


def _reminders_of(
    booking: Any, person: Any, offsets: list[timedelta], zone: str, now: datetime
) -> list[Any]:
    """The reminder events of ``booking`` for ``person`` due at ``now``: the offset nearest
    the start is sent; earlier ones that are also due (a dispatcher stopped a while) are
    recorded as passed, with no recipient."""
    since = confirmed_since(booking)
    moments = [(offset, reminder_moment(booking.start_at_utc, offset, zone)) for offset in offsets]
    due = sorted((pair for pair in moments if since <= pair[1] <= now), key=lambda pair: pair[0])
    events = []
    for index, (offset, moment) in enumerate(due):
        key = reminder_key(booking, person.pk, offset)
        events.append(
            outbox_event(
                NotificationKind.REMINDER,
                recipients=[person.pk] if index == 0 else [],
                booking=None if key.startswith("reminder:s") else booking,
                session=booking.session_id,
                key=key,
                at=now,
                start=booking.start_at_utc,
                end=booking.end_at_utc,
                offset_seconds=int(offset.total_seconds()),
                due_at=moment,
                passed=index > 0,
            )
        )
    return events


def queue_due_reminders(now: datetime) -> int:
    """Write the outbox events of the reminders due at ``now`` that are not written yet.
    Returns how many were written (passed ones included)."""
    offsets = booking_settings.REMINDER_OFFSETS
    if not offsets:
        return 0
    resolver = get_policy_resolver()
    # A wall-clock day is 23 to 25 hours long (never more than 3 hours off anywhere).
    horizon = max(offsets) + timedelta(hours=3)
    bookings = (
        get_booking_model()
        .objects.filter(
            status=BookingStatus.CONFIRMED,
            start_at_utc__gt=now,
            start_at_utc__lte=now + horizon,
        )
        .select_related("teacher", "student_user")
        .order_by("start_at_utc", "pk")
    )
    zones: dict[Any, str] = {}
    planned: dict[str, Any] = {}
    for booking in bookings:
        try:
            own = [o for o in resolver.get_reminder_offsets(booking) if o <= max(offsets)]
            for person in (booking.student_user, booking.teacher):
                if person.pk not in zones:
                    zones[person.pk] = resolver.get_user_timezone(person)
                for event in _reminders_of(booking, person, own, zones[person.pk], now):
                    planned.setdefault(event.key, event)
        except Exception:
            # A host hook (offsets, zone) failing for one booking must not stop the others.
            logger.exception("Could not plan the reminders of booking %s", booking.pk)
    if not planned:
        return 0
    written = set(
        NotificationEvent.objects.filter(key__in=list(planned)).values_list("key", flat=True)
    )
    fresh = [event for key, event in planned.items() if key not in written]
    write(fresh, ignore_conflicts=True, wake=False)  # this pass sends them
    return len(fresh)


def reminder_still_due(event: NotificationEvent, now: datetime) -> bool:
    """A reminder goes out only while what it reminds of still stands: the booking (or, for a
    group teacher, a booking of the session) confirmed, at the same start, still to come."""
    start = parse_datetime(str(event.data.get("start", "")))
    if start is None or start <= now:
        return False
    # The event's JSON keeps milliseconds: compare within one.
    found = get_booking_model().objects.filter(
        status=BookingStatus.CONFIRMED,
        start_at_utc__gte=start,
        start_at_utc__lt=start + timedelta(milliseconds=1),
    )
    if event.booking_id is not None:
        return bool(found.filter(pk=event.booking_id).exists())
    return bool(found.filter(session_id=event.session_id).exists())
