"""The host LMS's own models: a custom user, courses and enrollments."""

from django.contrib.auth.models import AbstractUser
from django.db import models

from liveclass_booking.validators import validate_timezone


class User(AbstractUser):
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    is_teacher = models.BooleanField(default=False)


class Course(models.Model):
    code = models.SlugField(max_length=30, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    teachers = models.ManyToManyField(User, related_name="courses_taught", blank=True)

    class Meta:
        ordering = ("code",)

    def __str__(self) -> str:
        return f"{self.code}: {self.title}"


class Enrollment(models.Model):
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrollments")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    enrolled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["student", "course"], name="lms_enrollment_unique")
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.course}"


# The LMS's Phase 1 booking tables, from before it used liveclass_booking. They stay for
# history; ``lms.legacy.Phase1Adapter`` maps them for ``liveclass_booking_import_legacy``.


class LegacyLiveClass(models.Model):
    """A Phase 1 group class: ``scheduled_start``, ``total_seats``, ``meeting_password``."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    teacher = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    scheduled_start = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField(default=60)
    total_seats = models.PositiveIntegerField()
    meeting_link = models.URLField(blank=True)
    meeting_password = models.CharField(max_length=100, blank=True)
    is_cancelled = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.title


class LegacyBooking(models.Model):
    """A Phase 1 seat in a group class."""

    STATUSES = [
        ("booked", "Booked"),
        ("cancelled", "Cancelled"),
        ("attended", "Attended"),
        ("absent", "Absent"),
    ]

    live_class = models.ForeignKey(LegacyLiveClass, on_delete=models.CASCADE, related_name="+")
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=STATUSES, default="booked")
    booked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.student} in {self.live_class}"


class LegacyOneOnOneBooking(models.Model):
    """A Phase 1 one-on-one lesson."""

    STATUSES = [
        ("requested", "Requested"),
        ("accepted", "Accepted"),
        ("rejected", "Rejected"),
        ("cancelled", "Cancelled"),
        ("completed", "Completed"),
        ("missed", "Missed"),
    ]

    teacher = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    student = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    scheduled_start = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField(default=60)
    status = models.CharField(max_length=20, choices=STATUSES, default="requested")
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.student} with {self.teacher} at {self.scheduled_start:%Y-%m-%d %H:%M}"
