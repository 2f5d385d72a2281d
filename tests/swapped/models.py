"""A host's own models swapped in for Course, Session and Booking, with a UUID-keyed user."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models

from liveclass_booking.abstract import AbstractLiveClassBooking, AbstractLiveClassSession


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    timezone = models.CharField(max_length=64, default="UTC")


class Course(models.Model):
    """A host course that does not derive from the library's course."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
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
