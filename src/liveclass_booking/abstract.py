"""Abstract bases for every model (docs/models.md).

A host that swaps the session or booking model subclasses the abstract base here. Constraint
names carry ``%(app_label)s_%(class)s`` so that a subclass in another app gets its own names.
Every database constraint has a readable ``violation_error_message``: ``full_clean()`` (and so
the admin) reports the same rule the database enforces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

from . import conf
from .choices import (
    ACTIVE_BOOKING_STATUSES,
    BookingStatus,
    BookingType,
    BusySourceKind,
    BusySyncStatus,
    DeliveryStatus,
    ExceptionKind,
    Frequency,
    LegacyKind,
    MeetingProvider,
    NotificationKind,
    SeriesItemStatus,
    SeriesStatus,
    SeriesType,
    SessionStatus,
    WaitlistStatus,
    Weekday,
)
from .validators import validate_days_of_week, validate_timezone

USER_MODEL = settings.AUTH_USER_MODEL
COURSE_MODEL = conf.booking_settings.COURSE_MODEL
SESSION_MODEL = conf.booking_settings.SESSION_MODEL
BOOKING_MODEL = conf.booking_settings.BOOKING_MODEL


#: A session's waitlist queue order (first in line first): when the student joined, then the
#: entry's key. The model's ordering, the services' offers, the queue positions, the API and
#: the admin all use this one definition.
WAITLIST_QUEUE_ORDER = ("created_at", "pk")

#: The waitlist services behind ``SessionWaitlist.offer_seat``, ``accept_offer`` and
#: ``expire_offer``, installed by the app's ``ready()``.
WAITLIST_OPERATIONS: dict[str, Callable[..., Any]] = {}


def _name(suffix: str) -> str:
    return f"%(app_label)s_%(class)s_{suffix}"


def _choices_constraint(field: str, choices: type[models.Choices]) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": choices.values}),
        name=_name(f"{field}_valid"),
        violation_error_message=_("%(field)s must be one of: %(values)s.")
        % {"field": field, "values": ", ".join(str(v) for v in choices.values)},
    )


def timezone_field(**kwargs: Any) -> models.CharField[str, str]:
    """A CharField holding an IANA time-zone name."""
    kwargs.setdefault("max_length", 64)
    kwargs.setdefault("default", "UTC")
    kwargs.setdefault("help_text", _("IANA time-zone name, for example Europe/Berlin."))
    return models.CharField(validators=[validate_timezone], **kwargs)


def bounded(key: str) -> list[Any]:
    """Validators keeping a policy number inside ``conf.POLICY_BOUNDS[key]``."""
    low, high = conf.POLICY_BOUNDS[key]
    return [MinValueValidator(low), MaxValueValidator(high)]


def _bounds_constraint(
    key: str, nullable: bool = False, short: str | None = None
) -> models.CheckConstraint:
    """``short`` replaces ``key`` in the constraint's name where the full name would pass the
    64 characters MySQL and MariaDB allow."""
    low, high = conf.POLICY_BOUNDS[key]
    condition = Q(**{f"{key}__gte": low, f"{key}__lte": high})
    if nullable:
        condition |= Q(**{f"{key}__isnull": True})
    return models.CheckConstraint(
        condition=condition,
        name=_name(f"{short or key}_range"),
        violation_error_message=_("%(field)s must be between %(low)d and %(high)d.")
        % {"field": key, "low": low, "high": high},
    )


def text_limit() -> list[Any]:
    """The validator bounding a free-text field (descriptions, notes, reasons)."""
    return [MaxLengthValidator(conf.MAX_TEXT_LENGTH)]


@deconstructible(path="liveclass_booking.abstract.PolicyDefault")
class PolicyDefault:
    """Field default read from ``LIVECLASS_BOOKING_DEFAULT_POLICY`` when a policy row is made."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self) -> Any:
        return conf.booking_settings.DEFAULT_POLICY[self.key]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyDefault) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


class AbstractCourse(models.Model):
    """The minimal course the library ships so it works stand-alone.

    Hosts normally point ``LIVECLASS_BOOKING_COURSE_MODEL`` at their own course model instead;
    it needs no base class.
    """

    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ("title",)
        verbose_name = _("course")
        verbose_name_plural = _("courses")

    def __str__(self) -> str:
        return self.title


class AbstractLiveClassSession(models.Model):
    """A scheduled live class with seats."""

    Status = SessionStatus
    MeetingProvider = MeetingProvider
    # For type checkers: concrete subclasses get Django's default manager.
    objects: ClassVar[models.Manager[Any]]

    course = models.ForeignKey(
        COURSE_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_sessions",
        verbose_name=_("course"),
    )
    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_sessions_taught",
        verbose_name=_("teacher"),
    )
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True, validators=text_limit())
    start_at_utc = models.DateTimeField(_("starts at (UTC)"), db_index=True)
    end_at_utc = models.DateTimeField(_("ends at (UTC)"))
    timezone_snapshot = timezone_field(
        verbose_name=_("time zone snapshot"),
        help_text=_("The teacher's IANA time zone when the session was created."),
    )
    meeting_provider = models.CharField(
        _("meeting provider"),
        max_length=20,
        choices=MeetingProvider.choices,
        default=MeetingProvider.CUSTOM,
    )
    meeting_link = models.URLField(_("meeting link"), max_length=500, blank=True)
    meeting_id = models.CharField(_("meeting id"), max_length=100, blank=True)
    meeting_passcode = models.CharField(_("meeting passcode"), max_length=100, blank=True)
    capacity = models.PositiveIntegerField(
        _("capacity"), validators=[MaxValueValidator(conf.MAX_CAPACITY)]
    )
    seats_taken = models.PositiveIntegerField(
        _("seats taken"),
        default=0,
        editable=False,
        help_text=_("Seats of pending and confirmed bookings plus seats held by open offers."),
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=SessionStatus.choices,
        default=SessionStatus.SCHEDULED,
    )
    calendar_sequence = models.PositiveIntegerField(
        _("calendar sequence"),
        default=0,
        editable=False,
        help_text=_(
            "The iCalendar SEQUENCE of this session: the services add one on every change of "
            "its time, status or meeting details."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ("start_at_utc", "pk")
        verbose_name = _("live class session")
        verbose_name_plural = _("live class sessions")
        indexes = [
            models.Index(fields=["teacher", "start_at_utc"]),
            models.Index(fields=["course", "start_at_utc"]),
            models.Index(fields=["status", "start_at_utc"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(capacity__gte=0),
                name=_name("capacity_gte_0"),
                violation_error_message=_("Capacity cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(seats_taken__gte=0, seats_taken__lte=F("capacity")),
                name=_name("seats_taken_range"),
                violation_error_message=_(
                    "Seats taken must be between 0 and the capacity; "
                    "capacity cannot go below the seats already taken."
                ),
            ),
            models.CheckConstraint(
                condition=Q(end_at_utc__gt=F("start_at_utc")),
                name=_name("end_after_start"),
                violation_error_message=_("A session must end after it starts."),
            ),
            _choices_constraint("status", SessionStatus),
            _choices_constraint("meeting_provider", MeetingProvider),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.start_at_utc:%Y-%m-%d %H:%M} UTC)"

    def clean(self) -> None:
        # seats_taken is not a form field, so forms skip the database constraint that ties it
        # to capacity; say the same thing here, on the field the user can change.
        super().clean()
        if self.capacity is not None and self.capacity < self.seats_taken:
            raise ValidationError(
                {
                    "capacity": _("Capacity cannot go below the %(taken)d seats already taken.")
                    % {"taken": self.seats_taken}
                },
                code="capacity_below_seats_taken",
            )

    # Legacy aliases for hosts migrating from older code (docs/models.md).
    @property
    def total_seats(self) -> int:
        """Legacy name of :attr:`capacity`."""
        return self.capacity

    @total_seats.setter
    def total_seats(self, value: int) -> None:
        self.capacity = value

    @property
    def scheduled_start(self) -> Any:
        """Legacy name of :attr:`start_at_utc`."""
        return self.start_at_utc

    @scheduled_start.setter
    def scheduled_start(self, value: Any) -> None:
        self.start_at_utc = value

    @property
    def meeting_password(self) -> str:
        """Legacy name of :attr:`meeting_passcode`."""
        return self.meeting_passcode

    @meeting_password.setter
    def meeting_password(self, value: str) -> None:
        self.meeting_passcode = value

    @property
    def seats_available(self) -> int:
        """Seats that can still be booked."""
        return max(self.capacity - self.seats_taken, 0)


class AbstractLiveClassBooking(models.Model):
    """One student's booking: a seat in a group session or a one-on-one lesson."""

    Status = BookingStatus
    Type = BookingType
    objects: ClassVar[models.Manager[Any]]

    booking_type = models.CharField(_("booking type"), max_length=20, choices=BookingType.choices)
    course = models.ForeignKey(
        COURSE_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_bookings",
        verbose_name=_("course"),
    )
    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_bookings_taught",
        verbose_name=_("teacher"),
    )
    student_user = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_bookings",
        verbose_name=_("student"),
    )
    start_at_utc = models.DateTimeField(_("starts at (UTC)"))
    end_at_utc = models.DateTimeField(_("ends at (UTC)"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=BookingStatus.choices,
        default=BookingStatus.PENDING,
    )
    session = models.ForeignKey(
        SESSION_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="bookings",
        verbose_name=_("session"),
        help_text=_("The group session; empty for one-on-one lessons."),
    )
    seats_reserved = models.PositiveIntegerField(
        _("seats reserved"), default=1, validators=[MinValueValidator(1)]
    )
    blocked_from_utc = models.DateTimeField(
        _("blocks teacher from (UTC)"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "One-on-one: start of the teacher's time this booking blocks, buffer included."
        ),
    )
    blocked_until_utc = models.DateTimeField(
        _("blocks teacher until (UTC)"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("One-on-one: end of the teacher's time this booking blocks, buffer included."),
    )
    decision_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    cancelled_by = models.ForeignKey(
        USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by"),
    )
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.TextField(_("cancel reason"), blank=True, validators=text_limit())
    student_note = models.TextField(_("student note"), blank=True, validators=text_limit())
    teacher_note = models.TextField(_("teacher note"), blank=True, validators=text_limit())
    approval_expires_at = models.DateTimeField(
        _("approval expires at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "A pending booking not decided by then expires by itself (the policy's approval "
            "timeout, never after the start)."
        ),
    )
    # BOOKING_MODEL rather than "self": the swapped-out default must point at the same model
    # as the one swapped in, or makemigrations sees a change in swapped projects.
    rescheduled_from = models.OneToOneField(
        BOOKING_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rescheduled_to",
        verbose_name=_("rescheduled from"),
        help_text=_("The booking this one replaced."),
    )
    meeting_link = models.URLField(
        _("meeting link"),
        max_length=500,
        blank=True,
        help_text=_("For a one-on-one lesson; a group booking uses its session's."),
    )
    meeting_id = models.CharField(_("meeting id"), max_length=100, blank=True)
    meeting_passcode = models.CharField(_("meeting passcode"), max_length=100, blank=True)
    calendar_sequence = models.PositiveIntegerField(
        _("calendar sequence"),
        default=0,
        editable=False,
        help_text=_(
            "The iCalendar SEQUENCE of this booking: the services add one on every change of "
            "its time, status or meeting details; a booking that replaced another goes on "
            "from its number."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ("start_at_utc", "pk")
        verbose_name = _("live class booking")
        verbose_name_plural = _("live class bookings")
        indexes = [
            models.Index(fields=["booking_type", "status"]),
            models.Index(fields=["student_user", "start_at_utc"]),
            models.Index(fields=["teacher", "start_at_utc"]),
            models.Index(fields=["session", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(seats_reserved__gte=1),
                name=_name("seats_reserved_gte_1"),
                violation_error_message=_("A booking reserves at least one seat."),
            ),
            models.CheckConstraint(
                condition=Q(end_at_utc__gt=F("start_at_utc")),
                name=_name("end_after_start"),
                violation_error_message=_("A booking must end after it starts."),
            ),
            models.CheckConstraint(
                condition=(
                    Q(booking_type=BookingType.GROUP_SESSION, session__isnull=False)
                    | Q(booking_type=BookingType.ONE_ON_ONE, session__isnull=True, seats_reserved=1)
                ),
                name=_name("type_matches_session"),
                violation_error_message=_(
                    "A group booking needs a session; a one-on-one booking has no session "
                    "and reserves exactly one seat."
                ),
            ),
            models.CheckConstraint(
                condition=Q(booking_type=BookingType.GROUP_SESSION)
                | Q(
                    blocked_from_utc__isnull=False,
                    blocked_until_utc__isnull=False,
                    blocked_from_utc__lte=F("start_at_utc"),
                    blocked_until_utc__gte=F("end_at_utc"),
                ),
                name=_name("blocked_range_valid"),
                violation_error_message=_(
                    "A one-on-one booking blocks the teacher's time from its start (or earlier, "
                    "for a buffer) to its end (or later)."
                ),
            ),
            models.UniqueConstraint(
                fields=["session", "student_user"],
                condition=Q(status__in=ACTIVE_BOOKING_STATUSES, session__isnull=False),
                name=_name("one_active_per_student"),
                violation_error_message=_(
                    "This student already holds an active booking for this session."
                ),
            ),
            _choices_constraint("status", BookingStatus),
            _choices_constraint("booking_type", BookingType),
        ]

    def __str__(self) -> str:
        return f"{self.get_booking_type_display()} {self.start_at_utc:%Y-%m-%d %H:%M} UTC"

    def is_party(self, user: Any) -> bool:
        """Whether ``user`` is this booking's student or teacher (who see its passcode)."""
        pk = getattr(user, "pk", None)
        return pk is not None and pk in (self.student_user_id, self.teacher_id)

    @property
    def meeting(self) -> Any:
        """What holds this booking's meeting details (``meeting_link``, ``meeting_id``,
        ``meeting_passcode``): its session for a group booking, the booking itself for a
        one-on-one lesson."""
        return self.session if self.session_id else self

    @property
    def is_active(self) -> bool:
        """Whether the booking holds a seat or the teacher's time (pending or confirmed)."""
        return self.status in ACTIVE_BOOKING_STATUSES and not self.approval_is_overdue

    @property
    def approval_is_overdue(self) -> bool:
        """Whether this is a pending booking whose approval timeout has passed."""
        return bool(
            self.status == BookingStatus.PENDING
            and self.approval_expires_at is not None
            and self.approval_expires_at <= timezone.now()
        )

    @property
    def current_status(self) -> str:
        """The status as readers should see it: a pending booking past its approval timeout
        is ``expired`` even before anything has run to record that."""
        return str(BookingStatus.EXPIRED) if self.approval_is_overdue else str(self.status)


class AbstractTeacherBookingPolicy(models.Model):
    """Booking rules of one teacher, for one course or (course empty) as their default."""

    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_booking_policies",
        verbose_name=_("teacher"),
    )
    course = models.ForeignKey(
        COURSE_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="liveclass_booking_policies",
        verbose_name=_("course"),
        help_text=_("Empty: the teacher's default for every course."),
    )
    requires_approval_for_one_on_one = models.BooleanField(
        _("one-on-one needs approval"),
        default=PolicyDefault("requires_approval_for_one_on_one"),
    )
    requires_approval_for_group = models.BooleanField(
        _("group booking needs approval"),
        default=PolicyDefault("requires_approval_for_group"),
    )
    min_notice_hours = models.PositiveIntegerField(
        _("minimum notice (hours)"),
        default=PolicyDefault("min_notice_hours"),
        validators=bounded("min_notice_hours"),
    )
    cancel_window_hours = models.PositiveIntegerField(
        _("cancel window (hours)"),
        default=PolicyDefault("cancel_window_hours"),
        validators=bounded("cancel_window_hours"),
        help_text=_("Students may cancel until this many hours before the start."),
    )
    buffer_before_minutes = models.PositiveIntegerField(
        _("buffer before (minutes)"),
        default=PolicyDefault("buffer_before_minutes"),
        validators=bounded("buffer_before_minutes"),
    )
    buffer_after_minutes = models.PositiveIntegerField(
        _("buffer after (minutes)"),
        default=PolicyDefault("buffer_after_minutes"),
        validators=bounded("buffer_after_minutes"),
    )
    max_bookings_per_day = models.PositiveIntegerField(
        _("maximum bookings per day"),
        null=True,
        blank=True,
        validators=bounded("max_bookings_per_day"),
        help_text=_("Counted in the teacher's local day. Empty: no limit."),
    )
    approval_timeout_hours = models.PositiveIntegerField(
        _("approval timeout (hours)"),
        default=PolicyDefault("approval_timeout_hours"),
        validators=bounded("approval_timeout_hours"),
        help_text=_(
            "A request not approved or declined within this many hours expires by itself "
            "(at the latest when the booking would start)."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ("teacher", "course")
        verbose_name = _("teacher booking policy")
        verbose_name_plural = _("teacher booking policies")
        constraints = [
            models.UniqueConstraint(
                fields=["teacher", "course"],
                name=_name("teacher_course_uniq"),
                violation_error_message=_("This teacher already has a policy for this course."),
            ),
            # A plain unique constraint treats NULLs as distinct, so the default row needs its
            # own partial constraint.
            models.UniqueConstraint(
                fields=["teacher"],
                condition=Q(course__isnull=True),
                name=_name("one_default"),
                violation_error_message=_("This teacher already has a default policy."),
            ),
            models.CheckConstraint(
                condition=Q(max_bookings_per_day__isnull=True) | Q(max_bookings_per_day__gte=1),
                name=_name("daily_limit_gte_1"),
                violation_error_message=_(
                    "The daily limit must be at least 1, or empty for no limit."
                ),
            ),
            _bounds_constraint("min_notice_hours"),
            _bounds_constraint("cancel_window_hours"),
            _bounds_constraint("buffer_before_minutes", short="buffer_before"),
            _bounds_constraint("buffer_after_minutes", short="buffer_after"),
            _bounds_constraint("max_bookings_per_day", nullable=True, short="max_per_day"),
            _bounds_constraint("approval_timeout_hours", short="approval_timeout"),
        ]

    def __str__(self) -> str:
        scope = self.course if self.course_id else _("default")
        return f"{self.teacher} — {scope}"


class AbstractBookingSeries(models.Model):
    """A recurring booking: a weekly lesson for a term, or enrolment in a recurring class."""

    Type = SeriesType
    Status = SeriesStatus
    Frequency = Frequency

    student_user = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_booking_series",
        verbose_name=_("student"),
    )
    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_booking_series_taught",
        verbose_name=_("teacher"),
    )
    course = models.ForeignKey(
        COURSE_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_booking_series",
        verbose_name=_("course"),
    )
    type = models.CharField(_("type"), max_length=20, choices=SeriesType.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=SeriesStatus.choices, default=SeriesStatus.ACTIVE
    )
    frequency = models.CharField(
        _("frequency"), max_length=20, choices=Frequency.choices, default=Frequency.WEEKLY
    )
    interval = models.PositiveSmallIntegerField(
        _("interval"), default=1, validators=[MinValueValidator(1)]
    )
    days_of_week = models.CharField(
        _("days of week"),
        max_length=20,
        blank=True,
        validators=[validate_days_of_week],
        help_text=_("Comma-separated RFC 5545 day codes: MO,TU,WE,TH,FR,SA,SU."),
    )
    occurrence_count = models.PositiveIntegerField(
        _("number of occurrences"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    until_date = models.DateField(_("until (local date)"), null=True, blank=True)
    start_date = models.DateField(_("start date (local)"))
    start_time = models.TimeField(_("start time (local wall time)"))
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"), validators=[MinValueValidator(1)]
    )
    timezone = timezone_field(verbose_name=_("time zone"))
    rrule = models.TextField(
        _("RRULE"), blank=True, help_text=_("RFC 5545 RRULE text, for the custom frequency.")
    )
    default_meeting_link = models.URLField(_("default meeting link"), max_length=500, blank=True)
    default_meeting_id = models.CharField(_("default meeting id"), max_length=100, blank=True)
    default_meeting_passcode = models.CharField(
        _("default meeting passcode"), max_length=100, blank=True
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ("-created_at", "pk")
        verbose_name = _("booking series")
        verbose_name_plural = _("booking series")
        indexes = [models.Index(fields=["student_user", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(occurrence_count__isnull=False, until_date__isnull=True)
                    | Q(occurrence_count__isnull=True, until_date__isnull=False)
                ),
                name=_name("count_xor_until"),
                violation_error_message=_(
                    "Give exactly one of the number of occurrences and the until date."
                ),
            ),
            models.CheckConstraint(
                condition=Q(occurrence_count__isnull=True) | Q(occurrence_count__gte=1),
                name=_name("count_gte_1"),
                violation_error_message=_("A series has at least one occurrence."),
            ),
            models.CheckConstraint(
                condition=Q(interval__gte=1),
                name=_name("interval_gte_1"),
                violation_error_message=_("The interval must be at least 1."),
            ),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=1),
                name=_name("duration_gte_1"),
                violation_error_message=_("The duration must be at least one minute."),
            ),
            models.CheckConstraint(
                condition=~Q(frequency=Frequency.CUSTOM, rrule=""),
                name=_name("custom_has_rrule"),
                violation_error_message=_("A custom frequency needs an RRULE."),
            ),
            _choices_constraint("type", SeriesType),
            _choices_constraint("status", SeriesStatus),
            _choices_constraint("frequency", Frequency),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.start_date} {self.start_time} {self.timezone}"

    @property
    def current_status(self) -> str:
        """The status as readers should see it: an active or paused series whose last
        occurrence has ended is ``completed``, even before a job or an action records it.
        Uses the ``last_end`` annotation when present."""
        if self.status not in (SeriesStatus.ACTIVE, SeriesStatus.PAUSED):
            return str(self.status)
        last_end = getattr(self, "last_end", None)
        if not hasattr(self, "last_end"):
            items = self.items  # type: ignore[attr-defined]
            last_end = items.aggregate(last=models.Max("end_at_utc"))["last"]
        if last_end is not None and last_end <= timezone.now():
            return str(SeriesStatus.COMPLETED)
        return str(self.status)


class AbstractBookingSeriesItem(models.Model):
    """One occurrence of a series: its planned time, where it stands and the booking made
    for it. Every occurrence has a row, booked or not, so the series keeps its history."""

    Status = SeriesItemStatus

    series = models.ForeignKey(
        "liveclass_booking.BookingSeries",
        on_delete=models.CASCADE,
        related_name="items",
        verbose_name=_("series"),
    )
    occurrence_index = models.PositiveIntegerField(
        _("occurrence"), validators=[MinValueValidator(1)]
    )
    start_at_utc = models.DateTimeField(_("starts at (UTC)"))
    end_at_utc = models.DateTimeField(_("ends at (UTC)"))
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=SeriesItemStatus.choices,
        default=SeriesItemStatus.BOOKED,
    )
    code = models.CharField(
        _("reason code"),
        max_length=40,
        blank=True,
        help_text=_("The error code that kept a skipped occurrence from being booked."),
    )
    booking = models.ForeignKey(
        BOOKING_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="series_items",
        verbose_name=_("booking"),
        help_text=_("The occurrence's current booking (a rescheduled one points at the new)."),
    )
    session = models.ForeignKey(
        SESSION_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="series_items",
        verbose_name=_("session"),
        help_text=_("For a group series: the session matched to this occurrence."),
    )
    waitlist_entry = models.ForeignKey(
        "liveclass_booking.SessionWaitlist",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="series_items",
        verbose_name=_("waitlist entry"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ("series", "occurrence_index")
        verbose_name = _("booking series item")
        verbose_name_plural = _("booking series items")
        indexes = [models.Index(fields=["status", "start_at_utc"])]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "occurrence_index"],
                name=_name("series_index_uniq"),
                violation_error_message=_("This series already has that occurrence."),
            ),
            models.CheckConstraint(
                condition=Q(occurrence_index__gte=1),
                name=_name("index_gte_1"),
                violation_error_message=_("Occurrences are numbered from 1."),
            ),
            models.CheckConstraint(
                condition=Q(end_at_utc__gt=F("start_at_utc")),
                name=_name("item_end_after_start"),
                violation_error_message=_("An occurrence must end after it starts."),
            ),
            models.CheckConstraint(
                condition=~Q(status=SeriesItemStatus.BOOKED) | Q(booking__isnull=False),
                name=_name("booked_item_has_booking"),
                violation_error_message=_("A booked occurrence needs its booking."),
            ),
            _choices_constraint("status", SeriesItemStatus),
        ]

    def __str__(self) -> str:
        return f"#{self.occurrence_index} of series {self.series_id}"


class AbstractSessionWaitlist(models.Model):
    """A student's place in the FIFO queue of a full group session."""

    Status = WaitlistStatus

    session = models.ForeignKey(
        SESSION_MODEL,
        on_delete=models.CASCADE,
        related_name="waitlist_entries",
        verbose_name=_("session"),
    )
    student_user = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_waitlist_entries",
        verbose_name=_("student"),
    )
    status = models.CharField(
        _("status"), max_length=20, choices=WaitlistStatus.choices, default=WaitlistStatus.WAITING
    )
    created_at = models.DateTimeField(
        _("joined at"),
        default=timezone.now,
        help_text=_("Queue order. Rejoining moves the entry to the back."),
    )
    offered_at = models.DateTimeField(_("offered at"), null=True, blank=True)
    offer_expires_at = models.DateTimeField(_("offer expires at"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)
    booking = models.OneToOneField(
        BOOKING_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="waitlist_entry",
        verbose_name=_("booking"),
        help_text=_("The booking made when the offer was accepted."),
    )

    class Meta:
        abstract = True
        ordering = ("session", *WAITLIST_QUEUE_ORDER)
        verbose_name = _("waitlist entry")
        verbose_name_plural = _("waitlist entries")
        indexes = [models.Index(fields=["session", "status", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "student_user"],
                name=_name("session_student_uniq"),
                violation_error_message=_("This student is already on this session's waitlist."),
            ),
            models.CheckConstraint(
                condition=~Q(status=WaitlistStatus.OFFERED)
                | Q(
                    offered_at__isnull=False,
                    offer_expires_at__isnull=False,
                    offer_expires_at__gt=F("offered_at"),
                ),
                name=_name("offer_has_expiry"),
                violation_error_message=_(
                    "An open offer needs an offer time and a later expiry time."
                ),
            ),
            _choices_constraint("status", WaitlistStatus),
        ]

    def __str__(self) -> str:
        return f"{self.student_user} — {self.get_status_display()}"

    @property
    def offer_is_open(self) -> bool:
        """Whether the entry holds a seat offer that has not run out yet."""
        return bool(
            self.status == WaitlistStatus.OFFERED
            and self.offer_expires_at is not None
            and self.offer_expires_at > timezone.now()
        )

    @property
    def current_status(self) -> str:
        """The status as readers should see it: an offer past its time is ``expired`` even
        before anything has run to record that."""
        if self.status == WaitlistStatus.OFFERED and not self.offer_is_open:
            return str(WaitlistStatus.EXPIRED)
        return str(self.status)

    # Thin entry points into the waitlist services, which the app installs in
    # WAITLIST_OPERATIONS when it is ready (the models never import the services).

    def offer_seat(self) -> bool:
        """Offer the session's free seats to its waitlist in join order (expiring offers past
        their time first); return whether this entry now holds an offer."""
        WAITLIST_OPERATIONS["offer_seats"](self.session)
        self.refresh_from_db()
        return self.offer_is_open

    def accept_offer(self, actor: Any = None, note: str = "") -> Any:
        """Turn this entry's offer into a booking and return it (``offer_expired`` once its
        time is up). See :func:`liveclass_booking.services.waitlist.accept_offer`."""
        return WAITLIST_OPERATIONS["accept_offer"](self, actor=actor, note=note)

    def expire_offer(self, actor: Any = None) -> bool:
        """Expire this entry's open offer now and pass the seat on; False if there was none."""
        return WAITLIST_OPERATIONS["expire_offer"](self, actor=actor) is not None


class AbstractTeacherAvailability(models.Model):
    """A weekly window in which a teacher takes one-on-one lessons, in the teacher's zone."""

    Weekday = Weekday

    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_availability",
        verbose_name=_("teacher"),
    )
    weekday = models.PositiveSmallIntegerField(
        _("weekday"), choices=Weekday.choices, validators=[MaxValueValidator(6)]
    )
    start_time = models.TimeField(_("start time (local)"))
    end_time = models.TimeField(_("end time (local)"))
    timezone = timezone_field(verbose_name=_("time zone"))
    course = models.ForeignKey(
        COURSE_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="liveclass_availability",
        verbose_name=_("course"),
        help_text=_("Empty: the window is open for every course."),
    )
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ("teacher", "weekday", "start_time")
        verbose_name = _("teacher availability")
        verbose_name_plural = _("teacher availability")
        indexes = [models.Index(fields=["teacher", "weekday"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6),
                name=_name("weekday_range"),
                violation_error_message=_("The weekday is 0 (Monday) to 6 (Sunday)."),
            ),
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")),
                name=_name("end_after_start"),
                violation_error_message=_(
                    "A window must end after it starts on the same day; split a window "
                    "that crosses midnight into two."
                ),
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=F("valid_from")),
                name=_name("valid_range"),
                violation_error_message=_("“Valid until” cannot be before “valid from”."),
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_weekday_display()} {self.start_time:%H:%M}–{self.end_time:%H:%M} "
            f"{self.timezone}"
        )


class AbstractAvailabilityException(models.Model):
    """A date-specific change to a teacher's weekly availability: time off or extra hours."""

    Kind = ExceptionKind

    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_availability_exceptions",
        verbose_name=_("teacher"),
    )
    date = models.DateField(_("date (local)"))
    kind = models.CharField(
        _("kind"), max_length=20, choices=ExceptionKind.choices, default=ExceptionKind.UNAVAILABLE
    )
    start_time = models.TimeField(
        _("start time (local)"), null=True, blank=True, help_text=_("Empty: the whole day.")
    )
    end_time = models.TimeField(_("end time (local)"), null=True, blank=True)
    timezone = timezone_field(verbose_name=_("time zone"))
    course = models.ForeignKey(
        COURSE_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="liveclass_availability_exceptions",
        verbose_name=_("course"),
        help_text=_("For extra hours: empty means open for every course."),
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ("teacher", "date", "start_time")
        verbose_name = _("availability exception")
        verbose_name_plural = _("availability exceptions")
        indexes = [models.Index(fields=["teacher", "date"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_time__isnull=True, end_time__isnull=True)
                | Q(
                    start_time__isnull=False,
                    end_time__isnull=False,
                    end_time__gt=F("start_time"),
                ),
                name=_name("times_valid"),
                violation_error_message=_(
                    "Give both times with the end after the start, or neither for the whole day."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(kind=ExceptionKind.AVAILABLE) | Q(start_time__isnull=False),
                name=_name("extra_has_times"),
                violation_error_message=_("Extra hours need a start and an end time."),
            ),
            _choices_constraint("kind", ExceptionKind),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date}"


class AbstractBookingEvent(models.Model):
    """One entry of the audit trail: a status change or decision on a booking."""

    booking = models.ForeignKey(
        BOOKING_MODEL,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("booking"),
    )
    actor = models.ForeignKey(
        USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
        help_text=_("Empty: the system."),
    )
    from_status = models.CharField(_("from status"), max_length=20, blank=True)
    to_status = models.CharField(_("to status"), max_length=20)
    reason = models.TextField(_("reason"), blank=True)
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        abstract = True
        ordering = ("at", "pk")
        verbose_name = _("booking event")
        verbose_name_plural = _("booking events")
        indexes = [models.Index(fields=["booking", "at"])]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status}"


class AbstractIdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` and the first response it produced (docs/api.md)."""

    user = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("user"),
    )
    scope = models.CharField(_("scope"), max_length=50, help_text=_("The endpoint, e.g. bookings."))
    key = models.CharField(_("key"), max_length=255)
    request_fingerprint = models.CharField(
        _("request fingerprint"), max_length=64, help_text=_("SHA-256 of the request body.")
    )
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.JSONField(
        _("response body"), null=True, blank=True, encoder=DjangoJSONEncoder
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        abstract = True
        ordering = ("-created_at", "pk")
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "scope", "key"],
                name=_name("user_scope_key_uniq"),
                violation_error_message=_("This key was already used."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class AbstractNotificationEvent(models.Model):
    """One outbox row: something people must hear about, written in the transaction of the
    change that caused it. ``data`` carries what changed; ``recipients`` who should hear it
    (user primary keys, as text). The dispatcher turns it into deliveries."""

    Kind = NotificationKind

    kind = models.CharField(_("kind"), max_length=40, choices=NotificationKind.choices)
    booking = models.ForeignKey(
        BOOKING_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("booking"),
    )
    session = models.ForeignKey(
        SESSION_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("session"),
    )
    waitlist_entry = models.ForeignKey(
        "liveclass_booking.SessionWaitlist",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("waitlist entry"),
    )
    series = models.ForeignKey(
        "liveclass_booking.BookingSeries",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("series"),
    )
    actor = models.ForeignKey(
        USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
        help_text=_("Who made the change; empty: the system."),
    )
    recipients = models.JSONField(_("recipients"), default=list, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True, encoder=DjangoJSONEncoder)
    key = models.CharField(
        _("key"),
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text=_("Set on events that may exist only once, such as one reminder."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    expanded_at = models.DateTimeField(
        _("deliveries made at"),
        null=True,
        blank=True,
        help_text=_("When the dispatcher made this event's deliveries; empty: not yet."),
    )

    class Meta:
        abstract = True
        ordering = ("created_at", "pk")
        verbose_name = _("notification event")
        verbose_name_plural = _("notification events")
        indexes = [models.Index(fields=["expanded_at", "created_at"])]
        constraints = [_choices_constraint("kind", NotificationKind)]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class AbstractNotificationDelivery(models.Model):
    """One (event, recipient, channel): claimed by one dispatcher at a time (a lease), sent at
    most once unless a dispatcher dies between sending and recording it."""

    Status = DeliveryStatus

    event = models.ForeignKey(
        "liveclass_booking.NotificationEvent",
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("event"),
    )
    recipient = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("recipient"),
    )
    channel = models.CharField(_("channel"), max_length=30, default="email")
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    claimed_until = models.DateTimeField(
        _("claimed until"),
        null=True,
        blank=True,
        help_text=_("A dispatcher holds this delivery until then (its lease)."),
    )
    claim_token = models.CharField(_("claim token"), max_length=40, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        abstract = True
        ordering = ("created_at", "pk")
        verbose_name = _("notification delivery")
        verbose_name_plural = _("notification deliveries")
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "recipient", "channel"],
                name=_name("event_recipient_uniq"),
                violation_error_message=_("This event already goes to this recipient."),
            ),
            _choices_constraint("status", DeliveryStatus),
        ]

    def __str__(self) -> str:
        return f"{self.event.kind} → {self.recipient_id} ({self.channel})"


class AbstractCalendarFeedToken(models.Model):
    """A secret that opens one user's calendar feed without a login. Only a SHA-256 of the
    secret is stored; the secret itself is shown once, when the token is created. A revoked
    token keeps its row (with ``revoked_at``) so the admin shows what existed."""

    user = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_booking_feed_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(
        _("name"), max_length=100, blank=True, help_text=_("A label, e.g. the calendar app.")
    )
    token_hash = models.CharField(
        _("token hash"), max_length=64, unique=True, help_text=_("SHA-256 of the secret.")
    )
    hint = models.CharField(
        _("hint"), max_length=8, help_text=_("The first characters of the secret.")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ("-created_at", "pk")
        verbose_name = _("calendar feed token")
        verbose_name_plural = _("calendar feed tokens")
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name or self.hint}… ({self.user_id})"


class AbstractLegacyImport(models.Model):
    """A row of a host's legacy tables that the legacy import has brought in: the import
    finds it here on every later run, so running it again changes nothing."""

    Kind = LegacyKind
    objects: ClassVar[models.Manager[Any]]

    source = models.CharField(
        _("source"), max_length=100, help_text=_("The adapter's name for its legacy tables.")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=LegacyKind.choices)
    legacy_key = models.CharField(
        _("legacy key"), max_length=200, help_text=_("The row's key in the legacy table.")
    )
    object_id = models.CharField(
        _("object id"),
        max_length=64,
        help_text=_("Primary key of the session or booking made from the row."),
    )
    imported_at = models.DateTimeField(_("imported at"), default=timezone.now)

    class Meta:
        abstract = True
        ordering = ("source", "kind", "pk")
        verbose_name = _("legacy import")
        verbose_name_plural = _("legacy imports")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "kind", "legacy_key"],
                name=_name("source_kind_key_uniq"),
                violation_error_message=_("This legacy row was already imported."),
            ),
            _choices_constraint("kind", LegacyKind),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.kind}:{self.legacy_key} → {self.object_id}"


class AbstractBusySource(models.Model):
    """A teacher's own calendar whose busy times block their one-on-one time: an iCalendar
    feed URL or a CalDAV calendar. The feed URL (which often carries a private token) and the
    CalDAV password are stored encrypted (docs/calendar.md); the API and the admin never show
    them. The sync keeps the last good busy periods whenever a fetch fails."""

    Kind = BusySourceKind
    Status = BusySyncStatus
    objects: ClassVar[models.Manager[Any]]

    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_booking_busy_sources",
        verbose_name=_("teacher"),
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=BusySourceKind.choices)
    url_hint = models.CharField(
        _("address"),
        max_length=200,
        help_text=_("The calendar's address without its secret parts."),
    )
    url_encrypted = models.TextField(_("encrypted address"))
    username = models.CharField(_("user name"), max_length=200, blank=True)
    password_encrypted = models.TextField(_("encrypted password"), blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    status = models.CharField(
        _("status"), max_length=10, choices=BusySyncStatus.choices, default=BusySyncStatus.NEW
    )
    last_error_code = models.CharField(_("last error code"), max_length=40, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_synced_at = models.DateTimeField(
        _("last synced at"), null=True, blank=True, help_text=_("The last successful sync.")
    )
    next_sync_at = models.DateTimeField(_("next sync at"), default=timezone.now)
    failure_count = models.PositiveIntegerField(_("failures in a row"), default=0)
    etag = models.CharField(_("ETag"), max_length=500, blank=True)
    last_modified = models.CharField(_("Last-Modified"), max_length=100, blank=True)
    synced_until = models.DateTimeField(
        _("synced until"),
        null=True,
        blank=True,
        help_text=_("The end of the time range the last successful sync read."),
    )
    period_count = models.PositiveIntegerField(_("busy periods"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
        ordering = ("teacher", "created_at", "pk")
        verbose_name = _("busy calendar")
        verbose_name_plural = _("busy calendars")
        indexes = [models.Index(fields=["enabled", "next_sync_at"])]
        constraints = [
            _choices_constraint("kind", BusySourceKind),
            _choices_constraint("status", BusySyncStatus),
        ]

    def __str__(self) -> str:
        return self.name or self.url_hint


class AbstractBusyPeriod(models.Model):
    """A time a teacher is busy according to one of their busy sources, in UTC. Titles and
    other details of the teacher's events are never stored."""

    objects: ClassVar[models.Manager[Any]]

    source = models.ForeignKey(
        "liveclass_booking.BusySource",
        on_delete=models.CASCADE,
        related_name="periods",
        verbose_name=_("source"),
    )
    teacher = models.ForeignKey(
        USER_MODEL,
        on_delete=models.CASCADE,
        related_name="liveclass_booking_busy_periods",
        verbose_name=_("teacher"),
    )
    start_at_utc = models.DateTimeField(_("start (UTC)"))
    end_at_utc = models.DateTimeField(_("end (UTC)"))

    class Meta:
        abstract = True
        ordering = ("teacher", "start_at_utc", "pk")
        verbose_name = _("busy period")
        verbose_name_plural = _("busy periods")
        indexes = [models.Index(fields=["teacher", "start_at_utc"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_at_utc__gt=F("start_at_utc")),
                name=_name("ends_after_start"),
                violation_error_message=_("A busy period must end after it starts."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.start_at_utc:%Y-%m-%d %H:%M}–{self.end_at_utc:%H:%M} UTC"
