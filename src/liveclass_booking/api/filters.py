"""django-filter FilterSets for the list endpoints."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db import models
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS

from ..calendar.sources import visible_busy_sources
from ..choices import (
    BookingStatus,
    BookingType,
    SeriesStatus,
    SeriesType,
    SessionStatus,
    WaitlistStatus,
)
from ..models import (
    BookingSeries,
    BusyPeriod,
    BusySource,
    SessionWaitlist,
    get_booking_model,
    get_session_model,
)
from ..querysets import overdue_requests
from ..timebounds import OutOfRange, to_utc
from .fields import (
    PLUS_AS_SPACE_MESSAGE,
    NotCanonical,
    canonical_pk,
    plus_became_space,
    same_key,
)


class AwareIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """ISO 8601 with an offset; a naive value is refused with the code ``naive_datetime``."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is None and plus_became_space(value):
                # django-filter formats the message with %: its "%2B" stays literal so.
                raise forms.ValidationError(PLUS_AS_SPACE_MESSAGE.replace("%", "%%"))
            if parsed is not None and (parsed.tzinfo is None or parsed.utcoffset() is None):
                raise forms.ValidationError(
                    "Give an offset, e.g. 2027-01-04T17:00:00+01:00 or ...Z.",
                    code="naive_datetime",
                )
        result = super().to_python(value)
        if result is None:
            return None
        # In UTC (PostgreSQL refuses offsets beyond 15:59, which ISO 8601 and Python allow)
        # and inside the supported range.
        try:
            return to_utc(result)
        except OutOfRange as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None


class AwareIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = AwareIsoDateTimeField


class CanonicalModelChoiceField(django_filters.fields.ModelChoiceField):
    """An object named by its key exactly as the key renders (see
    :func:`~liveclass_booking.api.fields.canonical_pk`); anything else is not a choice."""

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and not (
            self.null_label is not None and value == self.null_value
        ):
            opts = self.queryset.model._meta
            field = opts.get_field(self.to_field_name) if self.to_field_name else opts.pk
            try:
                key = canonical_pk(field, value)
            except NotCanonical:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice"
                ) from None
            found = super().to_python(value)
            if found is not None and not same_key(field.value_from_object(found), key):
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"], code="invalid_choice"
                )
            return found
        return super().to_python(value)


class CanonicalModelChoiceFilter(django_filters.ModelChoiceFilter):
    field_class = CanonicalModelChoiceField


class FilterSet(django_filters.FilterSet):
    """What the filter sets here share: a filter on a foreign key takes the id strictly."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        **{
            field: {
                **FILTER_FOR_DBFIELD_DEFAULTS[field],
                "filter_class": CanonicalModelChoiceFilter,
            }
            for field in (models.ForeignKey, models.OneToOneField)
        },
    }


def start_range() -> tuple[AwareIsoDateTimeFilter, AwareIsoDateTimeFilter]:
    """``start_after`` (inclusive) and ``start_before`` (exclusive) on ``start_at_utc``."""
    return (
        AwareIsoDateTimeFilter(field_name="start_at_utc", lookup_expr="gte"),
        AwareIsoDateTimeFilter(field_name="start_at_utc", lookup_expr="lt"),
    )


class SessionFilter(FilterSet):
    start_after, start_before = start_range()
    status = django_filters.ChoiceFilter(choices=SessionStatus.choices)
    has_free_seats = django_filters.BooleanFilter(method="filter_free_seats")

    class Meta:
        model = get_session_model()
        fields = ["course", "teacher", "status"]

    def filter_free_seats(self, queryset: QuerySet[Any], name: str, value: bool) -> QuerySet[Any]:
        if value is None:
            return queryset
        if value:
            return queryset.filter(seats_taken__lt=F("capacity"))
        return queryset.filter(seats_taken__gte=F("capacity"))


class BookingFilter(FilterSet):
    start_after, start_before = start_range()
    status = django_filters.MultipleChoiceFilter(
        choices=BookingStatus.choices, method="filter_status"
    )
    booking_type = django_filters.ChoiceFilter(choices=BookingType.choices)

    class Meta:
        model = get_booking_model()
        fields = ["status", "booking_type", "course", "teacher", "session"]

    def filter_status(self, queryset: QuerySet[Any], name: str, value: list[str]) -> QuerySet[Any]:
        """Filter on the status readers see: a request past its approval timeout counts as
        expired."""
        if not value:
            return queryset
        overdue = overdue_requests(timezone.now())
        wanted = Q(status__in=value) & ~overdue
        if BookingStatus.EXPIRED in value:
            wanted |= overdue
        return queryset.filter(wanted)


class WaitlistFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=WaitlistStatus.choices, method="filter_status"
    )

    class Meta:
        model = SessionWaitlist
        fields = ["session", "status"]

    def filter_status(self, queryset: QuerySet[Any], name: str, value: list[str]) -> QuerySet[Any]:
        """Filter on the status readers see: an offer past its time counts as expired."""
        if not value:
            return queryset
        now = timezone.now()
        due = Q(status=WaitlistStatus.OFFERED, offer_expires_at__lte=now)
        wanted = Q(status__in=[v for v in value if v != WaitlistStatus.OFFERED]) & ~due
        if WaitlistStatus.OFFERED in value:
            wanted |= Q(status=WaitlistStatus.OFFERED, offer_expires_at__gt=now)
        if WaitlistStatus.EXPIRED in value:
            wanted |= due
        return queryset.filter(wanted)


class SeriesFilter(FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=SeriesStatus.choices, method="filter_status"
    )
    type = django_filters.ChoiceFilter(choices=SeriesType.choices)

    class Meta:
        model = BookingSeries
        fields = ["status", "type", "course", "teacher"]

    def filter_status(self, queryset: QuerySet[Any], name: str, value: list[str]) -> QuerySet[Any]:
        """Filter on the status readers see: a series whose last occurrence has ended counts
        as completed (needs the ``last_end`` annotation)."""
        if not value:
            return queryset
        running = [SeriesStatus.ACTIVE, SeriesStatus.PAUSED]
        finished = Q(status__in=running, last_end__lte=timezone.now())
        wanted = Q(status__in=value) & ~finished
        if SeriesStatus.COMPLETED in value:
            wanted |= finished
        return queryset.filter(wanted)


class BusySourceFilter(FilterSet):
    class Meta:
        model = BusySource
        fields = ["teacher"]


def _own_sources(request: Any) -> QuerySet[Any]:
    # Another teacher's calendar is not a choice, like a missing one.
    if request is None:
        return BusySource.objects.none()
    return visible_busy_sources(request.user)


class BusyPeriodFilter(FilterSet):
    source = CanonicalModelChoiceFilter(queryset=_own_sources)
    start = AwareIsoDateTimeFilter(
        field_name="end_at_utc", lookup_expr="gt", help_text="Periods ending after this."
    )
    end = AwareIsoDateTimeFilter(
        field_name="start_at_utc", lookup_expr="lt", help_text="Periods starting before this."
    )

    class Meta:
        model = BusyPeriod
        fields = ["teacher", "source"]
