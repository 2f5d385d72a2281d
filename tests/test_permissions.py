"""Object permissions: the role rule, widened and narrowed by a host's authentication backend
and policy resolver, in the services, the API and the admin alike."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.choices import BookingStatus as S
from liveclass_booking.exceptions import NotAllowed
from liveclass_booking.models import TeacherAvailability, TeacherBookingPolicy

pytestmark = pytest.mark.django_db

WITH_ASSISTANTS = override_settings(
    AUTHENTICATION_BACKENDS=[
        "tests.resolvers.CourseAssistantBackend",
        "django.contrib.auth.backends.ModelBackend",
    ],
    LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.AssistantsSeeEverything",
)


@pytest.fixture
def pending(session: Any, student: Any, teacher: Any) -> Any:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
    booking = services.book_group_session(student=student, session=session)
    assert booking.status == S.PENDING
    return booking


@pytest.fixture
def assistant(user_model: Any) -> Any:
    return user_model.objects.create_user(username="assistant1", password="pw")


@pytest.fixture
def suspended_teacher(user_model: Any, teacher: Any) -> Any:
    """The session's teacher, renamed so the test backend denies them."""
    teacher.username = "suspended-teacher"
    teacher.save()
    return teacher


def approve_over_api(user: Any, booking: Any) -> Any:
    client = APIClient()
    client.force_authenticate(user)
    return client.post(
        reverse("liveclass_booking:booking-approve", args=[booking.pk]), {}, format="json"
    )


class TestRoleRule:
    def test_teacher_and_staff_manage_others_do_not(
        self, pending: Any, teacher: Any, staff: Any, student: Any, assistant: Any
    ) -> None:
        with pytest.raises(NotAllowed):
            services.approve_booking(pending, actor=assistant)
        with pytest.raises(NotAllowed):
            services.approve_booking(pending, actor=student)
        assert services.approve_booking(pending, actor=teacher).status == S.CONFIRMED

    def test_a_global_change_permission_does_not_reach_objects(
        self, pending: Any, assistant: Any, booking_model: Any, user_model: Any
    ) -> None:
        from django.contrib.auth.models import Permission

        opts = booking_model._meta
        assistant.user_permissions.add(
            Permission.objects.get(
                content_type__app_label=opts.app_label, codename=f"change_{opts.model_name}"
            )
        )
        assistant = user_model.objects.get(pk=assistant.pk)
        with pytest.raises(NotAllowed):
            services.approve_booking(pending, actor=assistant)


class TestBackendWidens:
    def test_assistant_granted_by_backend_approves_through_the_service(
        self, pending: Any, assistant: Any
    ) -> None:
        with WITH_ASSISTANTS:
            booking = services.approve_booking(pending, actor=assistant)
        assert booking.status == S.CONFIRMED
        assert booking.decided_by == assistant

    def test_and_through_the_api_when_the_resolver_shows_them_the_booking(
        self, pending: Any, assistant: Any
    ) -> None:
        assert approve_over_api(assistant, pending).status_code == 404  # invisible by default
        with WITH_ASSISTANTS:
            response = approve_over_api(assistant, pending)
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == S.CONFIRMED

    def test_assistant_sees_meeting_details_of_sessions_they_manage(
        self, session: Any, assistant: Any
    ) -> None:
        session.meeting_link = "https://meet.example.com/room"
        session.save()
        client = APIClient()
        client.force_authenticate(assistant)
        url = reverse("liveclass_booking:session-detail", args=[session.pk])
        assert "meeting_link" not in client.get(url).json()
        with WITH_ASSISTANTS:
            assert client.get(url).json()["meeting_link"] == "https://meet.example.com/room"


class TestBackendNarrows:
    def test_denied_teacher_cannot_approve_their_own_booking(
        self, pending: Any, suspended_teacher: Any
    ) -> None:
        with WITH_ASSISTANTS:
            response = approve_over_api(suspended_teacher, pending)
            with pytest.raises(NotAllowed):
                services.cancel_session(pending.session, actor=suspended_teacher)
        assert response.status_code == 403
        assert response.json()["code"] == "not_allowed"
        pending.refresh_from_db()
        assert pending.status == S.PENDING

    def test_denied_teacher_cannot_manage_their_availability(self, suspended_teacher: Any) -> None:
        client = APIClient()
        client.force_authenticate(suspended_teacher)
        body = {"weekday": 0, "start_time": "09:00", "end_time": "12:00", "timezone": "UTC"}
        url = reverse("liveclass_booking:availability-list")
        with WITH_ASSISTANTS:
            refused = client.post(url, body, format="json")
        assert refused.status_code == 403
        assert refused.json()["code"] == "not_allowed"
        assert not TeacherAvailability.objects.exists()
        assert client.post(url, body, format="json").status_code == 201

    def test_superusers_are_never_narrowed(self, pending: Any, staff: Any) -> None:
        staff.username = "suspended-admin"
        staff.save()
        with WITH_ASSISTANTS:
            assert services.approve_booking(pending, actor=staff).status == S.CONFIRMED


class TestTeacherRows:
    def test_teacher_cannot_move_their_window_to_another_teacher(
        self, teacher: Any, user_model: Any
    ) -> None:
        from tests.conftest import grant_teaching

        other = grant_teaching(user_model.objects.create_user(username="t2", password="pw"))
        window = TeacherAvailability.objects.create(
            teacher=teacher, weekday=1, start_time=time(9), end_time=time(10), timezone="UTC"
        )
        client = APIClient()
        client.force_authenticate(teacher)
        url = reverse("liveclass_booking:availability-detail", args=[window.pk])
        other_pk = other.pk if isinstance(other.pk, int) else str(other.pk)
        response = client.patch(url, {"teacher": other_pk}, format="json")
        assert response.status_code == 403
        window.refresh_from_db()
        assert window.teacher_id == teacher.pk

    def test_admin_refuses_a_window_for_someone_who_cannot_teach(
        self, client: Any, staff: Any, student: Any
    ) -> None:
        client.force_login(staff)
        response = client.post(
            reverse("admin:liveclass_booking_teacheravailability_add"),
            {
                "teacher": student.pk,
                "weekday": 0,
                "start_time": "09:00",
                "end_time": "10:00",
                "timezone": "UTC",
            },
        )
        assert response.status_code == 200
        assert "may not teach this course" in response.content.decode()
        assert not TeacherAvailability.objects.exists()

    def test_staff_deletes_windows_in_the_admin_through_the_service(
        self, client: Any, staff: Any, teacher: Any
    ) -> None:
        window = TeacherAvailability.objects.create(
            teacher=teacher, weekday=1, start_time=time(9), end_time=time(10), timezone="UTC"
        )
        client.force_login(staff)
        response = client.post(
            reverse("admin:liveclass_booking_teacheravailability_delete", args=[window.pk]),
            {"post": "yes"},
        )
        assert response.status_code == 302
        assert not TeacherAvailability.objects.exists()
