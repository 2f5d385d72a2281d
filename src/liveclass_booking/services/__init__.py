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
from .teachers import check_teacher_row, delete_teacher_row, save_teacher_row
from .waitlist import (
    accept_offer,
    expire_due_offers,
    expire_offer,
    join_waitlist,
    leave_waitlist,
    offer_seats,
)

__all__ = [
    "TRANSITIONS",
    "TeacherSchedule",
    "accept_offer",
    "approve_booking",
    "book_group_session",
    "cancel_booking",
    "cancel_session",
    "check_teacher_row",
    "check_transition",
    "complete_session",
    "complete_sessions",
    "create_session",
    "decline_booking",
    "delete_teacher_row",
    "expire_due_offers",
    "expire_offer",
    "free_slots",
    "is_interval_bookable",
    "join_waitlist",
    "leave_waitlist",
    "mark_attended",
    "mark_no_show",
    "offer_seats",
    "request_one_on_one",
    "reschedule_booking",
    "save_teacher_row",
    "update_session",
]
