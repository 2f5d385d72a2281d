"""Test settings: the default models.

``TEST_DATABASE=postgres`` runs the suite on PostgreSQL: ``DATABASE_URL``
(``postgres://user:password@host:port/name``) or the libpq variables ``PGHOST``, ``PGPORT``,
``PGUSER``, ``PGPASSWORD``, ``PGDATABASE`` (defaults 127.0.0.1:5432, user postgres, name
liveclass). Django creates its own test database, ``test_<name>``: none needs to exist.
``TEST_DATABASE=mariadb`` (or ``mysql``) runs it on MariaDB or MySQL (``MYSQL_HOST``,
``MYSQL_PORT``, ``MYSQL_USER``, ``MYSQL_PASSWORD``, ``MYSQL_DATABASE``; defaults
127.0.0.1:3306, user root, no password), utf8mb4 under READ COMMITTED.
Anything else runs it on SQLite.
"""

import os
from importlib.util import find_spec

SECRET_KEY = "liveclass-booking-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "liveclass_booking",
]
# The database tasks backend's app (django-tasks-db, the tasks-db extra), when it is installed
# with a tasks framework to build on: the test database then has its table, and
# tests/test_task_backends.py runs its worker on it.
if find_spec("django_tasks_db") and (find_spec("django.tasks") or find_spec("django_tasks")):
    INSTALLED_APPS.append("django_tasks_db")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

TEST_DATABASE = os.environ.get("TEST_DATABASE", "sqlite").lower()


def postgres_from_env() -> dict[str, object]:
    """PostgreSQL from ``DATABASE_URL`` (postgres://user:password@host:port/name) when set,
    else from the libpq variables. The suite uses its own test database, ``test_`` + the name
    (created and dropped by the test runner through the server's maintenance database), so the
    named database need not exist."""
    from urllib.parse import unquote, urlsplit

    url = os.environ.get("DATABASE_URL", "")
    parts = urlsplit(url) if url.startswith(("postgres://", "postgresql://")) else None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": (parts.hostname if parts else None) or os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": str((parts.port if parts else None) or os.environ.get("PGPORT", "5432")),
        "USER": unquote(parts.username or "")
        if parts and parts.username
        else os.environ.get("PGUSER", "postgres"),
        "PASSWORD": unquote(parts.password or "") if parts else os.environ.get("PGPASSWORD", ""),
        "NAME": (unquote(parts.path.lstrip("/")) if parts else "")
        or os.environ.get("PGDATABASE", "liveclass"),
        "OPTIONS": {"connect_timeout": 5},
    }


if TEST_DATABASE == "postgres":
    DATABASES = {"default": postgres_from_env()}
elif TEST_DATABASE in ("mariadb", "mysql"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MYSQL_PORT", "3306"),
            "USER": os.environ.get("MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("MYSQL_PASSWORD", ""),
            "NAME": os.environ.get("MYSQL_DATABASE", "test"),
            # READ COMMITTED is Django's default on MySQL/MariaDB and what the services assume
            # (docs/concurrency.md); named here so that the suite does not depend on it.
            "OPTIONS": {
                "charset": "utf8mb4",
                "isolation_level": "read committed",
                "connect_timeout": 5,
            },
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", ":memory:"),
            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
            "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH") or None},
        }
    }

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "liveclass_booking (test project)",
    "VERSION": "test",
    # As docs/api.md advises hosts: request and response components apart (generated clients).
    "COMPONENT_SPLIT_REQUEST": True,
}

# The write throttles are on by default; the suite sends many requests per user within a
# minute (and freezes the clock), so they are off here and tested on their own.
LIVECLASS_BOOKING_THROTTLE_RATES = dict.fromkeys(["book", "waitlist", "series", "sessions"])

# Outbox events enqueue a dispatcher pass on commit. Here the queue only records it (tests
# run the dispatcher themselves, or switch to the immediate backend to test the enqueueing).
try:
    import django.tasks  # noqa: F401

    _TASKS_PACKAGE = "django.tasks"
except ImportError:
    _TASKS_PACKAGE = "django_tasks"
TASKS = {"default": {"BACKEND": f"{_TASKS_PACKAGE}.backends.dummy.DummyBackend"}}
