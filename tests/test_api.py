"""The REST API (docs/api.md): roles, visibility, the error contract, pagination, query counts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.urls import NoReverseMatch, reverse
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.models import TeacherAvailability, TeacherBookingPolicy

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Monday
WED = date(2027, 1, 6)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_json(pk: Any) -> Any:
    """A primary key as JSON renders it (UUIDs become strings)."""
    return pk if isinstance(pk, int) else str(pk)


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def api() -> Any:
    def client_for(user: Any = None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return client_for


class TestErrorContract:
    def test_anonymous_gets_a_code(self, api: Any) -> None:
        response = api().get(url("booking-list"))
        assert response.status_code in (401, 403)
        assert response.json()["code"] == "not_authenticated"

    @pytest.mark.parametrize("pk", ["abc", "99999999999999999999999", "00000000-0000"])
    def test_malformed_and_unknown_ids_are_404(self, api: Any, student: Any, pk: str) -> None:
        response = api(student).get(url("booking-detail", pk))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    @pytest.mark.parametrize(
        "path", ["bookings/1.5/", "bookings/1.json/", "sessions/x/y/", "nowhere/"]
    )
    def test_unknown_paths_under_the_prefix_are_coded_404s(
        self, api: Any, student: Any, path: str
    ) -> None:
        response = api(student).get(f"/api/booking/{path}")
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": "Not found."}
        posted = api(student).post(f"/api/booking/{path}", {}, format="json")
        assert (posted.status_code, posted.json()["code"]) == (404, "not_found")

    def test_malformed_json_is_400(self, api: Any, student: Any) -> None:
        response = api(student).post(
            url("booking-list"), data="{not json", content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"

    @pytest.mark.parametrize("body", [[], "text", 5, {"booking_type": "webinar"}, {}])
    def test_bad_bodies_are_400_with_field_errors(self, api: Any, student: Any, body: Any) -> None:
        response = api(student).post(url("booking-list"), body, format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert "errors" in response.json()

    def test_naive_datetime_has_its_own_code(
        self, api: Any, student: Any, teacher: Any, course: Any
    ) -> None:
        response = api(student).post(
            url("booking-list"),
            {
                "booking_type": "one_on_one",
                "teacher": str(teacher.pk),
                "course": str(course.pk),
                "start_at_utc": "2027-01-06T10:00:00",
                "end_at_utc": "2027-01-06T11:00:00Z",
            },
            format="json",
        )
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "naive_datetime"
        assert "start_at_utc" in body["errors"]

    @pytest.mark.parametrize("name", ["session-list", "booking-list"])
    def test_naive_datetimes_in_filters_are_refused(
        self, api: Any, student: Any, name: str
    ) -> None:
        naive = api(student).get(url(name), {"start_after": "2027-01-04T10:00:00"})
        assert naive.status_code == 400
        assert naive.json()["code"] == "naive_datetime"
        assert "start_after" in naive.json()["errors"]
        garbage = api(student).get(url(name), {"start_before": "soon"})
        assert (garbage.status_code, garbage.json()["code"]) == (400, "invalid")
        aware = api(student).get(url(name), {"start_after": "2027-01-04T10:00:00+01:00"})
        assert aware.status_code == 200

    def test_form_encoded_bodies_are_refused(self, api: Any, student: Any) -> None:
        response = api(student).post(url("booking-list"), {"booking_type": "x"})
        assert response.status_code == 415
        assert response.json()["code"] == "unsupported_media_type"


class TestSessions:
    def test_anyone_authenticated_lists_sessions_without_meeting_details(
        self, api: Any, session: Any, student: Any, teacher: Any
    ) -> None:
        body = api(student).get(url("session-list")).json()
        assert body["count"] == 1
        assert "meeting_link" not in body["results"][0]
        assert body["results"][0]["start_at_utc"].endswith("Z")
        teacher_view = api(teacher).get(url("session-detail", session.pk)).json()
        assert "meeting_link" in teacher_view

    def test_teacher_creates_student_cannot(
        self, api: Any, teacher: Any, student: Any, course: Any
    ) -> None:
        payload = {
            "course": str(course.pk),
            "title": "Conversation club",
            "start_at_utc": "2027-01-08T17:00:00+01:00",
            "end_at_utc": "2027-01-08T18:00:00+01:00",
            "capacity": 8,
            "seats_taken": 8,
            "status": "cancelled",
        }
        created = api(teacher).post(url("session-list"), payload, format="json")
        assert created.status_code == 201, created.json()
        body = created.json()
        assert (body["start_at_utc"], body["seats_taken"], body["status"]) == (
            "2027-01-08T16:00:00Z",
            0,
            "scheduled",
        )
        refused = api(student).post(url("session-list"), payload, format="json")
        assert refused.status_code == 403
        assert refused.json()["code"] == "not_allowed"

    def test_capacity_below_seats_taken_is_400(
        self, api: Any, teacher: Any, session: Any, student: Any
    ) -> None:
        services.book_group_session(student=student, session=session, seats=3)
        response = api(teacher).patch(
            url("session-detail", session.pk), {"capacity": 2}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert "3 seats" in response.json()["detail"]

    def test_cancel_by_teacher_and_not_by_student(
        self, api: Any, teacher: Any, student: Any, session: Any
    ) -> None:
        assert (
            api(student).post(url("session-cancel", session.pk), {}, format="json").status_code
            == 403
        )
        response = api(teacher).post(
            url("session-cancel", session.pk), {"reason": "ill"}, format="json"
        )
        assert (response.status_code, response.json()["status"]) == (200, "cancelled")

    def test_filters(self, api: Any, make_session: Any, student: Any, other_student: Any) -> None:
        full = make_session(capacity=1)
        make_session(start_at_utc=NOW + timedelta(days=10))
        services.book_group_session(student=other_student, session=full)
        client = api(student)
        assert client.get(url("session-list"), {"has_free_seats": "true"}).json()["count"] == 1
        later = client.get(url("session-list"), {"start_after": iso(NOW + timedelta(days=5))})
        assert later.json()["count"] == 1
        bad = client.get(url("session-list"), {"start_after": "yesterday"})
        assert bad.status_code == 400


class TestBookings:
    def test_group_booking_and_its_errors(
        self, api: Any, make_session: Any, student: Any, other_student: Any
    ) -> None:
        session = make_session(capacity=1)
        body = {"booking_type": "group_session", "session": str(session.pk), "status": "attended"}
        created = api(student).post(url("booking-list"), body, format="json")
        assert created.status_code == 201
        assert created.json()["status"] == "confirmed"  # clients cannot set the status
        again = api(student).post(url("booking-list"), body, format="json")
        assert (again.status_code, again.json()["code"]) == (409, "already_booked")
        full = api(other_student).post(url("booking-list"), body, format="json")
        assert (full.status_code, full.json()["code"]) == (409, "session_full")

    def test_unknown_session_is_400(self, api: Any, student: Any) -> None:
        response = api(student).post(
            url("booking-list"), {"booking_type": "group_session", "session": 987654}, format="json"
        )
        assert response.status_code == 400
        assert "session" in response.json()["errors"]

    def test_visibility(
        self, api: Any, session: Any, student: Any, other_student: Any, teacher: Any, staff: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=session)
        for user, visible in (
            (student, True),
            (teacher, True),
            (staff, True),
            (other_student, False),
        ):
            client = api(user)
            listed = client.get(url("booking-list")).json()["count"]
            detail = client.get(url("booking-detail", booking.pk)).status_code
            assert (listed, detail) == ((1, 200) if visible else (0, 404)), user
        # Another student's booking is 404 for actions too, never 403.
        response = api(other_student).post(url("booking-cancel", booking.pk), {}, format="json")
        assert response.status_code == 404

    def test_one_on_one_request_approve_and_errors(
        self, api: Any, student: Any, teacher: Any, course: Any
    ) -> None:
        TeacherAvailability.objects.create(
            teacher=teacher, weekday=2, start_time=time(9), end_time=time(17), timezone="UTC"
        )
        payload = {
            "booking_type": "one_on_one",
            "teacher": str(teacher.pk),
            "course": str(course.pk),
            "start_at_utc": "2027-01-06T10:00:00Z",
            "end_at_utc": "2027-01-06T11:00:00Z",
        }
        created = api(student).post(url("booking-list"), payload, format="json")
        assert created.status_code == 201
        booking = created.json()
        assert booking["status"] == "pending"
        outside = api(student).post(
            url("booking-list"),
            {
                **payload,
                "start_at_utc": "2027-01-06T18:00:00Z",
                "end_at_utc": "2027-01-06T19:00:00Z",
            },
            format="json",
        )
        assert (outside.status_code, outside.json()["code"]) == (400, "outside_availability")
        too_soon = api(student).post(
            url("booking-list"),
            {
                **payload,
                "start_at_utc": "2027-01-04T10:00:00Z",
                "end_at_utc": "2027-01-04T11:00:00Z",
            },
            format="json",
        )
        assert too_soon.json()["code"] == "min_notice"
        assert too_soon.json()["min_notice_hours"] == 24  # numbers in error data stay numbers
        refused = api(student).post(url("booking-approve", booking["id"]), {}, format="json")
        assert (refused.status_code, refused.json()["code"]) == (403, "not_allowed")
        approved = api(teacher).post(
            url("booking-approve", booking["id"]), {"teacher_note": "See you"}, format="json"
        )
        assert (approved.status_code, approved.json()["status"]) == (200, "confirmed")
        twice = api(teacher).post(url("booking-approve", booking["id"]), {}, format="json")
        assert (twice.status_code, twice.json()["code"]) == (409, "invalid_transition")

    def test_reschedule_returns_the_new_booking(
        self, api: Any, session: Any, make_session: Any, student: Any
    ) -> None:
        other = make_session(start_at_utc=NOW + timedelta(days=6))
        booking = services.book_group_session(student=student, session=session)
        response = api(student).post(
            url("booking-reschedule", booking.pk), {"session": str(other.pk)}, format="json"
        )
        assert response.status_code == 201
        body = response.json()
        assert (body["session"], body["rescheduled_from"]) == (other.pk, booking.pk)

    def test_attendance_before_start_is_a_conflict(
        self, api: Any, session: Any, student: Any, teacher: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=session)
        response = api(teacher).post(url("booking-mark-attended", booking.pk), format="json")
        assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")

    def test_cancel_window_code(self, api: Any, make_session: Any, student: Any) -> None:
        session = make_session(start_at_utc=NOW + timedelta(hours=2))
        booking = services.book_group_session(student=student, session=session)
        response = api(student).post(url("booking-cancel", booking.pk), {}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "cancel_window_closed")

    def test_list_query_count_does_not_grow(
        self,
        api: Any,
        make_session: Any,
        user_model: Any,
        teacher: Any,
        django_assert_max_num_queries: Any,
    ) -> None:
        sessions = [make_session(start_at_utc=NOW + timedelta(days=2, hours=i)) for i in range(20)]
        students = [
            user_model.objects.create_user(username=f"q{i}", password="x") for i in range(20)
        ]
        services.book_group_session(student=students[0], session=sessions[0])
        client = api(teacher)
        # One statement: the page, with the total as a subquery (docs/concurrency.md).
        with django_assert_max_num_queries(1) as one:
            assert client.get(url("booking-list")).json()["count"] == 1
        for st, se in zip(students[1:], sessions[1:], strict=True):
            services.book_group_session(student=st, session=se)
        with django_assert_max_num_queries(len(one.captured_queries)):
            assert client.get(url("booking-list")).json()["count"] == 20


class TestPoliciesAndAvailability:
    def test_teacher_manages_own_policy(
        self, api: Any, teacher: Any, student: Any, staff: Any
    ) -> None:
        client = api(teacher)
        created = client.post(url("policy-list"), {"min_notice_hours": 2}, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["teacher"] == as_json(teacher.pk)
        second = client.post(url("policy-list"), {"min_notice_hours": 3}, format="json")
        assert (second.status_code, second.json()["code"]) == (400, "invalid")
        pk = created.json()["id"]
        assert api(student).get(url("policy-detail", pk)).status_code == 404
        assert api(staff).get(url("policy-detail", pk)).status_code == 200
        updated = client.patch(url("policy-detail", pk), {"max_bookings_per_day": 0}, format="json")
        assert updated.status_code == 400
        assert client.delete(url("policy-detail", pk)).status_code == 204
        assert not TeacherBookingPolicy.objects.exists()

    def test_students_cannot_create_policies_or_windows(self, api: Any, student: Any) -> None:
        assert api(student).post(url("policy-list"), {}, format="json").status_code == 403
        window = {"weekday": 0, "start_time": "09:00", "end_time": "12:00", "timezone": "UTC"}
        assert api(student).post(url("availability-list"), window, format="json").status_code == 403

    def test_teacher_cannot_act_for_another_teacher(
        self, api: Any, teacher: Any, staff: Any
    ) -> None:
        response = api(teacher).post(url("policy-list"), {"teacher": staff.pk}, format="json")
        assert (response.status_code, response.json()["code"]) == (403, "not_allowed")

    def test_availability_validation(self, api: Any, teacher: Any) -> None:
        client = api(teacher)
        bad_zone = {"weekday": 0, "start_time": "09:00", "end_time": "12:00", "timezone": "Mars/X"}
        assert client.post(url("availability-list"), bad_zone, format="json").status_code == 400
        backwards = {**bad_zone, "timezone": "UTC", "end_time": "08:00"}
        response = client.post(url("availability-list"), backwards, format="json")
        assert response.status_code == 400
        ok = client.post(
            url("availability-list"), {**backwards, "end_time": "12:00"}, format="json"
        )
        assert ok.status_code == 201


class TestSlots:
    def test_free_slots(self, api: Any, teacher: Any, course: Any, student: Any) -> None:
        TeacherAvailability.objects.create(
            teacher=teacher, weekday=2, start_time=time(9), end_time=time(12), timezone="UTC"
        )
        response = api(student).get(
            url("slot-list"),
            {
                "teacher": teacher.pk,
                "course": course.pk,
                "start": "2027-01-06T00:00:00Z",
                "end": "2027-01-07T00:00:00Z",
                "duration": 60,
            },
        )
        assert response.status_code == 200, response.json()
        starts = [slot["start_at_utc"] for slot in response.json()["results"]]
        assert starts == ["2027-01-06T09:00:00Z", "2027-01-06T10:00:00Z", "2027-01-06T11:00:00Z"]

    @pytest.mark.parametrize(
        "query",
        [
            {},
            {
                "teacher": "x",
                "start": "2027-01-06T00:00:00Z",
                "end": "2027-01-07T00:00:00Z",
                "duration": 60,
            },
            {"start": "2027-01-06T00:00:00", "end": "2027-01-07T00:00:00Z", "duration": 60},
            {"start": "2027-01-07T00:00:00Z", "end": "2027-01-06T00:00:00Z", "duration": 60},
            {"start": "2027-01-06T00:00:00Z", "end": "2028-01-06T00:00:00Z", "duration": 60},
            {"start": "2027-01-06T00:00:00Z", "end": "2027-01-07T00:00:00Z", "duration": 0},
        ],
    )
    def test_bad_queries_are_400(
        self, api: Any, teacher: Any, student: Any, query: dict[str, Any]
    ) -> None:
        query = {"teacher": teacher.pk, **query} if query else query
        response = api(student).get(url("slot-list"), query)
        assert response.status_code == 400
        assert response.json()["code"] in ("invalid", "naive_datetime")


class TestHostCustomisation:
    @pytest.mark.urls("tests.custom_api")
    def test_subclassed_viewset_and_serializer_on_a_partial_router(
        self, api: Any, session: Any, student: Any, course: Any
    ) -> None:
        body = {"booking_type": "group_session", "session": as_json(session.pk)}
        created = api(student).post(reverse("custom:booking-list"), body, format="json")
        assert created.status_code == 201
        assert created.json()["course_name"] == str(course)
        listed = api(student).get(reverse("custom:booking-list")).json()["results"]
        assert [b["course_name"] for b in listed] == [str(course)]
        cancelled = api(student).post(
            reverse("custom:booking-cancel", args=[created.json()["id"]]), {}, format="json"
        )
        assert cancelled.json()["status"] == "cancelled"
        assert "course_name" in cancelled.json()
        with pytest.raises(NoReverseMatch):
            reverse("custom:session-list")  # only the routes the host registered
