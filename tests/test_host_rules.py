"""A host's own booking rules: the resolver's ``check_booking`` sees every attempt, however
the booking comes to exist, and refuses with the host's code and message; the API returns
them in its error body and nothing changes. The example project's weekly lesson limit is the
worked example."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.exceptions import BookingRefused, SeriesConflict
from liveclass_booking.models import TeacherBookingPolicy, get_booking_model
from liveclass_booking.recurrence import Recurrence
from tests.conftest import app_row_counts
from tests.resolvers import RecordsAttempts

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def no_approval(teacher: Any, open_all_week: None) -> None:
    TeacherBookingPolicy.objects.create(
        teacher=teacher, requires_approval_for_one_on_one=False, min_notice_hours=0
    )


def at(day: int, hour: int) -> datetime:
    """March ``day``, 2027, ``hour``:00 UTC (Berlin is UTC+1 until March 28)."""
    return datetime(2027, 3, day, hour, tzinfo=UTC)


def lesson(student: Any, teacher: Any, course: Any, start: datetime) -> Any:
    return services.request_one_on_one(
        student=student,
        teacher=teacher,
        course=course,
        start_at_utc=start,
        end_at_utc=start + timedelta(hours=1),
    )


def weekly(first: date, count: int, days: str = "MO") -> Recurrence:
    return Recurrence(
        frequency="weekly",
        days_of_week=days,
        start_date=first,
        start_time=time(10),
        timezone="Europe/Berlin",
        duration_minutes=60,
        occurrence_count=count,
    )


def test_the_hook_sees_every_way_a_booking_comes_to_exist(
    settings: Any,
    student: Any,
    other_student: Any,
    teacher: Any,
    course: Any,
    make_session: Any,
    no_approval: None,
) -> None:
    settings.LIVECLASS_BOOKING_POLICY_RESOLVER = "tests.resolvers.RecordsAttempts"
    RecordsAttempts.seen = []
    session = make_session(start_at_utc=at(10, 17), capacity=1)
    seat = services.book_group_session(student=student, session=session)
    services.join_waitlist(student=other_student, session=session)
    services.cancel_booking(seat, actor=student)  # the seat is offered to other_student
    entry = other_student.liveclass_waitlist_entries.get()
    services.accept_offer(entry, actor=other_student)
    one = lesson(student, teacher, course, at(3, 10))
    moved = services.reschedule_booking(
        one, actor=student, start_at_utc=at(3, 12), end_at_utc=at(3, 13)
    )
    report = services.create_series(
        student=student,
        teacher=teacher,
        course=course,
        series_type="one_on_one_series",
        rule=weekly(date(2027, 3, 15), 2),
    )
    seen = [(a.how, a.booking_type, a.student) for a in RecordsAttempts.seen]
    assert seen == [
        ("book", "group_session", student),
        ("waitlist", "group_session", other_student),
        ("request", "one_on_one", student),
        ("reschedule", "one_on_one", student),
        ("series", "one_on_one", student),
        ("series", "one_on_one", student),
    ]
    book, accept, request, reschedule, first, second = RecordsAttempts.seen
    assert (book.session, book.seats, book.start, book.end) == (
        session,
        1,
        session.start_at_utc,
        session.end_at_utc,
    )
    assert accept.waitlist_entry == entry
    assert (request.teacher, request.course, request.session) == (teacher, course, None)
    assert (reschedule.rescheduled_from, reschedule.start) == (one, moved.start_at_utc)
    assert (first.series, first.occurrence, first.earlier) == (report.series, 1, ())
    assert (second.occurrence, second.earlier) == (2, (first,))


def test_a_refusal_carries_the_hosts_code_and_changes_nothing(
    settings: Any, student: Any, make_session: Any, course: Any
) -> None:
    settings.LIVECLASS_BOOKING_POLICY_RESOLVER = "tests.resolvers.CourseClosed"
    for name in ("title", "name"):  # the default course, or the swapped-in one
        if hasattr(course, name):
            setattr(course, name, "Closed")
    course.save()
    session = make_session(start_at_utc=at(10, 17))
    before = app_row_counts()
    client = APIClient()
    client.force_authenticate(student)
    response = client.post(
        reverse("liveclass_booking:booking-list"),
        {"booking_type": "group_session", "session": str(session.pk)},
        format="json",
    )
    assert response.status_code == 403
    assert response.json() == {
        "code": "course_closed",
        "detail": "This course takes no bookings this term.",
        "term": "spring",
    }
    assert app_row_counts() == before
    assert type(session).objects.get(pk=session.pk).seats_taken == 0


def test_a_refusal_names_a_valid_code_and_a_4xx_status() -> None:
    with pytest.raises(ValueError, match="lower-case identifier"):
        BookingRefused("No.", code="Weekly Limit")
    with pytest.raises(ValueError, match="4xx"):
        BookingRefused("No.", code="weekly_limit", http_status=500)


class TestWeeklyLessonLimit:
    """The example project's rule (example_project/lms/rules.py), two lessons a week."""

    @pytest.fixture(autouse=True)
    def weekly_two(self, settings: Any, no_approval: None) -> None:
        settings.LIVECLASS_BOOKING_POLICY_RESOLVER = "tests.resolvers.WeeklyTwoLessons"

    def test_the_third_lesson_of_a_week_is_refused_through_the_api(
        self, student: Any, teacher: Any, course: Any
    ) -> None:
        lesson(student, teacher, course, at(2, 10))
        lesson(student, teacher, course, at(4, 10))
        client = APIClient()
        client.force_authenticate(student)
        before = app_row_counts()
        response = client.post(
            reverse("liveclass_booking:booking-list"),
            {
                "booking_type": "one_on_one",
                "teacher": str(teacher.pk),
                "course": str(course.pk),
                "start_at_utc": "2027-03-05T10:00:00Z",
                "end_at_utc": "2027-03-05T11:00:00Z",
            },
            format="json",
        )
        assert response.status_code == 409
        assert response.json() == {
            "code": "weekly_lesson_limit",
            "detail": "Your plan allows 2 one-on-one lessons a week; you already have 2 in "
            "the week of 2027-03-01.",
            "limit": 2,
            "week": "2027-03-01",
        }
        assert app_row_counts() == before
        # Next week is another week; a cancelled lesson frees its place.
        assert lesson(student, teacher, course, at(8, 10)).status == "confirmed"
        first = get_booking_model().objects.filter(student_user=student).order_by("pk").first()
        services.cancel_booking(first, actor=teacher)
        assert lesson(student, teacher, course, at(5, 10)).status == "confirmed"

    def test_moving_a_lesson_within_its_week_is_not_a_third(
        self, student: Any, teacher: Any, course: Any
    ) -> None:
        lesson(student, teacher, course, at(2, 10))
        second = lesson(student, teacher, course, at(4, 10))
        moved = services.reschedule_booking(
            second, actor=student, start_at_utc=at(5, 10), end_at_utc=at(5, 11)
        )
        assert moved.status == "confirmed"

    def test_a_series_counts_its_own_occurrences(
        self, student: Any, teacher: Any, course: Any
    ) -> None:
        """Three lessons a week for two weeks: the third of each week is skipped with the
        host's code (a partial series), or the whole series is refused."""
        kwargs = {
            "student": student,
            "teacher": teacher,
            "course": course,
            "series_type": "one_on_one_series",
            "rule": weekly(date(2027, 3, 8), 6, days="MO,WE,FR"),
        }
        with pytest.raises(SeriesConflict) as refused:
            services.create_series(**kwargs)
        codes = [o["code"] for o in refused.value.data["occurrences"]]
        assert codes == ["", "", "weekly_lesson_limit"] * 2
        report = services.create_series(**kwargs, accept_partial=True)
        assert [r.status for r in report.occurrences] == ["booked", "booked", "skipped"] * 2
        assert get_booking_model().objects.filter(student_user=student).count() == 4
