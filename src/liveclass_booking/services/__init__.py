"""The service layer: the only code that changes booking state (docs/booking-rules.md,
policies.md, signals.md, concurrency.md).

Views, the admin and management commands call these functions; each raises a
:class:`~liveclass_booking.exceptions.BookingError` carrying its stable error code.
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
    set_lesson_meeting,
)
from .legacy import ImportReport, import_legacy
from .seats import RecountReport, recount_seats
from .series import (
    OccurrenceResult,
    SeriesReport,
    cancel_series,
    complete_series,
    create_series,
    enrol_waiting_series,
    extend_series,
    pause_series,
    resume_series,
)
from .sessions import (
    cancel_session,
    check_new_session,
    check_session_change,
    complete_session,
    complete_sessions,
    create_recurring_sessions,
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
    "ImportReport",
    "OccurrenceResult",
    "RecountReport",
    "SeriesReport",
    "TeacherSchedule",
    "accept_offer",
    "approve_booking",
    "book_group_session",
    "cancel_booking",
    "cancel_series",
    "cancel_session",
    "check_new_session",
    "check_session_change",
    "check_teacher_row",
    "check_transition",
    "complete_series",
    "complete_session",
    "complete_sessions",
    "create_recurring_sessions",
    "create_series",
    "create_session",
    "decline_booking",
    "delete_teacher_row",
    "enrol_waiting_series",
    "expire_due_offers",
    "expire_offer",
    "extend_series",
    "free_slots",
    "import_legacy",
    "is_interval_bookable",
    "join_waitlist",
    "leave_waitlist",
    "mark_attended",
    "mark_no_show",
    "offer_seats",
    "pause_series",
    "recount_seats",
    "request_one_on_one",
    "reschedule_booking",
    "resume_series",
    "save_teacher_row",
    "set_lesson_meeting",
    "update_session",
]
