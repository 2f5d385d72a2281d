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
from weakref import WeakKeyDictionary

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
    """Receiver of ``outbox_written``: make sure a dispatcher pass runs after this commit
    (:func:`plan_pass`). Best effort: the events are committed, and a broken queue must
    neither fail the change nor lose them (the command or the next pass sends them). Returns
    whether a pass was enqueued (False also when one enqueued before runs late enough)."""
    if task is None or task_backends is None:
        return False
    try:
        backend = task_backends[booking_settings.TASK_BACKEND]
        planned = plan_pass(backend, timezone.now())
    except Exception:
        logger.exception("Could not enqueue the notification dispatcher")
        return False
    if planned is None:
        return False
    if not _enqueue_pass(planned.run_after):
        planned.forget()
        return False
    return True


#: How much earlier than this process's clock a worker's clock may read: a pass enqueued to
#: run at T is trusted to start after a commit made before T minus this margin.
CLOCK_MARGIN = timedelta(milliseconds=100)

#: By backend: when the latest pass this process enqueued on it runs (for a pass that runs
#: at once, when it was enqueued).
_latest: WeakKeyDictionary[Any, datetime] = WeakKeyDictionary()
_latest_guard = threading.Lock()


@dataclass(frozen=True)
class PlannedPass:
    """A dispatcher pass to enqueue on ``backend``: at once (``run_after`` None) or deferred."""

    backend: Any
    run_after: datetime | None
    recorded: datetime
    previous: datetime | None

    def forget(self) -> None:
        """The enqueue failed: later commits must not count on this pass."""
        with _latest_guard:
            if _latest.get(self.backend) == self.recorded:
                if self.previous is None:
                    del _latest[self.backend]
                else:
                    _latest[self.backend] = self.previous


def plan_pass(backend: Any, now: datetime) -> PlannedPass | None:
    """The dispatcher pass that covers a commit made before ``now``, or None when a pass
    this process enqueued on ``backend`` already starts late enough to read it.

    On a backend that queues work (``supports_defer``) a process enqueues at most one pass
    at once and one deferred pass per ``LIVECLASS_BOOKING_DISPATCH_INTERVAL``, however many
    transactions write events: the first commit after a quiet spell gets a pass at once; a
    commit within the interval after that gets a pass deferred to the interval's end; the
    commits before that time need none, since the deferred pass reads everything committed
    before it starts. The immediate backend, or an interval of 0, gets one pass per
    transaction."""
    interval = booking_settings.DISPATCH_INTERVAL
    if not interval or not backend.supports_defer:
        return PlannedPass(backend, None, now, None)
    with _latest_guard:
        latest = _latest.get(backend)
        if latest is not None and latest > now + CLOCK_MARGIN:
            return None
        due = None if latest is None else latest + interval
        run_after = due if due is not None and due > now + CLOCK_MARGIN else None
        recorded = _latest[backend] = now if run_after is None else run_after
    return PlannedPass(backend, run_after, recorded, latest)


def _enqueue_pass(run_after: datetime | None = None) -> bool:
    """Enqueue one dispatcher pass (at ``run_after``, else at once); whether it worked."""
    job: Any = dispatch_notifications  # the task object (the name is reassigned above)
    alias = booking_settings.TASK_BACKEND
    try:
        (
            job.using(backend=alias, run_after=run_after) if run_after else job.using(backend=alias)
        ).enqueue()
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
