"""Calendar data built from the models: the ``.ics`` of bookings (e-mail attachments now; the
feed and the API later share the same builder)."""

from .ics import booking_calendar, booking_uid, calendar_domain

__all__ = ["booking_calendar", "booking_uid", "calendar_domain"]
