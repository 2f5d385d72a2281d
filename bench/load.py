"""End-to-end load: the example project under gunicorn on PostgreSQL, on loopback.

Creates a fresh PostgreSQL database (``ld_`` and a random suffix, dropped at the end unless
``--keep-db``), migrates it and seeds a course with many teachers open for one-on-one lessons,
a few popular group sessions (one small enough to sell out) among many others, and many
students, each logged in (a Django session, as after a login form). Then it serves the example
project with gunicorn on 127.0.0.1 and drives a bounded, closed-loop load: every client sends
its next request as soon as the last one is answered, over a kept-alive HTTP connection.

- seat bookers ``POST bookings/`` a seat of one of the popular sessions;
- lesson requesters ``POST bookings/`` a 30-minute lesson with a random teacher at a random
  half hour of the coming fortnight;
- readers list ``sessions/?has_free_seats=true`` and a teacher's ``slots/`` of a day.

Each client acts for its own students, round robin; every POST carries an
``Idempotency-Key``. The same load runs against one gunicorn group and then two (two masters
on two ports, the clients split between them, one database), and last the raw-SQL ceiling
(the conditional UPDATE and the INSERT of a seat) at the same concurrency. After each run the
database is checked: no session overbooked (``seats_taken`` equals its confirmed bookings and
stays within the capacity), no two lessons of a teacher overlap, every 201 is one booking. The
exit status is 1 if a check fails or any answer was a 5xx, a transport error or an unexpected
status (expected refusals such as ``session_full`` or ``slot_unavailable`` are counted apart).

    python bench/load.py [--duration 15] [--workers 4] [--worker-class gthread --threads 2]
                         [--connections pool|persistent|per-request] [--groups 1,2] [--no-raw]

The PostgreSQL server is the PG* variables' (default 127.0.0.1:5432, user postgres).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

from _setup import HAVE_PROC, TICK, RawSeats, machine_busy, percentile

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "example_project"
BENCH = ROOT / "bench"
API = "/api/booking"

#: 409 answers that are the booking rules working, not errors.
REFUSALS = {"session_full", "already_booked", "slot_unavailable", "weekly_lesson_limit"}
KINDS = ("seat", "lesson", "sessions", "slots")
LESSON = timedelta(minutes=30)
HORIZON_DAYS = 14  # lessons of one run fall in a fortnight of its own


def pg_params(dbname: str) -> dict[str, Any]:
    return {
        "host": os.environ.get("PGHOST", "127.0.0.1"),
        "port": os.environ.get("PGPORT", "5432"),
        "user": os.environ.get("PGUSER", "postgres"),
        "password": os.environ.get("PGPASSWORD", ""),
        "dbname": dbname,
    }


def database_url(name: str) -> str:
    from urllib.parse import quote

    p = pg_params(name)
    auth = quote(p["user"]) + (":" + quote(p["password"]) if p["password"] else "")
    return f"postgres://{auth}@{p['host']}:{p['port']}/{name}"


# --- the options ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--duration", type=float, default=15, help="seconds of load per run (default 15)")
    add("--workers", type=int, default=4, help="gunicorn worker processes per group")
    add("--worker-class", choices=["gthread", "sync"], default="gthread")
    add("--threads", type=int, default=2, help="threads per gthread worker (default 2)")
    add(
        "--connections",
        choices=["pool", "persistent", "per-request"],
        default="pool",
        help="pool: psycopg's pool (OPTIONS['pool']) per worker process, as large as its "
        "threads; persistent: CONN_MAX_AGE (--conn-max-age) per thread; per-request: "
        "CONN_MAX_AGE=0, a new connection for every request (default: pool)",
    )
    add("--conn-max-age", type=int, default=60, help="seconds, for --connections persistent")
    add("--seat-clients", type=int, default=6)
    add("--lesson-clients", type=int, default=4)
    add("--session-readers", type=int, default=3)
    add("--slot-readers", type=int, default=3)
    add("--students-per-client", type=int, default=250)
    add("--teachers", type=int, default=50, help="teachers open for lessons")
    add("--popular-sessions", type=int, default=4)
    add("--capacity", type=int, default=400, help="seats of each popular session")
    add(
        "--sellout-capacity",
        type=int,
        default=10,
        help="seats of the first popular session, which sells out (refusals: session_full)",
    )
    add("--other-sessions", type=int, default=200, help="other sessions in the listings")
    add("--groups", default="1,2", help="gunicorn groups of each run, in order (default 1,2)")
    add("--no-raw", action="store_true", help="skip the raw-SQL ceiling")
    add(
        "--idempotency-keys",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send an Idempotency-Key with every POST (default: yes)",
    )
    add(
        "--dispatch-inline",
        action="store_true",
        help="run the notification dispatcher inside each booking request (the example "
        "project's immediate tasks backend) instead of leaving it to a worker",
    )
    add("--keep-db", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    args.group_counts = [int(part) for part in args.groups.split(",") if part.strip()]
    if args.worker_class == "sync":
        args.threads = 1
    args.clients = args.seat_clients + args.lesson_clients + args.session_readers
    args.clients += args.slot_readers
    if args.clients < 1:
        parser.error("no clients")
    return args


def connection_env(args: argparse.Namespace) -> dict[str, str]:
    """The example project's variables for the chosen connection handling."""
    if args.connections == "pool":
        size = str(args.threads)
        return {
            "DATABASE_POOL": "1",
            "DATABASE_POOL_MIN_SIZE": size,
            "DATABASE_POOL_MAX_SIZE": size,
            "DATABASE_POOL_TIMEOUT": "10",
        }
    if args.connections == "persistent":
        return {"DATABASE_CONN_MAX_AGE": str(args.conn_max_age)}
    return {"DATABASE_CONN_MAX_AGE": "0"}


def describe_connections(args: argparse.Namespace) -> str:
    if args.connections == "pool":
        return (
            f"psycopg pool, OPTIONS['pool'] = {{min_size: {args.threads}, max_size: "
            f"{args.threads}, timeout: 10}}, one pool per worker process (CONN_MAX_AGE=0)"
        )
    if args.connections == "persistent":
        return f"CONN_MAX_AGE={args.conn_max_age}: one kept connection per worker thread"
    return "CONN_MAX_AGE=0 without a pool: a new connection for every request"


# --- the database ---------------------------------------------------------------------------


@contextmanager
def fresh_database(keep: bool) -> Iterator[str]:
    import psycopg

    name = f"ld_{uuid.uuid4().hex[:10]}"
    maintenance = os.environ.get("PGDATABASE", "postgres")
    with psycopg.connect(**pg_params(maintenance), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(**pg_params(maintenance), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(name: str) -> None:
    """This process: the same settings as the servers, one plain connection."""
    sys.path[:0] = [str(ROOT / "src"), str(EXAMPLE), str(BENCH)]
    os.environ["DATABASE_URL"] = database_url(name)
    os.environ["DJANGO_SETTINGS_MODULE"] = "_load_settings"
    import django

    django.setup()


@dataclass
class World:
    """What the seeding made that the clients need."""

    course: Any
    star: Any  # the teacher of the group sessions
    teachers: list[int]  # the teachers open for lessons
    sessions: dict[str, list[Any]] = field(default_factory=dict)  # run -> popular sessions
    students: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # run -> cookies
    student_pks: dict[str, list[int]] = field(default_factory=dict)
    horizons: dict[str, datetime] = field(default_factory=dict)  # run -> first lesson day


def seed_base(args: argparse.Namespace) -> World:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from liveclass_booking import services
    from liveclass_booking.models import TeacherAvailability, TeacherBookingPolicy
    from lms.models import Course

    users = get_user_model()
    course = Course.objects.create(code="load", title="Load")
    teachers = users.objects.bulk_create(
        [users(username=f"t{i}", is_teacher=True, password="!") for i in range(args.teachers)]
    )
    star = users.objects.create(username="star", is_teacher=True, password="!")
    course.teachers.add(*teachers, star)
    TeacherAvailability.objects.bulk_create(
        TeacherAvailability(
            teacher=teacher,
            weekday=weekday,
            start_time=clock(0),
            end_time=clock(23, 59),
            timezone="UTC",
        )
        for teacher in teachers
        for weekday in range(7)
    )
    # Lessons are confirmed at once (no approval step), bookable an hour ahead.
    TeacherBookingPolicy.objects.bulk_create(
        TeacherBookingPolicy(
            teacher=teacher, course=None, requires_approval_for_one_on_one=False, min_notice_hours=1
        )
        for teacher in [*teachers, star]
    )
    # The other sessions of the listings: the star teacher's, hourly from tomorrow on.
    first = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    for i in range(args.other_sessions):
        start = first + timedelta(hours=i)
        services.create_session(
            teacher=star,
            course=course,
            title=f"Class {i}",
            start_at_utc=start,
            end_at_utc=start + timedelta(minutes=50),
            capacity=30,
        )
    return World(course=course, star=star, teachers=[t.pk for t in teachers])


def seed_run(args: argparse.Namespace, world: World, run: str, index: int) -> None:
    """A run's own students (logged in) and popular sessions, and its own fortnight of
    lessons, so that runs do not refuse each other's bookings."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from liveclass_booking import services
    from lms.models import Enrollment

    users = get_user_model()
    count = args.clients * args.students_per_client
    students = users.objects.bulk_create(
        [users(username=f"{run}-s{i}", password=f"!{secrets.token_hex(8)}") for i in range(count)],
        batch_size=1000,
    )
    Enrollment.objects.bulk_create(
        [Enrollment(student=s, course=world.course) for s in students],
        batch_size=1000,
    )
    store, cookies, rows = SessionStore(), [], []
    expires = timezone.now() + timedelta(days=1)
    for student in students:
        key, csrf = secrets.token_hex(16), secrets.token_hex(16)
        data = {
            "_auth_user_id": str(student.pk),
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": student.get_session_auth_hash(),
        }
        rows.append(Session(session_key=key, session_data=store.encode(data), expire_date=expires))
        cookies.append((key, csrf))
    Session.objects.bulk_create(rows, batch_size=1000)
    world.students[run] = cookies
    world.student_pks[run] = [s.pk for s in students]

    base = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=60 + index)
    sessions = []
    for i in range(args.popular_sessions):
        start = base + timedelta(hours=2 * i)
        capacity = args.sellout_capacity if i == 0 else args.capacity
        if run == "raw":
            capacity = 10000  # the ceiling is a rate: seats never run out
        sessions.append(
            services.create_session(
                teacher=world.star,
                course=world.course,
                title=f"Popular {run} {i}",
                start_at_utc=start,
                end_at_utc=start + timedelta(minutes=50),
                capacity=capacity,
            )
        )
    world.sessions[run] = sessions
    day = timezone.now().date() + timedelta(days=2 + HORIZON_DAYS * index)
    world.horizons[run] = datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- gunicorn -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Group:
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start_group(args: argparse.Namespace, db_name: str, log_dir: Path, n: int) -> Group:
    port = free_port()
    log = log_dir / f"gunicorn-{n}-{port}.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(BENCH)]),
        "DJANGO_SETTINGS_MODULE": "_load_settings",
        "DATABASE_URL": database_url(db_name),
        "DJANGO_DEBUG": "0",
        **connection_env(args),
    }
    if args.dispatch_inline:
        env["LOAD_DISPATCH_INLINE"] = "1"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--chdir",
        str(EXAMPLE),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        "--keep-alive",
        "10",
        "--timeout",
        "60",
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
    ]
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    return Group(port=port, process=process, log=log)


def wait_ready(group: Group, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if group.process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({group.process.returncode}): see {group.log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", group.port, timeout=5)
            conn.request("GET", f"{API}/")
            if conn.getresponse().status < 500:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn on port {group.port} did not answer in {timeout:.0f}s")


def stop_group(group: Group) -> None:
    if group.process.poll() is None:
        group.process.send_signal(signal.SIGTERM)
        try:
            group.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            group.process.kill()
            group.process.wait()


# --- CPU accounting (Linux /proc) -------------------------------------------------------------


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    parts = data[data.rindex(")") + 2 :].split()
    return int(parts[1]), (int(parts[11]) + int(parts[12])) / TICK


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds of the given processes and their children (gunicorn masters, workers)."""
    total, wanted = 0.0, set(roots)
    if not HAVE_PROC:
        return total
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat and (int(entry.name) in wanted or stat[0] in wanted):
                total += stat[1]
    return total


def backend_pids(conn: Any) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    ).fetchall()
    return [row[0] for row in rows]


class Meter:
    """CPU of the servers, of the database's backends of this database and of the whole
    machine between start() and stop(); the most backends seen at once, sampled twice a
    second."""

    def __init__(self, db_name: str, roots: list[int]) -> None:
        import psycopg

        self.roots = roots
        self.conn = psycopg.connect(**pg_params(db_name), autocommit=True)
        self.max_backends = 0
        self._stop = threading.Event()
        self._seen: dict[int, float] = {}

    def _backend_cpu(self) -> dict[int, float]:
        cpu = {}
        for pid in backend_pids(self.conn):
            stat = proc_stat(pid)
            if stat:
                cpu[pid] = stat[1]
        return cpu

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            with suppress(Exception):
                now = self._backend_cpu()
                self.max_backends = max(self.max_backends, len(now))
                self._seen.update(now)

    def start(self) -> None:
        self.app0 = tree_cpu(self.roots)
        self.machine0 = machine_busy()
        self.db0 = self._backend_cpu()
        self.client0 = time.process_time()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        db1 = self._backend_cpu()
        self._seen.update(db1)
        busy, total = machine_busy()
        # A backend that ended between samples is counted up to its last sample.
        db = sum(cpu - self.db0.get(pid, 0.0) for pid, cpu in self._seen.items())
        self.conn.close()
        return {
            "app_cpu": tree_cpu(self.roots) - self.app0,
            "db_cpu": db,
            "client_cpu": time.process_time() - self.client0,
            "machine_busy": busy - self.machine0[0],
            "machine_total": total - self.machine0[1],
            "max_backends": self.max_backends,
        }


# --- the clients ----------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, status/code)
    created: Counter[str] = field(default_factory=Counter)  # kind -> 201s
    replayed: int = 0
    errors: list[str] = field(default_factory=list)  # examples, and the servers' tracebacks

    def merge(self, other: Tally) -> None:
        for kind in KINDS:
            self.latencies[kind].extend(other.latencies[kind])
        self.outcomes.update(other.outcomes)
        self.created.update(other.created)
        self.replayed += other.replayed
        self.errors.extend(other.errors[:5])

    def count(self, test: Any) -> int:
        return sum(n for (_kind, what), n in self.outcomes.items() if test(what))

    @property
    def refusals(self) -> int:
        return self.count(lambda what: what.startswith("409 ") and what[4:] in REFUSALS)

    @property
    def server_errors(self) -> int:
        return self.count(lambda what: what.startswith("5"))

    @property
    def other_errors(self) -> int:
        """Transport errors and unexpected 4xx answers."""
        return self.count(
            lambda what: (
                not what.startswith(("2", "5"))
                and not (what.startswith("409 ") and what[4:] in REFUSALS)
            )
        )


class Client:
    """One closed-loop client on one kept-alive connection, acting for its students."""

    def __init__(self, port: int, students: list[tuple[str, str]], keys: bool) -> None:
        self.port, self.students, self.keys = port, students, keys
        self.conn: http.client.HTTPConnection | None = None
        self.turn = 0
        self.tally = Tally()

    def next_student(self) -> tuple[str, str]:
        self.turn += 1
        return self.students[self.turn % len(self.students)]

    def send(
        self, kind: str, method: str, path: str, body: Any = None, student: Any = None
    ) -> None:
        session_key, csrf = student or self.next_student()
        headers = {"Cookie": f"sessionid={session_key}; csrftoken={csrf}", "Accept": "*/*"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers |= {"Content-Type": "application/json", "X-CSRFToken": csrf}
            if self.keys:
                headers["Idempotency-Key"] = uuid.uuid4().hex
        retry = method == "GET" or "Idempotency-Key" in headers
        began = time.perf_counter()
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                # A kept-alive connection the server closed meanwhile: send again once (safe
                # for a GET, and for a POST with its Idempotency-Key).
                if attempt == 2 or not retry:
                    self.tally.outcomes[(kind, "transport error")] += 1
                    self.tally.errors.append(f"{kind}: {exc!r}")
                    return
        elapsed = (time.perf_counter() - began) * 1000
        self.tally.latencies[kind].append(elapsed)
        status = response.status
        if status == 201:
            if response.getheader("Idempotent-Replayed"):
                self.tally.replayed += 1
            else:
                self.tally.created[kind] += 1
            self.tally.outcomes[(kind, "201")] += 1
        elif status < 300:
            self.tally.outcomes[(kind, str(status))] += 1
        else:
            try:
                code = json.loads(data).get("code", "?")
            except ValueError:
                code = "?"
            self.tally.outcomes[(kind, f"{status} {code}")] += 1
            if not (status == 409 and code in REFUSALS):
                self.tally.errors.append(f"{kind}: {status} {data[:300]!r}")


def seat_booker(client: Client, world: World, run: str, deadline: float) -> None:
    sessions = [s.pk for s in world.sessions[run]]
    pairs = [(student, pk) for student in client.students for pk in sessions]
    random.shuffle(pairs)
    i = 0
    while time.monotonic() < deadline:
        student, pk = pairs[i % len(pairs)]
        i += 1
        client.send(
            "seat",
            "POST",
            f"{API}/bookings/",
            {"booking_type": "group_session", "session": pk},
            student=student,
        )


def lesson_requester(client: Client, world: World, run: str, deadline: float) -> None:
    rng = random.Random()
    horizon = world.horizons[run]
    while time.monotonic() < deadline:
        day = horizon + timedelta(days=rng.randrange(HORIZON_DAYS))
        start = day + LESSON * rng.randrange(47)  # 00:00 to 23:00, in the 00:00-23:59 window
        client.send(
            "lesson",
            "POST",
            f"{API}/bookings/",
            {
                "booking_type": "one_on_one",
                "teacher": rng.choice(world.teachers),
                "course": world.course.pk,
                "start_at_utc": start.isoformat().replace("+00:00", "Z"),
                "end_at_utc": (start + LESSON).isoformat().replace("+00:00", "Z"),
            },
        )


def session_reader(client: Client, world: World, run: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        client.send("sessions", "GET", f"{API}/sessions/?has_free_seats=true&start_after={now}")


def slot_reader(client: Client, world: World, run: str, deadline: float) -> None:
    rng = random.Random()
    horizon = world.horizons[run]
    while time.monotonic() < deadline:
        day = horizon + timedelta(days=rng.randrange(HORIZON_DAYS))
        start = day.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (day + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        client.send(
            "slots",
            "GET",
            f"{API}/slots/?teacher={rng.choice(world.teachers)}&course={world.course.pk}"
            f"&start={start}&end={end}&duration=30",
        )


def roles(args: argparse.Namespace) -> list[Any]:
    return (
        [seat_booker] * args.seat_clients
        + [lesson_requester] * args.lesson_clients
        + [session_reader] * args.session_readers
        + [slot_reader] * args.slot_readers
    )


def warm_up(args: argparse.Namespace, groups: list[Group], world: World, run: str) -> None:
    """Reads from many fresh connections at once, so that every worker has imported
    everything and opened its database connections before the clock starts."""
    students = world.students[run][:1]
    deadline = time.monotonic() + 2

    def read(port: int) -> None:
        client = Client(port, students, keys=False)
        while time.monotonic() < deadline:
            session_reader(client, world, run, time.monotonic() + 0.01)
            slot_reader(client, world, run, time.monotonic() + 0.01)

    threads = [
        threading.Thread(target=read, args=(group.port,))
        for group in groups
        for _ in range(args.workers * args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def drive(args: argparse.Namespace, groups: list[Group], world: World, run: str) -> Tally:
    students = world.students[run]
    per = args.students_per_client
    clients = [
        Client(
            groups[i % len(groups)].port, students[i * per : (i + 1) * per], args.idempotency_keys
        )
        for i in range(args.clients)
    ]
    deadline = time.monotonic() + args.duration
    threads = [
        threading.Thread(target=role, args=(client, world, run, deadline))
        for role, client in zip(roles(args), clients, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally = Tally()
    for client in clients:
        if client.conn is not None:
            client.conn.close()
        tally.merge(client.tally)
    return tally


# --- the checks -----------------------------------------------------------------------------


def check_database(world: World, run: str, tally: Tally | None) -> list[str]:
    """What is wrong in the database after a run: overbooked or miscounted sessions,
    overlapping lessons, bookings that no 201 answered (or the reverse)."""
    from django.db import connection

    from liveclass_booking.models import get_booking_model, get_session_model
    from liveclass_booking.services.seats import recount_seats

    problems = []
    report = recount_seats(dry_run=True)
    for drift in report.drifts:
        problems.append(
            f"session {drift.session_pk}: seats_taken {drift.recorded}, bookings hold {drift.held}"
        )
    bookings = get_booking_model()
    for session in get_session_model().objects.filter(pk__in=[s.pk for s in world.sessions[run]]):
        confirmed = bookings.objects.filter(session=session, status="confirmed").count()
        if not (session.seats_taken == confirmed <= session.capacity):
            problems.append(
                f"session {session.pk}: seats_taken {session.seats_taken}, confirmed "
                f"{confirmed}, capacity {session.capacity}"
            )
    table = bookings._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} a JOIN {table} b ON a.teacher_id = b.teacher_id "
            "AND a.id < b.id AND a.blocked_from_utc < b.blocked_until_utc "
            "AND b.blocked_from_utc < a.blocked_until_utc "
            "WHERE a.booking_type = 'one_on_one' AND b.booking_type = 'one_on_one' "
            "AND a.status IN ('pending', 'confirmed') AND b.status IN ('pending', 'confirmed')"
        )
        overlaps = cursor.fetchone()[0]
    if overlaps:
        problems.append(f"{overlaps} pairs of overlapping lessons")
    mine = bookings.objects.filter(student_user_id__in=world.student_pks[run])
    seats = mine.filter(session__in=world.sessions[run]).count()
    lessons = mine.filter(booking_type="one_on_one").count()
    if tally is not None:
        if seats != tally.created["seat"]:
            problems.append(f"{seats} seat bookings for {tally.created['seat']} answers 201")
        if lessons != tally.created["lesson"]:
            problems.append(f"{lessons} lessons for {tally.created['lesson']} answers 201")
    return problems


# --- the raw-SQL ceiling ----------------------------------------------------------------------


def raw_ceiling(
    args: argparse.Namespace, db_name: str, world: World
) -> tuple[Tally, float, int, dict[str, Any]]:
    """The same concurrency booking seats of the popular sessions with the two statements
    alone, each thread on its own psycopg connection. Stops at --duration or when every
    (student, session) pair is booked. Returns the tally, the seconds, the threads and the
    CPU used."""
    import psycopg

    raw_seats = RawSeats()
    sessions = world.sessions["raw"]
    pairs = [(pk, s) for pk in world.student_pks["raw"] for s in sessions]
    random.shuffle(pairs)
    threads = args.clients
    chunks = [pairs[i::threads] for i in range(threads)]
    tallies = [Tally() for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)
    deadline: list[float] = []

    def work(t: int) -> None:
        tally = tallies[t]
        with psycopg.connect(**pg_params(db_name)) as conn:
            barrier.wait()
            for student_pk, session in chunks[t]:
                if time.monotonic() >= deadline[0]:
                    break
                began = time.perf_counter()
                with conn.cursor() as cursor:
                    taken = raw_seats.book(cursor, session, student_pk, datetime.now(UTC))
                conn.commit()
                tally.latencies["seat"].append((time.perf_counter() - began) * 1000)
                if taken:
                    tally.created["seat"] += 1
                    tally.outcomes[("seat", "201")] += 1
                else:
                    tally.outcomes[("seat", "409 session_full")] += 1

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    meter = Meter(db_name, [])
    meter.start()
    deadline.append(time.monotonic() + args.duration)
    barrier.wait()
    began = time.monotonic()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - began
    usage = meter.stop()
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total, elapsed, threads, usage


# --- the report -----------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    tally: Tally
    seconds: float
    usage: dict[str, Any] | None
    problems: list[str]
    processes: str


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return "/".join(f"{percentile(values, q):.0f}" for q in (0.5, 0.95, 0.99))


def print_run(result: Result) -> None:
    tally, seconds = result.tally, result.seconds
    print(f"\n== {result.label}: {result.processes}, {seconds:.1f} s")
    print(f"   {'kind':<9} {'requests':>8} {'per s':>7} {'p50/p95/p99 ms':>16}  outcomes")
    for kind in KINDS:
        lat = tally.latencies[kind]
        outcomes = ", ".join(
            f"{what} x{n}" for (k, what), n in sorted(tally.outcomes.items()) if k == kind
        )
        if lat or outcomes:
            print(
                f"   {kind:<9} {len(lat):>8} {len(lat) / seconds:>7.0f} {ms(lat):>16}  {outcomes}"
            )
    booked = tally.created["seat"] + tally.created["lesson"]
    print(
        f"   bookings/s: {booked / seconds:.0f} (seats {tally.created['seat'] / seconds:.0f}, "
        f"lessons {tally.created['lesson'] / seconds:.0f}); idempotent replays: {tally.replayed}"
    )
    if result.usage and HAVE_PROC:
        u = result.usage
        requests = sum(len(v) for v in tally.latencies.values()) or 1
        app = (
            f"app {u['app_cpu']:.1f} s ({u['app_cpu'] * 1000 / requests:.1f} ms/request), "
            if u["app_cpu"]
            else ""
        )
        database = (
            "database n/a (a backend per request)"
            if u["db_cpu"] is None
            else f"database {u['db_cpu']:.1f} s ({u['db_cpu'] * 1000 / requests:.1f} ms/request)"
        )
        print(
            f"   CPU: {app}{database}, "
            f"clients {u['client_cpu']:.1f} s; machine busy "
            f"{u['machine_busy'] / seconds:.2f} of {u['machine_total'] / seconds:.0f} cores; "
            f"most database connections at once: {u['max_backends']}"
        )
    for error in result.tally.errors[:10]:
        print(f"   error: {error}")
    for problem in result.problems:
        print(f"   CHECK FAILED: {problem}")
    if not result.problems:
        print(
            "   checks: no session overbooked or miscounted, no overlapping lessons, "
            "every 201 is one booking"
        )


def per_request(result: Result, key: str) -> str:
    requests = sum(len(v) for v in result.tally.latencies.values())
    if not HAVE_PROC or not result.usage or not requests or not result.usage[key]:
        return "-"
    return f"{result.usage[key] * 1000 / requests:.1f}"


def print_summary(results: list[Result]) -> None:
    print("\n== side by side")
    width = 24
    print(f"   {'':<28}" + "".join(f"{r.label:>{width}}" for r in results))

    def row(name: str, cell: Any) -> None:
        print(f"   {name:<28}" + "".join(f"{cell(r):>{width}}" for r in results))

    row("processes", lambda r: r.processes.split(";")[0])
    row(
        "bookings/s (seats+lessons)",
        lambda r: f"{(r.tally.created['seat'] + r.tally.created['lesson']) / r.seconds:.0f}",
    )
    row("  seats/s", lambda r: f"{r.tally.created['seat'] / r.seconds:.0f}")
    row("  lessons/s", lambda r: f"{r.tally.created['lesson'] / r.seconds:.0f}")
    row(
        "requests/s",
        lambda r: f"{sum(len(v) for v in r.tally.latencies.values()) / r.seconds:.0f}",
    )
    for kind in KINDS:
        row(f"{kind} p50/p95/p99 ms", lambda r, k=kind: ms(r.tally.latencies[k]))
    row("refusals (409, expected)", lambda r: str(r.tally.refusals))
    row("5xx answers", lambda r: str(r.tally.server_errors))
    row("other errors", lambda r: str(r.tally.other_errors))
    row("app CPU ms/request", lambda r: per_request(r, "app_cpu"))
    row("database CPU ms/request", lambda r: per_request(r, "db_cpu"))
    row("database connections (most)", lambda r: str(r.usage["max_backends"]) if r.usage else "-")
    row("checks", lambda r: "FAILED" if r.problems else "ok")


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        raise SystemExit("gunicorn is missing: make install (dependency group bench)") from None
    if args.connections == "pool":
        try:
            import psycopg_pool  # noqa: F401
        except ImportError:
            raise SystemExit('the pool needs psycopg-pool: pip install "psycopg[pool]"') from None

    log_dir = Path(tempfile.mkdtemp(prefix="load-bench-"))
    results: list[Result] = []
    with fresh_database(args.keep_db) as db_name:
        setup_django(db_name)
        from django.core.management import call_command
        from django.db import connection

        began = time.monotonic()
        call_command("migrate", verbosity=0)
        world = seed_base(args)
        runs = [f"g{n}" for n in args.group_counts] + ([] if args.no_raw else ["raw"])
        for index, run in enumerate(runs):
            seed_run(args, world, run, index)
        connection.close()
        print(
            f"database {db_name} on {pg_params(db_name)['host']}:{pg_params(db_name)['port']}, "
            f"migrated and seeded in {time.monotonic() - began:.0f} s: "
            f"{args.teachers} teachers open for lessons, {args.popular_sessions} popular sessions "
            f"(capacity {args.sellout_capacity}, then {args.capacity}) among "
            f"{args.other_sessions} others, {args.clients * args.students_per_client} "
            "students per run"
        )
        print(
            f"clients: {args.clients} closed-loop ({args.seat_clients} seat bookers, "
            f"{args.lesson_clients} lesson requesters, {args.session_readers} session readers, "
            f"{args.slot_readers} slot readers), each with its own kept-alive connection, "
            f"authenticated by Django session cookies (SessionAuthentication, CSRF header on "
            f"POST); Idempotency-Key on POSTs: {'yes' if args.idempotency_keys else 'no'}"
        )
        print(
            f"server: gunicorn {args.worker_class}, {args.workers} workers"
            + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
            + " per group, DEBUG off; notifications: outbox rows in each booking's transaction, "
            + (
                "dispatched inside the request"
                if args.dispatch_inline
                else "dispatched by a worker (not run here)"
            )
        )
        print(f"connections: {describe_connections(args)}")

        for n, run in zip(args.group_counts, runs, strict=False):
            groups = [start_group(args, db_name, log_dir, i) for i in range(n)]
            try:
                for group in groups:
                    wait_ready(group)
                warm_up(args, groups, world, run)
                meter = Meter(db_name, [g.process.pid for g in groups])
                meter.start()
                started = time.monotonic()
                tally = drive(args, groups, world, run)
                seconds = time.monotonic() - started
                usage = meter.stop()
                if args.connections == "per-request":
                    usage["db_cpu"] = None  # backends that end between samples go uncounted
            finally:
                for group in groups:
                    stop_group(group)
            for group in groups:
                text = group.log.read_text(errors="replace") if group.log.exists() else ""
                if "Traceback" in text or "[ERROR]" in text:
                    tally.errors.append(f"server log {group.log}: {text[-2000:]}")
            label = "one group" if n == 1 else f"{n} groups"
            processes = f"{n * args.workers} workers" + (
                f" x {args.threads} threads" if args.worker_class == "gthread" else ""
            )
            result = Result(
                label, tally, seconds, usage, check_database(world, run, tally), processes
            )
            print_run(result)
            results.append(result)
            connection.close()

        if not args.no_raw:
            tally, seconds, threads, usage = raw_ceiling(args, db_name, world)
            result = Result(
                "raw SQL", tally, seconds, usage, check_database(world, "raw", tally),
                f"{threads} threads; psycopg, one connection each",
            )  # fmt: skip
            print_run(result)
            results.append(result)
        print_summary(results)
        connection.close()
    failed = any(
        r.problems or r.tally.errors or r.tally.server_errors or r.tally.other_errors
        for r in results
    )
    print("\nFAILED" if failed else "\nall checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
