"""Serializers: shapes of requests and responses. Rules live in the services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from rest_framework import serializers

from ..choices import BookingStatus, BookingType, SessionStatus, WaitlistStatus
from ..models import (
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from ..policies import get_policy_resolver
from .fields import AwareDateTimeField, LocalTimeField
from .schema import named_choice_field

MEETING_FIELDS = ("meeting_link", "meeting_id", "meeting_passcode")


def _user_field(**kwargs: Any) -> serializers.PrimaryKeyRelatedField[Any]:
    return serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), **kwargs
    )


def _course_field(**kwargs: Any) -> serializers.PrimaryKeyRelatedField[Any]:
    return serializers.PrimaryKeyRelatedField(
        queryset=get_course_model()._default_manager.all(), **kwargs
    )


class SessionSerializer(serializers.ModelSerializer[Any]):
    course: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    status = named_choice_field(SessionStatus, "SessionStatusEnum", read_only=True)
    start_at_utc = AwareDateTimeField()
    end_at_utc = AwareDateTimeField()
    seats_available = serializers.IntegerField(read_only=True)
    created_at = AwareDateTimeField(read_only=True)
    updated_at = AwareDateTimeField(read_only=True)

    class Meta:
        model = get_session_model()
        fields = (
            "id",
            "course",
            "teacher",
            "title",
            "description",
            "start_at_utc",
            "end_at_utc",
            "timezone_snapshot",
            "meeting_provider",
            *MEETING_FIELDS,
            "capacity",
            "seats_taken",
            "seats_available",
            "status",
            "created_at",
            "updated_at",
        )
        read_only_fields: tuple[str, ...] = (
            "teacher",
            "timezone_snapshot",
            "seats_taken",
            "status",
        )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        user = self.context["request"].user
        # Meeting details go to those who manage the session (its teacher, staff); students
        # get them on their booking.
        if not get_policy_resolver().can_manage(user, instance):
            for name in MEETING_FIELDS:
                data.pop(name, None)
        return data


class SessionCreateSerializer(SessionSerializer):
    course = _course_field()
    teacher = _user_field(required=False)

    class Meta(SessionSerializer.Meta):
        read_only_fields = ("timezone_snapshot", "seats_taken", "status")


class SessionUpdateSerializer(SessionSerializer):
    class Meta(SessionSerializer.Meta):
        read_only_fields = ("teacher", "timezone_snapshot", "seats_taken", "status")


class BookingSerializer(serializers.ModelSerializer[Any]):
    start_at_utc = AwareDateTimeField(read_only=True)
    end_at_utc = AwareDateTimeField(read_only=True)
    decision_at = AwareDateTimeField(read_only=True, allow_null=True)
    cancelled_at = AwareDateTimeField(read_only=True, allow_null=True)
    created_at = AwareDateTimeField(read_only=True)
    updated_at = AwareDateTimeField(read_only=True)
    meeting_link = serializers.SerializerMethodField()
    status = named_choice_field(BookingStatus, "BookingStatusEnum", read_only=True)

    class Meta:
        model = get_booking_model()
        fields = (
            "id",
            "booking_type",
            "course",
            "teacher",
            "student_user",
            "session",
            "start_at_utc",
            "end_at_utc",
            "status",
            "seats_reserved",
            "decision_at",
            "decided_by",
            "cancelled_by",
            "cancelled_at",
            "cancel_reason",
            "student_note",
            "teacher_note",
            "rescheduled_from",
            "meeting_link",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_meeting_link(self, obj: Any) -> str:
        session = obj.session if obj.session_id else None
        return session.meeting_link if session is not None and obj.is_active else ""


class BookingCreateSerializer(serializers.Serializer[Any]):
    booking_type = serializers.ChoiceField(choices=BookingType.choices)
    session = serializers.PrimaryKeyRelatedField(
        queryset=get_session_model().objects.select_related("course", "teacher"),
        required=False,
    )
    seats_reserved = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    teacher = _user_field(required=False)
    course = _course_field(required=False)
    start_at_utc = AwareDateTimeField(required=False)
    end_at_utc = AwareDateTimeField(required=False)
    student_note = serializers.CharField(allow_blank=True, default="", max_length=5000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["booking_type"] == BookingType.GROUP_SESSION:
            needed = ["session"]
        else:
            needed = ["teacher", "course", "start_at_utc", "end_at_utc"]
        missing = {name: ["This field is required."] for name in needed if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(allow_blank=True, default="", max_length=5000)


class ApproveSerializer(serializers.Serializer[Any]):
    teacher_note = serializers.CharField(allow_blank=True, default="", max_length=5000)


class RescheduleSerializer(serializers.Serializer[Any]):
    start_at_utc = AwareDateTimeField(required=False)
    end_at_utc = AwareDateTimeField(required=False)
    session = serializers.PrimaryKeyRelatedField(
        queryset=get_session_model().objects.select_related("course", "teacher"),
        required=False,
    )
    reason = serializers.CharField(allow_blank=True, default="", max_length=5000)


class PolicySerializer(serializers.ModelSerializer[TeacherBookingPolicy]):
    teacher = _user_field(required=False)
    course = _course_field(required=False, allow_null=True)

    class Meta:
        model = TeacherBookingPolicy
        fields = (
            "id",
            "teacher",
            "course",
            "requires_approval_for_one_on_one",
            "requires_approval_for_group",
            "min_notice_hours",
            "cancel_window_hours",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "max_bookings_per_day",
        )
        # Uniqueness and the other model rules are checked by full_clean() in the view, which
        # knows the teacher the row belongs to.
        validators: list[Any] = []


class AvailabilitySerializer(serializers.ModelSerializer[TeacherAvailability]):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.TimeField: LocalTimeField,
    }
    teacher = _user_field(required=False)
    course = _course_field(required=False, allow_null=True)

    class Meta:
        model = TeacherAvailability
        fields = (
            "id",
            "teacher",
            "weekday",
            "start_time",
            "end_time",
            "timezone",
            "course",
            "valid_from",
            "valid_until",
        )


class SlotQuerySerializer(serializers.Serializer[Any]):
    teacher = _user_field()
    course = _course_field(required=False, allow_null=True)
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    duration = serializers.IntegerField(min_value=5, max_value=24 * 60, help_text="minutes")
    step = serializers.IntegerField(
        min_value=5, max_value=24 * 60, required=False, help_text="minutes"
    )


class SlotSerializer(serializers.Serializer[Any]):
    """One free one-on-one start time."""

    start_at_utc = AwareDateTimeField(read_only=True)
    end_at_utc = AwareDateTimeField(read_only=True)


class WaitlistEntrySerializer(serializers.ModelSerializer[SessionWaitlist]):
    """A place in a session's waitlist. ``status`` reads ``expired`` as soon as an offer's
    time is up; ``position`` is the place in line while waiting (1 = next), else null."""

    status = named_choice_field(
        WaitlistStatus, "WaitlistStatusEnum", source="current_status", read_only=True
    )
    position = serializers.IntegerField(read_only=True, allow_null=True, min_value=1)
    created_at = AwareDateTimeField(read_only=True)
    offered_at = AwareDateTimeField(read_only=True, allow_null=True)
    offer_expires_at = AwareDateTimeField(read_only=True, allow_null=True)
    accepted_at = AwareDateTimeField(read_only=True, allow_null=True)
    expired_at = AwareDateTimeField(read_only=True, allow_null=True)
    left_at = AwareDateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = SessionWaitlist
        fields = (
            "id",
            "session",
            "student_user",
            "status",
            "position",
            "created_at",
            "offered_at",
            "offer_expires_at",
            "accepted_at",
            "expired_at",
            "left_at",
            "booking",
        )
        read_only_fields = fields


class WaitlistJoinSerializer(serializers.Serializer[Any]):
    session = serializers.PrimaryKeyRelatedField(
        queryset=get_session_model().objects.select_related("course", "teacher")
    )


class WaitlistAcceptSerializer(serializers.Serializer[Any]):
    student_note = serializers.CharField(allow_blank=True, default="", max_length=5000)
