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
