"""Serializers: shapes of requests and responses. Rules live in the services."""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db import models
from django.urls import reverse
from rest_framework import serializers
from rest_framework.fields import empty

from ..calendar.ics import booking_title
from ..calendar.links import add_to_calendar
from ..calendar.sources import MAX_URL_LENGTH
from ..choices import (
    BookingStatus,
    BookingType,
    BusySourceKind,
    BusySyncStatus,
    Frequency,
    MeetingProvider,
    SeriesItemStatus,
    SeriesStatus,
    SeriesType,
    SessionStatus,
    WaitlistStatus,
)
from ..conf import MAX_CAPACITY, MAX_TEXT_LENGTH
from ..models import (
    BookingSeries,
    BookingSeriesItem,
    BusyPeriod,
    BusySource,
    CalendarFeedToken,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from ..policies import display_name, get_policy_resolver
from ..recurrence import Recurrence
from ..services.rules import NOT_A_TEACHER
from ..validators import validate_timezone
from .fields import (
    AwareDateTimeField,
    BoundedDateField,
    LocalTimeField,
    OptionalURLField,
    StrictPrimaryKeyRelatedField,
)
from .schema import extend_schema_field, named_choice_field

MEETING_FIELDS = ("meeting_link", "meeting_id", "meeting_passcode")

_M = TypeVar("_M", bound=models.Model)


class FormInitial:
    """The browsable API's raw form posts what it shows: an optional field shows its default
    when it has one and is left out when it has none (the server then applies its own), rather
    than showing a ``null`` the field would refuse."""

    fields: Any

    def get_initial(self) -> Any:
        initial = super().get_initial()  # type: ignore[misc]
        for name, field in self.fields.items():
            if field.read_only or field.required or name not in initial:
                continue
            default = field.default
            if default is not empty and not callable(default):
                initial[name] = default
            elif initial[name] is None:
                del initial[name]
        return initial


class Serializer(FormInitial, serializers.Serializer[Any]):
    """A request or answer shape that is not a model's."""


class ModelSerializer(FormInitial, serializers.ModelSerializer[_M]):
    """What the model serializers here share: a field taking an id takes it strictly, a date
    only inside the supported range, and the browsable API's form shows what it posts."""

    serializer_related_field = StrictPrimaryKeyRelatedField
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateField: BoundedDateField,
    }


def _user_field(**kwargs: Any) -> StrictPrimaryKeyRelatedField:
    return StrictPrimaryKeyRelatedField(
        queryset=get_user_model().objects.filter(is_active=True), **kwargs
    )


def _teacher_field(**kwargs: Any) -> StrictPrimaryKeyRelatedField:
    """The teacher of a lesson, series or slot listing: an unknown or inactive user gets the
    same answer as a user who does not teach the course (the services check ``can_teach``)."""
    messages = {"does_not_exist": NOT_A_TEACHER}
    return _user_field(error_messages=messages, **kwargs)


def _course_field(**kwargs: Any) -> StrictPrimaryKeyRelatedField:
    return StrictPrimaryKeyRelatedField(
        queryset=get_course_model()._default_manager.all(), **kwargs
    )


def _session_field(**kwargs: Any) -> StrictPrimaryKeyRelatedField:
    return StrictPrimaryKeyRelatedField(
        queryset=get_session_model().objects.select_related("course", "teacher"), **kwargs
    )


def _name_of(relation: str) -> serializers.SerializerMethodField:
    """A read-only text naming the user of ``relation`` (the policy resolver's
    ``get_display_name``); the view's queryset selects the user row with the item."""

    return serializers.SerializerMethodField(
        method_name=f"get_{relation}_display_name",
        help_text=f"How the {relation.removesuffix('_user')} is named to people (the host's "
        "display name for the user).",
    )


def _course_name() -> serializers.SerializerMethodField:
    return serializers.SerializerMethodField(
        method_name="get_course_display_name",
        help_text="How the course is named to people (its text form in the host's course model).",
    )


class NamesMixin:
    """``teacher_name``, ``student_name`` and ``course_name`` beside the ids: what a client
    shows a person without another request per item."""

    def get_teacher_display_name(self, obj: Any) -> str:
        return display_name(obj.teacher)

    def get_student_user_display_name(self, obj: Any) -> str:
        return display_name(obj.student_user)

    def get_course_display_name(self, obj: Any) -> str:
        return str(obj.course) if obj.course_id is not None else ""


class CalendarLinksSerializer(Serializer):
    """Where to put this entry in a calendar: Google's and Outlook's "new event" pages,
    filled in, and this API's ``.ics`` file of it."""

    google = serializers.URLField(read_only=True)
    outlook = serializers.URLField(read_only=True)
    ics = serializers.URLField(read_only=True)


def api_url(request: Any, name: str, **kwargs: Any) -> str:
    """The absolute address of this API's route ``name`` (in the namespace it is mounted
    under)."""
    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match is not None and match.namespace else "liveclass_booking"
    return str(request.build_absolute_uri(reverse(f"{namespace}:{name}", kwargs=kwargs)))


def calendar_links(
    request: Any, summary: str, start: Any, end: Any, link: str, ics: tuple[str, Any]
) -> dict[str, str]:
    """The add-to-calendar links of an entry and ``ics``: (route name, pk) of its file."""
    route, pk = ics
    return {**add_to_calendar(summary, start, end, link), "ics": api_url(request, route, pk=pk)}


class SessionSerializer(NamesMixin, ModelSerializer[Any]):
    course: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    course_name = _course_name()
    teacher_name = _name_of("teacher")
    status = named_choice_field(SessionStatus, "SessionStatusEnum", read_only=True)
    start_at_utc = AwareDateTimeField()
    end_at_utc = AwareDateTimeField()
    seats_available = serializers.IntegerField(read_only=True)
    created_at = AwareDateTimeField(read_only=True)
    updated_at = AwareDateTimeField(read_only=True)
    calendar_links = serializers.SerializerMethodField(
        help_text="Add-to-calendar links (the meeting link only for those who manage the "
        "session); the ics file is for its teacher and booked students."
    )
    # Not in the answer for those who do not manage the session (see to_representation): the
    # OpenAPI schema lists them as optional there.
    fields_left_out_for_some: tuple[str, ...] = MEETING_FIELDS

    class Meta:
        model = get_session_model()
        fields = (
            "id",
            "course",
            "course_name",
            "teacher",
            "teacher_name",
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
            "calendar_links",
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
        manages = get_policy_resolver().can_manage(user, instance)
        if not manages:
            for name in MEETING_FIELDS:
                data.pop(name, None)
        if "calendar_links" in data:
            data["calendar_links"] = calendar_links(
                self.context["request"],
                instance.title,
                instance.start_at_utc,
                instance.end_at_utc,
                instance.meeting_link if manages else "",
                ("session-ics", instance.pk),
            )
        return data

    @extend_schema_field(CalendarLinksSerializer)
    def get_calendar_links(self, obj: Any) -> Any:
        return None  # filled in by to_representation, which knows who reads


class SessionCreateSerializer(SessionSerializer):
    course = _course_field()
    teacher = _user_field(required=False)

    class Meta(SessionSerializer.Meta):
        read_only_fields = ("timezone_snapshot", "seats_taken", "status")


class SessionUpdateSerializer(SessionSerializer):
    class Meta(SessionSerializer.Meta):
        read_only_fields = ("teacher", "timezone_snapshot", "seats_taken", "status")


class BookingSerializer(NamesMixin, ModelSerializer[Any]):
    course_name = _course_name()
    teacher_name = _name_of("teacher")
    student_name = _name_of("student_user")
    start_at_utc = AwareDateTimeField(read_only=True)
    end_at_utc = AwareDateTimeField(read_only=True)
    decision_at = AwareDateTimeField(read_only=True, allow_null=True)
    cancelled_at = AwareDateTimeField(read_only=True, allow_null=True)
    created_at = AwareDateTimeField(read_only=True)
    updated_at = AwareDateTimeField(read_only=True)
    meeting_link = serializers.SerializerMethodField(
        help_text="The meeting link while the booking is active: its session's, or a lesson's own."
    )
    meeting_id = serializers.SerializerMethodField(help_text="As meeting_link.")
    meeting_passcode = serializers.SerializerMethodField(
        help_text="Only for the booking's own student and teacher, while it is active."
    )
    status = named_choice_field(
        BookingStatus, "BookingStatusEnum", source="current_status", read_only=True
    )
    approval_expires_at = AwareDateTimeField(read_only=True, allow_null=True)
    calendar_links = serializers.SerializerMethodField(help_text="Add-to-calendar links.")

    class Meta:
        model = get_booking_model()
        fields = (
            "id",
            "booking_type",
            "course",
            "course_name",
            "teacher",
            "teacher_name",
            "student_user",
            "student_name",
            "session",
            "start_at_utc",
            "end_at_utc",
            "status",
            "seats_reserved",
            "approval_expires_at",
            "decision_at",
            "decided_by",
            "cancelled_by",
            "cancelled_at",
            "cancel_reason",
            "student_note",
            "teacher_note",
            "rescheduled_from",
            "meeting_link",
            "meeting_id",
            "meeting_passcode",
            "calendar_links",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_meeting_link(self, obj: Any) -> str:
        return str(obj.meeting.meeting_link) if obj.is_active else ""

    def get_meeting_id(self, obj: Any) -> str:
        return str(obj.meeting.meeting_id) if obj.is_active else ""

    def get_meeting_passcode(self, obj: Any) -> str:
        own = obj.is_party(self.context["request"].user)
        return str(obj.meeting.meeting_passcode) if obj.is_active and own else ""

    @extend_schema_field(CalendarLinksSerializer)
    def get_calendar_links(self, obj: Any) -> Any:
        return calendar_links(
            self.context["request"],
            booking_title(obj),
            obj.start_at_utc,
            obj.end_at_utc,
            self.get_meeting_link(obj),
            ("booking-ics", obj.pk),
        )


class BookingCreateSerializer(Serializer):
    booking_type = serializers.ChoiceField(choices=BookingType.choices)
    session = _session_field(required=False)
    seats_reserved = serializers.IntegerField(min_value=1, max_value=MAX_CAPACITY, default=1)
    teacher = _teacher_field(required=False)
    course = _course_field(required=False)
    start_at_utc = AwareDateTimeField(required=False)
    end_at_utc = AwareDateTimeField(required=False)
    student_note = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["booking_type"] == BookingType.GROUP_SESSION:
            needed = ["session"]
        else:
            needed = ["teacher", "course", "start_at_utc", "end_at_utc"]
        missing = {name: ["This field is required."] for name in needed if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


class ReasonSerializer(Serializer):
    reason = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)


class LessonMeetingSerializer(Serializer):
    """A one-on-one lesson's meeting details; only the fields given change."""

    meeting_link = serializers.URLField(allow_blank=True, required=False, max_length=500)
    meeting_id = serializers.CharField(allow_blank=True, required=False, max_length=100)
    meeting_passcode = serializers.CharField(allow_blank=True, required=False, max_length=100)


class ApproveSerializer(LessonMeetingSerializer):
    """A decision to confirm; a one-on-one lesson may get its meeting details with it."""

    teacher_note = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)


class RescheduleSerializer(Serializer):
    start_at_utc = AwareDateTimeField(required=False)
    end_at_utc = AwareDateTimeField(required=False)
    session = _session_field(required=False)
    reason = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)


class PolicySerializer(ModelSerializer[TeacherBookingPolicy]):
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
            "approval_timeout_hours",
        )
        # Uniqueness and the other model rules are checked by full_clean() in the view, which
        # knows the teacher the row belongs to.
        validators: list[Any] = []


class AvailabilitySerializer(ModelSerializer[TeacherAvailability]):
    serializer_field_mapping = {
        **ModelSerializer.serializer_field_mapping,
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


class SlotQuerySerializer(Serializer):
    teacher = _teacher_field()
    course = _course_field(required=False, allow_null=True)
    start = AwareDateTimeField()
    end = AwareDateTimeField()
    duration = serializers.IntegerField(min_value=5, max_value=24 * 60, help_text="minutes")
    step = serializers.IntegerField(
        min_value=5, max_value=24 * 60, required=False, help_text="minutes"
    )


class SlotSerializer(Serializer):
    """One free one-on-one start time."""

    start_at_utc = AwareDateTimeField(read_only=True)
    end_at_utc = AwareDateTimeField(read_only=True)


class WaitlistEntrySerializer(NamesMixin, ModelSerializer[SessionWaitlist]):
    """A place in a session's waitlist. ``status`` reads ``expired`` as soon as an offer's
    time is up; ``position`` is the place in line while waiting (1 = next), else null."""

    student_name = _name_of("student_user")

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
            "student_name",
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


class WaitlistJoinSerializer(Serializer):
    session = _session_field()


class WaitlistAcceptSerializer(Serializer):
    student_note = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)


# Recurring series ------------------------------------------------------------------------


class RecurrenceSerializer(Serializer):
    """The rule of a series or of a run of sessions, in local wall time (see
    :mod:`liveclass_booking.recurrence`)."""

    frequency = named_choice_field(Frequency, "FrequencyEnum")
    interval = serializers.IntegerField(min_value=1, max_value=52, default=1)
    days_of_week = serializers.CharField(
        allow_blank=True,
        default="",
        max_length=20,
        help_text="Comma-separated MO,TU,WE,TH,FR,SA,SU (weekly and biweekly).",
    )
    start_date = BoundedDateField(help_text="Local date of the first possible occurrence.")
    start_time = LocalTimeField(help_text="Local wall time, kept across DST changes.")
    timezone = serializers.CharField(max_length=64, validators=[validate_timezone])
    duration_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60)
    occurrence_count = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None
    )
    until_date = BoundedDateField(required=False, allow_null=True, default=None)
    rrule = serializers.CharField(
        allow_blank=True,
        default="",
        max_length=500,
        help_text="RFC 5545 RRULE for the custom frequency, e.g. FREQ=MONTHLY;BYDAY=2TU.",
    )

    def rule(self) -> Recurrence:
        data = self.validated_data
        return Recurrence(**{name: data[name] for name in Recurrence.RULE_FIELDS})


class SeriesCreateSerializer(RecurrenceSerializer):
    type = named_choice_field(SeriesType, "SeriesTypeEnum")
    teacher = _teacher_field()
    course = _course_field()
    accept_partial = serializers.BooleanField(
        default=False,
        help_text="False (default): all or nothing, a 409 series_conflict with the report if "
        "any occurrence cannot be booked. True: book what can be booked.",
    )
    student_note = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)
    default_meeting_link = OptionalURLField(allow_blank=True, default="", max_length=500)
    default_meeting_id = serializers.CharField(allow_blank=True, default="", max_length=100)
    default_meeting_passcode = serializers.CharField(allow_blank=True, default="", max_length=100)


class SeriesExtendSerializer(Serializer):
    occurrence_count = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    until_date = BoundedDateField(required=False, allow_null=True)
    accept_partial = serializers.BooleanField(default=False)


class SeriesItemSerializer(ModelSerializer[BookingSeriesItem]):
    """One occurrence. ``status`` is where it stands in the series; a ``booked`` occurrence's
    own state is ``booking_status`` (pending, confirmed, cancelled, attended, …)."""

    status = named_choice_field(SeriesItemStatus, "SeriesItemStatusEnum", read_only=True)
    start_at_utc = AwareDateTimeField(read_only=True)
    end_at_utc = AwareDateTimeField(read_only=True)
    booking_status = serializers.SerializerMethodField()

    class Meta:
        model = BookingSeriesItem
        fields = (
            "occurrence_index",
            "start_at_utc",
            "end_at_utc",
            "status",
            "code",
            "booking",
            "booking_status",
            "session",
            "waitlist_entry",
        )
        read_only_fields = fields

    def get_booking_status(self, obj: Any) -> str | None:
        return str(obj.booking.status) if obj.booking_id else None


class SeriesSerializer(NamesMixin, ModelSerializer[BookingSeries]):
    """A series. ``status`` reads ``completed`` once the last occurrence has ended."""

    course_name = _course_name()
    teacher_name = _name_of("teacher")
    student_name = _name_of("student_user")

    status = named_choice_field(
        SeriesStatus, "SeriesStatusEnum", source="current_status", read_only=True
    )
    type = named_choice_field(SeriesType, "SeriesTypeEnum", read_only=True)
    frequency = named_choice_field(Frequency, "FrequencyEnum", read_only=True)
    start_time = LocalTimeField(read_only=True)
    default_meeting_link = OptionalURLField(read_only=True)
    created_at = AwareDateTimeField(read_only=True)
    updated_at = AwareDateTimeField(read_only=True)

    class Meta:
        model = BookingSeries
        fields: tuple[str, ...] = (
            "id",
            "type",
            "status",
            "student_user",
            "student_name",
            "teacher",
            "teacher_name",
            "course",
            "course_name",
            *Recurrence.RULE_FIELDS,
            "default_meeting_link",
            "default_meeting_id",
            "default_meeting_passcode",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SeriesDetailSerializer(SeriesSerializer):
    """A series with all its occurrences."""

    occurrences = SeriesItemSerializer(source="items", many=True, read_only=True)

    class Meta(SeriesSerializer.Meta):
        fields = (*SeriesSerializer.Meta.fields, "occurrences")
        read_only_fields = fields


class OccurrenceReportSerializer(Serializer):
    """What creating, extending or resuming did with one occurrence."""

    occurrence_index = serializers.IntegerField()
    start_at_utc = AwareDateTimeField()
    end_at_utc = AwareDateTimeField()
    status = serializers.ChoiceField(
        choices=[
            "booked",
            "pending",
            "waitlisted",
            "awaiting_session",
            "skipped",
            "paused",
            "cancelled",
        ],
        help_text="booked (confirmed), pending (awaiting approval), waitlisted (the session "
        "is full), awaiting_session (no session at that time yet), skipped (see code).",
    )
    code = serializers.CharField(allow_blank=True, help_text="Why a skipped one was skipped.")
    detail = serializers.CharField(allow_blank=True)
    booking = serializers.IntegerField(allow_null=True)
    session = serializers.IntegerField(allow_null=True)
    waitlist_entry = serializers.IntegerField(allow_null=True)


class SkippedTimeSerializer(Serializer):
    """A local time the rule names that the zone skips (a DST gap): not an occurrence."""

    date = serializers.DateField()
    time = LocalTimeField()
    timezone = serializers.CharField()
    code = serializers.CharField()


class SeriesReportSerializer(Serializer):
    counts = serializers.DictField(child=serializers.IntegerField())
    occurrences = OccurrenceReportSerializer(many=True)
    skipped_times = SkippedTimeSerializer(many=True)


class SeriesCreatedSerializer(SeriesDetailSerializer):
    """The new (extended, resumed) series and the report of what was done."""

    report = SeriesReportSerializer(read_only=True)

    class Meta(SeriesDetailSerializer.Meta):
        fields = (*SeriesDetailSerializer.Meta.fields, "report")
        read_only_fields = fields


class SessionRunSerializer(RecurrenceSerializer):
    """A run of recurring group sessions: the rule plus what every session gets."""

    course = _course_field()
    teacher = _user_field(required=False)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, default="", max_length=MAX_TEXT_LENGTH)
    capacity = serializers.IntegerField(min_value=1, max_value=MAX_CAPACITY)
    meeting_provider = serializers.ChoiceField(choices=MeetingProvider.choices, required=False)
    meeting_link = OptionalURLField(allow_blank=True, required=False, max_length=500)
    meeting_id = serializers.CharField(allow_blank=True, required=False, max_length=100)
    meeting_passcode = serializers.CharField(allow_blank=True, required=False, max_length=100)


class SessionRunCreatedSerializer(Serializer):
    sessions = SessionSerializer(many=True)
    skipped_times = SkippedTimeSerializer(many=True)


class CalendarTokenSerializer(ModelSerializer[CalendarFeedToken]):
    """A feed token as listed: its name and the first characters of its secret (the secret
    itself is shown only when the token is created)."""

    created_at = AwareDateTimeField(read_only=True)
    last_used_at = AwareDateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = CalendarFeedToken
        fields: tuple[str, ...] = ("id", "name", "hint", "created_at", "last_used_at")
        read_only_fields: tuple[str, ...] = fields


class CalendarTokenCreateSerializer(Serializer):
    name = serializers.CharField(
        allow_blank=True, default="", max_length=100, help_text="A label, e.g. the calendar app."
    )


class CalendarTokenCreatedSerializer(CalendarTokenSerializer):
    """A new token: the only answer that carries its secret and the feed's address."""

    token = serializers.CharField(source="secret", read_only=True)
    feed_url = serializers.SerializerMethodField()
    webcal_url = serializers.SerializerMethodField()

    class Meta(CalendarTokenSerializer.Meta):
        fields = (*CalendarTokenSerializer.Meta.fields, "token", "feed_url", "webcal_url")
        read_only_fields = fields

    def get_feed_url(self, obj: Any) -> str:
        return api_url(self.context["request"], "calendar-feed", token=obj.secret)

    def get_webcal_url(self, obj: Any) -> str:
        return "webcal://" + self.get_feed_url(obj).split("://", 1)[1]


# Busy calendars ---------------------------------------------------------------------------


class BusySourceSerializer(ModelSerializer[BusySource]):
    """A teacher's calendar whose busy times block their one-on-one time. Its address and
    password are write-only: answers carry ``url_hint`` (a feed's scheme and host only) and
    ``has_password``. ``status`` and ``last_error`` tell how the last sync went."""

    teacher = _user_field(
        required=False,
        help_text="Whose calendar this is: the requesting user when left out (only staff may "
        "name another teacher). Fixed once created.",
    )
    name = serializers.CharField(
        allow_blank=True, default="", max_length=100, help_text="A label, e.g. Work calendar."
    )
    kind = named_choice_field(
        BusySourceKind,
        "BusySourceKindEnum",
        help_text="ics: an iCalendar feed URL (webcal:// too); caldav: a CalDAV calendar's "
        "address with username and password.",
    )
    url = serializers.CharField(
        write_only=True,
        required=False,
        max_length=MAX_URL_LENGTH,
        help_text="The calendar's address. Never answered back; left out, the stored one stays.",
    )
    username = serializers.CharField(
        allow_blank=True, default="", max_length=200, help_text="CalDAV only."
    )
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=500,
        style={"input_type": "password"},
        help_text="CalDAV only. Never answered back; left out, the stored one stays; empty "
        "removes it.",
    )
    has_password = serializers.SerializerMethodField(help_text="Whether a password is stored.")
    enabled = serializers.BooleanField(
        default=True, help_text="A disabled calendar is not synced and blocks nothing."
    )
    status = named_choice_field(BusySyncStatus, "BusySyncStatusEnum", read_only=True)
    last_attempt_at = AwareDateTimeField(read_only=True, allow_null=True)
    last_synced_at = AwareDateTimeField(
        read_only=True, allow_null=True, help_text="The last successful sync."
    )
    next_sync_at = AwareDateTimeField(read_only=True)
    created_at = AwareDateTimeField(read_only=True)
    updated_at = AwareDateTimeField(read_only=True)

    class Meta:
        model = BusySource
        fields: tuple[str, ...] = (
            "id",
            "teacher",
            "name",
            "kind",
            "url",
            "url_hint",
            "username",
            "password",
            "has_password",
            "enabled",
            "status",
            "last_error_code",
            "last_error",
            "last_attempt_at",
            "last_synced_at",
            "next_sync_at",
            "period_count",
            "created_at",
            "updated_at",
        )
        read_only_fields: tuple[str, ...] = (
            "url_hint",
            "last_error_code",
            "last_error",
            "period_count",
        )

    def get_has_password(self, obj: Any) -> bool:
        return bool(obj.password_encrypted)


class BusySourceCreateSerializer(BusySourceSerializer):
    """A new busy calendar: its address is required."""

    url = serializers.CharField(
        write_only=True,
        max_length=MAX_URL_LENGTH,
        help_text="The calendar's address (http, https or webcal). Never answered back.",
    )


class BusySyncResultSerializer(Serializer):
    """What one sync did: ``synced`` (busy periods replaced), ``not_modified`` (the calendar
    did not change), ``failed`` (earlier busy periods kept; ``error_code`` and ``error`` say
    why) or ``skipped`` (the calendar was disabled or removed meanwhile)."""

    outcome = named_choice_field(
        ["synced", "not_modified", "failed", "skipped"], "BusySyncOutcomeEnum"
    )
    periods = serializers.IntegerField(help_text="Busy periods the calendar now has.")
    error_code = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)


class BusySourceSyncedSerializer(BusySourceSerializer):
    """The calendar after an on-demand sync, with what the sync did."""

    result = BusySyncResultSerializer(read_only=True)

    class Meta(BusySourceSerializer.Meta):
        fields = (*BusySourceSerializer.Meta.fields, "result")


class BusyPeriodSerializer(ModelSerializer[BusyPeriod]):
    """A time the teacher is busy according to one of their calendars (times only)."""

    start_at_utc = AwareDateTimeField(read_only=True)
    end_at_utc = AwareDateTimeField(read_only=True)

    class Meta:
        model = BusyPeriod
        fields = ("source", "start_at_utc", "end_at_utc")
        read_only_fields = fields
