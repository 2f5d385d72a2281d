"""Throttles of the writing actions and the calendar feed (docs/security.md: ``throttled``,
429 with ``Retry-After``).

Each writing action of the API names a scope (``book``, ``waitlist``, ``series``,
``sessions``); the rate of a scope comes from ``LIVECLASS_BOOKING_THROTTLE_RATES`` over the
defaults in :data:`liveclass_booking.conf.DEFAULT_THROTTLE_RATES`, and ``None`` turns it off.
Requests are counted per user (per client address when anonymous) in Django's default
cache: use a cache shared by all processes (Redis, Memcached, a database cache) when the API
runs in more than one. The host's own ``DEFAULT_THROTTLE_CLASSES`` still apply beside these.
"""

from __future__ import annotations

from typing import Any

from rest_framework.throttling import SimpleRateThrottle

from ..conf import booking_settings


class WriteRateThrottle(SimpleRateThrottle):
    """Throttle an action named in the view's ``throttle_scopes`` at its scope's rate."""

    cache_format = "liveclass_booking_throttle_%(scope)s_%(ident)s"

    def __init__(self) -> None:
        # The rate depends on the action: it is looked up per request, not at creation.
        self.rate = None
        self.scope = ""

    def allow_request(self, request: Any, view: Any) -> bool:
        scope = getattr(view, "throttle_scopes", {}).get(getattr(view, "action", None))
        rate = booking_settings.THROTTLE_RATES.get(scope) if scope else None
        if not rate:
            return True
        self.scope, self.rate = scope, rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = str(user.pk)
        else:
            ident = str(self.get_ident(request))
        return self.cache_format % {"scope": self.scope, "ident": ident}
