"""Helpers shared by the services: aware datetimes, audit events, signals after commit, locks."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache, partial, wraps
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, connections, router, transaction
from django.db.models import QuerySet
from django.dispatch import Signal

from ..exceptions import NaiveDatetime, NotAllowed
from ..models import BookingEvent
from ..prepared import Param, Prepared, PreparedInsert


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


F = TypeVar("F", bound=Callable[..., Any])

#: How many times a service runs when its transaction is chosen as a deadlock victim.
DEADLOCK_ATTEMPTS = 10


def is_deadlock(exc: BaseException) -> bool:
    """Whether the database rolled back a transaction to break a deadlock (PostgreSQL
    ``40P01``, a serialization failure ``40001``; MySQL/MariaDB 1213, or 1205 when a lock wait
    timed out)."""
    cause = exc.__cause__ or exc
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state in ("40P01", "40001"):
        return True
    args: tuple[Any, ...] = tuple(getattr(cause, "args", ()))
    return bool(args) and args[0] in (1213, 1205)


def retry_on_deadlock(func: F) -> F:
    """Run a service again (up to ``DEADLOCK_ATTEMPTS`` times, after a short random pause)
    when its transaction was rolled back to break a deadlock. InnoDB's foreign-key checks take
    shared locks that can cross the services' row locks under contention; the rolled-back
    attempt left nothing behind, so running it again is safe. Inside a caller's transaction
    it runs once: the caller's whole transaction is what would have to run again."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        if connection.in_atomic_block:
            return func(*args, **kwargs)
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return func(*args, **kwargs)
            except DatabaseError as exc:
                if attempt == DEADLOCK_ATTEMPTS or not is_deadlock(exc):
                    raise
                time.sleep(random.uniform(0.01, 0.05) * min(attempt, 4))
        raise AssertionError("unreachable")  # pragma: no cover

    return run  # type: ignore[return-value]


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
    """Write one audit-trail entry for a booking (its ``pk`` is not read back)."""
    event = BookingEvent(
        booking=booking,
        actor=actor,
        from_status=from_status,
        to_status=to_status,
        reason=reason or "",
        data=data,
    )
    _INSERT_EVENT.insert(event)
    return event


_INSERT_EVENT = PreparedInsert(lambda: BookingEvent)


def lock_users(*users: Any) -> None:
    """Row-lock the given users (or their primary keys) in one statement, in primary-key
    order: a teacher's row serialises that teacher's one-on-one bookings, a student's row the
    checks of the student's limits and the student's group bookings.

    User rows are locked before any session or booking row (the lock order everywhere), and
    all in one call, so that two transactions never wait on each other. On PostgreSQL and
    MySQL/MariaDB this blocks a concurrent transaction locking the same rows until this one
    ends; on SQLite the IMMEDIATE transaction already serialises writers.
    """
    pks = sorted({getattr(user, "pk", user) for user in users if user is not None}, key=str)
    if pks:
        _lock_users_statement(len(pks)).rows(**{f"user{i}": pk for i, pk in enumerate(pks)})


@cache
def _lock_users_statement(count: int) -> Prepared:
    """The statement of :func:`lock_users` for ``count`` users."""
    return Prepared(partial(_lock_users, count))


def _lock_users(count: int) -> QuerySet[Any]:
    # FOR NO KEY UPDATE on PostgreSQL: it serialises these callers as FOR UPDATE would, but
    # does not block the key-share locks that inserting a row referencing the user takes (a
    # booking of this teacher inserted by a transaction holding a session lock).
    model = get_user_model()
    no_key = connections[router.db_for_write(model)].features.has_select_for_no_key_update
    pks: Any = [Param(f"user{i}", model._meta.pk) for i in range(count)]
    rows = model.objects.select_for_update(no_key=no_key).filter(pk__in=pks)
    return rows.order_by("pk").values_list("pk")


def hot_row_last() -> bool:
    """Whether rows that reference a contended row (a group session) can be written before
    that row is locked, so that its lock is taken last and held only until the commit.

    True where foreign keys are checked at commit: PostgreSQL and SQLite, on which Django
    creates them deferred (PostgreSQL's check then takes a key-share lock, which a seat
    ``UPDATE`` does not block). False on MySQL/MariaDB: InnoDB checks a foreign key at once,
    under a shared lock on the referenced row; two bookers holding it would then both wait to
    update the row (a deadlock), so there the session row is locked before those writes."""
    return bool(connection.features.can_defer_constraint_checks)


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
