"""Helpers shared by the services: aware datetimes, audit events, signals after commit, locks."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.dispatch import Signal

from ..exceptions import NaiveDatetime, NotAllowed
from ..models import BookingEvent


def require_aware(value: Any, field: str) -> datetime:
    """Return ``value`` if it is an aware datetime; raise ``naive_datetime`` otherwise."""
    if not isinstance(value, datetime):
        from ..exceptions import InvalidInput

        raise InvalidInput(f"{field} must be a datetime.", field=field)
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime(
            f"{field} has no time-zone offset; send ISO 8601 with an offset, e.g. "
            "2027-01-04T17:00:00+01:00.",
            field=field,
        )
    return value


def send_after_commit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(partial(signal.send, sender=sender, **kwargs))


def record_event(
    booking: Any,
    *,
    actor: Any,
    from_status: str,
    to_status: str,
    reason: str = "",
    **data: Any,
) -> BookingEvent:
    """Write one audit-trail entry for a booking."""
    return BookingEvent.objects.create(
        booking=booking,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        reason=reason or "",
        data=data,
    )


def lock_users(*users: Any) -> None:
    """Row-lock the given users in one statement, in primary-key order: a teacher's row
    serialises that teacher's one-on-one bookings, a student's row the checks of the student's
    limits.

    User rows are locked before any session or booking row (the lock order everywhere), and
    all in one call, so that two transactions never wait on each other. On PostgreSQL and
    MySQL/MariaDB this blocks a concurrent transaction locking the same rows until this one
    ends; on SQLite the IMMEDIATE transaction already serialises writers.
    """
    # FOR NO KEY UPDATE on PostgreSQL: it serialises these callers as FOR UPDATE would, but
    # does not block the key-share locks that inserting a row referencing the user takes (a
    # booking of this teacher inserted by a transaction holding a session lock).
    no_key = connection.features.has_select_for_no_key_update
    pks = sorted({user.pk for user in users if user is not None}, key=str)
    rows = get_user_model().objects.select_for_update(no_key=no_key).filter(pk__in=pks)
    list(rows.order_by("pk").values_list("pk"))


def is_staff(actor: Any) -> bool:
    return bool(actor is not None and getattr(actor, "is_staff", False))


def same_user(actor: Any, user_pk: Any) -> bool:
    return actor is not None and actor.pk == user_pk


def require_manager(actor: Any, obj: Any, action: str) -> None:
    """Allow the system (``actor=None``) and whoever the resolver's ``can_manage`` allows for
    ``obj`` (by default its teacher and staff); refuse anybody else."""
    from ..policies import get_policy_resolver

    if actor is None or get_policy_resolver().can_manage(actor, obj):
        return
    raise NotAllowed(f"Only the teacher or staff may {action}.")
