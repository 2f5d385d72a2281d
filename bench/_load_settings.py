"""The example project's settings as bench/load.py serves them under gunicorn.

Everything comes from ``example_project/config/settings.py`` (the database and how each
process keeps its connections from ``DATABASE_URL``, ``DATABASE_POOL`` and
``DATABASE_CONN_MAX_AGE``); this module changes only what a production host changes too:

- ``DEBUG`` off (with it on, Django keeps every query of a request in memory);
- notifications: each booking still writes its outbox rows in its own transaction, but the
  dispatcher that sends them runs in a worker of its own in production, not inside the
  request: the tasks backend here only records the enqueued pass. ``LOAD_DISPATCH_INLINE=1``
  keeps the example project's immediate backend, which runs a dispatcher pass after every
  commit inside the request (mail then goes nowhere: the dummy mail backend);
- logging: the expected refusals (409) are not logged, errors (5xx) are, to the server's
  error log.
"""

import os

from config.settings import *  # noqa: F403

DEBUG = False

try:
    import django.tasks  # noqa: F401

    _TASKS_PACKAGE = "django.tasks"
except ImportError:
    _TASKS_PACKAGE = "django_tasks"

if os.environ.get("LOAD_DISPATCH_INLINE") != "1":
    TASKS = {"default": {"BACKEND": f"{_TASKS_PACKAGE}.backends.dummy.DummyBackend"}}
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False},
        "liveclass_booking": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
