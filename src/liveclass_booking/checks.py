"""System checks for settings, swapped models and database capabilities.

Errors (``liveclass_booking.E00N``) stop ``manage.py check``/``migrate``; warnings
(``liveclass_booking.W00N``) name a database where a guarantee of docs/concurrency.md is weaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils.module_loading import import_string

from .conf import (
    DEFAULT_LIMITS,
    DEFAULT_POLICY,
    DEFAULT_THROTTLE_RATES,
    POLICY_BOUNDS,
    booking_settings,
)

SWAPPABLE = (
    ("LIVECLASS_BOOKING_COURSE_MODEL", "COURSE_MODEL", None),
    ("LIVECLASS_BOOKING_SESSION_MODEL", "SESSION_MODEL", "AbstractLiveClassSession"),
    ("LIVECLASS_BOOKING_BOOKING_MODEL", "BOOKING_MODEL", "AbstractLiveClassBooking"),
)

_POLICY_TYPES: dict[str, tuple[type, ...]] = {
    "requires_approval_for_one_on_one": (bool,),
    "requires_approval_for_group": (bool,),
    "min_notice_hours": (int,),
    "cancel_window_hours": (int,),
    "buffer_before_minutes": (int,),
    "buffer_after_minutes": (int,),
    "max_bookings_per_day": (int, type(None)),
    "approval_timeout_hours": (int,),
}


@register(Tags.models)
def check_models(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E001: a model setting that cannot be loaded; E004: a swapped model of the wrong base."""
    from . import abstract
    from .models import model_for_setting

    messages: list[CheckMessage] = []
    for setting, attr, base_name in SWAPPABLE:
        label = getattr(booking_settings, attr)
        try:
            model = model_for_setting(setting, label)
        except ImproperlyConfigured as exc:
            messages.append(
                Error(
                    str(exc),
                    hint=f"Set {setting} to an installed model, e.g. 'lms.Course'.",
                    id="liveclass_booking.E001",
                )
            )
            continue
        if base_name is not None and not issubclass(model, getattr(abstract, base_name)):
            messages.append(
                Error(
                    f"{setting} refers to {label!r}, which does not subclass "
                    f"liveclass_booking.abstract.{base_name}.",
                    hint=f"Derive your model from {base_name}.",
                    obj=model,
                    id="liveclass_booking.E004",
                )
            )
    return messages


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E002/E003: the policy resolver; E005: the default policy; E006/E007: the lifetimes;
    E008: the series cap; E009: the limits; E010: the throttle rates; E011–E013: the
    notifier, the reminder offsets and the delivery settings; E014: the calendar feed; E016:
    the busy-calendar import."""
    from .policies import DefaultPolicyResolver

    messages: list[CheckMessage] = []
    path = booking_settings.POLICY_RESOLVER
    try:
        resolver = import_string(path)
    except ImportError as exc:
        messages.append(
            Error(
                f"LIVECLASS_BOOKING_POLICY_RESOLVER {path!r} cannot be imported: {exc}",
                id="liveclass_booking.E002",
            )
        )
    else:
        if not (isinstance(resolver, type) and issubclass(resolver, DefaultPolicyResolver)):
            messages.append(
                Error(
                    f"LIVECLASS_BOOKING_POLICY_RESOLVER {path!r} is not a subclass of "
                    "liveclass_booking.policies.DefaultPolicyResolver.",
                    hint="Subclass DefaultPolicyResolver and override the hooks you need.",
                    id="liveclass_booking.E003",
                )
            )
    messages.extend(_check_default_policy(booking_settings.RAW_DEFAULT_POLICY))
    ttl = booking_settings.WAITLIST_OFFER_TTL
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        messages.append(
            Error(
                f"LIVECLASS_BOOKING_WAITLIST_OFFER_TTL must be a positive timedelta, not {ttl!r}.",
                id="liveclass_booking.E006",
            )
        )
    key_ttl = booking_settings.IDEMPOTENCY_KEY_TTL
    if not isinstance(key_ttl, timedelta) or key_ttl < timedelta(hours=24):
        messages.append(
            Error(
                "LIVECLASS_BOOKING_IDEMPOTENCY_KEY_TTL must be a timedelta of at least 24 hours "
                f"(the API promises to keep keys that long), not {key_ttl!r}.",
                id="liveclass_booking.E007",
            )
        )
    messages.extend(_check_limits(booking_settings.RAW_LIMITS))
    messages.extend(_check_throttle_rates(booking_settings.RAW_THROTTLE_RATES))
    cap = booking_settings.SERIES_MAX_OCCURRENCES
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        messages.append(
            Error(
                "LIVECLASS_BOOKING_SERIES_MAX_OCCURRENCES must be a positive integer, "
                f"not {cap!r}.",
                id="liveclass_booking.E008",
            )
        )
    messages.extend(_check_notifications())
    messages.extend(_check_calendar_feed())
    messages.extend(_check_busy_import())
    return messages


#: The bounds of the feed's durations (E014): a window past ten years would make every feed
#: request read a user's whole history; a refresh interval past a week leaves clients stale.
FEED_BOUNDS: dict[str, tuple[timedelta, timedelta]] = {
    "CALENDAR_FEED_PAST": (timedelta(0), timedelta(days=3660)),
    "CALENDAR_FEED_FUTURE": (timedelta(days=1), timedelta(days=3660)),
    "CALENDAR_FEED_KEEP_CANCELLED": (timedelta(0), timedelta(days=3660)),
    "CALENDAR_FEED_REFRESH": (timedelta(minutes=5), timedelta(days=7)),
}


def _check_calendar_feed() -> list[CheckMessage]:
    """E014: the feed's window, how long cancelled entries stay, and its refresh interval."""
    wrong = []
    for name, (low, high) in FEED_BOUNDS.items():
        value = getattr(booking_settings, name)
        if not isinstance(value, timedelta) or not low <= value <= high:
            wrong.append(
                f"LIVECLASS_BOOKING_{name} must be a timedelta from {low} to {high}, not {value!r}."
            )
    return [Error(text, id="liveclass_booking.E014") for text in wrong]


#: The bounds of the busy-import settings (E016) and the types they must have.
BUSY_BOUNDS: dict[str, tuple[Any, Any, type | tuple[type, ...]]] = {
    "BUSY_SYNC_INTERVAL": (timedelta(minutes=1), timedelta(days=1), timedelta),
    "BUSY_LOOKAHEAD": (timedelta(days=1), timedelta(days=731), timedelta),
    "BUSY_FETCH_TIMEOUT": (1, 120, (int, float)),
    "BUSY_MAX_BYTES": (10_000, 100_000_000, int),
    "BUSY_MAX_SOURCES": (1, 100, int),
}


def _check_busy_import() -> list[CheckMessage]:
    """E016: the sync interval, look-ahead, fetch timeout, size cap and source limit."""
    wrong = []
    for name, (low, high, kind) in BUSY_BOUNDS.items():
        value = getattr(booking_settings, name)
        if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
            wrong.append(f"LIVECLASS_BOOKING_{name} must be from {low} to {high}, not {value!r}.")
    return [Error(text, id="liveclass_booking.E016") for text in wrong]


def _check_notifications() -> list[CheckMessage]:
    """E011: the notifier; E012: the reminder offsets; E013: attempts, retry delay, lease,
    dispatch interval."""
    from .notifications import BaseNotifier

    messages: list[CheckMessage] = []
    path = booking_settings.NOTIFIER
    if path is not None:
        try:
            notifier = import_string(path)
        except ImportError as exc:
            notifier, problem = None, f"cannot be imported: {exc}"
        else:
            problem = "is not a subclass of liveclass_booking.notifications.BaseNotifier."
        if not (isinstance(notifier, type) and issubclass(notifier, BaseNotifier)):
            messages.append(
                Error(
                    f"LIVECLASS_BOOKING_NOTIFIER {path!r} {problem}",
                    hint="Name a BaseNotifier subclass, or None to turn notifications off.",
                    id="liveclass_booking.E011",
                )
            )
    offsets = booking_settings.RAW_REMINDER_OFFSETS
    if not isinstance(offsets, (list, tuple)) or not all(
        isinstance(o, timedelta) and timedelta(0) < o <= timedelta(days=31) for o in offsets
    ):
        messages.append(
            Error(
                "LIVECLASS_BOOKING_REMINDER_OFFSETS must be a list of timedeltas between 0 "
                f"(exclusive) and 31 days, not {offsets!r}.",
                hint="For example [timedelta(hours=24), timedelta(hours=1)]; [] for none.",
                id="liveclass_booking.E012",
            )
        )
    attempts = booking_settings.NOTIFICATION_MAX_ATTEMPTS
    delays = {
        "NOTIFICATION_RETRY_DELAY": booking_settings.NOTIFICATION_RETRY_DELAY,
        "NOTIFICATION_LEASE": booking_settings.NOTIFICATION_LEASE,
    }
    wrong = [
        f"LIVECLASS_BOOKING_{name} must be a positive timedelta, not {value!r}."
        for name, value in delays.items()
        if not isinstance(value, timedelta) or value <= timedelta(0)
    ]
    interval = booking_settings.DISPATCH_INTERVAL
    if not isinstance(interval, timedelta) or not timedelta(0) <= interval <= timedelta(hours=1):
        wrong.append(
            "LIVECLASS_BOOKING_DISPATCH_INTERVAL must be a timedelta from 0 to one hour, "
            f"not {interval!r}."
        )
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        wrong.append(
            f"LIVECLASS_BOOKING_NOTIFICATION_MAX_ATTEMPTS must be an integer from 1 to 100, "
            f"not {attempts!r}."
        )
    messages.extend(Error(text, id="liveclass_booking.E013") for text in wrong)
    return messages


def _check_limits(value: Any) -> list[CheckMessage]:
    """E009: ``LIVECLASS_BOOKING_LIMITS`` names known limits with positive integers or None."""
    if value is None:
        return []
    if not isinstance(value, dict):
        problems = ["it must be a dict"]
    else:
        problems = []
        for key, item in value.items():
            if key not in DEFAULT_LIMITS:
                problems.append(f"unknown limit {key!r}")
            elif item is not None and (isinstance(item, bool) or not isinstance(item, int)):
                problems.append(f"{key} must be a positive integer or None, not {item!r}")
            elif item is not None and item < 1:
                problems.append(f"{key} must be at least 1 (None lifts it), not {item!r}")
    if not problems:
        return []
    return [
        Error(
            "LIVECLASS_BOOKING_LIMITS is invalid: " + "; ".join(problems) + ".",
            hint="Valid limits: " + ", ".join(DEFAULT_LIMITS) + ".",
            id="liveclass_booking.E009",
        )
    ]


def _check_throttle_rates(value: Any) -> list[CheckMessage]:
    """E010: ``LIVECLASS_BOOKING_THROTTLE_RATES`` maps known scopes to DRF rates or None."""
    if value is None:
        return []
    problems = []
    if not isinstance(value, dict):
        problems.append("it must be a dict")
    else:
        for key, rate in value.items():
            if key not in DEFAULT_THROTTLE_RATES:
                problems.append(f"unknown scope {key!r}")
            elif rate is not None and not _is_rate(rate):
                problems.append(f"{key}: {rate!r} is not a rate such as '30/min' (or None)")
    if not problems:
        return []
    return [
        Error(
            "LIVECLASS_BOOKING_THROTTLE_RATES is invalid: " + "; ".join(problems) + ".",
            hint="Scopes: " + ", ".join(DEFAULT_THROTTLE_RATES) + ".",
            id="liveclass_booking.E010",
        )
    ]


def _is_rate(rate: Any) -> bool:
    if not isinstance(rate, str) or "/" not in rate:
        return False
    count, period = rate.split("/", 1)
    return count.isdigit() and int(count) > 0 and period[:1] in ("s", "m", "h", "d")


def _check_default_policy(value: Any) -> list[CheckMessage]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            Error(
                "LIVECLASS_BOOKING_DEFAULT_POLICY must be a dict.",
                id="liveclass_booking.E005",
            )
        ]
    problems = []
    for key, item in value.items():
        if key not in DEFAULT_POLICY:
            problems.append(f"unknown key {key!r}")
            continue
        types = _POLICY_TYPES[key]
        wrong_type = not isinstance(item, types) or (bool not in types and isinstance(item, bool))
        if wrong_type:
            problems.append(f"{key} cannot be {item!r}")
        elif key in POLICY_BOUNDS and item is not None and not isinstance(item, bool):
            low, high = POLICY_BOUNDS[key]
            if not low <= item <= high:
                problems.append(f"{key} must be between {low} and {high}, not {item!r}")
    if not problems:
        return []
    return [
        Error(
            "LIVECLASS_BOOKING_DEFAULT_POLICY is invalid: " + "; ".join(problems) + ".",
            hint="Valid keys: " + ", ".join(DEFAULT_POLICY) + ".",
            id="liveclass_booking.E005",
        )
    ]


@register()
def check_databases(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001–W003: databases on which a concurrency guarantee is weaker than on PostgreSQL;
    E015: a SQLite-only option on another database.

    Reads connection settings only and makes no query, so it runs on a plain ``check``.
    """
    messages: list[CheckMessage] = []
    for alias in settings.DATABASES:
        messages.extend(sqlite_only_options(alias))
        if router.allow_migrate(alias, "liveclass_booking"):
            messages.extend(database_warnings(alias))
    return messages


def sqlite_only_options(alias: str) -> list[CheckMessage]:
    """E015: ``transaction_mode`` (recommended for SQLite) set on another database, where the
    driver refuses it and ``migrate`` fails."""
    connection = connections[alias]
    options = connection.settings_dict.get("OPTIONS") or {}
    if connection.vendor == "sqlite" or "transaction_mode" not in options:
        return []
    return [
        Error(
            f"Database {alias!r} ({connection.vendor}) has OPTIONS['transaction_mode'], an "
            "option of SQLite only: its driver refuses it.",
            hint="Set transaction_mode only when the ENGINE is SQLite.",
            id="liveclass_booking.E015",
        )
    ]


def database_warnings(alias: str) -> list[CheckMessage]:
    """Return the warnings for one database alias."""
    connection = connections[alias]
    vendor = connection.vendor
    if vendor == "postgresql":
        return []
    if vendor == "sqlite":
        mode = (connection.settings_dict.get("OPTIONS") or {}).get("transaction_mode")
        if str(mode or "").upper() != "IMMEDIATE":
            return [
                Warning(
                    f"Database {alias!r} is SQLite without transaction_mode 'IMMEDIATE': "
                    "concurrent bookings can fail with 'database is locked' instead of being "
                    "serialised.",
                    hint=f"Set DATABASES[{alias!r}]['OPTIONS']['transaction_mode'] = 'IMMEDIATE'.",
                    id="liveclass_booking.W001",
                )
            ]
        return []
    if vendor == "mysql":
        return [
            Warning(
                f"Database {alias!r} is MySQL/MariaDB, which creates neither partial unique "
                "nor exclusion constraints: a write that bypasses liveclass_booking.services "
                "(raw ORM or SQL) can create overlapping one-on-one bookings of a teacher or a "
                "second active booking of a student for one session. The services refuse both "
                "under row locks, also under concurrency.",
                hint="Change bookings only through liveclass_booking.services, with InnoDB "
                "tables under READ COMMITTED. Silence with SILENCED_SYSTEM_CHECKS once you "
                "accept this.",
                id="liveclass_booking.W002",
            )
        ]
    return [
        Warning(
            f"Database {alias!r} uses the {vendor!r} backend, on which the concurrency "
            "guarantees of liveclass_booking are not tested.",
            hint="PostgreSQL, SQLite and MySQL/MariaDB are supported.",
            id="liveclass_booking.W003",
        )
    ]
