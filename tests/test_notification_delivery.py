"""Notifications delivered end to end to a real SMTP server (aiosmtpd on 127.0.0.1): the
services write the outbox, the dispatcher sends it through Django's SMTP backend.

What arrives (recipients, subjects, one Message-ID per delivery, the calendar entry); retries
with a doubling delay while the server refuses, giving up after the last attempt and the
admin's retry; nothing from a change that rolled back. On PostgreSQL and MariaDB/MySQL, with
dispatcher processes (the management command): two at once send every mail exactly once; a
dispatcher killed mid-run loses nothing and repeats at most the one mail it was sending; one
asked to stop (SIGTERM) ends after the mail it is sending and leaves the rest to others at once.
"""

from __future__ import annotations

import asyncio
import email
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone
from icalendar import Calendar

import liveclass_booking
from liveclass_booking import services
from liveclass_booking.choices import DeliveryStatus as D
from liveclass_booking.models import NotificationDelivery, NotificationEvent
from liveclass_booking.notifications import dispatch, retry_deliveries

ROOT = Path(__file__).resolve().parents[1]
#: Where the library the suite imports lives: the dispatcher processes import the same one.
LIBRARY_PATH = Path(liveclass_booking.__file__).resolve().parents[1]
#: The calendar domain of Message-IDs and UIDs, here and in the dispatcher processes.
DOMAIN = "notify.test"


# The SMTP server -----------------------------------------------------------------------------


class Received:
    """One message the server accepted: its envelope and its parsed content."""

    def __init__(self, sender: str, recipients: list[str], content: bytes) -> None:
        self.sender = sender
        self.recipients = recipients
        # With the default policy the parser builds an EmailMessage.
        self.message = cast(EmailMessage, email.message_from_bytes(content, policy=policy.default))

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def calendars(self) -> list[tuple[str, Calendar]]:
        """The text/calendar parts: (the part's ``method`` parameter, the parsed calendar)."""
        return [
            (str(part.get_param("method")), Calendar.from_ical(part.get_content()))
            for part in self.message.walk()
            if part.get_content_type() == "text/calendar"
        ]


class MailSink:
    """An aiosmtpd handler keeping every message it accepts. ``reply`` set: DATA is refused
    with it (counted in ``refused``). ``delay``: seconds before the reply to an accepted
    message, which is stored first (a server that has the message while the client still
    waits). ``gate`` cleared: DATA waits until it is set (``waiting`` counts the held ones)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused = 0
        self.reply: str | None = None
        self.delay = 0.0
        self.waiting = 0
        self.gate = threading.Event()
        self.gate.set()
        self.port = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.gate.is_set():
            with self._lock:
                self.waiting += 1
            while not self.gate.is_set():
                await asyncio.sleep(0.01)
        if self.reply:
            with self._lock:
                self.refused += 1
            return self.reply
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        with self._lock:
            self.received.append(received)
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Message accepted for delivery"

    def ids(self) -> Counter[str]:
        with self._lock:
            return Counter(message.message_id for message in self.received)


def start_smtp_server(handler: MailSink) -> Controller:
    """An aiosmtpd server for ``handler`` on 127.0.0.1, on a port that was free a moment ago
    (another one if it was taken meanwhile)."""
    problem: Exception | None = None
    for _ in range(5):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, server_hostname="smtp.test", ready_timeout=5
        )
        try:
            controller.start()
        except Exception as exc:
            problem = exc
            continue
        handler.port = port
        return controller
    raise RuntimeError(f"could not start the SMTP server: {problem!r}")


@pytest.fixture
def smtp_server() -> Iterator[MailSink]:
    """A running SMTP server; Django's SMTP backend points at it for the whole test."""
    sink = MailSink()
    controller = start_smtp_server(sink)
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=sink.port,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_TIMEOUT=10,
            LIVECLASS_BOOKING_CALENDAR_DOMAIN=DOMAIN,
        ):
            yield sink
    finally:
        sink.gate.set()
        controller.stop()


# Helpers -------------------------------------------------------------------------------------


def expected_id(delivery: Any) -> str:
    """The Message-ID of a delivery: stable per delivery, the same on every attempt."""
    return f"<liveclass-booking.{delivery.event_id}.{delivery.pk}@{DOMAIN}>"


def deliveries() -> list[Any]:
    return list(NotificationDelivery.objects.select_related("recipient", "event").order_by("pk"))


def make_students(user_model: Any, count: int) -> list[Any]:
    return [
        user_model.objects.create_user(
            username=f"learner{i}", password="x", email=f"learner{i}@example.com"
        )
        for i in range(count)
    ]


def book_many(make_session: Any, user_model: Any, count: int, per_session: int) -> list[Any]:
    """``count`` students, each booking a seat of a group session through the service."""
    sessions = [
        make_session(
            title=f"Group {i}",
            capacity=per_session,
            start_at_utc=timezone.now() + timedelta(days=3, hours=2 * i),
        )
        for i in range(-(-count // per_session))
    ]
    return [
        services.book_group_session(student=student, session=sessions[i // per_session])
        for i, student in enumerate(make_students(user_model, count))
    ]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.05)


def database_environment() -> dict[str, str]:
    """The variables that point tests/settings.py at this test's database (on SQLite, a
    database in a file)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            raise ValueError("another process cannot open a SQLite database in memory")
        return {"TEST_DATABASE": "sqlite", "SQLITE_PATH": str(db["NAME"])}
    prefix = "PG" if connection.vendor == "postgresql" else "MYSQL_"
    return {
        "TEST_DATABASE": "postgres" if connection.vendor == "postgresql" else "mariadb",
        **{
            f"{prefix}{name}": str(db[key])
            for name, key in [
                ("HOST", "HOST"),
                ("PORT", "PORT"),
                ("USER", "USER"),
                ("PASSWORD", "PASSWORD"),
                ("DATABASE", "NAME"),
            ]
        },
    }


def start_dispatcher(sink: MailSink, *args: str) -> subprocess.Popen[str]:
    """``python -m django liveclass_booking_dispatch *args`` in a new process, on the test
    database (the one this test's connection uses) and mailing to ``sink``."""
    return start_django(sink, "liveclass_booking_dispatch", *args)


def start_django(
    sink: MailSink,
    *argv: str,
    settings: str = "tests.settings_dispatch",
    database: dict[str, str] | None = None,
    **variables: str,
) -> subprocess.Popen[str]:
    """``python -m django *argv`` in a new process with ``settings`` (tests/settings_dispatch.py
    or a module built on it), on ``database`` (default: the test database, the one this test's
    connection uses) and mailing to ``sink``; ``variables`` are added to its environment."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        # The settings the suite runs with (default or swapped models).
        "DISPATCH_BASE_SETTINGS": os.environ.get("DJANGO_SETTINGS_MODULE", "tests.settings"),
        **(database_environment() if database is None else database),
        "DATABASE_URL": "",  # the variables above name the test database
        "EMAIL_PORT": str(sink.port),
        "LIVECLASS_BOOKING_CALENDAR_DOMAIN": DOMAIN,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(LIBRARY_PATH), str(ROOT), os.environ.get("PYTHONPATH")])
        ),
        **variables,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "django", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], how: int = signal.SIGTERM) -> tuple[str, str]:
    """Send ``how`` to ``process`` (unless it has ended) and collect its output."""
    if process.poll() is None:
        process.send_signal(how)
    try:
        return process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"a dispatcher did not stop\n{out}\n{err}")


def sent_by(output: str) -> int:
    """How many mails a dispatcher reported sending (one line per pass: ``N sent, ...``)."""
    return sum(int(n) for n in re.findall(r"^(\d+) sent,", output, re.MULTILINE))


# In-process: what arrives, retries, rollback -------------------------------------------------


@pytest.mark.django_db
def test_changes_arrive_as_mail_with_their_calendar_entries(
    smtp_server: MailSink, make_session: Any, teacher: Any, student: Any, other_student: Any
) -> None:
    soon = timezone.now() + timedelta(days=3)
    algebra = make_session(title="Algebra", start_at_utc=soon)
    biology = make_session(title="Biology", start_at_utc=soon + timedelta(days=1))
    chemistry = make_session(title="Chemistry", start_at_utc=soon + timedelta(days=2))
    mine = services.book_group_session(student=student, session=algebra)
    theirs = services.book_group_session(student=other_student, session=biology)
    services.cancel_booking(theirs, actor=other_student)
    doomed = services.book_group_session(student=student, session=chemistry)
    services.cancel_session(chemistry, actor=teacher, reason="The teacher is ill.")
    assert smtp_server.received == []  # nothing is sent by the services themselves

    report = dispatch()

    s, o, t = student.email, other_student.email, teacher.email
    expected = [
        (s, "Booking confirmed: Algebra", "REQUEST", mine.pk),
        # A group session's teacher gets no entry per seat (the session is theirs).
        (t, "Booking confirmed: Algebra", None, None),
        (o, "Booking confirmed: Biology", "REQUEST", theirs.pk),
        (t, "Booking confirmed: Biology", None, None),
        (o, "Booking cancelled: Biology", "CANCEL", theirs.pk),
        (t, "Booking cancelled: Biology", None, None),
        (s, "Booking confirmed: Chemistry", "REQUEST", doomed.pk),
        (t, "Booking confirmed: Chemistry", None, None),
        # The teacher cancelled the session: only the student hears of it.
        (s, "Cancelled: Chemistry", "CANCEL", doomed.pk),
    ]
    arrived = []
    sequences: dict[tuple[int, str], list[int]] = {}
    for message in smtp_server.received:
        assert message.sender == "webmaster@localhost"
        assert message.recipients == [str(message.message["To"])]
        if message.recipients == [t]:
            assert message.calendars() == []
            arrived.append((t, message.subject, None, None))
            continue
        [(method, calendar)] = message.calendars()
        assert str(calendar["METHOD"]) == method
        [entry] = calendar.walk("VEVENT")
        uid = str(entry["UID"])
        assert uid.endswith(f"@{DOMAIN}")
        booking_pk = int(uid.removeprefix("booking-").removesuffix(f"@{DOMAIN}"))
        assert str(entry["STATUS"]) == ("CANCELLED" if method == "CANCEL" else "CONFIRMED")
        assert str(entry["SUMMARY"]) in message.subject
        sequences.setdefault((booking_pk, message.recipients[0]), []).append(int(entry["SEQUENCE"]))
        arrived.append((message.recipients[0], message.subject, method, booking_pk))
    assert Counter(arrived) == Counter(expected)
    # A later message about a booking never carries a lower SEQUENCE than an earlier one.
    assert all(found == sorted(found) for found in sequences.values())

    rows = deliveries()
    assert report.sent == len(rows) == len(expected)
    assert {(d.status, d.attempts, d.last_error) for d in rows} == {(D.SENT, 1, "")}
    ids = smtp_server.ids()
    assert set(ids.values()) == {1}  # every Message-ID unique
    assert {message.message_id: message.recipients[0] for message in smtp_server.received} == {
        expected_id(d): d.recipient.email for d in rows
    }

    again = dispatch()
    assert (again.sent, again.retried, again.failed, again.expanded) == (0, 0, 0, 0)
    assert len(smtp_server.received) == len(expected)


@pytest.mark.django_db
@override_settings(
    LIVECLASS_BOOKING_NOTIFICATION_MAX_ATTEMPTS=3,
    LIVECLASS_BOOKING_NOTIFICATION_RETRY_DELAY=timedelta(seconds=60),
)
def test_a_refusing_server_gets_retries_with_a_doubling_delay_then_gives_up(
    smtp_server: MailSink, session: Any, student: Any, teacher: Any
) -> None:
    smtp_server.reply = "451 4.3.0 try later"
    services.book_group_session(student=student, session=session)  # student and teacher hear
    margin = timedelta(seconds=5)

    with time_machine.travel(timezone.now(), tick=True) as clock:

        def attempt(expected_attempts: int, delay: timedelta | None) -> list[Any]:
            """One pass; both deliveries were attempted once more and wait ``delay`` now."""
            refused = smtp_server.refused
            before = timezone.now()
            report = dispatch()
            after = timezone.now()
            assert smtp_server.refused == refused + 2
            rows = deliveries()
            for row in rows:
                assert row.attempts == expected_attempts
                assert "451" in row.last_error
                assert "try later" in row.last_error
                assert row.sent_at is None
                if delay is None:
                    assert row.status == D.FAILED
                else:
                    assert row.status == D.PENDING
                    assert before + delay <= row.next_attempt_at <= after + delay
            if delay is None:
                assert (report.failed, report.retried) == (2, 0)
            else:
                assert (report.retried, report.failed) == (2, 0)
            return rows

        def nothing_due() -> None:
            refused = smtp_server.refused
            report = dispatch()
            assert (report.sent, report.retried, report.failed) == (0, 0, 0)
            assert smtp_server.refused == refused

        rows = attempt(1, timedelta(seconds=60))
        due = max(row.next_attempt_at for row in rows)
        clock.move_to(due - margin)
        nothing_due()  # not yet
        clock.move_to(due + timedelta(seconds=1))
        rows = attempt(2, timedelta(seconds=120))  # doubled
        due = max(row.next_attempt_at for row in rows)
        clock.move_to(due - margin)
        nothing_due()
        clock.move_to(due + timedelta(seconds=1))
        rows = attempt(3, None)  # the third and last attempt: failed
        clock.move_to(timezone.now() + timedelta(hours=1))
        nothing_due()
        assert smtp_server.refused == 6
        assert smtp_server.received == []

        # The server recovers; the admin's retry makes the deliveries due again.
        smtp_server.reply = None
        assert retry_deliveries([row.pk for row in rows]) == 2
        assert {(d.status, d.attempts) for d in deliveries()} == {(D.PENDING, 0)}
        report = dispatch()
        assert report.sent == 2
        rows = deliveries()
        assert {(d.status, d.attempts, d.last_error) for d in rows} == {(D.SENT, 1, "")}
        assert sorted(m.recipients[0] for m in smtp_server.received) == sorted(
            [student.email, teacher.email]
        )
        assert smtp_server.ids() == Counter(expected_id(d) for d in rows)
        clock.move_to(timezone.now() + timedelta(hours=1))
        assert dispatch().sent == 0
        assert retry_deliveries([row.pk for row in rows]) == 0  # a sent delivery stays sent
        assert dispatch().sent == 0
    assert len(smtp_server.received) == 2


@pytest.mark.django_db
def test_a_change_that_rolls_back_sends_nothing(
    smtp_server: MailSink, session: Any, student: Any, other_student: Any, teacher: Any
) -> None:
    written = []

    def book_then_fail() -> None:
        with transaction.atomic():
            services.book_group_session(student=student, session=session)
            written.append(NotificationEvent.objects.count())  # in the change's transaction
            raise RuntimeError("the request fails after the booking")

    with pytest.raises(RuntimeError, match="fails after the booking"):
        book_then_fail()

    assert written == [1]
    assert NotificationEvent.objects.count() == 0
    assert not session.bookings.exists()
    report = dispatch()
    assert (report.expanded, report.sent) == (0, 0)
    assert smtp_server.received == []
    assert not NotificationDelivery.objects.exists()

    # The same server does get the mails of a change that commits.
    services.book_group_session(student=other_student, session=session)
    assert dispatch().sent == 2
    assert sorted(m.recipients[0] for m in smtp_server.received) == sorted(
        [other_student.email, teacher.email]
    )


# Dispatcher processes on PostgreSQL and MariaDB/MySQL ------------------------------------------


@pytest.mark.concurrent
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the processes see only committed rows
def test_two_dispatcher_processes_send_every_mail_exactly_once(
    smtp_server: MailSink, make_session: Any, user_model: Any, teacher: Any
) -> None:
    bookings = book_many(make_session, user_model, 60, per_session=30)
    events = {
        event.booking_id: event.pk
        for event in NotificationEvent.objects.filter(kind="booking_confirmed")
    }
    assert len(events) == 60
    # Held at DATA until both processes are sending, so both take part whatever their start.
    smtp_server.gate.clear()
    processes = [
        start_dispatcher(smtp_server, "--loop", "--interval", "0.1", "--batch", "5")
        for _ in range(2)
    ]
    try:
        wait_until(lambda: smtp_server.waiting >= 2, 20, "both dispatchers are sending")
        smtp_server.gate.set()
        wait_until(
            lambda: NotificationDelivery.objects.filter(status=D.SENT).count() == 120,
            20,
            "all 120 deliveries are sent",
        )
    finally:
        smtp_server.gate.set()
        outputs = [finish(process) for process in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, f"{out}\n{err}"

    rows = deliveries()
    assert len(rows) == 120
    assert {(d.status, d.attempts) for d in rows} == {(D.SENT, 1)}
    ids = smtp_server.ids()
    assert ids == Counter(expected_id(d) for d in rows)  # each Message-ID exactly once
    by_event: dict[int, list[str]] = {}
    for message in smtp_server.received:
        event_pk = int(message.message_id.split(".")[1])
        by_event.setdefault(event_pk, []).extend(message.recipients)
    assert {event_pk: sorted(people) for event_pk, people in by_event.items()} == {
        events[b.pk]: sorted([b.student_user.email, teacher.email]) for b in bookings
    }
    sent = [sent_by(out) for out, _ in outputs]
    assert all(n > 0 for n in sent), sent  # both dispatchers sent some
    assert sum(sent) == 120, sent


@pytest.mark.concurrent
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_killed_mid_run_loses_nothing_and_repeats_at_most_one_mail(
    smtp_server: MailSink, make_session: Any, user_model: Any
) -> None:
    book_many(make_session, user_model, 50, per_session=50)  # 100 mails: student and teacher
    smtp_server.delay = 0.05
    lease = 2.0
    process = start_dispatcher(
        smtp_server, "--loop", "--interval", "0.1", "--batch", "10", "--lease", str(lease)
    )
    try:
        wait_until(lambda: len(smtp_server.received) >= 30, 20, "30 mails have arrived")
    finally:
        out, err = finish(process, signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL, f"{out}\n{err}"
    time.sleep(0.5)  # the server reads what the process wrote before it died
    recorded = NotificationDelivery.objects.filter(status=D.SENT).count()
    held = NotificationDelivery.objects.filter(status=D.PENDING, claimed_until__isnull=False)
    # The claims of the dead process end with their lease; then another dispatcher may send.
    lease_ends = max((row.claimed_until for row in held), default=timezone.now())
    assert lease_ends <= timezone.now() + timedelta(seconds=lease)
    wait_until(lambda: timezone.now() > lease_ends, lease + 5, "the lease has ended")
    arrived = len(smtp_server.received)
    assert 30 <= arrived < 100
    # Sent, not recorded: at most the one mail the process was sending when it died.
    assert arrived - recorded in (0, 1)

    smtp_server.delay = 0
    report = dispatch()

    rows = deliveries()
    assert len(rows) == 100
    assert {(d.status, d.attempts) for d in rows} == {(D.SENT, 1)}
    assert report.sent == 100 - recorded
    ids = smtp_server.ids()
    assert set(ids) == {expected_id(d) for d in rows}  # none missing
    repeated = [message_id for message_id, n in ids.items() if n > 1]
    assert len(repeated) == arrived - recorded <= 1
    assert set(ids.values()) <= {1, 2}


@pytest.mark.concurrent
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_asked_to_stop_ends_after_the_mail_it_is_sending(
    smtp_server: MailSink, make_session: Any, user_model: Any
) -> None:
    book_many(make_session, user_model, 50, per_session=50)  # 100 mails
    smtp_server.delay = 0.05
    # The default lease (minutes): what the process claimed and did not send must be released.
    process = start_dispatcher(smtp_server, "--loop", "--interval", "0.1", "--batch", "20")
    try:
        wait_until(lambda: len(smtp_server.received) >= 10, 20, "10 mails have arrived")
    finally:
        asked = time.monotonic()
        out, err = finish(process, signal.SIGTERM)
    assert time.monotonic() - asked < 5, "the dispatcher went on after SIGTERM"
    assert process.returncode == 0, f"{out}\n{err}"
    arrived = len(smtp_server.received)
    recorded = NotificationDelivery.objects.filter(status=D.SENT).count()
    assert arrived == recorded < 100  # the mail being sent was finished and recorded
    assert sent_by(out) == recorded
    assert not NotificationDelivery.objects.filter(claimed_until__isnull=False).exists()

    smtp_server.delay = 0
    report = dispatch()  # at once: nothing waits for a lease

    assert report.sent == 100 - recorded
    rows = deliveries()
    assert {(d.status, d.attempts) for d in rows} == {(D.SENT, 1)}
    assert smtp_server.ids() == Counter(expected_id(d) for d in rows)  # each exactly once
