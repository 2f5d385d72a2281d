"""Every ``LIVECLASS_BOOKING_*`` setting, with its default, read live from Django settings.

Values are read on every access, so ``override_settings`` works in tests. The three model
settings are also written onto ``django.conf.settings`` when missing, because migrations and
``Meta.swappable`` read them from there before any host code runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings

PREFIX = "LIVECLASS_BOOKING_"

MODEL_SETTING_DEFAULTS: dict[str, str] = {
    "LIVECLASS_BOOKING_COURSE_MODEL": "liveclass_booking.Course",
    "LIVECLASS_BOOKING_SESSION_MODEL": "liveclass_booking.LiveClassSession",
    "LIVECLASS_BOOKING_BOOKING_MODEL": "liveclass_booking.LiveClassBooking",
}

#: The policy used when a teacher has no policy row (docs/policies.md). A host's
#: ``LIVECLASS_BOOKING_DEFAULT_POLICY`` may name only the keys it changes.
DEFAULT_POLICY: dict[str, Any] = {
    "requires_approval_for_one_on_one": True,
    "requires_approval_for_group": False,
    "min_notice_hours": 24,
    "cancel_window_hours": 24,
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 0,
    "max_bookings_per_day": None,
    "approval_timeout_hours": 48,
}

#: The range every policy number must lie in (inclusive), in validation, in the database (a
#: CHECK constraint) and in ``LIVECLASS_BOOKING_DEFAULT_POLICY`` (check E005). A value outside
#: it would make other users' requests fail (date arithmetic past the supported range).
POLICY_BOUNDS: dict[str, tuple[int, int]] = {
    "min_notice_hours": (0, 8760),  # up to a year
    "cancel_window_hours": (0, 8760),
    "buffer_before_minutes": (0, 1440),  # up to a day
    "buffer_after_minutes": (0, 1440),
    "max_bookings_per_day": (1, 1000),
    "approval_timeout_hours": (1, 8760),
}

#: The largest capacity a session may have.
MAX_CAPACITY = 10000

#: Free-text fields: the longest text accepted (titles and meeting fields have their own
#: column lengths).
MAX_TEXT_LENGTH = 5000

#: Per-account limits (OWASP API6), overridable with ``LIVECLASS_BOOKING_LIMITS`` (only the
#: keys it changes) and per teacher and course by the resolver's ``get_limits``. ``None``
#: lifts a limit.
DEFAULT_LIMITS: dict[str, int | None] = {
    "seats_per_booking": 10,
    "active_bookings_per_student": 200,
    "pending_requests_per_teacher": 10,
    "open_waitlist_entries_per_student": 20,
    "active_series_per_student": 10,
    "feed_tokens_per_user": 10,
}

#: DRF throttle rates of the writing actions, by scope; ``LIVECLASS_BOOKING_THROTTLE_RATES``
#: overrides single scopes, and ``None`` turns a scope's throttle off.
DEFAULT_THROTTLE_RATES: dict[str, str | None] = {
    "book": "30/min",
    "waitlist": "30/min",
    "series": "10/min",
    "sessions": "60/min",
    # The calendar feed (no login): counted per token, since calendar services fetch many
    # users' feeds from a few addresses.
    "feed": "60/min",
}


#: When reminders go out before a confirmed booking starts (``LIVECLASS_BOOKING_REMINDER_OFFSETS``;
#: the resolver's ``get_reminder_offsets`` may choose per teacher and course).
DEFAULT_REMINDER_OFFSETS: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))


def install_model_setting_defaults() -> None:
    """Write the default model settings onto Django settings where the host set none."""
    for name, default in MODEL_SETTING_DEFAULTS.items():
        if not hasattr(settings, name):
            setattr(settings, name, default)


class LiveClassBookingSettings:
    """Typed, live view of the ``LIVECLASS_BOOKING_*`` settings."""

    def _get(self, name: str, default: Any) -> Any:
        return getattr(settings, PREFIX + name, default)

    @property
    def COURSE_MODEL(self) -> str:
        return str(self._get("COURSE_MODEL", MODEL_SETTING_DEFAULTS[PREFIX + "COURSE_MODEL"]))

    @property
    def SESSION_MODEL(self) -> str:
        return str(self._get("SESSION_MODEL", MODEL_SETTING_DEFAULTS[PREFIX + "SESSION_MODEL"]))

    @property
    def BOOKING_MODEL(self) -> str:
        return str(self._get("BOOKING_MODEL", MODEL_SETTING_DEFAULTS[PREFIX + "BOOKING_MODEL"]))

    @property
    def POLICY_RESOLVER(self) -> str:
        return str(self._get("POLICY_RESOLVER", "liveclass_booking.policies.DefaultPolicyResolver"))

    @property
    def DEFAULT_POLICY(self) -> dict[str, Any]:
        """The built-in default policy updated with the host's partial override."""
        override = self._get("DEFAULT_POLICY", None) or {}
        return {**DEFAULT_POLICY, **override}

    @property
    def RAW_DEFAULT_POLICY(self) -> Any:
        """The host's ``LIVECLASS_BOOKING_DEFAULT_POLICY`` as set, for the system checks."""
        return self._get("DEFAULT_POLICY", None)

    @property
    def WAITLIST_OFFER_TTL(self) -> timedelta:
        value: timedelta = self._get("WAITLIST_OFFER_TTL", timedelta(hours=12))
        return value

    @property
    def IDEMPOTENCY_KEY_TTL(self) -> timedelta:
        value: timedelta = self._get("IDEMPOTENCY_KEY_TTL", timedelta(hours=24))
        return value

    @property
    def SERIES_MAX_OCCURRENCES(self) -> int:
        value: int = self._get("SERIES_MAX_OCCURRENCES", 200)
        return value

    @property
    def LIMITS(self) -> dict[str, int | None]:
        """The per-account limits: the defaults updated with the host's partial override."""
        override = self._get("LIMITS", None) or {}
        return {**DEFAULT_LIMITS, **override}

    @property
    def RAW_LIMITS(self) -> Any:
        return self._get("LIMITS", None)

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:
        """Throttle rates by scope: the defaults updated with the host's partial override."""
        override = self._get("THROTTLE_RATES", None) or {}
        return {**DEFAULT_THROTTLE_RATES, **override}

    @property
    def RAW_THROTTLE_RATES(self) -> Any:
        return self._get("THROTTLE_RATES", None)

    @property
    def NOTIFIER(self) -> str | None:
        value = self._get("NOTIFIER", "liveclass_booking.notifications.EmailNotifier")
        return str(value) if value else None

    @property
    def REMINDER_OFFSETS(self) -> list[timedelta]:
        """The valid offsets of ``LIVECLASS_BOOKING_REMINDER_OFFSETS`` (check E012 reports
        the others)."""
        value = self.RAW_REMINDER_OFFSETS
        if not isinstance(value, (list, tuple)):
            return []
        return [o for o in value if isinstance(o, timedelta) and o > timedelta(0)]

    @property
    def RAW_REMINDER_OFFSETS(self) -> Any:
        return self._get("REMINDER_OFFSETS", DEFAULT_REMINDER_OFFSETS)

    @property
    def NOTIFICATION_MAX_ATTEMPTS(self) -> int:
        value: int = self._get("NOTIFICATION_MAX_ATTEMPTS", 5)
        return value

    @property
    def NOTIFICATION_RETRY_DELAY(self) -> timedelta:
        value: timedelta = self._get("NOTIFICATION_RETRY_DELAY", timedelta(minutes=1))
        return value

    @property
    def NOTIFICATION_LEASE(self) -> timedelta:
        value: timedelta = self._get("NOTIFICATION_LEASE", timedelta(minutes=5))
        return value

    @property
    def CALENDAR_DOMAIN(self) -> str | None:
        value = self._get("CALENDAR_DOMAIN", None)
        return str(value) if value else None

    @property
    def CALENDAR_FEED_PAST(self) -> timedelta:
        value: timedelta = self._get("CALENDAR_FEED_PAST", timedelta(days=30))
        return value

    @property
    def CALENDAR_FEED_FUTURE(self) -> timedelta:
        value: timedelta = self._get("CALENDAR_FEED_FUTURE", timedelta(days=365))
        return value

    @property
    def CALENDAR_FEED_KEEP_CANCELLED(self) -> timedelta:
        value: timedelta = self._get("CALENDAR_FEED_KEEP_CANCELLED", timedelta(days=30))
        return value

    @property
    def CALENDAR_FEED_REFRESH(self) -> timedelta:
        value: timedelta = self._get("CALENDAR_FEED_REFRESH", timedelta(hours=1))
        return value

    @property
    def BUSY_ALLOW_PRIVATE_ADDRESSES(self) -> bool:
        """Whether imported calendars may be fetched from non-public addresses."""
        return bool(self._get("BUSY_ALLOW_PRIVATE_ADDRESSES", False))

    @property
    def BUSY_SYNC_INTERVAL(self) -> timedelta:
        """How often each busy source is synced by the sync command or task."""
        value: timedelta = self._get("BUSY_SYNC_INTERVAL", timedelta(minutes=15))
        return value

    @property
    def BUSY_LOOKAHEAD(self) -> timedelta:
        """How far ahead a sync reads a busy source."""
        value: timedelta = self._get("BUSY_LOOKAHEAD", timedelta(days=180))
        return value

    @property
    def BUSY_FETCH_TIMEOUT(self) -> float:
        """Seconds one fetch of a busy source may take, redirects included."""
        value: float = self._get("BUSY_FETCH_TIMEOUT", 10.0)
        return value

    @property
    def BUSY_MAX_BYTES(self) -> int:
        """The largest calendar a busy source may send."""
        value: int = self._get("BUSY_MAX_BYTES", 5_000_000)
        return value

    @property
    def BUSY_MAX_SOURCES(self) -> int:
        """The most busy sources one teacher may register."""
        value: int = self._get("BUSY_MAX_SOURCES", 10)
        return value

    @property
    def TASK_BACKEND(self) -> str:
        return str(self._get("TASK_BACKEND", "default"))

    @property
    def DISPATCH_INTERVAL(self) -> timedelta:
        """How long the commits of one process share a dispatcher pass on a backend that
        queues work (``timedelta(0)``: one pass per transaction that wrote events)."""
        value: timedelta = self._get("DISPATCH_INTERVAL", timedelta(seconds=1))
        return value


booking_settings = LiveClassBookingSettings()

install_model_setting_defaults()
