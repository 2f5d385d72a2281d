"""Contention on PostgreSQL: N threads booking seats of one session through the services,
beside the ceiling of the same work as raw SQL (conditional UPDATE + INSERT) on the same
database. Prints bookings per second, p50/p99 latency and the ratio.

    python bench/contention.py [--threads 8] [--bookings 800]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from _setup import RawSeats, django_on, percentile


def run_threads(
    threads: int, per_thread: int, book: Callable[[int, int], None]
) -> tuple[float, list[float]]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        from django.db import connections

        barrier.wait()
        for i in range(per_thread):
            began = time.perf_counter()
            book(t, i)
            latencies[t].append((time.perf_counter() - began) * 1000)
        connections.close_all()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    return elapsed, [value for chunk in latencies for value in chunk]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--bookings", type=int, default=800)
    args = parser.parse_args()
    per_thread = args.bookings // args.threads
    total = per_thread * args.threads

    with django_on("postgres"):
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.utils import timezone

        from liveclass_booking import services
        from liveclass_booking.models import get_course_model
        from tests.conftest import grant_teaching

        users = get_user_model()
        teacher = grant_teaching(users.objects.create_user(username="teacher", password="x"))
        course = get_course_model().objects.create(title="Bench")
        students = users.objects.bulk_create(
            [users(username=f"s{i}", password="x") for i in range(total * 2)]
        )

        def new_session() -> Any:
            start = timezone.now() + timedelta(days=2)
            return services.create_session(
                teacher=teacher,
                course=course,
                title="Bench",
                start_at_utc=start,
                end_at_utc=start + timedelta(hours=1),
                capacity=total,
            )

        session = new_session()

        def via_services(t: int, i: int) -> None:
            services.book_group_session(student=students[t * per_thread + i], session=session)

        service_time, service_lat = run_threads(args.threads, per_thread, via_services)
        session.refresh_from_db()
        assert session.seats_taken == total, session.seats_taken

        raw_session = new_session()
        raw_seats = RawSeats()
        offset = total

        def raw_sql(t: int, i: int) -> None:
            from django.db import connection as conn
            from django.db import transaction

            student_pk = students[offset + t * per_thread + i].pk
            with transaction.atomic(), conn.cursor() as cursor:
                assert raw_seats.book(cursor, raw_session, student_pk, timezone.now())

        raw_time, raw_lat = run_threads(args.threads, per_thread, raw_sql)

        print(f"database: {connection.vendor}; {args.threads} threads; {total} bookings each way")
        print(f"{'path':<10} {'bookings/s':>11} {'p50 ms':>8} {'p99 ms':>8}")
        for label, elapsed, lat in (
            ("services", service_time, service_lat),
            ("raw SQL", raw_time, raw_lat),
        ):
            print(
                f"{label:<10} {total / elapsed:>11.0f} {percentile(lat, 0.5):>8.2f} "
                f"{percentile(lat, 0.99):>8.2f}"
            )
        print(f"services reach {raw_time / service_time:.0%} of the raw-SQL ceiling")


if __name__ == "__main__":
    main()
