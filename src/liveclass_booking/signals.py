"""Signals sent by the services, always after the transaction commits (docs/signals.md).

Booking signals: ``sender`` is the booking model, with ``booking``, ``actor`` (None for the
system), ``from_status`` and ``to_status``; ``booking_rescheduled`` adds ``new_booking``;
``booking_expired``: a pending booking was not decided within the approval timeout.
``session_cancelled``: ``sender`` is the session model, with ``session``, ``actor`` and
``reason``.

Waitlist signals: ``sender`` is ``SessionWaitlist``, with ``entry``.
``waitlist_offered`` (a seat is held for the entry until ``entry.offer_expires_at``),
``waitlist_offer_expired`` (adds ``actor``: None when the time ran out, else who expired it),
``waitlist_accepted`` (adds ``booking`` and ``actor``) and ``waitlist_closed`` (adds ``actor``,
``reason`` — ``"session_cancelled"`` or ``"session_started"`` — and ``previous_status``: the
wait ended without a seat). This module holds definitions only.
"""

from django.dispatch import Signal

booking_requested = Signal()
booking_confirmed = Signal()
booking_declined = Signal()
booking_cancelled = Signal()
booking_rescheduled = Signal()
booking_attendance_marked = Signal()
booking_expired = Signal()
session_cancelled = Signal()
waitlist_offered = Signal()
waitlist_offer_expired = Signal()
waitlist_accepted = Signal()
waitlist_closed = Signal()
series_created = Signal()

#: Internal: a transaction that wrote outbox events committed (``sender`` is the event
#: model; sent once per transaction). The app connects the enqueueing of the dispatcher
#: task to it.
outbox_written = Signal()

#: Internal: a waitlist offer's deadline was set or moved (``sender`` is ``SessionWaitlist``,
#: with ``entry_pk`` and ``at``), sent after commit. The app connects the scheduling of the
#: offer's expiry task to it (the services never import the tasks module).
offer_deadline_set = Signal()

#: Internal: a busy source was created, or pointed elsewhere, and wants a sync now
#: (``sender`` is ``BusySource``, with ``source_pk``), sent after commit. The app connects the
#: enqueueing of the source's sync task to it.
busy_source_changed = Signal()
