"""What makes the API usable by people and generated clients: names beside ids, the API root,
one shape for validation errors, error details that say what to do, forms that post what they
show, and a schema that describes each operation and every error it answers."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

import liveclass_booking
from liveclass_booking import exceptions, services

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Monday


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def schema() -> dict[str, Any]:
    response = APIClient().get(reverse("schema"), {"format": "json"})
    assert response.status_code == 200
    return dict(json.loads(response.content))


class TestNames:
    def test_items_name_teacher_student_and_course(
        self, session: Any, student: Any, teacher: Any, course: Any
    ) -> None:
        student.first_name, student.last_name = "Lena", "Vogel"
        student.save()
        services.book_group_session(student=student, session=session)
        booking = client_for(teacher).get(url("booking-list")).json()["results"][0]
        assert booking["student_name"] == "Lena Vogel"
        assert booking["teacher_name"] == "teacher"  # no full name: the username
        assert booking["course_name"] == str(course)
        listed = client_for(student).get(url("session-list")).json()["results"][0]
        assert (listed["teacher_name"], listed["course_name"]) == ("teacher", str(course))

    def test_the_resolver_hook_decides_the_name(self, session: Any, student: Any) -> None:
        services.book_group_session(student=student, session=session)
        with override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.TitledNames"):
            booking = client_for(student).get(url("booking-list")).json()["results"][0]
        assert (booking["student_name"], booking["teacher_name"]) == ("Dr. STUDENT", "Dr. TEACHER")


class TestRoot:
    def test_the_mount_point_links_every_collection(self, student: Any) -> None:
        response = client_for(student).get(url("api-root"))
        assert response.status_code == 200
        body = response.json()
        assert body["bookings"].endswith(url("booking-list"))
        assert body["sessions"].endswith(url("session-list"))
        assert body["calendar/tokens"].endswith(url("calendar-token-list"))

    def test_ids_with_a_suffix_stay_404(self, student: Any) -> None:
        response = client_for(student).get(url("booking-list") + "1.json")
        assert (response.status_code, response.json()["code"]) == (404, "not_found")


class TestValidationShape:
    def test_a_service_error_names_its_field_like_a_serializer(
        self, teacher: Any, course: Any
    ) -> None:
        body = {
            "course": course.pk,
            "title": "Past",
            "start_at_utc": "2026-12-01T10:00:00Z",
            "end_at_utc": "2026-12-01T11:00:00Z",
            "capacity": 3,
        }
        response = client_for(teacher).post(url("session-list"), body, format="json")
        data = response.json()
        assert response.status_code == 400, data
        assert set(data) == {"code", "detail", "errors"}
        assert data["code"] == "invalid"
        assert data["errors"] == {"start_at_utc": [data["detail"]]}

    def test_a_serializer_error_has_the_same_shape(self, student: Any) -> None:
        response = client_for(student).post(
            url("booking-list"), {"booking_type": "group_session"}, format="json"
        )
        data = response.json()
        assert response.status_code == 400
        assert set(data) == {"code", "detail", "errors"}
        assert "session" in data["errors"]


class TestErrorDetails:
    @pytest.mark.parametrize("route", ["booking-list", "session-list"])
    def test_a_plus_decoded_as_a_space_is_named(self, student: Any, route: str) -> None:
        # ?start_after=2027-01-04T17:00:00+01:00 unencoded: the "+" arrives as a space.
        response = client_for(student).get(url(route) + "?start_after=2027-01-04T17:00:00+01:00")
        data = response.json()
        assert response.status_code == 400, data
        assert "%2B" in data["errors"]["start_after"][0]
        assert "space" in data["detail"]

    def test_the_slot_query_names_it_too(self, student: Any, teacher: Any) -> None:
        query = f"?teacher={teacher.pk}&start=2027-01-06T00:00:00+01:00"
        query += "&end=2027-01-07T00:00:00Z&duration=60"
        data = client_for(student).get(url("slot-list") + query).json()
        assert "%2B" in data["errors"]["start"][0]

    def test_the_cancel_window_gives_the_time_left_to_the_minute(
        self, make_session: Any, student: Any
    ) -> None:
        # 23 h 36 min before the start of a 24-hour window: rounding would say "24 h".
        session = make_session(start_at_utc=NOW + timedelta(hours=23, minutes=36, seconds=30))
        booking = services.book_group_session(student=student, session=session)
        response = client_for(student).post(url("booking-cancel", booking.pk), {}, format="json")
        data = response.json()
        assert data["code"] == "cancel_window_closed"
        assert "this starts in 23 h 36 min" in data["detail"]


class TestForms:
    @pytest.mark.parametrize(
        ("route", "who", "optional"),
        [
            ("booking-list", "student", {"seats_reserved", "session", "teacher", "course"}),
            ("policy-list", "teacher", {"teacher", "min_notice_hours", "cancel_window_hours"}),
            ("session-list", "teacher", {"teacher", "meeting_provider"}),
            ("availability-list", "teacher", {"teacher", "valid_from", "valid_until"}),
        ],
    )
    def test_the_raw_form_shows_no_null_for_an_optional_field(
        self, request: Any, route: str, who: str, optional: set[str]
    ) -> None:
        # Each of these refuses null: shown with its default, or left out.
        user = request.getfixturevalue(who)
        page = client_for(user).get(url(route), HTTP_ACCEPT="text/html").content.decode()
        form = re.search(r'<textarea[^>]*name="_content"[^>]*>(.*?)</textarea>', page, re.S)
        assert form is not None
        shown = json.loads(form.group(1).replace("&quot;", '"'))
        assert shown, page
        for name in optional & set(shown):
            assert shown[name] is not None, (route, name, shown)

    def test_the_policy_form_posts_as_shown(self, teacher: Any) -> None:
        client = client_for(teacher)
        page = client.get(url("policy-list"), HTTP_ACCEPT="text/html").content.decode()
        form = re.search(r'<textarea[^>]*name="_content"[^>]*>(.*?)</textarea>', page, re.S)
        assert form is not None
        shown = json.loads(form.group(1).replace("&quot;", '"'))
        response = client.post(url("policy-list"), shown, format="json")
        assert response.status_code == 201, response.json()


class TestSchema:
    def test_each_operation_has_its_own_summary_and_description(
        self, schema: dict[str, Any]
    ) -> None:
        seen: dict[str, str] = {}
        for path, operations in schema["paths"].items():
            if not path.startswith("/api/booking/"):
                continue
            for method, operation in operations.items():
                where = f"{method.upper()} {path}"
                assert operation.get("summary"), where
                assert operation.get("description"), where
                seen[where] = operation["summary"]
        # No two operations share a summary (a viewset's docstring would repeat).
        assert len(set(seen.values())) == len(seen)

    def test_no_internal_document_is_mentioned(self, schema: dict[str, Any]) -> None:
        text = json.dumps(schema)
        assert "SPEC" not in text
        assert "DESIGN" not in text
        assert "§" not in text

    def test_every_status_an_operation_answers_is_declared(self, schema: dict[str, Any]) -> None:
        for path, operations in schema["paths"].items():
            if not path.startswith("/api/booking/"):
                continue
            for method, operation in operations.items():
                statuses = set(operation["responses"])
                assert "429" in statuses, (method, path)
                if operation.get("security") != [] and not path.endswith(".ics"):
                    assert {"401", "403"} <= statuses, (method, path)
                if "requestBody" in operation:
                    assert {"413", "415"} <= statuses, (method, path)

    def test_undeclared_statuses_are_not_answered(self, student: Any) -> None:
        client = client_for(student)
        wrong_type = client.post(url("booking-list"), "x", content_type="text/plain")
        assert (wrong_type.status_code, wrong_type.json()["code"]) == (
            415,
            "unsupported_media_type",
        )
        not_json = client.get(url("booking-list"), HTTP_ACCEPT="text/csv")
        assert (not_json.status_code, not_json.json()["code"]) == (406, "not_acceptable")

    def test_every_key_an_error_body_carries_is_declared(self, schema: dict[str, Any]) -> None:
        declared = set(schema["components"]["schemas"]["Error"]["properties"])
        errors = {
            name
            for name, value in vars(exceptions).items()
            if isinstance(value, type) and issubclass(value, exceptions.BookingError)
        }
        carried: set[str] = set()
        package = Path(liveclass_booking.__file__).parent
        for source in package.rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in errors:
                    carried |= {k.arg for k in node.keywords if k.arg is not None}
                    if any(k.arg is None for k in node.keywords):  # **report.as_dict()
                        carried |= {"counts", "occurrences", "skipped_times"}
        carried.discard("field")  # answered as ``errors`` (see the validation shape above)
        assert carried, "the scan found no error keys"
        assert carried <= declared, carried - declared
