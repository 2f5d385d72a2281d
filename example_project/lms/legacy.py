"""The LMS's adapter for ``liveclass_booking_import_legacy``: its Phase 1 tables mapped to
sessions, group bookings and one-on-one lessons.

    python manage.py liveclass_booking_import_legacy --adapter lms.legacy.Phase1Adapter
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.utils import timezone

from liveclass_booking.legacy import (
    LegacyAdapter,
    LegacyGroupBooking,
    LegacyLesson,
    LegacySession,
)

from .models import LegacyBooking, LegacyLiveClass, LegacyOneOnOneBooking

#: Phase 1 statuses → booking statuses. Anything else is passed on as it is, and the import
#: skips the row as ``unknown_status``.
GROUP_STATUS = {
    "booked": "confirmed",
    "cancelled": "cancelled",
    "attended": "attended",
    "absent": "no_show",
}
LESSON_STATUS = {
    "requested": "pending",
    "accepted": "confirmed",
    "rejected": "declined",
    "cancelled": "cancelled",
    "completed": "attended",
    "missed": "no_show",
}


class Phase1Adapter(LegacyAdapter):
    source = "lms-phase1"

    def sessions(self) -> Iterator[LegacySession]:
        now = timezone.now()
        for row in LegacyLiveClass.objects.order_by("pk").iterator():
            end = row.scheduled_start + timedelta(minutes=row.duration_minutes)
            status = "completed" if end <= now else "scheduled"
            if row.is_cancelled:
                status = "cancelled"
            yield LegacySession(
                key=str(row.pk),
                teacher=row.teacher_id,
                course=row.course_id,
                title=row.title,
                start_at_utc=row.scheduled_start,
                end_at_utc=end,
                capacity=row.total_seats,
                status=status,
                meeting_link=row.meeting_link,
                meeting_passcode=row.meeting_password,
            )

    def group_bookings(self) -> Iterator[LegacyGroupBooking]:
        for row in LegacyBooking.objects.order_by("pk").iterator():
            yield LegacyGroupBooking(
                key=str(row.pk),
                session_key=str(row.live_class_id),
                student=row.student_id,
                status=GROUP_STATUS.get(row.status, row.status),
                created_at=row.booked_at,
            )

    def lessons(self) -> Iterator[LegacyLesson]:
        for row in LegacyOneOnOneBooking.objects.order_by("pk").iterator():
            yield LegacyLesson(
                key=str(row.pk),
                teacher=row.teacher_id,
                student=row.student_id,
                course=row.course_id,
                start_at_utc=row.scheduled_start,
                end_at_utc=row.scheduled_start + timedelta(minutes=row.duration_minutes),
                status=LESSON_STATUS.get(row.status, row.status),
                student_note=row.note,
                created_at=row.created_at,
            )
