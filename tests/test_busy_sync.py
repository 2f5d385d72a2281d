"""Syncing teachers' busy calendars (``liveclass_booking.calendar.sync``) from a real feed
server on loopback, and what the imported busy periods do: slots, lesson requests, series and
reschedules refuse them as ``slot_unavailable`` without telling the event's title."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from liveclass_booking import services
from liveclass_booking.calendar import secrets
from liveclass_booking.calendar.busy import busy_intervals
from liveclass_booking.calendar.sources import (
    create_busy_source,
    delete_busy_source,
    update_busy_source,
)
from liveclass_booking.calendar.sync import sync_due_sources, sync_now, sync_source
from liveclass_booking.exceptions import (
    InvalidInput,
    LimitReached,
    NotAllowed,
    SlotUnavailable,
    SyncTooSoon,
)
from liveclass_booking.models import BusyPeriod, BusySource, TeacherBookingPolicy
from liveclass_booking.recurrence import Recurrence
from tests.concurrency import race
from tests.feed_server import FeedServer, feed_server, vcalendar, vevent

pytestmark = pytest.mark.django_db(transaction=False)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)  # a Monday
SECRET_TOKEN = "private-8f3a2c"  # the part of a feed address that must never be shown
TITLE = "Dentist appointment"

#: Wednesday 9 January 2030, 10:00-11:00 Berlin (09:00-10:00 UTC), and a weekly Friday event.
CALENDAR = vcalendar(
    vevent(
        "dentist@test",
        ";TZID=Europe/Berlin:20300109T100000",
        ";TZID=Europe/Berlin:20300109T110000",
        TITLE,
    ),
    vevent(
        "weekly@test",
        ";TZID=Europe/Berlin:20300111T140000",
        ";TZID=Europe/Berlin:20300111T150000",
        "Choir",
        "RRULE:FREQ=WEEKLY;COUNT=3",
    ),
)
DENTIST = (datetime(2030, 1, 9, 9, tzinfo=UTC), datetime(2030, 1, 9, 10, tzinfo=UTC))


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 1, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture(autouse=True)
def frozen() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def loopback_allowed(settings: Any) -> None:
    settings.LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with feed_server() as server:
        server.set(f"/{SECRET_TOKEN}/basic.ics", CALENDAR, etag='"v1"')
        yield server


@pytest.fixture
def source(feed: FeedServer, teacher: Any) -> Any:
    return create_busy_source(
        actor=teacher, teacher=teacher, kind="ics", url=feed.url(f"/{SECRET_TOKEN}/basic.ics")
    )


def periods(source: Any) -> list[tuple[datetime, datetime]]:
    rows = BusyPeriod.objects.filter(source=source).order_by("start_at_utc")
    return list(rows.values_list("start_at_utc", "end_at_utc"))


def expected() -> list[tuple[datetime, datetime]]:
    return busy_intervals(CALENDAR, NOW - timedelta(days=1), NOW + timedelta(days=180), "UTC")


class TestSources:
    def test_the_address_is_stored_encrypted_and_shown_only_as_a_hint(
        self, source: Any, feed: FeedServer
    ) -> None:
        stored = BusySource.objects.get(pk=source.pk)
        assert SECRET_TOKEN not in stored.url_encrypted
        assert secrets.decrypt_secret(stored.url_encrypted) == feed.url(
            f"/{SECRET_TOKEN}/basic.ics"
        )
        assert stored.url_hint == f"http://127.0.0.1:{feed.port}/…"
        assert SECRET_TOKEN not in str(stored)
        assert (stored.status, stored.next_sync_at) == ("new", NOW)

    def test_a_caldav_password_is_encrypted_and_its_address_shown(self, teacher: Any) -> None:
        source = create_busy_source(
            actor=teacher,
            teacher=teacher,
            kind="caldav",
            url="https://tutor:pw@dav.example.com/calendars/tutor/personal/?x=1",
            username="tutor",
            password="app-password-1",
        )
        assert source.url_hint == "https://dav.example.com/calendars/tutor/personal/"
        assert "app-password-1" not in source.password_encrypted
        assert secrets.decrypt_secret(source.password_encrypted) == "app-password-1"

    @pytest.mark.parametrize(
        ("url", "fragment"),
        [
            ("ftp://example.com/cal.ics", "must start with"),
            ("https:///cal.ics", "no host"),
            ("https://example.com:99999/cal.ics", "not a valid address"),
            ("", "enter the calendar"),
            ("https://example.com/" + "x" * 2000, "at most 2000"),
        ],
    )
    def test_a_bad_address_is_refused_without_echoing_it(
        self, teacher: Any, url: str, fragment: str
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            create_busy_source(actor=teacher, teacher=teacher, kind="ics", url=url)
        assert fragment in refused.value.detail
        assert "example.com/" not in refused.value.detail
        assert not BusySource.objects.exists()

    def test_only_the_teacher_or_staff_manage_a_source(
        self, source: Any, student: Any, staff: Any
    ) -> None:
        with pytest.raises(NotAllowed):
            update_busy_source(source, actor=student, name="mine")
        with pytest.raises(NotAllowed):
            sync_now(source, actor=student)
        with pytest.raises(NotAllowed):
            delete_busy_source(source, actor=student)
        update_busy_source(source, actor=staff, name="Google")
        assert BusySource.objects.get(pk=source.pk).name == "Google"

    def test_a_student_cannot_register_a_source(self, student: Any) -> None:
        with pytest.raises(InvalidInput):
            create_busy_source(actor=student, teacher=student, kind="ics", url="https://x.test/")

    def test_a_teacher_registers_at_most_the_configured_number(
        self, teacher: Any, settings: Any
    ) -> None:
        settings.LIVECLASS_BOOKING_BUSY_MAX_SOURCES = 2
        for n in range(2):
            create_busy_source(
                actor=teacher, teacher=teacher, kind="ics", url=f"https://x.test/{n}"
            )
        with pytest.raises(LimitReached) as refused:
            create_busy_source(actor=teacher, teacher=teacher, kind="ics", url="https://x.test/3")
        assert refused.value.data == {"limit": "busy_sources", "max": 2}

    def test_a_feed_takes_no_username(self, teacher: Any) -> None:
        with pytest.raises(InvalidInput):
            create_busy_source(
                actor=teacher, teacher=teacher, kind="ics", url="https://x.test/", username="u"
            )


class TestSync:
    def test_a_sync_stores_the_busy_intervals_and_validators(
        self, source: Any, feed: FeedServer
    ) -> None:
        [result] = sync_due_sources()
        assert (result.outcome, result.periods) == ("synced", 4)
        assert periods(source) == expected()
        assert DENTIST in periods(source)
        source.refresh_from_db()
        assert (source.status, source.etag, source.period_count) == ("ok", '"v1"', 4)
        assert source.last_synced_at == source.last_attempt_at == NOW
        assert source.next_sync_at == NOW + timedelta(minutes=15)
        assert sync_due_sources() == []  # not due again yet

    def test_an_unchanged_feed_is_answered_304_and_keeps_the_periods(
        self, source: Any, feed: FeedServer, frozen: Any
    ) -> None:
        sync_source(source)
        frozen.shift(timedelta(minutes=16))
        [result] = sync_due_sources()
        assert result.outcome == "not_modified"
        assert feed.hits(f"/{SECRET_TOKEN}/basic.ics")[-1]["If-None-Match"] == '"v1"'
        assert periods(source) == expected()

    def test_once_the_window_moves_on_the_feed_is_read_again(
        self, source: Any, feed: FeedServer, frozen: Any
    ) -> None:
        sync_source(source)
        frozen.shift(timedelta(days=4))
        assert sync_source(source).outcome == "synced"
        assert "If-None-Match" not in feed.hits(f"/{SECRET_TOKEN}/basic.ics")[-1]
        # The dentist lies before the new window (it started more than a day ago).
        assert DENTIST not in periods(source)

    def test_a_changed_feed_replaces_the_periods(self, source: Any, feed: FeedServer) -> None:
        sync_source(source)
        moved = vcalendar(vevent("dentist@test", ":20300110T090000Z", ":20300110T100000Z", TITLE))
        feed.set(f"/{SECRET_TOKEN}/basic.ics", moved, etag='"v2"')
        update_busy_source(source, actor=None, name="again")  # does not re-point: no reset
        source.refresh_from_db()
        source.etag = ""  # as if the server had sent no validator
        assert sync_source(source).outcome == "synced"
        assert periods(source) == [
            (datetime(2030, 1, 10, 9, tzinfo=UTC), datetime(2030, 1, 10, 10, tzinfo=UTC))
        ]

    @pytest.mark.parametrize(
        ("answer", "code"),
        [
            ({"body": b"<html>Sign in</html>", "content_type": "text/html"}, "not_a_calendar"),
            ({"body": b"oops", "status": 500}, "http_status"),
            ({"body": CALENDAR, "delay": 1.5}, "timeout"),
            ({"body": CALENDAR + b" " * 20_000}, "too_large"),
            ({"body": b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:nonsense\r\n"}, "unparsable"),
        ],
    )
    def test_a_failed_sync_keeps_the_last_good_periods(
        self, source: Any, feed: FeedServer, settings: Any, answer: dict[str, Any], code: str
    ) -> None:
        settings.LIVECLASS_BOOKING_BUSY_FETCH_TIMEOUT = 1
        settings.LIVECLASS_BOOKING_BUSY_MAX_BYTES = 10_000
        sync_source(source)
        before = periods(source)
        feed.set(f"/{SECRET_TOKEN}/basic.ics", **answer)
        source.etag = ""
        result = sync_source(source)
        assert (result.outcome, result.error_code) == ("failed", code)
        assert periods(source) == before == expected()
        source.refresh_from_db()
        assert (source.status, source.last_error_code) == ("failed", code)
        assert source.last_error
        assert SECRET_TOKEN not in source.last_error
        assert source.last_synced_at == NOW
        assert source.period_count == 4
        assert source.failure_count == 1

    def test_a_first_sync_that_fails_leaves_no_periods(self, source: Any, feed: FeedServer) -> None:
        feed.set(f"/{SECRET_TOKEN}/basic.ics", b"<html/>", content_type="text/html")
        assert sync_source(source).error_code == "not_a_calendar"
        assert periods(source) == []

    def test_failures_back_off_and_a_success_resets(
        self, source: Any, feed: FeedServer, frozen: Any
    ) -> None:
        feed.set(f"/{SECRET_TOKEN}/basic.ics", b"gone", status=404)
        waits = []
        for _ in range(7):
            sync_source(source)
            source.refresh_from_db()
            waits.append(source.next_sync_at - NOW)
        assert waits[:3] == [timedelta(minutes=m) for m in (15, 30, 60)]
        assert waits[-1] == timedelta(hours=6)
        feed.set(f"/{SECRET_TOKEN}/basic.ics", CALENDAR)
        sync_source(source)
        source.refresh_from_db()
        assert (source.failure_count, source.next_sync_at) == (0, NOW + timedelta(minutes=15))

    def test_a_private_address_is_refused_unless_allowed(self, source: Any, settings: Any) -> None:
        settings.LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES = False
        assert sync_source(source).error_code == "address_not_allowed"

    def test_a_secret_the_keys_no_longer_open_is_reported(self, source: Any, settings: Any) -> None:
        old = settings.SECRET_KEY
        settings.SECRET_KEY = "a-new-key-" + "x" * 50
        assert sync_source(source).error_code == "secret_unreadable"
        settings.SECRET_KEY_FALLBACKS = [old]
        source.etag = ""
        assert sync_source(source).outcome == "synced"

    def test_disabling_a_source_removes_its_periods_and_enabling_makes_it_due(
        self, source: Any, frozen: Any
    ) -> None:
        sync_source(source)
        update_busy_source(source, actor=None, enabled=False)
        assert periods(source) == []
        assert source.period_count == 0
        frozen.shift(timedelta(hours=1))
        assert sync_due_sources() == []
        with pytest.raises(InvalidInput):
            sync_now(source, actor=None)
        update_busy_source(source, actor=None, enabled=True)
        [result] = sync_due_sources()
        assert result.outcome == "synced"

    def test_sync_now_is_spaced(self, source: Any, frozen: Any) -> None:
        sync_now(source, actor=None)
        frozen.shift(timedelta(seconds=10))
        with pytest.raises(SyncTooSoon) as refused:
            sync_now(source, actor=None)
        assert refused.value.data == {"retry_after": 20}
        frozen.shift(timedelta(seconds=21))
        assert sync_now(source, actor=None).outcome == "not_modified"

    def test_deleting_a_source_removes_its_periods(self, source: Any) -> None:
        sync_source(source)
        delete_busy_source(source, actor=None)
        assert not BusyPeriod.objects.exists()

    def test_the_command_syncs_due_sources_and_named_ones(
        self, source: Any, feed: FeedServer
    ) -> None:
        out = StringIO()
        call_command("liveclass_booking_sync_busy", stdout=out)
        assert "1 busy calendars synced, 0 failed." in out.getvalue()
        call_command("liveclass_booking_sync_busy", "--source", str(source.pk), stdout=out)
        assert len(feed.hits(f"/{SECRET_TOKEN}/basic.ics")) == 2
        with pytest.raises(CommandError):
            call_command("liveclass_booking_sync_busy", "--source", "999999")

    def test_the_tasks_sync_one_source_and_the_due_ones(self, source: Any) -> None:
        from liveclass_booking import tasks

        job: Any = tasks.sync_due_busy_sources
        call = getattr(job, "call", job)
        assert call() == "1 busy calendars synced, 0 failed."
        one: Any = tasks.sync_busy_source
        assert "not_modified (4 busy periods)" in getattr(one, "call", one)(str(source.pk))
        assert getattr(one, "call", one)("999999") == "skipped"


@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_runners_in_parallel_fetch_each_due_source_once(teacher: Any) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("needs concurrent connections")
    with feed_server() as feed:
        for n in range(4):
            feed.set(f"/{n}.ics", CALENDAR, delay=0.2)
            create_busy_source(actor=None, teacher=teacher, kind="ics", url=feed.url(f"/{n}.ics"))
        results = race(4, lambda i: [r.outcome for r in sync_due_sources()])
        assert sorted(o for _, outcomes in results for o in outcomes) == ["synced"] * 4
        assert sorted(path for path, _ in feed.requests) == [f"/{n}.ics" for n in range(4)]


@pytest.mark.every_database
class TestBusyPeriodsBlockLessons:
    @pytest.fixture(autouse=True)
    def synced(self, source: Any, open_all_week: None) -> None:
        assert sync_source(source).outcome == "synced"

    def test_slots_leave_out_busy_times(self, teacher: Any, course: Any) -> None:
        slots = services.free_slots(
            teacher, course, berlin(9, 8), berlin(9, 13), timedelta(hours=1)
        )
        assert slots == [berlin(9, 8), berlin(9, 9), berlin(9, 11), berlin(9, 12)]

    def test_a_lesson_request_overlapping_a_busy_period_is_refused(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        with pytest.raises(SlotUnavailable) as refused:
            services.request_one_on_one(
                student=student,
                teacher=teacher,
                course=course,
                start_at_utc=berlin(9, 10, 30),
                end_at_utc=berlin(9, 11, 30),
            )
        assert "own calendar" in refused.value.detail
        assert TITLE not in refused.value.detail
        assert "Dentist" not in str(refused.value.data)
        assert refused.value.data["busy_from"] == DENTIST[0].isoformat()

    def test_buffers_keep_lessons_away_from_busy_periods(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, buffer_after_minutes=15)
        with pytest.raises(SlotUnavailable):
            services.request_one_on_one(
                student=student,
                teacher=teacher,
                course=course,
                start_at_utc=berlin(9, 9),
                end_at_utc=berlin(9, 9, 50),
            )

    def test_a_recurring_busy_event_blocks_every_occurrence(
        self, teacher: Any, course: Any
    ) -> None:
        for day in (11, 18, 25):
            assert not services.is_interval_bookable(
                teacher, course, berlin(day, 14), berlin(day, 15)
            )
        assert services.is_interval_bookable(teacher, course, berlin(11, 15), berlin(11, 16))

    def test_series_planning_skips_busy_occurrences(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        report = services.create_series(
            student=student,
            teacher=teacher,
            course=course,
            series_type="one_on_one_series",
            rule=Recurrence(
                frequency="weekly",
                start_date=date(2030, 1, 9),
                start_time=time(10),
                timezone="Europe/Berlin",
                duration_minutes=60,
                occurrence_count=3,
            ),
            accept_partial=True,
        )
        outcomes = [(o.status, o.item.code) for o in report.occurrences]
        assert outcomes[0] == ("skipped", "slot_unavailable")
        assert [status for status, _ in outcomes[1:]] == ["pending", "pending"]

    def test_a_reschedule_into_a_busy_period_is_refused(
        self, teacher: Any, student: Any, course: Any
    ) -> None:
        lesson = services.request_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start_at_utc=berlin(10, 10),
            end_at_utc=berlin(10, 11),
        )
        services.approve_booking(lesson, actor=teacher)
        with pytest.raises(SlotUnavailable):
            services.reschedule_booking(
                lesson, actor=teacher, start_at_utc=berlin(9, 10), end_at_utc=berlin(9, 11)
            )

    def test_the_request_path_does_not_fetch(
        self, teacher: Any, student: Any, course: Any, feed: FeedServer
    ) -> None:
        before = len(feed.requests)
        services.free_slots(teacher, course, berlin(9, 8), berlin(16, 8), timedelta(hours=1))
        services.request_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start_at_utc=berlin(9, 12),
            end_at_utc=berlin(9, 13),
        )
        assert len(feed.requests) == before
