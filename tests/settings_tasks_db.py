"""Settings of the database tasks worker that tests/test_task_backends.py starts.

The dispatcher processes' settings (tests/settings_dispatch.py: the suite's models and
database, django-tasks-db's app among them, mail over SMTP to the test's server) with the
database backend of django-tasks-db as the tasks backend.
"""

from tests.settings_dispatch import *  # noqa: F403

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
