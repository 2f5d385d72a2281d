"""A one-on-one lesson's meeting details: given when the teacher approves or later, filled by
the host's default when a lesson is confirmed without them, kept across a reschedule, and
shown like a session's in the booking, its notifications and its calendar entry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from icalendar import Calendar
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.models import TeacherBookingPolicy
from liveclass_booking.notifications import dispatch
from tests.conftest import app_row_counts

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
START = datetime(2027, 3, 3, 10, 0, tzinfo=UTC)
LINK = "https://meet.example.com/anna"


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def lesson(student: Any, teacher: Any, course: Any, open_all_week: None) -> Any:
    """A pending lesson (the default policy needs approval)."""
    return services.request_one_on_one(
        student=student,
        teacher=teacher,
        course=course,
        start_at_utc=START,
        end_at_utc=START + timedelta(hours=1),
    )


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def url(name: str, pk: Any) -> str:
    return reverse(f"liveclass_booking:{name}", kwargs={"pk": pk})


def mails_to(address: str) -> list[Any]:
    mail.outbox.clear()
    dispatch()
    return [m for m in mail.outbox if address in m.to]


def entry(message: Any) -> Any:
    ((_, content, _),) = message.attachments
    (event,) = Calendar.from_ical(content).walk("VEVENT")
    return event


def test_the_teacher_gives_the_details_when_approving(
    lesson: Any, student: Any, teacher: Any, staff: Any
) -> None:
    mails_to(student.email)
    body = {"teacher_note": "See you", "meeting_link": LINK, "meeting_passcode": "42"}
    response = api(teacher).post(url("booking-approve", lesson.pk), body, format="json")
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert (answer["status"], answer["meeting_link"], answer["meeting_passcode"]) == (
        "confirmed",
        LINK,
        "42",
    )
    mine = api(student).get(url("booking-detail", lesson.pk)).json()
    assert (mine["meeting_link"], mine["meeting_passcode"]) == (LINK, "42")
    # Staff see the link, not the passcode (it belongs to the lesson's two people).
    theirs = api(staff).get(url("booking-detail", lesson.pk)).json()
    assert (theirs["meeting_link"], theirs["meeting_passcode"]) == (LINK, "")
    (message,) = mails_to(student.email)
    assert f"Join: {LINK}" in message.body
    assert "Passcode: 42" in message.body
    event = entry(message)
    assert str(event["URL"]) == LINK
    assert "Passcode: 42" in str(event["DESCRIPTION"])
    ics = api(student).get(url("booking-ics", lesson.pk)).content.decode()
    assert f"URL:{LINK}" in ics


def test_details_can_be_given_or_changed_later_and_the_student_hears_of_it(
    lesson: Any, student: Any, teacher: Any
) -> None:
    lesson = services.approve_booking(lesson, actor=teacher)
    assert lesson.meeting_link == ""  # no host default
    mails_to(student.email)
    sequence = lesson.calendar_sequence
    response = api(teacher).post(
        url("booking-meeting", lesson.pk), {"meeting_link": LINK}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["meeting_link"] == LINK
    (message,) = mails_to(student.email)
    assert message.subject.startswith("New meeting details")
    event = entry(message)
    assert (str(event["URL"]), int(event["SEQUENCE"])) == (LINK, sequence + 1)
    # The same details again change nothing and tell nobody.
    api(teacher).post(url("booking-meeting", lesson.pk), {"meeting_link": LINK}, format="json")
    assert mails_to(student.email) == []


def test_bad_details_and_wrong_bookings_are_refused_and_change_nothing(
    lesson: Any, student: Any, teacher: Any, session: Any
) -> None:
    before = app_row_counts()
    client = api(teacher)
    bad = client.post(url("booking-meeting", lesson.pk), {"meeting_link": "nope"}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"meeting_link"}
    empty = client.post(url("booking-meeting", lesson.pk), {}, format="json")
    assert (empty.status_code, empty.json()["code"]) == (400, "invalid")
    by_student = api(student).post(
        url("booking-meeting", lesson.pk), {"meeting_link": LINK}, format="json"
    )
    assert by_student.status_code == 403
    assert app_row_counts() == before
    seat = services.book_group_session(student=student, session=session)
    group = client.post(url("booking-meeting", seat.pk), {"meeting_link": LINK}, format="json")
    assert (group.status_code, group.json()["code"]) == (400, "invalid")
    services.cancel_booking(lesson, actor=teacher)
    gone = client.post(url("booking-meeting", lesson.pk), {"meeting_link": LINK}, format="json")
    assert (gone.status_code, gone.json()["code"]) == (409, "invalid_transition")
    assert type(lesson).objects.get(pk=lesson.pk).meeting_link == ""


def test_the_hosts_default_fills_a_lesson_confirmed_without_details(
    settings: Any, student: Any, teacher: Any, course: Any, open_all_week: None
) -> None:
    settings.LIVECLASS_BOOKING_POLICY_RESOLVER = "tests.resolvers.PersonalRooms"
    TeacherBookingPolicy.objects.create(
        teacher=teacher, requires_approval_for_one_on_one=False, min_notice_hours=0
    )
    at_once = services.request_one_on_one(
        student=student,
        teacher=teacher,
        course=course,
        start_at_utc=START,
        end_at_utc=START + timedelta(hours=1),
    )
    assert (at_once.meeting_link, at_once.meeting_passcode) == (
        "https://meet.example.com/teacher",
        "room",
    )
    # Moved, it keeps them.
    moved = services.reschedule_booking(
        at_once,
        actor=student,
        start_at_utc=START + timedelta(days=1),
        end_at_utc=START + timedelta(days=1, hours=1),
    )
    assert moved.meeting_link == "https://meet.example.com/teacher"


def test_approving_without_details_takes_the_hosts_default(
    settings: Any, lesson: Any, teacher: Any
) -> None:
    settings.LIVECLASS_BOOKING_POLICY_RESOLVER = "tests.resolvers.PersonalRooms"
    approved = services.approve_booking(lesson, actor=teacher)
    assert approved.meeting_link == "https://meet.example.com/teacher"
    given = services.set_lesson_meeting(approved, actor=teacher, meeting_link=LINK)
    assert (given.meeting_link, given.meeting_passcode) == (LINK, "room")
