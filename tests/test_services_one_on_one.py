"""One-on-one lessons, availability and free slots, through the services (docs/booking-rules.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from liveclass_booking import services
from liveclass_booking.choices import BookingStatus as S
from liveclass_booking.exceptions import (
    DailyLimitReached,
    InvalidInput,
    MinNotice,
    NaiveDatetime,
    OutsideAvailability,
    SlotUnavailable,
)
from liveclass_booking.models import (
    AvailabilityException,
    TeacherAvailability,
    TeacherBookingPolicy,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Monday
WED = date(2027, 1, 6)
H = timedelta(hours=1)


def at(day: date, hour: int, minute: int = 0, zone: str = "UTC") -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def weekdays(teacher: Any) -> None:
    """Monday to Friday, 09:00-17:00 UTC."""
    for weekday in range(5):
        TeacherAvailability.objects.create(
            teacher=teacher, weekday=weekday, start_time=time(9), end_time=time(17), timezone="UTC"
        )


@pytest.fixture
def request_lesson(student: Any, teacher: Any, course: Any) -> Any:
    def request(start: datetime, end: datetime | None = None, **kwargs: Any) -> Any:
        return services.request_one_on_one(
            student=kwargs.pop("student", student),
            teacher=teacher,
            course=course,
            start_at_utc=start,
            end_at_utc=end or start + H,
            **kwargs,
        )

    return request


@pytest.mark.usefixtures("weekdays")
class TestRequest:
    def test_inside_availability_is_pending_by_default(self, request_lesson: Any) -> None:
        booking = request_lesson(at(WED, 10))
        assert booking.status == S.PENDING
        assert booking.booking_type == "one_on_one"
        assert (booking.blocked_from_utc, booking.blocked_until_utc) == (at(WED, 10), at(WED, 11))
        assert booking.events.get().to_status == "pending"

    def test_no_approval_policy_confirms_at_once(self, request_lesson: Any, teacher: Any) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
        assert request_lesson(at(WED, 10)).status == S.CONFIRMED

    def test_outside_availability(self, request_lesson: Any) -> None:
        with pytest.raises(OutsideAvailability):
            request_lesson(at(WED, 16, 30))  # runs past 17:00
        with pytest.raises(OutsideAvailability):
            request_lesson(at(date(2027, 1, 9), 10))  # Saturday

    def test_min_notice_names_the_numbers(self, request_lesson: Any) -> None:
        with pytest.raises(MinNotice, match="bookings need 24 h notice; this starts in 3 h"):
            request_lesson(NOW + 3 * H)
        with pytest.raises(MinNotice, match="this time has already passed"):
            request_lesson(NOW - 3 * H)

    def test_overlap_with_another_lesson(self, request_lesson: Any, other_student: Any) -> None:
        request_lesson(at(WED, 10))
        with pytest.raises(SlotUnavailable):
            request_lesson(at(WED, 10, 30), student=other_student)
        # Back to back is fine without buffers.
        assert request_lesson(at(WED, 11), student=other_student).pk

    def test_buffers_are_included(
        self, request_lesson: Any, other_student: Any, teacher: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, buffer_after_minutes=15)
        first = request_lesson(at(WED, 10))
        assert first.blocked_until_utc == at(WED, 11, 15)
        with pytest.raises(SlotUnavailable, match="15 min after"):
            request_lesson(at(WED, 11), student=other_student)
        assert request_lesson(at(WED, 11, 15), student=other_student).pk

    def test_overlap_with_a_group_session(self, request_lesson: Any, make_session: Any) -> None:
        make_session(start_at_utc=at(WED, 14))
        with pytest.raises(SlotUnavailable):
            request_lesson(at(WED, 14, 30))

    def test_cancelled_lessons_free_the_slot(
        self, request_lesson: Any, other_student: Any, teacher: Any
    ) -> None:
        first = request_lesson(at(WED, 10))
        services.cancel_booking(first, actor=teacher)
        assert request_lesson(at(WED, 10), student=other_student).pk

    def test_daily_limit_in_the_teachers_day(
        self, request_lesson: Any, teacher: Any, user_model: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, max_bookings_per_day=2)
        students = [
            user_model.objects.create_user(username=f"s{i}", password="x") for i in range(3)
        ]
        request_lesson(at(WED, 9), student=students[0])
        request_lesson(at(WED, 11), student=students[1])
        with pytest.raises(DailyLimitReached, match="at most 2 one-on-one bookings a day"):
            request_lesson(at(WED, 14), student=students[2])
        assert request_lesson(at(WED + timedelta(days=1), 9), student=students[2]).pk

    def test_naive_and_backwards_times(self, request_lesson: Any) -> None:
        with pytest.raises(NaiveDatetime):
            request_lesson(datetime(2027, 1, 6, 10))  # noqa: DTZ001 - the point of the test
        with pytest.raises(InvalidInput):
            request_lesson(at(WED, 11), at(WED, 10))

    def test_teacher_cannot_book_themselves(self, teacher: Any, course: Any) -> None:
        with pytest.raises(InvalidInput):
            services.request_one_on_one(
                student=teacher,
                teacher=teacher,
                course=course,
                start_at_utc=at(WED, 10),
                end_at_utc=at(WED, 11),
            )


@pytest.mark.usefixtures("weekdays")
class TestExceptions:
    def test_a_day_off_closes_the_window(self, request_lesson: Any, teacher: Any) -> None:
        AvailabilityException.objects.create(teacher=teacher, date=WED, timezone="UTC")
        with pytest.raises(OutsideAvailability):
            request_lesson(at(WED, 10))

    def test_hours_off_close_part_of_the_window(self, request_lesson: Any, teacher: Any) -> None:
        AvailabilityException.objects.create(
            teacher=teacher, date=WED, start_time=time(12), end_time=time(13), timezone="UTC"
        )
        with pytest.raises(OutsideAvailability):
            request_lesson(at(WED, 12, 30))
        assert request_lesson(at(WED, 13)).pk

    def test_extra_hours_open_a_weekend(self, request_lesson: Any, teacher: Any) -> None:
        saturday = date(2027, 1, 9)
        AvailabilityException.objects.create(
            teacher=teacher,
            date=saturday,
            kind="available",
            start_time=time(10),
            end_time=time(12),
            timezone="UTC",
        )
        assert request_lesson(at(saturday, 10)).pk


@pytest.mark.usefixtures("weekdays")
class TestRescheduleLesson:
    def test_lesson_moves_and_its_old_time_does_not_block_it(
        self, request_lesson: Any, teacher: Any, student: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
        old = request_lesson(at(WED, 10))
        new = services.reschedule_booking(
            old, actor=student, start_at_utc=at(WED, 10, 30), end_at_utc=at(WED, 11, 30)
        )
        old.refresh_from_db()
        assert old.status == S.RESCHEDULED
        assert (new.status, new.rescheduled_from_id) == (S.CONFIRMED, old.pk)
        assert new.start_at_utc == at(WED, 10, 30)

    def test_student_move_needs_approval_again(
        self, request_lesson: Any, teacher: Any, student: Any
    ) -> None:
        old = services.approve_booking(request_lesson(at(WED, 10)), actor=teacher)
        new = services.reschedule_booking(
            old, actor=student, start_at_utc=at(WED, 14), end_at_utc=at(WED, 15)
        )
        assert new.status == S.PENDING
        moved_by_teacher = services.reschedule_booking(
            services.approve_booking(new, actor=teacher),
            actor=teacher,
            start_at_utc=at(WED, 15),
            end_at_utc=at(WED, 16),
        )
        assert moved_by_teacher.status == S.CONFIRMED

    def test_moving_onto_a_taken_slot_changes_nothing(
        self, request_lesson: Any, teacher: Any, student: Any, other_student: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
        request_lesson(at(WED, 14), student=other_student)
        old = request_lesson(at(WED, 10))
        with pytest.raises(SlotUnavailable):
            services.reschedule_booking(
                old, actor=student, start_at_utc=at(WED, 14), end_at_utc=at(WED, 15)
            )
        old.refresh_from_db()
        assert old.status == S.CONFIRMED


@pytest.mark.usefixtures("weekdays")
class TestFreeSlots:
    def test_slots_respect_windows_bookings_and_notice(
        self, request_lesson: Any, teacher: Any, course: Any
    ) -> None:
        request_lesson(at(WED, 10))
        slots = services.free_slots(teacher, course, NOW, at(WED, 23), H)
        # Monday is inside the 24 h notice; Tuesday and Wednesday 09:00-17:00 hourly, but
        # Tuesday 09:00 is 25 h away so it counts, and Wednesday 10:00 is taken.
        assert at(date(2027, 1, 4), 9) not in slots
        assert at(date(2027, 1, 5), 8) not in slots
        assert slots[0] == at(date(2027, 1, 5), 9)
        assert at(WED, 10) not in slots
        assert len(slots) == 8 + 7

    def test_every_listed_slot_is_bookable(
        self, request_lesson: Any, teacher: Any, course: Any, make_session: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, buffer_before_minutes=10)
        make_session(start_at_utc=at(WED, 13))
        step = timedelta(minutes=20)
        slots = services.free_slots(teacher, course, NOW, at(WED, 23), H, step)
        for start in slots:
            assert services.is_interval_bookable(teacher, course, start, start + H)
        # And what is not listed on Wednesday is not bookable.
        candidates = [at(WED, 9) + i * step for i in range(22)]
        for start in candidates:
            listed = start in slots
            assert services.is_interval_bookable(teacher, course, start, start + H) is listed

    def test_query_count_does_not_grow_with_bookings(
        self,
        teacher: Any,
        course: Any,
        user_model: Any,
        django_assert_max_num_queries: Any,
    ) -> None:
        TeacherBookingPolicy.objects.create(
            teacher=teacher, requires_approval_for_one_on_one=False, min_notice_hours=0
        )
        student = user_model.objects.create_user(username="many", password="x")
        days = [date(2027, 1, 4) + timedelta(days=n) for n in range(1, 40)]
        for day in [d for d in days if d.weekday() < 5]:
            services.request_one_on_one(
                student=student,
                teacher=teacher,
                course=course,
                start_at_utc=at(day, 9),
                end_at_utc=at(day, 10),
            )
        with django_assert_max_num_queries(6):
            services.free_slots(teacher, course, NOW, NOW + timedelta(days=60), H)

    def test_bad_ranges_are_invalid(self, teacher: Any, course: Any) -> None:
        with pytest.raises(InvalidInput):
            services.free_slots(teacher, course, NOW, NOW - H, H)
        with pytest.raises(InvalidInput):
            services.free_slots(teacher, course, NOW, NOW + timedelta(days=400), H)
        with pytest.raises(NaiveDatetime):
            services.free_slots(teacher, course, datetime(2027, 1, 1), NOW, H)  # noqa: DTZ001


class TestDaylightSaving:
    """Windows stay at local wall time when the clocks change."""

    @pytest.mark.parametrize(
        ("zone", "before", "after"),
        [
            ("Europe/Berlin", date(2027, 3, 22), date(2027, 3, 29)),  # spring: 28 March
            ("Europe/Berlin", date(2027, 10, 25), date(2027, 11, 1)),  # autumn: 31 October
            ("America/New_York", date(2027, 3, 8), date(2027, 3, 15)),  # spring: 14 March
            ("America/New_York", date(2027, 11, 1), date(2027, 11, 8)),  # autumn: 7 November
        ],
    )
    def test_slots_keep_local_wall_time(
        self, teacher: Any, course: Any, zone: str, before: date, after: date
    ) -> None:
        TeacherAvailability.objects.create(
            teacher=teacher, weekday=0, start_time=time(17), end_time=time(19), timezone=zone
        )
        slots = services.free_slots(
            teacher, course, at(before, 0, zone=zone), at(after, 23, zone=zone), H
        )
        local = [s.astimezone(ZoneInfo(zone)) for s in slots]
        assert [(d.date(), d.hour) for d in local] == [
            (before, 17),
            (before, 18),
            (after, 17),
            (after, 18),
        ]
        # The UTC times differ by the hour the clocks moved.
        assert slots[0].hour != slots[2].hour

    def test_daily_limit_counts_the_teachers_local_day(
        self, teacher: Any, course: Any, user_model: Any
    ) -> None:
        teacher.timezone = "America/New_York"
        TeacherBookingPolicy.objects.create(
            teacher=teacher, max_bookings_per_day=1, requires_approval_for_one_on_one=False
        )
        TeacherAvailability.objects.create(
            teacher=teacher,
            weekday=2,
            start_time=time(18),
            end_time=time(23),
            timezone="America/New_York",
        )
        s1, s2 = (user_model.objects.create_user(username=f"d{i}", password="x") for i in range(2))
        # 18:00 and 22:00 New York on Wednesday are two UTC dates but one local day.
        services.request_one_on_one(
            student=s1,
            teacher=teacher,
            course=course,
            start_at_utc=at(WED, 18, zone="America/New_York"),
            end_at_utc=at(WED, 19, zone="America/New_York"),
        )
        with pytest.raises(DailyLimitReached):
            services.request_one_on_one(
                student=s2,
                teacher=teacher,
                course=course,
                start_at_utc=at(WED, 22, zone="America/New_York"),
                end_at_utc=at(WED, 23, zone="America/New_York"),
            )
