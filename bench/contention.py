"""Contention on PostgreSQL: N threads booking seats of one session through the services,
beside a ceiling: the least SQL that books a seat (one conditional UPDATE of the session and
one INSERT of the booking, in one transaction), on the same database in the same run. The
ceiling does far less than the services (no limits, no waitlist, no audit or outbox row, no
host rules): it is the rate no booking path can beat, not the same work done faster.

Both paths get the same warm-up (every thread books a few seats of another session first,
untimed), then book the measured session together. Prints bookings per second, p50/p99
latency, the CPU time per booking (of the booking processes, and of the whole machine with
how many cores it kept busy), the statements of one booking (in all, and while the session
row is locked: from the statement that locks it to the COMMIT, both included), how long a
booking held the session row (median) and the rate that allows, and the services' share of
the ceiling.

    python bench/contention.py [--threads 8] [--bookings 800] [--warmup 5] [--processes 1]

With ``--processes N`` the threads are spread over N forked processes, as a server's worker
processes are, so that one interpreter lock no longer binds them all; each path's figures
then count all of them.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from _setup import RawSeats, django_on, machine_busy, percentile


@dataclass(frozen=True)
class Target:
    """A session to book, and where its students start in the path's list of students."""

    session: Any
    first: int
    per_thread: int

    def student(self, students: list[Any], t: int, i: int) -> Any:
        return students[self.first + t * self.per_thread + i]


Book = Callable[[Target, int, int], None]


@dataclass(frozen=True)
class Run:
    """What one path's measured run took: seconds, the CPU seconds of the booking processes
    (all their threads), the CPU seconds the whole machine was busy (the database server
    included), each booking's latency in milliseconds, and how long each booking held the
    session row (:class:`LockClock`)."""

    elapsed: float
    cpu: float
    machine: float
    latencies: list[float]
    held: list[float]


class LockClock:
    """How long each booking holds the session row: from the end of the statement that
    locks it (its ``UPDATE``, or a ``SELECT ... FOR UPDATE`` of it) to the end of the
    ``COMMIT``, in milliseconds. :meth:`watch` is an execute wrapper of each booking
    thread's connection; :meth:`committing` patches the connection class's commit while
    the measured run lasts."""

    def __init__(self, sessions_table: str) -> None:
        self.locking = locking_statement(sessions_table)
        self.local = threading.local()
        self.held: list[float] = []

    def watch(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if getattr(self.local, "since", None) is None and self.locking.search(sql):
            self.local.since = time.perf_counter()
        return result

    @contextmanager
    def committing(self) -> Iterator[None]:
        from django.db import connections

        wrapper = type(connections["default"])
        original = wrapper._commit

        def _commit(db: Any) -> None:
            original(db)
            since = getattr(self.local, "since", None)
            if since is not None:
                self.held.append((time.perf_counter() - since) * 1000)
                self.local.since = None

        wrapper._commit = _commit
        try:
            yield
        finally:
            wrapper._commit = original


def locking_statement(sessions_table: str) -> re.Pattern[str]:
    """The statements that lock a row of the session table."""
    table = re.escape(f'"{sessions_table}"')
    return re.compile(rf"^UPDATE {table}|^SELECT .* FROM {table} .*FOR (NO KEY )?UPDATE", re.DOTALL)


def run_threads(
    threads: int,
    per_thread: int,
    warmup: int,
    book: Book,
    warm: Target,
    measured: Target,
    *,
    clock: LockClock,
    first: int = 0,
    before_start: Callable[[], object] = lambda: None,
) -> Run:
    """``threads`` threads (numbered from ``first``) each book ``warmup`` seats of ``warm``
    (untimed, with its own connection opened), then, once ``before_start()`` returns, all
    book ``per_thread`` seats each of ``measured`` at once."""
    from django.db import connections

    latencies: list[list[float]] = [[] for _ in range(threads)]
    warmed = threading.Barrier(threads + 1)
    go = threading.Event()

    def worker(local: int) -> None:
        t = first + local
        for i in range(warmup):
            book(warm, t, i)
        warmed.wait()
        go.wait()
        with connections["default"].execute_wrapper(clock.watch):
            for i in range(per_thread):
                began = time.perf_counter()
                book(measured, t, i)
                latencies[local].append((time.perf_counter() - began) * 1000)
        connections.close_all()

    pool = [threading.Thread(target=worker, args=(local,)) for local in range(threads)]
    for thread in pool:
        thread.start()
    warmed.wait()
    before_start()
    with clock.committing():
        began, cpu, busy = time.perf_counter(), time.process_time(), machine_busy()[0]
        go.set()
        for thread in pool:
            thread.join()
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    return Run(
        elapsed,
        cpu,
        machine_busy()[0] - busy,
        [v for chunk in latencies for v in chunk],
        clock.held,
    )


def run_processes(
    processes: int,
    threads: int,
    per_thread: int,
    warmup: int,
    book: Book,
    warm: Target,
    measured: Target,
    *,
    clock: LockClock,
) -> Run:
    """:func:`run_threads` spread over ``processes`` forked processes (``threads`` in all),
    as a server's worker processes are: the interpreter lock then binds each process alone.
    The CPU time is all the processes'."""
    import multiprocessing
    import os

    from django.db import connections

    context = multiprocessing.get_context("fork")
    ready = context.Barrier(processes + 1)
    results = context.Queue()
    each = threads // processes

    def child(p: int) -> None:
        run = run_threads(
            each,
            per_thread,
            warmup,
            book,
            warm,
            measured,
            clock=clock,
            first=p * each,
            before_start=ready.wait,
        )
        results.put((run.latencies, run.cpu, run.held))
        results.close()
        results.join_thread()  # the answer is in the pipe before the process ends
        os._exit(0)

    # Each process opens connections of its own: none may share the parent's.
    connections.close_all()
    children = [context.Process(target=child, args=(p,)) for p in range(processes)]
    for process in children:
        process.start()
    ready.wait()
    began, busy = time.perf_counter(), machine_busy()[0]
    gathered = [results.get() for _ in children]
    elapsed, busy = time.perf_counter() - began, machine_busy()[0] - busy
    for process in children:
        process.join()
        assert process.exitcode == 0, process.exitcode
    return Run(
        elapsed,
        sum(cpu for _, cpu, _ in gathered),
        busy,
        [value for latencies, _, _ in gathered for value in latencies],
        [value for _, _, held in gathered for value in held],
    )


def statements(book: Callable[[], None], sessions_table: str) -> tuple[list[str], int]:
    """The statements of one booking (``BEGIN`` and ``COMMIT`` included), and how many of
    them run while the session row is locked: from the first statement that locks it (its
    ``UPDATE``, or a ``SELECT ... FOR UPDATE`` of it) to the ``COMMIT``."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        book()
    sql = [query["sql"] for query in captured.captured_queries]
    locking = locking_statement(sessions_table)
    first = next((i for i, text in enumerate(sql) if locking.search(text)), None)
    end = next((i for i, text in enumerate(sql) if text.startswith("COMMIT")), len(sql) - 1)
    return sql, 0 if first is None else end - first + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--bookings", type=int, default=800)
    parser.add_argument("--warmup", type=int, default=5, help="untimed bookings per thread")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="spread the threads over this many processes (each books with threads/processes)",
    )
    parser.add_argument(
        "--show", action="store_true", help="print the statements of one booking of each path"
    )
    args = parser.parse_args()
    if args.processes < 1 or args.threads % args.processes:
        parser.error("--threads must be a multiple of --processes")
    per_thread = args.bookings // args.threads
    total = per_thread * args.threads
    warm_total = args.warmup * args.threads

    with django_on("postgres"):
        from django.contrib.auth import get_user_model
        from django.db import connection, transaction
        from django.utils import timezone

        from liveclass_booking import services
        from liveclass_booking.models import get_course_model, get_session_model
        from tests.conftest import grant_teaching

        users = get_user_model()
        teacher = grant_teaching(users.objects.create_user(username="teacher", password="x"))
        course = get_course_model().objects.create(title="Bench")
        # Each path books with students of its own: the warm-up's, the probe's, the run's.
        per_path = warm_total + 1 + total
        students = users.objects.bulk_create(
            [users(username=f"s{i}", password="x") for i in range(2 * per_path)]
        )
        sessions_table = get_session_model()._meta.db_table

        def new_session(capacity: int) -> Any:
            start = timezone.now() + timedelta(days=2)
            return services.create_session(
                teacher=teacher,
                course=course,
                title="Bench",
                start_at_utc=start,
                end_at_utc=start + timedelta(hours=1),
                capacity=capacity,
            )

        def via_services(target: Target, t: int, i: int) -> None:
            student = target.student(students, t, i)
            services.book_group_session(student=student, session=target.session)

        # The ceiling: the shared raw-SQL seat booking (conditional UPDATE, then the INSERT
        # of a row naming every column of the booking table with its defaults).
        raw_seats = RawSeats()

        def ceiling(target: Target, t: int, i: int) -> None:
            student_pk = target.student(students, t, i).pk
            with transaction.atomic(), connection.cursor() as cursor:
                assert raw_seats.book(cursor, target.session, student_pk, timezone.now())

        results = []
        for path, (label, book) in enumerate((("services", via_services), ("ceiling", ceiling))):
            base = path * per_path
            warm = Target(new_session(warm_total), base, args.warmup)
            probe = Target(new_session(1), base + warm_total, 0)
            measured = Target(new_session(total), base + warm_total + 1, per_thread)
            runner = partial(run_processes, args.processes) if args.processes > 1 else run_threads
            run = runner(
                args.threads,
                per_thread,
                args.warmup,
                book,
                warm,
                measured,
                clock=LockClock(sessions_table),
            )
            measured.session.refresh_from_db()
            assert measured.session.seats_taken == total, (label, measured.session.seats_taken)
            sql, locked = statements(lambda b=book, p=probe: b(p, 0, 0), sessions_table)
            if args.show:
                print(f"-- {label}: one booking")
                for i, text in enumerate(sql):
                    print(f"{i:3} {text[:150]}")
            results.append((label, run, len(sql), locked))

        print(
            f"database: {connection.vendor}; {args.threads} threads in {args.processes} "
            f"process(es); {total} bookings each "
            f"path, after {args.warmup} untimed per thread"
        )
        cores = os.cpu_count() or 1
        print(
            f"{'path':<10} {'bookings/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms':>7} "
            f"{'machine ms':>11} {'busy cores':>11} {'statements':>11} {'under lock':>11} "
            f"{'lock ms':>8} {'lock-bound/s':>13}"
        )
        for label, run, count, locked in results:
            assert len(run.held) == total, (label, len(run.held))
            held = percentile(run.held, 0.5)
            print(
                f"{label:<10} {total / run.elapsed:>11.0f} "
                f"{percentile(run.latencies, 0.5):>8.2f} "
                f"{percentile(run.latencies, 0.99):>8.2f} {run.cpu / total * 1000:>7.2f} "
                f"{run.machine / total * 1000:>11.2f} "
                f"{run.machine / run.elapsed:>6.2f} of {cores} {count:>11} {locked:>11} "
                f"{held:>8.2f} {1000 / held:>13.0f}"
            )
        print(
            "CPU ms: the booking processes' CPU time per booking (the threads of one process "
            "share one interpreter lock: a rate near processes x 1000 / CPU ms is bound by it, "
            "not by the row lock)"
        )
        print(
            "machine ms: the whole machine's busy CPU time per booking (the database server, "
            "the kernel and anything else running included); busy cores: how many of the "
            "machine's cores that kept busy. A run that keeps every core busy is bound by the "
            "machine: its rate is about cores x 1000 / machine ms"
        )
        print(
            "statements: one booking's, BEGIN and COMMIT included; under lock: from the "
            "statement that locks the session row to the COMMIT"
        )
        print(
            "lock ms: how long a booking holds the session row (median), from the end of the "
            "statement that locks it to the end of the COMMIT; lock-bound/s: 1000 / lock ms, "
            "the most bookings of one session a second that lock allows, whatever the cores"
        )
        service_time, ceiling_time = results[0][1].elapsed, results[1][1].elapsed
        print(f"services reach {ceiling_time / service_time:.0%} of the raw-SQL ceiling")


if __name__ == "__main__":
    main()
