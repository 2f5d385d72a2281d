"""Calendar export through the REST API: the ``.ics`` of a booking and of a session, feed
tokens, the feed (no login, ETag/304, window, cancelled entries), add-to-calendar links and
the e-mail attachments. Every document is parsed by icalendar, vobject and ical.js
(tests/calendar_parsers.py), which must agree."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.models import CalendarFeedToken, TeacherBookingPolicy, get_booking_model
from liveclass_booking.notifications import dispatch
from tests.calendar_parsers import ParsedCalendar, ParsedEvent, parse_everywhere
from tests.resolvers import PeopleAbroad

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # a Monday
START = datetime(2027, 3, 10, 17, 0, tzinfo=UTC)
DOMAIN = "school.example.com"


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def calendar_settings(settings: Any) -> None:
    settings.LIVECLASS_BOOKING_CALENDAR_DOMAIN = DOMAIN


def api(user: Any = None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"liveclass_booking:{name}", kwargs=kwargs)


def ics(response: Any) -> ParsedCalendar:
    """The calendar of a 200 answer, checked on the wire and parsed by all three parsers."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    (calendar,) = parse_everywhere(response.content)
    return calendar


def only(calendar: ParsedCalendar) -> ParsedEvent:
    (event,) = calendar.events
    return event


def by_uid(calendar: ParsedCalendar) -> dict[str, ParsedEvent]:
    return {event.uid: event for event in calendar.events}


def booking_uid(booking: Any) -> str:
    return f"booking-{booking.pk}@{DOMAIN}"


def session_uid(session: Any) -> str:
    return f"session-{session.pk}@{DOMAIN}"


@pytest.fixture
def group(make_session: Any) -> Any:
    return make_session(
        start_at_utc=START,
        title="Algebra, Part 2; Review",
        meeting_link="https://meet.example.com/algebra",
        meeting_id="123 456",
        meeting_passcode="s3cret",
    )


@pytest.fixture
def names(student: Any, other_student: Any, teacher: Any) -> None:
    for user, first, last in (
        (student, "Anna", "Müller"),
        (other_student, "Ben", "Okafor"),
        (teacher, "Clara", "Schmidt"),
    ):
        user.first_name, user.last_name = first, last
        user.save()


@pytest.fixture
def lessons_now(teacher: Any, open_all_week: None) -> None:
    """Lessons of the teacher need no approval and no notice."""
    TeacherBookingPolicy.objects.create(
        teacher=teacher, requires_approval_for_one_on_one=False, min_notice_hours=0
    )


def new_feed(user: Any, name: str = "") -> str:
    """A feed token of ``user`` made through the API; the feed's path."""
    response = api(user).post(url("calendar-token-list"), {"name": name}, format="json")
    assert response.status_code == 201, response.content
    return str(urlsplit(response.json()["feed_url"]).path)


class TestFiles:
    def test_a_booking_file_is_a_published_calendar_with_one_stable_entry(
        self, group: Any, student: Any, teacher: Any, names: None
    ) -> None:
        booking = services.book_group_session(student=student, session=group)
        response = api(student).get(url("booking-ics", pk=booking.pk))
        calendar = ics(response)
        assert response["Content-Disposition"] == f'attachment; filename="booking-{booking.pk}.ics"'
        assert calendar.method == "PUBLISH"
        event = only(calendar)
        assert (event.uid, event.status, event.summary) == (
            booking_uid(booking),
            "CONFIRMED",
            "Algebra, Part 2; Review",
        )
        assert (event.dtstart, event.dtend) == (START, START + timedelta(hours=1))
        assert event.sequence == booking.calendar_sequence
        assert event.url == event.location == "https://meet.example.com/algebra"
        # The student's own file: the teacher's name, the meeting and its passcode.
        assert "Teacher: Clara Schmidt" in event.description
        assert "Meeting ID: 123 456" in event.description
        assert "Passcode: s3cret" in event.description
        assert (
            event.dtstamp == event.last_modified == fresh(booking).updated_at.replace(microsecond=0)
        )

    def test_the_passcode_is_only_in_the_owners_files(
        self, group: Any, student: Any, staff: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=group)
        event = only(ics(api(staff).get(url("booking-ics", pk=booking.pk))))
        assert "Join: https://meet.example.com/algebra" in event.description
        assert "s3cret" not in event.description

    def test_another_users_booking_is_not_found(
        self, group: Any, student: Any, other_student: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=group)
        response = api(other_student).get(url("booking-ics", pk=booking.pk))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_the_teachers_session_file_names_the_booked_students_and_the_students_do_not(
        self, group: Any, student: Any, other_student: Any, teacher: Any, names: None
    ) -> None:
        mine = services.book_group_session(student=student, session=group)
        services.book_group_session(student=other_student, session=group)
        event = only(ics(api(teacher).get(url("session-ics", pk=group.pk))))
        assert event.uid == session_uid(group)
        assert "Students (2): Anna Müller, Ben Okafor" in event.description
        assert "Passcode: s3cret" in event.description
        # A booked student gets their own booking's entry: no other student in it.
        event = only(ics(api(student).get(url("session-ics", pk=group.pk))))
        assert event.uid == booking_uid(mine)
        assert "Okafor" not in event.description + event.summary
        assert "Passcode: s3cret" in event.description

    def test_a_session_file_is_not_found_for_someone_not_booked_in_it(
        self, group: Any, student: Any
    ) -> None:
        response = api(student).get(url("session-ics", pk=group.pk))
        assert response.status_code == 404
        assert response.json() == {"code": "not_found", "detail": "Not found."}

    def test_errors_stay_json_when_the_client_asks_for_a_calendar(
        self, group: Any, student: Any
    ) -> None:
        client = api(student)
        response = client.get(url("session-ics", pk=group.pk), HTTP_ACCEPT="text/calendar")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        booking = services.book_group_session(student=student, session=group)
        response = client.get(url("booking-ics", pk=booking.pk), HTTP_ACCEPT="text/calendar")
        assert only(ics(response)).uid == booking_uid(booking)

    def test_a_lesson_keeps_its_uid_and_raises_its_sequence_through_every_change(
        self, student: Any, teacher: Any, course: Any, open_all_week: None
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, min_notice_hours=0)
        booking = services.request_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start_at_utc=START,
            end_at_utc=START + timedelta(hours=1),
        )
        seen = []

        def entry(current: Any) -> ParsedEvent:
            event = only(ics(api(student).get(url("booking-ics", pk=current.pk))))
            seen.append((event.uid, event.sequence, event.status, event.dtstart))
            return event

        assert entry(booking).status == "TENTATIVE"
        booking = services.approve_booking(booking, actor=teacher)
        assert entry(booking).status == "CONFIRMED"
        later = START + timedelta(days=1)
        moved = services.reschedule_booking(
            booking, actor=student, start_at_utc=later, end_at_utc=later + timedelta(hours=1)
        )
        assert entry(moved).dtstart == later
        moved = services.approve_booking(moved, actor=teacher)
        assert entry(moved).status == "CONFIRMED"
        # The replaced booking's file shows the entry where it moved to.
        assert seen[-1] == (entry(fresh(booking)), seen[-1])[1]
        services.cancel_booking(moved, actor=teacher, reason="ill")
        assert entry(fresh(moved)).status == "CANCELLED"
        assert {uid for uid, *_ in seen} == {booking_uid(booking)}
        changes = [seen[0], seen[1], seen[2], seen[3], seen[5]]
        sequences = [sequence for _, sequence, *_ in changes]
        assert sequences == sorted(set(sequences)), seen  # strictly increasing

    def test_a_session_change_raises_the_sequence_of_the_session_and_its_bookings(
        self, group: Any, student: Any, teacher: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=group)

        def sequences() -> tuple[int | None, int | None]:
            mine = only(ics(api(student).get(url("booking-ics", pk=booking.pk))))
            theirs = only(ics(api(teacher).get(url("session-ics", pk=group.pk))))
            return mine.sequence, theirs.sequence

        history = [sequences()]
        services.update_session(group, actor=teacher, meeting_link="https://meet.example.com/n")
        history.append(sequences())
        services.update_session(
            fresh(group),
            actor=teacher,
            start_at_utc=START + timedelta(hours=2),
            end_at_utc=START + timedelta(hours=3),
        )
        history.append(sequences())
        services.cancel_session(fresh(group), actor=teacher, reason="ill")
        history.append(sequences())
        for before, after in itertools.pairwise(history):
            assert after[0] > before[0], history
            assert after[1] > before[1], history
        event = only(ics(api(student).get(url("booking-ics", pk=booking.pk))))
        assert (event.uid, event.status, event.url) == (booking_uid(booking), "CANCELLED", None)


class TestFeed:
    def test_a_token_is_shown_once_and_only_its_hash_is_stored(self, student: Any) -> None:
        client = api(student)
        created = client.post(url("calendar-token-list"), {"name": "phone"}, format="json")
        assert created.status_code == 201
        body = created.json()
        secret = body["token"]
        assert len(secret) >= 40
        token = CalendarFeedToken.objects.get(pk=body["id"])
        assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in str(CalendarFeedToken.objects.filter(pk=token.pk).values().get())
        assert body["hint"] == secret[:6]
        assert body["feed_url"] == f"http://testserver/api/booking/calendar/feed/{secret}.ics"
        assert body["webcal_url"] == f"webcal://testserver/api/booking/calendar/feed/{secret}.ics"
        listed = client.get(url("calendar-token-list")).json()["results"]
        assert listed == [
            {
                "id": body["id"],
                "name": "phone",
                "hint": secret[:6],
                "created_at": body["created_at"],
                "last_used_at": None,
            }
        ]

    def test_the_feed_needs_no_login_and_carries_refresh_hints(
        self, group: Any, student: Any, teacher: Any, names: None
    ) -> None:
        booking = services.book_group_session(student=student, session=group)
        feed = new_feed(student)
        response = APIClient().get(feed)
        calendar = ics(response)
        assert calendar.method == "PUBLISH"
        assert calendar.properties["refresh-interval"] == timedelta(hours=1)
        assert calendar.properties["x-published-ttl"] == "PT1H"
        assert calendar.properties["x-wr-calname"] == "Anna Müller"
        assert [e.uid for e in calendar.events] == [booking_uid(booking)]
        assert response["ETag"].startswith('"')
        assert response["Cache-Control"] == "private, no-cache"
        assert parsedate_to_datetime(response["Last-Modified"]) == fresh(
            booking
        ).updated_at.replace(microsecond=0)
        assert CalendarFeedToken.objects.get().last_used_at == NOW

    def test_an_unchanged_feed_is_304_and_any_change_makes_it_200(
        self, group: Any, student: Any, teacher: Any, clock: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=group)
        feed = new_feed(student)
        client = APIClient()
        first = client.get(feed)
        etag = first["ETag"]
        again = client.get(feed, HTTP_IF_NONE_MATCH=etag)
        assert (again.status_code, again.content, again["ETag"]) == (304, b"", etag)
        clock.shift(timedelta(minutes=5))
        assert client.get(feed, HTTP_IF_NONE_MATCH=etag).status_code == 304
        changes = [
            lambda: services.update_session(
                fresh(group), actor=teacher, meeting_link="https://meet.example.com/new"
            ),
            lambda: services.update_session(fresh(group), actor=teacher, title="Renamed"),
            lambda: services.cancel_booking(fresh(booking), actor=teacher),
        ]
        for change in changes:
            clock.shift(timedelta(minutes=1))
            change()
            response = client.get(feed, HTTP_IF_NONE_MATCH=etag)
            assert response.status_code == 200
            assert response["ETag"] != etag
            etag = response["ETag"]
        assert only(ics(response)).status == "CANCELLED"

    def test_a_name_change_shows_in_the_teachers_feed_though_no_booking_changed(
        self, group: Any, student: Any, teacher: Any, names: None
    ) -> None:
        """The remembered ETag belongs to the entries' contents, not to the rows' times."""
        services.book_group_session(student=student, session=group)
        feed = new_feed(teacher)
        client = APIClient()
        etag = client.get(feed)["ETag"]
        assert client.get(feed, HTTP_IF_NONE_MATCH=etag).status_code == 304
        student.last_name = "Meyer"
        student.save()
        response = client.get(feed, HTTP_IF_NONE_MATCH=etag)
        assert response.status_code == 200
        assert "Students (1): Anna Meyer" in only(ics(response)).description

    def test_revalidation_works_without_a_cache_too(
        self, group: Any, student: Any, settings: Any
    ) -> None:
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        services.book_group_session(student=student, session=group)
        feed = new_feed(student)
        client = APIClient()
        first = client.get(feed)
        again = client.get(feed, HTTP_IF_NONE_MATCH=first["ETag"])
        assert (again.status_code, again["ETag"]) == (304, first["ETag"])
        assert client.get(feed, HTTP_IF_NONE_MATCH='"other"').content == first.content

    def test_the_feed_is_written_in_its_owners_language(
        self, group: Any, student: Any, settings: Any, monkeypatch: Any, names: None
    ) -> None:
        settings.LIVECLASS_BOOKING_POLICY_RESOLVER = "tests.resolvers.PeopleAbroad"
        monkeypatch.setitem(PeopleAbroad.LANGUAGES, "student", "de")
        services.book_group_session(student=student, session=group)
        event = only(ics(APIClient().get(new_feed(student), HTTP_ACCEPT_LANGUAGE="en")))
        assert "Lehrkraft: Clara Schmidt" in event.description
        assert "Kenncode: s3cret" in event.description

    def test_revoked_and_unknown_tokens_are_the_same_404(self, student: Any) -> None:
        feed = new_feed(student)
        client = APIClient()
        assert client.get(feed).status_code == 200
        token = CalendarFeedToken.objects.get()
        assert api(student).delete(url("calendar-token-detail", pk=token.pk)).status_code == 204
        revoked = client.get(feed)
        unknown = client.get(url("calendar-feed", token="x" * 43))
        assert revoked.status_code == unknown.status_code == 404
        assert revoked.json() == unknown.json() == {"code": "not_found", "detail": "Not found."}
        assert api(student).get(url("calendar-token-list")).json()["count"] == 0

    def test_a_deactivated_users_feed_closes(self, student: Any) -> None:
        feed = new_feed(student)
        student.is_active = False
        student.save()
        assert APIClient().get(feed).status_code == 404

    def test_rotating_is_revoke_and_create(self, student: Any) -> None:
        old = new_feed(student)
        new = new_feed(student)
        first = CalendarFeedToken.objects.order_by("pk").first()
        api(student).delete(url("calendar-token-detail", pk=first.pk))
        assert APIClient().get(old).status_code == 404
        assert APIClient().get(new).status_code == 200

    def test_a_user_holds_a_bounded_number_of_tokens(self, student: Any, settings: Any) -> None:
        settings.LIVECLASS_BOOKING_LIMITS = {"feed_tokens_per_user": 2}
        new_feed(student)
        new_feed(student)
        response = api(student).post(url("calendar-token-list"), {}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "limit_reached"
        assert response.json()["limit"] == "feed_tokens_per_user"
        assert CalendarFeedToken.objects.count() == 2

    def test_a_long_token_name_is_refused(self, student: Any) -> None:
        response = api(student).post(url("calendar-token-list"), {"name": "x" * 101}, format="json")
        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"name"}
        assert not CalendarFeedToken.objects.exists()

    def test_the_feed_is_throttled_per_token(self, student: Any, settings: Any) -> None:
        settings.LIVECLASS_BOOKING_THROTTLE_RATES = {"feed": "2/min"}
        first, second = new_feed(student), new_feed(student)
        client = APIClient()
        assert [client.get(first).status_code for _ in range(2)] == [200, 200]
        throttled = client.get(first)
        assert throttled.status_code == 429
        assert throttled.json()["code"] == "throttled"
        assert int(throttled["Retry-After"]) > 0
        assert client.get(second).status_code == 200  # another token, the same address

    def test_the_teachers_feed_has_sessions_with_names_and_lessons_with_the_student(
        self,
        group: Any,
        student: Any,
        other_student: Any,
        teacher: Any,
        course: Any,
        names: None,
        lessons_now: None,
    ) -> None:
        services.book_group_session(student=student, session=group)
        services.book_group_session(student=other_student, session=group)
        lesson = services.request_one_on_one(
            student=other_student,
            teacher=teacher,
            course=course,
            start_at_utc=START + timedelta(days=1),
            end_at_utc=START + timedelta(days=1, hours=1),
        )
        events = by_uid(ics(APIClient().get(new_feed(teacher))))
        assert set(events) == {session_uid(group), booking_uid(lesson)}
        assert "Students (2): Anna Müller, Ben Okafor" in events[session_uid(group)].description
        assert events[booking_uid(lesson)].summary == f"{course} · Ben Okafor"
        # The student's feed has their seat, and no other student.
        (event,) = ics(APIClient().get(new_feed(student))).events
        assert "Okafor" not in (event.description or "") + (event.summary or "")

    def test_a_student_leaving_updates_the_teachers_entry_and_its_stamp_goes_forward(
        self, group: Any, student: Any, other_student: Any, teacher: Any, clock: Any, names: None
    ) -> None:
        services.book_group_session(student=student, session=group)
        leaving = services.book_group_session(student=other_student, session=group)
        feed = new_feed(teacher)
        before = only(ics(APIClient().get(feed)))
        clock.shift(timedelta(hours=1))
        services.cancel_booking(leaving, actor=other_student)
        after = only(ics(APIClient().get(feed)))
        assert "Students (2): Anna Müller, Ben Okafor" in before.description
        assert "Students (1): Anna Müller" in after.description
        assert after.dtstamp > before.dtstamp

    def test_cancelled_entries_stay_a_while_then_leave(
        self, group: Any, student: Any, teacher: Any, clock: Any, settings: Any
    ) -> None:
        settings.LIVECLASS_BOOKING_CALENDAR_FEED_KEEP_CANCELLED = timedelta(days=2)
        booking = services.book_group_session(student=student, session=group)
        feed = new_feed(student)
        services.cancel_booking(booking, actor=teacher)
        clock.shift(timedelta(days=1))
        assert only(ics(APIClient().get(feed))).status == "CANCELLED"
        clock.shift(timedelta(days=2))
        assert ics(APIClient().get(feed)).events == ()

    def test_a_cancelled_session_is_cancelled_in_the_teachers_feed(
        self, group: Any, student: Any, teacher: Any
    ) -> None:
        services.book_group_session(student=student, session=group)
        services.cancel_session(group, actor=teacher, reason="ill")
        event = only(ics(APIClient().get(new_feed(teacher))))
        assert (event.uid, event.status, event.url) == (session_uid(group), "CANCELLED", None)
        assert "s3cret" not in (event.description or "")

    def test_the_feed_covers_its_window(
        self, make_session: Any, student: Any, settings: Any
    ) -> None:
        settings.LIVECLASS_BOOKING_CALENDAR_FEED_PAST = timedelta(days=7)
        settings.LIVECLASS_BOOKING_CALENDAR_FEED_FUTURE = timedelta(days=30)
        starts = [NOW - timedelta(days=8), NOW - timedelta(days=6), NOW + timedelta(days=29)]
        starts.append(NOW + timedelta(days=31))
        made = []
        for start in starts:
            session = make_session(start_at_utc=start)
            made.append(
                get_booking_model().objects.create(
                    booking_type="group_session",
                    session=session,
                    course=session.course,
                    teacher=session.teacher,
                    student_user=student,
                    start_at_utc=start,
                    end_at_utc=start + timedelta(hours=1),
                    status="confirmed",
                )
            )
        uids = [e.uid for e in ics(APIClient().get(new_feed(student))).events]
        assert uids == [booking_uid(made[1]), booking_uid(made[2])]

    def test_a_rescheduled_lesson_is_one_entry_at_its_new_time(
        self, student: Any, teacher: Any, course: Any, lessons_now: None
    ) -> None:
        booking = services.request_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start_at_utc=START,
            end_at_utc=START + timedelta(hours=1),
        )
        later = START + timedelta(days=2)
        moved = services.reschedule_booking(
            booking, actor=student, start_at_utc=later, end_at_utc=later + timedelta(hours=1)
        )
        again = services.reschedule_booking(
            moved,
            actor=student,
            start_at_utc=later + timedelta(hours=3),
            end_at_utc=later + timedelta(hours=4),
        )
        for user in (student, teacher):
            event = only(ics(APIClient().get(new_feed(user))))
            assert (event.uid, event.dtstart) == (booking_uid(booking), later + timedelta(hours=3))
            assert event.sequence == fresh(again).calendar_sequence

    def test_a_feed_costs_the_same_queries_for_5_and_500_entries(
        self, make_session: Any, student: Any, teacher: Any, course: Any
    ) -> None:
        """Sessions the student booked, lessons they take (some in rescheduled chains and
        series) and sessions they teach themselves: constant queries however many."""
        feed = new_feed(student)
        client = APIClient()

        def grow(n: int) -> None:
            model = get_booking_model()
            have = model.objects.filter(student_user=student).count()
            for i in range(have, n):
                start = NOW + timedelta(days=1, hours=3 * i)
                session = make_session(start_at_utc=start, meeting_passcode=f"p{i}")
                model.objects.create(
                    booking_type="group_session",
                    session=session,
                    course=course,
                    teacher=teacher,
                    student_user=student,
                    start_at_utc=start,
                    end_at_utc=start + timedelta(hours=1),
                    status="confirmed",
                )

        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(feed)
            assert response.status_code == 200
            return len(captured)

        grow(5)
        queries()  # the first request also records the token's use
        small = queries()
        grow(500)
        assert queries() == small
        assert len(ics(client.get(feed)).events) == 500


class TestLinks:
    def test_booking_and_session_answers_carry_add_to_calendar_links(
        self, group: Any, student: Any, teacher: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=group)
        body = api(student).get(url("booking-detail", pk=booking.pk)).json()
        links = body["calendar_links"]
        google = parse_qs(urlsplit(links["google"]).query)
        assert links["google"].startswith("https://calendar.google.com/calendar/render?")
        assert google["dates"] == ["20270310T170000Z/20270310T180000Z"]
        assert google["text"] == ["Algebra, Part 2; Review"]
        assert google["location"] == ["https://meet.example.com/algebra"]
        outlook = parse_qs(urlsplit(links["outlook"]).query)
        assert outlook["startdt"] == ["2027-03-10T17:00:00Z"]
        assert outlook["enddt"] == ["2027-03-10T18:00:00Z"]
        assert links["ics"] == f"http://testserver{url('booking-ics', pk=booking.pk)}"
        assert all("s3cret" not in link for link in links.values())
        # A session read by someone who does not manage it names no meeting link.
        body = api(student).get(url("session-detail", pk=group.pk)).json()
        assert "location" not in parse_qs(urlsplit(body["calendar_links"]["google"]).query)
        body = api(teacher).get(url("session-detail", pk=group.pk)).json()
        google = parse_qs(urlsplit(body["calendar_links"]["google"]).query)
        assert google["location"] == ["https://meet.example.com/algebra"]
        assert body["calendar_links"]["ics"].endswith(url("session-ics", pk=group.pk))


class TestMail:
    def test_attachments_come_from_the_same_builder_and_parse_everywhere(
        self, group: Any, student: Any, teacher: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=group)
        services.cancel_booking(booking, actor=teacher)
        mail.outbox.clear()
        dispatch()
        attachments = [
            content.encode()
            for message in mail.outbox
            if student.email in message.to
            for _name, content, _type in message.attachments
        ]
        invite, cancel = parse_everywhere(*attachments)
        assert (invite.method, cancel.method) == ("REQUEST", "CANCEL")
        uids = {only(invite).uid, only(cancel).uid}
        assert uids == {only(ics(api(student).get(url("booking-ics", pk=booking.pk)))).uid}
        assert only(cancel).sequence > only(invite).sequence


def fresh(obj: Any) -> Any:
    return type(obj).objects.get(pk=obj.pk)
