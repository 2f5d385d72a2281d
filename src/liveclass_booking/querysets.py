"""Read-side helpers: what a user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from .models import TeacherAvailability, TeacherBookingPolicy, get_booking_model


def _is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_staff", False))


def bookings_visible_to(user: Any) -> QuerySet[Any]:
    """Students see their own bookings, teachers the ones they teach, staff all."""
    bookings = get_booking_model().objects.all()
    if _is_staff(user):
        return bookings
    return bookings.filter(Q(student_user=user) | Q(teacher=user))


def policies_visible_to(user: Any) -> QuerySet[TeacherBookingPolicy]:
    """Teachers see their own policies, staff all."""
    policies = TeacherBookingPolicy.objects.all()
    return policies if _is_staff(user) else policies.filter(teacher=user)


def availability_visible_to(user: Any) -> QuerySet[TeacherAvailability]:
    """Teachers see their own windows, staff all."""
    windows = TeacherAvailability.objects.all()
    return windows if _is_staff(user) else windows.filter(teacher=user)
