"""Feed tokens: the secrets in the address of a user's calendar feed.

A secret is 32 random bytes (URL-safe base64); only its SHA-256 is stored, so a leaked
database does not open anyone's feed, and it is shown once, when created. Rotating is
revoking one token and creating another.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import booking_settings
from ..exceptions import LimitReached
from ..models import CalendarFeedToken

#: ``last_used_at`` is written at most this often per token (a feed is polled often).
LAST_USED_GRANULARITY = timedelta(hours=1)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def active_tokens(user: Any) -> Any:
    """``user``'s tokens that open the feed."""
    return CalendarFeedToken.objects.filter(user=user, revoked_at__isnull=True)


def create_token(user: Any, name: str = "") -> tuple[CalendarFeedToken, str]:
    """A new token of ``user`` and its secret (the only time the secret is known).
    Refuses with ``limit_reached`` past the ``feed_tokens_per_user`` limit."""
    maximum = booking_settings.LIMITS.get("feed_tokens_per_user")
    with transaction.atomic():
        held = active_tokens(user).count()
        if maximum is not None and held >= maximum:
            raise LimitReached(
                f"feed_tokens_per_user is {maximum}: you hold {held} feed token(s); revoke "
                "one before creating another.",
                limit="feed_tokens_per_user",
                max=maximum,
            )
        secret = secrets.token_urlsafe(32)
        token = CalendarFeedToken.objects.create(
            user=user, name=name, token_hash=hash_secret(secret), hint=secret[:6]
        )
    return token, secret


def revoke_token(token: CalendarFeedToken, now: datetime | None = None) -> CalendarFeedToken:
    """Close ``token`` for good (the row stays, with ``revoked_at``)."""
    now = now or timezone.now()
    CalendarFeedToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    token.refresh_from_db(fields=["revoked_at"])
    return token


def feed_owner(secret: str, now: datetime | None = None) -> Any:
    """The active user whose live token ``secret`` is, or None (unknown, revoked, or the
    user is inactive). Records the use, at most once per ``LAST_USED_GRANULARITY``."""
    now = now or timezone.now()
    token = (
        CalendarFeedToken.objects.filter(token_hash=hash_secret(secret), revoked_at__isnull=True)
        .select_related("user")
        .first()
    )
    if token is None or not getattr(token.user, "is_active", True):
        return None
    if token.last_used_at is None or token.last_used_at < now - LAST_USED_GRANULARITY:
        CalendarFeedToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_GRANULARITY)
        ).update(last_used_at=now)
    return token.user
