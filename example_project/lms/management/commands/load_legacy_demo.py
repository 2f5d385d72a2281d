"""Fill the Phase 1 tables (``LegacyLiveClass``, ``LegacyBooking``,
``LegacyOneOnOneBooking``) with a few rows to import, two of them with problems the import
reports. Run ``load_demo_data`` first: the rows belong to its teachers and students."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from lms.models import Course, LegacyBooking, LegacyLiveClass, LegacyOneOnOneBooking

TEACHERS = [("amira", "german-a1"), ("ben", "algebra-2"), ("chitra", "python-101")]


class Command(BaseCommand):
    help = "Load Phase 1 (legacy) classes, bookings and lessons for the legacy import demo."

    def handle(self, *args: Any, **options: Any) -> None:
        if LegacyLiveClass.objects.exists():
            self.stdout.write("Legacy demo data is already loaded.")
            return
        users = {user.username: user for user in get_user_model().objects.all()}
        if not all(name in users for name, _ in TEACHERS):
            raise CommandError("Run load_demo_data first.")
        with transaction.atomic():
            self._load(users)
        self.stdout.write(self.style.SUCCESS("Legacy demo data loaded."))

    def _load(self, users: dict[str, Any]) -> None:
        today = timezone.now().date()

        def at(days: int, hour: int) -> datetime:
            return datetime.combine(today + timedelta(days=days), time(hour), tzinfo=UTC)

        for index, (name, code) in enumerate(TEACHERS):
            teacher, course = users[name], Course.objects.get(code=code)

            def live_class(title: str, start: datetime, seats: int) -> LegacyLiveClass:
                return LegacyLiveClass.objects.create(
                    course=course,  # noqa: B023
                    teacher=teacher,  # noqa: B023
                    title=title,
                    scheduled_start=start,
                    total_seats=seats,
                    meeting_link="https://meet.example.com/phase1",
                    meeting_password="phase1",
                )

            past = live_class(f"{course.title} (Phase 1)", at(-10, 5 + index), 4)
            for student, status in (
                ("lena", "attended"),
                ("marco", "absent"),
                ("sofia", "cancelled"),
            ):
                LegacyBooking.objects.create(live_class=past, student=users[student], status=status)
            coming = live_class(f"{course.title} (Phase 1 revision)", at(20, 5 + index), 3)
            for student in ("yuki", "omar"):
                LegacyBooking.objects.create(live_class=coming, student=users[student])
            for days, status in ((-9, "completed"), (21, "accepted"), (22, "requested")):
                LegacyOneOnOneBooking.objects.create(
                    teacher=teacher,
                    student=users["lena"],
                    course=course,
                    scheduled_start=at(days, 6 + index),
                    status=status,
                )
        # Two rows the import refuses: a second booking of a class with one seat, and a
        # status the adapter does not know.
        amira, german = users["amira"], Course.objects.get(code="german-a1")
        small = LegacyLiveClass.objects.create(
            course=german,
            teacher=amira,
            title="Pronunciation clinic",
            scheduled_start=at(23, 5),
            total_seats=1,
        )
        LegacyBooking.objects.create(live_class=small, student=users["priya"])
        LegacyBooking.objects.create(live_class=small, student=users["lena"])
        LegacyOneOnOneBooking.objects.create(
            teacher=amira,
            student=users["marco"],
            course=german,
            scheduled_start=at(24, 5),
            status="on_hold",
        )
