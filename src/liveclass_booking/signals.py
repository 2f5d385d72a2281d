"""Signals sent by the services, always after the transaction commits (SPEC §7).

Booking signals: ``sender`` is the booking model, with ``booking``, ``actor`` (None for the
system), ``from_status`` and ``to_status``; ``booking_rescheduled`` adds ``new_booking``.
``session_cancelled``: ``sender`` is the session model, with ``session``, ``actor`` and
``reason``. This module holds definitions only.
"""

from django.dispatch import Signal

booking_requested = Signal()
booking_confirmed = Signal()
booking_declined = Signal()
booking_cancelled = Signal()
booking_rescheduled = Signal()
booking_attendance_marked = Signal()
session_cancelled = Signal()
waitlist_offered = Signal()
waitlist_offer_expired = Signal()
waitlist_accepted = Signal()
series_created = Signal()
