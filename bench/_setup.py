"""Start Django for a benchmark on a throw-away database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def django_on(database: str) -> Iterator[None]:
    """Configure Django with the test settings on a fresh database, migrated; drop it after."""
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    name = None
    if database == "postgres":
        import psycopg

        name = f"lcb_bench_{uuid.uuid4().hex[:8]}"
        params = {
            "host": os.environ.get("PGHOST", "127.0.0.1"),
            "port": os.environ.get("PGPORT", "5432"),
            "user": os.environ.get("PGUSER", "postgres"),
            "password": os.environ.get("PGPASSWORD", ""),
            "dbname": os.environ.get("PGDATABASE", "test"),
        }
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["TEST_DATABASE"] = "postgres"
        os.environ["PGDATABASE"] = name
    else:
        tmp = tempfile.mkdtemp()
        os.environ["TEST_DATABASE"] = "sqlite"
        os.environ["SQLITE_PATH"] = str(Path(tmp) / "bench.sqlite3")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    try:
        yield
    finally:
        from django.db import connections

        connections.close_all()
        if name is not None:
            import psycopg

            with psycopg.connect(**params, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def open_all_week(teacher: object) -> None:
    """Weekly windows 00:00-23:59 Berlin time, every day."""
    from datetime import time

    from liveclass_booking.models import TeacherAvailability

    for weekday in range(7):
        TeacherAvailability.objects.create(
            teacher=teacher,
            weekday=weekday,
            start_time=time(0),
            end_time=time(23, 59),
            timezone="Europe/Berlin",
        )


def add_lessons(teacher: object, student: object, course: object, start, spacing, count: int):  # type: ignore[no-untyped-def]
    """``count`` confirmed 20-minute lessons with 5-minute buffers, ``spacing`` apart."""
    from datetime import timedelta

    from liveclass_booking.models import get_booking_model

    model = get_booking_model()
    buffer, length = timedelta(minutes=5), timedelta(minutes=20)
    model.objects.bulk_create(
        [
            model(
                booking_type="one_on_one",
                course=course,
                teacher=teacher,
                student_user=student,
                status="confirmed",
                start_at_utc=start + i * spacing,
                end_at_utc=start + i * spacing + length,
                blocked_from_utc=start + i * spacing - buffer,
                blocked_until_utc=start + i * spacing + length + buffer,
            )
            for i in range(count)
        ],
        batch_size=500,
    )
