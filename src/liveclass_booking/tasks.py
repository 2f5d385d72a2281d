"""Background work for a Django tasks backend: ``django.tasks`` on Django 6.0+, the
``django-tasks`` backport (the ``tasks`` extra) on Django 5.2.

Whenever outbox events commit, :func:`enqueue_dispatch` enqueues :data:`dispatch_notifications`
(one dispatcher pass) on ``LIVECLASS_BOOKING_TASK_BACKEND``. Any backend works; without one
(or with a worker stopped) the ``liveclass_booking_dispatch`` command does the same work, and
a later pass catches up with everything missed.

Creating or re-pointing a busy calendar enqueues :data:`sync_busy_source` for it
(:func:`enqueue_busy_sync`); :data:`sync_due_busy_sources` syncs every calendar that is due (run
it periodically, or the ``liveclass_booking_sync_busy`` command from cron).

When a waitlist offer is made, :func:`defer_offer_expiry` enqueues :data:`expire_offer` to
run when the offer ends, on the backend named by ``LIVECLASS_BOOKING_TASK_BACKEND``, if that
backend supports deferred tasks (``supports_defer``). Nothing depends on it running: an offer
past its time is treated as expired whenever it is read or claimed, and the
``liveclass_booking_expire_offers`` command expires what is due.
"""

from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.signals import setting_changed
from django.utils import timezone

from .conf import booking_settings

logger = logging.getLogger("liveclass_booking")


def _framework() -> Any:
    """``django.tasks`` (Django 6.0+), else the ``django_tasks`` backport, else None."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


_tasks = _framework()
task: Any = getattr(_tasks, "task", None)
task_backends: Any = getattr(_tasks, "task_backends", None)


def expire_offer(entry_pk: str) -> bool:
    """Expire one waitlist offer if its time is up and pass its seat on; True if it did."""
    from .models import SessionWaitlist
    from .services import waitlist

    entry = SessionWaitlist.objects.filter(pk=entry_pk).first()
    if entry is None:
        return False
    return waitlist.expire_offer(entry, only_if_due=True) is not None


if task is not None:
    # The worker finds the task by this module path, so the task object keeps the name.
    expire_offer = task(backend=booking_settings.TASK_BACKEND)(expire_offer)


#: The most deliveries one task pass sends. With the immediate backend the pass runs in the
#: request that committed the events, so a big change (a session of 500 cancelled) must not
#: make that request send everything; a queue backend gets a follow-up pass instead.
TASK_PASS_LIMIT = 200


def dispatch_notifications() -> str:
    """One dispatcher pass of at most :data:`TASK_PASS_LIMIT` deliveries (see
    :func:`liveclass_booking.notifications.dispatch`); on a backend that queues work for
    later (``supports_defer``), a pass that hit the limit enqueues the next."""
    from .notifications import dispatch

    report = dispatch(limit=TASK_PASS_LIMIT)
    handled = report.sent + report.retried + report.failed + report.skipped
    queues = task_backends is not None and task_backends[booking_settings.TASK_BACKEND]
    if handled >= TASK_PASS_LIMIT and queues and queues.supports_defer:
        _enqueue_pass()  # at once: the rest is waiting
    return str(report)


if task is not None:
    dispatch_notifications = task(backend=booking_settings.TASK_BACKEND)(dispatch_notifications)


def enqueue_dispatch(**kwargs: Any) -> bool:
    """Receiver of ``outbox_written``: make sure a dispatcher pass starts after this commit.
    Best effort: the events are committed, and a broken queue must neither fail the change
    nor lose them (the command or a later pass sends them). Returns whether a pass was
    enqueued (False also when a deferred one enqueued before starts late enough).

    On a backend that queues work (``supports_defer``), the commits of one process share
    passes (``LIVECLASS_BOOKING_DISPATCH_INTERVAL``; see :func:`_share_pass`). Elsewhere, or
    with an interval of 0, each commit gets a pass of its own."""
    if task is None or task_backends is None:
        return False
    alias = booking_settings.TASK_BACKEND
    interval = booking_settings.DISPATCH_INTERVAL
    try:
        defers = task_backends[alias].supports_defer
    except Exception:
        logger.exception("Could not enqueue the notification dispatcher")
        return False
    if not defers or not isinstance(interval, timedelta) or interval <= timedelta(0):
        return _enqueue_pass()
    return _share_pass(alias, interval)


#: How far a worker's clock may run ahead of this process's: a pass deferred to T is trusted
#: to start after a commit made before T minus this margin, not closer to T.
CLOCK_MARGIN = timedelta(milliseconds=100)


@dataclass(frozen=True)
class _Pass:
    """The latest dispatcher pass this process enqueued on a backend: when it was enqueued
    to run at once, or when it was deferred to (``deferred``; ``enqueued`` False while its
    enqueue is under way)."""

    at: datetime
    deferred: bool
    enqueued: bool = True


#: By backend alias; forgotten when the tasks settings change.
_latest: dict[str, _Pass] = {}
_latest_guard = threading.Lock()


def _share_pass(alias: str, interval: timedelta) -> bool:
    """Enqueue the pass that covers a commit made just now, unless a deferred pass this
    process enqueued on ``alias`` starts late enough to read it.

    Per ``interval``, a process enqueues about one pass at once and one deferred pass,
    however many transactions write events (all its threads together): a commit gets a pass
    at once, unless one was enqueued at once less than ``interval`` ago; then it gets one
    deferred to that pass's time plus ``interval``, and the commits before that time none.
    A deferred pass reads everything committed before it starts, and its time is rounded up
    to a whole second (RQ schedules by the second). Once its time has (nearly) come, the
    next commit gets a pass at once again, so mails keep flowing, a pass at least about
    every interval under steady load, even where deferred passes are late.

    A deferred pass excuses commits only once its enqueue has succeeded; a commit made while
    it is under way gets a pass at once (no commit waits for another's call to the queue).
    A record further ahead than a deferral can reach (the clock was set back) is ignored."""
    deferring = None
    with _latest_guard:
        now = timezone.now()
        latest = _latest.get(alias)
        if latest is not None and latest.deferred and not latest.enqueued:
            pass  # its enqueue is under way: this commit gets a pass at once
        elif latest is not None and latest.deferred:
            ahead = latest.at - now
            if CLOCK_MARGIN < ahead <= interval + _ROUNDING + CLOCK_MARGIN:
                return False  # it starts after this commit
            _latest[alias] = _Pass(now, deferred=False)
        elif (
            latest is not None
            and latest.at <= now < latest.at + interval
            and (later := _whole_second(latest.at + interval)) - now > CLOCK_MARGIN
        ):
            deferring = _latest[alias] = _Pass(later, deferred=True, enqueued=False)
        else:
            _latest[alias] = _Pass(now, deferred=False)
    if deferring is not None and latest is not None:
        return _defer_pass(alias, deferring, before=latest)  # outside the lock
    return _enqueue_pass()


def _defer_pass(alias: str, deferring: _Pass, *, before: _Pass) -> bool:
    """Enqueue the deferred pass ``deferring`` (recorded as under way); once enqueued it
    excuses later commits. If the queue refuses it (or the call is interrupted), the record
    goes back to ``before``, and this commit gets a pass at once instead."""
    done = False
    try:
        done = _enqueue_pass(deferring.at)
    finally:
        with _latest_guard:
            if _latest.get(alias) is deferring:
                _latest[alias] = _Pass(deferring.at, deferred=True) if done else before
    return done or _enqueue_pass()


#: The most a deferred pass's time is moved by rounding it up to a whole second.
_ROUNDING = timedelta(seconds=1)


def _whole_second(moment: datetime) -> datetime:
    """``moment`` rounded up to a whole second."""
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + _ROUNDING


def _forget_passes(*, setting: str, **kwargs: Any) -> None:
    """Another tasks backend, or another interval: the passes recorded count no more."""
    if setting in (
        "TASKS",
        "LIVECLASS_BOOKING_TASK_BACKEND",
        "LIVECLASS_BOOKING_DISPATCH_INTERVAL",
    ):
        with _latest_guard:
            _latest.clear()


setting_changed.connect(_forget_passes, dispatch_uid="liveclass_booking.forget_passes")


def _enqueue_pass(run_after: datetime | None = None) -> bool:
    """Enqueue one dispatcher pass (at ``run_after``, else at once); whether it worked."""
    job: Any = dispatch_notifications  # the task object (the name is reassigned above)
    alias = booking_settings.TASK_BACKEND
    try:
        job.using(backend=alias, run_after=run_after).enqueue()  # None: at once
    except Exception:
        logger.exception("Could not enqueue the notification dispatcher")
        return False
    return True


def schedule_offer_expiry(entry_pk: Any, at: datetime, **kwargs: Any) -> bool:
    """Receiver of ``offer_deadline_set``: :func:`defer_offer_expiry`, best effort (the change
    has committed; a broken queue must not fail the request, and an offer past its time is
    treated as expired whenever it is read, or expired by the command)."""
    try:
        return defer_offer_expiry(entry_pk, at)
    except Exception:
        logger.exception("Could not schedule the expiry of waitlist offer %s", entry_pk)
        return False


def defer_offer_expiry(entry_pk: Any, at: datetime) -> bool:
    """Enqueue :data:`expire_offer` for ``at`` when the configured backend can defer; return
    whether it was enqueued."""
    if task is None or task_backends is None:
        return False
    alias = booking_settings.TASK_BACKEND
    if not task_backends[alias].supports_defer:
        return False
    job: Any = expire_offer  # the task object (the name is reassigned above)
    job.using(backend=alias, run_after=at).enqueue(str(entry_pk))
    return True


def sync_busy_source(source_pk: str) -> str:
    """Sync one busy calendar now (if it still exists and is enabled)."""
    from .calendar.sync import sync_source
    from .models import BusySource

    source = BusySource.objects.filter(pk=source_pk, enabled=True).first()
    if source is None:
        return "skipped"
    return str(sync_source(source))


if task is not None:
    sync_busy_source = task(backend=booking_settings.TASK_BACKEND)(sync_busy_source)


def sync_due_busy_sources() -> str:
    """Sync every busy calendar that is due (see :func:`liveclass_booking.calendar.sync.
    sync_due_sources`)."""
    from .calendar.sync import sync_due_sources

    results = sync_due_sources()
    failed = sum(result.outcome == "failed" for result in results)
    return f"{len(results)} busy calendars synced, {failed} failed."


if task is not None:
    sync_due_busy_sources = task(backend=booking_settings.TASK_BACKEND)(sync_due_busy_sources)


def enqueue_busy_sync(source_pk: Any, **kwargs: Any) -> bool:
    """Receiver of ``busy_source_changed``: enqueue :data:`sync_busy_source` for the source.
    Best effort: the source is due already, so the command or the periodic task syncs it
    when no task runs."""
    if task is None or task_backends is None:
        return False
    job: Any = sync_busy_source  # the task object (the name is reassigned above)
    try:
        job.using(backend=booking_settings.TASK_BACKEND).enqueue(str(source_pk))
    except Exception:
        logger.exception("Could not enqueue the sync of busy calendar %s", source_pk)
        return False
    return True
