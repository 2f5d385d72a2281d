"""Read-side helpers: what a user may see. Each asks the policy resolver, so a host can widen
or narrow visibility by overriding ``visible_bookings``, ``visible_policies``,
``visible_availability``, ``visible_waitlist`` or ``visible_series``
(see :class:`~liveclass_booking.policies.DefaultPolicyResolver`)."""

from __future__ import annotations

import operator
from functools import reduce
from typing import Any

from django.db.models import (
    Case,
    Count,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from .choices import BookingStatus, WaitlistStatus
from .models import (
    WAITLIST_QUEUE_ORDER,
    BookingSeries,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
)
from .policies import get_policy_resolver


def overdue_requests(now: Any) -> Q:
    """Pending bookings past their approval timeout: they read as ``expired`` and hold
    nothing, even before the expiry is recorded."""
    return Q(status=BookingStatus.PENDING, approval_expires_at__lte=now)


def bookings_visible_to(user: Any) -> QuerySet[Any]:
    """By default students see their own bookings, teachers the ones they teach, staff all."""
    return get_policy_resolver().visible_bookings(user, get_booking_model().objects.all())


def policies_visible_to(user: Any) -> QuerySet[TeacherBookingPolicy]:
    """By default teachers see their own policies, staff all."""
    return get_policy_resolver().visible_policies(user, TeacherBookingPolicy.objects.all())


def availability_visible_to(user: Any) -> QuerySet[TeacherAvailability]:
    """By default teachers see their own windows, staff all."""
    return get_policy_resolver().visible_availability(user, TeacherAvailability.objects.all())


def waitlist_visible_to(user: Any) -> QuerySet[SessionWaitlist]:
    """By default students see their own entries, teachers their sessions' queues, staff all."""
    return get_policy_resolver().visible_waitlist(user, SessionWaitlist.objects.all())


def with_queue_positions(entries: QuerySet[SessionWaitlist]) -> QuerySet[SessionWaitlist]:
    """Annotate ``position``: 1 for the next student in line, 2 for the one after, ...; None
    for entries not waiting (offered, accepted, expired, left). One query for any number."""
    ahead = (
        SessionWaitlist.objects.filter(session=OuterRef("session"), status=WaitlistStatus.WAITING)
        .filter(ahead_in_queue())
        .order_by()
        .values("session")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return entries.annotate(
        position=Case(
            When(
                status=WaitlistStatus.WAITING,
                then=Coalesce(Subquery(ahead, output_field=IntegerField()), Value(0)) + 1,
            ),
            default=None,
            output_field=IntegerField(),
        )
    )


def ahead_in_queue() -> Q:
    """Entries before the outer query's entry in ``WAITLIST_QUEUE_ORDER`` (as a filter to use
    inside a subquery): smaller in the first field, or equal in it and smaller in the next."""
    clauses = []
    equal = Q()
    for name in WAITLIST_QUEUE_ORDER:
        clauses.append(equal & Q(**{f"{name}__lt": OuterRef(name)}))
        equal &= Q(**{name: OuterRef(name)})
    return reduce(operator.or_, clauses)


def series_visible_to(user: Any) -> QuerySet[BookingSeries]:
    """The booking series ``user`` may see, with ``last_end`` (the end of the last
    occurrence) annotated for :attr:`~liveclass_booking.models.BookingSeries.current_status`."""
    series = get_policy_resolver().visible_series(user, BookingSeries.objects.all())
    return series.annotate(last_end=Max("items__end_at_utc"))
