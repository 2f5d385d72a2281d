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


def add_lessons(  # type: ignore[no-untyped-def]
    teacher: object, student: object, course: object, start, spacing, count: int, **fields
) -> list:
    """``count`` confirmed 20-minute lessons with 5-minute buffers, ``spacing`` apart; ``fields``
    sets other columns of every row (or replaces ``status``). Returns the rows, with keys."""
    from datetime import timedelta

    from liveclass_booking.models import get_booking_model

    model = get_booking_model()
    buffer, length = timedelta(minutes=5), timedelta(minutes=20)
    fields = {"status": "confirmed", **fields}
    return model.objects.bulk_create(
        [
            model(
                booking_type="one_on_one",
                course=course,
                teacher=teacher,
                student_user=student,
                start_at_utc=start + i * spacing,
                end_at_utc=start + i * spacing + length,
                blocked_from_utc=start + i * spacing - buffer,
                blocked_until_utc=start + i * spacing + length + buffer,
                **fields,
            )
            for i in range(count)
        ],
        batch_size=500,
    )


def add_sessions(  # type: ignore[no-untyped-def]
    teacher: object, course: object, start, spacing, count: int, students=()
) -> tuple[list, list]:
    """``count`` one-hour group sessions of ``teacher``, ``spacing`` apart, each with a
    confirmed booking of every one of ``students`` (written directly, seats counted).
    Returns the sessions and their bookings."""
    from datetime import timedelta

    from liveclass_booking.models import get_booking_model, get_session_model

    session_model, booking_model = get_session_model(), get_booking_model()
    students = list(students)
    sessions = session_model.objects.bulk_create(
        [
            session_model(
                course=course,
                teacher=teacher,
                title=f"Group class {i + 1}",
                start_at_utc=start + i * spacing,
                end_at_utc=start + i * spacing + timedelta(hours=1),
                timezone_snapshot="Europe/Berlin",
                meeting_link=f"https://meet.example.com/class-{i + 1}",
                meeting_id=f"{100000 + i}",
                meeting_passcode="secret",
                capacity=len(students) + 5,
                seats_taken=len(students),
            )
            for i in range(count)
        ],
        batch_size=500,
    )
    bookings = booking_model.objects.bulk_create(
        [
            booking_model(
                booking_type="group_session",
                session=session,
                course=course,
                teacher=teacher,
                student_user=student,
                status="confirmed",
                start_at_utc=session.start_at_utc,
                end_at_utc=session.end_at_utc,
            )
            for session in sessions
            for student in students
        ],
        batch_size=500,
    )
    return sessions, bookings


class RawSeats:
    """The least work a seat can be booked with, as raw SQL: the conditional UPDATE that takes
    the seat and the INSERT of the booking row, on any DB-API cursor (Django's or psycopg's)
    inside the caller's transaction. This is the ceiling the services are compared with
    (bench/contention.py, bench/load.py). The INSERT names every column of the booking model,
    with the model's defaults, so it keeps up with new columns."""

    def __init__(self) -> None:
        from django.db import connection

        from liveclass_booking.models import get_booking_model, get_session_model

        quote = connection.ops.quote_name
        sessions, self.model = get_session_model(), get_booking_model()
        self.fields = [f for f in self.model._meta.concrete_fields if not f.primary_key]
        self.update = (
            f"UPDATE {quote(sessions._meta.db_table)} SET seats_taken = seats_taken + 1 "
            f"WHERE {quote(sessions._meta.pk.column)} = %s AND status = 'scheduled' "
            "AND start_at_utc > %s AND seats_taken + 1 <= capacity"
        )
        columns = ", ".join(quote(f.column) for f in self.fields)
        values = ", ".join(["%s"] * len(self.fields))
        self.insert = (
            f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) VALUES ({values})"
        )
        self._rows: dict[object, list[object]] = {}

    def _row(self, session) -> list[object]:  # type: ignore[no-untyped-def]
        """The booking row of a seat in ``session``, prepared once per session."""
        from django.db import connection

        if session.pk not in self._rows:
            booking = self.model(
                booking_type="group_session",
                session_id=session.pk,
                course_id=session.course_id,
                teacher_id=session.teacher_id,
                start_at_utc=session.start_at_utc,
                end_at_utc=session.end_at_utc,
                status="confirmed",
                seats_reserved=1,
            )
            self._rows[session.pk] = [
                f.get_db_prep_save(getattr(booking, f.attname), connection) for f in self.fields
            ]
        return self._rows[session.pk]

    def book(self, cursor, session, student_pk, now) -> bool:  # type: ignore[no-untyped-def]
        """Take a seat of ``session`` for ``student_pk``: False, inserting nothing, when it
        has none left (the caller then commits or rolls back the empty transaction)."""
        cursor.execute(self.update, [session.pk, now])
        if cursor.rowcount != 1:
            return False
        values = {"student_user": student_pk, "created_at": now, "updated_at": now}
        row = [
            values.get(f.name, value)
            for f, value in zip(self.fields, self._row(session), strict=True)
        ]
        cursor.execute(self.insert, row)
        return True


def machine_speed() -> float:
    """Milliseconds a fixed piece of pure Python takes here now (the median of 30 runs): a
    baseline printed beside a bench's figures, since a shared or virtual machine's speed
    changes from minute to minute (about 3.3 ms on a quiet two-core development machine)."""
    import statistics
    import time

    timings = []
    for _ in range(30):
        began = time.perf_counter()
        sum(i * i for i in range(100_000))
        timings.append((time.perf_counter() - began) * 1000)
    return statistics.median(timings)


TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: Without /proc (not Linux) the CPU figures are left out.
HAVE_PROC = Path("/proc/stat").exists()


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    if not HAVE_PROC:
        return 0.0, 0.0
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICK, sum(values) / TICK
