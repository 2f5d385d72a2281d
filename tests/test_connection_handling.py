"""How a host's processes hold their PostgreSQL connections (docs/performance.md): psycopg's
pool (``OPTIONS["pool"]``) and ``CONN_MAX_AGE``. Threads play a gthread worker's request
threads: each "request" is framed by Django's ``request_started`` and ``request_finished``
signals, as the WSGI handler frames it, and books through the services at the same time as
the others. The booking guarantees hold whichever way the connections are held, and the
connections are given back and used again as documented, seen from the server
(``pg_stat_activity``) and from the pool's own counters."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from time import monotonic, sleep
from typing import Any

import psycopg
import pytest
from django.core.signals import request_finished, request_started
from django.db import connection, connections
from django.utils import timezone

from liveclass_booking import services
from liveclass_booking.exceptions import BookingError

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 6
REQUESTS = 5  # per thread: one lesson request for a shared slot, then seats


@contextmanager
def database_settings(**changes: Any) -> Iterator[None]:
    """The default database's ``changes`` for every thread's connection (their wrappers share
    this settings dict), restored afterwards with any pool closed."""
    settings_dict = connection.settings_dict
    connections.close_all()
    saved = {key: copy.deepcopy(settings_dict[key]) for key in changes}
    settings_dict.update(changes)
    try:
        yield
    finally:
        connections.close_all()
        connection.close_pool()
        settings_dict.update(saved)


class Backends:
    """The most client backends connected to the test database at once, sampled from another
    connection every few milliseconds while the threads run."""

    def __init__(self) -> None:
        db = connection.settings_dict
        self.conn = psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            user=db["USER"],
            password=db["PASSWORD"],
            dbname=db["NAME"],
            autocommit=True,
        )
        self.most = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sample)

    def count(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
        return int(row[0]) if row else 0

    def settled(self, timeout: float = 10) -> int:
        """The count once it stops falling: a backend whose client has closed the connection
        is listed until its process has exited, a few milliseconds later."""
        deadline = monotonic() + timeout
        while (count := self.count()) and monotonic() < deadline:
            sleep(0.02)
        return count

    def sample(self) -> None:
        while not self.stop.wait(0.005):
            self.most = max(self.most, self.count())

    def __enter__(self) -> Backends:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


def serve(work: Callable[[int, int], Any]) -> tuple[list[list[int]], list[str]]:
    """``THREADS`` threads released together, each serving ``REQUESTS`` requests
    ``work(thread, request)`` in a row. Returns the server process (backend pid) each request
    used, per thread, and each request's outcome (``ok`` or the domain error's code)."""
    barrier = threading.Barrier(THREADS)
    pids: list[list[int]] = [[] for _ in range(THREADS)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        try:
            barrier.wait(timeout=30)
            for r in range(REQUESTS):
                request_started.send(sender=None)
                try:
                    work(t, r)
                    outcome = "ok"
                except BookingError as exc:
                    outcome = exc.code
                pids[t].append(connection.connection.info.backend_pid)
                request_finished.send(sender=None)
                with lock:
                    outcomes.append(f"{'lesson' if r == 0 else 'seat'} {outcome}")
        except Exception as exc:
            with lock:
                outcomes.append(f"exception {exc!r}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return pids, outcomes


@pytest.fixture
def bookings(
    make_session: Any, teacher: Any, course: Any, user_model: Any, open_all_week: None
) -> Any:
    """The work of the threads: each one's first request asks for the same lesson slot, the
    others each book a seat of one session with fewer seats than requests."""
    session = make_session(capacity=10)
    students = [
        user_model.objects.create_user(username=f"pooled{t}-{r}", password="x")
        for t in range(THREADS)
        for r in range(REQUESTS)
    ]
    # Two days after the session (three days from now), so that the session never takes
    # the lesson's time, whatever the hour the test runs at.
    day = (timezone.now() + timedelta(days=5)).date()
    slot = datetime.combine(day, time(10), tzinfo=UTC)

    def work(t: int, r: int) -> Any:
        student = students[t * REQUESTS + r]
        if r == 0:
            return services.request_one_on_one(
                student=student,
                teacher=teacher,
                course=course,
                start_at_utc=slot,
                end_at_utc=slot + timedelta(hours=1),
            )
        return services.book_group_session(student=student, session=session)

    work.session = session  # type: ignore[attr-defined]
    return work


def assert_guarantees(outcomes: list[str], session: Any) -> None:
    seats = THREADS * (REQUESTS - 1)
    assert sorted(outcomes) == sorted(
        ["lesson ok"]
        + ["lesson slot_unavailable"] * (THREADS - 1)
        + ["seat ok"] * 10
        + ["seat session_full"] * (seats - 10)
    )
    session.refresh_from_db()
    assert session.seats_taken == 10
    assert session.bookings.filter(status="confirmed").count() == 10


def test_the_pool_lends_few_connections_to_many_requests(bookings: Any) -> None:
    pool = {"min_size": 1, "max_size": 2, "timeout": 20}
    with database_settings(OPTIONS={**connection.settings_dict["OPTIONS"], "pool": pool}):
        with Backends() as backends:
            pids, outcomes = serve(bookings)
        stats = connection.pool.get_stats()
        assert_guarantees(outcomes, bookings.session)

    # Six threads, thirty requests, two server connections: each request borrowed one and
    # gave it back when it finished (else the others would have waited out the timeout).
    used = {pid for thread in pids for pid in thread}
    assert len(used) <= 2
    assert backends.most <= 2
    assert stats["connections_num"] <= 2
    assert stats["requests_num"] >= THREADS * REQUESTS
    assert stats.get("requests_errors", 0) == 0


@pytest.mark.parametrize(
    ("max_age", "per_thread"),
    [
        pytest.param(60, 1, id="CONN_MAX_AGE=60-kept-per-thread"),
        pytest.param(0, REQUESTS, id="CONN_MAX_AGE=0-new-per-request"),
    ],
)
def test_conn_max_age_keeps_one_connection_per_thread(
    bookings: Any, max_age: int, per_thread: int
) -> None:
    options = {k: v for k, v in connection.settings_dict["OPTIONS"].items() if k != "pool"}
    with database_settings(CONN_MAX_AGE=max_age, OPTIONS=options), Backends() as backends:
        pids, outcomes = serve(bookings)
    # The threads closed their connections when they ended: none is left on the server.
    with Backends() as after:
        assert after.settled() == 0
    assert_guarantees(outcomes, bookings.session)

    # With CONN_MAX_AGE each thread keeps its one connection from request to request, never
    # more at once than the threads; at 0 every request opens and closes its own (and the
    # closed ones linger on the server for a moment while their processes exit).
    assert [len(set(thread)) for thread in pids] == [per_thread] * THREADS
    if max_age:
        assert backends.most <= THREADS
