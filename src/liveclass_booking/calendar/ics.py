"""iCalendar (RFC 5545) messages for bookings, as iTIP (RFC 5546) ``REQUEST`` or ``CANCEL``.

A booking's ``UID`` is made from its primary key and never changes; a booking that replaced
another by a reschedule keeps the UID of the first of the chain, so calendars move the entry.
Its ``SEQUENCE`` is the booking's stored ``calendar_sequence``, which the services raise on
every change of its time, status or meeting details, so a later message carries a higher
number. Times are written in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from ..conf import booking_settings

#: The iTIP method for each calendar status.
METHOD_FOR_STATUS = {"CONFIRMED": "REQUEST", "TENTATIVE": "REQUEST", "CANCELLED": "CANCEL"}


def calendar_domain() -> str:
    """The right-hand side of UIDs: ``LIVECLASS_BOOKING_CALENDAR_DOMAIN``, else the first
    concrete ``ALLOWED_HOSTS`` entry, else ``liveclass-booking.invalid``."""
    configured = booking_settings.CALENDAR_DOMAIN
    if configured:
        return configured
    for host in getattr(settings, "ALLOWED_HOSTS", []):
        host = host.lstrip(".")
        if host and "*" not in host:
            return host
    return "liveclass-booking.invalid"


def booking_uid(booking_pk: Any) -> str:
    return f"booking-{booking_pk}@{calendar_domain()}"


def first_of_chain(booking: Any) -> Any:
    """The primary key of the first booking of a chain of reschedules: a booking that
    replaced another keeps the calendar entry (the UID) of the one it replaced, so a move
    updates the entry in the calendar rather than adding one."""
    model = type(booking)
    pk, previous, seen = booking.pk, booking.rescheduled_from_id, set()
    while previous is not None and previous not in seen:
        seen.add(previous)
        pk = previous
        previous = (
            model.objects.filter(pk=previous).values_list("rescheduled_from_id", flat=True).first()
        )
    return pk


def _address(user: Any, role: str | None = None) -> vCalAddress:
    address = vCalAddress(f"mailto:{getattr(user, 'email', '') or 'unknown@invalid'}")
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    address.params["cn"] = vText(name or user.get_username())
    if role:
        address.params["role"] = vText(role)
    return address


def booking_calendar(
    booking: Any,
    *,
    status: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    description: str = "",
    url: str = "",
    stamp: datetime | None = None,
) -> bytes:
    """One booking as an iTIP message: ``status`` is ``CONFIRMED``, ``TENTATIVE`` (pending
    approval) or ``CANCELLED``; the method follows from it."""
    cal = Calendar()
    cal.add("prodid", "-//liveclass_booking//EN")
    cal.add("version", "2.0")
    cal.add("method", METHOD_FOR_STATUS[status])
    event = Event()
    event.add("uid", booking_uid(first_of_chain(booking)))
    event.add("sequence", sequence)
    event.add("dtstamp", stamp or timezone.now())
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("status", status)
    if description:
        event.add("description", description)
    if url:
        event.add("url", url)
        event.add("location", url)
    event.add("organizer", _address(booking.teacher))
    event.add("attendee", _address(booking.student_user, "REQ-PARTICIPANT"))
    cal.add_component(event)
    return bytes(cal.to_ical())
