"""Syncing busy sources: fetch a teacher's calendar, expand it and replace the source's busy
periods in one transaction.

The network and the parsing happen before the transaction; only the swap of the periods and
the source's bookkeeping happen inside it. Whatever goes wrong (an address not allowed, a
timeout, an oversized body, a login page instead of a calendar, an unparsable or runaway
document, a secret that no longer decrypts) keeps the last good periods and records the error
on the source: a broken feed never makes a teacher all free or all busy.

Who runs it: :func:`sync_due_sources` (the ``liveclass_booking_sync_busy`` command and the
``sync_due_busy_sources`` task) for every enabled source whose ``next_sync_at`` has come, and
:func:`sync_now` (the API's ``sync/`` action and the admin's "sync now") for one source on
demand. The request path of bookings and slots never fetches.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..choices import BusySourceKind, BusySyncStatus
from ..conf import booking_settings
from ..exceptions import InvalidInput, SyncTooSoon
from ..models import BusyPeriod, BusySource
from ..policies import get_policy_resolver
from ..services.common import require_manager
from .busy import CalendarParseError, CalendarTooLargeError, busy_intervals
from .fetch import FetchError, fetch_calendar
from .secrets import SecretUnreadable, decrypt_secret

__all__ = [
    "SYNC_PAST",
    "SyncResult",
    "sync_due_sources",
    "sync_now",
    "sync_source",
]

logger = logging.getLogger("liveclass_booking")

#: How far back a sync keeps busy times (a lesson in progress still counts).
SYNC_PAST = timedelta(days=1)
#: A conditional fetch (ETag/Last-Modified) is used while the last good sync read at least
#: this close to today's look-ahead; past that the window has moved and the document is
#: read and expanded again even if it did not change.
WINDOW_SLACK = timedelta(days=1)
#: The longest wait between retries of a failing source.
MAX_BACKOFF = timedelta(hours=6)
#: How long a claimed sync holds its source against other runners.
CLAIM = timedelta(minutes=5)
#: On-demand syncs of one source are at least this far apart.
SYNC_NOW_SPACING = timedelta(seconds=30)


@dataclass(frozen=True)
class SyncResult:
    """What one sync of one source did: ``outcome`` is ``synced`` (periods replaced),
    ``not_modified`` (the server said the calendar did not change), ``failed`` (periods kept;
    ``error_code`` and ``error`` say why) or ``skipped`` (the source was removed or disabled
    meanwhile)."""

    source_id: Any
    outcome: str
    periods: int = 0
    error_code: str = ""
    error: str = ""

    def __str__(self) -> str:
        if self.outcome == "failed":
            return f"source {self.source_id}: failed ({self.error_code}: {self.error})"
        return f"source {self.source_id}: {self.outcome} ({self.periods} busy periods)"


def _window(now: datetime) -> tuple[datetime, datetime]:
    return now - SYNC_PAST, now + booking_settings.BUSY_LOOKAHEAD


def _read(source: Any, now: datetime) -> tuple[list[tuple[datetime, datetime]] | None, str, str]:
    """Fetch and expand ``source``: its intervals (None: not modified) and new validators."""
    start, end = _window(now)
    zone = get_policy_resolver().get_user_timezone(source.teacher)
    url = decrypt_secret(source.url_encrypted)
    limits: dict[str, Any] = {
        "timeout": booking_settings.BUSY_FETCH_TIMEOUT,
        "max_bytes": booking_settings.BUSY_MAX_BYTES,
        "allow_private": booking_settings.BUSY_ALLOW_PRIVATE_ADDRESSES,
    }
    if source.kind == BusySourceKind.CALDAV:
        from .caldav import fetch_caldav_busy

        password = decrypt_secret(source.password_encrypted)
        intervals = fetch_caldav_busy(url, source.username, password, start, end, zone, **limits)
        return intervals, "", ""
    conditional = (
        source.status == BusySyncStatus.OK
        and source.synced_until is not None
        and source.synced_until >= end - WINDOW_SLACK
    )
    result = fetch_calendar(
        url,
        etag=source.etag if conditional else "",
        last_modified=source.last_modified if conditional else "",
        **limits,
    )
    if result.status == "not_modified":
        return None, result.etag, result.last_modified
    return busy_intervals(result.body, start, end, zone), result.etag, result.last_modified


def _failure(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, FetchError):
        return exc.reason, str(exc)
    if isinstance(exc, CalendarTooLargeError):
        return "too_many_events", str(exc)
    if isinstance(exc, CalendarParseError):
        return "unparsable", str(exc)
    if isinstance(exc, SecretUnreadable):
        return "secret_unreadable", (
            "The stored address or password can no longer be read (the site's secret key "
            "changed); enter it again."
        )
    return "internal_error", "The sync failed unexpectedly; the site's logs have the details."


def sync_source(source: Any, *, now: datetime | None = None) -> SyncResult:
    """Sync ``source`` now: fetch, expand and replace its busy periods, or record why not."""
    now = now or timezone.now()
    try:
        intervals, etag, last_modified = _read(source, now)
    except Exception as exc:  # every failure keeps the last good periods
        code, message = _failure(exc)
        if code == "internal_error":
            logger.exception("Sync of busy source %s failed", source.pk)
        return _record_failure(source, now, code, message)
    return _record_success(source, now, intervals, etag, last_modified)


def _locked(source: Any) -> Any:
    return BusySource.objects.select_for_update().filter(pk=source.pk, enabled=True).first()


def _record_success(
    source: Any,
    now: datetime,
    intervals: list[tuple[datetime, datetime]] | None,
    etag: str,
    last_modified: str,
) -> SyncResult:
    with transaction.atomic():
        locked = _locked(source)
        if locked is None:
            return SyncResult(source.pk, "skipped")
        if intervals is not None:
            BusyPeriod.objects.filter(source=locked).delete()
            BusyPeriod.objects.bulk_create(
                [
                    BusyPeriod(
                        source=locked, teacher_id=locked.teacher_id, start_at_utc=s, end_at_utc=e
                    )
                    for s, e in intervals
                ],
                batch_size=1000,
            )
            locked.period_count = len(intervals)
            locked.synced_until = _window(now)[1]
        locked.status = BusySyncStatus.OK
        locked.etag, locked.last_modified = etag[:500], last_modified[:100]
        locked.last_error_code = locked.last_error = ""
        locked.failure_count = 0
        locked.last_attempt_at = locked.last_synced_at = now
        locked.next_sync_at = now + booking_settings.BUSY_SYNC_INTERVAL
        locked.save()
    _copy(locked, source)
    return SyncResult(
        source.pk, "synced" if intervals is not None else "not_modified", locked.period_count
    )


def _record_failure(source: Any, now: datetime, code: str, message: str) -> SyncResult:
    with transaction.atomic():
        locked = _locked(source)
        if locked is None:
            return SyncResult(source.pk, "skipped")
        locked.status = BusySyncStatus.FAILED
        locked.last_error_code, locked.last_error = code[:40], message[:500]
        locked.failure_count += 1
        locked.last_attempt_at = now
        backoff = booking_settings.BUSY_SYNC_INTERVAL * 2 ** min(locked.failure_count - 1, 10)
        locked.next_sync_at = now + min(
            backoff, max(MAX_BACKOFF, booking_settings.BUSY_SYNC_INTERVAL)
        )
        locked.save()
    _copy(locked, source)
    return SyncResult(source.pk, "failed", locked.period_count, code, message)


_STATE = (
    "status",
    "last_error_code",
    "last_error",
    "failure_count",
    "last_attempt_at",
    "last_synced_at",
    "next_sync_at",
    "etag",
    "last_modified",
    "synced_until",
    "period_count",
    "updated_at",
)


def _copy(locked: Any, source: Any) -> None:
    if locked is not source:
        for name in _STATE:
            setattr(source, name, getattr(locked, name))


def _claim(source: Any, now: datetime) -> bool:
    """Take ``source`` for this runner: move its ``next_sync_at`` past the claim, only if no
    other runner did first."""
    return bool(
        BusySource.objects.filter(
            pk=source.pk, enabled=True, next_sync_at=source.next_sync_at
        ).update(next_sync_at=now + CLAIM)
    )


def sync_due_sources(*, now: datetime | None = None, limit: int | None = None) -> list[SyncResult]:
    """Sync every enabled source whose ``next_sync_at`` has come (at most ``limit``), each
    claimed first so that runners in several processes never sync one source twice."""
    now = now or timezone.now()
    due = BusySource.objects.filter(enabled=True, next_sync_at__lte=now).select_related("teacher")
    due = due.order_by("next_sync_at", "pk")
    results = []
    for source in due[:limit] if limit else due:
        if _claim(source, now):
            results.append(sync_source(source, now=now))
    return results


def sync_now(source: Any, *, actor: Any, now: datetime | None = None) -> SyncResult:
    """Sync ``source`` on behalf of ``actor`` (its teacher or staff; None: the system).
    Refuses ``throttled`` when it was tried less than :data:`SYNC_NOW_SPACING` ago."""
    require_manager(actor, source, "manage this teacher's calendars")
    now = now or timezone.now()
    if not source.enabled:
        raise InvalidInput(
            "enabled: this calendar is disabled; enable it to sync.", field="enabled"
        )
    if source.last_attempt_at and now - source.last_attempt_at < SYNC_NOW_SPACING:
        wait = math.ceil((SYNC_NOW_SPACING - (now - source.last_attempt_at)).total_seconds())
        raise SyncTooSoon(
            f"this calendar was synced moments ago; try again in {wait} s.", retry_after=wait
        )
    return sync_source(source, now=now)
