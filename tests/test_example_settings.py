"""The example project's database settings from its environment (docs/performance.md): how
each process holds its PostgreSQL connections. The pool and ``CONN_MAX_AGE`` themselves are
tested under concurrent bookings in tests/test_connection_handling.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SETTINGS = Path(__file__).resolve().parents[1] / "example_project" / "config" / "settings.py"


@pytest.fixture(scope="module")
def example_settings() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_project_settings", SETTINGS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def entry(example_settings: ModuleType, **env: str) -> dict[str, object]:
    db = example_settings.database_from_url("postgres://lms:secret@127.0.0.1:5432/lms")
    example_settings.connection_handling(db, env)
    return db


def test_a_connection_per_request_by_default(example_settings: ModuleType) -> None:
    db = entry(example_settings)
    assert db["CONN_MAX_AGE"] == 0
    assert db["CONN_HEALTH_CHECKS"] is False
    assert "OPTIONS" not in db


def test_the_pool_with_its_sizes(example_settings: ModuleType) -> None:
    db = entry(example_settings, DATABASE_POOL="1", DATABASE_POOL_MAX_SIZE="8")
    assert db["OPTIONS"] == {"pool": {"min_size": 2, "max_size": 8, "timeout": 10.0}}
    assert db["CONN_MAX_AGE"] == 0  # Django refuses a pool with persistent connections


def test_kept_connections_with_health_checks(example_settings: ModuleType) -> None:
    db = entry(example_settings, DATABASE_CONN_MAX_AGE="60", DATABASE_CONN_HEALTH_CHECKS="1")
    assert (db["CONN_MAX_AGE"], db["CONN_HEALTH_CHECKS"]) == (60, True)
    assert "OPTIONS" not in db


def test_the_pool_and_kept_connections_exclude_each_other(example_settings: ModuleType) -> None:
    with pytest.raises(ValueError, match="exclude each other"):
        entry(example_settings, DATABASE_POOL="1", DATABASE_CONN_MAX_AGE="60")
