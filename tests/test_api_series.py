"""The series endpoints (docs/api.md): create with the per-occurrence report (all-or-nothing or
partial, Idempotency-Key), list, detail with occurrences, pause, resume, cancel, extend; and
``sessions/recurring/`` for a teacher's run of sessions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.models import (
    BookingSeries,
    BookingSeriesItem,
    get_booking_model,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def as_json(pk: Any) -> Any:
    return pk if isinstance(pk, int) else str(pk)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def body(who: Any, course: Any, **changes: Any) -> dict[str, Any]:
    values = {
        "type": "one_on_one_series",
        "teacher": as_json(who.pk),
        "course": as_json(course.pk),
        "frequency": "weekly",
        "days_of_week": "WE",
        "start_date": "2027-03-03",
        "start_time": "17:00",
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "occurrence_count": 12,
    }
    values.update(changes)
    return values


def create(client: APIClient, data: dict[str, Any], **headers: str) -> Any:
    return client.post(url("series-list"), data, format="json", headers=headers)


@pytest.mark.usefixtures("open_all_week")
class TestCreate:
    def test_created_with_report_and_occurrences(
        self, student: Any, teacher: Any, course: Any
    ) -> None:
        response = create(client_for(student), body(teacher, course))
        assert response.status_code == 201, response.json()
        data = response.json()
        assert data["status"] == "active"
        assert data["student_user"] == as_json(student.pk)
        assert data["report"]["counts"] == {"pending": 12}
        assert len(data["occurrences"]) == 12
        first = data["occurrences"][0]
        assert first["start_at_utc"] == "2027-03-03T16:00:00Z"
        assert (first["status"], first["booking_status"]) == ("booked", "pending")
        assert data["occurrences"][4]["start_at_utc"] == "2027-03-31T15:00:00Z"  # CEST

    def test_conflict_is_409_with_the_report_and_creates_nothing(
        self, student: Any, other_student: Any, teacher: Any, course: Any
    ) -> None:
        seventh = datetime(2027, 4, 14, 17, tzinfo=BERLIN)
        services.request_one_on_one(
            student=other_student, teacher=teacher, course=course,
            start_at_utc=seventh, end_at_utc=seventh + timedelta(hours=1),
        )  # fmt: skip
        response = create(client_for(student), body(teacher, course))
        assert response.status_code == 409
        data = response.json()
        assert data["code"] == "series_conflict"
        assert data["occurrences"][6]["code"] == "slot_unavailable"
        assert data["occurrences"][6]["start_at_utc"] == "2027-04-14T15:00:00Z"
        assert not BookingSeries.objects.exists()
        partial = create(client_for(student), body(teacher, course, accept_partial=True))
        assert partial.status_code == 201
        assert partial.json()["report"]["counts"] == {"pending": 11, "skipped": 1}
        assert partial.json()["occurrences"][6]["status"] == "skipped"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"occurrence_count": None}, "occurrence_count"),
            ({"until_date": "2027-06-01"}, "occurrence_count"),
            ({"occurrence_count": 500}, "occurrence_count"),
            ({"timezone": "Mars/Base"}, "timezone"),
            ({"start_time": "17:00+01:00"}, "start_time"),
            ({"days_of_week": "XX"}, "days_of_week"),
            ({"frequency": "custom", "days_of_week": "", "rrule": "FREQ=WEEKLY;COUNT=2"}, "rrule"),
            ({"frequency": "yearly"}, "frequency"),
            ({"type": "other"}, "type"),
            ({"teacher": 999999}, "teacher"),  # no such user
            ({"duration_minutes": 0}, "duration_minutes"),
            ({"start_date": "2027-02-30"}, "start_date"),
            ({"default_meeting_link": "not a url"}, "default_meeting_link"),
        ],
    )
    def test_bad_input_is_400_invalid_naming_the_field(
        self, student: Any, teacher: Any, course: Any, changes: dict[str, Any], field: str
    ) -> None:
        response = create(client_for(student), body(teacher, course, **changes))
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "invalid"
        assert field in response.json()["errors"]
        assert not BookingSeries.objects.exists()

    def test_idempotency_key_replays_and_refuses_another_body(
        self, student: Any, teacher: Any, course: Any
    ) -> None:
        client = client_for(student)
        first = create(client, body(teacher, course), **{"Idempotency-Key": "term-1"})
        again = create(client, body(teacher, course), **{"Idempotency-Key": "term-1"})
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert BookingSeries.objects.count() == 1
        other = create(
            client, body(teacher, course, occurrence_count=3), **{"Idempotency-Key": "term-1"}
        )
        assert other.status_code == 409
        assert other.json()["code"] == "idempotency_conflict"


@pytest.mark.usefixtures("open_all_week")
class TestReadAndChange:
    @pytest.fixture
    def series(self, student: Any, teacher: Any, course: Any) -> Any:
        response = create(client_for(student), body(teacher, course, occurrence_count=4))
        return BookingSeries.objects.get(pk=response.json()["id"])

    def test_visibility(
        self, series: Any, student: Any, teacher: Any, other_student: Any, staff: Any
    ) -> None:
        for user, seen in ((student, 1), (teacher, 1), (staff, 1), (other_student, 0)):
            listed = client_for(user).get(url("series-list")).json()
            assert listed["count"] == seen
        assert client_for(other_student).get(url("series-detail", series.pk)).status_code == 404
        assert client_for(other_student).post(url("series-pause", series.pk)).status_code == 404

    def test_pause_resume_cancel(self, series: Any, student: Any, teacher: Any) -> None:
        client = client_for(teacher)
        paused = client.post(url("series-pause", series.pk), {"reason": "ill"}, format="json")
        assert paused.status_code == 200
        assert paused.json()["status"] == "paused"
        assert {o["status"] for o in paused.json()["occurrences"]} == {"paused"}
        assert {o["booking_status"] for o in paused.json()["occurrences"]} == {"cancelled"}
        again = client.post(url("series-pause", series.pk))
        assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
        resumed = client_for(student).post(url("series-resume", series.pk))
        assert resumed.status_code == 200
        assert resumed.json()["report"]["counts"] == {"pending": 4}
        assert resumed.json()["status"] == "active"
        cancelled = client.post(url("series-cancel", series.pk), {}, format="json")
        assert cancelled.json()["status"] == "cancelled"
        active = get_booking_model().objects.filter(status__in=["pending", "confirmed"])
        assert not active.exists()

    def test_extend(self, series: Any, student: Any) -> None:
        response = client_for(student).post(
            url("series-extend", series.pk), {"occurrence_count": 6}, format="json"
        )
        assert response.status_code == 200, response.json()
        assert [o["occurrence_index"] for o in response.json()["report"]["occurrences"]] == [5, 6]
        assert len(response.json()["occurrences"]) == 6
        both = client_for(student).post(
            url("series-extend", series.pk),
            {"occurrence_count": 8, "until_date": "2027-09-01"},
            format="json",
        )
        assert (both.status_code, both.json()["code"]) == (400, "invalid")

    def test_completed_reads_and_filters(self, series: Any, student: Any, clock: Any) -> None:
        clock.move_to(datetime(2027, 4, 1, tzinfo=UTC))
        client = client_for(student)
        assert client.get(url("series-detail", series.pk)).json()["status"] == "completed"
        assert client.get(url("series-list"), {"status": "completed"}).json()["count"] == 1
        assert client.get(url("series-list"), {"status": "active"}).json()["count"] == 0
        bad = client.get(url("series-list"), {"status": "nonsense"})
        assert (bad.status_code, bad.json()["code"]) == (400, "invalid")


class TestGroupSeriesAndRecurringSessions:
    def test_teacher_run_then_student_series(self, teacher: Any, student: Any, course: Any) -> None:
        run = client_for(teacher).post(
            url("session-recurring"),
            {
                "course": as_json(course.pk),
                "title": "Weekly class",
                "capacity": 1,
                "frequency": "weekly",
                "start_date": "2027-03-14",
                "start_time": "02:30",
                "timezone": "Europe/Berlin",
                "duration_minutes": 60,
                "occurrence_count": 4,
            },
            format="json",
        )
        assert run.status_code == 201, run.json()
        assert [s["start_at_utc"] for s in run.json()["sessions"]] == [
            "2027-03-14T01:30:00Z",
            "2027-03-21T01:30:00Z",
            "2027-04-04T00:30:00Z",
            "2027-04-11T00:30:00Z",
        ]
        assert run.json()["skipped_times"] == [
            {"date": "2027-03-28", "time": "02:30:00", "timezone": "Europe/Berlin",
             "code": "nonexistent_time"}
        ]  # fmt: skip
        response = create(
            client_for(student),
            body(
                teacher, course, type="group_series", days_of_week="SU", start_date="2027-03-14",
                start_time="02:30", occurrence_count=5,
            ),
        )  # fmt: skip
        assert response.status_code == 201, response.json()
        report = response.json()["report"]
        assert report["counts"] == {"booked": 4, "awaiting_session": 1}
        assert report["skipped_times"][0]["date"] == "2027-03-28"
        assert BookingSeriesItem.objects.filter(status="booked").count() == 4

    def test_students_cannot_create_runs(self, student: Any, course: Any) -> None:
        response = client_for(student).post(
            url("session-recurring"),
            {
                "course": as_json(course.pk),
                "title": "x",
                "capacity": 3,
                "frequency": "weekly",
                "start_date": str(date(2027, 3, 3)),
                "start_time": "17:00",
                "timezone": "Europe/Berlin",
                "duration_minutes": 60,
                "occurrence_count": 2,
            },
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (403, "not_allowed")
