"""A host's own models swapped in for Course, Session and Booking: a course keyed by strings
such as ``course-v1:Org+Number+Run`` and a UUID-keyed user."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models

from liveclass_booking.abstract import AbstractLiveClassBooking, AbstractLiveClassSession


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    timezone = models.CharField(max_length=64, default="UTC")


def course_key() -> str:
    """A new course key in Open edX's form, ``course-v1:{org}+{number}+{run}``."""
    return f"course-v1:LiveOrg+C{uuid.uuid4().hex[:10]}+2030_T1"


class Course(models.Model):
    """A host course that does not derive from the library's course, keyed by a string as
    Open edX's course keys are (its ``CourseOverview`` has a ``CharField`` primary key)."""

    id = models.CharField(primary_key=True, max_length=255, default=course_key)
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class ClassSession(AbstractLiveClassSession):
    room = models.CharField(max_length=50, blank=True)

    class Meta(AbstractLiveClassSession.Meta):
        pass


class Booking(AbstractLiveClassBooking):
    invoice_reference = models.CharField(max_length=50, blank=True)

    class Meta(AbstractLiveClassBooking.Meta):
        pass
