"""A host-style policy resolver used by the tests."""

import threading
from typing import Any

from liveclass_booking.policies import DefaultPolicyResolver


class NobodyBooks(DefaultPolicyResolver):
    def can_book(self, student: Any, course: Any, session: Any = None) -> bool:
        return False


class NotAResolver:
    pass


class AssistantsSeeEverything(DefaultPolicyResolver):
    """Teaching assistants (username starting "assistant") see every booking."""

    def visible_bookings(self, user: Any, bookings: Any) -> Any:
        if user.get_username().startswith("assistant"):
            return bookings
        return super().visible_bookings(user, bookings)


class CourseAssistantBackend:
    """An object-permission backend: grants "assistant*" users the change permission on
    bookings and sessions, and denies "suspended*" users everything on objects."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user: Any, perm: str, obj: Any = None) -> bool:
        from django.core.exceptions import PermissionDenied

        if obj is None:
            return False
        name = user.get_username()
        if name.startswith("suspended"):
            raise PermissionDenied
        return name.startswith("assistant") and perm.split(".")[1].startswith("change_")


class NobodyTeaches(DefaultPolicyResolver):
    def can_teach(self, user: Any, course: Any) -> bool:
        return False


class BigGroupsForTeacher(DefaultPolicyResolver):
    """Lets students of the user called "teacher" book up to 50 seats at once."""

    def get_limits(self, student: Any, teacher: Any, course: Any) -> dict[str, Any]:
        limits = super().get_limits(student, teacher, course)
        if teacher.get_username() == "teacher":
            return {**limits, "seats_per_booking": 50}
        return limits


class PeopleAbroad(DefaultPolicyResolver):
    """Users live in the zones and speak the languages named in ``ZONES`` and ``LANGUAGES``
    (by username); a user whose first name is "quiet" opts out of reminders."""

    ZONES = {"student": "America/New_York", "other": "Australia/Sydney", "teacher": "Europe/Berlin"}
    LANGUAGES: dict[str, str] = {}

    def get_user_timezone(self, user: Any) -> str:
        return self.ZONES.get(user.get_username()) or super().get_user_timezone(user)

    def get_user_language(self, user: Any) -> str:
        return self.LANGUAGES.get(user.get_username()) or super().get_user_language(user)

    def wants_notification(self, user: Any, kind: str, channel: str) -> bool:
        return not (user.first_name == "quiet" and kind == "reminder")


class RecordsAttempts(DefaultPolicyResolver):
    """Records every attempt ``check_booking`` sees (in ``seen``) and lets it through."""

    seen: list[Any] = []

    def check_booking(self, attempt: Any) -> None:
        type(self).seen.append(attempt)


class CourseClosed(DefaultPolicyResolver):
    """Refuses every booking of a course named "Closed" with a code of the host's own."""

    def check_booking(self, attempt: Any) -> None:
        from liveclass_booking.exceptions import BookingRefused

        if str(attempt.course) == "Closed":
            raise BookingRefused(
                "This course takes no bookings this term.", code="course_closed", term="spring"
            )


def _weekly() -> type:
    from example_project.lms.rules import WeeklyLessonLimit

    class WeeklyTwo(WeeklyLessonLimit, DefaultPolicyResolver):
        weekly_lessons = 2

    return WeeklyTwo


WeeklyTwoLessons = _weekly()


class PersonalRooms(DefaultPolicyResolver):
    """Every teacher teaches lessons in a personal meeting room named after them."""

    def get_lesson_meeting(self, booking: Any) -> dict[str, str]:
        name = booking.teacher.get_username()
        return {"meeting_link": f"https://meet.example.com/{name}", "meeting_passcode": "room"}


class TitledNames(DefaultPolicyResolver):
    """People are named by a title and their username in capitals."""

    def get_display_name(self, user: Any) -> str:
        return f"Dr. {user.get_username().upper()}"


_inside = threading.local()


def in_resolver() -> bool:
    """Whether the current thread is inside a method of :class:`Tallied`."""
    return getattr(_inside, "depth", 0) > 0


def _tallied(name: str) -> Any:
    method = getattr(DefaultPolicyResolver, name)

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        _inside.depth = getattr(_inside, "depth", 0) + 1
        try:
            return method(self, *args, **kwargs)
        finally:
            _inside.depth -= 1

    run.__name__ = name
    return run


class Tallied(DefaultPolicyResolver):
    """The default rules, marking the statements they send (:func:`in_resolver`): the host's
    own queries, which a count of the library's statements leaves out."""


for _name, _value in vars(DefaultPolicyResolver).items():
    if not _name.startswith("_") and callable(_value):
        setattr(Tallied, _name, _tallied(_name))
