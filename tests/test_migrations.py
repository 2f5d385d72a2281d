"""Shipped migrations: complete in this configuration, and usable by a brand-new host project
and by the example project, on the database the suite runs on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from liveclass_booking.models import get_booking_model, get_session_model

ROOT = Path(__file__).resolve().parents[1]
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_only_the_active_swappable_models_have_tables() -> None:
    tables = set(connection.introspection.table_names())
    swapped = get_session_model()._meta.label != "liveclass_booking.LiveClassSession"
    assert get_session_model()._meta.db_table in tables
    assert get_booking_model()._meta.db_table in tables
    assert ("liveclass_booking_liveclasssession" in tables) is not swapped
    assert ("liveclass_booking_liveclassbooking" in tables) is not swapped


@pytest.fixture
def database_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a subprocess using a fresh database of the kind the suite runs on."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    if not ON_POSTGRES:
        env["SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
        env.pop("DATABASE_URL", None)
        yield env
        return
    import psycopg

    db = settings.DATABASES["default"]
    name = f"lcb_host_{uuid.uuid4().hex[:12]}"
    params = {
        "host": db["HOST"],
        "port": db["PORT"],
        "user": db["USER"],
        "password": db["PASSWORD"],
        "dbname": db["NAME"],
    }
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    env["DATABASE_URL"] = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{name}"
    try:
        yield env
    finally:
        with psycopg.connect(**params, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


HOST_SETTINGS = """
import os
from urllib.parse import urlsplit

SECRET_KEY = "host"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_filters",
    "school",
    "liveclass_booking",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
ROOT_URLCONF = "host_urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LIVECLASS_BOOKING_COURSE_MODEL = "school.Course"
if os.environ.get("DATABASE_URL"):
    url = urlsplit(os.environ["DATABASE_URL"])
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"),
        "USER": url.username, "PASSWORD": url.password or "", "HOST": url.hostname,
        "PORT": str(url.port),
    }}
else:
    DATABASES = {"default": {
        "ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SQLITE_PATH"],
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
    }}
"""

HOST_MODELS = """
from django.db import models


class Course(models.Model):
    name = models.CharField(max_length=100)
"""


@pytest.mark.slow
def test_a_brand_new_host_with_its_own_course_and_links_to_bookings_migrates(
    tmp_path: Path, database_env: dict[str, str]
) -> None:
    project = tmp_path / "host"
    (project / "school" / "migrations").mkdir(parents=True)
    (project / "host_settings.py").write_text(textwrap.dedent(HOST_SETTINGS))
    (project / "host_urls.py").write_text(
        "from django.contrib import admin\nfrom django.urls import path\n"
        "urlpatterns = [path('admin/', admin.site.urls)]\n"
    )
    (project / "school" / "__init__.py").write_text("")
    (project / "school" / "migrations" / "__init__.py").write_text("")
    (project / "school" / "models.py").write_text(textwrap.dedent(HOST_MODELS))
    env = {**database_env, "DJANGO_SETTINGS_MODULE": "host_settings", "PYTHONPATH": str(project)}
    django = ["-m", "django"]

    run([*django, "makemigrations", "school"], project, env)
    run([*django, "migrate", "--noinput"], project, env)
    assert "no issues" in run([*django, "check"], project, env)
    assert "No changes detected" in run(
        [*django, "makemigrations", "--check", "--dry-run"], project, env
    )
    # The shipped migrations also unapply and re-apply cleanly.
    run([*django, "migrate", "liveclass_booking", "zero", "--noinput"], project, env)
    run([*django, "migrate", "--noinput"], project, env)
    tables = run(
        [
            *django,
            "shell",
            "-c",
            "from django.db import connection; "
            "print(sorted(connection.introspection.table_names()))",
        ],
        project,
        env,
    )
    assert "liveclass_booking_course" not in tables  # swapped out for school.Course
    assert "liveclass_booking_liveclasssession" in tables


@pytest.mark.slow
def test_example_project_migrates_and_loads_demo_data(database_env: dict[str, str]) -> None:
    example = ROOT / "example_project"
    env = {**database_env, "DJANGO_SETTINGS_MODULE": "config.settings"}
    run(["manage.py", "migrate", "--noinput"], example, env)
    out = run(["manage.py", "load_demo_data"], example, env)
    assert "log in at http://127.0.0.1:8000/admin/ as admin" in out
    assert "http://127.0.0.1:8000/api-auth/login/?next=/api/booking/" in out
    assert "no issues" in run(["manage.py", "check"], example, env)
    assert "No changes detected" in run(
        ["manage.py", "makemigrations", "--check", "--dry-run"], example, env
    )
    counts = run(
        [
            "manage.py",
            "shell",
            "-c",
            "from liveclass_booking.models import get_session_model as s, get_booking_model as b;"
            "from django.db.models import Sum;"
            "print(s().objects.count(), b().objects.count(),"
            " s().objects.aggregate(t=Sum('seats_taken'))['t'],"
            " b().objects.filter(booking_type='group_session').count())",
        ],
        example,
        env,
    )
    sessions, bookings, seats, group_bookings = map(int, counts.split()[-4:])
    assert sessions >= 20
    assert bookings > group_bookings > 0
    assert seats == group_bookings  # the cached seat count matches the bookings

    # The demo's people use the API as printed: a student with HTTP Basic books a seat, the
    # teacher sees it by name, and both get the browsable API after logging in.
    used = run(
        [
            "manage.py",
            "shell",
            "-c",
            textwrap.dedent(
                """
                import base64
                from django.test import Client
                def basic(name):
                    pair = base64.b64encode(f"{name}:demo1234".encode()).decode()
                    return Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Basic {pair}")
                lena = basic("lena")
                sessions = lena.get("/api/booking/sessions/").json()["results"]
                free = [x for x in sessions if x["seats_available"] and x["status"] == "scheduled"]
                body = {"booking_type": "group_session", "session": free[-1]["id"]}
                made = lena.post("/api/booking/bookings/", body, content_type="application/json")
                teacher = free[-1]["teacher_name"]
                login = Client(HTTP_HOST="localhost")
                ok = login.login(username="amira", password="demo1234")
                page = login.get("/api/booking/bookings/", HTTP_ACCEPT="text/html")
                print(made.status_code, bool(teacher), ok, page.status_code,
                      made.json()["student_name"])
                """
            ),
        ],
        example,
        env,
    )
    last = used.strip().splitlines()[-1]
    status, named, logged_in, page, student_name = last.split(maxsplit=4)
    assert (status, named, logged_in, page) == ("201", "True", "True", "200"), used
    assert student_name == "Lena Vogel"  # the display name, not the username


@pytest.mark.slow
def test_example_project_schema_validates_and_is_served(database_env: dict[str, str]) -> None:
    example = ROOT / "example_project"
    env = {**database_env, "DJANGO_SETTINGS_MODULE": "config.settings"}
    run(
        ["manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull],
        example,
        env,
    )
    served = run(
        [
            "manage.py",
            "shell",
            "-c",
            textwrap.dedent(
                r"""
                import json, re
                from django.contrib.staticfiles import finders
                from django.test import Client
                c = Client(HTTP_HOST="localhost")
                s = c.get("/api/schema/?format=json")
                d = c.get("/api/docs/")
                b = c.get("/api/booking/sessions/", HTTP_ACCEPT="text/html")
                paths = json.loads(s.content)["paths"]
                page = d.content.decode()
                hosts = re.findall(r"(?:src|href)=[\"'](?:https?:)?//([^/\"']+)", page)
                assets = re.findall(r"src=[\"']/static/([^\"'?]+)", page)
                found = [bool(finders.find(a)) for a in assets]
                print(s.status_code, d.status_code, b.status_code, len(paths),
                      "/api/booking/bookings/{id}/approve/" in paths,
                      b.headers.get("WWW-Authenticate", "-").split()[0],
                      ",".join(hosts) or "-", len(assets), all(found))
                """
            ),
        ],
        example,
        env,
    )
    schema, docs, browsable, paths, has_approve, scheme, hosts, assets, ok = served.split()[-9:]
    assert (schema, docs, has_approve) == ("200", "200", "True")
    # Anonymous users get a 401 that names the scheme to log in with (Basic comes first in
    # the example project's authentication classes).
    assert (browsable, scheme) == ("401", "Basic")
    assert int(paths) >= 15
    # Swagger UI loads nothing from another host: its scripts are served here (sidecar).
    assert hosts == "-", served
    assert int(assets) >= 2
    assert ok == "True"
