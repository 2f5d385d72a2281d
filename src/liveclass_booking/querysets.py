"""Read-side helpers: what a user may see. Each asks the policy resolver, so a host can widen
or narrow visibility by overriding ``visible_bookings``, ``visible_policies``,
``visible_availability``, ``visible_waitlist`` or ``visible_series``
(see :class:`~liveclass_booking.policies.DefaultPolicyResolver`)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Func,
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


#: The instant :class:`EpochMicroseconds` counts from.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """An aware datetime as whole microseconds since :data:`EPOCH` (exact)."""
    return (at - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC datetime ``value`` microseconds after :data:`EPOCH` (exact)."""
    seconds, microseconds = divmod(value, 1_000_000)  # twice as fast as microseconds=value
    return EPOCH + timedelta(0, seconds, microseconds)


class EpochMicroseconds(Func):
    """A datetime column as whole microseconds since 1970-01-01 UTC (an exact integer)."""

    output_field = BigIntegerField()

    @property
    def convert_value(self) -> Any:
        # Every supported database answers an integer already: skip Django's converter.
        return getattr(self, "_convert_value_noop")  # noqa: B009 - not in the type stubs

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # EXTRACT answers an exact numeric (PostgreSQL 14+).
        template = "(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Stored as text in UTC, 'YYYY-MM-DD HH:MM:SS' then '.ffffff' unless zero: whole
        # seconds, plus the fraction padded to six digits when there is one. SQLite itself
        # rounds a fraction to milliseconds, so only the first 19 characters go to its date
        # functions; unixepoch() (SQLite 3.38+) reads them fastest. '%%%%s' reaches SQLite as
        # strftime's '%s'.
        if connection.Database.sqlite_version_info >= (3, 38):
            seconds = "unixepoch({})"
        else:
            seconds = "CAST(strftime('%%%%s', {}) AS INTEGER)"
        whole = seconds.format("%(expressions)s")
        cut = seconds.format("substr(%(expressions)s, 1, 19)")
        template = (
            "(CASE WHEN length(%(expressions)s) > 19"
            f" THEN {cut} * 1000000"
            " + CAST(substr(%(expressions)s || '000000', 21, 6) AS INTEGER)"
            f" ELSE {whole} * 1000000 END)"
        )
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_mysql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Stored as naive UTC: a difference from the epoch, whatever the session's zone.
        template = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', %(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra)


class _Column(Value):
    """A constant column of a union, read as the database answers it (no converter)."""

    @property
    def convert_value(self) -> Any:
        return getattr(self, "_convert_value_noop")  # noqa: B009 - not in the type stubs


#: The vendors :class:`EpochMicroseconds` knows.
EPOCH_VENDORS = frozenset({"postgresql", "sqlite", "mysql"})


def utc_rows_of(*parts: tuple[QuerySet[Any], Sequence[str | None]]) -> list[tuple[Any, ...]]:
    """The rows of several ``(queryset, fields)`` parts in one query (``UNION ALL``), in no
    particular order: each row is the index of its part, then the values of that part's
    datetime fields as aware UTC datetimes (None for a field given as None, so that parts
    of different widths line up). See :func:`micros_rows_of`."""
    return [
        (row[0], *[None if value is None else from_micros(value) for value in row[1:]])
        for row in micros_rows_of(*parts)
    ]


def micros_rows_of(*parts: tuple[QuerySet[Any], Sequence[str | None]]) -> list[tuple[Any, ...]]:
    """As :func:`utc_rows_of`, the values as whole microseconds since :data:`EPOCH`.

    Django converts aware datetimes in Python, several microseconds a value, the bulk of a
    slot listing over thousands of bookings and busy periods; here the database sends
    integers instead, which also compare and add exactly."""
    if not parts:
        return []
    if connection_vendor(parts[0][0]) not in EPOCH_VENDORS:
        return [
            (index, *[None if value is None else micros(value) for value in row])
            for index, (queryset, fields) in enumerate(parts)
            for row in queryset.order_by().values_list(
                *[field or Value(None, output_field=BigIntegerField()) for field in fields]
            )
        ]
    return list(micros_union(*parts))


def micros_union(*parts: tuple[QuerySet[Any], Sequence[str | None]]) -> QuerySet[Any]:
    """The query of :func:`micros_rows_of` on a vendor of :data:`EPOCH_VENDORS`."""
    queries = []
    for index, (queryset, fields) in enumerate(parts):
        columns: dict[str, Any] = {"_part": _Column(index, output_field=IntegerField())}
        for i, field in enumerate(fields):
            columns[f"_epoch_{i}"] = (
                EpochMicroseconds(field) if field else _Column(None, output_field=BigIntegerField())
            )
        queries.append(queryset.order_by().annotate(**columns).values_list(*columns))
    query = queries[0].union(*queries[1:], all=True) if len(queries) > 1 else queries[0]
    return query.order_by()  # Django 6.1 would order the union by the first model's Meta


def connection_vendor(queryset: QuerySet[Any]) -> str:
    from django.db import connections

    return str(connections[queryset.db].vendor)
