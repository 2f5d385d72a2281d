"""Shared fixtures. The suite runs unchanged on the default and the swapped models."""

from __future__ import annotations

import ipaddress
import os
import socket
from datetime import time, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from model_bakery import baker

from liveclass_booking.models import (
    TeacherAvailability,
    get_booking_model,
    get_course_model,
    get_session_model,
)


def _server_unreachable() -> str | None:
    """Why the PostgreSQL or MariaDB/MySQL server of the settings does not answer, or None."""
    db = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        import psycopg

        # The server's maintenance database, as Django uses it to create the test database
        # (the database the settings name need not exist); else the named one.
        error = None
        for dbname in ("postgres", db["NAME"]):
            try:
                psycopg.connect(
                    host=db["HOST"],
                    port=db["PORT"],
                    user=db["USER"],
                    password=db["PASSWORD"],
                    dbname=dbname,
                    connect_timeout=5,
                ).close()
            except psycopg.OperationalError as exc:
                error = str(exc).strip()
            else:
                return None
        return error
    import MySQLdb

    try:  # no database named: the test database is made by the run
        MySQLdb.connect(
            host=db["HOST"],
            port=int(db["PORT"]),
            user=db["USER"],
            password=db["PASSWORD"],
            connect_timeout=5,
        ).close()
    except MySQLdb.OperationalError as exc:
        return str(exc).strip()
    return None


SERVER_NAMES = {"postgresql": "PostgreSQL", "mysql": "MariaDB/MySQL"}

#: The only names a test may resolve: the suite talks to servers on this machine alone.
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}
_resolve = socket.getaddrinfo


def _local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    """``socket.getaddrinfo`` for local names and IP literals; any other name does not
    resolve. Calendar imports take URLs from input (the API tests, Schemathesis): no test
    may make them look up, let alone reach, another machine."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name not in _LOCAL_NAMES:
        try:
            ipaddress.ip_address(str(name).split("%")[0])
        except ValueError:
            message = f"{name}: tests resolve local names only"
            raise socket.gaierror(socket.EAI_NONAME, message) from None
    return _resolve(host, *args, **kwargs)


socket.getaddrinfo = _local_only


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    vendor = connection.vendor
    if vendor in SERVER_NAMES:
        problem = _server_unreachable()
        if problem:
            name = SERVER_NAMES[vendor]
            if os.environ.get("CI", "").lower() == "true":
                raise pytest.UsageError(f"CI=true and {name} does not answer: {problem}")
            skip = pytest.mark.skip(reason=f"{name} does not answer: {problem}")
            for item in items:
                item.add_marker(skip)
            return
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (TEST_DATABASE=postgres)")
    skip_server = pytest.mark.skip(
        reason="needs concurrent connections: TEST_DATABASE=postgres or mariadb"
    )
    for item in items:
        if "postgres" in item.keywords and vendor != "postgresql":
            item.add_marker(skip_pg)
        elif "concurrent" in item.keywords and vendor not in SERVER_NAMES:
            item.add_marker(skip_server)


def app_row_counts() -> dict[str, int]:
    """How many rows each model of the app has (the idempotency keys included), and the
    swapped-in course, session and booking models."""
    models = {
        *apps.get_app_config("liveclass_booking").get_models(),
        get_course_model(),
        get_session_model(),
        get_booking_model(),
    }
    return {model._meta.label: model._default_manager.count() for model in models}


@pytest.fixture
def user_model() -> Any:
    return get_user_model()


@pytest.fixture
def course_model() -> Any:
    return get_course_model()


@pytest.fixture
def session_model() -> Any:
    return get_session_model()


@pytest.fixture
def booking_model() -> Any:
    return get_booking_model()


def grant_teaching(user: Any) -> Any:
    """Give ``user`` the session model's add permission: the default ``can_teach`` rule."""
    from django.contrib.auth.models import Permission

    opts = get_session_model()._meta
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label=opts.app_label, codename=f"add_{opts.model_name}"
        )
    )
    return type(user).objects.get(pk=user.pk)  # a fresh instance: no stale permission cache


@pytest.fixture
def teacher(user_model: Any) -> Any:
    user = user_model.objects.create_user(username="teacher", password="pw", email="t@example.com")
    return grant_teaching(user)


@pytest.fixture
def other_student(user_model: Any) -> Any:
    return user_model.objects.create_user(username="other", password="pw", email="o@example.com")


@pytest.fixture
def student(user_model: Any) -> Any:
    return user_model.objects.create_user(username="student", password="pw", email="s@example.com")


@pytest.fixture
def staff(user_model: Any) -> Any:
    return user_model.objects.create_superuser(
        username="staff", password="pw", email="staff@example.com"
    )


@pytest.fixture
def open_all_week(teacher: Any) -> None:
    """The teacher takes lessons 08:00-22:00 Berlin time, every day."""
    for weekday in range(7):
        TeacherAvailability.objects.create(
            teacher=teacher,
            weekday=weekday,
            start_time=time(8),
            end_time=time(22),
            timezone="Europe/Berlin",
        )


@pytest.fixture
def course(course_model: Any) -> Any:
    return baker.make(course_model)


@pytest.fixture
def make_session(session_model: Any, teacher: Any, course: Any) -> Any:
    def make(**fields: Any) -> Any:
        start = fields.pop("start_at_utc", timezone.now() + timedelta(days=3))
        values = {
            "course": course,
            "teacher": teacher,
            "title": "Live class",
            "start_at_utc": start,
            "end_at_utc": start + timedelta(hours=1),
            "timezone_snapshot": "Europe/Berlin",
            "capacity": 10,
            **fields,
        }
        return session_model.objects.create(**values)

    return make


@pytest.fixture
def session(make_session: Any) -> Any:
    return make_session()


@pytest.fixture
def make_booking(booking_model: Any, session: Any, student: Any) -> Any:
    """Create a group booking row directly (no services): for constraint and admin tests."""

    def make(**fields: Any) -> Any:
        target = fields.pop("session", session)
        values = {
            "booking_type": "group_session",
            "session": target,
            "course": target.course,
            "teacher": target.teacher,
            "student_user": student,
            "start_at_utc": target.start_at_utc,
            "end_at_utc": target.end_at_utc,
            "status": "confirmed",
            **fields,
        }
        return booking_model.objects.create(**values)

    return make
