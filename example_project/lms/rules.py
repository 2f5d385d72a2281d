"""A host rule of the example LMS: a plan allows a number of one-on-one lessons a week.

It shows the resolver's ``check_booking`` hook: it sees the whole attempt (who, with whom,
when, and how the booking comes to exist) and refuses with the LMS's own code and message,
which the API returns in its error body."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES, BookingType
from liveclass_booking.exceptions import BookingRefused
from liveclass_booking.models import get_booking_model


class WeeklyLessonLimit:
    """A resolver mixin: at most ``weekly_lessons`` active one-on-one lessons per student in
    one week (Monday to Sunday on the student's own calendar). Counts the lessons already
    booked and, for a series, its occurrences planned before this one; a reschedule does not
    count the lesson it replaces (that one is no longer active)."""

    weekly_lessons = 3

    def weekly_lessons_for(self, student: Any) -> int | None:
        """The student's allowance (None: no limit). A real LMS reads the student's plan."""
        return self.weekly_lessons

    def check_booking(self, attempt: Any) -> None:
        super().check_booking(attempt)  # type: ignore[misc]
        if attempt.booking_type != BookingType.ONE_ON_ONE:
            return
        allowed = self.weekly_lessons_for(attempt.student)
        if allowed is None:
            return
        zone = ZoneInfo(self.get_user_timezone(attempt.student))  # type: ignore[attr-defined]
        monday = attempt.start.astimezone(zone).date()
        monday -= timedelta(days=monday.weekday())
        week_start = datetime.combine(monday, time(0), tzinfo=zone)
        week_end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
        held = (
            get_booking_model()
            .objects.filter(
                student_user=attempt.student,
                booking_type=BookingType.ONE_ON_ONE,
                status__in=ACTIVE_BOOKING_STATUSES,
                start_at_utc__gte=week_start,
                start_at_utc__lt=week_end,
            )
            .count()
        )
        held += sum(
            1
            for other in attempt.earlier
            if other.booking_type == BookingType.ONE_ON_ONE and week_start <= other.start < week_end
        )
        if held >= allowed:
            raise BookingRefused(
                f"Your plan allows {allowed} one-on-one lessons a week; you already have "
                f"{held} in the week of {monday.isoformat()}.",
                code="weekly_lesson_limit",
                http_status=409,
                limit=allowed,
                week=monday.isoformat(),
            )
