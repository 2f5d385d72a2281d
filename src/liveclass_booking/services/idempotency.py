"""``Idempotency-Key`` (docs/api.md): one key, one outcome.

The first request with a key runs and its response is stored in the same transaction as the
rows it creates. The same key with the same body replays that response and creates nothing; the
same key with another body is ``idempotency_conflict``. A request that fails stores nothing, so
the client may retry it with the same key. Keys are per user and per scope (the endpoint) and
are kept for ``LIVECLASS_BOOKING_IDEMPOTENCY_KEY_TTL`` (24 hours by default).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import booking_settings
from ..exceptions import IdempotencyConflict, InvalidInput
from ..models import IdempotencyKey
from .common import retry_on_deadlock

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    """What a keyed request answered: its HTTP status and JSON body."""

    status: int
    body: Any
    replayed: bool = False


def fingerprint(body: Any) -> str:
    """SHA-256 of the request body in canonical JSON (key order does not matter)."""
    canonical = json.dumps(
        body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder, ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_key(key: str) -> str:
    """Return ``key`` if it is 1–255 visible ASCII characters; raise ``invalid`` otherwise."""
    if not (0 < len(key) <= MAX_KEY_LENGTH) or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters, such as a UUID.",
            field=HEADER,
        )
    return key


def purge_expired_keys(user: Any = None) -> int:
    """Delete keys older than the TTL (all users', or ``user``'s); return how many."""
    keys = IdempotencyKey.objects.filter(
        created_at__lt=timezone.now() - booking_settings.IDEMPOTENCY_KEY_TTL
    )
    if user is not None:
        keys = keys.filter(user=user)
    deleted, _ = keys.delete()
    return deleted


@retry_on_deadlock
def run_once(
    *,
    user: Any,
    scope: str,
    key: str,
    body: Any,
    produce: Callable[[], tuple[int, Any]],
) -> StoredResponse:
    """Run ``produce()`` at most once for ``(user, scope, key)`` and return its response.

    ``produce`` returns ``(status, json_body)``; it runs inside the transaction that stores the
    key, so what it creates and the stored response commit together or not at all. A second
    request with the key waits for the first to finish (the unique index serialises them),
    then replays its response.
    """
    validate_key(key)
    digest = fingerprint(body)
    with transaction.atomic():
        purge_expired_keys(user)
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    user=user, scope=scope, key=key, request_fingerprint=digest
                )
        except IntegrityError:
            row = IdempotencyKey.objects.get(user=user, scope=scope, key=key)
            if row.request_fingerprint != digest:
                raise IdempotencyConflict(
                    f"This {HEADER} was already used with a different request body; "
                    "use a new key for a new request.",
                    field=HEADER,
                ) from None
            assert row.response_status is not None  # stored in the same transaction
            return StoredResponse(row.response_status, row.response_body, replayed=True)
        status, response_body = produce()
        row.response_status = status
        row.response_body = response_body
        row.save(update_fields=["response_status", "response_body"])
    return StoredResponse(status, response_body)
