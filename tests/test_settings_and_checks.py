"""The settings object and the system checks (docs/settings.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings

import liveclass_booking
from liveclass_booking.checks import check_databases, check_models, check_settings
from liveclass_booking.conf import booking_settings
from liveclass_booking.models import get_booking_model, get_course_model, get_session_model

#: What the database of this run warns about (W002 on MariaDB/MySQL: no partial constraints).
DATABASE_WARNINGS = ["liveclass_booking.W002"] if connection.vendor == "mysql" else []


def ids(messages: list[Any]) -> list[str]:
    return sorted(m.id for m in messages if m.id.startswith("liveclass_booking."))


class TestSettings:
    def test_defaults(self) -> None:
        assert booking_settings.WAITLIST_OFFER_TTL == timedelta(hours=12)
        assert (
            booking_settings.POLICY_RESOLVER == "liveclass_booking.policies.DefaultPolicyResolver"
        )
        assert booking_settings.NOTIFIER == "liveclass_booking.notifications.EmailNotifier"
        assert booking_settings.TASK_BACKEND == "default"
        assert booking_settings.DEFAULT_POLICY == {
            "requires_approval_for_one_on_one": True,
            "requires_approval_for_group": False,
            "min_notice_hours": 24,
            "cancel_window_hours": 24,
            "buffer_before_minutes": 0,
            "buffer_after_minutes": 0,
            "max_bookings_per_day": None,
            "approval_timeout_hours": 48,
        }
        assert booking_settings.LIMITS == {
            "seats_per_booking": 10,
            "active_bookings_per_student": 200,
            "pending_requests_per_teacher": 10,
            "open_waitlist_entries_per_student": 20,
            "active_series_per_student": 10,
            "feed_tokens_per_user": 10,
        }
        assert booking_settings.CALENDAR_FEED_PAST == timedelta(days=30)
        assert booking_settings.CALENDAR_FEED_FUTURE == timedelta(days=365)
        assert booking_settings.CALENDAR_FEED_KEEP_CANCELLED == timedelta(days=30)
        assert booking_settings.CALENDAR_FEED_REFRESH == timedelta(hours=1)
        with override_settings(LIVECLASS_BOOKING_THROTTLE_RATES=None):  # the suite sets them
            assert booking_settings.THROTTLE_RATES == {
                "book": "30/min",
                "waitlist": "30/min",
                "series": "10/min",
                "sessions": "60/min",
                "feed": "60/min",
            }

    def test_values_are_read_live(self) -> None:
        with override_settings(
            LIVECLASS_BOOKING_WAITLIST_OFFER_TTL=timedelta(hours=2),
            LIVECLASS_BOOKING_NOTIFIER=None,
            LIVECLASS_BOOKING_TASK_BACKEND="bookings",
        ):
            assert booking_settings.WAITLIST_OFFER_TTL == timedelta(hours=2)
            assert booking_settings.NOTIFIER is None
            assert booking_settings.TASK_BACKEND == "bookings"
        assert booking_settings.WAITLIST_OFFER_TTL == timedelta(hours=12)

    @override_settings(LIVECLASS_BOOKING_DEFAULT_POLICY={"min_notice_hours": 2})
    def test_partial_default_policy_is_merged(self) -> None:
        policy = booking_settings.DEFAULT_POLICY
        assert policy["min_notice_hours"] == 2
        assert policy["cancel_window_hours"] == 24

    def test_model_settings_always_exist_on_django_settings(self) -> None:
        # Migrations read them from django.conf.settings even when the host set none.
        for name in ("COURSE", "SESSION", "BOOKING"):
            assert getattr(settings, f"LIVECLASS_BOOKING_{name}_MODEL")

    def test_model_helpers_return_the_configured_models(self) -> None:
        assert get_course_model()._meta.label == booking_settings.COURSE_MODEL
        assert get_session_model()._meta.label == booking_settings.SESSION_MODEL
        assert get_booking_model()._meta.label == booking_settings.BOOKING_MODEL
        assert not get_session_model()._meta.swapped

    @pytest.mark.parametrize("value", ["nope.Course", "not-a-label"])
    def test_model_helpers_explain_a_bad_setting(self, value: str) -> None:
        with (
            override_settings(LIVECLASS_BOOKING_SESSION_MODEL=value),
            pytest.raises(ImproperlyConfigured, match="LIVECLASS_BOOKING_SESSION_MODEL"),
        ):
            get_session_model()

    def test_version_and_type_marker(self) -> None:
        from importlib.resources import files

        assert liveclass_booking.__version__
        assert files("liveclass_booking").joinpath("py.typed").is_file()


class TestChecks:
    @pytest.mark.django_db  # Django 6.1's field checks ask the database for its features.
    def test_default_configuration_is_clean(self) -> None:
        assert ids(run_checks()) == DATABASE_WARNINGS

    @pytest.mark.parametrize("value", ["nope.Course", "not-a-label"])
    def test_unloadable_model_setting_is_e001(self, value: str) -> None:
        with override_settings(LIVECLASS_BOOKING_COURSE_MODEL=value):
            assert ids(check_models()) == ["liveclass_booking.E001"]

    def test_swapped_model_without_the_abstract_base_is_e004(self) -> None:
        with override_settings(LIVECLASS_BOOKING_BOOKING_MODEL="auth.Group"):
            assert ids(check_models()) == ["liveclass_booking.E004"]

    def test_any_course_model_is_accepted(self) -> None:
        with override_settings(LIVECLASS_BOOKING_COURSE_MODEL="auth.Group"):
            assert ids(check_models()) == []

    def test_unimportable_resolver_is_e002(self) -> None:
        with override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.nowhere.Resolver"):
            assert ids(check_settings()) == ["liveclass_booking.E002"]

    @pytest.mark.parametrize("path", ["tests.resolvers.NotAResolver", "datetime.timedelta"])
    def test_wrong_typed_resolver_is_e003(self, path: str) -> None:
        with override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER=path):
            assert ids(check_settings()) == ["liveclass_booking.E003"]

    def test_resolver_subclass_is_accepted(self) -> None:
        with override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.NobodyBooks"):
            assert ids(check_settings()) == []

    @pytest.mark.parametrize(
        "policy",
        [
            ["min_notice_hours"],
            {"min_notice": 3},
            {"min_notice_hours": "24"},
            {"min_notice_hours": -1},
            {"requires_approval_for_group": 1},
            {"max_bookings_per_day": 0},
            {"buffer_after_minutes": True},
            {"buffer_after_minutes": 1441},
            {"min_notice_hours": 2**31},
            {"max_bookings_per_day": 1001},
            {"approval_timeout_hours": 0},
        ],
    )
    def test_invalid_default_policy_is_e005(self, policy: Any) -> None:
        with override_settings(LIVECLASS_BOOKING_DEFAULT_POLICY=policy):
            assert ids(check_settings()) == ["liveclass_booking.E005"]

    def test_valid_partial_default_policy_is_accepted(self) -> None:
        policy = {"max_bookings_per_day": 3, "requires_approval_for_one_on_one": False}
        with override_settings(LIVECLASS_BOOKING_DEFAULT_POLICY=policy):
            assert ids(check_settings()) == []

    @pytest.mark.parametrize(
        "limits",
        [
            ["seats_per_booking"],
            {"seats": 3},
            {"seats_per_booking": 0},
            {"seats_per_booking": "3"},
            {"active_series_per_student": True},
        ],
    )
    def test_invalid_limits_are_e009(self, limits: Any) -> None:
        with override_settings(LIVECLASS_BOOKING_LIMITS=limits):
            assert ids(check_settings()) == ["liveclass_booking.E009"]

    def test_partial_limits_and_none_are_accepted(self) -> None:
        limits = {"seats_per_booking": 4, "active_series_per_student": None}
        with override_settings(LIVECLASS_BOOKING_LIMITS=limits):
            assert ids(check_settings()) == []

    @pytest.mark.parametrize(
        "rates", [["book"], {"bookings": "3/min"}, {"book": "fast"}, {"book": "0/min"}]
    )
    def test_invalid_throttle_rates_are_e010(self, rates: Any) -> None:
        with override_settings(LIVECLASS_BOOKING_THROTTLE_RATES=rates):
            assert ids(check_settings()) == ["liveclass_booking.E010"]

    def test_throttle_rates_and_none_are_accepted(self) -> None:
        rates = {"book": "5/hour", "series": None, "sessions": "100/day"}
        with override_settings(LIVECLASS_BOOKING_THROTTLE_RATES=rates):
            assert ids(check_settings()) == []

    @pytest.mark.parametrize("path", ["tests.nowhere.Notifier", "tests.resolvers.PeopleAbroad"])
    def test_a_notifier_that_cannot_serve_is_e011(self, path: str) -> None:
        with override_settings(LIVECLASS_BOOKING_NOTIFIER=path):
            assert ids(check_settings()) == ["liveclass_booking.E011"]

    @pytest.mark.parametrize(
        "offsets",
        [timedelta(hours=1), [3600], [timedelta(0)], [timedelta(days=40)], "24h"],
    )
    def test_bad_reminder_offsets_are_e012(self, offsets: Any) -> None:
        with override_settings(LIVECLASS_BOOKING_REMINDER_OFFSETS=offsets):
            assert ids(check_settings()) == ["liveclass_booking.E012"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("NOTIFICATION_MAX_ATTEMPTS", 0),
            ("NOTIFICATION_MAX_ATTEMPTS", True),
            ("NOTIFICATION_MAX_ATTEMPTS", 101),
            ("NOTIFICATION_RETRY_DELAY", 60),
            ("NOTIFICATION_LEASE", timedelta(0)),
            ("DISPATCH_INTERVAL", 1),
            ("DISPATCH_INTERVAL", timedelta(seconds=-1)),
            ("DISPATCH_INTERVAL", timedelta(hours=2)),
        ],
    )
    def test_bad_delivery_settings_are_e013(self, name: str, value: Any) -> None:
        with override_settings(**{f"LIVECLASS_BOOKING_{name}": value}):
            assert ids(check_settings()) == ["liveclass_booking.E013"]

    @pytest.mark.parametrize("interval", [timedelta(0), timedelta(seconds=5), timedelta(hours=1)])
    def test_dispatch_intervals_from_0_to_an_hour_pass(self, interval: timedelta) -> None:
        with override_settings(LIVECLASS_BOOKING_DISPATCH_INTERVAL=interval):
            assert ids(check_settings()) == []

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("CALENDAR_FEED_PAST", timedelta(days=-1)),
            ("CALENDAR_FEED_PAST", 30),
            ("CALENDAR_FEED_FUTURE", timedelta(0)),
            ("CALENDAR_FEED_FUTURE", timedelta(days=4000)),
            ("CALENDAR_FEED_KEEP_CANCELLED", None),
            ("CALENDAR_FEED_REFRESH", timedelta(minutes=1)),
            ("CALENDAR_FEED_REFRESH", timedelta(days=8)),
        ],
    )
    def test_bad_calendar_feed_settings_are_e014(self, name: str, value: Any) -> None:
        with override_settings(**{f"LIVECLASS_BOOKING_{name}": value}):
            assert ids(check_settings()) == ["liveclass_booking.E014"]

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("BUSY_SYNC_INTERVAL", timedelta(seconds=30)),
            ("BUSY_SYNC_INTERVAL", 900),
            ("BUSY_LOOKAHEAD", timedelta(days=800)),
            ("BUSY_FETCH_TIMEOUT", 0),
            ("BUSY_FETCH_TIMEOUT", "10"),
            ("BUSY_MAX_BYTES", 5e6),
            ("BUSY_MAX_BYTES", 1000),
            ("BUSY_MAX_SOURCES", 0),
            ("BUSY_MAX_SOURCES", True),
        ],
    )
    def test_bad_busy_import_settings_are_e016(self, name: str, value: Any) -> None:
        with override_settings(**{f"LIVECLASS_BOOKING_{name}": value}):
            assert ids(check_settings()) == ["liveclass_booking.E016"]

    def test_busy_import_settings_within_bounds_are_accepted(self) -> None:
        with override_settings(
            LIVECLASS_BOOKING_BUSY_SYNC_INTERVAL=timedelta(hours=1),
            LIVECLASS_BOOKING_BUSY_LOOKAHEAD=timedelta(days=365),
            LIVECLASS_BOOKING_BUSY_FETCH_TIMEOUT=2.5,
            LIVECLASS_BOOKING_BUSY_MAX_BYTES=20_000_000,
            LIVECLASS_BOOKING_BUSY_MAX_SOURCES=3,
        ):
            assert ids(check_settings()) == []

    def test_notifications_off_and_no_reminders_are_accepted(self) -> None:
        with override_settings(
            LIVECLASS_BOOKING_NOTIFIER=None, LIVECLASS_BOOKING_REMINDER_OFFSETS=[]
        ):
            assert ids(check_settings()) == []

    @pytest.mark.parametrize("ttl", [3600, timedelta(0), timedelta(hours=-1)])
    def test_bad_offer_ttl_is_e006(self, ttl: Any) -> None:
        with override_settings(LIVECLASS_BOOKING_WAITLIST_OFFER_TTL=ttl):
            assert ids(check_settings()) == ["liveclass_booking.E006"]

    @pytest.mark.parametrize("ttl", [86400, timedelta(hours=23), timedelta(0)])
    def test_short_or_bad_idempotency_key_ttl_is_e007(self, ttl: Any) -> None:
        with override_settings(LIVECLASS_BOOKING_IDEMPOTENCY_KEY_TTL=ttl):
            assert ids(check_settings()) == ["liveclass_booking.E007"]

    def test_longer_idempotency_key_ttl_is_accepted(self) -> None:
        with override_settings(LIVECLASS_BOOKING_IDEMPOTENCY_KEY_TTL=timedelta(days=7)):
            assert ids(check_settings()) == []

    @pytest.mark.django_db
    def test_check_command_stops_on_an_error(self) -> None:
        with (
            override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.nowhere.Resolver"),
            pytest.raises(SystemCheckError, match=r"liveclass_booking\.E002"),
        ):
            call_command("check")


class TestDatabaseWarnings:
    def test_configured_test_database_has_no_warning_but_w002(self) -> None:
        # The test settings use PostgreSQL, SQLite with IMMEDIATE transactions, or MariaDB.
        assert ids(check_databases()) == DATABASE_WARNINGS

    def test_w002_names_what_only_the_services_refuse(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(connection, "vendor", "mysql")
        monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})  # SQLite's, not theirs
        [warning] = check_databases()
        assert "bypass" in warning.msg
        assert "overlapping one-on-one" in warning.msg
        assert "second active booking" in warning.msg
        assert "liveclass_booking.services" in warning.hint

    def test_sqlite_without_immediate_transactions_is_w001(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if connection.vendor != "sqlite":
            pytest.skip("SQLite-specific")
        monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})
        assert ids(check_databases()) == ["liveclass_booking.W001"]

    @pytest.mark.parametrize(
        ("vendor", "expected"),
        [("mysql", "liveclass_booking.W002"), ("oracle", "liveclass_booking.W003")],
    )
    def test_weaker_backends_are_named(
        self, monkeypatch: pytest.MonkeyPatch, vendor: str, expected: str
    ) -> None:
        monkeypatch.setattr(connection, "vendor", vendor)
        monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})  # SQLite's, not theirs
        assert ids(check_databases()) == [expected]


class TestSqliteOnlyOptions:
    def test_transaction_mode_on_another_database_is_e015(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(connection, "vendor", "postgresql")
        monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"transaction_mode": "IMMEDIATE"})
        assert ids(check_databases()) == ["liveclass_booking.E015"]

    def test_the_readme_setting_is_accepted_where_it_belongs(self) -> None:
        if connection.vendor != "sqlite":
            assert "transaction_mode" not in (connection.settings_dict.get("OPTIONS") or {})
        assert "liveclass_booking.E015" not in ids(check_databases())
