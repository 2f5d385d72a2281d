"""Hostile input against every route of the API (docs/api.md: no request, however malformed, yields
a 500).

The routes are read from the API's router, so a new route is covered without touching this
file. Each route gets requests from a student, a teacher and staff: allowed and other methods,
real and hostile ids in the path, hostile query parameters, and bodies that are mostly valid
with a few hostile values (huge, negative, float and boolean numbers, non-canonical ids,
datetimes out of range or without an offset, 29 February, lone surrogates, NUL bytes, long
text, nested containers, wrong types, broken RRULEs, odd time zones), or not JSON at all.

Every answer must be below 500; every error must be a JSON body with a ``code``; and an error
must leave the number of rows of every model of the app (the idempotency keys
included) as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.urls import URLPattern, reverse
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from model_bakery import baker
from rest_framework import serializers
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.api import serializers as api_serializers
from liveclass_booking.api import urls as api_urls
from liveclass_booking.calendar.sources import create_busy_source
from liveclass_booking.models import (
    TeacherAvailability,
    TeacherBookingPolicy,
    get_course_model,
)
from liveclass_booking.recurrence import Recurrence
from tests.conftest import app_row_counts

pytestmark = pytest.mark.django_db

#: The body size limit while these tests run: small, so that long text often exceeds it.
BODY_LIMIT = 16_384

Draw = Callable[[Any], Any]


# Routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern of the router: its name, whether it takes an id, and its actions."""

    name: str
    detail: bool
    actions: dict[str, str]  # method -> viewset action
    view: Any  # the viewset class
    initkwargs: dict[str, Any]

    def path(self, pk: str | None) -> str:
        if not self.detail:
            return reverse(f"liveclass_booking:{self.name}")
        placeholder = "PLACEHOLDER"
        url = reverse(f"liveclass_booking:{self.name}", kwargs={"pk": placeholder})
        return url.replace(placeholder, quote(str(pk), safe=""))

    def body_fields(self, action: str) -> list[str]:
        """The writable fields of the serializer this action reads its body with."""
        view = self.view(**self.initkwargs)
        view.action = action
        view.request = None
        view.format_kwarg = None
        try:
            serializer_class = view.get_serializer_class()
        except AssertionError:  # no serializer_class (actions without a body)
            return []
        if serializer_class is None:
            return []
        return writable_fields(serializer_class)


def router_routes() -> list[Route]:
    found = []
    for pattern in api_urls.router.urls:
        assert isinstance(pattern, URLPattern)
        callback: Any = pattern.callback
        if not hasattr(callback, "actions"):  # the API root: no body, read-only
            continue
        found.append(
            Route(
                name=str(pattern.name),
                detail="pk" in pattern.pattern.regex.groupindex,
                actions=dict(callback.actions),
                view=callback.cls,
                initkwargs=dict(callback.initkwargs),
            )
        )
    return found


ROUTES = router_routes()
METHODS = ["get", "post", "put", "patch", "delete", "head", "options"]


def writable_fields(serializer_class: Any) -> list[str]:
    try:
        fields = serializer_class().fields
    except Exception:  # a serializer that needs context to build its fields
        return []
    return [name for name, field in fields.items() if not field.read_only]


def every_field_name() -> list[str]:
    """The writable field of every serializer of the API, and every filter name."""
    names: set[str] = set()
    for value in vars(api_serializers).values():
        if isinstance(value, type) and issubclass(value, serializers.Serializer):
            names.update(writable_fields(value))
    for route in ROUTES:
        filterset = getattr(route.view, "filterset_class", None)
        if filterset is not None:
            names.update(filterset.base_filters)
    return sorted(names | {"page", "page_size"})


ALL_FIELDS = every_field_name()


# The world ---------------------------------------------------------------------------------


def as_json(pk: Any) -> Any:
    return pk if isinstance(pk, int) else str(pk)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class World:
    users: dict[str, Any]
    ids: dict[str, list[Any]]  # JSON ids per foreign key name
    route_ids: dict[str, list[str]]  # path ids per route name
    slots: list[tuple[str, str]]
    today: date
    hostile: st.SearchStrategy[Any] | None = None


@pytest.fixture
def world(
    teacher: Any,
    student: Any,
    other_student: Any,
    staff: Any,
    course: Any,
    make_session: Any,
) -> World:
    """A teacher with a policy and daily windows, open, small, cancelled and full sessions,
    group and 1:1 bookings, a waitlist entry, a series and a busy calendar."""
    now = timezone.now()
    day, hour = timedelta(days=1), timedelta(hours=1)
    other_course = baker.make(get_course_model())
    TeacherBookingPolicy.objects.create(teacher=teacher, min_notice_hours=2)
    for weekday in range(7):
        TeacherAvailability.objects.create(
            teacher=teacher,
            weekday=weekday,
            start_time=time(8),
            end_time=time(20),
            timezone="Europe/Berlin",
        )
    open_session = make_session(start_at_utc=now + 3 * day, capacity=10)
    cancelled = make_session(start_at_utc=now + 5 * day, title="Cancelled")
    full = make_session(start_at_utc=now + 6 * day, capacity=1, title="Full")
    services.cancel_session(cancelled, actor=teacher, reason="ill")
    slots = services.free_slots(teacher, course, now + 2 * day, now + 9 * day, hour)
    services.book_group_session(student=student, session=open_session)
    services.book_group_session(student=other_student, session=full)
    services.join_waitlist(student=student, session=full)
    services.request_one_on_one(
        student=student,
        teacher=teacher,
        course=course,
        start_at_utc=slots[0],
        end_at_utc=slots[0] + hour,
    )
    services.create_series(
        student=student,
        teacher=teacher,
        course=course,
        series_type="one_on_one_series",
        rule=Recurrence(
            frequency="weekly",
            start_date=(now + 20 * day).date(),
            start_time=time(9),
            timezone="Europe/Berlin",
            duration_minutes=60,
            occurrence_count=2,
        ),
        accept_partial=True,
    )
    # A busy calendar on loopback: without LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES a sync
    # refuses it before connecting anywhere.
    create_busy_source(
        actor=None, teacher=teacher, kind="ics", url="http://127.0.0.1:9/feeds/private.ics"
    )
    route_ids: dict[str, list[str]] = {}
    for route in ROUTES:
        if route.detail:
            model = queryset_model(route, staff)
            route_ids[route.name] = [
                str(pk) for pk in model._default_manager.values_list("pk", flat=True)
            ]
    return World(
        users={"student": student, "teacher": teacher, "staff": staff},
        ids={
            "session": [as_json(s.pk) for s in (open_session, cancelled, full)],
            "teacher": [as_json(teacher.pk), as_json(student.pk)],
            "course": [as_json(course.pk), as_json(other_course.pk)],
        },
        route_ids=route_ids,
        slots=[(iso(at), iso(at + hour)) for at in slots[3:]],
        today=now.date(),
    )


def queryset_model(route: Route, user: Any) -> Any:
    view = route.view(**route.initkwargs)
    view.action = "retrieve"
    view.request = type("Request", (), {"user": user, "query_params": {}})()
    view.kwargs = {}
    view.format_kwarg = None
    return view.get_queryset().model


# Hostile values ----------------------------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


HOSTILE_NUMBERS = [0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, 4.9, -0.0, 1e308, True, False, None]
HOSTILE_NON_FINITE = [float("inf"), float("-inf"), float("nan")]
HOSTILE_DATETIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999-01:00",
    "1899-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
    "2199-12-31T23:59:59+00:00",
    "2027-02-29T10:00:00Z",
    "2028-02-29T10:00:00+23:59",
    "2028-02-29T10:00:00-17:23",
    "2027-01-04T17:00:00",
    "2027-01-04T17:00:00+24:00",
    "2027-13-01T00:00:00Z",
    "2027-01-04 17:00Z",
    "T",
    "now",
]
HOSTILE_DATES = ["0001-01-01", "9999-12-31", "2028-02-29", "2027-02-29", "1899-12-31"]
HOSTILE_DATES += ["2200-01-01", "2199-12-31", "2028-2-29", "29.02.2028"]
HOSTILE_STRINGS = [
    "\ud800",
    "x\udfffy",
    "\x00",
    "a\x00b",
    "x" * 5000,
    "y" * 20000,  # over BODY_LIMIT
    "\u202etxt.exe",
    "😀" * 10,
    "'; DROP TABLE x; --",
    "",
    " ",
]
HOSTILE_TIMEZONES = ["Mars/Olympus", "../../etc/passwd", "Europe/Berlin\x00", "UTC "]
HOSTILE_TIMEZONES += ["Etc/GMT+12", "Pacific/Kiritimati", "Australia/Lord_Howe", "localtime"]
HOSTILE_RRULES = [
    "FREQ=WEEKLY;INTERVAL=-1",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=１",
    "FREQ=MONTHLY;BYSETPOS=999999999",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MONTHLY;BYDAY=9MO",
    "FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO",
    "FREQ=YEARLY",
    "FREQ=DAILY;COUNT=5",
    "FREQ=HOURLY",
    "FREQ=DAILY;BYEASTER=0",
    "FREQ=WEEKLY;WKST=XX",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,MO",
    "FREQ=DAILY\nFREQ=WEEKLY",
    ";;",
    "FREQ=MONTHLY;BYDAY=-1FR;BYSETPOS=-1",
]
HOSTILE_TIMES = ["24:00", "17:00+01:00", "25:61", "17:00:00.1234567", "5pm", "１７:00"]


def hostile_ids(world: World) -> list[Any]:
    """Ids that are not canonical forms of real ids, and other things sent as ids."""
    values: list[Any] = ["-1", "0", "", " ", "null", "1e3", "99999999999999999999999"]
    for pk in world.ids["session"] + world.ids["teacher"] + world.ids["course"]:
        text = str(pk)
        values += [f"0{text}", f"+{text}", f" {text}", f"{text} ", f"{text}\x00", text.upper()]
        values += ["{" + text + "}", text.replace("-", ""), f"urn:uuid:{text}"]
        values += ["".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)]
        if isinstance(pk, int):
            values += [f"{text}_0", f"{text}.0", float(pk), float(pk) + 0.9, [pk], {"id": pk}]
    return values


def hostile_value(world: World) -> st.SearchStrategy[Any]:
    if world.hostile is None:
        world.hostile = hostile_strategy(world)
    return world.hostile


def hostile_strategy(world: World) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(HOSTILE_NUMBERS + HOSTILE_NON_FINITE),
        st.sampled_from(hostile_ids(world)),
        st.sampled_from(HOSTILE_DATETIMES + HOSTILE_DATES + HOSTILE_TIMES),
        st.datetimes(
            min_value=datetime(1, 1, 2),  # noqa: DTZ001 - made aware by timezones=
            max_value=datetime(9999, 12, 30),  # noqa: DTZ001
            timezones=st.timezones(),
        ).map(lambda value: value.isoformat()),
        st.sampled_from(HOSTILE_STRINGS + HOSTILE_TIMEZONES + HOSTILE_RRULES),
        st.text(max_size=20),
        st.integers(),
        st.sampled_from([[], {}, [1, "a"], {"a": {"b": []}}, nested(5), nested(40)]),
    )


# Realistic values --------------------------------------------------------------------------


def good_value(draw: Draw, world: World, name: str) -> Any:
    """A plausible value for a field called ``name``, or ``...`` when there is none."""
    future = world.today + timedelta(days=draw(st.integers(-2, 60)))
    choices: dict[str, Callable[[], Any]] = {
        "session": lambda: draw(st.sampled_from(world.ids["session"])),
        "teacher": lambda: draw(st.sampled_from(world.ids["teacher"])),
        "course": lambda: draw(st.sampled_from(world.ids["course"] + [None])),
        "booking_type": lambda: draw(st.sampled_from(["group_session", "one_on_one"])),
        "type": lambda: draw(st.sampled_from(["one_on_one_series", "group_series"])),
        "seats_reserved": lambda: draw(st.integers(1, 2)),
        "capacity": lambda: draw(st.integers(1, 5)),
        "title": lambda: "Club",
        "frequency": lambda: draw(st.sampled_from(["weekly", "biweekly", "monthly", "custom"])),
        "interval": lambda: 1,
        "days_of_week": lambda: draw(st.sampled_from(["", "MO", "TU,TH"])),
        "start_date": lambda: draw(st.sampled_from([future, date(2028, 2, 29)])).isoformat(),
        "until_date": lambda: (future + timedelta(days=draw(st.integers(0, 90)))).isoformat(),
        "valid_from": lambda: future.isoformat(),
        "valid_until": lambda: (future + timedelta(days=30)).isoformat(),
        "start_time": lambda: draw(st.sampled_from(["09:00", "17:00", "02:30"])),
        "end_time": lambda: "19:00",
        "timezone": lambda: draw(st.sampled_from(["Europe/Berlin", "UTC", "America/St_Johns"])),
        "duration_minutes": lambda: draw(st.sampled_from([30, 60])),
        "duration": lambda: 60,
        "step": lambda: 30,
        "occurrence_count": lambda: draw(st.integers(1, 3)),
        "rrule": lambda: draw(st.sampled_from(["", "FREQ=MONTHLY;BYDAY=2TU", "FREQ=YEARLY"])),
        "accept_partial": lambda: draw(st.booleans()),
        "weekday": lambda: draw(st.integers(0, 6)),
        "status": lambda: draw(st.sampled_from(["confirmed", "pending", "scheduled"])),
        "page": lambda: 1,
        "page_size": lambda: 10,
        "start_after": lambda: iso(datetime.combine(future, time(0), tzinfo=UTC)),
        "start_before": lambda: iso(datetime.combine(future, time(0), tzinfo=UTC)),
        "start": lambda: iso(datetime.combine(future, time(0), tzinfo=UTC)),
        "end": lambda: iso(datetime.combine(future + timedelta(days=3), time(0), tzinfo=UTC)),
    }
    if name in choices:
        return choices[name]()
    if name.endswith(("_hours", "_minutes", "_per_day")):
        return draw(st.integers(0, 3))
    if name.startswith("requires_"):
        return draw(st.booleans())
    if name.endswith(("note", "reason", "description")) or name.startswith("meeting_"):
        return ""
    return ...


def hostile_body(draw: Draw, world: World, fields: list[str]) -> Any:
    """Mostly a valid-looking object for ``fields`` with one to three hostile values."""
    shape = draw(st.integers(0, 9))
    if shape == 0:  # not an object at all
        return draw(hostile_value(world))
    names = draw(st.lists(st.sampled_from(fields or ALL_FIELDS), unique=True, max_size=12))
    if shape == 1 or not fields:
        names += draw(st.lists(st.sampled_from([*ALL_FIELDS, "\ud800", "x" * 300]), max_size=3))
    body: dict[str, Any] = {}
    for name in names:
        value = good_value(draw, world, name)
        body[name] = draw(hostile_value(world)) if value is ... else value
    if "start_at_utc" in body and "end_at_utc" in body:
        body["start_at_utc"], body["end_at_utc"] = draw(st.sampled_from(world.slots))
    if names:
        for name in draw(st.lists(st.sampled_from(names), max_size=3)):
            body[name] = draw(hostile_value(world))
    return body


def hostile_query(draw: Draw, world: World, route: Route) -> str:
    """A raw query string: realistic names with hostile values, percent-encoded from UTF-8 with
    surrogates passed through (so a lone surrogate arrives as invalid UTF-8)."""
    names = draw(st.lists(st.sampled_from(ALL_FIELDS), unique=True, max_size=6))
    pairs = []
    for name in names:
        value = good_value(draw, world, name)
        if value is ... or draw(st.booleans()):
            value = draw(hostile_value(world))
        if isinstance(value, list | dict | bool) or value is None:
            text = json.dumps(value)
        else:
            text = str(value)
        encoded = text.encode("utf-8", "surrogatepass")
        pairs.append(f"{quote(name.encode('utf-8', 'surrogatepass'))}={quote(encoded, safe='')}")
    return "&".join(pairs)


RAW_BODIES = [
    b"[" * 3000 + b"]" * 3000,
    b"[" * 40 + b"]" * 40,
    b"{not json",
    b'{"a": NaN}',
    b'{"session": 1e400}',
    b'{"note": "\\ud800"}',
    b'{"\\udc00": 1}',
    b"\xff\xfe\x00",
    b"",
    b"null",
    b'"just a string"',
]
CONTENT_TYPES = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "application/json; charset=nonsense",
]
#: Charsets that are not text encodings. Only without a query string: with one, Django itself
#: fails while it builds the request (decoding the query string with the charset), before
#: any middleware or view of the host or of this app runs.
NON_TEXT_CHARSETS = ["bz2_codec", "rot13", "idna"]
IDEMPOTENCY_KEYS = ["key-1", "key-2", "", "k" * 300, "ключ", "a b", "\x00"]


# The test ----------------------------------------------------------------------------------


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def outcome(response: Any) -> str:
    """``status code`` of a response, for Hypothesis' statistics."""
    code = ""
    if response.content and response["Content-Type"].startswith("application/json"):
        body = json.loads(response.content)
        code = body.get("code", "") if isinstance(body, dict) else ""
    return f"{response.status_code} {code}".strip()


def is_safe(response: Any) -> Iterator[str]:
    """The problems of ``response`` under the error contract (none: an empty iterator)."""
    if response.status_code >= 500:
        yield f"status {response.status_code}"
    if response.status_code >= 400 and response.request["REQUEST_METHOD"] != "HEAD":
        if not response["Content-Type"].startswith("application/json"):
            yield f"{response.status_code} answered as {response['Content-Type']}"
        else:
            body = json.loads(response.content)
            if not isinstance(body, dict) or "code" not in body:
                yield f"{response.status_code} without a code: {body!r}"


@pytest.mark.parametrize("route", ROUTES, ids=[route.name for route in ROUTES])
@given(data=st.data())
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    # The world is made once per route; its examples share (and change) it.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_yields_a_server_error(
    route: Route, data: Any, world: World, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = BODY_LIMIT
    draw = data.draw
    role = draw(st.sampled_from(sorted(world.users)))
    allowed = sorted(route.actions)
    method = draw(st.sampled_from(allowed if draw(st.integers(0, 5)) else METHODS))
    pk = None
    if route.detail:
        real = world.route_ids[route.name]
        if real and draw(st.integers(0, 3)):
            pk = draw(st.sampled_from(real))
        else:
            pk = str(draw(st.one_of(st.sampled_from(hostile_ids(world)), st.text(max_size=10))))
    path = route.path(pk)
    query = hostile_query(draw, world, route) if draw(st.booleans()) or method == "get" else ""
    url = f"{path}?{query}" if query else path
    action = route.actions.get(method, "")
    extra: dict[str, str] = {}
    if method == "post" and draw(st.integers(0, 3)) == 0:
        extra["HTTP_IDEMPOTENCY_KEY"] = draw(st.sampled_from(IDEMPOTENCY_KEYS))
    content_type = "application/json"
    payload = b""
    if method not in ("post", "put", "patch", "delete"):
        pass
    elif draw(st.integers(0, 7)) == 0:
        payload = draw(st.sampled_from(RAW_BODIES))
        if draw(st.booleans()):
            content_type = draw(st.sampled_from(CONTENT_TYPES))
        elif not query and draw(st.booleans()):
            content_type = f"application/json; charset={draw(st.sampled_from(NON_TEXT_CHARSETS))}"
    else:
        body = hostile_body(draw, world, route.body_fields(action))
        payload = json.dumps(body, allow_nan=True).encode()
    before = app_row_counts()
    client = client_for(world.users[role])
    response = client.generic(method.upper(), url, payload, content_type=content_type, **extra)
    event(f"{method.upper()} {outcome(response)}")
    problems = list(is_safe(response))
    assert not problems, (method, url, payload[:300], problems, response.content[:300])
    if response.status_code >= 400:
        assert app_row_counts() == before, (method, url, payload[:300], response.content[:300])


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["%2F%0A", "%0A", "a%0Db", "%00", "x%0A%0A"])
@pytest.mark.parametrize("prefix", ["waitlist", "bookings", "sessions", "nowhere"])
def test_control_characters_in_a_path_get_a_json_404(prefix: str, raw: str, staff: Any) -> None:
    """Found by the property test above: a newline in an id once fell through every route
    (a regex "." does not match it) to Django's HTML 404."""
    client = APIClient()
    client.force_authenticate(staff)
    response = client.get(f"/api/booking/{prefix}/{raw}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
