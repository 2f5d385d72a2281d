"""Busy calendars in the API (``busy-sources/``, ``busy-sources/{id}/sync/``,
``busy-periods/``) and the admin: own calendars only (staff all, anybody else's a 404), writes
through the services, secrets never answered or shown, and a sync against a real feed server
on 127.0.0.1 whose busy times then block lesson requests and slots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking.calendar.secrets import decrypt_secret
from liveclass_booking.calendar.sources import create_busy_source
from liveclass_booking.models import BusyPeriod, BusySource
from tests.conftest import grant_teaching
from tests.loopback import AnswerHandler, LoopbackServer, serving

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # a Monday
TOKEN = "pr1vate-T0KEN-93f1"  # the private part of the feed's address
FEED_PATH = f"/feeds/{TOKEN}/basic.ics"
PASSWORD = "pa55-W0RD-77"
SUMMARY = "Dentist appointment of Mrs Example"
CALENDAR = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
    "BEGIN:VEVENT\r\nUID:a@test\r\nSUMMARY:" + SUMMARY + "\r\n"
    "DTSTART;TZID=Europe/Berlin:20270106T110000\r\nDTEND;TZID=Europe/Berlin:20270106T120000\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\nUID:b@test\r\nSUMMARY:Gym\r\n"
    "DTSTART:20270107T150000Z\r\nDTEND:20270107T153000Z\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
).encode()
BUSY = [
    ("2027-01-06T10:00:00Z", "2027-01-06T11:00:00Z"),
    ("2027-01-07T15:00:00Z", "2027-01-07T15:30:00Z"),
]
LOGIN_PAGE = b"<!DOCTYPE html><html><body>Sign in</body></html>"


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def as_json(pk: Any) -> Any:
    return pk if isinstance(pk, int) else str(pk)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW) as traveller:
        yield traveller


@pytest.fixture
def feed() -> Iterator[LoopbackServer]:
    """A feed server on 127.0.0.1 answering the calendar at its private address."""
    with serving(AnswerHandler) as server:
        server.answers[FEED_PATH] = (200, "text/calendar", CALENDAR)
        yield server


@pytest.fixture
def private_allowed(settings: Any) -> None:
    settings.LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def other_teacher(user_model: Any) -> Any:
    user = user_model.objects.create_user(username="other_teacher", password="pw")
    return grant_teaching(user)


def feed_source(teacher: Any, address: str = f"https://calendar.example.com{FEED_PATH}") -> Any:
    return create_busy_source(actor=None, teacher=teacher, kind="ics", url=address, name="Work")


def caldav_source(teacher: Any) -> Any:
    return create_busy_source(
        actor=None,
        teacher=teacher,
        kind="caldav",
        url="https://dav.example.com/calendars/t/home/",
        username="t",
        password=PASSWORD,
        name="Home",
    )


def secrets_in_store() -> set[str]:
    """Every stored secret, as given and as stored (encrypted)."""
    found = {TOKEN, PASSWORD}
    for source in BusySource.objects.all():
        found |= {source.url_encrypted, source.password_encrypted} - {""}
    return found


def assert_no_secret(response: Any) -> None:
    text = response.content.decode()
    for secret in secrets_in_store():
        assert secret not in text, (secret, text[:500])
    assert "url_encrypted" not in text
    assert "password_encrypted" not in text


# CRUD ----------------------------------------------------------------------------------------


class TestOwnSources:
    def test_create_list_retrieve_patch_put_delete(self, teacher: Any) -> None:
        client = client_for(teacher)
        created = client.post(
            url("busy-source-list"),
            {"kind": "ics", "url": f"webcal://calendar.example.com{FEED_PATH}", "name": "Work"},
            format="json",
        )
        assert created.status_code == 201, created.json()
        assert_no_secret(created)
        body = created.json()
        assert set(body) == {
            "id", "teacher", "name", "kind", "url_hint", "username", "has_password", "enabled",
            "status", "last_error_code", "last_error", "last_attempt_at", "last_synced_at",
            "next_sync_at", "period_count", "created_at", "updated_at",
        }  # fmt: skip
        assert (body["teacher"], body["kind"], body["name"]) == (as_json(teacher.pk), "ics", "Work")
        assert (body["url_hint"], body["has_password"], body["status"]) == (
            "webcal://calendar.example.com/…",
            False,
            "new",
        )
        assert body["next_sync_at"].startswith("2027-01-04T08:00:")  # due at once
        source = BusySource.objects.get(pk=body["id"])
        assert decrypt_secret(source.url_encrypted).endswith(FEED_PATH)

        listed = client.get(url("busy-source-list"))
        assert [row["id"] for row in listed.json()["results"]] == [body["id"]]
        assert_no_secret(listed)
        detail = client.get(url("busy-source-detail", source.pk))
        assert detail.json() == listed.json()["results"][0]
        assert_no_secret(detail)

        renamed = client.patch(url("busy-source-detail", source.pk), {"name": "Job"}, "json")
        assert (renamed.status_code, renamed.json()["name"]) == (200, "Job")
        assert_no_secret(renamed)
        moved = client.patch(
            url("busy-source-detail", source.pk),
            {"url": f"https://other.example.org/{TOKEN}.ics"},
            format="json",
        )
        assert moved.json()["url_hint"] == "https://other.example.org/…"
        assert_no_secret(moved)
        # PUT: the address stays when left out; the other fields take their defaults.
        replaced = client.put(url("busy-source-detail", source.pk), {"kind": "ics"}, "json")
        assert replaced.status_code == 200, replaced.json()
        assert (replaced.json()["name"], replaced.json()["enabled"]) == ("", True)
        assert replaced.json()["url_hint"] == "https://other.example.org/…"
        assert_no_secret(replaced)

        gone = client.delete(url("busy-source-detail", source.pk))
        assert gone.status_code == 204
        assert not BusySource.objects.exists()

    def test_caldav_password_is_write_only(self, teacher: Any) -> None:
        client = client_for(teacher)
        created = client.post(
            url("busy-source-list"),
            {
                "kind": "caldav",
                "url": "https://dav.example.com/calendars/t/home/",
                "username": "t",
                "password": PASSWORD,
            },
            format="json",
        )
        assert created.status_code == 201, created.json()
        assert_no_secret(created)
        body = created.json()
        assert (body["has_password"], body["username"]) == (True, "t")
        assert body["url_hint"] == "https://dav.example.com/calendars/t/home/"
        source = BusySource.objects.get()
        assert source.password_encrypted != PASSWORD
        assert decrypt_secret(source.password_encrypted) == PASSWORD
        # Left out, the password stays; empty, it is removed.
        kept = client.patch(url("busy-source-detail", source.pk), {"name": "Home"}, "json")
        assert kept.json()["has_password"] is True
        removed = client.patch(url("busy-source-detail", source.pk), {"password": ""}, "json")
        assert removed.json()["has_password"] is False

    def test_disabling_removes_the_busy_periods(self, teacher: Any) -> None:
        source = feed_source(teacher)
        BusyPeriod.objects.create(
            source=source, teacher=teacher, start_at_utc=NOW, end_at_utc=NOW + timedelta(hours=1)
        )
        BusySource.objects.filter(pk=source.pk).update(period_count=1)
        response = client_for(teacher).patch(
            url("busy-source-detail", source.pk), {"enabled": False}, format="json"
        )
        assert (response.json()["enabled"], response.json()["period_count"]) == (False, 0)
        assert not BusyPeriod.objects.exists()

    def test_a_calendar_keeps_its_teacher(self, teacher: Any, other_teacher: Any) -> None:
        source = feed_source(teacher)
        response = client_for(teacher).patch(
            url("busy-source-detail", source.pk),
            {"teacher": as_json(other_teacher.pk)},
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert "teacher" in response.json()["errors"]
        assert BusySource.objects.get().teacher == teacher
        same = client_for(teacher).patch(
            url("busy-source-detail", source.pk), {"teacher": as_json(teacher.pk)}, format="json"
        )
        assert same.status_code == 200

    def test_changing_the_kind_needs_the_address_again(self, teacher: Any) -> None:
        source = feed_source(teacher)
        response = client_for(teacher).patch(
            url("busy-source-detail", source.pk), {"kind": "caldav"}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert "url" in response.json()["errors"]

    def test_the_browsable_api_and_options_show_no_secret(self, teacher: Any) -> None:
        feed, dav = feed_source(teacher), caldav_source(teacher)
        client = client_for(teacher)
        for path in (
            url("busy-source-list"),
            url("busy-source-detail", feed.pk),
            url("busy-source-detail", dav.pk),
        ):
            page = client.get(path, HTTP_ACCEPT="text/html")
            assert page.status_code == 200
            assert page["Content-Type"].startswith("text/html")
            assert_no_secret(page)
            assert_no_secret(client.options(path))


class TestWhoSeesWhat:
    def test_staff_see_all_and_filter_by_teacher(
        self, teacher: Any, other_teacher: Any, staff: Any
    ) -> None:
        mine, theirs = feed_source(teacher), caldav_source(other_teacher)
        client = client_for(staff)
        listed = client.get(url("busy-source-list"))
        assert {row["id"] for row in listed.json()["results"]} == {mine.pk, theirs.pk}
        assert_no_secret(listed)
        only = client.get(url("busy-source-list"), {"teacher": as_json(other_teacher.pk)})
        assert [row["id"] for row in only.json()["results"]] == [theirs.pk]
        assert client.get(url("busy-source-detail", mine.pk)).status_code == 200
        changed = client.patch(url("busy-source-detail", theirs.pk), {"name": "x"}, "json")
        assert changed.status_code == 200

    def test_staff_create_for_a_teacher(self, teacher: Any, staff: Any) -> None:
        response = client_for(staff).post(
            url("busy-source-list"),
            {"teacher": as_json(teacher.pk), "kind": "ics", "url": "https://c.example.com/x"},
            format="json",
        )
        assert response.status_code == 201, response.json()
        assert response.json()["teacher"] == as_json(teacher.pk)

    def test_a_teacher_cannot_name_another_teacher(self, teacher: Any, other_teacher: Any) -> None:
        response = client_for(teacher).post(
            url("busy-source-list"),
            {"teacher": as_json(other_teacher.pk), "kind": "ics", "url": "https://c.example/x"},
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (403, "not_allowed")
        assert not BusySource.objects.exists()

    def test_another_teachers_calendar_is_a_404(
        self, teacher: Any, other_teacher: Any, feed: LoopbackServer
    ) -> None:
        source = feed_source(teacher, f"{feed.base}{FEED_PATH}")
        client = client_for(other_teacher)
        for method, route, body in [
            ("get", "busy-source-detail", None),
            ("patch", "busy-source-detail", {"name": "mine now"}),
            ("put", "busy-source-detail", {"kind": "ics"}),
            ("delete", "busy-source-detail", None),
            ("post", "busy-source-sync", {}),
        ]:
            send = getattr(client, method)
            response = send(url(route, source.pk), body, format="json")
            assert (response.status_code, response.json()["code"]) == (404, "not_found"), method
            # Indistinguishable from a calendar that does not exist.
            assert send(url(route, source.pk + 1000), body, format="json").json() == (
                response.json()
            )
        assert client.get(url("busy-source-list")).json()["count"] == 0
        assert BusySource.objects.get().name == "Work"
        assert feed.requests == []  # nothing was fetched for them

    def test_a_student_cannot_add_a_calendar(self, student: Any) -> None:
        response = client_for(student).post(
            url("busy-source-list"), {"kind": "ics", "url": "https://c.example/x"}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert "teacher" in response.json()["errors"]
        assert not BusySource.objects.exists()

    def test_anonymous_users_get_nothing(self, teacher: Any) -> None:
        feed_source(teacher)
        assert APIClient().get(url("busy-source-list")).status_code in (401, 403)
        assert APIClient().get(url("busy-period-list")).status_code in (401, 403)


class TestRefusals:
    @pytest.mark.parametrize(
        "address",
        [
            f"ftp://calendar.example.com{FEED_PATH}",
            f"https://{TOKEN}:{PASSWORD}@/nohost",
            f"https://calendar.example.com/{TOKEN} space",
            f"https://calendar.example.com:99999/{TOKEN}",
            f"/relative/{TOKEN}",
        ],
    )
    def test_a_bad_address_is_invalid_without_echoing_it(self, teacher: Any, address: str) -> None:
        response = client_for(teacher).post(
            url("busy-source-list"), {"kind": "ics", "url": address}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert "url" in response.json()["errors"]
        assert_no_secret(response)
        assert not BusySource.objects.exists()

    def test_a_bad_address_in_a_change_is_invalid_too(self, teacher: Any) -> None:
        source = feed_source(teacher)
        response = client_for(teacher).patch(
            url("busy-source-detail", source.pk),
            {"url": f"gopher://x/{TOKEN}", "password": PASSWORD},
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert_no_secret(response)

    def test_credentials_on_a_feed_are_refused_without_echoing_them(self, teacher: Any) -> None:
        response = client_for(teacher).post(
            url("busy-source-list"),
            {"kind": "ics", "url": f"https://c.example{FEED_PATH}", "password": PASSWORD},
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert_no_secret(response)

    def test_a_missing_or_overlong_address_is_invalid(self, teacher: Any) -> None:
        client = client_for(teacher)
        for body in ({"kind": "ics"}, {"kind": "ics", "url": "https://c.example/" + "x" * 2000}):
            response = client.post(url("busy-source-list"), body, format="json")
            assert (response.status_code, response.json()["code"]) == (400, "invalid")
            assert "url" in response.json()["errors"]

    def test_past_the_limit(self, teacher: Any) -> None:
        client = client_for(teacher)
        body = {"kind": "ics", "url": f"https://c.example{FEED_PATH}"}
        with override_settings(LIVECLASS_BOOKING_BUSY_MAX_SOURCES=2):
            for _ in range(2):
                assert client.post(url("busy-source-list"), body, format="json").status_code == 201
            response = client.post(url("busy-source-list"), body, format="json")
        assert response.status_code == 409
        assert {k: response.json()[k] for k in ("code", "limit", "max")} == {
            "code": "limit_reached",
            "limit": "busy_sources",
            "max": 2,
        }
        assert_no_secret(response)
        assert BusySource.objects.count() == 2


# Sync and busy periods -----------------------------------------------------------------------


def lesson_request(teacher: Any, course: Any, start: str, end: str) -> dict[str, Any]:
    return {
        "booking_type": "one_on_one",
        "teacher": as_json(teacher.pk),
        "course": as_json(course.pk),
        "start_at_utc": start,
        "end_at_utc": end,
    }


@pytest.mark.usefixtures("private_allowed", "open_all_week")
class TestSync:
    def test_sync_imports_busy_times_that_block_lessons_and_slots(
        self,
        teacher: Any,
        student: Any,
        course: Any,
        staff: Any,
        feed: LoopbackServer,
        clock: Any,
    ) -> None:
        client = client_for(teacher)
        created = client.post(
            url("busy-source-list"),
            {"kind": "ics", "url": f"{feed.base}{FEED_PATH}", "name": "Work"},
            format="json",
        )
        source_id = created.json()["id"]
        assert created.json()["url_hint"] == f"{feed.base}/…"

        synced = client.post(url("busy-source-sync", source_id))
        assert synced.status_code == 200, synced.json()
        assert_no_secret(synced)
        body = synced.json()
        assert body["result"] == {"outcome": "synced", "periods": 2, "error_code": "", "error": ""}
        assert (body["status"], body["period_count"], body["last_error_code"]) == ("ok", 2, "")
        assert body["last_synced_at"] is not None
        assert [path for path, _ in feed.requests] == [FEED_PATH]

        periods = client.get(url("busy-period-list"))
        assert periods.json()["count"] == 2
        assert periods.json()["results"] == [
            {"source": source_id, "start_at_utc": start, "end_at_utc": end} for start, end in BUSY
        ]
        assert SUMMARY not in periods.content.decode()

        # A lesson over the busy hour is refused, without the event's title; the slots skip it.
        refused = client_for(student).post(
            url("booking-list"),
            lesson_request(teacher, course, "2027-01-06T10:30:00Z", "2027-01-06T11:30:00Z"),
            format="json",
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "slot_unavailable")
        assert SUMMARY not in refused.content.decode()
        assert "Dentist" not in refused.content.decode()
        slots = client_for(student).get(
            url("slot-list"),
            {
                "teacher": as_json(teacher.pk),
                "course": as_json(course.pk),
                "start": "2027-01-06T00:00:00Z",
                "end": "2027-01-07T00:00:00Z",
                "duration": 60,
            },
        )
        starts = [slot["start_at_utc"] for slot in slots.json()["results"]]
        assert "2027-01-06T09:00:00Z" in starts
        assert "2027-01-06T11:00:00Z" in starts
        assert "2027-01-06T10:00:00Z" not in starts
        beside = client_for(student).post(
            url("booking-list"),
            lesson_request(teacher, course, "2027-01-06T11:00:00Z", "2027-01-06T12:00:00Z"),
            format="json",
        )
        assert beside.status_code == 201, beside.json()

        # A login page instead of the calendar: failed, the earlier busy times kept.
        feed.answers[FEED_PATH] = (200, "text/html", LOGIN_PAGE)
        clock.shift(timedelta(seconds=31))
        failed = client.post(url("busy-source-sync", source_id))
        assert failed.status_code == 200
        assert_no_secret(failed)
        body = failed.json()
        assert (body["status"], body["last_error_code"], body["period_count"]) == (
            "failed",
            "not_a_calendar",
            2,
        )
        assert body["result"]["outcome"] == "failed"
        assert body["result"]["error_code"] == "not_a_calendar"
        assert "127.0.0.1" in body["last_error"]  # the host is named, never the path
        again = client.get(url("busy-period-list"))
        assert [(p["start_at_utc"], p["end_at_utc"]) for p in again.json()["results"]] == BUSY
        assert (
            client_for(student)
            .post(
                url("booking-list"),
                lesson_request(teacher, course, "2027-01-06T09:30:00Z", "2027-01-06T10:30:00Z"),
                format="json",
            )
            .json()["code"]
            == "slot_unavailable"
        )

        # At once again: throttled, with the seconds to wait.
        throttled = client.post(url("busy-source-sync", source_id))
        assert (throttled.status_code, throttled.json()["code"]) == (429, "throttled")
        assert 1 <= int(throttled["Retry-After"]) <= 30
        assert throttled.json()["retry_after"] == int(throttled["Retry-After"])
        assert len(feed.requests) == 2

        # Staff may sync any teacher's calendar (once the spacing has passed).
        clock.shift(timedelta(seconds=31))
        feed.answers[FEED_PATH] = (200, "text/calendar", CALENDAR)
        by_staff = client_for(staff).post(url("busy-source-sync", source_id))
        assert (by_staff.status_code, by_staff.json()["status"]) == (200, "ok")

    def test_a_disabled_calendar_is_not_synced(self, teacher: Any, feed: LoopbackServer) -> None:
        source = feed_source(teacher, f"{feed.base}{FEED_PATH}")
        client = client_for(teacher)
        client.patch(url("busy-source-detail", source.pk), {"enabled": False}, format="json")
        response = client.post(url("busy-source-sync", source.pk))
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert feed.requests == []

    def test_an_address_not_allowed_fails_without_connecting(
        self, teacher: Any, feed: LoopbackServer, settings: Any
    ) -> None:
        settings.LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES = False
        source = feed_source(teacher, f"{feed.base}{FEED_PATH}")
        response = client_for(teacher).post(url("busy-source-sync", source.pk))
        assert response.status_code == 200
        assert response.json()["result"]["error_code"] == "address_not_allowed"
        assert_no_secret(response)
        assert feed.requests == []


class TestBusyPeriods:
    @pytest.fixture
    def periods(self, teacher: Any, other_teacher: Any) -> dict[str, Any]:
        mine, theirs = feed_source(teacher), feed_source(other_teacher)
        made = {}
        for name, source, start in [
            ("early", mine, datetime(2027, 1, 5, 9, tzinfo=UTC)),
            ("late", mine, datetime(2027, 1, 8, 9, tzinfo=UTC)),
            ("theirs", theirs, datetime(2027, 1, 6, 9, tzinfo=UTC)),
        ]:
            made[name] = BusyPeriod.objects.create(
                source=source,
                teacher=source.teacher,
                start_at_utc=start,
                end_at_utc=start + timedelta(hours=2),
            )
        return {"mine": mine, "theirs": theirs, **made}

    @staticmethod
    def starts(response: Any) -> list[str]:
        assert response.status_code == 200, response.json()
        return [row["start_at_utc"][:10] for row in response.json()["results"]]

    def test_own_periods_times_only(self, teacher: Any, periods: dict[str, Any]) -> None:
        response = client_for(teacher).get(url("busy-period-list"))
        assert self.starts(response) == ["2027-01-05", "2027-01-08"]
        assert set(response.json()["results"][0]) == {"source", "start_at_utc", "end_at_utc"}

    def test_staff_see_all_and_filter(
        self, staff: Any, other_teacher: Any, periods: dict[str, Any]
    ) -> None:
        client = client_for(staff)
        get = client.get
        assert self.starts(get(url("busy-period-list"))) == [
            "2027-01-05",
            "2027-01-06",
            "2027-01-08",
        ]
        teacher = {"teacher": as_json(other_teacher.pk)}
        assert self.starts(get(url("busy-period-list"), teacher)) == ["2027-01-06"]
        assert self.starts(get(url("busy-period-list"), {"source": periods["mine"].pk})) == [
            "2027-01-05",
            "2027-01-08",
        ]

    def test_start_and_end_keep_the_overlapping_periods(
        self, teacher: Any, periods: dict[str, Any]
    ) -> None:
        get = client_for(teacher).get
        # "early" runs 09:00-11:00 on the 5th: a range starting at 10:00 overlaps it.
        query = {"start": "2027-01-05T10:00:00Z", "end": "2027-01-08T09:00:00Z"}
        assert self.starts(get(url("busy-period-list"), query)) == ["2027-01-05"]
        query = {"start": "2027-01-05T11:00:00+00:00", "end": "2027-01-08T09:00:01Z"}
        assert self.starts(get(url("busy-period-list"), query)) == ["2027-01-08"]

    def test_naive_datetimes_are_refused(self, teacher: Any, periods: dict[str, Any]) -> None:
        response = client_for(teacher).get(url("busy-period-list"), {"start": "2027-01-05T10:00"})
        assert (response.status_code, response.json()["code"]) == (400, "naive_datetime")
        assert "start" in response.json()["errors"]

    def test_another_teachers_source_is_no_choice(
        self, teacher: Any, periods: dict[str, Any]
    ) -> None:
        client = client_for(teacher)
        theirs = client.get(url("busy-period-list"), {"source": periods["theirs"].pk})
        missing = client.get(url("busy-period-list"), {"source": periods["theirs"].pk + 100})
        assert (theirs.status_code, theirs.json()["code"]) == (400, "invalid")
        assert theirs.json() == missing.json()

    def test_others_see_nothing(self, other_student: Any, periods: dict[str, Any]) -> None:
        assert client_for(other_student).get(url("busy-period-list")).json()["count"] == 0


# The admin -----------------------------------------------------------------------------------


def admin_url(model: Any, view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture
def admin_client_(client: Client, staff: Any) -> Client:
    client.force_login(staff)
    return client


def add_form(teacher: Any, **fields: Any) -> dict[str, Any]:
    return {
        "teacher": str(teacher.pk),
        "name": "Work",
        "kind": "ics",
        "url": f"https://calendar.example.com{FEED_PATH}",
        "username": "",
        "password": "",
        "enabled": "on",
        **fields,
    }


def change_form(source: Any, **fields: Any) -> dict[str, Any]:
    return {
        "name": source.name,
        "kind": source.kind,
        "url": "",
        "username": source.username,
        "password": "",
        "enabled": "on" if source.enabled else "",
        **fields,
    }


class TestAdmin:
    def test_pages_never_show_a_secret(
        self, admin_client_: Client, teacher: Any, other_teacher: Any
    ) -> None:
        feed, dav = feed_source(teacher), caldav_source(other_teacher)
        BusyPeriod.objects.create(
            source=feed, teacher=teacher, start_at_utc=NOW, end_at_utc=NOW + timedelta(hours=1)
        )
        pages = [
            admin_client_.get(admin_url(BusySource, "changelist")),
            admin_client_.get(admin_url(BusySource, "changelist"), {"q": "other_teacher"}),
            admin_client_.get(admin_url(BusySource, "change", feed.pk)),
            admin_client_.get(admin_url(BusySource, "change", dav.pk)),
            admin_client_.get(admin_url(BusySource, "add")),
            admin_client_.get(admin_url(BusyPeriod, "changelist")),
        ]
        for page in pages:
            assert page.status_code == 200
            assert_no_secret(page)
        listing = pages[0].content.decode()
        assert "https://calendar.example.com/…" in listing
        assert "Home" in listing
        assert pages[1].context["cl"].result_count == 1
        filtered = admin_client_.get(
            admin_url(BusySource, "changelist"), {"kind__exact": "caldav", "status__exact": "new"}
        )
        assert filtered.context["cl"].result_count == 1
        # The change page has empty secret inputs, never a filled one.
        change = pages[2].content.decode()
        assert 'type="password" name="url"' in change
        assert 'name="password"' in change
        assert "leave empty to keep" in change

    def test_busy_periods_are_read_only(self, admin_client_: Client, teacher: Any) -> None:
        source = feed_source(teacher)
        period = BusyPeriod.objects.create(
            source=source, teacher=teacher, start_at_utc=NOW, end_at_utc=NOW + timedelta(hours=1)
        )
        assert admin_client_.get(admin_url(BusyPeriod, "add")).status_code == 403
        page = admin_client_.get(admin_url(BusyPeriod, "change", period.pk))
        assert page.status_code == 200
        assert b'name="start_at_utc"' not in page.content
        assert admin_client_.post(admin_url(BusyPeriod, "delete", period.pk)).status_code == 403

    def test_add_and_change_go_through_the_services(
        self, admin_client_: Client, teacher: Any
    ) -> None:
        response = admin_client_.post(admin_url(BusySource, "add"), add_form(teacher))
        assert response.status_code == 302, response.context["adminform"].form.errors
        source = BusySource.objects.get()
        assert source.url_encrypted != f"https://calendar.example.com{FEED_PATH}"
        assert decrypt_secret(source.url_encrypted) == f"https://calendar.example.com{FEED_PATH}"
        assert (source.url_hint, source.status, source.teacher) == (
            "https://calendar.example.com/…",
            "new",
            teacher,
        )
        stored = source.url_encrypted

        # Left empty, the address stays; a new one is encrypted in its place.
        changed = admin_client_.post(
            admin_url(BusySource, "change", source.pk), change_form(source, name="Job")
        )
        assert changed.status_code == 302
        source.refresh_from_db()
        assert (source.name, source.url_encrypted) == ("Job", stored)
        new_address = f"https://new.example.org/{TOKEN}.ics"
        admin_client_.post(
            admin_url(BusySource, "change", source.pk), change_form(source, url=new_address)
        )
        source.refresh_from_db()
        assert decrypt_secret(source.url_encrypted) == new_address
        assert source.url_hint == "https://new.example.org/…"

    def test_service_refusals_are_form_errors(self, admin_client_: Client, teacher: Any) -> None:
        bad = admin_client_.post(
            admin_url(BusySource, "add"), add_form(teacher, url=f"ftp://x.example/{TOKEN}")
        )
        assert bad.status_code == 200
        assert "(invalid)" in bad.content.decode()
        assert_no_secret(bad)
        missing = admin_client_.post(admin_url(BusySource, "add"), add_form(teacher, url=""))
        assert "Enter the calendar" in missing.content.decode()
        with override_settings(LIVECLASS_BOOKING_BUSY_MAX_SOURCES=1):
            feed_source(teacher)
            over = admin_client_.post(admin_url(BusySource, "add"), add_form(teacher))
        assert "(limit_reached)" in over.content.decode()
        assert_no_secret(over)
        assert BusySource.objects.count() == 1
        source = BusySource.objects.get()
        kind = admin_client_.post(
            admin_url(BusySource, "change", source.pk), change_form(source, kind="caldav")
        )
        assert "give the address again" in kind.content.decode()
        assert BusySource.objects.get().kind == "ics"

    def test_a_caldav_password_is_kept_replaced_or_removed(
        self, admin_client_: Client, teacher: Any
    ) -> None:
        source = caldav_source(teacher)
        stored = source.password_encrypted
        admin_client_.post(admin_url(BusySource, "change", source.pk), change_form(source))
        source.refresh_from_db()
        assert source.password_encrypted == stored
        admin_client_.post(
            admin_url(BusySource, "change", source.pk), change_form(source, password="new-pw")
        )
        source.refresh_from_db()
        assert decrypt_secret(source.password_encrypted) == "new-pw"
        admin_client_.post(
            admin_url(BusySource, "change", source.pk), change_form(source, clear_password="on")
        )
        source.refresh_from_db()
        assert source.password_encrypted == ""

    def test_delete_goes_through_the_service(self, admin_client_: Client, teacher: Any) -> None:
        source = feed_source(teacher)
        response = admin_client_.post(admin_url(BusySource, "delete", source.pk), {"post": "yes"})
        assert response.status_code == 302
        assert not BusySource.objects.exists()

    @pytest.mark.usefixtures("private_allowed")
    def test_sync_now_action(
        self, admin_client_: Client, teacher: Any, feed: LoopbackServer, clock: Any
    ) -> None:
        source = feed_source(teacher, f"{feed.base}{FEED_PATH}")

        def sync() -> str:
            response = admin_client_.post(
                admin_url(BusySource, "changelist"),
                {"action": "sync_selected", "_selected_action": [source.pk]},
                follow=True,
            )
            assert response.status_code == 200
            assert_no_secret(response)
            return str(response.content.decode())

        assert "Work: synced, 2 busy period(s)." in sync()
        assert BusyPeriod.objects.filter(source=source).count() == 2
        feed.answers[FEED_PATH] = (200, "text/html", LOGIN_PAGE)
        clock.shift(timedelta(seconds=31))
        page = sync()
        assert "the sync failed, earlier busy times kept" in page
        assert "(not_a_calendar)" in page
        assert "(throttled)" in sync()
        source.refresh_from_db()
        assert (source.status, source.period_count) == ("failed", 2)
