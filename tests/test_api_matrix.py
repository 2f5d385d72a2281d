"""The REST API (docs/api.md) endpoint by endpoint and role by role, and list/create query counts.

Part 1 is a table: one ``Endpoint`` per route and method the API's router mounts (plus the
states an action needs), with the HTTP status each role must get and, for lists, which objects
each role must see. Every cell also checks the error contract (``code`` and ``detail``), that a
refused request changed nothing, and that another user's object is a 404 indistinguishable from
a missing one (never a 403). The list of routes the table must cover is read from the router, so
a new route fails the coverage test until it has its rows.

Part 2 checks that no list endpoint issues more queries for 50 items than for 1, and that creating
a booking costs a small, fixed number of queries however busy the teacher already is.

The expectations come from docs/api.md, not from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, reverse
from icalendar import Calendar
from model_bakery import baker
from rest_framework.settings import api_settings
from rest_framework.test import APIClient, APIRequestFactory

from liveclass_booking import services
from liveclass_booking.api import urls as api_urls
from liveclass_booking.calendar.secrets import decrypt_secret
from liveclass_booking.calendar.sources import create_busy_source
from liveclass_booking.calendar.tokens import create_token
from liveclass_booking.models import (
    BookingEvent,
    BookingSeries,
    BookingSeriesItem,
    BusyPeriod,
    BusySource,
    CalendarFeedToken,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from liveclass_booking.recurrence import Recurrence
from tests.conftest import grant_teaching

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


def wed(hour: int, minute: int = 0) -> datetime:
    """Wednesday 2027-01-06 at ``hour``:``minute`` UTC (more than 24 h after NOW)."""
    return datetime(2027, 1, 6, hour, minute, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def as_json(pk: Any) -> Any:
    """A primary key as the API renders it (UUIDs become strings)."""
    return pk if isinstance(pk, int) else str(pk)


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def send(client: APIClient, method: str, path: str, body: Any = None) -> Any:
    if method == "get":
        return client.get(path, body or {})
    if method == "delete":
        return client.delete(path)
    return getattr(client, method)(path, body if body is not None else {}, format="json")


def anonymous_status() -> int:
    """What DRF answers an anonymous request under the configured authentication classes:
    401 when the first class names a ``WWW-Authenticate`` challenge, 403 otherwise."""
    classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    request = APIRequestFactory().get("/")
    challenge = classes[0]().authenticate_header(request) if classes else None
    return 401 if challenge else 403


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


# The people ----------------------------------------------------------------------------------

ROLES = ("anonymous", "student", "other_student", "teacher", "other_teacher", "staff")


@pytest.fixture
def cast(
    user_model: Any, student: Any, other_student: Any, teacher: Any, staff: Any
) -> dict[str, Any]:
    """Every role's user: ``other_teacher`` may teach (the default ``can_teach`` rule) but
    teaches none of the objects the matrix acts on."""
    other_teacher = grant_teaching(
        user_model.objects.create_user(
            username="other_teacher", password="pw", email="ot@example.com"
        )
    )
    return {
        "anonymous": None,
        "student": student,
        "other_student": other_student,
        "teacher": teacher,
        "other_teacher": other_teacher,
        "staff": staff,
    }


# The world the matrix acts on ----------------------------------------------------------------


@dataclass
class World:
    users: dict[str, Any]
    course: Any
    make_session: Callable[..., Any]
    make_booking: Callable[..., Any]
    objects: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["objects"][name]
        except KeyError:
            raise AttributeError(name) from None

    def pks(self, names: set[str]) -> set[Any]:
        return {as_json(self.objects[name].pk) for name in names}


@pytest.fixture
def world(
    cast: dict[str, Any], course: Any, session: Any, make_session: Any, make_booking: Any
) -> World:
    """Two teachers, each with a session, a default policy and a weekly window; three group
    bookings made through the services (so ``seats_taken`` is right):

    - ``B1``: ``student`` in the teacher's session ``S1`` (the booking the matrix acts on),
    - ``B3``: ``other_student`` in ``S1`` (the teacher sees it, ``student`` does not),
    - ``B2``: ``other_student`` in the other teacher's session ``S2``.
    """
    teacher, other_teacher = cast["teacher"], cast["other_teacher"]
    w = World(users=cast, course=course, make_session=make_session, make_booking=make_booking)
    w.objects["S1"] = session  # conftest's: Thursday 08:00 UTC, make_booking's default
    w.objects["S2"] = make_session(
        teacher=other_teacher, start_at_utc=NOW + timedelta(days=3, hours=2)
    )
    # Default rows with the default values: 1:1 needs approval, group does not, 24 h notice
    # and cancel window.
    w.objects["P1"] = TeacherBookingPolicy.objects.create(teacher=teacher)
    w.objects["P2"] = TeacherBookingPolicy.objects.create(teacher=other_teacher)
    w.objects["A1"] = TeacherAvailability.objects.create(
        teacher=teacher, weekday=2, start_time=time(9), end_time=time(17), timezone="UTC"
    )
    w.objects["A2"] = TeacherAvailability.objects.create(
        teacher=other_teacher, weekday=0, start_time=time(9), end_time=time(12), timezone="UTC"
    )
    w.objects["B1"] = services.book_group_session(student=cast["student"], session=w.S1)
    w.objects["B3"] = services.book_group_session(student=cast["other_student"], session=w.S1)
    w.objects["B2"] = services.book_group_session(student=cast["other_student"], session=w.S2)
    return w


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row the API can change, to prove that a refused request changed nothing."""
    models = [
        get_session_model(),
        get_booking_model(),
        TeacherBookingPolicy,
        TeacherAvailability,
        BookingEvent,
        CalendarFeedToken,
        SessionWaitlist,
        BookingSeries,
        BookingSeriesItem,
        BusySource,
        BusyPeriod,
    ]
    return {model._meta.label: list(model.objects.order_by("pk").values()) for model in models}


# Targets: the object a detail route acts on, in the state the action needs -------------------


def pending_lesson(w: World) -> Any:
    """A pending 1:1 lesson of ``student`` with ``teacher`` (the default policy needs
    approval), Wednesday 10:00-11:00 UTC."""
    booking = services.request_one_on_one(
        student=w.users["student"],
        teacher=w.users["teacher"],
        course=w.course,
        start_at_utc=wed(10),
        end_at_utc=wed(11),
    )
    assert booking.status == "pending"
    return booking


def confirmed_lesson(w: World) -> Any:
    booking = services.approve_booking(pending_lesson(w), actor=w.users["teacher"])
    assert booking.status == "confirmed"
    return booking


def late_booking(w: World) -> Any:
    """A confirmed group booking of ``student`` starting in 2 h: inside the 24 h cancel
    window."""
    session = w.make_session(start_at_utc=NOW + timedelta(hours=2))
    return services.book_group_session(student=w.users["student"], session=session)


def started_booking(w: World) -> Any:
    """A confirmed group booking of ``student`` in the teacher's session that started 10 min
    ago (the seat counted in ``seats_taken``)."""
    session = w.make_session(start_at_utc=NOW - timedelta(minutes=10), seats_taken=1)
    return w.make_booking(session=session)


def filler(w: World) -> Any:
    """A student outside the cast who holds the seats that make sessions full."""
    if "filler" not in w.objects:
        w.objects["filler"] = get_user_model().objects.create_user(
            username="filler", password="pw", email="f@example.com"
        )
    return w.objects["filler"]


def full_session(w: World, teacher: str, start: datetime) -> Any:
    """A one-seat session of ``teacher`` at ``start``, its seat held by the filler."""
    session = w.make_session(teacher=w.users[teacher], capacity=1, start_at_utc=start)
    services.book_group_session(student=filler(w), session=session)
    return session


def join(w: World, role: str, session: Any) -> Any:
    entry = services.join_waitlist(student=w.users[role], session=session)
    assert entry.status == "waiting"
    return entry


def queues(w: World) -> None:
    """Two queues: ``W1`` (student), then ``W2`` (other_student) wait for the teacher's full
    session ``SW1``; ``W3`` (other_student) waits for the other teacher's full ``SW2``."""
    w.objects["SW1"] = full_session(w, "teacher", NOW + timedelta(days=6))
    w.objects["SW2"] = full_session(w, "other_teacher", NOW + timedelta(days=6, hours=2))
    w.objects["W1"] = join(w, "student", w.SW1)
    w.objects["W2"] = join(w, "other_student", w.SW1)
    w.objects["W3"] = join(w, "other_student", w.SW2)


def waiting_entry(w: World) -> Any:
    """``W1``: student first in the queue of the teacher's full session ``SW1``, no offer."""
    w.objects["SW1"] = full_session(w, "teacher", NOW + timedelta(days=6))
    w.objects["W1"] = join(w, "student", w.SW1)
    return w.W1


def offered_entry(w: World) -> Any:
    """``student`` holds an offer for the seat the filler gave up in the teacher's session
    ``SW``; ``other_student`` (``W_next``) waits behind."""
    w.objects["SW"] = full_session(w, "teacher", NOW + timedelta(days=6))
    entry = join(w, "student", w.SW)
    w.objects["W_next"] = join(w, "other_student", w.SW)
    seat = get_booking_model().objects.get(session=w.SW, student_user=filler(w))
    services.cancel_booking(seat, actor=filler(w))
    entry = fresh(entry)
    assert (entry.status, fresh(w.SW).seats_taken) == ("offered", 1)
    return entry


def weekly(weekday: str, first: date, hour: int, count: int = 2) -> Recurrence:
    """``count`` one-hour occurrences, weekly on ``weekday`` at ``hour``:00 UTC."""
    return Recurrence(
        frequency="weekly",
        days_of_week=weekday,
        start_date=first,
        start_time=time(hour),
        timezone="UTC",
        duration_minutes=60,
        occurrence_count=count,
    )


def series_of(w: World, student: str, teacher: str, rule: Recurrence) -> Any:
    """A one-on-one series, pending lessons under the default policy."""
    report = services.create_series(
        student=w.users[student],
        teacher=w.users[teacher],
        course=w.course,
        series_type="one_on_one_series",
        rule=rule,
        actor=w.users[student],
    )
    assert report.counts == {"pending": len(report.occurrences)}
    return report.series


def all_series(w: World) -> None:
    """``R1``: student with the teacher (Wednesdays 09:00 UTC, inside the teacher's window);
    ``R3``: other_student with the teacher (Wednesdays 11:00); ``R2``: other_student with the
    other teacher (Mondays 09:00)."""
    w.objects["R1"] = series_of(w, "student", "teacher", weekly("WE", date(2027, 1, 6), 9))
    w.objects["R3"] = series_of(w, "other_student", "teacher", weekly("WE", date(2027, 1, 6), 11))
    w.objects["R2"] = series_of(
        w, "other_student", "other_teacher", weekly("MO", date(2027, 1, 11), 9)
    )


def active_series(w: World) -> Any:
    """``R1``: student's series of two pending Wednesday 09:00 UTC lessons with the teacher,
    both more than 24 h ahead (outside the default cancel window)."""
    w.objects["R1"] = series_of(w, "student", "teacher", weekly("WE", date(2027, 1, 6), 9))
    return w.R1


def paused_series(w: World) -> Any:
    """``R1`` paused by its student: both lessons cancelled, both occurrences paused."""
    series = services.pause_series(active_series(w), actor=w.users["student"])
    assert series.status == "paused"
    return series


def series_inside_window(w: World) -> Any:
    """``R1`` under a 72 h cancel window (the teacher's default policy): its first lesson, in
    49 h, is inside the window; its second, a week later, is not."""
    TeacherBookingPolicy.objects.filter(pk=w.P1.pk).update(cancel_window_hours=72)
    return active_series(w)


# Bodies --------------------------------------------------------------------------------------


def new_session_body(w: World) -> dict[str, Any]:
    return {
        "course": str(w.course.pk),
        "title": "Conversation club",
        "start_at_utc": "2027-01-09T17:00:00+01:00",
        "end_at_utc": "2027-01-09T18:00:00+01:00",
        "capacity": 8,
    }


def group_booking_body(w: World) -> dict[str, Any]:
    w.objects["S_new"] = w.make_session(start_at_utc=NOW + timedelta(days=4))
    return {"booking_type": "group_session", "session": str(w.S_new.pk)}


def lesson_body(w: World) -> dict[str, Any]:
    return {
        "booking_type": "one_on_one",
        "teacher": str(w.users["teacher"].pk),
        "course": str(w.course.pk),
        "start_at_utc": "2027-01-06T11:00:00+01:00",  # Wednesday 10:00 UTC
        "end_at_utc": "2027-01-06T12:00:00+01:00",
    }


def move_seat_body(w: World) -> dict[str, Any]:
    w.objects["S_alt"] = w.make_session(start_at_utc=NOW + timedelta(days=5))
    return {"session": str(w.S_alt.pk)}


def move_lesson_body(w: World) -> dict[str, Any]:
    return {"start_at_utc": iso(wed(14)), "end_at_utc": iso(wed(15))}


def window_body(w: World) -> dict[str, Any]:
    return {"weekday": 0, "start_time": "09:00", "end_time": "12:00", "timezone": "UTC"}


def slots_query(w: World) -> dict[str, Any]:
    return {
        "teacher": str(w.users["teacher"].pk),
        "course": str(w.course.pk),
        "start": "2027-01-06T00:00:00Z",
        "end": "2027-01-07T00:00:00Z",
        "duration": 60,
    }


def run_body(w: World) -> dict[str, Any]:
    """Two Saturday sessions at 17:00 Berlin time (16:00 UTC)."""
    return {
        "course": str(w.course.pk),
        "title": "Weekend club",
        "capacity": 8,
        "frequency": "weekly",
        "days_of_week": "SA",
        "start_date": "2027-01-09",
        "start_time": "17:00",
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "occurrence_count": 2,
    }


def run_for_teacher_body(w: World) -> dict[str, Any]:
    """The same run, naming ``teacher`` as the sessions' teacher."""
    return {**run_body(w), "teacher": as_json(w.users["teacher"].pk)}


def join_body(w: World) -> dict[str, Any]:
    """The teacher's full session ``SQ``: nobody holds a seat or an entry in it yet but the
    filler."""
    w.objects["SQ"] = full_session(w, "teacher", NOW + timedelta(days=6))
    return {"session": as_json(w.SQ.pk)}


def series_body(w: World) -> dict[str, Any]:
    """Two one-on-one lessons with the teacher, Wednesdays 13:00 UTC (inside the window)."""
    return {
        "type": "one_on_one_series",
        "teacher": as_json(w.users["teacher"].pk),
        "course": as_json(w.course.pk),
        "frequency": "weekly",
        "days_of_week": "WE",
        "start_date": "2027-01-06",
        "start_time": "13:00",
        "timezone": "UTC",
        "duration_minutes": 60,
        "occurrence_count": 2,
    }


# Checks after a successful request -----------------------------------------------------------


def fresh(obj: Any) -> Any:
    return type(obj).objects.get(pk=obj.pk)


def session_created(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["teacher"] == as_json(user.pk)
    assert (body["status"], body["seats_taken"], body["start_at_utc"]) == (
        "scheduled",
        0,
        "2027-01-09T16:00:00Z",
    )
    assert get_session_model().objects.filter(pk=body["id"], teacher=user).exists()


def session_renamed(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["title"] == fresh(target).title == "Renamed"


def session_cancelled(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["status"] == fresh(target).status == "cancelled"
    assert {fresh(w.B1).status, fresh(w.B3).status} == {"cancelled"}


def group_booked(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["student_user"] == as_json(user.pk)
    assert (body["session"], body["booking_type"], body["status"]) == (
        as_json(w.S_new.pk),
        "group_session",
        "confirmed",
    )
    assert fresh(w.S_new).seats_taken == 1


def lesson_requested(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["student_user"] == as_json(user.pk)
    assert (body["teacher"], body["booking_type"], body["status"], body["start_at_utc"]) == (
        as_json(w.users["teacher"].pk),
        "one_on_one",
        "pending",
        "2027-01-06T10:00:00Z",
    )
    assert get_booking_model().objects.filter(pk=body["id"], student_user=user).exists()


def shows_b1(w: World, target: Any, body: Any, user: Any) -> None:
    assert (body["id"], body["student_user"]) == (
        as_json(w.B1.pk),
        as_json(w.users["student"].pk),
    )


def lesson_meeting_set(w: World, target: Any, body: Any, user: Any) -> None:
    lesson = fresh(target)
    assert (lesson.meeting_link, lesson.meeting_id) == ("https://meet.example.com/lesson", "7")
    assert (body["meeting_link"], body["meeting_id"]) == ("https://meet.example.com/lesson", "7")
    assert lesson.calendar_sequence == target.calendar_sequence + 1


def decided(status: str) -> Callable[..., None]:
    def check(w: World, target: Any, body: Any, user: Any) -> None:
        assert body["status"] == fresh(target).status == status
        assert body["decided_by"] == as_json(user.pk)

    return check


def cancelled_by_user(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["status"] == fresh(target).status == "cancelled"
    assert body["cancelled_by"] == as_json(user.pk)
    # The seat is freed: seats_taken is again the seats of the session's active bookings.
    active = get_booking_model().objects.filter(
        session_id=target.session_id, status__in=["pending", "confirmed"]
    )
    assert fresh(target).session.seats_taken == sum(b.seats_reserved for b in active)


def seat_moved(w: World, target: Any, body: Any, user: Any) -> None:
    assert fresh(target).status == "rescheduled"
    assert (body["session"], body["rescheduled_from"], body["student_user"]) == (
        as_json(w.S_alt.pk),
        as_json(target.pk),
        as_json(w.users["student"].pk),
    )
    assert body["status"] in ("pending", "confirmed")
    assert (fresh(w.S1).seats_taken, fresh(w.S_alt).seats_taken) == (1, 1)


def lesson_moved(w: World, target: Any, body: Any, user: Any) -> None:
    assert fresh(target).status == "rescheduled"
    assert (body["rescheduled_from"], body["start_at_utc"], body["end_at_utc"]) == (
        as_json(target.pk),
        "2027-01-06T14:00:00Z",
        "2027-01-06T15:00:00Z",
    )
    assert body["status"] in ("pending", "confirmed")


def marked(status: str) -> Callable[..., None]:
    def check(w: World, target: Any, body: Any, user: Any) -> None:
        assert body["status"] == fresh(target).status == status

    return check


def owned_row_created(model: Any) -> Callable[..., None]:
    def check(w: World, target: Any, body: Any, user: Any) -> None:
        assert body["teacher"] == as_json(user.pk)
        assert model.objects.filter(pk=body["id"], teacher=user).exists()

    return check


def shows(name: str) -> Callable[..., None]:
    def check(w: World, target: Any, body: Any, user: Any) -> None:
        assert body["id"] == as_json(w.objects[name].pk)

    return check


def row_changed(attribute: str, value: Any) -> Callable[..., None]:
    def check(w: World, target: Any, body: Any, user: Any) -> None:
        assert getattr(fresh(target), attribute) == value

    return check


def row_deleted(w: World, target: Any, body: Any, user: Any) -> None:
    assert not type(target).objects.filter(pk=target.pk).exists()


def calendar_of(uid_prefix: Callable[[World, Any], str]) -> Callable[..., None]:
    """The answer is a published calendar whose one event has the UID ``uid_prefix`` gives
    for the requesting user."""

    def check(w: World, target: Any, body: Any, user: Any) -> None:
        calendar = Calendar.from_ical(body)
        assert calendar["METHOD"] == "PUBLISH"
        events = calendar.walk("VEVENT")
        assert len(events) == 1
        assert str(events[0]["UID"]).startswith(uid_prefix(w, user) + "@")

    return check


def session_entry_uid(w: World, user: Any) -> str:
    """The teacher and staff get the session's entry; a booked student their booking's."""
    if user == w.users["teacher"] or user == w.users["staff"]:
        return f"session-{w.S1.pk}"
    own = w.B1 if user == w.users["student"] else w.B3
    return f"booking-{own.pk}"


def feed_tokens(w: World) -> None:
    """``T1``: the student's feed token; ``T2``: the teacher's."""
    w.objects["T1"] = create_token(w.users["student"], "phone")[0]
    w.objects["T2"] = create_token(w.users["teacher"])[0]


def token_t1(w: World) -> Any:
    feed_tokens(w)
    return w.T1


def token_created(w: World, target: Any, body: Any, user: Any) -> None:
    """The secret and the feed's address come once; the feed opens with them."""
    token = CalendarFeedToken.objects.get(pk=body["id"])
    assert (token.user, token.name, token.revoked_at) == (user, "laptop", None)
    assert body["feed_url"].endswith(f"/calendar/feed/{body['token']}.ics")
    assert body["webcal_url"].startswith("webcal://")
    assert APIClient().get(body["feed_url"]).status_code == 200


def token_revoked(w: World, target: Any, body: Any, user: Any) -> None:
    assert fresh(target).revoked_at is not None


#: A feed on loopback: the matrix runs without LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES,
#: so a sync refuses it before connecting anywhere.
FEED_URL = "http://127.0.0.1:9/feeds/pr1vate-token/cal.ics"


def busy_sources(w: World) -> None:
    """``BS1``: the teacher's feed, with a busy period on Wednesday 10:00-11:00 UTC;
    ``BS2``: the other teacher's, with one on Monday 10:00-11:00 UTC."""
    for name, role, day in (
        ("BS1", "teacher", wed(10)),
        ("BS2", "other_teacher", wed(10) - 2 * 24 * HOUR),
    ):
        source = create_busy_source(
            actor=None, teacher=w.users[role], kind="ics", url=FEED_URL, name=name
        )
        BusyPeriod.objects.create(
            source=source, teacher=source.teacher, start_at_utc=day, end_at_utc=day + HOUR
        )
        source.period_count = 1  # as a sync would have recorded it
        source.save(update_fields=["period_count"])
        w.objects[name] = source


def busy_source_bs1(w: World) -> Any:
    busy_sources(w)
    return w.BS1


def busy_source_created(w: World, target: Any, body: Any, user: Any) -> None:
    source = BusySource.objects.get(pk=body["id"], teacher=user)
    assert (body["teacher"], body["url_hint"], body["status"]) == (
        as_json(user.pk),
        "https://calendar.example.com/…",
        "new",
    )
    assert decrypt_secret(source.url_encrypted) == "https://calendar.example.com/feeds/secret.ics"
    assert "url" not in body


def busy_source_synced(w: World, target: Any, body: Any, user: Any) -> None:
    """The sync ran and failed safely: the address is not allowed, the period is kept."""
    assert body["result"]["error_code"] == "address_not_allowed"
    assert (body["status"], body["period_count"]) == ("failed", 1)
    assert fresh(target).status == "failed"
    assert BusyPeriod.objects.filter(source=target).count() == 1


def busy_periods_listed(w: World, target: Any, body: Any, user: Any) -> None:
    """Teachers their own calendars' periods, staff all, times only."""
    mine = {
        w.users["teacher"]: {"BS1"},
        w.users["other_teacher"]: {"BS2"},
        w.users["staff"]: {"BS1", "BS2"},
    }.get(user, set())
    assert body["count"] == len(body["results"]) == len(mine)
    assert {row["source"] for row in body["results"]} == w.pks(mine)
    assert all(set(row) == {"source", "start_at_utc", "end_at_utc"} for row in body["results"])


def free_wednesday_hours(w: World, target: Any, body: Any, user: Any) -> None:
    starts = [slot["start_at_utc"] for slot in body["results"]]
    assert starts == [f"2027-01-06T{hour:02}:00:00Z" for hour in range(9, 17)]


def run_created_for(role: str | None) -> Callable[..., None]:
    """The run is in the database, taught by ``role`` (None: the requesting user)."""

    def check(w: World, target: Any, body: Any, user: Any) -> None:
        teacher = user if role is None else w.users[role]
        starts = [row["start_at_utc"] for row in body["sessions"]]
        assert starts == ["2027-01-09T16:00:00Z", "2027-01-16T16:00:00Z"]
        assert body["skipped_times"] == []
        made = get_session_model().objects.filter(pk__in=[row["id"] for row in body["sessions"]])
        assert (
            sorted((s.teacher_id, s.title, s.status) for s in made)
            == [(teacher.pk, "Weekend club", "scheduled")] * 2
        )

    return check


def queue_places(w: World, target: Any, body: Any, user: Any) -> None:
    """Places in line: ``W1`` then ``W2`` in the teacher's queue, ``W3`` alone in the other."""
    places = {as_json(w.W1.pk): 1, as_json(w.W2.pk): 2, as_json(w.W3.pk): 1}
    for row in body["results"]:
        assert (row["status"], row["position"]) == ("waiting", places[row["id"]])


def joined(w: World, target: Any, body: Any, user: Any) -> None:
    assert (body["session"], body["student_user"], body["status"], body["position"]) == (
        as_json(w.SQ.pk),
        as_json(user.pk),
        "waiting",
        1,
    )
    assert SessionWaitlist.objects.filter(pk=body["id"], student_user=user).exists()


def shows_w1(w: World, target: Any, body: Any, user: Any) -> None:
    assert (body["id"], body["student_user"], body["position"]) == (
        as_json(w.W1.pk),
        as_json(w.users["student"].pk),
        1,
    )


def offer_accepted(w: World, target: Any, body: Any, user: Any) -> None:
    """The booking is the entry's student's, whoever accepted; the held seat became it."""
    entry = fresh(target)
    assert (entry.status, entry.booking_id) == ("accepted", body["id"])
    assert (body["student_user"], body["session"], body["status"]) == (
        as_json(w.users["student"].pk),
        as_json(w.SW.pk),
        "confirmed",
    )
    assert fresh(w.SW).seats_taken == 1
    assert fresh(w.W_next).status == "waiting"


def left(w: World, target: Any, body: Any, user: Any) -> None:
    assert (body["id"], body["status"], body["position"]) == (as_json(target.pk), "left", None)
    assert fresh(target).status == "left"


def offer_left(w: World, target: Any, body: Any, user: Any) -> None:
    """Leaving an offer passes the held seat to the next in line."""
    left(w, target, body, user)
    assert fresh(w.W_next).status == "offered"
    assert fresh(w.SW).seats_taken == 1


def series_created(w: World, target: Any, body: Any, user: Any) -> None:
    assert (body["student_user"], body["teacher"], body["status"]) == (
        as_json(user.pk),
        as_json(w.users["teacher"].pk),
        "active",
    )
    assert body["report"]["counts"] == {"pending": 2}
    assert [o["start_at_utc"] for o in body["occurrences"]] == [
        "2027-01-06T13:00:00Z",
        "2027-01-13T13:00:00Z",
    ]
    series = BookingSeries.objects.get(pk=body["id"], student_user=user)
    assert series.items.filter(booking__status="pending").count() == 2


def series_listed(w: World, target: Any, body: Any, user: Any) -> None:
    """The list shows series without their occurrences."""
    assert all("occurrences" not in row for row in body["results"])


def shows_series(w: World, target: Any, body: Any, user: Any) -> None:
    assert (body["id"], body["student_user"]) == (
        as_json(target.pk),
        as_json(w.users["student"].pk),
    )
    assert [o["booking_status"] for o in body["occurrences"]] == ["pending", "pending"]


def occurrences(series: Any) -> list[tuple[str, str | None]]:
    items = fresh(series).items.select_related("booking").order_by("occurrence_index")
    return [(item.status, item.booking.status if item.booking else None) for item in items]


def series_stopped(status: str, item_status: str) -> Callable[..., None]:
    """Every future occurrence's booking cancelled and the occurrence marked."""

    def check(w: World, target: Any, body: Any, user: Any) -> None:
        assert body["status"] == fresh(target).status == status
        assert occurrences(target) == [(item_status, "cancelled")] * 2

    return check


def paused_by_role(w: World, target: Any, body: Any, user: Any) -> None:
    """The student keeps the occurrence inside the cancel window; teacher and staff pause
    everything still to come."""
    assert body["status"] == fresh(target).status == "paused"
    first = ("booked", "pending") if user == w.users["student"] else ("paused", "cancelled")
    assert occurrences(target) == [first, ("paused", "cancelled")]


def series_resumed(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["status"] == fresh(target).status == "active"
    assert body["report"]["counts"] == {"pending": 2}
    assert [(o["status"], o["booking_status"]) for o in body["occurrences"]] == [
        ("booked", "pending")
    ] * 2


def series_extended(w: World, target: Any, body: Any, user: Any) -> None:
    assert body["report"]["counts"] == {"pending": 1}
    assert [o["start_at_utc"] for o in body["occurrences"]][-1] == "2027-01-20T09:00:00Z"
    assert fresh(target).items.count() == fresh(target).occurrence_count == 3


def row_changed_to(**values: Any) -> Callable[..., None]:
    def check(w: World, target: Any, body: Any, user: Any) -> None:
        row = fresh(target)
        assert {name: getattr(row, name) for name in values} == values

    return check


# The table -----------------------------------------------------------------------------------

Expect = int | tuple[int, str]  # a status, or a status and its stable error code


@dataclass(frozen=True)
class Endpoint:
    """One route and method in one state: what each authenticated role gets (anonymous users
    always get the authentication error). ``given`` builds what a list needs beyond the base
    world; ``target`` the object a detail route acts on; ``body`` the request body (or query)."""

    name: str
    method: str
    route: str
    expect: dict[str, Expect]
    given: Callable[[World], None] | None = None
    target: Callable[[World], Any] | None = None
    body: Callable[[World], Any] | None = None
    listed: dict[str, set[str]] | None = None
    done: Callable[[World, Any, Any, Any], None] | None = None

    def __repr__(self) -> str:
        return self.name


def roles(
    *, student: Expect, other_student: Expect, teacher: Expect, other_teacher: Expect, staff: Expect
) -> dict[str, Expect]:
    return {
        "student": student,
        "other_student": other_student,
        "teacher": teacher,
        "other_teacher": other_teacher,
        "staff": staff,
    }


def everyone(status: Expect) -> dict[str, Expect]:
    return roles(
        student=status, other_student=status, teacher=status, other_teacher=status, staff=status
    )


#: The session is visible to everyone, so refusing an edit is a 403, not a 404.
SESSION_OWNER = roles(student=403, other_student=403, teacher=200, other_teacher=403, staff=200)
#: The booking's teacher or staff act; its student sees it but may not; everybody else gets 404.
BOOKING_TEACHER = roles(student=403, other_student=404, teacher=200, other_teacher=404, staff=200)
#: The contract names the "student or teacher" for reschedule; staff may too, as for every other
#: booking action (a documented widening, see docs/api.md). The response is the new booking, 201.
BOOKING_MOVER = roles(student=201, other_student=404, teacher=201, other_teacher=404, staff=201)
#: A teacher's own rows; staff all; everybody else gets 404.
ROW_OWNER = roles(student=404, other_student=404, teacher=200, other_teacher=404, staff=200)
ROW_DELETER = {role: (204 if status == 200 else status) for role, status in ROW_OWNER.items()}
#: Only a user who may teach creates a policy or window (for themselves).
TEACHERS_CREATE = roles(student=403, other_student=403, teacher=201, other_teacher=201, staff=201)
#: Students their own (waitlist entries, series), teachers what they teach, staff all; anybody
#: else gets 404.
PARTIES = roles(student=200, other_student=404, teacher=200, other_teacher=404, staff=200)
#: The contract names only "the entry's student" for accept; docs/waitlist.md and docs/api.md let
#: staff accept for a student too (as staff may every booking action). The teacher sees the
#: entry but may not accept it: 403. The response is the new booking, 201.
OFFER_TAKER = roles(student=201, other_student=404, teacher=403, other_teacher=404, staff=201)

ENDPOINTS = [
    # sessions/ ---------------------------------------------------------------------------
    Endpoint(
        "sessions.list",
        "get",
        "session-list",
        everyone(200),
        listed={role: {"S1", "S2"} for role in ROLES[1:]},
    ),
    Endpoint(
        "sessions.create",
        "post",
        "session-list",
        TEACHERS_CREATE,
        body=new_session_body,
        done=session_created,
    ),
    Endpoint(
        "sessions.retrieve",
        "get",
        "session-detail",
        everyone(200),
        target=lambda w: w.S1,
        done=shows("S1"),
    ),
    Endpoint(
        "sessions.patch",
        "patch",
        "session-detail",
        SESSION_OWNER,
        target=lambda w: w.S1,
        body=lambda w: {"title": "Renamed"},
        done=session_renamed,
    ),
    Endpoint(
        "sessions.cancel",
        "post",
        "session-cancel",
        SESSION_OWNER,
        target=lambda w: w.S1,
        body=lambda w: {"reason": "ill"},
        done=session_cancelled,
    ),
    Endpoint(
        "sessions.recurring",
        "post",
        "session-recurring",
        TEACHERS_CREATE,
        body=run_body,
        done=run_created_for(None),
    ),
    Endpoint(
        "sessions.recurring_for_the_teacher",
        "post",
        "session-recurring",
        # Naming another teacher is acting as that teacher: only they and staff may.
        roles(student=403, other_student=403, teacher=201, other_teacher=403, staff=201),
        body=run_for_teacher_body,
        done=run_created_for("teacher"),
    ),
    # bookings/ ---------------------------------------------------------------------------
    Endpoint(
        "bookings.list",
        "get",
        "booking-list",
        everyone(200),
        listed={
            "student": {"B1"},
            "other_student": {"B2", "B3"},
            "teacher": {"B1", "B3"},
            "other_teacher": {"B2"},
            "staff": {"B1", "B2", "B3"},
        },
    ),
    Endpoint(
        "bookings.create_group",
        "post",
        "booking-list",
        everyone(201),
        body=group_booking_body,
        done=group_booked,
    ),
    Endpoint(
        "bookings.create_one_on_one",
        "post",
        "booking-list",
        # A teacher cannot book a lesson with themselves: field validation.
        roles(
            student=201,
            other_student=201,
            teacher=(400, "invalid"),
            other_teacher=201,
            staff=201,
        ),
        body=lesson_body,
        done=lesson_requested,
    ),
    Endpoint(
        "bookings.retrieve",
        "get",
        "booking-detail",
        roles(student=200, other_student=404, teacher=200, other_teacher=404, staff=200),
        target=lambda w: w.B1,
        done=shows_b1,
    ),
    Endpoint(
        "bookings.approve",
        "post",
        "booking-approve",
        BOOKING_TEACHER,
        target=pending_lesson,
        body=lambda w: {"teacher_note": "See you"},
        done=decided("confirmed"),
    ),
    Endpoint(
        "bookings.meeting",
        "post",
        "booking-meeting",
        BOOKING_TEACHER,
        target=confirmed_lesson,
        body=lambda w: {"meeting_link": "https://meet.example.com/lesson", "meeting_id": "7"},
        done=lesson_meeting_set,
    ),
    Endpoint(
        "bookings.decline",
        "post",
        "booking-decline",
        BOOKING_TEACHER,
        target=pending_lesson,
        body=lambda w: {"reason": "Busy"},
        done=decided("declined"),
    ),
    Endpoint(
        "bookings.cancel",
        "post",
        "booking-cancel",
        roles(student=200, other_student=404, teacher=200, other_teacher=404, staff=200),
        target=lambda w: w.B1,
        body=lambda w: {"reason": "Changed plans"},
        done=cancelled_by_user,
    ),
    Endpoint(
        "bookings.cancel_inside_window",
        "post",
        "booking-cancel",
        roles(
            student=(400, "cancel_window_closed"),
            other_student=404,
            teacher=200,
            other_teacher=404,
            staff=200,
        ),
        target=late_booking,
        done=cancelled_by_user,
    ),
    Endpoint(
        "bookings.reschedule_group",
        "post",
        "booking-reschedule",
        BOOKING_MOVER,
        target=lambda w: w.B1,
        body=move_seat_body,
        done=seat_moved,
    ),
    Endpoint(
        "bookings.reschedule_one_on_one",
        "post",
        "booking-reschedule",
        BOOKING_MOVER,
        target=confirmed_lesson,
        body=move_lesson_body,
        done=lesson_moved,
    ),
    Endpoint(
        "bookings.mark_attended",
        "post",
        "booking-mark-attended",
        BOOKING_TEACHER,
        target=started_booking,
        done=marked("attended"),
    ),
    Endpoint(
        "bookings.mark_no_show",
        "post",
        "booking-mark-no-show",
        BOOKING_TEACHER,
        target=started_booking,
        done=marked("no_show"),
    ),
    # waitlist/ ---------------------------------------------------------------------------
    Endpoint(
        "waitlist.list",
        "get",
        "waitlist-list",
        everyone(200),
        given=queues,
        listed={
            "student": {"W1"},
            "other_student": {"W2", "W3"},
            "teacher": {"W1", "W2"},
            "other_teacher": {"W3"},
            "staff": {"W1", "W2", "W3"},
        },
        done=queue_places,
    ),
    Endpoint(
        "waitlist.join",
        "post",
        "waitlist-list",
        # Everybody joins for themselves, as everybody books a seat for themselves.
        everyone(201),
        body=join_body,
        done=joined,
    ),
    Endpoint(
        "waitlist.retrieve",
        "get",
        "waitlist-detail",
        PARTIES,
        target=waiting_entry,
        done=shows_w1,
    ),
    Endpoint(
        "waitlist.accept",
        "post",
        "waitlist-accept",
        OFFER_TAKER,
        target=offered_entry,
        body=lambda w: {"student_note": "Thanks"},
        done=offer_accepted,
    ),
    Endpoint(
        "waitlist.accept_without_offer",
        "post",
        "waitlist-accept",
        # Who may is decided before the state: the teacher is refused, not told the state.
        roles(
            student=(409, "invalid_transition"),
            other_student=404,
            teacher=403,
            other_teacher=404,
            staff=(409, "invalid_transition"),
        ),
        target=waiting_entry,
    ),
    Endpoint(
        "waitlist.leave",
        "post",
        "waitlist-leave",
        # The entry's student, or the session's teacher or staff taking a student off the
        # queue (docs/waitlist.md, services.leave_waitlist).
        PARTIES,
        target=waiting_entry,
        done=left,
    ),
    Endpoint(
        "waitlist.leave_offer",
        "post",
        "waitlist-leave",
        PARTIES,
        target=offered_entry,
        done=offer_left,
    ),
    # series/ -----------------------------------------------------------------------------
    Endpoint(
        "series.list",
        "get",
        "series-list",
        everyone(200),
        given=all_series,
        listed={
            "student": {"R1"},
            "other_student": {"R2", "R3"},
            "teacher": {"R1", "R3"},
            "other_teacher": {"R2"},
            "staff": {"R1", "R2", "R3"},
        },
        done=series_listed,
    ),
    Endpoint(
        "series.create",
        "post",
        "series-list",
        # A teacher cannot book a series with themselves: field validation.
        roles(
            student=201,
            other_student=201,
            teacher=(400, "invalid"),
            other_teacher=201,
            staff=201,
        ),
        body=series_body,
        done=series_created,
    ),
    Endpoint(
        "series.retrieve",
        "get",
        "series-detail",
        PARTIES,
        target=active_series,
        done=shows_series,
    ),
    Endpoint(
        "series.pause",
        "post",
        "series-pause",
        PARTIES,
        target=active_series,
        body=lambda w: {"reason": "Holiday"},
        done=series_stopped("paused", "paused"),
    ),
    Endpoint(
        "series.pause_inside_window",
        "post",
        "series-pause",
        PARTIES,
        target=series_inside_window,
        done=paused_by_role,
    ),
    Endpoint(
        "series.resume",
        "post",
        "series-resume",
        PARTIES,
        target=paused_series,
        done=series_resumed,
    ),
    Endpoint(
        "series.cancel",
        "post",
        "series-cancel",
        PARTIES,
        target=active_series,
        body=lambda w: {"reason": "Moving away"},
        done=series_stopped("cancelled", "cancelled"),
    ),
    Endpoint(
        "series.extend",
        "post",
        "series-extend",
        PARTIES,
        target=active_series,
        body=lambda w: {"occurrence_count": 3},
        done=series_extended,
    ),
    # policies/ ---------------------------------------------------------------------------
    Endpoint(
        "policies.list",
        "get",
        "policy-list",
        everyone(200),
        listed={
            "student": set(),
            "other_student": set(),
            "teacher": {"P1"},
            "other_teacher": {"P2"},
            "staff": {"P1", "P2"},
        },
    ),
    Endpoint(
        "policies.create",
        "post",
        "policy-list",
        TEACHERS_CREATE,
        # Course-specific: the teachers already have a default row.
        body=lambda w: {"course": str(w.course.pk), "min_notice_hours": 2},
        done=owned_row_created(TeacherBookingPolicy),
    ),
    Endpoint(
        "policies.retrieve",
        "get",
        "policy-detail",
        ROW_OWNER,
        target=lambda w: w.P1,
        done=shows("P1"),
    ),
    Endpoint(
        "policies.patch",
        "patch",
        "policy-detail",
        ROW_OWNER,
        target=lambda w: w.P1,
        body=lambda w: {"min_notice_hours": 5},
        done=row_changed("min_notice_hours", 5),
    ),
    Endpoint(
        "policies.put",
        "put",
        "policy-detail",
        ROW_OWNER,
        target=lambda w: w.P1,
        body=lambda w: {"min_notice_hours": 6, "cancel_window_hours": 12},
        done=row_changed_to(course=None, min_notice_hours=6, cancel_window_hours=12),
    ),
    Endpoint(
        "policies.delete",
        "delete",
        "policy-detail",
        ROW_DELETER,
        target=lambda w: w.P1,
        done=row_deleted,
    ),
    # availability/ -----------------------------------------------------------------------
    Endpoint(
        "availability.list",
        "get",
        "availability-list",
        everyone(200),
        listed={
            "student": set(),
            "other_student": set(),
            "teacher": {"A1"},
            "other_teacher": {"A2"},
            "staff": {"A1", "A2"},
        },
    ),
    Endpoint(
        "availability.create",
        "post",
        "availability-list",
        TEACHERS_CREATE,
        body=window_body,
        done=owned_row_created(TeacherAvailability),
    ),
    Endpoint(
        "availability.retrieve",
        "get",
        "availability-detail",
        ROW_OWNER,
        target=lambda w: w.A1,
        done=shows("A1"),
    ),
    Endpoint(
        "availability.patch",
        "patch",
        "availability-detail",
        ROW_OWNER,
        target=lambda w: w.A1,
        body=lambda w: {"end_time": "16:00"},
        done=row_changed("end_time", time(16)),
    ),
    Endpoint(
        "availability.put",
        "put",
        "availability-detail",
        ROW_OWNER,
        target=lambda w: w.A1,
        body=lambda w: {
            "weekday": 3,
            "start_time": "10:00",
            "end_time": "16:00",
            "timezone": "UTC",
        },
        done=row_changed_to(weekday=3, start_time=time(10), end_time=time(16), timezone="UTC"),
    ),
    Endpoint(
        "availability.delete",
        "delete",
        "availability-detail",
        ROW_DELETER,
        target=lambda w: w.A1,
        done=row_deleted,
    ),
    # ics/ of sessions and bookings, calendar/tokens/ (the feed itself has no login: it is
    # tested in test_calendar_api) -------------------------------------------------------
    Endpoint(
        "sessions.ics",
        "get",
        "session-ics",
        # The teacher, staff and the students booked in it (B1 and B3 are in S1).
        roles(student=200, other_student=200, teacher=200, other_teacher=404, staff=200),
        target=lambda w: w.S1,
        done=calendar_of(session_entry_uid),
    ),
    Endpoint(
        "bookings.ics",
        "get",
        "booking-ics",
        PARTIES,
        target=lambda w: w.B1,
        done=calendar_of(lambda w, user: f"booking-{w.B1.pk}"),
    ),
    Endpoint(
        "calendar_tokens.list",
        "get",
        "calendar-token-list",
        everyone(200),
        given=feed_tokens,
        # Own tokens only, staff too.
        listed={
            "student": {"T1"},
            "other_student": set(),
            "teacher": {"T2"},
            "other_teacher": set(),
            "staff": set(),
        },
    ),
    Endpoint(
        "calendar_tokens.create",
        "post",
        "calendar-token-list",
        everyone(201),
        body=lambda w: {"name": "laptop"},
        done=token_created,
    ),
    Endpoint(
        "calendar_tokens.retrieve",
        "get",
        "calendar-token-detail",
        roles(student=200, other_student=404, teacher=404, other_teacher=404, staff=404),
        target=token_t1,
        done=shows("T1"),
    ),
    Endpoint(
        "calendar_tokens.revoke",
        "delete",
        "calendar-token-detail",
        roles(student=204, other_student=404, teacher=404, other_teacher=404, staff=404),
        target=token_t1,
        done=token_revoked,
    ),
    # busy-sources/, busy-periods/ ---------------------------------------------------------
    Endpoint(
        "busy_sources.list",
        "get",
        "busy-source-list",
        everyone(200),
        given=busy_sources,
        listed={
            "student": set(),
            "other_student": set(),
            "teacher": {"BS1"},
            "other_teacher": {"BS2"},
            "staff": {"BS1", "BS2"},
        },
    ),
    Endpoint(
        "busy_sources.create",
        "post",
        "busy-source-list",
        # Only a teacher has busy calendars: the service refuses a student as the teacher.
        roles(
            student=(400, "invalid"),
            other_student=(400, "invalid"),
            teacher=201,
            other_teacher=201,
            staff=201,
        ),
        body=lambda w: {"kind": "ics", "url": "https://calendar.example.com/feeds/secret.ics"},
        done=busy_source_created,
    ),
    Endpoint(
        "busy_sources.retrieve",
        "get",
        "busy-source-detail",
        ROW_OWNER,
        target=busy_source_bs1,
        done=shows("BS1"),
    ),
    Endpoint(
        "busy_sources.patch",
        "patch",
        "busy-source-detail",
        ROW_OWNER,
        target=busy_source_bs1,
        body=lambda w: {"name": "Renamed"},
        done=row_changed("name", "Renamed"),
    ),
    Endpoint(
        "busy_sources.put",
        "put",
        "busy-source-detail",
        ROW_OWNER,
        target=busy_source_bs1,
        body=lambda w: {"kind": "ics", "name": "Replaced", "enabled": False},
        done=row_changed_to(name="Replaced", enabled=False, period_count=0),
    ),
    Endpoint(
        "busy_sources.delete",
        "delete",
        "busy-source-detail",
        ROW_DELETER,
        target=busy_source_bs1,
        done=row_deleted,
    ),
    Endpoint(
        "busy_sources.sync",
        "post",
        "busy-source-sync",
        ROW_OWNER,
        target=busy_source_bs1,
        done=busy_source_synced,
    ),
    Endpoint(
        "busy_periods.list",
        "get",
        "busy-period-list",
        everyone(200),
        given=busy_sources,
        done=busy_periods_listed,
    ),
    # slots/ ------------------------------------------------------------------------------
    Endpoint(
        "slots.list",
        "get",
        "slot-list",
        everyone(200),
        body=slots_query,
        done=free_wednesday_hours,
    ),
]


def assert_error_body(body: Any) -> None:
    """docs/api.md: every 4xx body has a stable machine ``code`` and a human ``detail``."""
    assert isinstance(body, dict), body
    for key in ("code", "detail"):
        assert isinstance(body.get(key), str), body
        assert body[key], body


def missing_pk(model: Any) -> Any:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 10_000


@pytest.mark.parametrize(
    ("endpoint", "role"),
    [pytest.param(e, role, id=f"{e.name}-{role}") for e in ENDPOINTS for role in ROLES],
)
def test_endpoint_by_role(world: World, endpoint: Endpoint, role: str) -> None:
    if endpoint.given is not None:
        endpoint.given(world)
    target = endpoint.target(world) if endpoint.target else None
    body = endpoint.body(world) if endpoint.body else None
    user = world.users[role]
    client = client_for(user)
    args = [target.pk] if target is not None else []
    before = snapshot()

    response = send(client, endpoint.method, url(endpoint.route, *args), body)

    expected = endpoint.expect.get(role, anonymous_status())
    status, code = expected if isinstance(expected, tuple) else (expected, None)
    if response.get("Content-Type", "").startswith("text/calendar"):
        payload = response.content
    else:
        payload = response.json() if response.content else None
    assert response.status_code == status, payload

    if status >= 400:
        assert_error_body(payload)
        assert snapshot() == before, "a refused request changed data"
        if user is None:
            # 401 must name a challenge (RFC 9110); 403 must not pretend to.
            assert ("WWW-Authenticate" in response) == (status == 401)
        elif code is not None:
            assert payload["code"] == code
        elif status == 403:
            assert payload["code"] == "not_allowed"
        elif status == 404:
            # Invisible is indistinguishable from missing.
            assert target is not None
            gone = url(endpoint.route, missing_pk(type(target)))
            assert send(client, endpoint.method, gone, body).json() == payload
        return

    if endpoint.listed is not None:
        results = payload["results"]
        assert payload["count"] == len(results)
        assert {row["id"] for row in results} == world.pks(endpoint.listed[role])
    if endpoint.done is not None:
        endpoint.done(world, target, payload, user)


def mounted_routes() -> set[tuple[str, str]]:
    """Every (URL name, HTTP method) the API answers, read from its router: each pattern's
    actions that its viewset's ``http_method_names`` let through, HEAD and OPTIONS aside."""
    routes = set()
    for pattern in api_urls.router.get_urls():
        view = pattern.callback
        if pattern.name == "api-root":  # links only, to anyone: see test_api_usability
            continue
        allowed = set(view.cls.http_method_names) - {"head", "options"}
        routes |= {(pattern.name, method) for method in view.actions if method in allowed}
    return routes


def test_the_matrix_covers_every_endpoint_and_role() -> None:
    """Every authenticated role has an expectation in every row; every route and method the
    router mounts has a row, and every row names a mounted route. The API mounts nothing but
    the router and the catch-all 404."""
    for endpoint in ENDPOINTS:
        assert set(endpoint.expect) == set(ROLES[1:]), endpoint.name
        assert (endpoint.listed is None) or set(endpoint.listed) == set(ROLES[1:]), endpoint.name
    names = [endpoint.name for endpoint in ENDPOINTS]
    assert len(names) == len(set(names))

    router_patterns = api_urls.router.urls
    for entry in api_urls.urlpatterns:
        if isinstance(entry, URLResolver):
            assert entry.url_patterns == router_patterns, f"a route outside the router: {entry}"
        else:
            assert isinstance(entry, URLPattern)
            # The feed opens with a token, not a login: test_calendar_api covers it.
            assert entry.name in ("not-found", "calendar-feed"), f"a route outside: {entry}"

    mounted = mounted_routes()
    covered = {(e.route, e.method) for e in ENDPOINTS}
    assert not mounted - covered, f"routes without a row in the matrix: {sorted(mounted - covered)}"
    assert not covered - mounted, f"rows for routes not mounted: {sorted(covered - mounted)}"
    # The derivation itself: every router prefix and the routes docs/api.md names are in it.
    assert {("session-list", "get"), ("waitlist-accept", "post"), ("series-extend", "post")} <= (
        mounted
    )
    basenames = {basename for _, _, basename in api_urls.router.registry}
    assert {next(b for b in basenames if name.startswith(b + "-")) for name, _ in mounted} == (
        basenames
    )


# Part 2: query counts ------------------------------------------------------------------------

#: Measured queries of one POST bookings/, the same on SQLite and PostgreSQL with the default and
#: the swapped models, BEGIN and COMMIT included (no savepoints: a refusal rolls the whole
#: transaction back). Group: session (with course and teacher), policy, BEGIN, the student's
#: row lock, one read (the limits, the student's own waitlist entry, anything to settle
#: first), INSERT, event, outbox event, the seat UPDATE, COMMIT (the answer shows the
#: session read first); MySQL/MariaDB one more, the already-booked read under the session
#: lock (no partial unique constraint there). One-on-one: teacher, course, the
#: default resolver's can_teach (the teacher's user and group permissions), the
#: overdue-requests check, BEGIN, policy, windows with date exceptions (one query), teacher and
#: student row lock,
#: lessons with sessions and busy periods (one query), the student's holdings (the limits),
#: INSERT, event, outbox event, COMMIT. Changing these numbers is a decision, not noise
#: (docs/concurrency.md, "Statements per request").
CREATE_QUERIES = {"group_session": 10, "one_on_one": 15}
#: What MySQL/MariaDB sends more (see above).
CREATE_QUERIES_MYSQL = {"group_session": 1, "one_on_one": 0}


@dataclass
class Grower:
    """Brings a list endpoint's visible items to ``n`` and returns the query string."""

    cast: dict[str, Any]
    course: Any
    make_session: Callable[..., Any]
    made: int = 0
    started: bool = False

    @property
    def teacher(self) -> Any:
        return self.cast["teacher"]

    @property
    def other_teacher(self) -> Any:
        return self.cast["other_teacher"]

    def sessions(self, n: int) -> dict[str, Any]:
        for i in range(self.made, n):
            teacher = self.teacher if i % 2 == 0 else self.other_teacher
            self.make_session(
                teacher=teacher,
                start_at_utc=NOW + timedelta(days=2, hours=i),
                meeting_link=f"https://meet.example.com/{i}",
            )
        self.made = n
        return {}

    def bookings(self, n: int) -> dict[str, Any]:
        """``n`` bookings of ``student`` with ``teacher``, of every type and several statuses
        and relations; plus one booking none of them teaches or holds (only staff sees it)."""
        model = get_booking_model()
        student, other_student = self.cast["student"], self.cast["other_student"]
        if not self.started:
            self.started = True
            hidden = self.make_session(teacher=self.other_teacher)
            model.objects.create(
                booking_type="group_session",
                session=hidden,
                course=self.course,
                teacher=self.other_teacher,
                student_user=other_student,
                start_at_utc=hidden.start_at_utc,
                end_at_utc=hidden.end_at_utc,
                status="confirmed",
            )
        previous = None
        for i in range(self.made, n):
            start = NOW + timedelta(days=2, hours=i)
            common = {
                "course": self.course,
                "teacher": self.teacher,
                "student_user": student,
                "start_at_utc": start,
                "end_at_utc": start + timedelta(minutes=30),
                "decided_by": self.teacher if i % 3 == 1 else None,
                "cancelled_by": student if i % 5 == 4 else None,
                "status": "cancelled" if i % 5 == 4 else "confirmed",
                "rescheduled_from": previous if i % 7 == 6 else None,
            }
            if i % 2 == 0:
                session = self.make_session(start_at_utc=start, meeting_link="https://m.example")
                previous = model.objects.create(
                    booking_type="group_session", session=session, **common
                )
            else:
                previous = model.objects.create(
                    booking_type="one_on_one",
                    blocked_from_utc=start,
                    blocked_until_utc=start + timedelta(minutes=30),
                    **common,
                )
        self.made = n
        return {}

    def policies(self, n: int) -> dict[str, Any]:
        """The teacher's default row, then one row per further course."""
        if self.made == 0:
            TeacherBookingPolicy.objects.create(teacher=self.teacher)
            self.made = 1
        courses = baker.make(get_course_model(), _quantity=n - self.made) if n > self.made else []
        for i, course in enumerate(courses):
            TeacherBookingPolicy.objects.create(
                teacher=self.teacher, course=course, max_bookings_per_day=i + 1
            )
        self.made = n
        return {}

    def availability(self, n: int) -> dict[str, Any]:
        for i in range(self.made, n):
            TeacherAvailability.objects.create(
                teacher=self.teacher,
                weekday=i % 7,
                start_time=time(6 + i // 7),
                end_time=time(7 + i // 7),
                timezone="Europe/Berlin" if i % 2 else "UTC",
                course=self.course if i % 3 == 0 else None,
            )
        self.made = n
        return {}

    def waitlist(self, n: int, behind: bool = False) -> dict[str, Any]:
        """``student`` on the waitlists of ``n`` of the teacher's sessions, in every status;
        with ``behind``, each time behind ``other_student`` (whom only teacher and staff
        see)."""
        student, other_student = self.cast["student"], self.cast["other_student"]
        statuses = ["waiting", "offered", "left", "expired", "waiting"]
        for i in range(self.made, n):
            session = self.make_session(start_at_utc=NOW + timedelta(days=2, hours=i))
            if behind:
                SessionWaitlist.objects.create(
                    session=session, student_user=other_student, created_at=NOW - HOUR
                )
            status = statuses[i % len(statuses)]
            offer = {"offered_at": NOW, "offer_expires_at": NOW + HOUR}
            SessionWaitlist.objects.create(
                session=session,
                student_user=student,
                status=status,
                **(offer if status == "offered" else {}),
            )
        self.made = n
        return {}

    def waitlist_behind(self, n: int) -> dict[str, Any]:
        return self.waitlist(n, behind=True)

    def series(self, n: int) -> dict[str, Any]:
        """``n`` series of ``student`` with ``teacher``, of both types and every status, each
        with an occurrence (finished for some: they read as completed)."""
        types = ["one_on_one_series", "group_series"]
        statuses = ["active", "paused", "cancelled", "completed"]
        for i in range(self.made, n):
            series = BookingSeries.objects.create(
                student_user=self.cast["student"],
                teacher=self.teacher,
                course=self.course,
                type=types[i % 2],
                status=statuses[i % 4],
                frequency="weekly",
                start_date=date(2027, 1, 6),
                start_time=time(9),
                timezone="UTC",
                duration_minutes=60,
                occurrence_count=1,
            )
            start = NOW + timedelta(days=2 if i % 3 else -2, hours=i)
            BookingSeriesItem.objects.create(
                series=series,
                occurrence_index=1,
                start_at_utc=start,
                end_at_utc=start + HOUR,
                status="awaiting_session",
            )
        self.made = n
        return {}

    def busy_sources(self, n: int) -> dict[str, Any]:
        """``n`` busy calendars of ``teacher`` (rows made directly: past the per-teacher
        limit), every other one with a password."""
        for i in range(self.made, n):
            BusySource.objects.create(
                teacher=self.teacher,
                kind="caldav" if i % 2 else "ics",
                url_hint="https://calendar.example.com/…",
                url_encrypted="x",
                password_encrypted="y" if i % 2 else "",
            )
        self.made = n
        return {}

    def busy_periods(self, n: int) -> dict[str, Any]:
        """``n`` busy periods of ``teacher``, spread over two of their calendars."""
        if not self.started:
            self.started = True
            for _ in range(2):
                self.busy_sources(self.made + 1)
        sources = list(BusySource.objects.filter(teacher=self.teacher))
        for i in range(BusyPeriod.objects.count(), n):
            start = NOW + timedelta(hours=i)
            BusyPeriod.objects.create(
                source=sources[i % 2],
                teacher=self.teacher,
                start_at_utc=start,
                end_at_utc=start + timedelta(minutes=30),
            )
        return {}

    def slots(self, n: int) -> dict[str, Any]:
        """``n`` free 15-minute starts on Wednesday; with more than one, a busier teacher too:
        other windows, lessons and sessions on the same day outside the free window."""
        TeacherAvailability.objects.filter(teacher=self.teacher).delete()
        TeacherAvailability.objects.create(
            teacher=self.teacher,
            weekday=2,
            start_time=time(8),
            end_time=(wed(8) + timedelta(minutes=15 * n)).time(),
            timezone="UTC",
        )
        if n > 1:
            for weekday in (0, 1, 3, 4):
                TeacherAvailability.objects.create(
                    teacher=self.teacher,
                    weekday=weekday,
                    start_time=time(9),
                    end_time=time(17),
                    timezone="UTC",
                )
            for i in range(10):
                start = wed(21) + timedelta(minutes=6 * i)
                get_booking_model().objects.create(
                    booking_type="one_on_one",
                    course=self.course,
                    teacher=self.teacher,
                    student_user=self.cast["student"],
                    start_at_utc=start,
                    end_at_utc=start + timedelta(minutes=5),
                    blocked_from_utc=start,
                    blocked_until_utc=start + timedelta(minutes=5),
                    status="confirmed",
                )
                self.make_session(start_at_utc=wed(22) + timedelta(minutes=5 * i))
        return {
            "teacher": str(self.teacher.pk),
            "course": str(self.course.pk),
            "start": "2027-01-06T00:00:00Z",
            "end": "2027-01-07T00:00:00Z",
            "duration": 15,
        }


@pytest.mark.parametrize(
    ("route", "viewer", "grow"),
    [
        pytest.param("session-list", "student", Grower.sessions, id="sessions-student"),
        pytest.param("session-list", "teacher", Grower.sessions, id="sessions-teacher"),
        pytest.param("session-list", "staff", Grower.sessions, id="sessions-staff"),
        pytest.param("booking-list", "student", Grower.bookings, id="bookings-student"),
        pytest.param("booking-list", "teacher", Grower.bookings, id="bookings-teacher"),
        pytest.param("booking-list", "staff", Grower.bookings, id="bookings-staff"),
        pytest.param("policy-list", "teacher", Grower.policies, id="policies-teacher"),
        pytest.param("policy-list", "staff", Grower.policies, id="policies-staff"),
        pytest.param(
            "availability-list", "teacher", Grower.availability, id="availability-teacher"
        ),
        pytest.param("availability-list", "staff", Grower.availability, id="availability-staff"),
        pytest.param("slot-list", "student", Grower.slots, id="slots-student"),
        pytest.param("waitlist-list", "student", Grower.waitlist_behind, id="waitlist-student"),
        pytest.param("waitlist-list", "teacher", Grower.waitlist, id="waitlist-teacher"),
        pytest.param("waitlist-list", "staff", Grower.waitlist, id="waitlist-staff"),
        pytest.param("series-list", "student", Grower.series, id="series-student"),
        pytest.param("series-list", "teacher", Grower.series, id="series-teacher"),
        pytest.param("series-list", "staff", Grower.series, id="series-staff"),
        pytest.param("busy-source-list", "teacher", Grower.busy_sources, id="busy-teacher"),
        pytest.param("busy-source-list", "staff", Grower.busy_sources, id="busy-staff"),
        pytest.param("busy-period-list", "teacher", Grower.busy_periods, id="periods-teacher"),
        pytest.param("busy-period-list", "staff", Grower.busy_periods, id="periods-staff"),
    ],
)
def test_list_queries_do_not_grow_with_items(
    cast: dict[str, Any],
    course: Any,
    make_session: Any,
    django_assert_max_num_queries: Any,
    route: str,
    viewer: str,
    grow: Callable[[Grower, int], dict[str, Any]],
) -> None:
    grower = Grower(cast=cast, course=course, make_session=make_session)
    client = client_for(cast[viewer])
    # Staff also see the one booking that belongs to neither the student nor the teacher: it
    # counts as one of their items.
    hidden = 1 if (route, viewer) == ("booking-list", "staff") else 0

    query = grow(grower, 1 - hidden)
    with CaptureQueriesContext(connection) as one:
        response = client.get(url(route), query)
    assert response.status_code == 200, response.json()
    assert response.json()["count"] == 1

    query = grow(grower, 50 - hidden)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url(route), query)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == len(body["results"]) == 50  # one full page


def _fill_teacher(
    teacher: Any, booker: Any, course: Any, make_session: Any, first: int, last: int
) -> None:
    """Give ``teacher`` sessions ``first``..``last - 1`` on Wednesday evening (each with a
    confirmed seat of ``booker``) and as many 1:1 lessons on Wednesday afternoon — all on the
    day the 1:1 requests below fall on, so the schedule has to load them."""
    model = get_booking_model()
    for i in range(first, last):
        session = make_session(
            start_at_utc=wed(19) + timedelta(minutes=5 * i),
            capacity=2,
            seats_taken=1,
        )
        model.objects.create(
            booking_type="group_session",
            session=session,
            course=course,
            teacher=teacher,
            student_user=booker,
            start_at_utc=session.start_at_utc,
            end_at_utc=session.end_at_utc,
            status="confirmed",
        )
        start = wed(12) + timedelta(minutes=10 * i)
        model.objects.create(
            booking_type="one_on_one",
            course=course,
            teacher=teacher,
            student_user=booker,
            start_at_utc=start,
            end_at_utc=start + timedelta(minutes=5),
            blocked_from_utc=start,
            blocked_until_utc=start + timedelta(minutes=5),
            status="confirmed",
        )


@pytest.mark.parametrize("booking_type", ["group_session", "one_on_one"])
def test_creating_a_booking_uses_a_fixed_number_of_queries(
    cast: dict[str, Any],
    course: Any,
    make_session: Any,
    django_assert_max_num_queries: Any,
    booking_type: str,
) -> None:
    teacher, student = cast["teacher"], cast["student"]
    # A daily limit makes the schedule count the teacher's lessons per day too.
    TeacherBookingPolicy.objects.create(teacher=teacher, max_bookings_per_day=200)
    TeacherAvailability.objects.create(
        teacher=teacher, weekday=2, start_time=time(9), end_time=time(18), timezone="UTC"
    )
    client = client_for(student)

    def book(start: datetime) -> dict[str, Any]:
        if booking_type == "group_session":
            session = make_session(start_at_utc=start + timedelta(days=1))
            body = {"booking_type": booking_type, "session": str(session.pk)}
        else:
            body = {
                "booking_type": booking_type,
                "teacher": str(teacher.pk),
                "course": str(course.pk),
                "start_at_utc": iso(start),
                "end_at_utc": iso(start + timedelta(hours=1)),
            }
        return body

    _fill_teacher(teacher, cast["other_student"], course, make_session, 0, 1)
    body = book(wed(9))
    expected = CREATE_QUERIES[booking_type]
    if connection.vendor == "mysql":
        expected += CREATE_QUERIES_MYSQL[booking_type]
    with django_assert_max_num_queries(expected) as few:
        response = client.post(url("booking-list"), body, format="json")
    assert response.status_code == 201, response.json()

    _fill_teacher(teacher, cast["other_student"], course, make_session, 1, 40)
    assert get_booking_model().objects.filter(teacher=teacher).count() >= 80
    body = book(wed(10, 30))
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.post(url("booking-list"), body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["booking_type"] == booking_type
