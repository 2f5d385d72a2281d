"""The row locks of the booking services, each caught when it is gone (docs/concurrency.md):

- one lesson's decisions (approve, decline, cancel, reschedule, meeting changes) racing each
  other: the booking row lock (a lesson has no session row to serialise them);
- a teacher's time where no database constraint stands behind the teacher's row lock:
  PostgreSQL with its overlap constraint dropped for the test, and MariaDB/MySQL, which has
  none;
- one student's limits across teachers and sessions: the student's row lock;
- a series' row, and a session's row while students book it.

Threads with their own connections, released together, many rounds each, on committed data
(signals and outbox wake-ups run after each commit). Where the window is too narrow to hit
by chance, one racer is held inside its transaction (:class:`Hold`) while the others go.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from itertools import combinations, pairwise
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from liveclass_booking import services, signals
from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES, NotificationKind
from liveclass_booking.choices import BookingStatus as S
from liveclass_booking.models import (
    BookingEvent,
    BookingSeries,
    NotificationEvent,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
)
from liveclass_booking.recurrence import Recurrence
from liveclass_booking.services import bookings as booking_services
from liveclass_booking.services import series as series_services
from liveclass_booking.services import sessions as session_services
from liveclass_booking.services import waitlist as waitlist_services
from liveclass_booking.services.transitions import NOTICE_FOR_STATUS, TRANSITIONS
from tests.concurrency import outcomes, race
from tests.conftest import grant_teaching

pytestmark = [pytest.mark.concurrent, pytest.mark.django_db(transaction=True)]

#: Rounds per race: each round is one fresh lesson fought over by its racers. Without the
#: lock a round goes wrong most of the time; this many make a miss all but impossible.
ROUNDS = 8

#: The signal each status change sends after its commit.
SIGNALS = {
    "booking_requested": signals.booking_requested,
    "booking_confirmed": signals.booking_confirmed,
    "booking_declined": signals.booking_declined,
    "booking_cancelled": signals.booking_cancelled,
    "booking_rescheduled": signals.booking_rescheduled,
}
SIGNAL_OF = {
    S.PENDING: "booking_requested",
    S.CONFIRMED: "booking_confirmed",
    S.DECLINED: "booking_declined",
    S.CANCELLED: "booking_cancelled",
    S.RESCHEDULED: "booking_rescheduled",
}


def monday_in(weeks: int) -> datetime:
    """Midnight UTC of a Monday ``weeks`` weeks ahead (clear of any notice period)."""
    day = (timezone.now() + timedelta(weeks=weeks)).date()
    day -= timedelta(days=day.weekday())
    return datetime.combine(day, time(0), tzinfo=UTC)


def slot(round_: int, hour: int = 0) -> datetime:
    """A start of its own for each round: a lesson per day, from a Monday two weeks ahead."""
    return monday_in(2) + timedelta(days=round_, hours=8 + hour)


@pytest.fixture
def open_all_week(teacher: Any) -> None:
    for weekday in range(7):
        TeacherAvailability.objects.create(
            teacher=teacher, weekday=weekday, start_time=time(0), end_time=time(23, 59),
            timezone="UTC",
        )  # fmt: skip


@pytest.fixture
def heard() -> Iterator[list[tuple[str, Any, str, str]]]:
    """The booking signals sent (after commit, in whichever thread committed): name, booking
    pk, from and to status."""
    sent: list[tuple[str, Any, str, str]] = []
    guard = threading.Lock()
    receivers = []
    for name, signal in SIGNALS.items():

        def receive(sender: Any, name: str = name, **kwargs: Any) -> None:
            booking = kwargs["booking"]
            with guard:
                sent.append((name, booking.pk, kwargs["from_status"], kwargs["to_status"]))

        signal.connect(receive, weak=False)
        receivers.append((signal, receive))
    yield sent
    for signal, receive in receivers:
        signal.disconnect(receive)


@pytest.fixture
def without_overlap_constraint(transactional_db: Any) -> Iterator[None]:
    """On PostgreSQL, drop the exclusion constraint that refuses overlapping lessons of one
    teacher for this test, so that only the teacher's row lock keeps them apart (as on
    MariaDB/MySQL, which has no such constraint), and put it back afterwards."""
    if connection.vendor != "postgresql":
        yield
        return
    model = get_booking_model()
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'x'",
            [model._meta.db_table],
        )
        constraints = cursor.fetchall()
        assert constraints, "the overlap constraint of migration 0003 is missing"
        for name, _ in constraints:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
    try:
        yield
    finally:
        # A failed test may have left overlapping lessons, which the constraint cannot be
        # added over: they end here (the database is emptied after the test anyway).
        model.objects.filter(booking_type="one_on_one", status__in=ACTIVE_BOOKING_STATUSES).update(
            status=S.CANCELLED
        )
        with connection.cursor() as cursor:
            for name, definition in constraints:
                cursor.execute(
                    f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} "
                    f"{definition}"
                )


def students(user_model: Any, count: int, prefix: str) -> list[Any]:
    return [
        user_model.objects.create_user(username=f"{prefix}{i}", password="x") for i in range(count)
    ]


def lesson(student: Any, teacher: Any, course: Any, start: datetime, minutes: int = 60) -> Any:
    return services.request_one_on_one(
        student=student,
        teacher=teacher,
        course=course,
        start_at_utc=start,
        end_at_utc=start + timedelta(minutes=minutes),
    )


def history(booking: Any) -> list[tuple[str, str]]:
    return list(
        BookingEvent.objects.filter(booking=booking)
        .order_by("pk")
        .values_list("from_status", "to_status")
    )


def notices(booking: Any) -> list[str]:
    return list(
        NotificationEvent.objects.filter(booking=booking)
        .order_by("pk")
        .values_list("kind", flat=True)
    )


def assert_one_history(booking: Any, applied: int, heard: list[tuple[str, Any, str, str]]) -> Any:
    """The booking went through ``applied`` status changes after its creation, one after the
    other: each audit entry starts where the one before ended, each change is allowed, the
    last is the booking's status, its calendar SEQUENCE counts them, and each was signalled
    once after its commit."""
    booking.refresh_from_db()
    trail = history(booking)
    assert len(trail) == 1 + applied, trail
    assert trail[0][0] == ""
    for (_, before), (after_from, after_to) in pairwise(trail):
        assert after_from == before, f"a change from {after_from} recorded after {before}: {trail}"
        assert after_to in TRANSITIONS.get(before, ()), trail
    assert trail[-1][1] == booking.status, (trail, booking.status)
    assert booking.calendar_sequence == applied, (booking.calendar_sequence, trail)
    mine = Counter((name, old, new) for name, pk, old, new in heard if pk == booking.pk)
    assert mine == Counter((SIGNAL_OF[new], old, new) for old, new in trail), (mine, trail)
    return booking


# One lesson, two decisions: the booking row lock ------------------------------------------


def race_decisions(
    rounds: int, make: Callable[[int], Any], actions: list[Callable[[Any], Any]]
) -> list[tuple[Any, list[tuple[str, Any]]]]:
    """For each round, a fresh lesson (``make(round)``) and ``actions`` run on it at once,
    each thread with its own copy of the row, as two requests would have."""
    played = []
    for round_ in range(rounds):
        booking = make(round_)
        copies = [type(booking).objects.get(pk=booking.pk) for _ in actions]
        results = race(len(actions), lambda i, c=copies: actions[i](c[i]))
        played.append((booking, results))
    return played


@pytest.fixture
def pending_lessons(
    teacher: Any, course: Any, student: Any, open_all_week: None, settings: Any
) -> Any:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=True)
    # One student asks for every round's lesson: more rounds than the default limit allows.
    settings.LIVECLASS_BOOKING_LIMITS = {"pending_requests_per_teacher": None}

    def make(round_: int) -> Any:
        booking = lesson(student, teacher, course, slot(round_))
        assert booking.status == S.PENDING
        return booking

    return make


@pytest.fixture
def confirmed_lessons(teacher: Any, course: Any, student: Any, open_all_week: None) -> Any:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)

    def make(round_: int) -> Any:
        booking = lesson(student, teacher, course, slot(round_))
        assert booking.status == S.CONFIRMED
        return booking

    return make


def test_lesson_approve_racing_decline_one_wins(
    pending_lessons: Any, teacher: Any, heard: list[Any]
) -> None:
    played = race_decisions(
        ROUNDS,
        pending_lessons,
        [
            lambda b: services.approve_booking(b, actor=teacher),
            lambda b: services.decline_booking(b, actor=teacher, reason="busy"),
        ],
    )
    for booking, results in played:
        assert outcomes(results) == {"ok": 1, "invalid_transition": 1}, results
        booking = assert_one_history(booking, 1, heard)
        winner = S.CONFIRMED if results[0][0] == "ok" else S.DECLINED
        assert booking.status == winner
        kind = NOTICE_FOR_STATUS[winner][0]
        assert notices(booking) == [NotificationKind.BOOKING_REQUESTED, kind]


def test_lesson_approve_racing_cancel_keeps_one_history(
    pending_lessons: Any, teacher: Any, student: Any, heard: list[Any]
) -> None:
    played = race_decisions(
        ROUNDS,
        pending_lessons,
        [
            lambda b: services.approve_booking(b, actor=teacher),
            lambda b: services.cancel_booking(b, actor=student, reason="changed my mind"),
        ],
    )
    for booking, results in played:
        # Cancel wins either way: of the pending request, or of the lesson just approved.
        assert results[1][0] == "ok", results
        assert results[0][0] in ("ok", "invalid_transition"), results
        applied = outcomes(results)["ok"]
        booking = assert_one_history(booking, applied, heard)
        assert booking.status == S.CANCELLED
        expected = [NotificationKind.BOOKING_REQUESTED]
        if applied == 2:
            expected.append(NotificationKind.BOOKING_CONFIRMED)
        assert notices(booking) == [*expected, NotificationKind.BOOKING_CANCELLED]


def test_lesson_decline_racing_cancel_one_wins(
    pending_lessons: Any, teacher: Any, student: Any, heard: list[Any]
) -> None:
    played = race_decisions(
        ROUNDS,
        pending_lessons,
        [
            lambda b: services.decline_booking(b, actor=teacher),
            lambda b: services.cancel_booking(b, actor=student),
        ],
    )
    for booking, results in played:
        assert outcomes(results) == {"ok": 1, "invalid_transition": 1}, results
        booking = assert_one_history(booking, 1, heard)
        assert booking.status == (S.DECLINED if results[0][0] == "ok" else S.CANCELLED)
        assert len(notices(booking)) == 2


def assert_moved_once(
    booking: Any, results: list[tuple[str, Any]], heard: list[Any], starts: list[datetime]
) -> None:
    """The lesson was moved by the one reschedule that won, or not at all: one new lesson at
    the winner's time, pointing back at it, told once."""
    model = get_booking_model()
    moved = [i for i, (code, _) in enumerate(results) if code == "ok" and i < len(starts)]
    replacements = list(model.objects.filter(rescheduled_from=booking))
    if not moved:
        assert replacements == []
        return
    (winner,) = moved
    (new,) = replacements
    assert new.pk == results[winner][1].pk
    assert (new.start_at_utc, new.status) == (starts[winner], S.CONFIRMED)
    assert history(new) == [("", S.CONFIRMED)]
    assert notices(new) == [NotificationKind.BOOKING_RESCHEDULED]
    assert [(name, old, to) for name, pk, old, to in heard if pk == new.pk] == [
        ("booking_confirmed", "", S.CONFIRMED)
    ]
    assert notices(booking) == [NotificationKind.BOOKING_CONFIRMED]  # its request, no more


def test_two_reschedules_of_one_lesson_one_wins(
    confirmed_lessons: Any, teacher: Any, heard: list[Any]
) -> None:
    model = get_booking_model()
    starts_of: dict[Any, list[datetime]] = {}

    def make(round_: int) -> Any:
        booking = confirmed_lessons(round_)
        starts_of[booking.pk] = [slot(round_, 3), slot(round_, 6)]
        return booking

    def move(i: int) -> Callable[[Any], Any]:
        def run(b: Any) -> Any:
            start = starts_of[b.pk][i]
            return services.reschedule_booking(
                b, actor=teacher, start_at_utc=start, end_at_utc=start + timedelta(hours=1)
            )

        return run

    played = race_decisions(ROUNDS, make, [move(0), move(1)])
    for booking, results in played:
        assert outcomes(results) == {"ok": 1, "invalid_transition": 1}, results
        booking = assert_one_history(booking, 1, heard)
        assert booking.status == S.RESCHEDULED
        assert_moved_once(booking, results, heard, starts_of[booking.pk])
        assert (
            model.objects.filter(
                teacher=teacher,
                status__in=ACTIVE_BOOKING_STATUSES,
                start_at_utc__in=starts_of[booking.pk],
            ).count()
            == 1
        )


def test_lesson_reschedule_racing_cancel_one_wins(
    confirmed_lessons: Any, teacher: Any, student: Any, heard: list[Any]
) -> None:
    starts_of: dict[Any, list[datetime]] = {}

    def make(round_: int) -> Any:
        booking = confirmed_lessons(round_)
        starts_of[booking.pk] = [slot(round_, 3)]
        return booking

    def move(b: Any) -> Any:
        start = starts_of[b.pk][0]
        return services.reschedule_booking(
            b, actor=teacher, start_at_utc=start, end_at_utc=start + timedelta(hours=1)
        )

    played = race_decisions(
        ROUNDS, make, [move, lambda b: services.cancel_booking(b, actor=student)]
    )
    for booking, results in played:
        assert outcomes(results) == {"ok": 1, "invalid_transition": 1}, results
        booking = assert_one_history(booking, 1, heard)
        assert booking.status == (S.RESCHEDULED if results[0][0] == "ok" else S.CANCELLED)
        assert_moved_once(booking, results, heard, starts_of[booking.pk])
        if booking.status == S.CANCELLED:
            assert notices(booking) == [
                NotificationKind.BOOKING_CONFIRMED,
                NotificationKind.BOOKING_CANCELLED,
            ]


# One teacher's time: the teacher's row lock, with no constraint behind it -----------------


def active_lessons(teacher: Any) -> list[Any]:
    return list(
        get_booking_model().objects.filter(
            teacher=teacher, booking_type="one_on_one", status__in=ACTIVE_BOOKING_STATUSES
        )
    )


def assert_no_overlap(teacher: Any) -> list[Any]:
    lessons = active_lessons(teacher)
    for a, b in combinations(lessons, 2):
        clash = (
            a.blocked_from_utc < b.blocked_until_utc and b.blocked_from_utc < a.blocked_until_utc
        )
        assert not clash, (
            f"#{a.pk} {a.blocked_from_utc}-{a.blocked_until_utc} ({a.status}) overlaps "
            f"#{b.pk} {b.blocked_from_utc}-{b.blocked_until_utc} ({b.status})"
        )
    return lessons


@pytest.mark.usefixtures("open_all_week", "without_overlap_constraint")
@pytest.mark.parametrize("approval", [True, False], ids=["pending", "confirmed"])
def test_students_requesting_overlapping_lessons_at_once_get_one(
    approval: bool, teacher: Any, course: Any, user_model: Any
) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=approval)
    racers = students(user_model, 4, "racer")
    for round_ in range(ROUNDS):
        # Four lessons of an hour, 15 minutes apart: every two overlap.
        results = race(
            4,
            lambda i, r=round_: lesson(
                racers[i], teacher, course, slot(r) + timedelta(minutes=15 * i)
            ),
        )
        assert outcomes(results) == {"ok": 1, "slot_unavailable": 3}, (round_, results)
        assert len(assert_no_overlap(teacher)) == round_ + 1


@pytest.mark.usefixtures("open_all_week", "without_overlap_constraint")
def test_a_reschedule_racing_a_request_for_the_same_time_one_gets_it(
    teacher: Any, course: Any, user_model: Any
) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
    mover, requester = students(user_model, 2, "racer")
    for round_ in range(ROUNDS):
        booking = lesson(mover, teacher, course, slot(round_))
        target = slot(round_, 4)

        def work(i: int, booking: Any = booking, target: datetime = target) -> Any:
            if i == 0:
                return services.reschedule_booking(
                    booking,
                    actor=teacher,
                    start_at_utc=target,
                    end_at_utc=target + timedelta(hours=1),
                )
            return lesson(requester, teacher, course, target + timedelta(minutes=30))

        results = race(2, work)
        assert outcomes(results) == {"ok": 1, "slot_unavailable": 1}, (round_, results)
        assert_no_overlap(teacher)
        booking.refresh_from_db()
        assert booking.status == (S.RESCHEDULED if results[0][0] == "ok" else S.CONFIRMED)


def weekly(at: time, count: int) -> Recurrence:
    return Recurrence(
        frequency="weekly",
        start_date=monday_in(2).date(),
        start_time=at,
        timezone="UTC",
        duration_minutes=60,
        occurrence_count=count,
    )


@pytest.mark.usefixtures("open_all_week", "without_overlap_constraint")
def test_overlapping_series_and_requests_at_once_never_double_book(
    teacher: Any, course: Any, user_model: Any
) -> None:
    count = 6
    for round_ in range(ROUNDS // 2):
        at = time(8 + 2 * round_)
        # Two all-or-nothing series 30 minutes apart, and a single request overlapping the
        # third occurrence of both.
        rules = [weekly(at, count), weekly(time(at.hour, 30), count)]
        racers = students(user_model, 3, f"r{round_}-")
        third = rules[0].expand().occurrences[2].start + timedelta(minutes=15)

        def work(i: int, rules: list[Recurrence] = rules, racers: list[Any] = racers) -> Any:
            if i < 2:
                return services.create_series(
                    student=racers[i],
                    teacher=teacher,
                    course=course,
                    series_type="one_on_one_series",
                    rule=rules[i],
                )
            return lesson(racers[2], teacher, course, third)  # noqa: B023  (same round)

        results = race(3, work)
        codes = [code for code, _ in results]
        assert codes.count("ok") == 1, (round_, results)
        assert set(codes) <= {"ok", "series_conflict", "slot_unavailable"}, results
        assert_no_overlap(teacher)
        winner = codes.index("ok")
        assert BookingSeries.objects.filter(student_user__in=racers).count() == int(winner < 2)
        won = get_booking_model().objects.filter(
            student_user__in=racers, status__in=ACTIVE_BOOKING_STATUSES
        )
        assert won.count() == (count if winner < 2 else 1), (round_, results)


# A lesson's meeting details: the booking row lock of set_lesson_meeting -------------------


def test_meeting_changes_racing_each_other_and_a_cancel_all_count(
    confirmed_lessons: Any, teacher: Any, student: Any
) -> None:
    played = race_decisions(
        ROUNDS,
        confirmed_lessons,
        [
            lambda b: services.set_lesson_meeting(b, actor=teacher, meeting_id="room-1"),
            lambda b: services.set_lesson_meeting(b, actor=teacher, meeting_passcode="secret"),
            lambda b: services.cancel_booking(b, actor=student),
        ],
    )
    for booking, results in played:
        assert results[2][0] == "ok", results
        booking.refresh_from_db()
        changed = [i for i in (0, 1) if results[i][0] == "ok"]
        assert all(results[i][0] == "invalid_transition" for i in (0, 1) if i not in changed)
        # Each change that happened is kept and is a version of its own.
        assert (booking.meeting_id == "room-1") == (0 in changed), (booking.meeting_id, results)
        assert (booking.meeting_passcode == "secret") == (1 in changed), results
        assert booking.status == S.CANCELLED
        assert booking.calendar_sequence == len(changed) + 1, (booking.calendar_sequence, results)
        told = Counter(notices(booking))
        assert told[NotificationKind.SESSION_DETAILS_CHANGED] == len(changed), (told, results)


# A series: its row lock ------------------------------------------------------------------


ACTIONS = (services.pause_series, services.cancel_series)


@pytest.mark.usefixtures("open_all_week")
def test_pause_racing_cancel_of_one_series_keeps_one_story(
    teacher: Any, course: Any, user_model: Any
) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
    racers = students(user_model, ROUNDS, "series")
    for round_, student in enumerate(racers):
        report = services.create_series(
            student=student,
            teacher=teacher,
            course=course,
            series_type="one_on_one_series",
            rule=weekly(time(6 + 2 * round_), 3),
        )
        series = report.series
        copies = [BookingSeries.objects.get(pk=series.pk) for _ in range(2)]
        results = race(2, lambda i, c=copies: ACTIONS[i](c[i], actor=teacher))
        series.refresh_from_db()
        # The cancel wins either way (of the active or the paused series); a pause after it
        # is refused.
        assert results[1][0] == "ok", results
        assert results[0][0] in ("ok", "invalid_transition"), results
        assert series.status == "cancelled", (series.status, results)
        told = Counter(
            NotificationEvent.objects.filter(series=series).values_list("kind", flat=True)
        )
        assert told[NotificationKind.SERIES_CANCELLED] == 1, told
        assert told[NotificationKind.SERIES_PAUSED] == int(results[0][0] == "ok"), (told, results)
        assert (
            not get_booking_model()
            .objects.filter(student_user=student, status__in=ACTIVE_BOOKING_STATUSES)
            .exists()
        )


# A group session: its row lock -----------------------------------------------------------


class Hold:
    """Hold one racer inside its transaction, where it calls ``module.name`` (once it has read
    what it decides on), until the other racers are done, or until ``patience`` runs out
    because they wait for a lock it holds. The others start once it is held: without the
    lock they get in and out of the window it leaves open."""

    def __init__(self, monkeypatch: Any, module: Any, name: str, others: int) -> None:
        self.reached, self.done = threading.Event(), threading.Event()
        self.left = others
        self.guard = threading.Lock()
        self.holder: int | None = None
        original = getattr(module, name)

        def holding(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == self.holder and not self.reached.is_set():
                self.reached.set()
                self.done.wait(1.0)  # patience
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, holding)

    def held(self, action: Callable[[], Any]) -> Any:
        self.holder = threading.get_ident()
        try:
            return action()
        finally:
            self.reached.set()  # never held (refused before): let the others go

    def other(self, action: Callable[[], Any]) -> Any:
        try:
            self.reached.wait(10)
            return action()
        finally:
            with self.guard:
                self.left -= 1
                if self.left == 0:
                    self.done.set()


HELD_ROUNDS = 3


def test_cancelling_a_session_while_students_book_it_leaves_no_booking(
    make_session: Any, teacher: Any, user_model: Any, heard: list[Any], monkeypatch: Any
) -> None:
    racers = students(user_model, 4, "booker")
    for round_ in range(HELD_ROUNDS):
        session = make_session(start_at_utc=slot(round_))
        services.book_group_session(student=racers[0], session=session)
        # The cancel has read the session and its bookings, and is telling them.
        hold = Hold(monkeypatch, session_services, "_audience", others=3)

        def work(i: int, session: Any = session, hold: Hold = hold) -> Any:
            if i == 0:
                return hold.held(lambda: services.cancel_session(session, actor=teacher))
            return hold.other(
                lambda: services.book_group_session(student=racers[i], session=session)
            )

        results = race(4, work)
        monkeypatch.undo()
        assert results[0][0] == "ok", results
        assert set(outcomes(results[1:])) <= {"ok", "session_not_bookable"}, results
        session.refresh_from_db()
        assert (session.status, session.seats_taken) == ("cancelled", 0)
        active = session.bookings.filter(status__in=ACTIVE_BOOKING_STATUSES)
        assert not active.exists(), (list(active.values_list("pk", "status")), results)
        # Every booking made (the first, and any racer that got in before the cancel) was
        # cancelled once, and heard so.
        made = 1 + outcomes(results[1:])["ok"]
        assert session.bookings.count() == made
        for booking in session.bookings.all():
            assert_one_history(booking, 1, heard)


def test_lowering_the_capacity_while_students_book_never_goes_below_the_seats(
    make_session: Any, teacher: Any, user_model: Any, monkeypatch: Any
) -> None:
    racers = students(user_model, 4, "booker")
    for round_ in range(HELD_ROUNDS):
        session = make_session(start_at_utc=slot(round_), capacity=4)
        services.book_group_session(student=racers[0], session=session)
        # The change has read the seats taken and is validating the new capacity.
        hold = Hold(monkeypatch, session_services, "_validate", others=3)

        def work(i: int, session: Any = session, hold: Hold = hold) -> Any:
            if i == 0:
                return hold.held(
                    lambda: services.update_session(session, actor=teacher, capacity=2)
                )
            return hold.other(
                lambda: services.book_group_session(student=racers[i], session=session)
            )

        results = race(4, work)
        monkeypatch.undo()
        assert "exception" not in outcomes(results), results
        session.refresh_from_db()
        booked = session.bookings.filter(status__in=ACTIVE_BOOKING_STATUSES).count()
        assert session.seats_taken == booked <= session.capacity, (session.capacity, results)
        assert (session.capacity == 2) == (results[0][0] == "ok"), results


def test_joining_the_waitlist_while_a_seat_comes_free_leaves_nobody_waiting_beside_it(
    make_session: Any, teacher: Any, user_model: Any, monkeypatch: Any
) -> None:
    holder, joiner = students(user_model, 2, "student")
    for round_ in range(HELD_ROUNDS):
        session = make_session(start_at_utc=slot(round_), capacity=1)
        booking = services.book_group_session(student=holder, session=session)
        # The join has found the session full and is checking that it is bookable.
        hold = Hold(monkeypatch, waitlist_services, "_require_bookable", others=1)

        def work(i: int, session: Any = session, booking: Any = booking, hold: Hold = hold) -> Any:
            if i == 0:
                return hold.held(lambda: services.join_waitlist(student=joiner, session=session))
            return hold.other(lambda: services.cancel_booking(booking, actor=teacher))

        results = race(2, work)
        monkeypatch.undo()
        assert results[1][0] == "ok", results
        assert results[0][0] in ("ok", "seats_available"), results
        session.refresh_from_db()
        entries = list(
            SessionWaitlist.objects.filter(session=session).values_list("status", flat=True)
        )
        # The seat that came free went to the student who joined, or the join was refused
        # because it was free: never a free seat with somebody waiting for it.
        assert (session.seats_taken, entries) in ((1, ["offered"]), (0, [])), (
            session.seats_taken,
            entries,
            results,
        )


def test_a_booking_held_before_its_seats_leaves_nothing_once_the_class_is_full(
    make_session: Any, user_model: Any, monkeypatch: Any
) -> None:
    """A booking writes its row, audit entry and outbox event before the seat ``UPDATE``
    (PostgreSQL, SQLite; on MySQL/MariaDB the ``UPDATE`` comes first): one that then finds
    the class full rolls them all back."""
    racers = students(user_model, 5, "booker")
    for round_ in range(HELD_ROUNDS):
        session = make_session(start_at_utc=slot(round_), capacity=3)
        # The booking is about to take its seats; the others fill the class meanwhile.
        hold = Hold(monkeypatch, booking_services, "take_seats", others=4)

        def work(i: int, session: Any = session, hold: Hold = hold) -> Any:
            def book() -> Any:
                return services.book_group_session(student=racers[i], session=session)

            return hold.held(book) if i == 0 else hold.other(book)

        results = race(5, work)
        monkeypatch.undo()
        assert outcomes(results) == Counter({"ok": 3, "session_full": 2}), results
        session.refresh_from_db()
        made = session.bookings.all()
        assert session.seats_taken == made.count() == 3, results
        assert BookingEvent.objects.filter(booking__session=session).count() == 3
        assert NotificationEvent.objects.filter(session=session).count() == 3
        if results[0][0] == "session_full":  # held until the others were done
            assert not made.filter(student_user=racers[0]).exists()


def test_accepting_an_offer_while_its_session_is_cancelled_books_nothing(
    make_session: Any, teacher: Any, user_model: Any, monkeypatch: Any
) -> None:
    holder, waiter = students(user_model, 2, "student")
    for round_ in range(HELD_ROUNDS):
        session = make_session(start_at_utc=slot(round_), capacity=1)
        taken = services.book_group_session(student=holder, session=session)
        entry = services.join_waitlist(student=waiter, session=session)
        services.cancel_booking(taken, actor=teacher)
        entry.refresh_from_db()
        assert entry.status == "offered"
        # The accept has written its booking (on MySQL/MariaDB: not yet) and is about to lock
        # the session; the teacher cancels the session meanwhile.
        hold = Hold(monkeypatch, waitlist_services, "_lock_scheduled", others=1)

        def work(i: int, session: Any = session, entry: Any = entry, hold: Hold = hold) -> Any:
            if i == 0:
                return hold.held(lambda: services.accept_offer(entry, actor=waiter))
            return hold.other(lambda: services.cancel_session(session, actor=teacher))

        results = race(2, work)
        monkeypatch.undo()
        assert results[1][0] == "ok", results
        assert results[0][0] in ("offer_expired", "ok"), results
        session.refresh_from_db()
        assert (session.status, session.seats_taken) == ("cancelled", 0)
        active = session.bookings.filter(status__in=ACTIVE_BOOKING_STATUSES)
        assert not active.exists(), results
        entry.refresh_from_db()
        accepted = results[0][0] == "ok"
        assert entry.status == ("accepted" if accepted else "expired"), results
        assert session.bookings.filter(student_user=waiter).count() == int(accepted)


def test_moving_a_seat_racing_the_students_own_booking_of_the_target_keeps_one(
    make_session: Any, teacher: Any, user_model: Any
) -> None:
    (mover,) = students(user_model, 1, "mover")
    for round_ in range(ROUNDS):
        source = make_session(start_at_utc=slot(round_))
        target = make_session(start_at_utc=slot(round_, hour=3))
        booking = services.book_group_session(student=mover, session=source)

        def work(i: int, booking: Any = booking, target: Any = target) -> Any:
            if i == 0:
                return services.reschedule_booking(booking, actor=teacher, session=target)
            return services.book_group_session(student=mover, session=target)

        results = race(2, work)
        assert sorted(outcomes(results)) == ["already_booked", "ok"], results
        for session in (source, target):
            session.refresh_from_db()
            held = session.bookings.filter(status__in=ACTIVE_BOOKING_STATUSES)
            assert session.seats_taken == held.count() <= 1, results
        assert target.seats_taken == 1, results
        assert source.seats_taken == (results[0][0] == "already_booked"), results


@pytest.mark.usefixtures("open_all_week")
def test_cancelling_a_group_series_while_its_sessions_are_created_enrols_nothing(
    teacher: Any, course: Any, user_model: Any, monkeypatch: Any
) -> None:
    racers = students(user_model, HELD_ROUNDS, "enrolled")
    for round_, student in enumerate(racers):
        rule = weekly(time(6 + 2 * round_), 2)
        first, second = rule.expand().occurrences
        services.create_session(
            teacher=teacher,
            course=course,
            title="first",
            start_at_utc=first.start,
            end_at_utc=first.end,
            capacity=3,
        )
        report = services.create_series(
            student=student,
            teacher=teacher,
            course=course,
            series_type="group_series",
            rule=rule,
        )
        assert [r.status for r in report.occurrences] == ["booked", "awaiting_session"]
        series = report.series
        # The cancel has read the series' future occurrences and is cancelling the first.
        hold = Hold(monkeypatch, series_services, "transition", others=1)

        def work(i: int, series: Any = series, hold: Hold = hold, second: Any = second) -> Any:
            if i == 0:
                return hold.held(lambda: services.cancel_series(series, actor=teacher))
            return hold.other(
                lambda: services.create_session(
                    teacher=teacher,
                    course=course,
                    title="second",
                    start_at_utc=second.start,
                    end_at_utc=second.end,
                    capacity=3,
                )
            )

        results = race(2, work)
        monkeypatch.undo()
        assert outcomes(results) == {"ok": 2}, results
        items = list(series.items.order_by("occurrence_index"))
        assert [item.status for item in items] == ["cancelled", "cancelled"], [
            (item.status, item.booking_id) for item in items
        ]
        active = get_booking_model().objects.filter(
            student_user=student, status__in=ACTIVE_BOOKING_STATUSES
        )
        assert not active.exists(), list(active.values_list("pk", "session_id"))


# One student's limits across teachers and sessions: the student's row lock ---------------


def teachers(user_model: Any, count: int) -> list[Any]:
    people = []
    for i in range(count):
        person = grant_teaching(
            user_model.objects.create_user(username=f"teacher{i}", password="x")
        )
        for weekday in range(7):
            TeacherAvailability.objects.create(
                teacher=person, weekday=weekday, start_time=time(0), end_time=time(23, 59),
                timezone="UTC",
            )  # fmt: skip
        people.append(person)
    return people


def test_one_students_lessons_with_many_teachers_at_once_stop_at_the_limit(
    course: Any, student: Any, user_model: Any
) -> None:
    # Each teacher's row lock serialises only that teacher's lessons: the student's row is
    # what counts the student's bookings one after the other.
    people = teachers(user_model, 6)
    with override_settings(LIVECLASS_BOOKING_LIMITS={"active_bookings_per_student": 2}):
        for round_ in range(ROUNDS // 2):
            get_booking_model().objects.filter(student_user=student).update(status=S.CANCELLED)
            results = race(6, lambda i, r=round_: lesson(student, people[i], course, slot(r, i)))
            assert outcomes(results) == {"ok": 2, "limit_reached": 4}, (round_, results)


def test_one_students_lesson_series_with_many_teachers_at_once_stop_at_the_limit(
    course: Any, student: Any, user_model: Any
) -> None:
    people = teachers(user_model, 4)
    with override_settings(LIVECLASS_BOOKING_LIMITS={"active_series_per_student": 1}):
        for round_ in range(ROUNDS // 2):
            BookingSeries.objects.filter(student_user=student).update(status="cancelled")
            results = race(
                4,
                lambda i, r=round_: services.create_series(
                    student=student,
                    teacher=people[i],
                    course=course,
                    series_type="one_on_one_series",
                    rule=weekly(time(4 + 4 * r + i), 2),
                ),
            )
            assert outcomes(results) == {"ok": 1, "limit_reached": 3}, (round_, results)


def test_one_student_accepting_offers_at_once_stops_at_the_limit(
    make_session: Any, student: Any, teacher: Any, user_model: Any
) -> None:
    others = students(user_model, 4, "holder")
    entries = []
    for i in range(4):
        session = make_session(capacity=1, start_at_utc=slot(i))
        booking = services.book_group_session(student=others[i], session=session)
        entries.append(services.join_waitlist(student=student, session=session))
        services.cancel_booking(booking, actor=teacher)  # the seat is offered to the student
    with override_settings(LIVECLASS_BOOKING_LIMITS={"active_bookings_per_student": 1}):
        results = race(4, lambda i: services.accept_offer(entries[i], actor=student))
    assert outcomes(results) == {"ok": 1, "limit_reached": 3}, results
    assert (
        get_booking_model()
        .objects.filter(student_user=student, status__in=ACTIVE_BOOKING_STATUSES)
        .count()
        == 1
    )
