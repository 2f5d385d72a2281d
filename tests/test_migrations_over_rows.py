"""The shipped migrations applied over a database that already holds rows, not only over an
empty one: policy numbers out of the new bounds, pending bookings made before the approval
timeout existed, and (PostgreSQL) overlapping active lessons written before the exclusion
constraint. Default models only: a swapped booking model's columns come from its own app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from liveclass_booking.models import TeacherBookingPolicy, get_booking_model

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.LIVECLASS_BOOKING_BOOKING_MODEL != "liveclass_booking.LiveClassBooking",
        reason="the default booking model's migrations",
    ),
]

APP = "liveclass_booking"
BEFORE_BOUNDS = (APP, "0004_series_items_per_occurrence")
BOUNDS = (APP, "0005_bounds_and_approval_timeout")
BEFORE_EXCLUSION = (APP, "0002_booking_links_and_related")
EXCLUSION = (APP, "0003_one_on_one_overlap_exclusion")


def migrate_to(target: tuple[str, str]) -> Any:
    """Migrate the app to ``target`` and return the historical apps of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


@pytest.fixture
def back_to_latest() -> Iterator[None]:
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes(APP))


def people(apps: Any) -> tuple[Any, Any, Any]:
    user = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    course = apps.get_model(*settings.LIVECLASS_BOOKING_COURSE_MODEL.split("."))
    teacher = user.objects.create(username="t", password="x")
    student = user.objects.create(username="s", password="x")
    return teacher, student, course.objects.create(title="Course")


def lesson(
    apps: Any, teacher: Any, student: Any, course: Any, start: datetime, **fields: Any
) -> Any:
    booking = apps.get_model(APP, "LiveClassBooking")
    end = start + timedelta(hours=1)
    return booking.objects.create(
        booking_type="one_on_one",
        teacher=teacher,
        student_user=student,
        course=course,
        start_at_utc=start,
        end_at_utc=end,
        blocked_from_utc=start,
        blocked_until_utc=end,
        **{"status": "pending", **fields},
    )


@pytest.mark.usefixtures("back_to_latest")
def test_bounds_and_deadlines_over_existing_rows() -> None:
    apps = migrate_to(BEFORE_BOUNDS)
    teacher, student, course = people(apps)
    policy = apps.get_model(APP, "TeacherBookingPolicy")
    policy.objects.create(
        teacher=teacher,
        min_notice_hours=2**31 - 1,
        cancel_window_hours=100000,
        buffer_before_minutes=5000,
        buffer_after_minutes=30,
        max_bookings_per_day=5000,
    )
    now = timezone.now()
    soon = lesson(apps, teacher, student, course, now + timedelta(hours=5))
    later = lesson(apps, teacher, student, course, now + timedelta(days=30))
    decided = lesson(apps, teacher, student, course, now + timedelta(days=31), status="confirmed")

    migrate_to(BOUNDS)

    row = TeacherBookingPolicy.objects.get(teacher_id=teacher.pk)
    assert (
        row.min_notice_hours,
        row.cancel_window_hours,
        row.buffer_before_minutes,
        row.buffer_after_minutes,
        row.max_bookings_per_day,
        row.approval_timeout_hours,
    ) == (8760, 8760, 1440, 30, 1000, 48)
    # Only the columns that exist at this migration (later ones add more).
    present = ("pk", "status", "start_at_utc", "approval_expires_at")
    bookings = {b.pk: b for b in get_booking_model().objects.only(*present)}
    # A full timeout from the upgrade, never after the start; decided bookings get none.
    assert bookings[soon.pk].approval_expires_at == soon.start_at_utc
    deadline = bookings[later.pk].approval_expires_at
    assert now + timedelta(hours=48) <= deadline <= timezone.now() + timedelta(hours=48)
    assert bookings[decided.pk].approval_expires_at is None
    assert bookings[later.pk].current_status == "pending"  # not expired by the upgrade


@pytest.mark.postgres
@pytest.mark.usefixtures("back_to_latest")
def test_the_exclusion_constraint_stops_clearly_over_overlapping_lessons() -> None:
    apps = migrate_to(BEFORE_EXCLUSION)
    teacher, student, course = people(apps)
    start = datetime(2030, 1, 7, 10, tzinfo=UTC)
    first = lesson(apps, teacher, student, course, start)
    second = lesson(apps, teacher, student, course, start + timedelta(minutes=30))
    lesson(apps, teacher, student, course, start + timedelta(hours=3))  # no overlap

    with pytest.raises(RuntimeError) as refused:
        migrate_to(EXCLUSION)
    message = str(refused.value)
    assert f"bookings {first.pk} and {second.pk}" in message
    assert "nothing was changed" in message

    # Once a person has resolved the pair, the migration goes through.
    apps.get_model(APP, "LiveClassBooking").objects.filter(pk=second.pk).update(status="cancelled")
    migrate_to(EXCLUSION)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname LIKE %s", ["%1on1_no_overlap"]
        )
        assert cursor.fetchone()[0] == 1
