"""Calendar data built from the models: the ``.ics`` of bookings and sessions (the API's
files, the subscribable feed and the e-mail attachments share one builder)."""

from .ics import (
    Entry,
    booking_entry,
    booking_uid,
    calendar_domain,
    itip_calendar,
    session_entry,
    session_uid,
    to_ical,
)

__all__ = [
    "Entry",
    "booking_entry",
    "booking_uid",
    "calendar_domain",
    "itip_calendar",
    "session_entry",
    "session_uid",
    "to_ical",
]
