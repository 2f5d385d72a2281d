"""Read-side helpers: what a user may see. Each asks the policy resolver, so a host can widen
or narrow visibility by overriding ``visible_bookings``, ``visible_policies`` or
``visible_availability`` (see :class:`~liveclass_booking.policies.DefaultPolicyResolver`)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import TeacherAvailability, TeacherBookingPolicy, get_booking_model
from .policies import get_policy_resolver


def bookings_visible_to(user: Any) -> QuerySet[Any]:
    """By default students see their own bookings, teachers the ones they teach, staff all."""
    return get_policy_resolver().visible_bookings(user, get_booking_model().objects.all())


def policies_visible_to(user: Any) -> QuerySet[TeacherBookingPolicy]:
    """By default teachers see their own policies, staff all."""
    return get_policy_resolver().visible_policies(user, TeacherBookingPolicy.objects.all())


def availability_visible_to(user: Any) -> QuerySet[TeacherAvailability]:
    """By default teachers see their own windows, staff all."""
    return get_policy_resolver().visible_availability(user, TeacherAvailability.objects.all())
