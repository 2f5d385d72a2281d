"""The service layer: the only code that changes booking state (SPEC §4, §6, §7, §8).

Views, the admin and management commands call these functions; each raises a
:class:`~liveclass_booking.exceptions.BookingError` carrying the SPEC error code.
"""

from .availability import TeacherSchedule, free_slots, is_interval_bookable
from .bookings import (
    TRANSITIONS,
    approve_booking,
    book_group_session,
    cancel_booking,
    check_transition,
    decline_booking,
    mark_attended,
    mark_no_show,
    request_one_on_one,
    reschedule_booking,
)
from .sessions import (
    cancel_session,
    complete_session,
    complete_sessions,
    create_session,
    update_session,
)

__all__ = [
    "TRANSITIONS",
    "TeacherSchedule",
    "approve_booking",
    "book_group_session",
    "cancel_booking",
    "cancel_session",
    "check_transition",
    "complete_session",
    "complete_sessions",
    "create_session",
    "decline_booking",
    "free_slots",
    "is_interval_bookable",
    "mark_attended",
    "mark_no_show",
    "request_one_on_one",
    "reschedule_booking",
    "update_session",
]
