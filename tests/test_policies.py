"""The policy resolver (docs/policies.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from model_bakery import baker

from liveclass_booking.models import TeacherBookingPolicy, get_session_model
from liveclass_booking.policies import DefaultPolicyResolver, get_policy_resolver

pytestmark = pytest.mark.django_db


@pytest.fixture
def resolver() -> DefaultPolicyResolver:
    return get_policy_resolver()


class TestGetPolicy:
    def test_without_rows_the_default_policy_applies(
        self, resolver: Any, teacher: Any, course: Any
    ) -> None:
        policy = resolver.get_policy(teacher, course)
        assert policy.pk is None
        assert policy.requires_approval_for_one_on_one is True
        assert policy.requires_approval_for_group is False
        assert (policy.min_notice_hours, policy.cancel_window_hours) == (24, 24)
        assert policy.max_bookings_per_day is None

    @override_settings(LIVECLASS_BOOKING_DEFAULT_POLICY={"min_notice_hours": 2})
    def test_the_default_policy_setting_is_honoured(
        self, resolver: Any, teacher: Any, course: Any
    ) -> None:
        assert resolver.get_policy(teacher, course).min_notice_hours == 2

    @override_settings(
        LIVECLASS_BOOKING_DEFAULT_POLICY={"min_notice_hours": 3, "buffer_after_minutes": 5}
    )
    def test_new_policy_rows_start_from_the_default_policy_setting(self, teacher: Any) -> None:
        row = TeacherBookingPolicy.objects.create(teacher=teacher)
        assert (row.min_notice_hours, row.buffer_after_minutes) == (3, 5)
        assert row.cancel_window_hours == 24

    def test_teacher_default_row_beats_the_setting(
        self, resolver: Any, teacher: Any, course: Any
    ) -> None:
        row = TeacherBookingPolicy.objects.create(teacher=teacher, min_notice_hours=6)
        assert resolver.get_policy(teacher, course) == row

    def test_course_row_beats_the_teacher_default(
        self, resolver: Any, teacher: Any, course: Any, course_model: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, min_notice_hours=6)
        row = TeacherBookingPolicy.objects.create(
            teacher=teacher, course=course, min_notice_hours=1
        )
        other_course = baker.make(course_model)
        assert resolver.get_policy(teacher, course) == row
        assert resolver.get_policy(teacher, other_course).min_notice_hours == 6

    def test_other_teachers_rows_are_ignored(
        self, resolver: Any, teacher: Any, student: Any, course: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=student, course=course, min_notice_hours=1)
        assert resolver.get_policy(teacher, course).pk is None

    def test_one_query(
        self, resolver: Any, teacher: Any, course: Any, django_assert_num_queries: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher)
        with django_assert_num_queries(1):
            resolver.get_policy(teacher, course)


class TestPermissionsAndZones:
    def test_everybody_may_book_by_default(self, resolver: Any, student: Any, course: Any) -> None:
        assert resolver.can_book(student, course) is True

    def test_staff_and_permitted_users_may_teach(
        self, resolver: Any, student: Any, staff: Any, course: Any, user_model: Any
    ) -> None:
        assert resolver.can_teach(staff, course) is True
        assert resolver.can_teach(student, course) is False
        opts = get_session_model()._meta
        student.user_permissions.add(
            Permission.objects.get(
                content_type__app_label=opts.app_label, codename=f"add_{opts.model_name}"
            )
        )
        student = user_model.objects.get(pk=student.pk)  # drop the permission cache
        assert resolver.can_teach(student, course) is True

    def test_user_timezone_falls_back_to_time_zone_setting(
        self, resolver: Any, student: Any
    ) -> None:
        student.timezone = "Asia/Kolkata"
        assert resolver.get_user_timezone(student) == "Asia/Kolkata"
        student.timezone = "Nowhere/Special"
        with override_settings(TIME_ZONE="Europe/Berlin"):
            assert resolver.get_user_timezone(student) == "Europe/Berlin"

    def test_the_configured_resolver_is_used(self) -> None:
        with override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.NobodyBooks"):
            resolver = get_policy_resolver()
        assert type(resolver).__name__ == "NobodyBooks"
        assert isinstance(resolver, DefaultPolicyResolver)
