"""Teachers' busy sources: register, change and remove the calendars whose busy times block
their one-on-one time. The API and the admin save through these functions, so who may manage
a source, the limits and the encryption of secrets are decided in one place.

A source belongs to one teacher (a user the resolver's ``can_teach`` accepts); the teacher and
whoever the resolver's ``can_manage`` allows (by default staff) manage it. Creating a source, or
changing where it points, makes it due for a sync at once.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..choices import BusySourceKind, BusySyncStatus
from ..conf import booking_settings
from ..exceptions import InvalidInput, LimitReached
from ..models import BusyPeriod, BusySource
from ..services.common import lock_users, require_manager, retry_on_deadlock
from ..services.rules import require_teacher
from ..signals import busy_source_changed
from .secrets import encrypt_secret

__all__ = [
    "MAX_URL_LENGTH",
    "check_busy_source_change",
    "check_new_busy_source",
    "create_busy_source",
    "delete_busy_source",
    "update_busy_source",
    "url_hint",
    "visible_busy_periods",
    "visible_busy_sources",
]

#: The longest address a source may have.
MAX_URL_LENGTH = 2000

_SCHEMES = {"http": "http", "https": "https", "webcal": "https", "webcals": "https"}


def visible_busy_sources(user: Any) -> QuerySet[Any]:
    """The sources ``user`` may see: their own; staff see all."""
    sources = BusySource.objects.select_related("teacher")
    if getattr(user, "is_staff", False):
        return sources
    return sources.filter(teacher=user)


def visible_busy_periods(user: Any) -> QuerySet[Any]:
    """The busy periods ``user`` may see: their own; staff see all."""
    if getattr(user, "is_staff", False):
        return BusyPeriod.objects.all()
    return BusyPeriod.objects.filter(teacher=user)


def url_hint(url: str, kind: str) -> str:
    """The form of ``url`` that may be shown: a feed's scheme and host only (feed addresses
    carry private tokens in their paths), a CalDAV calendar's address without user name,
    password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if kind == BusySourceKind.ICS:
        return f"{parts.scheme}://{host}/…"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))[:200]


def _clean_url(url: Any, kind: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url: enter the calendar's address.", field="url")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url: at most {MAX_URL_LENGTH} characters.", field="url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidInput("url: this is not a valid address.", field="url") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES or (
        kind == BusySourceKind.CALDAV and scheme not in ("http", "https")
    ):
        allowed = "http, https, webcal" if kind == BusySourceKind.ICS else "http, https"
        raise InvalidInput(f"url: the address must start with {allowed}.", field="url")
    if not parts.hostname:
        raise InvalidInput("url: the address has no host.", field="url")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput("url: the address contains spaces or control characters.", field="url")
    return url


def _clean_text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: must be text.", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters.", field=field)
    return value


def _apply(source: Any, changes: dict[str, Any]) -> bool:
    """Set ``changes`` on ``source``; return whether where it points (or how) changed."""
    repoint = False
    if "kind" in changes:
        kind = changes["kind"]
        if kind not in BusySourceKind.values:
            raise InvalidInput(f"kind: one of {', '.join(BusySourceKind.values)}.", field="kind")
        repoint |= kind != source.kind
        source.kind = kind
    if "name" in changes:
        source.name = _clean_text(changes["name"], "name", 100)
    if "url" in changes:
        url = _clean_url(changes["url"], source.kind)
        source.url_encrypted = encrypt_secret(url)
        source.url_hint = url_hint(url, source.kind)
        repoint = True
    if "username" in changes:
        username = _clean_text(changes["username"], "username", 200)
        repoint |= username != source.username
        source.username = username
    if "password" in changes:
        source.password_encrypted = encrypt_secret(
            _clean_text(changes["password"], "password", 500)
        )
        repoint = True
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise InvalidInput("enabled: true or false.", field="enabled")
        repoint |= changes["enabled"] and not source.enabled
        source.enabled = changes["enabled"]
    if source.kind == BusySourceKind.ICS and (source.username or source.password_encrypted):
        raise InvalidInput(
            "username: a feed URL takes no user name or password; put a private feed's "
            "credentials in its address or use a CalDAV source.",
            field="username",
        )
    return repoint


def _due_now(source: Any) -> None:
    source.next_sync_at = timezone.now()
    source.failure_count = 0
    source.etag = source.last_modified = ""
    source.synced_until = None


def _new_source(actor: Any, teacher: Any, fields: dict[str, Any]) -> Any:
    """An unsaved source of ``teacher`` with ``fields``, checked as creating it requires."""
    source = BusySource(teacher=teacher, kind=BusySourceKind.ICS)
    require_manager(actor, source, "manage this teacher's calendars")
    require_teacher(teacher, None)
    _apply(source, fields)
    return source


def _require_room(teacher: Any) -> None:
    limit = booking_settings.BUSY_MAX_SOURCES
    if BusySource.objects.filter(teacher=teacher).count() >= limit:
        raise LimitReached(
            f"a teacher may register at most {limit} busy calendars.",
            limit="busy_sources",
            max=limit,
        )


def _changed(source: Any, actor: Any, changes: dict[str, Any]) -> bool:
    """Set ``changes`` on ``source`` as changing it requires; return whether it repoints."""
    require_manager(actor, source, "manage this teacher's calendars")
    unknown = set(changes) - {"name", "url", "kind", "username", "password", "enabled"}
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: cannot be changed.", field=sorted(unknown)[0])
    if "kind" in changes and "url" not in changes and changes["kind"] != source.kind:
        raise InvalidInput("url: give the address again when changing the kind.", field="url")
    return _apply(source, changes)


#: What a new source has unless given.
NEW_SOURCE_DEFAULTS: dict[str, Any] = {"username": "", "password": "", "name": "", "enabled": True}


def check_new_busy_source(*, actor: Any, teacher: Any, **fields: Any) -> None:
    """Refuse as :func:`create_busy_source` would with ``fields`` (``kind``, ``url`` and
    optionally the others), saving nothing (the admin's form check)."""
    _require_room(_new_source(actor, teacher, {**NEW_SOURCE_DEFAULTS, **fields}).teacher)


def check_busy_source_change(source: Any, *, actor: Any, **changes: Any) -> None:
    """Refuse as :func:`update_busy_source` would, changing nothing (the admin's form check)."""
    _changed(copy.copy(source), actor, changes)


@retry_on_deadlock
def create_busy_source(
    *,
    actor: Any,
    teacher: Any,
    kind: str,
    url: str,
    username: str = "",
    password: str = "",
    name: str = "",
    enabled: bool = True,
) -> Any:
    """Register a busy source for ``teacher`` on behalf of ``actor`` (None: the system).

    Refuses with ``not_allowed`` unless ``actor`` may manage ``teacher``'s entries, ``invalid``
    for a bad address or a user that is not a teacher, ``limit_reached`` past
    ``LIVECLASS_BOOKING_BUSY_MAX_SOURCES``. The source is due for a sync at once."""
    fields = {"kind": kind, "url": url, "username": username, "password": password}
    source = _new_source(actor, teacher, fields | {"name": name, "enabled": enabled})
    source.status = BusySyncStatus.NEW
    _due_now(source)
    with transaction.atomic():
        lock_users(teacher)  # serialises concurrent creations against the limit
        _require_room(teacher)
        source.save()
        _announce(source)
    return source


@retry_on_deadlock
def update_busy_source(source: Any, *, actor: Any, **changes: Any) -> Any:
    """Change ``name``, ``url``, ``kind``, ``username``, ``password`` or ``enabled`` of
    ``source``. A changed address or credentials make it due for a sync at once (its validators
    dropped); disabling it removes its busy periods, which stop blocking."""
    repoint = _changed(source, actor, changes)
    with transaction.atomic():
        if repoint:
            _due_now(source)
        if not source.enabled:
            BusyPeriod.objects.filter(source=source).delete()
            source.period_count = 0
        source.save()
        if repoint and source.enabled:
            _announce(source)
    return source


@retry_on_deadlock
def delete_busy_source(source: Any, *, actor: Any) -> None:
    """Remove ``source`` and its busy periods."""
    require_manager(actor, source, "manage this teacher's calendars")
    source.delete()


def _announce(source: Any) -> None:
    pk = source.pk
    transaction.on_commit(lambda: busy_source_changed.send(sender=BusySource, source_pk=pk))
