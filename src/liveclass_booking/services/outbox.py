"""The transactional outbox: the one writer of notification events.

Services call :func:`notify` in the transaction of the change that someone must hear about,
so the event commits or rolls back with the change. The event carries what changed (in
``data``) and who should hear it (``recipients``); the dispatcher
(:mod:`liveclass_booking.notifications`) turns it into deliveries later. Nothing is written
when ``LIVECLASS_BOOKING_NOTIFIER`` is ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import signals
from ..conf import booking_settings
from ..models import NotificationEvent
from ..prepared import PreparedInsert


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)


def outbox_event(
    kind: str,
    *,
    recipients: Iterable[Any],
    booking: Any = None,
    session: Any = None,
    waitlist_entry: Any = None,
    series: Any = None,
    actor: Any = None,
    key: str | None = None,
    at: datetime | None = None,
    **data: Any,
) -> NotificationEvent:
    """Build (not save) one outbox event. ``recipients`` are users or user primary keys
    (repeats and ``None`` dropped); ``data`` must be JSON-serialisable (datetimes are)."""
    at = at or timezone.now()
    seen: dict[str, None] = {}
    for person in recipients:
        if person is not None:
            seen.setdefault(str(_pk(person)), None)
    return NotificationEvent(
        kind=kind,
        booking_id=_pk(booking),
        session_id=_pk(session),
        waitlist_entry_id=_pk(waitlist_entry),
        series_id=_pk(series),
        actor_id=_pk(actor),
        recipients=list(seen),
        data=data,
        key=key,
        created_at=at,
    )


_INSERT_EVENT = PreparedInsert(lambda: NotificationEvent)


def notifications_enabled() -> bool:
    return booking_settings.NOTIFIER is not None


def write(
    events: list[NotificationEvent], *, ignore_conflicts: bool = False, wake: bool = True
) -> None:
    """Save ``events`` in one statement (their primary keys are not read back), in the
    caller's transaction, and (unless ``wake`` is False) announce once per transaction, after
    it commits, that there is work (``outbox_written``: the tasks module enqueues a
    dispatcher pass). Writes nothing when notifications are off. ``ignore_conflicts``: an
    event whose ``key`` exists already is dropped (reminders written by two dispatchers at
    once)."""
    if not events or not notifications_enabled():
        return
    if len(events) == 1 and not ignore_conflicts:
        _INSERT_EVENT.insert(events[0])  # the common case, compiled once
    else:
        NotificationEvent.objects.bulk_create(events, ignore_conflicts=ignore_conflicts)
    if wake and not _wake_pending():
        transaction.on_commit(_wake)


def _wake() -> None:
    signals.outbox_written.send(sender=NotificationEvent)


def _wake_pending() -> bool:
    """Whether this transaction already announces its events on commit."""
    connection = transaction.get_connection()
    return any(callback[1] is _wake for callback in connection.run_on_commit)


def notify(kind: str, **fields: Any) -> None:
    """Write one outbox event (see :func:`outbox_event` for the fields)."""
    if notifications_enabled():
        write([outbox_event(kind, **fields)])
