"""Notifications: every event kind reaches the right people with the right message.

The services write outbox events in the transaction of each change; :func:`dispatch` turns
them into deliveries and mails. Here mail goes to Django's in-memory outbox (what is said);
tests/test_notification_delivery.py delivers to a real SMTP server (that it arrives, once).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from email import message_from_string
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from icalendar import Calendar

from liveclass_booking import services
from liveclass_booking.choices import DeliveryStatus
from liveclass_booking.choices import NotificationKind as K
from liveclass_booking.models import (
    NotificationDelivery,
    NotificationEvent,
    SessionWaitlist,
    TeacherBookingPolicy,
    get_booking_model,
)
from liveclass_booking.notifications import dispatch
from liveclass_booking.recurrence import Recurrence
from tests.resolvers import PeopleAbroad

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # a Monday
START = datetime(2027, 3, 10, 17, 0, tzinfo=UTC)  # 18:00 in Berlin, 12:00 in New York
ABROAD = "tests.resolvers.PeopleAbroad"


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def abroad(settings: Any) -> None:
    settings.LIVECLASS_BOOKING_POLICY_RESOLVER = ABROAD


@pytest.fixture
def people(student: Any, other_student: Any, teacher: Any) -> dict[str, Any]:
    """Zones by username: see tests.resolvers.PeopleAbroad."""
    return {"student": student, "other": other_student, "teacher": teacher}


@pytest.fixture
def group(make_session: Any, people: Any) -> Any:
    return make_session(
        start_at_utc=START,
        capacity=1,
        title="Algebra & Co",
        meeting_link="https://meet.example.com/algebra",
    )


def staff_user(user_model: Any) -> Any:
    return user_model.objects.create_superuser(username="boss", email="boss@example.com")


def sent() -> list[Any]:
    """Run the dispatcher; return the mails it sent, and empty the outbox."""
    mail.outbox.clear()
    dispatch()
    out = list(mail.outbox)
    mail.outbox.clear()
    return out


def by_recipient(mails: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for message in mails:
        (address,) = message.to
        assert address not in found, f"two mails to {address}"
        found[address] = message
    return found


def calendars(message: Any) -> list[Calendar]:
    """The .ics attachments, parsed back with icalendar."""
    return [Calendar.from_ical(content) for _name, content, _type in message.attachments]


def only_event(message: Any) -> tuple[Calendar, Any]:
    (cal,) = calendars(message)
    (event,) = cal.walk("VEVENT")
    return cal, event


class TestBookingEvents:
    def test_confirmed_booking_tells_student_and_teacher_in_their_zones(
        self, group: Any, people: Any
    ) -> None:
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "t@example.com"}
        student_mail = mails["s@example.com"]
        assert student_mail.subject == "Booking confirmed: Algebra & Co"
        assert "Your booking for Algebra & Co is confirmed." in student_mail.body
        # 17:00 UTC is 12:00 in New York (EST) and 18:00 in Berlin (CET), zone named.
        assert "Wednesday 10 March 2027, 12:00 – 13:00 (America/New_York)" in student_mail.body
        assert "18:00 – 19:00 (Europe/Berlin)" in mails["t@example.com"].body
        assert "https://meet.example.com/algebra" in student_mail.body
        html = student_mail.alternatives[0]
        assert html[1] == "text/html"
        assert "Algebra &amp; Co" in html[0]
        assert 'href="https://meet.example.com/algebra"' in html[0]
        cal, event = only_event(student_mail)
        assert cal["METHOD"] == "REQUEST"
        assert event["STATUS"] == "CONFIRMED"
        assert str(event["UID"]) == f"booking-{booking.pk}@testserver"
        assert event.decoded("DTSTART") == START
        assert event.decoded("DTEND") == START + timedelta(hours=1)
        assert str(event["URL"]) == "https://meet.example.com/algebra"
        assert student_mail.extra_headers["Message-ID"].startswith("<liveclass-booking.")

    def test_request_waits_for_the_teacher_then_approval_and_decline(
        self, group: Any, people: Any, make_session: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(
            teacher=people["teacher"], requires_approval_for_group=True
        )
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        mails = by_recipient(sent())
        assert mails["t@example.com"].subject == "Request waiting for approval: Algebra & Co"
        assert "student asks to book Algebra & Co" in mails["t@example.com"].body
        assert "teacher's approval" in mails["s@example.com"].body
        _cal, event = only_event(mails["s@example.com"])
        assert event["STATUS"] == "TENTATIVE"
        first_sequence = int(event["SEQUENCE"])

        services.approve_booking(booking, actor=people["teacher"])
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "t@example.com"}
        _cal, event = only_event(mails["s@example.com"])
        assert event["STATUS"] == "CONFIRMED"
        assert int(event["SEQUENCE"]) >= first_sequence

        other = make_session(start_at_utc=START + timedelta(days=1), title="Geometry")
        second = services.book_group_session(
            student=people["student"], session=other, actor=people["student"]
        )
        sent()
        services.decline_booking(second, actor=people["teacher"], reason="Full term")
        (declined,) = sent()
        assert declined.to == ["s@example.com"]
        assert "Reason: Full term" in declined.body
        cal, event = only_event(declined)
        assert cal["METHOD"] == "CANCEL"
        assert str(event["UID"]) == f"booking-{second.pk}@testserver"

    def test_cancellation_names_who_cancelled_and_cancels_the_calendar_entry(
        self, group: Any, people: Any, clock: Any
    ) -> None:
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        (request,) = [m for m in sent() if m.to == ["s@example.com"]]
        _cal, first = only_event(request)
        clock.shift(timedelta(minutes=5))
        services.cancel_booking(booking, actor=people["teacher"], reason="Ill")
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "t@example.com"}
        assert "was cancelled by teacher" in mails["s@example.com"].body
        cal, event = only_event(mails["s@example.com"])
        assert cal["METHOD"] == "CANCEL"
        assert event["UID"] == first["UID"]
        assert int(event["SEQUENCE"]) > int(first["SEQUENCE"])

    def test_reschedule_moves_the_calendar_entry_and_tells_both_teachers(
        self, group: Any, people: Any, make_session: Any, user_model: Any, clock: Any
    ) -> None:
        from tests.conftest import grant_teaching

        substitute = grant_teaching(
            user_model.objects.create_user(username="sub", email="sub@example.com")
        )
        later = make_session(
            start_at_utc=START + timedelta(days=7), title="Algebra & Co", teacher=substitute
        )
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        first = only_event(by_recipient(sent())["s@example.com"])[1]
        clock.shift(timedelta(minutes=1))
        new = services.reschedule_booking(booking, actor=staff_user(user_model), session=later)
        mails = by_recipient(sent())
        # The student, the new teacher and the teacher the seat left.
        assert set(mails) == {"s@example.com", "sub@example.com", "t@example.com"}
        body = mails["s@example.com"].body
        assert "has moved from Wednesday 10 March 2027, 12:00" in body
        assert "Wednesday 17 March 2027, 13:00" in body  # New York: daylight time by then
        cal, event = only_event(mails["s@example.com"])
        # One REQUEST with the UID of the booking it replaced and a higher SEQUENCE: the
        # calendar moves its entry.
        assert cal["METHOD"] == "REQUEST"
        assert new.pk != booking.pk
        assert event["UID"] == first["UID"] == f"booking-{booking.pk}@testserver"
        assert int(event["SEQUENCE"]) > int(first["SEQUENCE"])
        assert event.decoded("DTSTART") == START + timedelta(days=7)

    def test_expired_request_tells_both(self, group: Any, people: Any, clock: Any) -> None:
        TeacherBookingPolicy.objects.create(
            teacher=people["teacher"], requires_approval_for_group=True, approval_timeout_hours=2
        )
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        sent()
        clock.shift(timedelta(hours=3))
        call_command("liveclass_booking_expire_requests", stdout=None)
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "t@example.com"}
        assert "not decided in time" in mails["s@example.com"].body
        assert only_event(mails["s@example.com"])[0]["METHOD"] == "CANCEL"

    def test_attendance_tells_the_student_only(self, group: Any, people: Any, clock: Any) -> None:
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        sent()
        clock.move_to(START + timedelta(minutes=70))
        services.mark_no_show(booking, actor=people["teacher"])
        (message,) = [m for m in sent() if m.subject.startswith("Attendance")]
        assert message.to == ["s@example.com"]
        assert "recorded as absent" in message.body
        assert message.attachments == []


class TestSessionEvents:
    def test_cancelling_a_session_tells_everyone_booked_or_waiting_once(
        self, group: Any, people: Any, staff: Any
    ) -> None:
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        services.join_waitlist(student=people["other"], session=group, actor=people["other"])
        sent()
        services.cancel_session(group, actor=staff, reason="Snow")
        mails = by_recipient(sent())
        # Booked and waiting students, and the teacher (someone else cancelled).
        assert set(mails) == {"s@example.com", "o@example.com", "t@example.com"}
        assert all(m.subject == "Cancelled: Algebra & Co" for m in mails.values())
        assert "Reason: Snow" in mails["o@example.com"].body
        cal, event = only_event(mails["s@example.com"])
        assert cal["METHOD"] == "CANCEL"
        assert str(event["UID"]) == f"booking-{booking.pk}@testserver"
        assert mails["o@example.com"].attachments == []  # waiting: no calendar entry
        assert NotificationEvent.objects.filter(kind=K.SESSION_CANCELLED).count() == 1
        assert not NotificationEvent.objects.filter(kind=K.BOOKING_CANCELLED).exists()

    def test_moving_a_session_sends_the_new_time(self, group: Any, people: Any) -> None:
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        services.join_waitlist(student=people["other"], session=group, actor=people["other"])
        sent()
        services.update_session(
            group,
            actor=people["teacher"],
            start_at_utc=START + timedelta(hours=2),
            end_at_utc=START + timedelta(hours=3),
        )
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "o@example.com"}  # the teacher moved it
        assert "has moved from Wednesday 10 March 2027, 12:00" in mails["s@example.com"].body
        assert "14:00 – 15:00 (America/New_York)" in mails["s@example.com"].body
        # Sydney: 04:00 next morning (daylight time until April).
        assert "Thursday 11 March 2027, 06:00 – 07:00 (Australia/Sydney)" in (
            mails["o@example.com"].body
        )
        _cal, event = only_event(mails["s@example.com"])
        assert event.decoded("DTSTART") == START + timedelta(hours=2)

    def test_new_meeting_details_and_nothing_for_other_edits(self, group: Any, people: Any) -> None:
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        sent()
        services.update_session(group, actor=people["teacher"], description="Bring a pencil")
        assert sent() == []
        services.update_session(
            group, actor=people["teacher"], meeting_link="https://meet.example.com/new"
        )
        (message,) = sent()
        assert message.subject == "New meeting details: Algebra & Co"
        assert "https://meet.example.com/new" in message.body


class TestWaitlistEvents:
    def test_offer_with_its_end_then_accepted(self, group: Any, people: Any) -> None:
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        entry = services.join_waitlist(
            student=people["other"], session=group, actor=people["other"]
        )
        sent()
        services.cancel_booking(booking, actor=people["student"])
        mails = by_recipient(sent())
        offer = mails["o@example.com"]
        assert offer.subject == "A seat is free for you: Algebra & Co"
        # The offer ends 12 hours later: 21:00 UTC is 08:00 next day in Sydney.
        assert "held for you until Tuesday 2 March 2027, 08:00 (Australia/Sydney)" in offer.body
        entry.refresh_from_db()
        services.accept_offer(entry, actor=people["other"])
        mails = by_recipient(sent())
        assert set(mails) == {"o@example.com", "t@example.com"}
        assert "You took the seat offered to you" in mails["o@example.com"].body
        assert only_event(mails["o@example.com"])[0]["METHOD"] == "REQUEST"
        assert (
            not NotificationEvent.objects.filter(kind=K.BOOKING_CONFIRMED)
            .exclude(booking=booking)
            .exists()
        )

    def test_offer_expired_and_waitlist_closed(
        self, group: Any, people: Any, clock: Any, user_model: Any
    ) -> None:
        third = user_model.objects.create_user(username="third", email="x@example.com")
        fourth = user_model.objects.create_user(username="fourth", email="y@example.com")
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        services.join_waitlist(student=people["other"], session=group, actor=people["other"])
        services.join_waitlist(student=third, session=group, actor=third)
        services.join_waitlist(student=fourth, session=group, actor=fourth)
        services.cancel_booking(booking, actor=people["student"])
        sent()
        clock.shift(timedelta(hours=13))
        services.expire_due_offers()
        mails = by_recipient(sent())
        assert mails["o@example.com"].subject == "Seat offer expired: Algebra & Co"
        assert mails["x@example.com"].subject == "A seat is free for you: Algebra & Co"
        clock.move_to(START + timedelta(minutes=1))
        services.expire_due_offers()
        mails = by_recipient(sent())
        # The open offer ended at the start; the student still waiting hears it closed.
        assert mails["x@example.com"].subject == "Seat offer expired: Algebra & Co"
        assert mails["y@example.com"].subject == "Waitlist closed: Algebra & Co"
        assert "has started" in mails["y@example.com"].body


class TestSeriesEvents:
    @pytest.mark.usefixtures("open_all_week")
    def test_series_created_paused_resumed_cancelled(self, people: Any, course: Any) -> None:
        rule = Recurrence(
            frequency="weekly",
            start_date=START.date(),
            start_time=time(17),
            timezone="Europe/Berlin",
            duration_minutes=60,
            occurrence_count=4,
        )
        report = services.create_series(
            student=people["student"],
            teacher=people["teacher"],
            course=course,
            series_type="one_on_one_series",
            rule=rule,
            actor=people["student"],
            default_meeting_link="https://meet.example.com/series",
        )
        mails = by_recipient(sent())  # one summary each, not one mail per occurrence
        assert set(mails) == {"s@example.com", "t@example.com"}
        body = mails["s@example.com"].body
        assert "is set up" in body
        assert "booked: 4." in body or "pending" in body
        assert "Wednesday 10 March 2027, 11:00 (America/New_York)" in body
        series = report.series
        services.pause_series(series, actor=people["student"], reason="Holiday")
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "t@example.com"}
        assert "is paused" in mails["t@example.com"].body
        assert "Reason: Holiday" in mails["t@example.com"].body
        services.resume_series(series, actor=people["student"])
        assert {m.subject for m in sent()} == {"Series resumed: " + str(course)}
        services.cancel_series(series, actor=people["teacher"])
        assert len(sent()) == 2
        kinds = list(NotificationEvent.objects.values_list("kind", flat=True))
        assert K.BOOKING_CANCELLED not in kinds  # the series events say it


class TestOutboxGuarantees:
    def test_a_rolled_back_change_leaves_no_event(self, group: Any, people: Any) -> None:
        def book_then_fail() -> None:
            with transaction.atomic():
                services.book_group_session(
                    student=people["student"], session=group, actor=people["student"]
                )
                raise RuntimeError("the caller's transaction fails")

        with pytest.raises(RuntimeError):
            book_then_fail()
        assert not NotificationEvent.objects.exists()
        assert sent() == []

    def test_notifier_none_writes_nothing(self, group: Any, people: Any, settings: Any) -> None:
        settings.LIVECLASS_BOOKING_NOTIFIER = None
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        assert not NotificationEvent.objects.exists()
        assert dispatch().sent == 0

    def test_each_delivery_is_sent_once_and_recorded(self, group: Any, people: Any) -> None:
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        assert len(sent()) == 2
        assert sent() == []
        deliveries = NotificationDelivery.objects.all()
        assert {(d.status, d.attempts) for d in deliveries} == {(DeliveryStatus.SENT, 1)}
        assert all(d.sent_at == NOW for d in deliveries)

    def test_recipient_without_address_is_skipped_not_retried(
        self, group: Any, people: Any
    ) -> None:
        people["student"].email = ""
        people["student"].save()
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        assert [m.to for m in sent()] == [["t@example.com"]]
        skipped = NotificationDelivery.objects.get(recipient=people["student"])
        assert skipped.status == DeliveryStatus.SKIPPED
        assert "no e-mail address" in skipped.last_error

    def test_cancelling_a_big_session_writes_one_event_in_a_fixed_number_of_queries(
        self, make_session: Any, people: Any, user_model: Any
    ) -> None:
        def cancel_with(count: int) -> int:
            session = make_session(start_at_utc=START, capacity=count, seats_taken=count)
            students = user_model.objects.bulk_create(
                user_model(username=f"s{count}-{i}", email=f"{i}@x.org") for i in range(count)
            )
            get_booking_model().objects.bulk_create(
                get_booking_model()(
                    booking_type="group_session",
                    session=session,
                    course=session.course,
                    teacher=session.teacher,
                    student_user=person,
                    start_at_utc=session.start_at_utc,
                    end_at_utc=session.end_at_utc,
                    status="confirmed",
                )
                for person in user_model.objects.filter(username__startswith=f"s{count}-")
            )
            assert len(students) == count
            with CaptureQueriesContext(connection) as queries:
                services.cancel_session(session, actor=people["teacher"])
            assert NotificationEvent.objects.filter(session=session).count() == 1
            (event,) = NotificationEvent.objects.filter(session=session)
            assert len(event.recipients) == count
            return len(queries)

        mail.outbox.clear()
        few, many = cancel_with(5), cancel_with(500)
        assert mail.outbox == []  # the request sends nothing
        # SQLite takes at most 999 parameters a statement, so Django splits the bulk insert
        # of 500 audit entries into a few; other databases take it at once.
        assert many - few <= (6 if connection.vendor == "sqlite" else 0)
        report = dispatch(limit=20)  # the dispatcher sends them (the first 20 here)
        assert report.expanded == 2
        assert NotificationDelivery.objects.count() == 505
        assert len(mail.outbox) == report.sent == 20

    def test_opting_out_records_a_skipped_delivery(
        self, group: Any, people: Any, clock: Any
    ) -> None:
        people["student"].first_name = "quiet"
        people["student"].save()
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        sent()
        clock.move_to(START - timedelta(minutes=30))
        mails = sent()
        assert [m.to for m in mails] == [["t@example.com"]]
        quiet = NotificationDelivery.objects.get(
            event__kind=K.REMINDER, recipient=people["student"]
        )
        assert quiet.status == DeliveryStatus.SKIPPED


class TestRunning:
    def test_command_runs_one_pass(self, group: Any, people: Any, capsys: Any) -> None:
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        mail.outbox.clear()
        call_command("liveclass_booking_dispatch")
        assert len(mail.outbox) == 2
        assert "2 sent" in capsys.readouterr().out

    @pytest.mark.django_db(transaction=True)
    def test_commit_enqueues_a_pass_on_the_tasks_backend(
        self, group: Any, people: Any, settings: Any
    ) -> None:
        package = settings.TASKS["default"]["BACKEND"].split(".backends.")[0]
        settings.TASKS = {"default": {"BACKEND": f"{package}.backends.immediate.ImmediateBackend"}}
        mail.outbox.clear()
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        # The immediate backend ran the pass when the booking committed.
        assert sorted(m.to[0] for m in mail.outbox) == ["s@example.com", "t@example.com"]

    @pytest.mark.django_db(transaction=True)
    def test_a_busy_process_enqueues_a_pass_at_once_then_one_per_interval(
        self, make_session: Any, user_model: Any, settings: Any, clock: Any
    ) -> None:
        """On a backend that queues work, commits close together share passes: a commit
        gets a pass at once unless one was enqueued at once less than the interval ago; then
        one deferred to that pass's time plus the interval (a whole second), and the commits
        before that time none. Once that time has nearly come, a pass at once again. Each
        commit is covered by a pass that starts after it."""
        from liveclass_booking import tasks

        package = settings.TASKS["default"]["BACKEND"].split(".backends.")[0]
        settings.TASKS = {"default": {"BACKEND": f"{package}.backends.dummy.DummyBackend"}}
        settings.LIVECLASS_BOOKING_DISPATCH_INTERVAL = timedelta(seconds=10)
        backend = tasks.task_backends["default"]
        session = make_session(start_at_utc=START, capacity=20)
        students = iter(
            user_model.objects.create_user(username=f"busy{i}", email=f"b{i}@example.com")
            for i in range(20)
        )

        def book_after(seconds: float) -> list[Any]:
            """Book a seat ``seconds`` later; the passes' run times (None: at once)."""
            clock.shift(timedelta(seconds=seconds))
            services.book_group_session(student=next(students), session=session)
            return [r.task.run_after for r in backend.results]

        def at(seconds: float) -> datetime:
            return NOW + timedelta(seconds=seconds)

        assert book_after(0) == [None]  # quiet until now: at once
        assert book_after(1) == [None, at(10)]  # one deferred pass
        assert book_after(1) == [None, at(10)]  # covered by it
        assert book_after(7.85) == [None, at(10)]  # 150 ms before it: covered
        # 50 ms before it, closer than CLOCK_MARGIN (a worker's clock may be ahead): at once.
        assert book_after(0.1) == [None, at(10), None]
        # Then one deferred to that pass's time (9.95 s) plus 10 s, rounded up: 20 s.
        assert book_after(0.05) == [None, at(10), None, at(20)]
        assert book_after(40)[-1] is None  # quiet for more than the interval: at once
        assert book_after(1)[-1] == at(60)
        # The clock set back an hour: the pass deferred to 60 s is no excuse to skip.
        assert book_after(-3600)[-1] is None
        assert len(backend.results) == 7
        assert book_after(3600)[-1] is None  # forward again (51 s): at once
        assert book_after(1)[-1] == at(61)  # 51 s + 10 s
        assert book_after(1)[-1] == at(61)  # covered
        assert len(backend.results) == 9

        # Another backend: the passes of the old one count no more (53 s: at once).
        settings.TASKS = {"default": {"BACKEND": "tests.task_backends.RefusingOnceBackend"}}
        backend = tasks.task_backends["default"]
        assert book_after(0) == [None]

        # A deferred pass the queue refuses is logged, and not counted on: that commit gets
        # a pass at once instead, and the next one enqueues the deferred pass again.
        backend.refusals = 1
        assert book_after(1) == [None, None]  # the deferred pass was refused
        assert book_after(1) == [None, None, at(63)]  # the first pass at once (53 s) + 10 s

        # With an interval of 0, every transaction that writes events gets its own pass.
        settings.LIVECLASS_BOOKING_DISPATCH_INTERVAL = timedelta(0)
        assert book_after(0)[3:] == [None]
        assert book_after(0)[3:] == [None, None]

    def test_the_threads_of_a_process_share_passes(self, settings: Any, clock: Any) -> None:
        """Each thread has a backend object of its own, but the threads of one process share
        their passes: after one thread's commits enqueued a pass at once and one deferred,
        eight threads committing three times each at the same moment enqueue none."""
        from liveclass_booking import tasks

        package = settings.TASKS["default"]["BACKEND"].split(".backends.")[0]
        settings.TASKS = {"default": {"BACKEND": f"{package}.backends.dummy.DummyBackend"}}
        settings.LIVECLASS_BOOKING_DISPATCH_INTERVAL = timedelta(seconds=10)
        start = threading.Barrier(8)

        def passes() -> list[Any]:
            return [r.task.run_after for r in tasks.task_backends["default"].results]

        def commits() -> list[Any]:
            start.wait()
            for _ in range(3):
                tasks.enqueue_dispatch()  # what each commit with outbox events runs
            return passes()

        assert tasks.enqueue_dispatch()
        assert tasks.enqueue_dispatch()
        assert passes() == [None, NOW + timedelta(seconds=10)]
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda _: commits(), range(8))) == [[]] * 8

    def test_a_commit_does_not_wait_for_a_deferred_enqueue_under_way(
        self, settings: Any, clock: Any
    ) -> None:
        """While one thread enqueues a deferred pass (the queue answers slowly), another
        thread's commit gets a pass at once rather than waiting or counting on it; once the
        deferred pass is enqueued, it excuses the commits before its time."""
        from liveclass_booking import tasks
        from tests.task_backends import GatedBackend

        settings.TASKS = {"default": {"BACKEND": "tests.task_backends.GatedBackend"}}
        settings.LIVECLASS_BOOKING_DISPATCH_INTERVAL = timedelta(seconds=10)
        GatedBackend.gate.clear()
        GatedBackend.waiting.clear()

        def passes() -> list[Any]:
            return [r.task.run_after for r in tasks.task_backends["default"].results]

        def deferring() -> list[Any]:
            tasks.enqueue_dispatch()
            return passes()

        assert tasks.enqueue_dispatch()
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(deferring)
            assert GatedBackend.waiting.wait(10)
            assert tasks.enqueue_dispatch()  # at once, while the deferred one is under way
            GatedBackend.gate.set()
            assert slow.result() == [NOW + timedelta(seconds=10)]
        assert not tasks.enqueue_dispatch()  # now the deferred pass excuses it
        assert passes() == [None, None]

    def test_admin_lists_and_retries_deliveries(
        self, group: Any, people: Any, client: Any, staff: Any
    ) -> None:
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        dispatch()
        delivery = NotificationDelivery.objects.first()
        assert delivery is not None
        NotificationDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED, last_error="SMTP down"
        )
        client.force_login(staff)
        page = client.get("/admin/liveclass_booking/notificationdelivery/?status__exact=failed")
        assert page.status_code == 200
        assert b"SMTP down" in page.content
        response = client.post(
            "/admin/liveclass_booking/notificationdelivery/",
            {"action": "retry", "_selected_action": [delivery.pk]},
            follow=True,
        )
        assert response.status_code == 200
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING
        mail.outbox.clear()
        dispatch()
        assert len(mail.outbox) == 1
        event_page = client.get(
            f"/admin/liveclass_booking/notificationevent/{delivery.event_id}/change/"
        )
        assert event_page.status_code == 200


def test_message_parses_as_mime(group: Any, people: Any) -> None:
    services.book_group_session(student=people["student"], session=group, actor=people["student"])
    message = sent()[0].message()
    parsed = message_from_string(message.as_string())
    types = [part.get_content_type() for part in parsed.walk()]
    assert {"text/plain", "text/html", "text/calendar"} <= set(types)
    assert get_booking_model().objects.count() == 1
    assert SessionWaitlist.objects.count() == 0


@pytest.mark.parametrize("arguments", [["--lease", "0"], ["--lease", "-5"], ["--batch", "0"]])
def test_command_refuses_a_lease_or_batch_that_cannot_work(arguments: list[str]) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("liveclass_booking_dispatch", *arguments)


def test_messages_in_the_recipients_language(group: Any, people: Any, monkeypatch: Any) -> None:
    """The templates are translated into German: a German-speaking student gets a German
    mail, with day and month names in German and times in their zone; the teacher, English."""
    monkeypatch.setitem(PeopleAbroad.LANGUAGES, "student", "de")
    services.book_group_session(student=people["student"], session=group, actor=people["student"])
    mails = by_recipient(sent())
    german = mails["s@example.com"]
    assert german.subject == "Buchung bestätigt: Algebra & Co"
    assert "Hallo student," in german.body
    assert "Deine Buchung für Algebra & Co ist bestätigt." in german.body
    assert "Wann: Mittwoch 10 März 2027, 12:00 – 13:00 (America/New_York)" in german.body
    assert "Deine Buchung" in german.alternatives[0][0]
    # The attached calendar entry speaks the recipient's language too.
    _cal, event = only_event(german)
    assert "Lehrkraft: teacher" in str(event["DESCRIPTION"])
    assert mails["t@example.com"].subject == "Booking confirmed: Algebra & Co"


class TestSecondReading:
    """Gaps found on a second reading of the outbox, each pinned down."""

    def test_a_student_taken_off_the_waitlist_hears_it(self, group: Any, people: Any) -> None:
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        entry = services.join_waitlist(
            student=people["other"], session=group, actor=people["other"]
        )
        sent()
        services.leave_waitlist(entry, actor=people["teacher"])
        (message,) = sent()
        assert message.to == ["o@example.com"]
        assert "teacher has taken you off the waitlist of Algebra & Co." in message.body

    @pytest.mark.usefixtures("open_all_week")
    def test_extending_a_series_tells_both(self, people: Any, course: Any) -> None:
        report = services.create_series(
            student=people["student"],
            teacher=people["teacher"],
            course=course,
            series_type="one_on_one_series",
            rule=Recurrence(
                frequency="weekly",
                start_date=START.date(),
                start_time=time(17),
                timezone="Europe/Berlin",
                duration_minutes=60,
                occurrence_count=2,
            ),
            actor=people["student"],
        )
        sent()
        services.extend_series(report.series, occurrence_count=4, actor=people["student"])
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "t@example.com"}
        assert mails["t@example.com"].subject.startswith("Series extended: ")

    @pytest.mark.usefixtures("open_all_week")
    def test_a_declined_lesson_request_leaves_no_tentative_entry_with_the_teacher(
        self, people: Any, course: Any
    ) -> None:
        booking = services.request_one_on_one(
            student=people["student"],
            teacher=people["teacher"],
            course=course,
            start_at_utc=START,
            end_at_utc=START + timedelta(hours=1),
            actor=people["student"],
        )
        mails = by_recipient(sent())
        assert only_event(mails["t@example.com"])[1]["STATUS"] == "TENTATIVE"
        services.decline_booking(booking, actor=people["teacher"])
        mails = by_recipient(sent())
        assert set(mails) == {"s@example.com", "t@example.com"}
        assert "The request of student for" in mails["t@example.com"].body
        assert only_event(mails["t@example.com"])[0]["METHOD"] == "CANCEL"

    def test_retrying_leaves_a_delivery_being_sent_alone(self, group: Any, people: Any) -> None:
        from liveclass_booking.notifications import retry_deliveries
        from liveclass_booking.notifications.dispatcher import claim, expand_events
        from liveclass_booking.notifications.notifier import get_notifier

        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        notifier = get_notifier()
        assert notifier is not None
        expand_events(notifier, NOW)
        token, claimed = claim(NOW, batch=10, lease=timedelta(minutes=5))
        assert len(claimed) == 2
        assert retry_deliveries([d.pk for d in claimed]) == 0
        assert set(NotificationDelivery.objects.values_list("claim_token", flat=True)) == {token}

    def test_a_failing_recipients_hook_spoils_one_event_only(
        self, group: Any, people: Any, monkeypatch: Any, make_session: Any
    ) -> None:
        other = make_session(start_at_utc=START + timedelta(days=1), title="Other")
        services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        services.book_group_session(student=people["other"], session=other, actor=people["other"])

        def picky(self: Any, event: Any, users: list[Any]) -> list[Any]:
            if event.session_id == group.pk:
                raise LookupError("the host's directory is down")
            return users

        monkeypatch.setattr(PeopleAbroad, "notification_recipients", picky)
        mails = by_recipient(sent())
        assert set(mails) == {"o@example.com", "t@example.com"}
        assert not NotificationEvent.objects.filter(expanded_at__isnull=True).exists()

    def test_the_backoff_never_overflows(self, settings: Any) -> None:
        from liveclass_booking.notifications.dispatcher import MAX_RETRY_DELAY, retry_delay

        settings.LIVECLASS_BOOKING_NOTIFICATION_RETRY_DELAY = timedelta(days=1)
        assert retry_delay(1) == timedelta(hours=6)
        assert retry_delay(10_000) == MAX_RETRY_DELAY
        settings.LIVECLASS_BOOKING_NOTIFICATION_RETRY_DELAY = timedelta(seconds=10)
        assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (10, 20, 40)]

    def test_one_wake_up_per_transaction(
        self, group: Any, people: Any, make_session: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        from liveclass_booking.services.outbox import _wake

        other = make_session(start_at_utc=START + timedelta(days=1))
        with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
            services.book_group_session(
                student=people["student"], session=group, actor=people["student"]
            )
            services.book_group_session(
                student=people["student"], session=other, actor=people["student"]
            )
        assert NotificationEvent.objects.count() == 2
        assert [c for c in callbacks if c is _wake] == [_wake]

    def test_an_offer_that_ended_before_its_mail_is_not_announced(
        self, group: Any, people: Any, clock: Any
    ) -> None:
        booking = services.book_group_session(
            student=people["student"], session=group, actor=people["student"]
        )
        services.join_waitlist(student=people["other"], session=group, actor=people["other"])
        sent()
        services.cancel_booking(booking, actor=people["student"])
        clock.shift(timedelta(hours=13))  # nobody dispatched while the offer was open
        services.expire_due_offers()
        subjects = {m.subject for m in sent() if m.to == ["o@example.com"]}
        assert subjects == {"Seat offer expired: Algebra & Co"}
        skipped = NotificationDelivery.objects.get(event__kind=K.WAITLIST_OFFERED)
        assert skipped.status == DeliveryStatus.SKIPPED


def test_the_sequence_is_stored_and_grows_with_every_change_in_one_second(
    group: Any, people: Any, staff: Any
) -> None:
    """The clock stands still here: the stored SEQUENCE still grows with each change of
    status, time or meeting details, and a rescheduled booking goes on from the old one's."""
    TeacherBookingPolicy.objects.create(teacher=people["teacher"], requires_approval_for_group=True)
    booking = services.book_group_session(
        student=people["student"], session=group, actor=people["student"]
    )
    services.approve_booking(booking, actor=people["teacher"])
    services.update_session(
        group,
        actor=people["teacher"],
        start_at_utc=START + timedelta(hours=1),
        end_at_utc=START + timedelta(hours=2),
    )
    services.update_session(group, actor=people["teacher"], meeting_link="https://m.example/2")
    services.update_session(group, actor=people["teacher"], description="No change of version")
    services.cancel_session(group, actor=staff)
    entries = [only_event(m)[1] for m in sent() if m.to == ["s@example.com"]]
    assert [str(entry["STATUS"]) for entry in entries] == [
        "TENTATIVE",
        "CONFIRMED",
        "CONFIRMED",
        "CONFIRMED",
        "CANCELLED",
    ]
    assert [int(entry["SEQUENCE"]) for entry in entries] == [0, 1, 2, 3, 4]
    assert len({str(entry["UID"]) for entry in entries}) == 1
    booking.refresh_from_db()
    group.refresh_from_db()
    assert (booking.calendar_sequence, group.calendar_sequence) == (4, 3)
