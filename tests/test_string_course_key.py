"""A host course keyed by a string, as Open edX's course keys are (``course-v1:Org+Number+Run``,
the ``CharField`` primary key of its ``CourseOverview``): the swapped models' course
(``tests.swapped.Course``). Sessions, group bookings and lessons of such a course through the
services, the REST API (the key in bodies and query filters) and the admin.

Runs with the swapped models (``--ds=tests.settings_swapped``) on SQLite, PostgreSQL and
MariaDB; the default models' course has an integer key, so it is skipped there.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.db import models
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.models import TeacherAvailability, get_course_model

pytestmark = [
    pytest.mark.string_course_key,
    pytest.mark.django_db,
    pytest.mark.skipif(
        not isinstance(get_course_model()._meta.pk, models.CharField),
        reason="the course model's key is not a string (run with tests.settings_swapped)",
    ),
]

NOW = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)  # Monday
KEY = "course-v1:OpenedX+DemoX+2030_T1"


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def course(course_model: Any) -> Any:
    return course_model.objects.create(id=KEY, code="DEMO", name="Demo course")


@pytest.fixture
def session(make_session: Any) -> Any:
    return make_session(start_at_utc=NOW + timedelta(days=2))


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def test_the_key_is_kept_as_given(course: Any, course_model: Any) -> None:
    assert course_model.objects.get(pk=KEY).code == "DEMO"
    assert course.pk == KEY


def test_services_book_a_session_and_a_lesson(
    session: Any, course: Any, student: Any, teacher: Any
) -> None:
    booking = services.book_group_session(student=student, session=session)
    assert booking.course_id == KEY
    TeacherAvailability.objects.create(
        teacher=teacher, weekday=2, start_time=time(9), end_time=time(17), timezone="UTC"
    )
    lesson = services.request_one_on_one(
        student=student,
        teacher=teacher,
        course=course,
        start_at_utc=datetime(2030, 1, 9, 10, tzinfo=UTC),
        end_at_utc=datetime(2030, 1, 9, 11, tzinfo=UTC),
    )
    assert lesson.course_id == KEY
    assert {b.course_id for b in course.liveclass_bookings.all()} == {KEY}


def test_api_creates_filters_and_books_by_key(teacher: Any, student: Any, course: Any) -> None:
    created = api(teacher).post(
        url("session-list"),
        {
            "course": KEY,
            "title": "Office hours",
            "start_at_utc": "2030-01-09T17:00:00Z",
            "end_at_utc": "2030-01-09T18:00:00Z",
            "capacity": 5,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["course"] == KEY
    session_id = created.json()["id"]

    listed = api(student).get(url("session-list"), {"course": KEY})  # "+" sent as %2B
    assert listed.status_code == 200, listed.json()
    assert [s["id"] for s in listed.json()["results"]] == [session_id]

    booked = api(student).post(
        url("booking-list"),
        {"booking_type": "group_session", "session": session_id},
        format="json",
    )
    assert booked.status_code == 201, booked.json()
    assert booked.json()["course"] == KEY
    mine = api(student).get(f"{url('booking-list')}?course={quote(KEY, safe='')}")
    assert [b["id"] for b in mine.json()["results"]] == [booked.json()["id"]]


def test_api_books_a_lesson_and_lists_slots_by_key(teacher: Any, student: Any, course: Any) -> None:
    TeacherAvailability.objects.create(
        teacher=teacher, weekday=2, start_time=time(9), end_time=time(11), timezone="UTC"
    )
    slots = api(student).get(
        url("slot-list"),
        {
            "teacher": str(teacher.pk),
            "course": KEY,
            "start": "2030-01-09T00:00:00Z",
            "end": "2030-01-10T00:00:00Z",
            "duration": 60,
        },
    )
    assert slots.status_code == 200, slots.json()
    starts = [slot["start_at_utc"] for slot in slots.json()["results"]]
    assert starts == ["2030-01-09T09:00:00Z", "2030-01-09T10:00:00Z"]
    lesson = api(student).post(
        url("booking-list"),
        {
            "booking_type": "one_on_one",
            "teacher": str(teacher.pk),
            "course": KEY,
            "start_at_utc": starts[0],
            "end_at_utc": "2030-01-09T10:00:00Z",
        },
        format="json",
    )
    assert lesson.status_code == 201, lesson.json()
    assert lesson.json()["course"] == KEY


@pytest.mark.parametrize(
    "given",
    [
        KEY.upper(),  # MySQL/MariaDB find the row under their default, case-blind collation
        KEY.lower(),
        f"{KEY} ",  # the same key where trailing spaces are ignored (PAD SPACE collations)
        f" {KEY}",
        KEY.replace("+", " "),  # "+" left unencoded in a query string
    ],
)
def test_a_key_not_given_exactly_names_nothing(
    session: Any, student: Any, teacher: Any, course: Any, booking_model: Any, given: str
) -> None:
    listed = api(student).get(url("session-list"), {"course": given})
    assert listed.status_code == 400, listed.json()
    assert listed.json()["code"] == "invalid"
    created = api(teacher).post(
        url("session-list"),
        {
            "course": given,
            "title": "Not this one",
            "start_at_utc": "2030-01-09T17:00:00Z",
            "end_at_utc": "2030-01-09T18:00:00Z",
            "capacity": 5,
        },
        format="json",
    )
    assert created.status_code == 400, created.json()
    assert created.json()["code"] == "invalid"
    assert session.__class__.objects.count() == 1
    assert booking_model.objects.count() == 0


def test_an_unencoded_plus_in_the_url_is_a_clear_400(student: Any, course: Any) -> None:
    response = api(student).get(f"{url('session-list')}?course={KEY}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_admin_changelists_and_change_pages(
    client: Client, staff: Any, session: Any, student: Any
) -> None:
    booking = services.book_group_session(student=student, session=session)
    client.force_login(staff)
    for obj in (session, booking):
        opts = obj._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        listed = client.get(changelist)
        assert listed.status_code == 200
        assert listed.context["cl"].result_count == 1
        change = client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )
        assert change.status_code == 200
        assert "Demo course" in change.content.decode()  # the course, found by its key
