"""Free-slot listing: 90 days for one teacher with no bookings (the baseline: the fixed cost
of a listing on this machine), then with 1,000, 2,000 and 4,000 existing one-on-one bookings
and buffers, each size also with twice as many busy periods imported from the teacher's own
calendar. Prints milliseconds (median and fastest of several runs), the growth over the size
before (median), and queries per listing. Then the sync of a 5,000-event calendar feed served
on loopback: seconds per sync.

    python bench/slots.py [--database sqlite|postgres] [--runs 15]

Targets: under 10 ms at 1,000 bookings and under 20 ms at 1,000 bookings plus 2,000 busy
periods, on SQLite and PostgreSQL; at most x2.2 for twice the bookings; the same number of
queries at every size; a 5,000-event feed synced in a few seconds. On a shared or busy machine
the fastest run says more than the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time as clock
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _setup import add_lessons, django_on, machine_speed, open_all_week

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--sizes", default="0,1000,2000,4000")
    parser.add_argument("--feed-events", type=int, default=5000)
    args = parser.parse_args()

    with django_on(args.database):
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from liveclass_booking import services
        from liveclass_booking.calendar.sources import create_busy_source
        from liveclass_booking.calendar.sync import sync_source
        from liveclass_booking.models import (
            BusyPeriod,
            TeacherBookingPolicy,
            get_course_model,
        )

        users = get_user_model().objects
        teaching = Permission.objects.filter(codename="add_liveclasssession")
        start = datetime(2030, 1, 7, tzinfo=UTC)
        end = start + timedelta(days=90)
        print(f"database: {connection.vendor}; range: 90 days; lesson 30 min; step 15 min")
        print(f"machine speed: the reference loop takes {machine_speed():.1f} ms before the run")
        print(
            f"{'bookings':>9} {'busy':>6} {'ms (median)':>12} {'ms (min)':>9} {'growth':>7} "
            f"{'queries':>8} {'free slots':>11}"
        )
        medians: dict[tuple[int, bool], float] = {}
        for size in [int(s) for s in args.sizes.split(",")]:
            teacher = users.create_user(username=f"teacher{size}", password="x")
            teacher.user_permissions.add(*teaching)
            teacher = users.get(pk=teacher.pk)
            student = users.create_user(username=f"student{size}", password="x")
            course = get_course_model().objects.create(title=f"Course {size}")
            TeacherBookingPolicy.objects.create(
                teacher=teacher,
                min_notice_hours=0,
                buffer_before_minutes=5,
                buffer_after_minutes=5,
            )
            open_all_week(teacher)
            # Existing lessons, 20 minutes each, spread evenly over the 90 days.
            if size:
                add_lessons(teacher, student, course, start, timedelta(days=90) / size, size)
            for busy in sorted({0, 2 * size}):
                if busy:
                    # Imported busy periods, 10 minutes each, between the lessons.
                    source = create_busy_source(
                        actor=None, teacher=teacher, kind="ics", url="https://calendar.test/x"
                    )
                    step = timedelta(days=90) / busy
                    BusyPeriod.objects.bulk_create(
                        BusyPeriod(
                            source=source,
                            teacher=teacher,
                            start_at_utc=start + i * step + timedelta(minutes=30),
                            end_at_utc=start + i * step + timedelta(minutes=40),
                        )
                        for i in range(busy)
                    )
                timings = []
                for _ in range(args.runs):
                    with CaptureQueriesContext(connection) as queries:
                        began = clock.perf_counter()
                        slots = services.free_slots(
                            teacher,
                            course,
                            start,
                            end,
                            timedelta(minutes=30),
                            timedelta(minutes=15),
                        )
                        timings.append((clock.perf_counter() - began) * 1000)
                median = statistics.median(timings)
                # Against the size half as big, with busy periods or without like this one.
                previous = medians.get((size // 2, busy > 0))
                growth = f"x{median / previous:.2f}" if previous else ""
                medians[size, busy > 0] = median
                print(
                    f"{size:>9} {busy:>6} {median:>12.1f} {min(timings):>9.1f} {growth:>7} "
                    f"{len(queries.captured_queries):>8} {len(slots):>11}"
                )

        print(f"machine speed: the reference loop takes {machine_speed():.1f} ms after the run")

        from tests.feed_server import feed_server, vcalendar, vevent

        # A feed of many single events and some weekly ones, as a busy teacher's calendar.
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        events = []
        for i in range(args.feed_events):
            at = now + timedelta(hours=3 * i + 1)
            rule = ("RRULE:FREQ=WEEKLY;COUNT=10",) if i % 50 == 0 else ()
            events.append(
                vevent(
                    f"{i}@bench",
                    f":{at:%Y%m%dT%H%M%SZ}",
                    f":{at + timedelta(hours=1):%Y%m%dT%H%M%SZ}",
                    f"Event {i}",
                    *rule,
                )
            )
        document = vcalendar(*events)
        settings.LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES = True
        settings.LIVECLASS_BOOKING_BUSY_LOOKAHEAD = timedelta(days=731)
        settings.LIVECLASS_BOOKING_BUSY_MAX_BYTES = 50_000_000
        teacher = users.create_user(username="feed-teacher", password="x")
        teacher.user_permissions.add(*teaching)
        teacher = users.get(pk=teacher.pk)
        with feed_server() as feed:
            feed.set("/feed.ics", document)
            source = create_busy_source(
                actor=None, teacher=teacher, kind="ics", url=feed.url("/feed.ics")
            )
            timings = []
            for _ in range(3):
                began = clock.perf_counter()
                result = sync_source(source)
                timings.append(clock.perf_counter() - began)
                assert result.outcome == "synced", result
        print(
            f"sync of a {args.feed_events}-event feed ({len(document) / 1e6:.1f} MB, "
            f"{result.periods} busy periods): {statistics.median(timings):.2f} s (median of 3)"
        )


if __name__ == "__main__":
    main()
