"""Model behaviour: readable validation, legacy aliases, time zones, any user key type."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from liveclass_booking.models import (
    AvailabilityException,
    BookingSeries,
    TeacherAvailability,
    TeacherBookingPolicy,
)
from liveclass_booking.validators import validate_days_of_week, validate_timezone

pytestmark = pytest.mark.django_db


def messages_of(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(str(m) for m in exc.value.messages)


class TestReadableValidation:
    def test_session_ending_before_start_is_explained(self, session: Any) -> None:
        session.end_at_utc = session.start_at_utc - timedelta(minutes=1)
        with pytest.raises(ValidationError) as exc:
            session.full_clean()
        assert "must end after it starts" in messages_of(exc)

    def test_capacity_below_seats_taken_is_explained(self, session: Any) -> None:
        session.seats_taken = 4
        session.capacity = 3
        with pytest.raises(ValidationError) as exc:
            session.full_clean()
        assert exc.value.message_dict["capacity"] == [
            "Capacity cannot go below the 4 seats already taken."
        ]

    def test_bad_time_zone_is_explained(self, session: Any) -> None:
        session.timezone_snapshot = "Mars/Olympus_Mons"
        with pytest.raises(ValidationError) as exc:
            session.full_clean()
        assert "timezone_snapshot" in exc.value.message_dict
        assert "not an IANA time-zone name" in messages_of(exc)

    def test_valid_session_passes(self, session: Any) -> None:
        session.full_clean()

    def test_group_booking_without_session_is_explained(
        self, make_booking: Any, booking_model: Any
    ) -> None:
        booking = make_booking()
        booking.session = None
        with pytest.raises(ValidationError) as exc:
            booking.full_clean()
        assert "A group booking needs a session" in messages_of(exc)

    def test_second_active_booking_is_explained(
        self, make_booking: Any, booking_model: Any
    ) -> None:
        first = make_booking()
        second = booking_model(
            **{
                f.attname: getattr(first, f.attname)
                for f in booking_model._meta.concrete_fields
                if not f.primary_key
            }
        )
        with pytest.raises(ValidationError) as exc:
            second.full_clean()
        assert "already holds an active booking" in messages_of(exc)

    def test_series_with_count_and_until_is_explained(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        series = BookingSeries(
            student_user=student,
            teacher=teacher,
            course=course,
            type="one_on_one_series",
            occurrence_count=5,
            until_date=date(2027, 3, 1),
            start_date=date(2027, 1, 4),
            start_time=time(17),
            duration_minutes=60,
            timezone="Europe/Berlin",
        )
        with pytest.raises(ValidationError) as exc:
            series.full_clean()
        assert "exactly one of the number of occurrences and the until date" in messages_of(exc)

    def test_series_days_of_week_are_checked(self, teacher: Any, student: Any, course: Any) -> None:
        series = BookingSeries(
            student_user=student,
            teacher=teacher,
            course=course,
            type="one_on_one_series",
            days_of_week="MO,XX",
            occurrence_count=5,
            start_date=date(2027, 1, 4),
            start_time=time(17),
            duration_minutes=60,
            timezone="Europe/Berlin",
        )
        with pytest.raises(ValidationError) as exc:
            series.full_clean()
        assert "days_of_week" in exc.value.message_dict

    def test_second_default_policy_is_explained(self, teacher: Any) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher)
        with pytest.raises(ValidationError) as exc:
            TeacherBookingPolicy(teacher=teacher).full_clean()
        assert "already has a default policy" in messages_of(exc)

    def test_overnight_window_is_explained(self, teacher: Any) -> None:
        window = TeacherAvailability(
            teacher=teacher, weekday=4, start_time=time(22), end_time=time(2), timezone="UTC"
        )
        with pytest.raises(ValidationError) as exc:
            window.full_clean()
        assert "split a window that crosses midnight" in messages_of(exc)

    def test_extra_hours_without_times_are_explained(self, teacher: Any) -> None:
        extra = AvailabilityException(
            teacher=teacher, date=date(2027, 1, 4), kind="available", timezone="UTC"
        )
        with pytest.raises(ValidationError) as exc:
            extra.full_clean()
        assert "Extra hours need a start and an end time" in messages_of(exc)


class TestLegacyAliases:
    def test_aliases_read_the_new_fields(self, make_session: Any) -> None:
        session = make_session(capacity=12, meeting_passcode="s3cret")
        assert session.total_seats == 12
        assert session.scheduled_start == session.start_at_utc
        assert session.meeting_password == "s3cret"

    def test_aliases_can_be_used_when_creating(
        self, session_model: Any, teacher: Any, course: Any, session: Any
    ) -> None:
        created = session_model.objects.create(
            course=course,
            teacher=teacher,
            title="Legacy",
            scheduled_start=session.start_at_utc,
            end_at_utc=session.end_at_utc,
            total_seats=7,
            meeting_password="pw",
        )
        created.refresh_from_db()
        assert (created.capacity, created.meeting_passcode) == (7, "pw")
        assert created.start_at_utc == session.start_at_utc

    def test_seats_available(self, session: Any, session_model: Any) -> None:
        session_model.objects.filter(pk=session.pk).update(seats_taken=4)
        session.refresh_from_db()
        assert session.seats_available == session.capacity - 4


class TestTimeZones:
    @pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
    def test_iana_names_are_accepted(self, name: str) -> None:
        validate_timezone(name)

    @pytest.mark.parametrize("name", ["", "CEST", "Europe/Atlantis", "../etc/passwd", "+02:00"])
    def test_other_values_are_refused(self, name: str) -> None:
        with pytest.raises(ValidationError):
            validate_timezone(name)

    def test_datetimes_come_back_aware_in_utc(self, session: Any, session_model: Any) -> None:
        stored = session_model.objects.get(pk=session.pk)
        assert stored.start_at_utc.utcoffset() == timedelta(0)
        assert stored.start_at_utc == session.start_at_utc


@pytest.mark.parametrize("value", ["", "MO", "MO,WE,FR", "su, sa"])
def test_days_of_week_accepts_rfc5545_codes(value: str) -> None:
    validate_days_of_week(value)


@pytest.mark.parametrize("value", ["MON", "MO,MO", "1,2", "MO;TU"])
def test_days_of_week_refuses_other_values(value: str) -> None:
    with pytest.raises(ValidationError):
        validate_days_of_week(value)


def test_related_names_reach_a_users_sessions_and_bookings(
    session: Any, make_booking: Any, teacher: Any, student: Any
) -> None:
    booking = make_booking()
    assert list(teacher.liveclass_sessions_taught.all()) == [session]
    assert list(student.liveclass_bookings.all()) == [booking]
    assert list(session.bookings.all()) == [booking]
    assert list(session.course.liveclass_sessions.all()) == [session]


def test_str_of_every_model_is_readable(session: Any, make_booking: Any, teacher: Any) -> None:
    booking = make_booking()
    policy = TeacherBookingPolicy.objects.create(teacher=teacher)
    window = TeacherAvailability.objects.create(
        teacher=teacher, weekday=0, start_time=time(9), end_time=time(12), timezone="UTC"
    )
    assert "UTC" in str(session)
    assert "Group session" in str(booking)
    assert "default" in str(policy)
    assert str(window) == "Monday 09:00–12:00 UTC"
