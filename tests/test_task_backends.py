"""The notification dispatcher on a broker-backed tasks backend: RQ (django-tasks-rq, the
``rq`` extra) on the local Redis server, with a real ``rqworker`` process.

A booking commits; the commit enqueues one dispatcher pass on Redis and nothing is sent yet;
the worker, a separate process with the test's settings and database, runs the pass
(``liveclass_booking.tasks.dispatch_notifications``, the library's code as it is) and its mail
reaches the test's SMTP server, each delivery exactly once.

The test claims a Redis database of its own (one that was empty: parallel runs each take
another) and deletes what it wrote there. Without a Redis server at 127.0.0.1 (``REDIS_PORT``,
default 6379), or without the ``rq`` extra, it skips; with ``CI=true`` it fails instead.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from django.db import connection

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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the commit enqueues; the worker sees committed rows
def test_an_rq_worker_runs_the_dispatcher_and_each_mail_goes_once(
    redis_database: RedisDatabase,
    smtp_server: delivery.MailSink,
    session: Any,
    student: Any,
    teacher: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    import django_rq
    from rq.job import JobStatus

    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    settings.RQ_QUEUES = {"default": {"URL": redis_database.url}}
    queue = django_rq.get_queue("default")
    # The backend the library's tasks go to (django.tasks on Django 6, the backport on 5.2).
    backend = tasks.task_backends["default"]
    assert type(backend).__name__ == "RQBackend"

    services.book_group_session(student=student, session=session)

    # The commit enqueued one pass on Redis; nothing has run.
    [job_id] = queue.job_ids
    assert NotificationEvent.objects.count() == 1
    assert not NotificationDelivery.objects.exists()
    assert smtp_server.received == []

    worker_name = f"liveclass-booking-test-{uuid.uuid4().hex}"
    with worker_database(tmp_path) as database:
        worker = delivery.start_django(
            smtp_server,
            "rqworker",
            "--burst",  # work off the queue, then exit
            "--job-class",
            "django_tasks_rq.Job",
            "--name",
            worker_name,
            "default",
            settings="tests.settings_rq",
            database=database,
            RQ_REDIS_URL=redis_database.url,
        )
        try:
            out, err = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert worker.returncode == 0, f"{out}\n{err}"

    # The worker ran the pass as a task of the backend, and it succeeded.
    assert queue.job_ids == []
    assert queue.fetch_job(job_id).get_status() == JobStatus.FINISHED, f"{out}\n{err}"
    result = backend.get_result(job_id)
    assert result.status.name == "SUCCESSFUL", f"{result.errors}\n{out}\n{err}"
    assert result.worker_ids == [worker_name]
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
