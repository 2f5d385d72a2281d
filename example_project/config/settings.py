"""Settings of the example host LMS.

SQLite by default; set ``DATABASE_URL=postgres://user:password@host:port/name`` for PostgreSQL,
and ``DATABASE_POOL`` or ``DATABASE_CONN_MAX_AGE`` for how each process keeps its connections
(see ``connection_handling`` below and docs/performance.md).
The lines marked "liveclass_booking" are all a host needs to add.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",  # liveclass_booking
    "django_filters",  # liveclass_booking
    "drf_spectacular",  # OpenAPI schema and Swagger UI (the "openapi" extra)
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from here, not from a CDN
    "lms",
    "liveclass_booking",  # liveclass_booking
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def database_from_url(url: str) -> dict[str, object]:
    """Turn ``postgres://user:pass@host:port/name`` into a Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"Only postgres:// URLs are supported here, not {parts.scheme!r}.")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


def connection_handling(entry: dict[str, object], env: Mapping[str, str]) -> None:
    """How a process holds its PostgreSQL connections, from the environment.

    ``DATABASE_POOL=1``: psycopg's connection pool (``OPTIONS["pool"]``, one pool per
    process, shared by its threads; needs ``psycopg[pool]``), sized by
    ``DATABASE_POOL_MIN_SIZE`` (default 2) and ``DATABASE_POOL_MAX_SIZE`` (default 4), with
    ``DATABASE_POOL_TIMEOUT`` seconds (default 10) to wait for a free connection. Otherwise
    ``DATABASE_CONN_MAX_AGE`` seconds (default 0: a new connection per request) keeps each
    thread's connection open between requests. ``DATABASE_CONN_HEALTH_CHECKS=1`` checks a
    kept or pooled connection before it is used again.
    """
    pool = env.get("DATABASE_POOL", "") not in {"", "0"}
    max_age = int(env.get("DATABASE_CONN_MAX_AGE", "0"))
    if pool and max_age:
        raise ValueError("DATABASE_POOL and DATABASE_CONN_MAX_AGE exclude each other.")
    entry["CONN_MAX_AGE"] = max_age
    entry["CONN_HEALTH_CHECKS"] = env.get("DATABASE_CONN_HEALTH_CHECKS", "0") == "1"
    if pool:
        entry["OPTIONS"] = {
            "pool": {
                "min_size": int(env.get("DATABASE_POOL_MIN_SIZE", "2")),
                "max_size": int(env.get("DATABASE_POOL_MAX_SIZE", "4")),
                "timeout": float(env.get("DATABASE_POOL_TIMEOUT", "10")),
            }
        }


if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": database_from_url(os.environ["DATABASE_URL"])}
    connection_handling(DATABASES["default"], os.environ)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Serialises writers so concurrent bookings queue instead of failing.
            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
        }
    }

AUTH_USER_MODEL = "lms.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# liveclass_booking: plug in the host's own course model and enrollment-aware policies.
# Model settings must be set before the first migrate.
LIVECLASS_BOOKING_COURSE_MODEL = "lms.Course"
LIVECLASS_BOOKING_POLICY_RESOLVER = "lms.policies.EnrollmentPolicyResolver"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    # Basic first: a request without (or with bad) credentials is a 401 whose WWW-Authenticate
    # names the scheme. With SessionAuthentication first DRF has no challenge to send and
    # answers 403. The browsable API still logs in through the session (api-auth/login/).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.BasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Example LMS: live-class booking API",
    "DESCRIPTION": "The liveclass_booking REST API as mounted by the example LMS.",
    "VERSION": "1.0.0",
    # The docs page loads its scripts from this server (drf-spectacular-sidecar), so they
    # work offline and under a strict Content-Security-Policy.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Separate request and response components (BookingCreateRequest beside BookingCreate):
    # generated clients then never ask for a read-only field (a session's id, seats_taken)
    # in a request body, and a field the server fills in is optional there.
    "COMPONENT_SPLIT_REQUEST": True,
}

# Notifications (liveclass_booking): the demo writes every mail as a file a person can read,
# in example_project/sent-mail/. `make demo` runs the dispatcher beside the server
# (`manage.py liveclass_booking_dispatch --loop`), which also sends the reminders. No TASKS
# setting: the immediate backend sends a change's mails right after it commits.
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = BASE_DIR / "sent-mail"
DEFAULT_FROM_EMAIL = "lms@localhost"
