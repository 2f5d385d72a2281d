"""How the example LMS plugs its rules into liveclass_booking."""

from typing import Any

from liveclass_booking.policies import DefaultPolicyResolver

from .models import Enrollment
from .rules import WeeklyLessonLimit


class EnrollmentPolicyResolver(WeeklyLessonLimit, DefaultPolicyResolver):
    """Students book only courses they are enrolled in; a course's teachers teach it; at most
    three one-on-one lessons a week (see ``lms.rules``)."""

    def can_book(self, student: Any, course: Any, session: Any = None) -> bool:
        if not super().can_book(student, course, session):
            return False
        return Enrollment.objects.filter(student=student, course=course).exists()

    def can_teach(self, user: Any, course: Any) -> bool:
        if not getattr(user, "is_active", False):
            return False
        if user.is_staff:
            return True
        if course is None:
            return bool(user.is_teacher)
        return course.teachers.filter(pk=user.pk).exists()
