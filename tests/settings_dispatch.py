"""Settings of the dispatcher processes that tests/test_notification_delivery.py starts.

The settings module the suite runs with (``DISPATCH_BASE_SETTINGS``, default
``tests.settings``; the database comes from its ``TEST_DATABASE`` and ``PG*`` variables), with
mail sent over SMTP to the test's server on 127.0.0.1 (``EMAIL_PORT``) and the calendar domain
the test expects in Message-IDs and UIDs (``LIVECLASS_BOOKING_CALENDAR_DOMAIN``).
"""

import os
from importlib import import_module

_base = import_module(os.environ.get("DISPATCH_BASE_SETTINGS", "tests.settings"))
globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["EMAIL_PORT"])
EMAIL_TIMEOUT = 30
LIVECLASS_BOOKING_CALENDAR_DOMAIN = os.environ.get(
    "LIVECLASS_BOOKING_CALENDAR_DOMAIN", "liveclass-booking.invalid"
)
