"""Creating a 52-occurrence series (weekly for a year) for a teacher who already has 1,000
one-on-one bookings over that year: a one-on-one series and a group series (into 52 weekly
sessions). Prints milliseconds (median and min of several runs) and queries per creation;
each run is rolled back, so every run books the same occurrences.

    python bench/series.py [--database sqlite|postgres] [--runs 7] [--bookings 1000]

Target: a constant number of queries whatever the length of the series, and well under a
second for 52 occurrences.
"""

from __future__ import annotations

import argparse
import statistics
import time as clock
from datetime import UTC, date, datetime, time, timedelta

from _setup import add_lessons, django_on, open_all_week


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--bookings", type=int, default=1000)
    args = parser.parse_args()

    with django_on(args.database):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission
        from django.db import connection, transaction
        from django.test.utils import CaptureQueriesContext

        from liveclass_booking import services
        from liveclass_booking.models import (
            TeacherBookingPolicy,
            get_course_model,
        )
        from liveclass_booking.recurrence import Recurrence

        users = get_user_model().objects
        teacher = users.create_user(username="teacher", password="x")
        student = users.create_user(username="student", password="x")
        others = users.create_user(username="others", password="x")
        course = get_course_model().objects.create(title="Course")
        TeacherBookingPolicy.objects.create(
            teacher=teacher,
            min_notice_hours=0,
            buffer_before_minutes=5,
            buffer_after_minutes=5,
            requires_approval_for_one_on_one=False,
        )
        open_all_week(teacher)
        first_day = date(2030, 1, 7)  # a Monday
        start = datetime.combine(first_day, time(0), tzinfo=UTC)
        spacing = timedelta(days=364) / args.bookings
        add_lessons(teacher, others, course, start, spacing, args.bookings)

        def weekly(at: time) -> Recurrence:
            return Recurrence(
                frequency="weekly",
                start_date=first_day,
                start_time=at,
                timezone="Europe/Berlin",
                duration_minutes=45,
                occurrence_count=52,
            )

        # The default resolver lets users with the session model's add permission teach.
        teacher.user_permissions.add(*Permission.objects.filter(codename="add_liveclasssession"))
        teacher = users.get(pk=teacher.pk)
        services.create_recurring_sessions(
            teacher=teacher, course=course, title="Weekly class", rule=weekly(time(7, 0)),
            capacity=20,
        )  # fmt: skip

        print(
            f"database: {connection.vendor}; teacher with {args.bookings} one-on-one bookings "
            "over the year; weekly series of 52, rolled back after each run"
        )
        print(f"{'series':>12} {'ms (median)':>12} {'ms (min)':>9} {'queries':>8} {'outcome':>30}")
        for kind, at in (("one_on_one_series", time(18, 0)), ("group_series", time(7, 0))):
            timings = []
            for _ in range(args.runs):
                with transaction.atomic():
                    with CaptureQueriesContext(connection) as queries:
                        began = clock.perf_counter()
                        report = services.create_series(
                            student=student,
                            teacher=teacher,
                            course=course,
                            series_type=kind,
                            rule=weekly(at),
                            accept_partial=True,
                        )
                        timings.append((clock.perf_counter() - began) * 1000)
                    transaction.set_rollback(True)
            outcome = ", ".join(f"{n} {status}" for status, n in sorted(report.counts.items()))
            label = kind.removesuffix("_series")
            print(
                f"{label:>12} {statistics.median(timings):>12.1f} {min(timings):>9.1f} "
                f"{len(queries.captured_queries):>8} {outcome:>30}"
            )


if __name__ == "__main__":
    main()
