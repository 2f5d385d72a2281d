"""The legacy import (``liveclass_booking_import_legacy``) and the seat recount
(``liveclass_booking_recount_seats``), through the commands, on the default and swapped models.

The adapter here reads test-local lists standing in for a host's legacy ``Booking`` and
``OneOnOneBooking`` tables; the command loads it by its dotted path as a host's would be.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from io import StringIO
from typing import Any, ClassVar

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Sum
from django.utils import timezone

from liveclass_booking import services
from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES
from liveclass_booking.legacy import (
    LegacyAdapter,
    LegacyGroupBooking,
    LegacyLesson,
    LegacySession,
)
from liveclass_booking.models import (
    BookingEvent,
    LegacyImport,
    NotificationEvent,
    SessionWaitlist,
    get_booking_model,
    get_session_model,
)
from tests.conftest import app_row_counts
from tests.test_migrations import ROOT, database_env  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

ADAPTER = "tests.test_legacy.ListAdapter"


class ListAdapter(LegacyAdapter):
    """Legacy rows from lists the tests fill in."""

    source = "test-phase1"
    rows: ClassVar[dict[str, list[Any]]] = {"sessions": [], "bookings": [], "lessons": []}

    def sessions(self) -> list[LegacySession]:
        return list(self.rows["sessions"])

    def group_bookings(self) -> list[LegacyGroupBooking]:
        return list(self.rows["bookings"])

    def lessons(self) -> list[LegacyLesson]:
        return list(self.rows["lessons"])


def run(command: str, *args: str) -> tuple[int, str]:
    """Run a command; return its exit status and output."""
    out = StringIO()
    try:
        call_command(command, *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def import_legacy(*args: str) -> tuple[int, str]:
    return run("liveclass_booking_import_legacy", "--adapter", ADAPTER, *args)


def snapshot() -> dict[str, Any]:
    """Every row that the import or the recount may write, as values."""
    return {
        "counts": app_row_counts(),
        "sessions": list(get_session_model().objects.order_by("pk").values()),
        "bookings": list(get_booking_model().objects.order_by("pk").values()),
        "imports": list(LegacyImport.objects.order_by("pk").values()),
        "events": list(BookingEvent.objects.order_by("pk").values()),
        "waitlist": list(SessionWaitlist.objects.order_by("pk").values()),
    }


def held(session: Any) -> int:
    booked = (
        get_booking_model()
        .objects.filter(session=session, status__in=ACTIVE_BOOKING_STATUSES)
        .aggregate(total=Sum("seats_reserved"))["total"]
        or 0
    )
    return booked + SessionWaitlist.objects.filter(session=session, status="offered").count()


def imported(kind: str, key: str) -> Any:
    row = LegacyImport.objects.get(source="test-phase1", kind=kind, legacy_key=key)
    model = get_session_model() if kind == "session" else get_booking_model()
    return model.objects.get(pk=row.object_id)


@pytest.fixture
def people(teacher: Any, student: Any, other_student: Any) -> dict[str, Any]:
    users = get_user_model().objects
    return {
        "teacher": teacher,
        "a": student,
        "b": other_student,
        "c": users.create_user(username="carol", password="pw"),
        "d": users.create_user(username="dave", password="pw"),
    }


@pytest.fixture
def legacy(people: dict[str, Any], course: Any) -> dict[str, list[Any]]:
    """A small legacy database: three sessions (future, past, cancelled) with bookings, and
    one-on-one lessons, with one row of each kind of trouble."""
    teacher, a, b, c, d = (people[k] for k in ("teacher", "a", "b", "c", "d"))
    soon = (timezone.now() + timedelta(days=5)).replace(microsecond=0)
    past = soon - timedelta(days=30)
    hour = timedelta(hours=1)

    def session(key: str, start: datetime, capacity: int, **fields: Any) -> LegacySession:
        values: dict[str, Any] = {
            "teacher": teacher.pk,
            "course": course,
            "title": f"Legacy class {key}",
            "start_at_utc": start,
            "end_at_utc": start + hour,
            "capacity": capacity,
            "meeting_link": "https://meet.example.com/x",
            "meeting_passcode": "secret",
            **fields,
        }
        return LegacySession(key=key, **values)

    def booking(key: str, session_key: str, student: Any, status: str, **f: Any) -> Any:
        return LegacyGroupBooking(
            key=key, session_key=session_key, student=student, status=status, **f
        )

    def lesson(key: str, start: datetime, status: str, **fields: Any) -> LegacyLesson:
        values: dict[str, Any] = {
            "teacher": teacher,
            "student": a,
            "course": course.pk,
            "start_at_utc": start,
            "end_at_utc": start + hour,
            "status": status,
            **fields,
        }
        return LegacyLesson(key=key, **values)

    rows = {
        "sessions": [
            session("s1", soon, 3, created_at=past),
            session("s2", past, 3, status="completed"),
            session("s3", soon + 2 * hour, 5, status="cancelled"),
            session("naive", soon.replace(tzinfo=None), 3),
            session("ghost-teacher", soon, 3, teacher=-1),
            session("tiny", soon, -2),
        ],
        "bookings": [
            booking("b1", "s1", a, "confirmed", created_at=past),
            booking("b2", "s1", b, "pending", student_note="please"),
            booking("b3", "s1", a, "confirmed"),  # a again, in the same session
            booking("b4", "s1", c, "confirmed"),
            booking("b5", "s1", d, "confirmed"),  # the fourth seat of three
            booking("b6", "s1", d, "cancelled", cancel_reason="ill"),
            booking("b7", "s1", d, "booked"),
            booking("b8", "s2", a, "attended"),
            booking("b9", "s2", b, "no_show"),
            booking("b10", "s2", c, "confirmed", seats_reserved=2),
            booking("b11", "s3", a, "confirmed"),
            booking("b12", "s3", b, "cancelled"),
            booking("b13", "nowhere", a, "confirmed"),
            booking("b14", "naive", a, "confirmed"),
            booking("b15", "s2", -1, "attended"),
        ],
        "lessons": [
            lesson("l1", soon + 6 * hour, "confirmed"),
            lesson("l2", soon + 6 * hour + timedelta(minutes=30), "pending", student=b),
            lesson("l3", soon + 6 * hour, "cancelled", student=b),
            lesson("l4", (soon + 9 * hour).replace(tzinfo=None), "confirmed"),
            lesson("l5", past, "attended", student=-1),
            lesson("l6", past + 3 * hour, "pending"),
            lesson("l7", past + 5 * hour, "confirmed", student=teacher),
        ],
    }
    ListAdapter.rows = rows
    yield rows
    ListAdapter.rows = {"sessions": [], "bookings": [], "lessons": []}


EXPECTED_SKIPS = {
    ("session", "naive", "naive_datetime"),
    ("session", "ghost-teacher", "unknown_teacher"),
    ("session", "tiny", "invalid"),
    ("group_booking", "b3", "already_booked"),
    ("group_booking", "b5", "capacity_exceeded"),
    ("group_booking", "b7", "unknown_status"),
    ("group_booking", "b11", "session_cancelled"),
    ("group_booking", "b13", "unknown_session"),
    ("group_booking", "b14", "unknown_session"),
    ("group_booking", "b15", "unknown_student"),
    ("lesson", "l2", "slot_unavailable"),
    ("lesson", "l4", "naive_datetime"),
    ("lesson", "l5", "unknown_student"),
    ("lesson", "l7", "invalid"),
}


def skips(output: str) -> set[tuple[str, str, str]]:
    found = set()
    for line in output.splitlines():
        if line.startswith("  "):
            kind, rest = line.strip().split(" ", 1)
            key, code, _reason = rest.split(": ", 2)
            found.add((kind, key, code))
    return found


# Import --------------------------------------------------------------------------------------


def test_import_maps_legacy_rows_to_sessions_and_bookings(
    legacy: dict[str, list[Any]], people: dict[str, Any], course: Any
) -> None:
    status, output = import_legacy()

    assert status == 1, output  # rows were skipped
    assert "Imported: 3 session(s), 8 group booking(s), 3 lesson(s)." in output
    assert "Already imported: 0 session(s), 0 group booking(s), 0 lesson(s)." in output
    assert "Skipped: 14 row(s)." in output
    assert skips(output) == EXPECTED_SKIPS
    assert "the session has 3 seat(s) and 3 are taken; this booking needs 1" in output

    s1, s2, s3 = (imported("session", key) for key in ("s1", "s2", "s3"))
    assert (s1.capacity, s1.total_seats, s1.status) == (3, 3, "scheduled")
    assert s1.meeting_password == "secret"
    assert s1.scheduled_start == legacy["sessions"][0].start_at_utc
    assert s1.timezone_snapshot == "UTC"  # the teacher's zone, as the resolver gives it
    assert s1.created_at == legacy["sessions"][0].created_at  # the legacy creation time
    assert (s2.status, s3.status) == ("completed", "cancelled")

    # seats_taken is what the bookings hold: b1, b2 (pending) and b4 in s1; b10's two in s2.
    assert (s1.seats_taken, s2.seats_taken, s3.seats_taken) == (3, 2, 0)
    assert [s.seats_taken for s in (s1, s2, s3)] == [held(s) for s in (s1, s2, s3)]
    assert "Session s1: seats_taken 3 after its bookings." in output
    assert "Session s3: seats_taken 0 after its bookings." in output  # b12, cancelled

    b1, b2 = imported("group_booking", "b1"), imported("group_booking", "b2")
    assert (b1.booking_type, b1.session_id, b1.student_user_id) == (
        "group_session",
        s1.pk,
        people["a"].pk,
    )
    assert (b1.teacher_id, b1.course_id, b1.start_at_utc) == (
        people["teacher"].pk,
        course.pk,
        s1.start_at_utc,
    )
    assert b1.created_at == legacy["bookings"][0].created_at
    assert (b2.status, b2.student_note) == ("pending", "please")
    assert b2.approval_expires_at is not None  # waits for a decision like any request
    assert imported("group_booking", "b6").cancel_reason == "ill"

    l1 = imported("lesson", "l1")
    assert (l1.booking_type, l1.session_id, l1.status) == ("one_on_one", None, "confirmed")
    assert (l1.blocked_from_utc, l1.blocked_until_utc) == (l1.start_at_utc, l1.end_at_utc)
    past_request = imported("lesson", "l6")
    assert past_request.current_status == "expired"  # undecided and long past

    # Every imported booking has one audit entry; nobody is notified of history.
    events = BookingEvent.objects.filter(reason="imported")
    assert events.count() == 11
    assert events.get(booking=b1).data == {"source": "test-phase1", "legacy_key": "b1"}
    assert not NotificationEvent.objects.exists()


def test_importing_again_changes_nothing(legacy: dict[str, list[Any]]) -> None:
    import_legacy()
    before = snapshot()

    status, output = import_legacy()

    assert status == 1
    assert "Imported: 0 session(s), 0 group booking(s), 0 lesson(s)." in output
    assert "Already imported: 3 session(s), 8 group booking(s), 3 lesson(s)." in output
    assert skips(output) == EXPECTED_SKIPS  # the same rows, for the same reasons
    assert "after its bookings" not in output  # no session was touched
    assert snapshot() == before


def test_dry_run_reports_and_writes_nothing(legacy: dict[str, list[Any]]) -> None:
    before = snapshot()

    status, output = import_legacy("--dry-run")

    assert status == 1
    assert "dry run: nothing was written" in output
    assert "Would import: 3 session(s), 8 group booking(s), 3 lesson(s)." in output
    assert skips(output) == EXPECTED_SKIPS
    assert snapshot() == before
    # The real run then does what the dry run said.
    assert "Imported: 3 session(s), 8 group booking(s), 3 lesson(s)." in import_legacy()[1]


def test_rows_added_later_join_sessions_imported_earlier(
    legacy: dict[str, list[Any]], people: dict[str, Any]
) -> None:
    import_legacy()
    s1, s2 = imported("session", "s1"), imported("session", "s2")
    get_session_model().objects.filter(pk=s2.pk).update(capacity=4)  # a teacher's change
    legacy["sessions"] = []  # the legacy sessions table was cleaned; its bookings remain
    legacy["bookings"] = [
        *legacy["bookings"],
        LegacyGroupBooking(key="b20", session_key="s2", student=people["d"], status="confirmed"),
        LegacyGroupBooking(key="b21", session_key="s2", student=people["b"], status="confirmed"),
        LegacyGroupBooking(key="b22", session_key="s1", student=people["d"], status="confirmed"),
        LegacyGroupBooking(key="b23", session_key="s2", student=people["a"], status="confirmed"),
    ]
    legacy["lessons"] = []

    status, output = import_legacy()

    assert status == 1
    assert "Imported: 0 session(s), 2 group booking(s), 0 lesson(s)." in output
    assert "Already imported: 0 session(s), 8 group booking(s), 0 lesson(s)." in output
    assert {
        ("group_booking", "b22", "capacity_exceeded"),
        ("group_booking", "b23", "capacity_exceeded"),
    } <= skips(output)
    s1.refresh_from_db()
    s2.refresh_from_db()
    assert (s1.seats_taken, s2.seats_taken) == (3, 4)
    assert imported("group_booking", "b21").session_id == s2.pk


def test_a_clean_import_exits_zero(people: dict[str, Any], course: Any) -> None:
    start = timezone.now() + timedelta(days=2)
    ListAdapter.rows = {
        "sessions": [
            LegacySession(
                key="1",
                teacher=people["teacher"],
                course=course,
                title="Phase 1 class",
                start_at_utc=start,
                end_at_utc=start + timedelta(hours=1),
                capacity=2,
            )
        ],
        "bookings": [
            LegacyGroupBooking(key="1", session_key="1", student=people["a"], status="confirmed")
        ],
        "lessons": [],
    }
    try:
        status, output = import_legacy()
    finally:
        ListAdapter.rows = {"sessions": [], "bookings": [], "lessons": []}
    assert status == 0, output
    assert "Skipped: 0 row(s)." in output
    session = imported("session", "1")
    assert session.seats_taken == 1
    # The imported session takes bookings through the services like any other.
    services.book_group_session(student=people["b"], session=session)
    session.refresh_from_db()
    assert session.seats_taken == 2


def test_adapter_path_must_name_an_adapter() -> None:
    status, output = run("liveclass_booking_import_legacy", "--adapter", "tests.nowhere.Adapter")
    assert status == 1
    assert "Cannot import the adapter" in output
    status, output = run("liveclass_booking_import_legacy", "--adapter", "tests.test_legacy.run")
    assert status == 1
    assert "is not a subclass of liveclass_booking.legacy.LegacyAdapter" in output


def test_imports_show_in_the_admin(legacy: dict[str, list[Any]], admin_client: Any) -> None:
    import_legacy()
    response = admin_client.get("/admin/liveclass_booking/legacyimport/", {"q": "b1"})
    assert response.status_code == 200
    assert "test-phase1" in response.content.decode()


# Recount -------------------------------------------------------------------------------------


def recount(*args: str) -> tuple[int, str]:
    return run("liveclass_booking_recount_seats", *args)


def test_recount_finds_and_repairs_drift(
    make_session: Any, people: dict[str, Any], teacher: Any
) -> None:
    steady = make_session(title="Steady")
    services.book_group_session(student=people["a"], session=steady)
    drifted = make_session(title="Drifted")
    services.book_group_session(student=people["a"], session=drifted, seats=2)
    services.book_group_session(student=people["b"], session=drifted)
    model = get_session_model()
    model.objects.filter(pk=drifted.pk).update(seats_taken=7)  # a stray UPDATE
    before = snapshot()

    status, output = recount("--dry-run")

    assert status == 0, output
    assert f"Session {drifted.pk} 'Drifted'" in output
    assert "seats_taken 7 → 3 (not changed: dry run)." in output
    assert "Steady" not in output
    assert "2 session(s) checked, 1 with drift, 0 repaired. Dry run" in output
    assert snapshot() == before

    status, output = recount()

    assert status == 0, output
    assert "seats_taken 7 → 3: repaired." in output
    assert "2 session(s) checked, 1 with drift, 1 repaired." in output
    assert model.objects.get(pk=drifted.pk).seats_taken == 3
    assert model.objects.get(pk=steady.pk).seats_taken == 1
    assert "0 with drift, 0 repaired." in recount()[1]


def test_recount_raises_a_count_that_is_too_low(make_session: Any, people: dict[str, Any]) -> None:
    session = make_session(capacity=2)
    services.book_group_session(student=people["a"], session=session)
    get_session_model().objects.filter(pk=session.pk).update(seats_taken=0)

    status, output = recount()

    assert status == 0
    assert "seats_taken 0 → 1: repaired." in output
    session.refresh_from_db()
    assert session.seats_taken == 1


def test_seats_a_repair_frees_go_to_the_waitlist(make_session: Any, people: dict[str, Any]) -> None:
    session = make_session(capacity=1)
    booking = services.book_group_session(student=people["a"], session=session)
    entry = services.join_waitlist(student=people["b"], session=session)
    # The booking was cancelled behind the services' back: its seat still counts.
    get_booking_model().objects.filter(pk=booking.pk).update(status="cancelled")

    status, output = recount()

    assert status == 0
    assert "seats_taken 1 → 0: repaired; 1 seat(s) offered to the waitlist." in output
    entry.refresh_from_db()
    session.refresh_from_db()
    assert entry.status == "offered"
    assert session.seats_taken == 1 == held(session)  # the offer holds the seat


def test_recount_counts_open_offers(make_session: Any, people: dict[str, Any]) -> None:
    session = make_session(capacity=1)
    booking = services.book_group_session(student=people["a"], session=session)
    services.join_waitlist(student=people["b"], session=session)
    services.cancel_booking(booking, actor=people["a"])  # b is offered the seat
    session.refresh_from_db()
    assert session.seats_taken == 1

    status, output = recount()

    assert status == 0
    assert "1 session(s) checked, 0 with drift, 0 repaired." in output


def test_recount_reports_what_it_cannot_repair(
    make_session: Any, make_booking: Any, people: dict[str, Any]
) -> None:
    session = make_session(capacity=1)
    make_booking(session=session, student_user=people["a"])
    make_booking(session=session, student_user=people["b"])  # rows written around the services
    before = snapshot()

    status, output = recount()

    assert status == 1
    assert "seats_taken 0 → 2: not repaired" in output
    assert "hold more than its 1 seats" in output
    assert "1 session(s) hold more seats than their capacity" in output
    assert snapshot() == before


# The example project ---------------------------------------------------------------------------


@pytest.mark.slow
def test_example_project_imports_its_phase1_tables(database_env: dict[str, str]) -> None:  # noqa: F811
    example = ROOT / "example_project"
    env = {**database_env, "DJANGO_SETTINGS_MODULE": "config.settings"}

    def manage(*args: str) -> tuple[int, str]:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=example,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return result.returncode, result.stdout + result.stderr

    for step in (["migrate", "--noinput"], ["load_demo_data"], ["load_legacy_demo"]):
        status, output = manage(*step)
        assert status == 0, output
    command = ["liveclass_booking_import_legacy", "--adapter", "lms.legacy.Phase1Adapter"]

    status, dry = manage(*command, "--dry-run")
    assert status == 1, dry
    assert "Would import: 7 session(s), 16 group booking(s), 9 lesson(s)." in dry

    status, first = manage(*command)
    assert status == 1, first
    assert "Imported: 7 session(s), 16 group booking(s), 9 lesson(s)." in first
    assert "group_booking 17: capacity_exceeded" in first
    assert "lesson 10: unknown_status: 'on_hold'" in first

    status, again = manage(*command)
    assert "Already imported: 7 session(s), 16 group booking(s), 9 lesson(s)." in again

    status, counted = manage("liveclass_booking_recount_seats")
    assert status == 0, counted
    assert "0 with drift, 0 repaired." in counted
