"""The notification dispatcher on two tasks backends that run it in a worker process of their
own: the database backend (django-tasks-db, the ``tasks-db`` extra) with its ``db_worker``
command, and a broker-backed one, RQ (django-tasks-rq, the ``rq`` extra) on the local Redis
server with ``rqworker``.

One test, run once per backend: a booking commits; the commit enqueues one dispatcher pass
(a row of django-tasks-db's table, or a job on Redis) and nothing is sent yet; the worker, a
separate process with the test's settings and database, runs the pass
(``liveclass_booking.tasks.dispatch_notifications``, the library's code as it is) in burst mode
(``db_worker --batch``, ``rqworker --burst``: it works off the queue and exits); the task's
result is successful, each delivery's mail reaches the test's SMTP server exactly once, and a
later pass finds nothing left. A second test, again once per backend, has three bookings
share two passes (``LIVECLASS_BOOKING_DISPATCH_INTERVAL``): one at once, one deferred.

The RQ run claims a Redis database of its own (one that was empty: parallel runs each take
another) and deletes what it wrote there. Without a Redis server at 127.0.0.1 (``REDIS_PORT``,
default 6379), or without the backend's extra, a run skips; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NoReturn

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from liveclass_booking import services, tasks
from liveclass_booking.choices import DeliveryStatus as D
from liveclass_booking.models import NotificationDelivery, NotificationEvent
from liveclass_booking.notifications import dispatch
from tests import test_notification_delivery as delivery

smtp_server = delivery.smtp_server  # the fixture: an SMTP server on 127.0.0.1 for the test

REDIS_HOST = "127.0.0.1"
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6379"))
#: The key that marks a Redis database as one test's own while it runs.
CLAIM_KEY = "liveclass-booking-tests:claimed"


def unavailable(reason: str) -> NoReturn:
    """Skip the test; under ``CI=true``, fail it (CI installs and runs everything it needs)."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class RedisDatabase:
    url: str
    client: Any  # redis.Redis


@pytest.fixture
def redis_database() -> Iterator[RedisDatabase]:
    """A database of the local Redis server that held nothing and is this test's alone (a
    claim key set with NX, so that two runs at once take different ones); the keys written
    to it are deleted afterwards."""
    try:
        import django_rq  # noqa: F401
        import django_tasks_rq  # noqa: F401
        import redis
    except ImportError as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        unavailable(f"the RQ tasks backend is not installed (pip install -e '.[rq]'): {missing}")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    def connect(number: int) -> Any:
        return redis.Redis(
            host=REDIS_HOST,
            port=REDIS_PORT,
            db=number,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    probe = connect(0)
    problem = None
    try:
        probe.ping()
        try:
            count = int(probe.config_get("databases").get("databases", 16))
        except redis.ResponseError:  # CONFIG may be renamed away: the default then
            count = 16
    except redis.RedisError as exc:
        problem = f"Redis does not answer at {REDIS_HOST}:{REDIS_PORT}: {exc}"
    finally:
        probe.close()
    if problem:
        unavailable(problem)
    token = uuid.uuid4().hex
    claimed = None
    # Database 0, where other programs usually keep their keys, is never taken.
    for number in range(count - 1, 0, -1):
        client = connect(number)
        if client.dbsize() == 0 and client.set(CLAIM_KEY, token, nx=True, ex=600):
            if client.dbsize() == 1:  # nothing but the claim
                claimed = (number, client)
                break
            client.delete(CLAIM_KEY)
        client.close()
    if claimed is None:
        pytest.fail(f"no empty Redis database to claim at {REDIS_HOST}:{REDIS_PORT}")
    number, client = claimed
    try:
        yield RedisDatabase(f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}", client)
    finally:
        # The database held nothing when it was claimed: every key in it is the test's.
        written = [key for key in client.scan_iter(count=1000) if key != CLAIM_KEY.encode()]
        if written:
            client.delete(*written)
        if client.get(CLAIM_KEY) == token.encode():
            client.delete(CLAIM_KEY)
        client.close()


@contextmanager
def worker_database(directory: Path) -> Iterator[dict[str, str]]:
    """The environment that points a worker process at the test database. SQLite's test
    database usually lives in memory, where no other process can open it: the worker then
    gets a copy in a file, and what the worker wrote is copied back when it is done."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield delivery.database_environment()
        return
    path = directory / "worker.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(path) as copy:
        connection.connection.backup(copy)
    copy.close()
    yield {"TEST_DATABASE": "sqlite", "SQLITE_PATH": str(path)}
    with sqlite3.connect(path) as worked:
        worked.backup(connection.connection)
    worked.close()


@dataclass
class Worker:
    """A tasks backend set up for the test (in this process's settings) and how to start its
    worker process."""

    name: str  # the worker's name (its id in the task results)
    backend: str  # the class name of the backend the library's tasks go to
    settings: str  # the worker's settings module
    argv: list[str]  # the worker's management command and its arguments
    pending: Callable[[], list[str]]  # the ids of the tasks that wait in the queue
    waiting: Callable[[], list[str]]  # and of those that wait for their time too
    starts: Callable[[str], Any]  # the earliest time the backend will start a task
    variables: dict[str, str] = field(default_factory=dict)  # added to the worker's environment


def database_worker(settings: Any, name: str) -> Worker:
    """django-tasks-db's backend on the test database; ``db_worker`` runs what is due."""
    if find_spec("django_tasks_db") is None:
        unavailable("the database tasks backend is not installed (pip install -e '.[tasks-db]')")
    if "django_tasks_db" not in settings.INSTALLED_APPS:  # tests/settings.py adds it
        unavailable("django-tasks-db is installed without a tasks framework to build on")
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    def pending() -> list[str]:
        return [str(pk) for pk in DBTaskResult.objects.ready().values_list("pk", flat=True)]

    def starts(task_id: str) -> Any:
        return DBTaskResult.objects.get(pk=task_id).run_after

    def waiting() -> list[str]:
        return [
            str(pk)
            for pk in DBTaskResult.objects.filter(status="READY").values_list("pk", flat=True)
        ]

    return Worker(
        name,
        "DatabaseBackend",
        "tests.settings_tasks_db",
        [
            "db_worker",
            "--batch",  # run what is due, then exit
            "--no-startup-delay",
            "--interval",
            "0",
            "--backend",
            "default",
            "--queue-name",
            "default",
            "--worker-id",
            name,
        ],
        pending,
        waiting,
        starts,
    )


def rq_worker(settings: Any, name: str, redis_database: RedisDatabase) -> Worker:
    """django-tasks-rq's backend, its queue on the Redis database the test claimed;
    ``rqworker`` runs the queue."""
    import django_rq

    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.RQ_QUEUES = {"default": {"URL": redis_database.url}}
    queue = django_rq.get_queue("default")
    return Worker(
        name,
        "RQBackend",
        "tests.settings_rq",
        [
            "rqworker",
            "--burst",  # work off the queue, then exit
            "--job-class",
            "django_tasks_rq.Job",
            "--with-scheduler",  # in burst mode: first queue the deferred tasks that are due
            "--name",
            name,
            "default",
        ],
        lambda: list(queue.job_ids),
        lambda: [*queue.job_ids, *queue.scheduled_job_registry.get_job_ids()],
        # RQ schedules by the second: the score is when its scheduler queues the task.
        lambda task_id: datetime.fromtimestamp(
            queue.scheduled_job_registry.connection.zscore(
                queue.scheduled_job_registry.key, task_id
            ),
            UTC,
        ),
        {"RQ_REDIS_URL": redis_database.url},
    )


def run_worker(worker: Worker, smtp_server: delivery.MailSink, tmp_path: Path) -> tuple[str, str]:
    """Start the worker process, let it work off what is due and exit; its output."""
    with worker_database(tmp_path) as database:
        process = delivery.start_django(
            smtp_server,
            *worker.argv,
            settings=worker.settings,
            database=database,
            **worker.variables,
        )
        try:
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, f"{out}\n{err}"
    return out, err


@pytest.fixture(params=["database", "rq"])
def worker(request: pytest.FixtureRequest, settings: Any) -> Worker:
    name = f"liveclass-booking-test-{uuid.uuid4().hex}"
    if request.param == "database":
        return database_worker(settings, name)
    return rq_worker(settings, name, request.getfixturevalue("redis_database"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the commit enqueues; the worker sees committed rows
def test_a_worker_process_runs_the_dispatcher_and_each_mail_goes_once(
    worker: Worker,
    smtp_server: delivery.MailSink,
    session: Any,
    student: Any,
    teacher: Any,
    tmp_path: Path,
) -> None:
    # The backend the library's tasks go to (django.tasks on Django 6, the backport on 5.2).
    backend = tasks.task_backends["default"]
    assert type(backend).__name__ == worker.backend

    services.book_group_session(student=student, session=session)

    # The commit enqueued one pass; nothing has run.
    [task_id] = worker.pending()
    enqueued = backend.get_result(task_id)
    assert enqueued.task.module_path == "liveclass_booking.tasks.dispatch_notifications"
    assert enqueued.status.name == "READY"
    assert NotificationEvent.objects.count() == 1
    assert not NotificationDelivery.objects.exists()
    assert smtp_server.received == []

    out, err = run_worker(worker, smtp_server, tmp_path)

    # The worker ran the pass as a task of the backend, and it succeeded.
    assert worker.pending() == []
    result = backend.get_result(task_id)
    assert result.status.name == "SUCCESSFUL", f"{result.errors}\n{out}\n{err}"
    assert result.worker_ids == [worker.name]
    assert result.return_value.startswith("2 sent, 0 to retry, 0 failed, 0 skipped")

    rows = delivery.deliveries()
    assert {(d.status, d.attempts, d.last_error) for d in rows} == {(D.SENT, 1, "")}
    assert sorted(d.recipient.email for d in rows) == sorted([student.email, teacher.email])
    # Each delivery's mail arrived exactly once.
    assert smtp_server.ids() == Counter(delivery.expected_id(d) for d in rows)
    assert sorted(m.recipients[0] for m in smtp_server.received) == sorted(
        [student.email, teacher.email]
    )

    # Nothing is left over for another pass.
    report = dispatch()
    assert (report.expanded, report.sent, report.retried) == (0, 0, 0)
    assert len(smtp_server.received) == 2


@pytest.fixture
def one_pass_a_minute(settings: Any) -> None:
    """Passes at most one a minute per process (a fixture, so that the setting is made before
    ``smtp_server`` overrides the mail settings, and restored after them)."""
    settings.LIVECLASS_BOOKING_DISPATCH_INTERVAL = timedelta(minutes=1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bookings_close_together_share_a_deferred_pass_and_each_mail_goes_once(
    one_pass_a_minute: None,
    worker: Worker,
    smtp_server: delivery.MailSink,
    session: Any,
    student: Any,
    other_student: Any,
    teacher: Any,
    user_model: Any,
    tmp_path: Path,
) -> None:
    """``LIVECLASS_BOOKING_DISPATCH_INTERVAL`` with a real worker: a booking after a quiet
    spell gets a pass at once, which the worker runs; the next two bookings, within the
    interval, share one pass deferred to the interval's end; the worker runs that one too,
    and every delivery's mail arrives exactly once.

    This process's clock runs an hour behind the worker's, so that the deferred pass is due
    for the worker at once (the test does not wait a minute)."""
    backend = tasks.task_backends["default"]
    third = user_model.objects.create_user(username="third", email="third@example.com")

    with time_machine.travel(timezone.now() - timedelta(hours=1), tick=True):
        services.book_group_session(student=student, session=session)
        [first] = worker.waiting()
        assert backend.get_result(first).task.run_after is None  # at once
        run_worker(worker, smtp_server, tmp_path)
        assert backend.get_result(first).return_value.startswith("2 sent,")
        enqueued = backend.get_result(first).enqueued_at

        services.book_group_session(student=other_student, session=session)
        services.book_group_session(student=third, session=session)
        committed = timezone.now()
        [second] = worker.waiting()  # one pass for both
        deferred_to = backend.get_result(second).task.run_after
        assert committed < deferred_to <= enqueued + timedelta(minutes=1, seconds=1)
        # The backend will not start it before the commits it covers.
        assert worker.starts(second) > committed
        run_worker(worker, smtp_server, tmp_path)
    result = backend.get_result(second)
    assert result.status.name == "SUCCESSFUL", result.errors
    assert result.return_value.startswith("4 sent, 0 to retry, 0 failed, 0 skipped")
    assert worker.waiting() == []

    rows = delivery.deliveries()
    assert {(d.status, d.attempts) for d in rows} == {(D.SENT, 1)}
    assert smtp_server.ids() == Counter(delivery.expected_id(d) for d in rows)
    assert sorted(m.recipients[0] for m in smtp_server.received) == sorted(
        [student.email, other_student.email, third.email, *[teacher.email] * 3]
    )
