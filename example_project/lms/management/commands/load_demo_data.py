"""Load believable demo data: teachers in three time zones, students, courses, a fortnight of
group sessions, weekly availability, policies, a few bookings and two recurring series."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from liveclass_booking import services
from liveclass_booking.choices import ExceptionKind
from liveclass_booking.models import (
    AvailabilityException,
    TeacherAvailability,
    TeacherBookingPolicy,
)
from liveclass_booking.recurrence import Recurrence
from lms.models import Course, Enrollment

PASSWORD = "demo1234"

TEACHERS = [
    # username, name, zone, course code, course title, local class time
    ("amira", "Amira Schulz", "Europe/Berlin", "german-a1", "German for Beginners", time(17, 0)),
    ("ben", "Ben Carter", "America/New_York", "algebra-2", "Algebra II", time(18, 30)),
    ("chitra", "Chitra Rao", "Asia/Kolkata", "python-101", "Python from Scratch", time(19, 0)),
]
STUDENTS = [
    ("lena", "Lena Vogel", "Europe/Berlin"),
    ("marco", "Marco Rossi", "Europe/Rome"),
    ("sofia", "Sofia Lopez", "America/Mexico_City"),
    ("yuki", "Yuki Tanaka", "Asia/Tokyo"),
    ("omar", "Omar Haddad", "Africa/Cairo"),
    ("priya", "Priya Nair", "Asia/Kolkata"),
]


def local(day: date, at: time, zone: str) -> datetime:
    """An aware datetime at local wall time ``at`` on ``day`` in ``zone``, in UTC."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(ZoneInfo("UTC"))


class Command(BaseCommand):
    help = "Load demo users, courses, sessions, availability and bookings."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="Delete earlier demo data and load it afresh."
        )

    def handle(self, *args: Any, reset: bool = False, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(username="admin").exists() and not reset:
            self.stdout.write("Demo data is already loaded (use --reset to load it afresh).")
        else:
            with transaction.atomic():
                if reset:
                    usernames = ["admin"] + [t[0] for t in TEACHERS] + [s[0] for s in STUDENTS]
                    Course.objects.filter(code__in=[t[3] for t in TEACHERS]).delete()
                    user_model.objects.filter(username__in=usernames).delete()
                self._load()
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        site = "http://127.0.0.1:8000"
        self.stdout.write(
            f"\nStaff: log in at {site}/admin/ as admin / admin (sees everything).\n"
            f"Teachers and students: log in to the browsable API at {site}/api-auth/login/"
            "?next=/api/booking/\n"
            f"  amira, ben, chitra / {PASSWORD}   (teachers in Berlin, New York, Kolkata)\n"
            f"  lena, marco, sofia, yuki, omar, priya / {PASSWORD}   (students)\n"
            f"The API takes the same names with HTTP Basic: curl -u lena:{PASSWORD} "
            f"{site}/api/booking/sessions/\n"
            f"Its schema and Swagger UI: {site}/api/docs/\n"
        )

    def _load(self) -> None:
        user_model = get_user_model()
        user_model.objects.create_superuser("admin", "admin@example.com", "admin")
        students = [
            user_model.objects.create_user(
                username,
                f"{username}@example.com",
                PASSWORD,
                first_name=name.split()[0],
                last_name=name.split()[1],
                timezone=zone,
            )
            for username, name, zone in STUDENTS
        ]
        today = timezone.now().date()
        sessions_by_teacher = {}
        for username, name, zone, code, title, class_time in TEACHERS:
            teacher = user_model.objects.create_user(
                username,
                f"{username}@example.com",
                PASSWORD,
                first_name=name.split()[0],
                last_name=name.split()[1],
                timezone=zone,
                is_teacher=True,
                is_staff=False,
            )
            course = Course.objects.create(code=code, title=title)
            course.teachers.add(teacher)
            for student in students:
                Enrollment.objects.create(student=student, course=course)
            TeacherBookingPolicy.objects.create(
                teacher=teacher,
                course=None,
                requires_approval_for_one_on_one=True,
                min_notice_hours=12,
                cancel_window_hours=24,
                buffer_after_minutes=10,
                max_bookings_per_day=4,
            )
            for weekday in range(5):  # Monday to Friday, 09:00-12:00 local
                TeacherAvailability.objects.create(
                    teacher=teacher,
                    weekday=weekday,
                    start_time=time(9),
                    end_time=time(12),
                    timezone=zone,
                )
            AvailabilityException.objects.create(
                teacher=teacher,
                date=today + timedelta(days=7),
                kind=ExceptionKind.UNAVAILABLE,
                timezone=zone,
                reason="Conference day",
            )
            sessions = []
            for offset in range(1, 15):  # a fortnight of weekday classes
                day = today + timedelta(days=offset)
                if day.weekday() >= 5:
                    continue
                start = local(day, class_time, zone)
                sessions.append(
                    services.create_session(
                        teacher=teacher,
                        course=course,
                        title=f"{title} — live class",
                        start_at_utc=start,
                        end_at_utc=start + timedelta(minutes=60),
                        capacity=6,
                        meeting_provider="custom",
                        meeting_link=f"https://meet.example.com/{code}-{offset}",
                    )
                )
            sessions_by_teacher[username] = (teacher, course, zone, sessions)

        # A few group bookings: the first session of each course fills up, others get one or two.
        for _teacher, _course, _zone, sessions in sessions_by_teacher.values():
            for session, takers in ((sessions[0], students), (sessions[1], students[:2])):
                for student in takers:
                    services.book_group_session(student=student, session=session)
        # One pending one-on-one request inside Amira's Berlin morning window.
        teacher, course, zone, _sessions = sessions_by_teacher["amira"]
        day = today + timedelta(days=3)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = local(day, time(10), zone)
        services.request_one_on_one(
            student=students[0],
            teacher=teacher,
            course=course,
            start_at_utc=start,
            end_at_utc=start + timedelta(minutes=45),
            note="Could we practise the dative case?",
        )
        # Recurring series: Lena's weekly Thursday lesson with Amira for six weeks (the
        # conference day, if a Thursday, is skipped), and Marco's place in Ben's Wednesday
        # class for six weeks: the sessions that exist are booked, the later ones wait for Ben
        # to schedule them and are booked when he does.
        services.create_series(
            student=students[0],
            teacher=teacher,
            course=course,
            series_type="one_on_one_series",
            rule=Recurrence(
                frequency="weekly", days_of_week="TH", start_date=today + timedelta(days=2),
                start_time=time(11), timezone=zone, duration_minutes=45, occurrence_count=6,
            ),
            accept_partial=True,
        )  # fmt: skip
        ben, algebra, ny, _sessions = sessions_by_teacher["ben"]
        services.create_series(
            student=students[1],
            teacher=ben,
            course=algebra,
            series_type="group_series",
            rule=Recurrence(
                frequency="weekly", days_of_week="WE", start_date=today + timedelta(days=1),
                start_time=time(18, 30), timezone=ny, duration_minutes=60, occurrence_count=6,
            ),
            accept_partial=True,
        )  # fmt: skip
