"""Input bounds of the API, one class of hostile input at a time: instants and dates outside
the supported range, recurrence rules that parse but cannot be expanded, deep JSON, ids that
are not canonical, lone surrogates and bodies over the size limit. Each is a 4xx with this
API's JSON error body, and nothing is written."""

from __future__ import annotations

import json
import time as clock
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.sessions.models import Session as DjangoSession
from django.db import models
from django.urls import reverse
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.api.fields import NotCanonical, StrictPrimaryKeyRelatedField, canonical_pk
from liveclass_booking.api.parsers import MAX_DEPTH
from liveclass_booking.models import IdempotencyKey, TeacherAvailability
from tests.conftest import app_row_counts

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Monday


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def as_json(pk: Any) -> Any:
    return pk if isinstance(pk, int) else str(pk)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def windows(teacher: Any) -> None:
    for weekday in range(7):
        TeacherAvailability.objects.create(
            teacher=teacher, weekday=weekday, start_time=time(8), end_time=time(20), timezone="UTC"
        )


def assert_refused(
    response: Any, before: dict[str, int], field: str | None = None, status: int = 400
) -> dict[str, Any]:
    """``response`` is a ``status`` with this API's error body (naming ``field``, if given),
    and no row was written."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == {400: "invalid", 404: "not_found", 413: "too_large"}[status], body
    assert body["detail"]
    if field is not None:
        assert field in body["errors"], body
    assert app_row_counts() == before
    return body


# Instants and dates ------------------------------------------------------------------------

OUT_OF_RANGE = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T01:00:00-01:00",
    "1899-12-31T23:59:59.999999Z",
    "2200-01-01T00:00:00Z",
    "2199-12-31T23:59:59-00:01",
    "9999-12-31T23:00:00Z",
    "9999-12-31T23:59:59.999999-01:00",
]


class TestInstantsOutsideTheSupportedRange:
    @pytest.mark.parametrize("value", OUT_OF_RANGE)
    @pytest.mark.parametrize("field", ["start_at_utc", "end_at_utc"])
    def test_one_on_one_booking(
        self, student: Any, teacher: Any, course: Any, windows: None, value: str, field: str
    ) -> None:
        body = {
            "booking_type": "one_on_one",
            "teacher": as_json(teacher.pk),
            "course": as_json(course.pk),
            "start_at_utc": "2027-01-06T10:00:00Z",
            "end_at_utc": "2027-01-06T11:00:00Z",
            field: value,
        }
        before = app_row_counts()
        response = client_for(student).post(url("booking-list"), body, format="json")
        assert_refused(response, before, field)

    @pytest.mark.parametrize("value", OUT_OF_RANGE)
    def test_session_create_and_edit(
        self, teacher: Any, course: Any, session: Any, value: str
    ) -> None:
        before = app_row_counts()
        created = client_for(teacher).post(
            url("session-list"),
            {
                "course": as_json(course.pk),
                "title": "Far away",
                "start_at_utc": value,
                "end_at_utc": "2027-01-06T11:00:00Z",
                "capacity": 3,
            },
            format="json",
        )
        assert_refused(created, before, "start_at_utc")
        edited = client_for(teacher).patch(
            url("session-detail", session.pk), {"end_at_utc": value}, format="json"
        )
        assert_refused(edited, before, "end_at_utc")
        session.refresh_from_db()
        assert session.end_at_utc.year == 2027

    @pytest.mark.parametrize("value", OUT_OF_RANGE)
    def test_reschedule(
        self, student: Any, teacher: Any, course: Any, windows: None, value: str
    ) -> None:
        at = datetime(2027, 1, 6, 10, tzinfo=UTC)
        booking = services.request_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start_at_utc=at,
            end_at_utc=at + timedelta(hours=1),
        )
        before = app_row_counts()
        response = client_for(student).post(
            url("booking-reschedule", booking.pk),
            {"start_at_utc": value, "end_at_utc": "2027-01-06T13:00:00Z"},
            format="json",
        )
        assert_refused(response, before, "start_at_utc")

    @pytest.mark.parametrize("value", OUT_OF_RANGE)
    @pytest.mark.parametrize("name", ["session-list", "booking-list"])
    @pytest.mark.parametrize("field", ["start_after", "start_before"])
    def test_list_filters(self, student: Any, value: str, name: str, field: str) -> None:
        before = app_row_counts()
        response = client_for(student).get(url(name), {field: value})
        assert_refused(response, before, field)

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
            ("9999-12-31T00:00:00Z", "9999-12-31T23:59:59.999999Z"),
            ("2199-12-31T00:00:00Z", "2200-01-01T00:00:00Z"),
        ],
    )
    def test_slots_near_the_ends_of_datetime(
        self, student: Any, teacher: Any, start: str, end: str
    ) -> None:
        before = app_row_counts()
        response = client_for(student).get(
            url("slot-list"), {"teacher": teacher.pk, "start": start, "end": end, "duration": 60}
        )
        body = assert_refused(response, before)
        assert set(body["errors"]) & {"start", "end"}

    @pytest.mark.parametrize("value", ["1900-01-01T00:00:00Z", "2199-12-31T23:59:59.999999Z"])
    def test_the_ends_of_the_range_are_accepted(self, student: Any, value: str) -> None:
        response = client_for(student).get(url("session-list"), {"start_after": value})
        assert response.status_code == 200


class TestDatesOutsideTheSupportedRange:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("start_date", "0001-01-01"),
            ("start_date", "9999-12-31"),
            ("start_date", "1899-12-31"),
            ("until_date", "9999-12-31"),
            ("until_date", "2200-01-01"),
        ],
    )
    @pytest.mark.parametrize("name", ["series-list", "session-recurring"])
    def test_recurrence_dates(
        self, student: Any, teacher: Any, course: Any, field: str, value: str, name: str
    ) -> None:
        body: dict[str, Any] = {
            "frequency": "weekly",
            "start_date": "2027-02-01",
            "start_time": "17:00",
            "timezone": "Europe/Berlin",
            "duration_minutes": 60,
            "course": as_json(course.pk),
            field: value,
        }
        body.setdefault("until_date" if field == "start_date" else "start_date", None)
        if field == "start_date":
            body["occurrence_count"] = 3
            body.pop("until_date")
        if name == "series-list":
            body.update(type="one_on_one_series", teacher=as_json(teacher.pk))
            user = student
        else:
            body.update(title="Club", capacity=3)
            user = teacher
        before = app_row_counts()
        response = client_for(user).post(url(name), body, format="json")
        assert_refused(response, before, field)

    @pytest.mark.parametrize("field", ["valid_from", "valid_until"])
    def test_availability_dates(self, teacher: Any, field: str) -> None:
        before = app_row_counts()
        response = client_for(teacher).post(
            url("availability-list"),
            {
                "weekday": 0,
                "start_time": "09:00",
                "end_time": "10:00",
                "timezone": "UTC",
                field: "9999-12-31",
            },
            format="json",
        )
        assert_refused(response, before, field)


class TestTwentyNinthOfFebruary:
    RULES = [
        {"frequency": "monthly", "occurrence_count": 3},
        {"frequency": "monthly", "until_date": "2028-06-30"},
        {"frequency": "weekly", "occurrence_count": 2},
        {"frequency": "custom", "rrule": "FREQ=YEARLY", "occurrence_count": 2},
        {"frequency": "custom", "rrule": "FREQ=YEARLY", "until_date": "2036-12-31"},
        {"frequency": "custom", "rrule": "FREQ=MONTHLY;BYMONTHDAY=29", "occurrence_count": 2},
    ]

    @pytest.mark.parametrize("rule", RULES)
    def test_recurring_sessions_start_on_29_february(
        self, teacher: Any, course: Any, rule: dict[str, Any]
    ) -> None:
        response = client_for(teacher).post(
            url("session-recurring"),
            {
                "course": as_json(course.pk),
                "title": "Leap club",
                "capacity": 3,
                "start_date": "2028-02-29",
                "start_time": "12:00",
                "timezone": "UTC",
                "duration_minutes": 60,
                **rule,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        starts = [s["start_at_utc"][:10] for s in response.json()["sessions"]]
        assert starts[0] == "2028-02-29"
        if rule.get("rrule") == "FREQ=YEARLY":
            assert starts[:2] == ["2028-02-29", "2032-02-29"]

    @pytest.mark.parametrize("rule", RULES)
    def test_series_start_on_29_february(
        self, student: Any, teacher: Any, course: Any, windows: None, rule: dict[str, Any]
    ) -> None:
        response = client_for(student).post(
            url("series-list"),
            {
                "type": "one_on_one_series",
                "teacher": as_json(teacher.pk),
                "course": as_json(course.pk),
                "start_date": "2028-02-29",
                "start_time": "12:00",
                "timezone": "UTC",
                "duration_minutes": 60,
                "accept_partial": True,
                **rule,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        assert response.json()["occurrences"][0]["start_at_utc"] == "2028-02-29T12:00:00Z"


# Recurrence rules --------------------------------------------------------------------------

BROKEN_RULES = [
    "FREQ=WEEKLY;INTERVAL=-1",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=99999999999999999999",
    "FREQ=DAILY;INTERVAL=１",
    "FREQ=MONTHLY;BYSETPOS=999999999999",
    "FREQ=MONTHLY;BYSETPOS=0",
    "FREQ=YEARLY;BYMONTH=13",
    "FREQ=YEARLY;BYMONTH=0;BYDAY=1MO",
    "FREQ=MONTHLY;BYMONTHDAY=32",
    "FREQ=YEARLY;BYYEARDAY=367",
    "FREQ=YEARLY;BYWEEKNO=54",
    "FREQ=MONTHLY;BYDAY=99MO",
    "FREQ=WEEKLY;BYDAY=XX",
    "FREQ=WEEKLY;WKST=ZZ",
    "FREQ=DAILY;BYEASTER=0",
    "FREQ=DAILY;FOO=1",
    "FREQ=HOURLY",
    # Rules that parse but never (or not often enough) give an occurrence.
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;BYSETPOS=300;BYMONTH=1",
    "FREQ=DAILY;BYYEARDAY=366;BYMONTH=1",
    "FREQ=MONTHLY;BYDAY=5MO;BYMONTH=2;BYMONTHDAY=1",
]


class TestRecurrenceRules:
    @pytest.mark.parametrize("rrule", BROKEN_RULES)
    @pytest.mark.parametrize("name", ["series-list", "session-recurring"])
    def test_rules_that_cannot_be_expanded_are_invalid(
        self, student: Any, teacher: Any, course: Any, rrule: str, name: str
    ) -> None:
        body: dict[str, Any] = {
            "frequency": "custom",
            "rrule": rrule,
            "start_date": "2028-02-29",
            "start_time": "17:00",
            "timezone": "Europe/Berlin",
            "duration_minutes": 60,
            "occurrence_count": 3,
            "course": as_json(course.pk),
        }
        if name == "series-list":
            body.update(type="one_on_one_series", teacher=as_json(teacher.pk))
            user = student
        else:
            body.update(title="Club", capacity=3)
            user = teacher
        before = app_row_counts()
        started = clock.monotonic()
        response = client_for(user).post(url(name), body, format="json")
        assert clock.monotonic() - started < 3  # bounded, whatever the rule
        body = assert_refused(response, before)
        assert set(body["errors"]) & {"rrule", "occurrence_count", "until_date"}

    def test_a_rule_that_stops_matching_ends_by_until_date(self, teacher: Any, course: Any) -> None:
        started = clock.monotonic()
        response = client_for(teacher).post(
            url("session-recurring"),
            {
                "course": as_json(course.pk),
                "title": "Leap days only",
                "capacity": 3,
                "frequency": "custom",
                "rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29",
                "start_date": "2028-01-01",
                "until_date": "2199-12-31",
                "start_time": "12:00",
                "timezone": "UTC",
                "duration_minutes": 60,
            },
            format="json",
        )
        assert clock.monotonic() - started < 3
        assert response.status_code == 201, response.json()
        # The 50-year horizon: 2028, 2032, ... 2076.
        years = [s["start_at_utc"][:4] for s in response.json()["sessions"]]
        assert years == [str(year) for year in range(2028, 2077, 4)]


# JSON bodies -------------------------------------------------------------------------------


class TestParserGuard:
    @pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
    def test_deeply_nested_bodies_are_invalid(self, student: Any, depth: int) -> None:
        before = app_row_counts()
        response = client_for(student).post(
            url("booking-list"), "[" * depth + "]" * depth, content_type="application/json"
        )
        body = assert_refused(response, before)
        assert "nest" in body["detail"]

    def test_nesting_up_to_the_limit_reaches_the_serializer(self, student: Any) -> None:
        value: Any = 1
        for _ in range(MAX_DEPTH - 1):
            value = [value]
        response = client_for(student).post(
            url("booking-list"), {"booking_type": value}, format="json"
        )
        body = assert_refused(response, app_row_counts(), "booking_type")
        assert "nest" not in body["detail"]

    @pytest.mark.parametrize(
        "raw",
        [
            '{"booking_type": "group_session", "session": %s, "student_note": "\\ud800"}',
            '{"booking_type": "group_session", "session": %s, "student_note": "a\\udfffb"}',
            '{"booking_type": "group_session", "session": %s, "\\ud83d": 1}',
            '{"booking_type": "\\udc00", "session": %s}',
        ],
    )
    @pytest.mark.parametrize("key", [None, "surrogate-key"])
    def test_lone_surrogates_are_invalid(
        self, student: Any, session: Any, raw: str, key: str | None
    ) -> None:
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        before = app_row_counts()
        response = client_for(student).post(
            url("booking-list"),
            raw % json.dumps(as_json(session.pk)),
            content_type="application/json",
            **headers,
        )
        body = assert_refused(response, before)
        assert "surrogate" in body["detail"]
        assert not IdempotencyKey.objects.exists()

    @pytest.mark.parametrize("name", ["session-cancel", "booking-list", "series-list"])
    def test_surrogates_in_other_bodies_are_invalid(
        self, teacher: Any, session: Any, name: str
    ) -> None:
        path = url(name, session.pk) if name == "session-cancel" else url(name)
        before = app_row_counts()
        response = client_for(teacher).post(
            path, '{"reason": "\\ud800", "title": "\\ud800"}', content_type="application/json"
        )
        assert_refused(response, before)

    @pytest.mark.parametrize("number", ["1e400", "-1e400", "1E999"])
    def test_numbers_beyond_float_are_invalid(self, student: Any, number: str) -> None:
        before = app_row_counts()
        response = client_for(student).post(
            url("booking-list"),
            f'{{"booking_type": "group_session", "session": {number}}}',
            content_type="application/json",
        )
        assert_refused(response, before)

    @pytest.mark.parametrize("key", [None, "big-key"])
    def test_bodies_over_the_size_limit_are_413(
        self, student: Any, session: Any, settings: Any, key: str | None
    ) -> None:
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        note = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        before = app_row_counts()
        response = client_for(student).post(
            url("booking-list"),
            {"booking_type": "group_session", "session": as_json(session.pk), "student_note": note},
            format="json",
            **headers,
        )
        assert_refused(response, before, status=413)

    def test_the_size_limit_is_the_hosts(self, student: Any, session: Any, settings: Any) -> None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
        body = {"booking_type": "group_session", "session": as_json(session.pk)}
        small = client_for(student).post(url("booking-list"), body, format="json")
        assert small.status_code == 201
        before = app_row_counts()
        large = client_for(student).post(
            url("series-list"), {**body, "student_note": "x" * 200}, format="json"
        )
        assert_refused(large, before, status=413)


# Ids ---------------------------------------------------------------------------------------


def non_canonical(pk: Any) -> list[Any]:
    """Forms of ``pk`` that name it today in Python or the database, but are not the form it
    renders as."""
    text = str(pk)
    forms: list[Any] = [f" {text}", f"{text} ", f"{text}\n", f"{text}\x00"]
    if isinstance(pk, int):
        fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in text)
        forms += [f"0{text}", f"+{text}", fullwidth, f"{text}.0", f"{text}_0"[: len(text) + 2]]
        forms += [float(pk), pk + 0.9, f"{text}e0", [pk], {"pk": pk}, True]
        if pk >= 10:
            forms.append(f"{text[0]}_{text[1:]}")
    elif isinstance(pk, uuid.UUID):
        hexed = uuid.UUID(text).hex
        forms += [text.upper(), hexed, "{" + text + "}", f"urn:uuid:{text}", uuid.UUID(text).int]
    else:  # a text key, e.g. course-v1:Org+Number+Run (MySQL/MariaDB compare it case-blind)
        forms += [text.upper(), text.swapcase(), text.replace("+", " ")]
    return forms


class TestCanonicalIds:
    def test_paths(self, student: Any, session: Any) -> None:
        booking = services.book_group_session(student=student, session=session)
        for form in non_canonical(booking.pk):
            if not isinstance(form, str) or "\x00" in form or "\n" in form:
                continue
            before = app_row_counts()
            read = client_for(student).get(url("booking-detail", "PK").replace("PK", form))
            assert_refused(read, before, status=404)
            cancel = client_for(student).post(
                url("booking-cancel", "PK").replace("PK", form), {}, format="json"
            )
            assert_refused(cancel, before, status=404)
        assert client_for(student).get(url("booking-detail", booking.pk)).status_code == 200

    @pytest.mark.parametrize("field", ["session", "teacher", "course"])
    def test_bodies(
        self, student: Any, teacher: Any, course: Any, session: Any, windows: None, field: str
    ) -> None:
        at = datetime(2027, 1, 6, 10, tzinfo=UTC)
        good = {
            "session": {"booking_type": "group_session", "session": as_json(session.pk)},
            "teacher": {
                "booking_type": "one_on_one",
                "teacher": as_json(teacher.pk),
                "course": as_json(course.pk),
                "start_at_utc": at.isoformat(),
                "end_at_utc": (at + timedelta(hours=1)).isoformat(),
            },
        }
        body = good["session" if field == "session" else "teacher"]
        pk = {"session": session, "teacher": teacher, "course": course}[field].pk
        for form in non_canonical(pk):
            before = app_row_counts()
            response = client_for(student).post(
                url("booking-list"), {**body, field: form}, format="json"
            )
            assert_refused(response, before, field)
        assert client_for(student).post(url("booking-list"), body, format="json").status_code == 201

    def test_a_canonical_string_id_is_accepted_for_an_integer_key(
        self, student: Any, session: Any
    ) -> None:
        response = client_for(student).post(
            url("booking-list"),
            {"booking_type": "group_session", "session": str(session.pk)},
            format="json",
        )
        assert response.status_code == 201

    @pytest.mark.parametrize("name", ["session-list", "booking-list", "series-list"])
    def test_filters(self, student: Any, course: Any, name: str) -> None:
        for form in non_canonical(course.pk):
            if not isinstance(form, str) or "\x00" in form:
                continue
            before = app_row_counts()
            response = client_for(student).get(url(name), {"course": form})
            assert_refused(response, before, "course")
        response = client_for(student).get(url(name), {"course": str(course.pk)})
        assert response.status_code == 200

    def test_waitlist_filter_on_session(self, student: Any, session: Any) -> None:
        before = app_row_counts()
        for form in ("0" + str(session.pk), str(session.pk).upper() + " "):
            response = client_for(student).get(url("waitlist-list"), {"session": form})
            assert_refused(response, before, "session")


class TestCanonicalPk:
    """:func:`canonical_pk` for the three kinds of key a host may use."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [(7, 7), ("7", 7), ("-7", -7), (2**63 - 1, 2**63 - 1)],
    )
    def test_integer_keys_accept(self, value: Any, expected: int) -> None:
        assert canonical_pk(models.BigAutoField(primary_key=True), value) == expected

    @pytest.mark.parametrize(
        "value",
        ["07", "+7", "７", "7_0", " 7", "7 ", "7.0", 7.0, 7.5, True, None, [7], 2**63, "9" * 5000],
    )
    def test_integer_keys_refuse(self, value: Any) -> None:
        with pytest.raises(NotCanonical):
            canonical_pk(models.BigAutoField(primary_key=True), value)

    def test_uuid_keys(self) -> None:
        field = models.UUIDField(primary_key=True)
        value = uuid.uuid4()
        assert canonical_pk(field, str(value)) == value
        for form in (str(value).upper(), value.hex, "{" + str(value) + "}", value.int, 5):
            with pytest.raises(NotCanonical):
                canonical_pk(field, form)

    def test_text_keys(self) -> None:
        field = models.CharField(primary_key=True, max_length=10)
        assert canonical_pk(field, " a B ") == " a B "
        assert canonical_pk(field, "02") == "02"
        for form in (2, "x" * 11, "a\x00", True, 2.0):
            with pytest.raises(NotCanonical):
                canonical_pk(field, form)

    def test_strict_field_on_a_text_key(self) -> None:
        """A host model keyed by text (Django's own session model here)."""
        DjangoSession.objects.create(
            session_key="5", session_data="", expire_date=timezone.now() + timedelta(days=1)
        )

        class Body(serializers.Serializer[Any]):
            thing = StrictPrimaryKeyRelatedField(queryset=DjangoSession.objects.all())

        assert Body(data={"thing": "5"}).is_valid()
        for form in (5, " 5", "05", "x" * 41, True):
            body = Body(data={"thing": form})
            assert not body.is_valid()
            assert "thing" in body.errors


def test_supported_range_constants_match_the_docs() -> None:
    from liveclass_booking import timebounds

    assert timebounds.EARLIEST == datetime(1900, 1, 1, tzinfo=UTC)
    assert timebounds.LATEST == datetime(2200, 1, 1, tzinfo=UTC)
    assert (timebounds.EARLIEST_DATE, timebounds.LATEST_DATE) == (
        date(1900, 1, 1),
        date(2199, 12, 31),
    )
    assert timebounds.add_years(date(2028, 2, 29), 1) == date(2029, 2, 28)
    assert timebounds.add_years(date(2028, 2, 29), 4) == date(2032, 2, 29)
