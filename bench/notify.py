"""Notifications: what the outbox costs a change, and how fast the dispatcher delivers.

(a) Cancelling a group session through the service with 500 bookings, beside one with 5:
    milliseconds (median and min of several runs, each rolled back) and queries. Everyone
    booked hears of it through one outbox event, so the queries must not grow with the
    bookings (on SQLite the audit rows are inserted in batches of about 140, its limit of
    variables per statement: one INSERT more per batch).
(b) One dispatcher pass in one process delivering the 500 mails of that cancellation to an
    SMTP server (aiosmtpd) on loopback: mails per second and queries per mail, beside
    Django's SMTP backend alone sending as many mails of the same shape (text, HTML and an
    .ics; one connection each, as the notifier does), the ceiling of the mail path.

    python bench/notify.py [--database sqlite|postgres] [--runs 7] [--bookings 500]

The database defaults to TEST_DATABASE (SQLite unless it says postgres).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import threading
import time as clock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from _setup import django_on


class Counting:
    """An aiosmtpd handler that accepts and counts every message."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 2.0.0 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[int, Counting]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="bench")
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


@contextmanager
def counting_queries() -> Iterator[list[int]]:
    """Count the queries of the default connection (cheaper than capturing them)."""
    from django.db import connection

    found = [0]

    def count(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        found[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_db = (
        "postgres" if os.environ.get("TEST_DATABASE", "").lower() == "postgres" else "sqlite"
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default=default_db)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--bookings", type=int, default=500)
    parser.add_argument("--baseline", type=int, default=5)
    args = parser.parse_args()

    with django_on(args.database):
        from django.contrib.auth import get_user_model
        from django.core.mail import EmailMultiAlternatives
        from django.db import connection, transaction
        from django.test.utils import override_settings
        from django.utils import timezone

        from liveclass_booking import services
        from liveclass_booking.models import (
            NotificationDelivery,
            get_booking_model,
            get_course_model,
            get_session_model,
        )
        from liveclass_booking.notifications import dispatch
        from tests.conftest import grant_teaching

        users = get_user_model()
        teacher = grant_teaching(
            users.objects.create_user(username="teacher", password="x", email="t@example.com")
        )
        course = get_course_model().objects.create(title="Bench")
        students = users.objects.bulk_create(
            [
                users(username=f"s{i}", password="x", email=f"s{i}@example.com")
                for i in range(args.bookings)
            ]
        )

        def booked_session(count: int, hours: int) -> Any:
            """A group session with ``count`` confirmed bookings (written directly)."""
            start = timezone.now() + timedelta(days=3, hours=hours)
            session = get_session_model().objects.create(
                course=course,
                teacher=teacher,
                title=f"Class of {count}",
                start_at_utc=start,
                end_at_utc=start + timedelta(hours=1),
                timezone_snapshot="Europe/Berlin",
                capacity=count,
                seats_taken=count,
            )
            model = get_booking_model()
            model.objects.bulk_create(
                [
                    model(
                        booking_type="group_session",
                        session=session,
                        course=course,
                        teacher=teacher,
                        student_user=student,
                        start_at_utc=session.start_at_utc,
                        end_at_utc=session.end_at_utc,
                        status="confirmed",
                    )
                    for student in students[:count]
                ],
                batch_size=500,
            )
            return session

        # (a) ---------------------------------------------------------------------------------
        print(f"database: {connection.vendor}")
        print(
            "(a) cancel_session through the service (the teacher cancels; "
            "rolled back after each run)"
        )
        print(f"{'bookings':>9} {'ms (median)':>12} {'ms (min)':>9} {'queries':>8}")
        sessions = {}
        for hours, count in enumerate((args.baseline, args.bookings)):
            session = sessions[count] = booked_session(count, hours)
            timings, queries = [], []
            for _ in range(args.runs):
                with transaction.atomic():
                    with counting_queries() as found:
                        began = clock.perf_counter()
                        services.cancel_session(session, actor=teacher, reason="Bench")
                        timings.append((clock.perf_counter() - began) * 1000)
                    queries.append(found[0])
                    transaction.set_rollback(True)
            assert len(set(queries)) == 1, queries
            print(
                f"{count:>9} {statistics.median(timings):>12.1f} {min(timings):>9.1f} "
                f"{queries[0]:>8}"
            )

        # (b) ---------------------------------------------------------------------------------
        services.cancel_session(sessions[args.bookings], actor=teacher, reason="Bench")
        mails = args.bookings
        with smtp_server() as (port, server):
            mail_settings = {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": "127.0.0.1",
                "EMAIL_PORT": port,
                "EMAIL_TIMEOUT": 10,
            }
            with override_settings(**mail_settings):
                with counting_queries() as found:
                    began = clock.perf_counter()
                    report = dispatch()
                    dispatcher_time = clock.perf_counter() - began
                dispatcher_queries = found[0]
                assert report.sent == mails, report
                assert server.count == mails, server.count
                assert NotificationDelivery.objects.filter(status="sent").count() == mails

                ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n"
                began = clock.perf_counter()
                for i in range(mails):
                    mail = EmailMultiAlternatives(
                        "Cancelled: Class", "x" * 600, None, [f"s{i}@example.com"]
                    )
                    mail.attach_alternative("<p>" + "x" * 1200 + "</p>", "text/html")
                    mail.attach("cancel.ics", ics * 10, "text/calendar; method=CANCEL")
                    mail.send(fail_silently=False)
                raw_time = clock.perf_counter() - began
                assert server.count == 2 * mails, server.count

        print()
        print(f"(b) {mails} mails to aiosmtpd on 127.0.0.1, one process")
        print(f"{'path':<22} {'mails/s':>8} {'ms/mail':>8} {'queries/mail':>13}")
        print(
            f"{'dispatch()':<22} {mails / dispatcher_time:>8.0f} "
            f"{dispatcher_time * 1000 / mails:>8.2f} {dispatcher_queries / mails:>13.1f}"
        )
        print(
            f"{'Django SMTP alone':<22} {mails / raw_time:>8.0f} "
            f"{raw_time * 1000 / mails:>8.2f} {0:>13}"
        )
        print(f"the dispatcher reaches {raw_time / dispatcher_time:.0%} of the mail path alone")


if __name__ == "__main__":
    main()
