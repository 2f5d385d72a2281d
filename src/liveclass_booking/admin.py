"""Admin for every model.

State that the service layer owns (booking and waitlist status, ``seats_taken``, decisions) is
read-only here: bookings, waitlist entries and series are not added or deleted through the
admin, so seat counts always match. The session and booking admins are registered for the
models active in the project (swapped or not); a host that wants its own admin unregisters
ours first (``admin.site.unregister(get_session_model())``) and may subclass it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .calendar.sources import (
    MAX_URL_LENGTH,
    check_busy_source_change,
    check_new_busy_source,
    create_busy_source,
    delete_busy_source,
    update_busy_source,
)
from .calendar.sync import sync_now
from .calendar.tokens import revoke_token
from .choices import WaitlistStatus
from .exceptions import BookingError, InvalidTransition
from .models import (
    WAITLIST_QUEUE_ORDER,
    AvailabilityException,
    BookingEvent,
    BookingSeries,
    BookingSeriesItem,
    BusyPeriod,
    BusySource,
    CalendarFeedToken,
    Course,
    IdempotencyKey,
    LegacyImport,
    NotificationDelivery,
    NotificationEvent,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from .notifications import retry_deliveries
from .querysets import with_queue_positions
from .recurrence import Recurrence


def user_search_fields(*prefixes: str) -> tuple[str, ...]:
    """Search fields for user FKs that work with any custom user model."""
    user_model = get_user_model()
    names = [user_model.USERNAME_FIELD]
    email_field = getattr(user_model, "EMAIL_FIELD", None)
    if email_field and email_field != user_model.USERNAME_FIELD:
        try:
            user_model._meta.get_field(email_field)
            names.append(email_field)
        except Exception:
            pass
    return tuple(f"{prefix}__{name}" for prefix in prefixes for name in names)


class ReadOnlyAdminMixin:
    """Show rows without allowing them to be added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NoAddDeleteMixin:
    """Rows are created and removed by the services only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def run_service(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    action: Callable[..., Any],
    done: str,
) -> None:
    """Apply a service to each selected row as the logged-in user; report successes and the
    domain error of each failure."""
    succeeded = 0
    for obj in queryset:
        try:
            action(obj, actor=request.user)
        except BookingError as exc:
            model_admin.message_user(
                request, f"{obj}: {exc.detail} ({exc.code})", level=messages.ERROR
            )
        else:
            succeeded += 1
    if succeeded:
        model_admin.message_user(request, f"{succeeded} {done}.", level=messages.SUCCESS)


def checked_form(base: Any, check: Callable[[Any], None]) -> Any:
    """``base`` (an admin form class) with ``check(instance)`` run after the form's own
    validation: a domain error of the services becomes a form error, so the admin says what
    the API would and saves nothing."""

    class CheckedForm(base):
        def _post_clean(self) -> None:
            super()._post_clean()
            if self._errors:  # the fields themselves are wrong: nothing more to check
                return
            try:
                check(self.instance)
            except BookingError as exc:
                self.add_error(None, f"{exc.detail} ({exc.code})")

    return CheckedForm


class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "created_at")
    search_fields = ("title", "description")
    date_hierarchy = "created_at"


# Meeting links are web addresses: assume https when the scheme is left out.
URL_FIELDS_HTTPS: dict[type[models.Field[Any, Any]], dict[str, Any]] = {
    models.URLField: {"assume_scheme": "https"}
}


class LiveClassSessionAdmin(admin.ModelAdmin):
    formfield_overrides = URL_FIELDS_HTTPS
    list_display = (
        "title",
        "course",
        "teacher",
        "start_at_utc",
        "end_at_utc",
        "timezone_snapshot",
        "capacity",
        "seats_taken",
        "seats_available",
        "status",
    )
    list_filter = ("status", "meeting_provider", "timezone_snapshot")
    search_fields = ("title", "description", "meeting_id", *user_search_fields("teacher"))
    date_hierarchy = "start_at_utc"
    list_select_related = ("course", "teacher")
    raw_id_fields = ("teacher", "course")
    readonly_fields = ("seats_taken", "status", "created_at", "updated_at")

    actions = ["cancel_sessions", "offer_waitlist_seats"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Moving a scheduled session must carry the new times to its bookings: that is
        # services.update_session's job, so times are fixed here once the session exists.
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "start_at_utc", "end_at_utc") if obj is not None else fields

    @admin.display(description="seats available")
    def seats_available(self, obj: Any) -> int:
        return int(obj.seats_available)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        original = copy.copy(obj) if obj is not None else None

        def check(session: Any) -> None:
            # Who may create or change the session, can_teach, a future start, scheduled.
            if original is None:
                services.check_new_session(session, actor=request.user)
            else:
                services.check_session_change(original, actor=request.user)

        return checked_form(super().get_form(request, obj, change=change, **kwargs), check)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Create and change sessions through the services (never ``obj.save()``): a new
        session enrols the group series waiting for it, a changed capacity offers the freed
        seats to the waitlist, and only the fields the form changed are written."""
        if not change:
            fields = {name: getattr(obj, name) for name in services.sessions.EDITABLE_FIELDS}
            for name in ("title", "start_at_utc", "end_at_utc", "capacity"):
                fields.pop(name)
            created = services.create_session(
                teacher=obj.teacher,
                course=obj.course,
                title=obj.title,
                start_at_utc=obj.start_at_utc,
                end_at_utc=obj.end_at_utc,
                capacity=obj.capacity,
                actor=request.user,
                **fields,
            )
            obj.pk = created.pk
            obj.__dict__.update(created.__dict__)
            return
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.sessions.EDITABLE_FIELDS
        }
        if not changes:
            return
        offers = SessionWaitlist.objects.filter(session_id=obj.pk, status=WaitlistStatus.OFFERED)
        before = offers.count()
        obj.__dict__.update(services.update_session(obj, actor=request.user, **changes).__dict__)
        offered = offers.count() - before
        if offered > 0:
            self.message_user(request, f"{offered} seat(s) offered to the waitlist.")

    @admin.action(description="Cancel selected sessions and their bookings")
    def cancel_sessions(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.cancel_session, "session(s) cancelled")

    @admin.action(description="Offer free seats to the waitlist (expire offers past their time)")
    def offer_waitlist_seats(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        offer_seats(self, request, list(queryset))


class BookingEventInline(admin.TabularInline):
    model = BookingEvent
    extra = 0
    can_delete = False
    fields = ("at", "from_status", "to_status", "actor", "reason", "data")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LiveClassBookingAdmin(NoAddDeleteMixin, admin.ModelAdmin):
    list_display = (
        "pk",
        "booking_type",
        "student_user",
        "teacher",
        "course",
        "start_at_utc",
        "seats_reserved",
        "status",
    )
    list_filter = ("status", "booking_type")
    search_fields = (
        "student_note",
        "teacher_note",
        *user_search_fields("student_user", "teacher"),
    )
    date_hierarchy = "start_at_utc"
    list_select_related = ("student_user", "teacher", "course")
    raw_id_fields = ("teacher", "student_user", "course", "session")
    readonly_fields = (
        "booking_type",
        "course",
        "teacher",
        "student_user",
        "session",
        "start_at_utc",
        "end_at_utc",
        "seats_reserved",
        "status",
        "decision_at",
        "decided_by",
        "cancelled_by",
        "cancelled_at",
        "cancel_reason",
        "student_note",
        "teacher_note",
        "approval_expires_at",
        "rescheduled_from",
        # A lesson's meeting details change through the services (approve, or
        # set_lesson_meeting), which raise its calendar SEQUENCE and tell the student.
        "meeting_link",
        "meeting_id",
        "meeting_passcode",
        "created_at",
        "updated_at",
    )
    inlines = [BookingEventInline]
    actions = ["approve", "decline", "cancel", "mark_attended", "mark_no_show"]

    @admin.action(description="Approve selected pending bookings")
    def approve(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.approve_booking, "booking(s) approved")

    @admin.action(description="Decline selected pending bookings")
    def decline(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.decline_booking, "booking(s) declined")

    @admin.action(description="Cancel selected bookings")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.cancel_booking, "booking(s) cancelled")

    @admin.action(description="Mark selected bookings attended")
    def mark_attended(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.mark_attended, "booking(s) marked attended")

    @admin.action(description="Mark selected bookings as no-shows")
    def mark_no_show(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.mark_no_show, "booking(s) marked no-show")


class TeacherRowAdmin(admin.ModelAdmin):
    """Policies, availability and its exceptions: who may manage a row is the service's rule,
    and rows are saved and deleted through the services, as in the API."""

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        original = copy.copy(obj) if obj is not None else None

        def check(row: Any) -> None:
            services.check_teacher_row(row, actor=request.user, original=original)

        form = checked_form(super().get_form(request, obj, change=change, **kwargs), check)
        form.original_row = original  # the row as stored, for save_model
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Save through the service, as the API does (checks, validation, save)."""
        original = getattr(form, "original_row", None)
        services.save_teacher_row(obj, actor=request.user, original=original)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.delete_teacher_row(obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for row in queryset:
            services.delete_teacher_row(row, actor=request.user)


@admin.register(TeacherBookingPolicy)
class TeacherBookingPolicyAdmin(TeacherRowAdmin):
    list_display = (
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
    list_filter = ("requires_approval_for_one_on_one", "requires_approval_for_group")
    search_fields = user_search_fields("teacher")
    list_select_related = ("teacher", "course")
    raw_id_fields = ("teacher", "course")


class BookingSeriesItemInline(admin.TabularInline):
    model = BookingSeriesItem
    extra = 0
    can_delete = False
    fields = (
        "occurrence_index",
        "start_at_utc",
        "end_at_utc",
        "status",
        "code",
        "booking",
        "session",
        "waitlist_entry",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BookingSeries)
class BookingSeriesAdmin(NoAddDeleteMixin, admin.ModelAdmin):
    formfield_overrides = URL_FIELDS_HTTPS
    list_display = (
        "pk",
        "type",
        "student_user",
        "teacher",
        "course",
        "frequency",
        "start_date",
        "start_time",
        "timezone",
        "status",
    )
    list_filter = ("type", "status", "frequency")
    search_fields = user_search_fields("student_user", "teacher")
    date_hierarchy = "start_date"
    list_select_related = ("student_user", "teacher", "course")
    raw_id_fields = ("student_user", "teacher", "course")
    # The rule made the occurrences: changing it here would not change them. Extend, pause,
    # resume and cancel go through the services (actions below, or the API).
    readonly_fields = (
        "student_user",
        "teacher",
        "course",
        "type",
        "status",
        *Recurrence.RULE_FIELDS,
        "default_meeting_link",
        "default_meeting_id",
        "default_meeting_passcode",
        "created_at",
        "updated_at",
    )
    inlines = [BookingSeriesItemInline]
    actions = ["pause", "resume", "cancel"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).prefetch_related("items__booking")

    @admin.action(description="Pause selected series (cancel their future occurrences)")
    def pause(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.pause_series, "series paused")

    @admin.action(description="Resume selected paused series (book what is still free)")
    def resume(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.resume_series, "series resumed")

    @admin.action(description="Cancel selected series (future occurrences only)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, services.cancel_series, "series cancelled")


def offer_seats(model_admin: admin.ModelAdmin[Any], request: HttpRequest, sessions: Any) -> None:
    """Settle the waitlists of ``sessions`` through the service and report the offers made."""
    offered = 0
    for session in sessions:
        try:
            offered += len(services.offer_seats(session, actor=request.user))
        except BookingError as exc:
            model_admin.message_user(
                request, f"{session}: {exc.detail} ({exc.code})", level=messages.ERROR
            )
    model_admin.message_user(request, f"{offered} seat(s) offered.", level=messages.SUCCESS)


def expire_offer_now(entry: Any, *, actor: Any) -> None:
    """The admin's "expire now": refuse, with a reason, an entry holding no open offer when
    it was selected (not one offered the seat a moment ago by this same action)."""
    if entry.status != WaitlistStatus.OFFERED or services.expire_offer(entry, actor=actor) is None:
        raise InvalidTransition(f"This entry is {entry.status}: it holds no open offer.")


WAITLIST_FIELDS = (
    "session",
    "student_user",
    "status",
    "created_at",
    "offered_at",
    "offer_expires_at",
    "accepted_at",
    "expired_at",
    "left_at",
    "booking",
)


class QueueColumns:
    """Columns of a waitlist view; the queryset carries ``with_queue_positions``."""

    @admin.display(description="status", ordering="status")
    def queue_status(self, obj: Any) -> str:
        """The status as readers see it: an offer past its time shows as expired."""
        return str(obj.current_status)

    @admin.display(description="place in line")
    def queue_position(self, obj: Any) -> Any:
        return getattr(obj, "position", None)


class WaitlistInline(QueueColumns, admin.TabularInline):
    """A session's queue, in join order (read-only: the services own it)."""

    model = SessionWaitlist
    fk_name = "session"
    extra = 0
    ordering = ("created_at", "pk")
    fields = ("student_user", "queue_status", "queue_position", "created_at", "offer_expires_at")
    readonly_fields = fields
    verbose_name_plural = "waitlist (in join order)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return with_queue_positions(super().get_queryset(request)).select_related("student_user")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


LiveClassSessionAdmin.inlines = [WaitlistInline]


@admin.register(SessionWaitlist)
class SessionWaitlistAdmin(QueueColumns, NoAddDeleteMixin, admin.ModelAdmin):
    list_display = (
        "session",
        "student_user",
        "queue_status",
        "queue_position",
        "created_at",
        "offered_at",
        "offer_expires_at",
    )
    list_filter = ("status", ("session", admin.RelatedOnlyFieldListFilter))
    search_fields = user_search_fields("student_user")
    date_hierarchy = "created_at"
    ordering = ("session", *WAITLIST_QUEUE_ORDER)
    list_select_related = ("session", "student_user")
    readonly_fields = WAITLIST_FIELDS
    actions = ["expire_now", "offer_next"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return with_queue_positions(super().get_queryset(request))

    @admin.action(description="Expire the selected offers now (the seats pass on)")
    def expire_now(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        run_service(self, request, queryset, expire_offer_now, "offer(s) expired")

    @admin.action(description="Offer free seats of these sessions to the next in line")
    def offer_next(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        session_ids = set(queryset.values_list("session_id", flat=True))
        sessions = get_session_model().objects.filter(pk__in=session_ids).order_by("pk")
        offer_seats(self, request, sessions)


@admin.register(TeacherAvailability)
class TeacherAvailabilityAdmin(TeacherRowAdmin):
    list_display = (
        "teacher",
        "weekday",
        "start_time",
        "end_time",
        "timezone",
        "course",
        "valid_from",
        "valid_until",
    )
    list_filter = ("weekday", "timezone")
    search_fields = user_search_fields("teacher")
    list_select_related = ("teacher", "course")
    raw_id_fields = ("teacher", "course")


@admin.register(AvailabilityException)
class AvailabilityExceptionAdmin(TeacherRowAdmin):
    list_display = ("teacher", "date", "kind", "start_time", "end_time", "timezone", "reason")
    list_filter = ("kind",)
    search_fields = ("reason", *user_search_fields("teacher"))
    date_hierarchy = "date"
    list_select_related = ("teacher",)
    raw_id_fields = ("teacher", "course")


@admin.register(BookingEvent)
class BookingEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("at", "booking", "from_status", "to_status", "actor", "reason")
    list_filter = ("to_status", "from_status")
    search_fields = ("reason", *user_search_fields("actor"))
    date_hierarchy = "at"
    list_select_related = ("booking", "actor")


@admin.register(LegacyImport)
class LegacyImportAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """What the legacy import brought in (read-only: it is how a re-run knows a row)."""

    list_display = ("imported_at", "source", "kind", "legacy_key", "object_id")
    list_filter = ("source", "kind")
    search_fields = ("legacy_key", "object_id")
    date_hierarchy = "imported_at"


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "user", "scope", "key", "response_status")
    list_filter = ("scope",)
    search_fields = ("key", *user_search_fields("user"))
    date_hierarchy = "created_at"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


class NotificationDeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    extra = 0
    can_delete = False
    fields = ("recipient", "channel", "status", "attempts", "next_attempt_at", "sent_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NotificationEvent)
class NotificationEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The outbox: what happened and who should hear it (written by the services)."""

    list_display = ("created_at", "kind", "booking", "session", "series", "actor", "expanded_at")
    list_filter = ("kind", ("expanded_at", admin.EmptyFieldListFilter))
    date_hierarchy = "created_at"
    list_select_related = ("actor",)
    raw_id_fields = ("booking", "session", "waitlist_entry", "series", "actor")
    inlines = [NotificationDeliveryInline]


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """One message to one person: its status, attempts and last error; failed ones can be
    sent again (the dispatcher picks them up on its next pass)."""

    list_display = (
        "created_at",
        "event",
        "recipient",
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error",
    )
    list_filter = ("status", "channel", "event__kind")
    search_fields = ("last_error", *user_search_fields("recipient"))
    date_hierarchy = "created_at"
    list_select_related = ("event", "recipient")
    actions = ["retry"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        opts = self.model._meta
        return bool(request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"))

    @admin.action(
        description="Send the selected failed or skipped deliveries again",
        permissions=["retry"],
    )
    def retry(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = retry_deliveries(list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            f"{count} delivery(ies) queued again; sent ones are never repeated.",
            level=messages.SUCCESS,
        )


@admin.register(CalendarFeedToken)
class CalendarFeedTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Feed tokens: who holds one, when it was last used; the secret is never stored, so
    neither shown. Revoking goes through the same function as the API."""

    list_display = ("created_at", "user", "name", "hint", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", *user_search_fields("user"))
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    actions = ["revoke"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.model._meta
        return bool(request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"))

    @admin.action(description="Revoke the selected feed tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True))
        for token in tokens:
            revoke_token(token)
        self.message_user(request, f"{len(tokens)} token(s) revoked.", level=messages.SUCCESS)


class BusySourceForm(forms.ModelForm):
    """A busy calendar's form: the address and password are typed in, never shown (not even
    encrypted); left empty on a change, the stored ones stay. Saved through the services."""

    url = forms.CharField(
        label="address",
        required=False,
        max_length=MAX_URL_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The calendar's address (http, https or webcal). Never shown again; leave "
        "empty to keep the stored one.",
    )
    password = forms.CharField(
        required=False,
        strip=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="CalDAV only. Never shown again; leave empty to keep the stored one.",
    )
    clear_password = forms.BooleanField(
        required=False, label="remove the stored password", help_text="CalDAV only."
    )

    class Meta:
        model = BusySource
        fields = ("teacher", "name", "kind", "url", "username", "password", "enabled")

    #: Set by BusySourceAdmin.get_form: the logged-in user and the calendar as stored.
    actor: Any = None
    original: Any = None

    def service_fields(self) -> dict[str, Any]:
        """What the services get: on a change only what the form changed, and a secret only
        when one was typed (or the password is to be removed)."""
        data = self.cleaned_data
        names = ("name", "kind", "username", "enabled")
        if self.original is None:
            fields = {name: data[name] for name in names}
        else:
            fields = {name: data[name] for name in names if name in self.changed_data}
        if data.get("url"):
            fields["url"] = data["url"]
        if data.get("clear_password"):
            fields["password"] = ""
        elif data.get("password"):
            fields["password"] = data["password"]
        return fields

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned: dict[str, Any] = self.cleaned_data
        if self.errors:
            return cleaned
        try:
            if self.original is None:
                if not cleaned.get("url"):
                    self.add_error("url", "Enter the calendar's address.")
                    return cleaned
                check_new_busy_source(
                    actor=self.actor, teacher=cleaned["teacher"], **self.service_fields()
                )
            else:
                check_busy_source_change(self.original, actor=self.actor, **self.service_fields())
        except BookingError as exc:
            field = exc.data.get("field")
            self.add_error(field if field in self.fields else None, f"{exc.detail} ({exc.code})")
        return cleaned


@admin.register(BusySource)
class BusySourceAdmin(admin.ModelAdmin):
    """Teachers' busy calendars. Added, changed, removed and synced through the same
    functions as the API; the address and password are never shown."""

    form = BusySourceForm
    list_display = (
        "teacher",
        "name",
        "kind",
        "url_hint",
        "enabled",
        "status",
        "last_synced_at",
        "period_count",
        "last_error_code",
    )
    list_filter = ("kind", "status", "enabled")
    search_fields = ("name", *user_search_fields("teacher"))
    list_select_related = ("teacher",)
    raw_id_fields = ("teacher",)
    actions = ["sync_selected"]
    STATE = (
        "url_hint",
        "status",
        "last_error_code",
        "last_error",
        "failure_count",
        "last_attempt_at",
        "last_synced_at",
        "next_sync_at",
        "synced_until",
        "period_count",
        "created_at",
        "updated_at",
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A calendar keeps its teacher (update_busy_source refuses another).
        return ("teacher", *self.STATE) if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("teacher", "name", "kind", "url", "username", "password", "enabled")
        editable = ("name", "kind", "url", "username", "password", "clear_password", "enabled")
        return (*editable, *self.get_readonly_fields(request, obj))

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form: Any = super().get_form(request, obj, change=change, **kwargs)
        # The calendar as stored: the form writes its fields onto ``obj`` before save_model.
        form.original = copy.copy(obj) if obj is not None else None
        form.actor = request.user
        return form

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Create or change the calendar through the services (which encrypt the secrets)."""
        fields = form.service_fields()
        if change:
            saved = update_busy_source(form.original, actor=request.user, **fields)
        else:
            saved = create_busy_source(actor=request.user, teacher=obj.teacher, **fields)
        obj.pk = saved.pk
        obj.__dict__.update(saved.__dict__)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        delete_busy_source(obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for source in queryset:
            delete_busy_source(source, actor=request.user)

    @admin.action(description="Sync the selected calendars now", permissions=["change"])
    def sync_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for source in queryset:
            try:
                result = sync_now(source, actor=request.user)
            except BookingError as exc:
                self.message_user(
                    request, f"{source}: {exc.detail} ({exc.code})", level=messages.ERROR
                )
                continue
            if result.outcome == "failed":
                self.message_user(
                    request,
                    f"{source}: the sync failed, earlier busy times kept: {result.error} "
                    f"({result.error_code})",
                    level=messages.ERROR,
                )
            elif result.outcome == "skipped":
                self.message_user(
                    request, f"{source}: skipped (disabled meanwhile).", level=messages.WARNING
                )
            else:
                what = "synced" if result.outcome == "synced" else "unchanged"
                self.message_user(
                    request,
                    f"{source}: {what}, {result.periods} busy period(s).",
                    level=messages.SUCCESS,
                )


@admin.register(BusyPeriod)
class BusyPeriodAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Busy times imported from teachers' calendars (read-only: each sync replaces them)."""

    list_display = ("start_at_utc", "end_at_utc", "teacher", "source")
    list_filter = (("source", admin.RelatedOnlyFieldListFilter),)
    search_fields = user_search_fields("teacher")
    date_hierarchy = "start_at_utc"
    list_select_related = ("teacher", "source")


def _register_swappable() -> None:
    try:
        models_and_admins = [
            (get_session_model(), LiveClassSessionAdmin),
            (get_booking_model(), LiveClassBookingAdmin),
        ]
        if get_course_model() is Course:
            models_and_admins.append((Course, CourseAdmin))
    except ImproperlyConfigured:
        return  # Reported by the liveclass_booking.E001 system check.
    for model, model_admin in models_and_admins:
        if not admin.site.is_registered(model):
            admin.site.register(model, model_admin)


_register_swappable()
