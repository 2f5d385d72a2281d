"""Schemathesis over the OpenAPI schema (docs/api.md): no request yields a 5xx, and every answer
conforms to the schema (a documented status code, content type and body).

The API runs in-process: Schemathesis calls the test project's WSGI application, in the test's
thread and on its database connection, so requests see the data the ``world`` fixture makes.
Each operation runs as a student and as a teacher (HTTP Basic auth) against a world with
policies, weekly availability, sessions in several states and bookings; generated ids, foreign
keys and times are often replaced by real ones (and request data often completed into valid
data) so that many requests get past 404 and validation into the services.

Not part of the normal run: pyproject's ``addopts`` deselect the ``schemathesis`` marker. Run
with ``pytest -m schemathesis tests/test_api_schemathesis.py`` (add
``--ds=tests.settings_swapped`` for the swapped models) or ``tox -e schemathesis``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from django.core.wsgi import get_wsgi_application
from django.test import override_settings
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from model_bakery import baker

from liveclass_booking import services
from liveclass_booking.calendar.sources import create_busy_source
from liveclass_booking.calendar.tokens import create_token
from liveclass_booking.models import TeacherAvailability, TeacherBookingPolicy
from liveclass_booking.recurrence import Recurrence

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [
    pytest.mark.schemathesis,
    # The in-process app runs on the test's own connection, but Django's WSGI handler closes
    # it at the end of each request (close_old_connections; Django's test Client disconnects
    # that, Schemathesis' WSGI client does not), which a test wrapped in a transaction does
    # not survive. So no wrapping transaction: requests commit as in production, on_commit
    # handlers (the booking signals) run, and the tables are flushed after each test.
    pytest.mark.django_db(transaction=True),
]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

API = "/api/booking/"  # where tests/urls.py mounts the API
HOST = "localhost"  # the Host header of Schemathesis' WSGI transport

# Loaded at collection. tests/settings.py allows no host (pytest-django adds "testserver" for
# the tests), and the WSGI transport sends Host: localhost.
with override_settings(ALLOWED_HOSTS=[HOST]):
    SCHEMA = schemathesis.openapi.from_wsgi(
        f"{reverse('schema')}?format=json", get_wsgi_application()
    )
# Only this app's operations: the test project's schema also documents its own views (the
# schema view, a host's customised API) under other prefixes.
SCHEMA = SCHEMA.include(path_regex=f"^{API}")
# The credentials are ours (one user per test); generated ones would only replace them.
SCHEMA.config.generation.update(with_security_parameters=False)
# Coverage (boundary and negative values per parameter) and fuzzing. The examples phase cannot
# run with ``@SCHEMA.given()``; the schema has no examples anyway.
SCHEMA.config.phases.update(phases=["coverage", "fuzzing"])


def as_json(pk: Any) -> Any:
    """A primary key as JSON renders it (UUIDs become strings)."""
    return pk if isinstance(pk, int) else str(pk)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class World:
    """Real values for generated requests: ids per resource (the path segment after the API
    root) and per foreign key, free one-hour slots of the teacher (ISO pairs) and the time
    the world was made."""

    ids: dict[str, list[Any]]
    slots: list[tuple[str, str]]
    now: datetime


@pytest.fixture
def world(
    settings: Any,
    teacher: Any,
    student: Any,
    other_student: Any,
    course: Any,
    course_model: Any,
    make_session: Any,
    make_booking: Any,
) -> World:
    """The teacher's policies (a default one, one for a second course) and daily 08:00-20:00
    (Berlin) windows; group sessions that are open, nearly full, soon (inside the cancel
    window), cancelled and running; ``student`` holds group bookings (one in the running
    session), a pending and a confirmed 1:1 lesson; ``other_student`` holds group bookings
    that ``student`` cannot see; ``student`` waits for a seat in one full session and holds
    an offer in another."""
    settings.ALLOWED_HOSTS = [HOST]
    now = timezone.now()
    other_course = baker.make(course_model)
    policies = [
        TeacherBookingPolicy.objects.create(
            teacher=teacher,
            min_notice_hours=2,
            cancel_window_hours=12,
            buffer_after_minutes=10,
            max_bookings_per_day=6,
        ),
        TeacherBookingPolicy.objects.create(
            teacher=teacher, course=other_course, requires_approval_for_group=True
        ),
    ]
    windows = [
        TeacherAvailability.objects.create(
            teacher=teacher,
            weekday=weekday,
            start_time=time(8),
            end_time=time(20),
            timezone="Europe/Berlin",
        )
        for weekday in range(7)
    ]
    day = timedelta(days=1)
    sessions = [
        open_session := make_session(start_at_utc=now + 3 * day, capacity=10),
        small := make_session(start_at_utc=now + 4 * day, capacity=2, title="Small group"),
        soon := make_session(start_at_utc=now + timedelta(hours=5), title="Soon"),
        cancelled := make_session(start_at_utc=now + 5 * day, title="Cancelled"),
        running := make_session(
            start_at_utc=now - timedelta(minutes=10), title="Running", seats_taken=1
        ),
    ]
    services.cancel_session(cancelled, actor=teacher, reason="ill")
    hour = timedelta(hours=1)
    slots = services.free_slots(teacher, course, now + 2 * day, now + 9 * day, hour)
    assert len(slots) > 20, slots

    def lesson(at: datetime) -> Any:
        return services.request_one_on_one(
            student=student, teacher=teacher, course=course, start_at_utc=at, end_at_utc=at + hour
        )

    bookings = [
        services.book_group_session(student=student, session=open_session, note="hi"),
        services.book_group_session(student=other_student, session=open_session),
        services.book_group_session(student=other_student, session=small),
        services.book_group_session(student=student, session=soon),
        lesson(slots[0]),
        services.approve_booking(lesson(slots[3]), actor=teacher),
        make_booking(session=running),  # the services refuse to book a running session
    ]
    # Full one-seat sessions: ``student`` waits on one and holds a seat offer on the other.
    waiting_on = make_session(start_at_utc=now + 6 * day, capacity=1, title="Full")
    offered_on = make_session(start_at_utc=now + 7 * day, capacity=1, title="Full, offer")
    for full in (waiting_on, offered_on):
        bookings.append(services.book_group_session(student=other_student, session=full))
    entries = [
        services.join_waitlist(student=student, session=full) for full in (waiting_on, offered_on)
    ]
    services.cancel_booking(bookings[-1], actor=teacher)
    sessions += [waiting_on, offered_on]
    # A group series waiting for sessions the teacher has not created yet, and a weekly
    # one-on-one series booked at 09:00 Berlin.
    later = (now + 20 * day).date()
    series = [
        services.create_series(
            student=student, teacher=teacher, course=course, series_type=kind,
            rule=Recurrence(
                frequency="weekly", start_date=later, start_time=at, timezone="Europe/Berlin",
                duration_minutes=60, occurrence_count=3,
            ),
            accept_partial=True,
        ).series
        for kind, at in (("group_series", time(19, 30)), ("one_on_one_series", time(9)))
    ]  # fmt: skip
    session_ids = [as_json(s.pk) for s in sessions]
    tokens = [create_token(user, "phone") for user in (student, teacher)]
    # The teacher's busy calendars, on loopback: without
    # LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES a sync refuses them before connecting.
    busy = [
        create_busy_source(actor=None, teacher=teacher, kind="ics", url=f"{LOOPBACK}/{name}.ics")
        for name in ("work", "club")
    ]
    return World(
        ids={
            "sessions": session_ids,
            "bookings": [as_json(b.pk) for b in bookings],
            "policies": [as_json(p.pk) for p in policies],
            "availability": [as_json(w.pk) for w in windows],
            "waitlist": [as_json(e.pk) for e in entries],
            "series": [as_json(one.pk) for one in series],
            "calendar_tokens": [as_json(token.pk) for token, _ in tokens],
            "feed_secrets": [secret for _, secret in tokens],
            "busy-sources": [as_json(source.pk) for source in busy],
            "session": session_ids,
            "teacher": [as_json(teacher.pk), as_json(student.pk)],
            "course": [as_json(course.pk), as_json(other_course.pk)],
        },
        slots=[(iso(at), iso(at + hour)) for at in slots[6:]],
        now=now,
    )


# Realistic values ------------------------------------------------------------------------------

Draw = Callable[[Any], Any]


def often(draw: Draw) -> bool:
    """True about 3 times in 4 (Hypothesis favours the simplest value, 0)."""
    return bool(draw(st.integers(0, 3)) != 3)


def one_of_ids(draw: Draw, world: World, name: str) -> Any:
    return draw(st.sampled_from(world.ids[name]))


def slot(draw: Draw, world: World) -> dict[str, str]:
    start, end = draw(st.sampled_from(world.slots))
    return {"start_at_utc": start, "end_at_utc": end}


def new_booking(draw: Draw, world: World) -> dict[str, Any]:
    if draw(st.booleans()):
        return {
            "booking_type": "group_session",
            "session": one_of_ids(draw, world, "session"),
            "seats_reserved": draw(st.integers(1, 3)),
        }
    return {
        "booking_type": "one_on_one",
        "teacher": one_of_ids(draw, world, "teacher"),
        "course": one_of_ids(draw, world, "course"),
        **slot(draw, world),
    }


def new_session(draw: Draw, world: World) -> dict[str, Any]:
    return {
        "course": one_of_ids(draw, world, "course"),
        "title": "Conversation club",
        "capacity": draw(st.integers(1, 20)),
        **slot(draw, world),
    }


def reschedule(draw: Draw, world: World) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"session": one_of_ids(draw, world, "session")}
    return slot(draw, world)


def slot_query(draw: Draw, world: World) -> dict[str, Any]:
    start = world.now + timedelta(days=draw(st.integers(-1, 8)))
    return {
        "teacher": one_of_ids(draw, world, "teacher"),
        "start": iso(start),
        "end": iso(start + timedelta(days=draw(st.integers(1, 8)))),
        "duration": draw(st.sampled_from([30, 60, 90])),
    }


def window(draw: Draw, world: World) -> dict[str, Any]:
    start = draw(st.integers(0, 22))
    return {
        "weekday": draw(st.integers(0, 6)),
        "start_time": f"{start:02}:00",
        "end_time": f"{draw(st.integers(start + 1, 23)):02}:30",
        "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])),
    }


def rule(draw: Draw, world: World) -> dict[str, Any]:
    """A weekly rule a few weeks out, sometimes crossing a DST change or ending by date."""
    start = world.now.date() + timedelta(days=draw(st.integers(-2, 60)))
    ending: dict[str, Any] = (
        {"occurrence_count": draw(st.integers(1, 6))}
        if often(draw)
        else {"until_date": (start + timedelta(days=draw(st.integers(0, 60)))).isoformat()}
    )
    return {
        "frequency": draw(st.sampled_from(["weekly", "biweekly", "monthly"])),
        "interval": 1,
        "days_of_week": "",
        "rrule": "",
        "start_date": start.isoformat(),
        "start_time": f"{draw(st.integers(0, 23)):02}:{draw(st.sampled_from([0, 30])):02}",
        "timezone": draw(st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"])),
        "duration_minutes": draw(st.sampled_from([30, 60])),
        **ending,
    }


def new_series(draw: Draw, world: World) -> dict[str, Any]:
    return {
        "type": draw(st.sampled_from(["one_on_one_series", "group_series"])),
        "teacher": one_of_ids(draw, world, "teacher"),
        "course": one_of_ids(draw, world, "course"),
        "accept_partial": draw(st.booleans()),
        **rule(draw, world),
    }


def session_run(draw: Draw, world: World) -> dict[str, Any]:
    return {
        "course": one_of_ids(draw, world, "course"),
        "title": "Weekly club",
        "capacity": draw(st.integers(1, 5)),
        **rule(draw, world),
    }


#: Where generated busy calendars point: loopback, which a sync refuses before connecting.
LOOPBACK = "http://127.0.0.1:9/feeds"


def busy_source(draw: Draw, world: World) -> dict[str, Any]:
    return {
        "kind": "ics",
        "url": f"{LOOPBACK}/{draw(st.sampled_from(['a', 'b']))}.ics",
        "username": "",
        "password": "",
    }


def policy(draw: Draw, world: World) -> dict[str, Any]:
    return {"course": draw(st.sampled_from([None, *world.ids["course"]]))}


# Valid request data per operation ("METHOD path after the API root"), merged into what
# Schemathesis generated (which keeps its other fields).
COMPLETIONS: dict[str, Callable[[Draw, World], dict[str, Any]]] = {
    "POST bookings/": new_booking,
    "POST bookings/{id}/reschedule/": reschedule,
    "POST sessions/": new_session,
    "PATCH sessions/{id}/": lambda draw, world: slot(draw, world),
    "GET slots/": slot_query,
    "POST availability/": window,
    "PUT availability/{id}/": window,
    "PATCH availability/{id}/": window,
    "POST policies/": policy,
    "POST series/": new_series,
    "POST series/{id}/extend/": lambda draw, world: {"occurrence_count": draw(st.integers(3, 8))},
    "POST sessions/recurring/": session_run,
    "PUT policies/{id}/": policy,
    "POST busy-sources/": busy_source,
    "PUT busy-sources/{id}/": busy_source,
}


# Valid ISO 8601 that is awkward for the server: out of range once in UTC, or an offset that
# PostgreSQL refuses (beyond 15:59). Generated datetimes rarely are.
AWKWARD_DATETIMES = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2027-01-04T09:00:00-17:23",
    "2027-01-04T09:00:00+23:59",
]
DATETIME_NAMES = ("start_at_utc", "end_at_utc", "start", "end", "start_after", "start_before")


def make_realistic(case: Any, draw: Draw, world: World) -> None:
    """Often replace generated ids and foreign keys by real ones, and often complete the
    request data into valid data for the operation; sometimes use an awkward datetime. In
    place."""
    route = case.path.removeprefix(API)
    resource = (
        "_".join(route.split("/")[:2]) if route.startswith("calendar/") else route.split("/")[0]
    )
    if "id" in (case.path_parameters or {}) and often(draw):
        case.path_parameters["id"] = one_of_ids(draw, world, resource)
    if "token" in (case.path_parameters or {}) and often(draw):
        case.path_parameters["token"] = one_of_ids(draw, world, "feed_secrets")
    data = case.query if case.method.upper() == "GET" else case.body
    if not isinstance(data, dict):
        return
    if "page" in data and often(draw):
        del data["page"]  # most generated pages are past the last one: 404
    for name in ("session", "teacher", "course"):
        if name in data and often(draw):
            data[name] = one_of_ids(draw, world, name)
    complete = COMPLETIONS.get(f"{case.method.upper()} {route}")
    if complete is not None and often(draw):
        data.update(complete(draw, world))
    for name in DATETIME_NAMES:
        if name in data and draw(st.integers(0, 7)) == 7:
            data[name] = draw(st.sampled_from(AWKWARD_DATETIMES))


# The test ----------------------------------------------------------------------------------------


def routes_to_the_api(url: str) -> bool:
    try:
        match = resolve(unquote(urlsplit(url).path))
    except Resolver404:
        return False
    return bool(match.namespace == "liveclass_booking")


def basic_auth(username: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:pw".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(params=["student", "teacher"])
def role(request: pytest.FixtureRequest) -> str:
    """The username the requests authenticate as."""
    return str(request.param)


@SCHEMA.parametrize()
@SCHEMA.given(data=st.data())
@settings(
    # With the coverage phase's systematic cases first; 30 generated examples per operation
    # and role keep the three CI runs (SQLite twice, PostgreSQL) within the time budget.
    max_examples=30,
    deadline=None,
    database=None,
    # The world is made once per operation and role; its examples share (and change) it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: Any, data: Any, world: World, role: str) -> None:
    make_realistic(case, data.draw, world)
    response = case.call(headers=basic_auth(role))
    if routes_to_the_api(response.request.url):
        case.validate_response(response, checks=CHECKS)
    else:
        # A generated path parameter that changes the route (an id with "." or "/", an empty
        # id) never reaches this API: the test project's URLconf answers with Django's HTML
        # 404 page, so the schema's content type and body checks do not apply. It must still
        # be a 404, never a 5xx.
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code == 404, case.as_curl_command()
