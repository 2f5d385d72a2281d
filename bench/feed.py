"""Calendar feed: the subscribed calendar (``calendar/feed/{token}.ics``) of a teacher who is
also a student, with 500 and 2,000 events in its window. Half are one-on-one lessons they
teach (a tenth cancelled lately, a tenth moved by reschedules, chains of two and three rows,
a fifth in series), a fifth group sessions they teach (five booked students each, one of
them cancelled in every fourth; every 25th session cancelled lately), a fifth their own seats
in other teachers' sessions (a fifth in group series) and a tenth their own lessons with other
teachers (half in series). Rows outside the feed (older, later, cancelled long ago) lie beside.

(a) The whole feed through the view (Django's test client, throttle off): milliseconds (median
    and min of several runs), queries per request, body size and VEVENTs.
(b) Revalidation: the same GET with ``If-None-Match: <its ETag>``, answered 304 after the
    reads alone (the ETag of unchanged entries is remembered in the default cache).
Beside them, measured in the same run: the builder alone (``user_feed(...).render()``, no
HTTP) and its database reads alone (``user_entries``), so one sees where the time goes.

    python bench/feed.py [--database sqlite|postgres] [--runs 7] [--sizes 500,2000] [--profile]

Target: the same number of queries at every size. ``--profile`` adds a cProfile of one full
GET at the largest size (top 15 by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import re
import statistics
import time as clock
from collections.abc import Callable
from datetime import time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from _setup import ROOT, add_lessons, add_sessions, django_on

#: Students of the user's one-on-one lessons and group sessions; other teachers they learn from.
STUDENTS, OTHER_TEACHERS, GROUP_SIZE = 10, 3, 5


def populate(size: int, course: Any) -> Any:
    """The user, with exactly ``size`` entries in their feed window (and rows outside it)."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from liveclass_booking.models import (
        BookingSeries,
        BookingSeriesItem,
        get_booking_model,
        get_session_model,
    )

    users = get_user_model()
    bookings, sessions_of = get_booking_model(), get_session_model()
    me = users.objects.create_user(
        username=f"me{size}", password="x", first_name="Robin", last_name=f"Teacher {size}"
    )
    students = users.objects.bulk_create(
        [
            users(username=f"s{size}_{k}", password="x", first_name="Student", last_name=f"{k}")
            for k in range(STUDENTS)
        ]
    )
    others = users.objects.bulk_create(
        [
            users(username=f"t{size}_{k}", password="x", first_name="Teacher", last_name=f"{k}")
            for k in range(OTHER_TEACHERS)
        ]
    )
    now = timezone.now()
    begin, span = now - timedelta(days=29), timedelta(days=385)  # inside the feed window
    taught, sessions, seats = size * 5 // 10, size * 2 // 10, size * 2 // 10
    taken = size - taught - sessions - seats

    def spread(count: int, parts: int) -> list[int]:
        return [count // parts + (k < count % parts) for k in range(parts)]

    def series(student: Any, teacher: Any, kind: str, items: list[tuple[Any, Any]]) -> None:
        """A weekly series whose occurrences are ``items`` (booking, session or None)."""
        first = items[0][0].start_at_utc
        row = BookingSeries.objects.create(
            student_user=student,
            teacher=teacher,
            course=course,
            type=kind,
            start_date=first.date(),
            start_time=time(first.hour, first.minute),
            duration_minutes=20,
            timezone="UTC",
            occurrence_count=len(items),
        )
        BookingSeriesItem.objects.bulk_create(
            [
                BookingSeriesItem(
                    series=row,
                    occurrence_index=i + 1,
                    start_at_utc=booking.start_at_utc,
                    end_at_utc=booking.end_at_utc,
                    booking=booking,
                    session=session,
                )
                for i, (booking, session) in enumerate(items)
            ],
            batch_size=500,
        )

    # One-on-one lessons the user teaches, their students taking turns.
    step = span / taught
    lessons: list[Any] = []
    for k, count in enumerate(spread(taught, STUDENTS)):
        lessons += add_lessons(me, students[k], course, begin + k * step, step * STUDENTS, count)
    lessons.sort(key=lambda b: b.start_at_utc)
    cancelled = [b.pk for i, b in enumerate(lessons) if i % 10 == 3]
    bookings.objects.filter(pk__in=cancelled).update(
        status="cancelled", cancelled_at=now - timedelta(days=2), calendar_sequence=1
    )
    # Reschedule chains: the listed booking replaced one (or two in turn) moved away.
    twos = [b for i, b in enumerate(lessons) if i % 20 == 5]
    threes = [b for i, b in enumerate(lessons) if i % 20 == 15]

    def moved(booking: Any, previous: Any) -> Any:
        earlier = timedelta(days=1 if previous is None else 2)
        return bookings(
            booking_type="one_on_one",
            course=course,
            teacher=me,
            student_user=booking.student_user,
            status="rescheduled",
            start_at_utc=booking.start_at_utc - earlier,
            end_at_utc=booking.end_at_utc - earlier,
            blocked_from_utc=booking.blocked_from_utc - earlier,
            blocked_until_utc=booking.blocked_until_utc - earlier,
            rescheduled_from=previous,
        )

    oldest = bookings.objects.bulk_create([moved(b, None) for b in twos + threes])
    middle = bookings.objects.bulk_create(
        [moved(b, p) for b, p in zip(threes, oldest[len(twos) :], strict=True)]
    )
    for booking, previous in zip(twos + threes, oldest[: len(twos)] + middle, strict=True):
        booking.rescheduled_from = previous
        booking.calendar_sequence = 2
    bookings.objects.bulk_update(twos + threes, ["rescheduled_from", "calendar_sequence"])
    for student in students:
        mine = [b for i, b in enumerate(lessons) if i % 10 in (0, 1) and b.student_user == student]
        if mine:
            series(student, me, "one_on_one_series", [(b, None) for b in mine])

    # Group sessions the user teaches.
    taught_sessions, _ = add_sessions(
        me, course, begin + step / 2, span / sessions, sessions, students[:GROUP_SIZE]
    )
    bookings.objects.filter(session__in=taught_sessions[::4], student_user=students[0]).update(
        status="cancelled"
    )
    dropped = [s.pk for s in taught_sessions[::25]]
    sessions_of.objects.filter(pk__in=dropped).update(status="cancelled", calendar_sequence=1)
    bookings.objects.filter(session__in=dropped).update(status="cancelled")

    # The user's seats in other teachers' sessions, and their own lessons with them.
    for k, (count, teacher) in enumerate(zip(spread(seats, OTHER_TEACHERS), others, strict=True)):
        every = span / count
        _, booked = add_sessions(
            teacher, course, begin + every * k / OTHER_TEACHERS, every, count, [me, *students[-2:]]
        )
        own = [b for b in booked if b.student_user == me]
        series(me, teacher, "group_series", [(b, b.session) for b in own[::5]])
    for k, (count, teacher) in enumerate(zip(spread(taken, OTHER_TEACHERS), others, strict=True)):
        every = span / count
        start = begin + timedelta(hours=3) + every * k / OTHER_TEACHERS
        own = add_lessons(teacher, me, course, start, every, count)
        series(me, teacher, "one_on_one_series", [(b, None) for b in own[::2]])

    # Outside the feed: a year of older lessons, later ones, and some cancelled long ago.
    earlier = timedelta(days=300) / (size // 4)
    add_lessons(me, students[0], course, now - timedelta(days=400), earlier, size // 4)
    add_lessons(me, students[1], course, now + timedelta(days=380), timedelta(hours=6), size // 10)
    gone = add_lessons(
        me,
        students[2],
        course,
        begin + step / 4,
        span / (size // 10),
        size // 10,
        status="cancelled",
    )
    bookings.objects.filter(pk__in=[b.pk for b in gone]).update(updated_at=now - timedelta(days=90))
    return me


def measure(runs: int, calls: list[Callable[[], Any]]) -> list[tuple[list[float], int, Any]]:
    """For each of ``calls``: the milliseconds of ``runs`` calls after a warm-up one, its
    queries (the same in every run) and its last result. The calls take turns within each
    run, so a busy moment of the machine falls on all of them alike; garbage is collected
    before each call, so none pays for the cycles another one left."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    results = [call() for call in calls]
    timings: list[list[float]] = [[] for _ in calls]
    queries: list[set[int]] = [set() for _ in calls]
    for _ in range(runs):
        for i, call in enumerate(calls):
            gc.collect()
            with CaptureQueriesContext(connection) as captured:
                began = clock.perf_counter()
                results[i] = call()
                timings[i].append((clock.perf_counter() - began) * 1000)
            queries[i].add(len(captured.captured_queries))
    assert all(len(q) == 1 for q in queries), queries
    return [(t, q.pop(), r) for t, q, r in zip(timings, queries, results, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    with django_on(args.database):
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import override_settings
        from django.urls import reverse
        from django.utils import timezone

        import liveclass_booking
        from liveclass_booking.calendar.feed import user_entries, user_feed

        def render(user: Any, now: Any) -> tuple[bytes, str]:
            return user_feed(user, now).render()

        from liveclass_booking.calendar.tokens import create_token
        from liveclass_booking.models import get_course_model

        code = Path(liveclass_booking.__file__).resolve()
        assert code.is_relative_to(ROOT / "src"), f"measuring {code}, not {ROOT / 'src'}"
        rates = {**getattr(settings, "LIVECLASS_BOOKING_THROTTLE_RATES", {}), "feed": None}
        course = get_course_model().objects.create(title="Conversation practice")
        client = Client()
        print(
            f"database: {connection.vendor}; code: {code.parent}; {args.runs} runs after a "
            "warm-up; window -30/+365 days"
        )
        print(
            f"{'events':>6}  {'path':<30} {'ms (median)':>11} {'ms (min)':>9} {'queries':>8} "
            f"{'KB':>7} {'VEVENTs':>8}"
        )
        queries: dict[int, tuple[int, int]] = {}
        shares = []
        profile_url = ""
        # The test client's host, the feed's throttle off, UIDs in a domain of their own.
        bench_settings = {
            "ALLOWED_HOSTS": ["testserver"],
            "LIVECLASS_BOOKING_THROTTLE_RATES": rates,
            "LIVECLASS_BOOKING_CALENDAR_DOMAIN": "bench.example.com",
        }
        with override_settings(**bench_settings):
            for size in [int(s) for s in args.sizes.split(",")]:
                me = populate(size, course)
                _, secret = create_token(me, "bench")
                url = reverse("liveclass_booking:calendar-feed", kwargs={"token": secret})
                profile_url = url

                first = client.get(url)  # also records the token's use (once an hour)
                assert first.status_code == 200, first
                etag = first["ETag"]
                now = timezone.now()
                (
                    (full, full_queries, response),
                    (again, again_queries, unchanged),
                    (built, built_queries, feed),
                    (read, read_queries, entries),
                ) = measure(
                    args.runs,
                    [
                        partial(client.get, url),
                        partial(client.get, url, headers={"If-None-Match": etag}),
                        partial(render, me, now),
                        partial(user_entries, me, now),
                    ],
                )
                assert response.status_code == 200, response
                assert unchanged.status_code == 304, unchanged
                body = response.content
                events = body.count(b"BEGIN:VEVENT")
                assert events == size == len(entries), (events, size, len(entries))
                assert feed[1] == etag == response["ETag"]
                queries[size] = (full_queries, again_queries)
                rows = [
                    ("GET feed (200)", full, full_queries, f"{len(body) / 1024:.0f}", events),
                    ("GET If-None-Match (304)", again, again_queries, "0", 0),
                    ("user_feed() builder, no HTTP", built, built_queries, "", ""),
                    ("user_entries() reads only", read, read_queries, "", len(entries)),
                ]
                for path, timings, count, kb, vevents in rows:
                    print(
                        f"{size:>6}  {path:<30} {statistics.median(timings):>11.1f} "
                        f"{min(timings):>9.1f} {count:>8} {kb:>7} {vevents:>8}"
                    )
                reads, builder, view, cached = (min(t) for t in (read, built, full, again))
                shares.append(
                    f"{size:>6}  reads {reads:.0f} ms ({reads / view:.0%}), iCalendar and hash "
                    f"{builder - reads:.0f} ms ({(builder - reads) / view:.0%}), token, view "
                    f"and HTTP {view - builder:.0f} ms ({(view - builder) / view:.0%}); "
                    f"a 304 costs {cached / view:.0%} of a 200"
                )
            print("where the time of a full GET goes (fastest runs, the least disturbed):")
            print("\n".join(shares))
            constant = len(set(queries.values())) == 1
            print(f"constant queries: {'yes' if constant else 'no'} ({queries})")

            if args.profile:
                profiler = cProfile.Profile()
                gc.collect()
                profiler.runcall(client.get, profile_url)
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
                # The test client's and the middleware's frames only wrap the view's: left out.
                stats.print_stats(r"liveclass_booking|icalendar|django/db", 15)
                text = out.getvalue().split("\n", 4)[-1].rstrip()
                text = re.sub(r"/\S*/site-packages/", "", text).replace(f"{ROOT}/src/", "")
                print(
                    f"\ncProfile of one full GET at {size} events, top 15 by cumulative time "
                    "(frames of liveclass_booking, icalendar and django.db):"
                )
                print(text)


if __name__ == "__main__":
    main()
