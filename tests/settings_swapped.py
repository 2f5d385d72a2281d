"""Test settings: Course, Session and Booking swapped for the models of ``tests.swapped``,
with a UUID-keyed custom user."""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.swapped"]

AUTH_USER_MODEL = "swapped.User"
LIVECLASS_BOOKING_COURSE_MODEL = "swapped.Course"
LIVECLASS_BOOKING_SESSION_MODEL = "swapped.ClassSession"
LIVECLASS_BOOKING_BOOKING_MODEL = "swapped.Booking"
