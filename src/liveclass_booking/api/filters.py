"""django-filter FilterSets for the list endpoints."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import F, QuerySet

from ..choices import BookingStatus, BookingType, SessionStatus
from ..models import get_booking_model, get_session_model


class SessionFilter(django_filters.FilterSet):
    start_after = django_filters.IsoDateTimeFilter(field_name="start_at_utc", lookup_expr="gte")
    start_before = django_filters.IsoDateTimeFilter(field_name="start_at_utc", lookup_expr="lt")
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


class BookingFilter(django_filters.FilterSet):
    start_after = django_filters.IsoDateTimeFilter(field_name="start_at_utc", lookup_expr="gte")
    start_before = django_filters.IsoDateTimeFilter(field_name="start_at_utc", lookup_expr="lt")
    status = django_filters.MultipleChoiceFilter(choices=BookingStatus.choices)
    booking_type = django_filters.ChoiceFilter(choices=BookingType.choices)

    class Meta:
        model = get_booking_model()
        fields = ["status", "booking_type", "course", "teacher", "session"]
