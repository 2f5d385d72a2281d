"""Raw ORM writes that break an invariant are refused by the database itself (docs/models.md,
docs/concurrency.md).

Each case runs on SQLite, PostgreSQL and MariaDB, with the default and the swapped models.
MariaDB/MySQL refuse a negative count as out of range for the unsigned column (``DataError``)
and create no partial unique constraints (``liveclass_booking.W002``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Any

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F

from liveclass_booking.models import (
    AvailabilityException,
    BookingSeries,
    BookingSeriesItem,
    IdempotencyKey,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
)

pytestmark = pytest.mark.django_db


#: A unique constraint with a condition: not created on MySQL/MariaDB (Django's models.W036).
partial_unique = pytest.mark.skipif(
    not connection.features.supports_partial_indexes,
    reason="MySQL/MariaDB create no partial unique constraints (liveclass_booking.W002)",
)


def refused(write: Callable[[], Any]) -> None:
    # MySQL/MariaDB refuse a negative value for an unsigned column as out of range.
    errors = (IntegrityError, DataError) if connection.vendor == "mysql" else IntegrityError
    with pytest.raises(errors), transaction.atomic():
        write()


def series_fields(teacher: Any, student: Any, course: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "student_user": student,
        "teacher": teacher,
        "course": course,
        "type": "one_on_one_series",
        "frequency": "weekly",
        "interval": 1,
        "days_of_week": "MO",
        "occurrence_count": 10,
        "until_date": None,
        "start_date": date(2027, 1, 4),
        "start_time": time(17),
        "duration_minutes": 60,
        "timezone": "Europe/Berlin",
        **overrides,
    }


class TestSessionConstraints:
    def test_negative_capacity_is_refused(self, make_session: Any) -> None:
        refused(lambda: make_session(capacity=-1))

    def test_seats_taken_above_capacity_is_refused(self, session: Any, session_model: Any) -> None:
        refused(
            lambda: session_model.objects.filter(pk=session.pk).update(
                seats_taken=F("capacity") + 1
            )
        )

    def test_negative_seats_taken_is_refused(self, session: Any, session_model: Any) -> None:
        refused(lambda: session_model.objects.filter(pk=session.pk).update(seats_taken=-1))

    def test_capacity_below_seats_taken_is_refused(self, session: Any, session_model: Any) -> None:
        session_model.objects.filter(pk=session.pk).update(seats_taken=5)
        refused(lambda: session_model.objects.filter(pk=session.pk).update(capacity=4))
        session_model.objects.filter(pk=session.pk).update(capacity=5)  # equal is fine
        session.refresh_from_db()
        assert (session.capacity, session.seats_taken) == (5, 5)

    def test_end_not_after_start_is_refused(self, make_session: Any, session: Any) -> None:
        refused(
            lambda: make_session(end_at_utc=session.start_at_utc, start_at_utc=session.start_at_utc)
        )

    def test_unknown_status_is_refused(self, session: Any, session_model: Any) -> None:
        refused(lambda: session_model.objects.filter(pk=session.pk).update(status="postponed"))

    def test_unknown_meeting_provider_is_refused(self, make_session: Any) -> None:
        refused(lambda: make_session(meeting_provider="skype"))


class TestBookingConstraints:
    def test_zero_seats_is_refused(self, make_booking: Any) -> None:
        refused(lambda: make_booking(seats_reserved=0))

    def test_end_not_after_start_is_refused(self, make_booking: Any, session: Any) -> None:
        refused(lambda: make_booking(end_at_utc=session.start_at_utc))

    def test_group_booking_without_session_is_refused(
        self, booking_model: Any, session: Any, student: Any
    ) -> None:
        refused(
            lambda: booking_model.objects.create(
                booking_type="group_session",
                session=None,
                course=session.course,
                teacher=session.teacher,
                student_user=student,
                start_at_utc=session.start_at_utc,
                end_at_utc=session.end_at_utc,
            )
        )

    def test_one_on_one_with_session_is_refused(self, make_booking: Any) -> None:
        refused(lambda: make_booking(booking_type="one_on_one"))

    def test_one_on_one_with_two_seats_is_refused(
        self, booking_model: Any, session: Any, student: Any
    ) -> None:
        refused(
            lambda: booking_model.objects.create(
                booking_type="one_on_one",
                course=session.course,
                teacher=session.teacher,
                student_user=student,
                start_at_utc=session.start_at_utc,
                end_at_utc=session.end_at_utc,
                seats_reserved=2,
            )
        )

    @pytest.mark.parametrize(
        ("first", "second"),
        [("confirmed", "pending"), ("pending", "pending"), ("pending", "confirmed")],
    )
    @partial_unique
    def test_second_active_booking_of_a_student_is_refused(
        self, make_booking: Any, first: str, second: str
    ) -> None:
        make_booking(status=first)
        refused(lambda: make_booking(status=second))

    def test_inactive_bookings_do_not_block_a_new_one(
        self, make_booking: Any, booking_model: Any
    ) -> None:
        make_booking(status="cancelled")
        make_booking(status="declined")
        make_booking(status="confirmed")
        assert booking_model.objects.count() == 3

    def test_unknown_status_is_refused(self, make_booking: Any) -> None:
        refused(lambda: make_booking(status="maybe"))

    def test_unknown_booking_type_is_refused(self, make_booking: Any) -> None:
        refused(lambda: make_booking(booking_type="webinar"))

    def test_a_booking_is_replaced_at_most_once(self, make_booking: Any, make_session: Any) -> None:
        old = make_booking(status="rescheduled")
        make_booking(session=make_session(), rescheduled_from=old)
        refused(lambda: make_booking(session=make_session(), rescheduled_from=old))


class TestPolicyConstraints:
    def test_two_policies_for_one_course_are_refused(self, teacher: Any, course: Any) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, course=course)
        refused(lambda: TeacherBookingPolicy.objects.create(teacher=teacher, course=course))

    @partial_unique
    def test_two_default_policies_are_refused(self, teacher: Any) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, course=None)
        refused(lambda: TeacherBookingPolicy.objects.create(teacher=teacher, course=None))

    def test_default_and_course_policies_coexist(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, course=None)
        TeacherBookingPolicy.objects.create(teacher=teacher, course=course)
        TeacherBookingPolicy.objects.create(teacher=student, course=None)
        assert TeacherBookingPolicy.objects.count() == 3

    def test_zero_daily_limit_is_refused(self, teacher: Any) -> None:
        refused(
            lambda: TeacherBookingPolicy.objects.create(teacher=teacher, max_bookings_per_day=0)
        )

    def test_negative_notice_is_refused(self, teacher: Any) -> None:
        refused(lambda: TeacherBookingPolicy.objects.create(teacher=teacher, min_notice_hours=-1))


class TestSeriesConstraints:
    def test_count_and_until_together_are_refused(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        fields = series_fields(teacher, student, course, until_date=date(2027, 6, 1))
        refused(lambda: BookingSeries.objects.create(**fields))

    def test_neither_count_nor_until_is_refused(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        fields = series_fields(teacher, student, course, occurrence_count=None)
        refused(lambda: BookingSeries.objects.create(**fields))

    @pytest.mark.parametrize(
        "overrides",
        [
            {"interval": 0},
            {"duration_minutes": 0},
            {"occurrence_count": 0},
            {"frequency": "custom", "rrule": ""},
            {"frequency": "daily"},
            {"type": "webinar_series"},
            {"status": "archived"},
        ],
    )
    def test_invalid_rule_values_are_refused(
        self, teacher: Any, student: Any, course: Any, overrides: dict[str, Any]
    ) -> None:
        fields = series_fields(teacher, student, course, **overrides)
        refused(lambda: BookingSeries.objects.create(**fields))

    def test_custom_frequency_with_rrule_is_accepted(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        fields = series_fields(
            teacher, student, course, frequency="custom", rrule="FREQ=WEEKLY;BYDAY=MO,TH"
        )
        assert BookingSeries.objects.create(**fields).pk

    def test_duplicate_occurrence_index_is_refused(
        self, teacher: Any, student: Any, course: Any, make_booking: Any, make_session: Any
    ) -> None:
        series = BookingSeries.objects.create(**series_fields(teacher, student, course))
        first = make_booking()
        times = {"start_at_utc": first.start_at_utc, "end_at_utc": first.end_at_utc}
        BookingSeriesItem.objects.create(series=series, booking=first, occurrence_index=1, **times)
        other = make_booking(session=make_session())
        refused(
            lambda: BookingSeriesItem.objects.create(
                series=series, booking=other, occurrence_index=1, **times
            )
        )
        refused(
            lambda: BookingSeriesItem.objects.create(
                series=series, booking=other, occurrence_index=0, **times
            )
        )

    def test_booked_item_needs_a_booking_and_an_end_after_its_start(
        self, teacher: Any, student: Any, course: Any, make_booking: Any
    ) -> None:
        series = BookingSeries.objects.create(**series_fields(teacher, student, course))
        booking = make_booking()
        start, end = booking.start_at_utc, booking.end_at_utc
        refused(
            lambda: BookingSeriesItem.objects.create(
                series=series, occurrence_index=1, start_at_utc=start, end_at_utc=end
            )
        )
        refused(
            lambda: BookingSeriesItem.objects.create(
                series=series,
                booking=booking,
                occurrence_index=1,
                start_at_utc=end,
                end_at_utc=start,
            )
        )
        refused(
            lambda: BookingSeriesItem.objects.create(
                series=series,
                occurrence_index=1,
                start_at_utc=start,
                end_at_utc=end,
                status="nonsense",
            )
        )
        assert BookingSeriesItem.objects.create(
            series=series,
            occurrence_index=1,
            start_at_utc=start,
            end_at_utc=end,
            status="awaiting_session",
        ).pk


class TestWaitlistConstraints:
    def test_second_entry_of_a_student_is_refused(self, session: Any, student: Any) -> None:
        SessionWaitlist.objects.create(session=session, student_user=student)
        refused(lambda: SessionWaitlist.objects.create(session=session, student_user=student))

    def test_offer_without_expiry_is_refused(self, session: Any, student: Any) -> None:
        refused(
            lambda: SessionWaitlist.objects.create(
                session=session, student_user=student, status="offered"
            )
        )

    def test_offer_expiring_before_it_was_made_is_refused(self, session: Any, student: Any) -> None:
        now = session.start_at_utc - timedelta(days=1)
        refused(
            lambda: SessionWaitlist.objects.create(
                session=session,
                student_user=student,
                status="offered",
                offered_at=now,
                offer_expires_at=now - timedelta(minutes=1),
            )
        )

    def test_offer_with_expiry_is_accepted(self, session: Any, student: Any) -> None:
        now = session.start_at_utc - timedelta(days=1)
        entry = SessionWaitlist.objects.create(
            session=session,
            student_user=student,
            status="offered",
            offered_at=now,
            offer_expires_at=now + timedelta(hours=12),
        )
        assert entry.pk

    def test_unknown_status_is_refused(self, session: Any, student: Any) -> None:
        refused(
            lambda: SessionWaitlist.objects.create(
                session=session, student_user=student, status="maybe"
            )
        )


class TestAvailabilityConstraints:
    def window(self, teacher: Any, **overrides: Any) -> Any:
        fields = {
            "teacher": teacher,
            "weekday": 0,
            "start_time": time(9),
            "end_time": time(12),
            "timezone": "Europe/Berlin",
            **overrides,
        }
        return TeacherAvailability.objects.create(**fields)

    def test_end_not_after_start_is_refused(self, teacher: Any) -> None:
        refused(lambda: self.window(teacher, end_time=time(9)))

    def test_weekday_out_of_range_is_refused(self, teacher: Any) -> None:
        refused(lambda: self.window(teacher, weekday=7))

    def test_valid_until_before_valid_from_is_refused(self, teacher: Any) -> None:
        refused(
            lambda: self.window(teacher, valid_from=date(2027, 2, 1), valid_until=date(2027, 1, 31))
        )

    @pytest.mark.parametrize(
        "overrides",
        [
            {"start_time": time(9), "end_time": None},
            {"start_time": time(12), "end_time": time(9)},
            {"kind": "available", "start_time": None, "end_time": None},
            {"kind": "holiday"},
        ],
    )
    def test_invalid_exceptions_are_refused(self, teacher: Any, overrides: dict[str, Any]) -> None:
        fields = {"teacher": teacher, "date": date(2027, 1, 4), "timezone": "UTC", **overrides}
        refused(lambda: AvailabilityException.objects.create(**fields))

    def test_whole_day_off_is_accepted(self, teacher: Any) -> None:
        entry = AvailabilityException.objects.create(
            teacher=teacher, date=date(2027, 1, 4), kind="unavailable", timezone="UTC"
        )
        assert entry.start_time is None


def test_idempotency_key_is_unique_per_user_and_scope(teacher: Any, student: Any) -> None:
    IdempotencyKey.objects.create(user=student, scope="bookings", key="k1", request_fingerprint="x")
    IdempotencyKey.objects.create(user=teacher, scope="bookings", key="k1", request_fingerprint="x")
    IdempotencyKey.objects.create(user=student, scope="series", key="k1", request_fingerprint="x")
    refused(
        lambda: IdempotencyKey.objects.create(
            user=student, scope="bookings", key="k1", request_fingerprint="y"
        )
    )
