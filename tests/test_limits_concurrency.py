"""Per-account limits under real concurrent requests on PostgreSQL and MariaDB/MySQL: N requests of
one student at once, through the REST API, each thread with its own connection, never pass a
limit of M.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from liveclass_booking.models import (
    BookingSeries,
    SessionWaitlist,
    TeacherAvailability,
    get_booking_model,
)
from tests.concurrency import race

pytestmark = [pytest.mark.concurrent, pytest.mark.django_db(transaction=True)]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def post(user: Any, name: str, body: dict[str, Any]) -> str:
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(reverse(f"liveclass_booking:{name}"), body, format="json")
    assert response.status_code < 500, response.content
    return "ok" if response.status_code == 201 else response.json()["code"]


def codes(results: list[tuple[str, Any]]) -> Counter[str]:
    return Counter(result for _, result in results)


def test_twelve_bookings_at_once_stop_at_the_active_bookings_limit(
    make_session: Any, student: Any
) -> None:
    soon = timezone.now() + timedelta(days=2)
    sessions = [make_session(start_at_utc=soon + timedelta(hours=i)) for i in range(12)]
    with override_settings(LIVECLASS_BOOKING_LIMITS={"active_bookings_per_student": 4}):
        results = race(
            12,
            lambda i: post(
                student,
                "booking-list",
                {"booking_type": "group_session", "session": sessions[i].pk},
            ),
        )
    assert codes(results) == {"ok": 4, "limit_reached": 8}, results
    assert get_booking_model().objects.filter(student_user=student).count() == 4


def test_ten_lesson_requests_at_once_stop_at_the_pending_requests_limit(
    teacher: Any, course: Any, student: Any
) -> None:
    day = (timezone.now() + timedelta(days=3)).date()
    TeacherAvailability.objects.create(
        teacher=teacher, weekday=day.weekday(), start_time=time(0), end_time=time(23, 59),
        timezone="UTC",
    )  # fmt: skip
    start = datetime.combine(day, time(1), tzinfo=UTC)

    def request(i: int) -> str:
        at = start + timedelta(hours=2 * i)
        return post(
            student,
            "booking-list",
            {
                "booking_type": "one_on_one",
                "teacher": str(teacher.pk),
                "course": str(course.pk),
                "start_at_utc": iso(at),
                "end_at_utc": iso(at + timedelta(hours=1)),
            },
        )

    with override_settings(LIVECLASS_BOOKING_LIMITS={"pending_requests_per_teacher": 3}):
        results = race(10, request)
    assert codes(results) == {"ok": 3, "limit_reached": 7}, results
    assert get_booking_model().objects.filter(student_user=student, status="pending").count() == 3


def test_eight_joins_at_once_stop_at_the_waitlist_limit(
    make_session: Any, student: Any, other_student: Any
) -> None:
    soon = timezone.now() + timedelta(days=2)
    sessions = [make_session(capacity=1, start_at_utc=soon + timedelta(hours=i)) for i in range(8)]
    for session in sessions:
        post(
            other_student, "booking-list", {"booking_type": "group_session", "session": session.pk}
        )
    with override_settings(LIVECLASS_BOOKING_LIMITS={"open_waitlist_entries_per_student": 2}):
        results = race(8, lambda i: post(student, "waitlist-list", {"session": sessions[i].pk}))
    assert codes(results) == {"ok": 2, "limit_reached": 6}, results
    assert SessionWaitlist.objects.filter(student_user=student).count() == 2


def test_six_series_at_once_stop_at_the_series_limit(
    teacher: Any, course: Any, student: Any
) -> None:
    start = (timezone.now() + timedelta(days=2)).date()

    def create(i: int) -> str:
        return post(
            student,
            "series-list",
            {
                "type": "group_series",
                "teacher": str(teacher.pk),
                "course": str(course.pk),
                "frequency": "weekly",
                "start_date": start.isoformat(),
                "start_time": f"{8 + i:02d}:00",
                "timezone": "UTC",
                "duration_minutes": 30,
                "occurrence_count": 2,
            },
        )

    with override_settings(LIVECLASS_BOOKING_LIMITS={"active_series_per_student": 2}):
        results = race(6, create)
    assert codes(results) == {"ok": 2, "limit_reached": 4}, results
    assert BookingSeries.objects.filter(student_user=student).count() == 2
