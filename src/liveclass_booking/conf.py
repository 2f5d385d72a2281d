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

#: The policy used when a teacher has no policy row (SPEC §6). A host's
#: ``LIVECLASS_BOOKING_DEFAULT_POLICY`` may name only the keys it changes.
DEFAULT_POLICY: dict[str, Any] = {
    "requires_approval_for_one_on_one": True,
    "requires_approval_for_group": False,
    "min_notice_hours": 24,
    "cancel_window_hours": 24,
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 0,
    "max_bookings_per_day": None,
}


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
    def NOTIFIER(self) -> str | None:
        value = self._get("NOTIFIER", "liveclass_booking.notifications.EmailNotifier")
        return str(value) if value else None

    @property
    def TASK_BACKEND(self) -> str:
        return str(self._get("TASK_BACKEND", "default"))


booking_settings = LiveClassBookingSettings()

install_model_setting_defaults()
