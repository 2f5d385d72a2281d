"""Settings of the RQ worker that tests/test_task_backends.py starts.

The dispatcher processes' settings (tests/settings_dispatch.py: the suite's models and
database, mail over SMTP to the test's server) with django-rq installed and the RQ backend of
django-tasks-rq as the tasks backend, its queue on the Redis database the test claimed
(``RQ_REDIS_URL``).
"""

import os

from tests.settings_dispatch import *  # noqa: F403
from tests.settings_dispatch import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_rq"]
TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
RQ_QUEUES = {"default": {"URL": os.environ["RQ_REDIS_URL"]}}
