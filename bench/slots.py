"""Free-slot listing: 90 days for one teacher with 1,000, 2,000 and 4,000 existing one-on-one
bookings and buffers. Prints milliseconds (median of several runs) and queries per listing.

    python bench/slots.py [--database sqlite|postgres] [--runs 7]

Target: under 20 ms at 1,000 bookings, with the same number of queries at every size.
"""

from __future__ import annotations

import argparse
import statistics
import time as clock
from datetime import UTC, datetime, timedelta

from _setup import add_lessons, django_on, open_all_week


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="1000,2000,4000")
    args = parser.parse_args()

    with django_on(args.database):
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from liveclass_booking import services
        from liveclass_booking.models import (
            TeacherBookingPolicy,
            get_course_model,
        )

        users = get_user_model().objects
        start = datetime(2030, 1, 7, tzinfo=UTC)
        end = start + timedelta(days=90)
        print(f"database: {connection.vendor}; range: 90 days; lesson 30 min; step 15 min")
        print(
            f"{'bookings':>9} {'ms (median)':>12} {'ms (min)':>9} {'queries':>8} {'free slots':>11}"
        )
        for size in [int(s) for s in args.sizes.split(",")]:
            teacher = users.create_user(username=f"teacher{size}", password="x")
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
            spacing = timedelta(days=90) / size
            add_lessons(teacher, student, course, start, spacing, size)
            timings = []
            for _ in range(args.runs):
                with CaptureQueriesContext(connection) as queries:
                    began = clock.perf_counter()
                    slots = services.free_slots(
                        teacher, course, start, end, timedelta(minutes=30), timedelta(minutes=15)
                    )
                    timings.append((clock.perf_counter() - began) * 1000)
            print(
                f"{size:>9} {statistics.median(timings):>12.1f} {min(timings):>9.1f} "
                f"{len(queries.captured_queries):>8} {len(slots):>11}"
            )


if __name__ == "__main__":
    main()
