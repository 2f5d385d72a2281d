"""The waitlist under real concurrent connections on PostgreSQL and MariaDB/MySQL: threads, each
with its own connection. Offers are accepted once, a seat offered to the queue is never taken by
a direct booking, and seats_taken stays exact (bookings + open offers <= capacity) at every
commit."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models import Count, Sum

from liveclass_booking import services
from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES, OPEN_WAITLIST_STATUSES
from liveclass_booking.choices import WaitlistStatus as W
from liveclass_booking.exceptions import InvalidTransition, SessionFull
from liveclass_booking.models import BookingEvent, SessionWaitlist, get_session_model
from liveclass_booking.services import waitlist as waitlist_services
from tests.concurrency import outcomes, race

pytestmark = [pytest.mark.concurrent, pytest.mark.django_db(transaction=True)]


def make_students(user_model: Any, count: int, prefix: str) -> list[Any]:
    return [
        user_model.objects.create_user(username=f"{prefix}{i}", password="x") for i in range(count)
    ]


def full_session(make_session: Any, user_model: Any, capacity: int) -> tuple[Any, list[Any]]:
    """A session whose ``capacity`` seats are booked, one each, by booker0, booker1, ..."""
    session = make_session(capacity=capacity)
    bookings = [
        services.book_group_session(student=student, session=session)
        for student in make_students(user_model, capacity, "booker")
    ]
    return session, bookings


def join_in_order(session: Any, students: list[Any]) -> list[Any]:
    return [services.join_waitlist(student=student, session=session) for student in students]


def fresh(obj: Any) -> Any:
    obj.refresh_from_db()
    return obj


def seat_count(session: Any) -> dict[str, int]:
    """The session's seat figures, read in one snapshot."""
    with transaction.atomic():
        if connection.vendor in ("postgresql", "mysql"):
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        current = get_session_model().objects.get(pk=session.pk)
        booked = (
            current.bookings.filter(status__in=ACTIVE_BOOKING_STATUSES).aggregate(
                total=Sum("seats_reserved")
            )["total"]
            or 0
        )
        entries = list(
            SessionWaitlist.objects.filter(
                session=current, status__in=OPEN_WAITLIST_STATUSES
            ).values_list("status", "created_at", "pk")
        )
    offered = [(at, pk) for status, at, pk in entries if status == W.OFFERED]
    waiting = [(at, pk) for status, at, pk in entries if status == W.WAITING]
    return {
        "seats_taken": current.seats_taken,
        "capacity": current.capacity,
        "booked": booked,
        "offered": len(offered),
        "waiting": len(waiting),
        # Offers go out in join order: every open offer joined before everybody still waiting.
        "out_of_order": int(bool(offered and waiting and max(offered) > min(waiting))),
    }


def assert_seats_exact(session: Any) -> dict[str, int]:
    seats = seat_count(session)
    assert seats["seats_taken"] == seats["booked"] + seats["offered"], seats
    assert seats["seats_taken"] <= seats["capacity"], seats
    assert not seats["out_of_order"], seats
    return seats


def assert_one_active_booking_per_student(session: Any) -> None:
    doubled = (
        session.bookings.filter(status__in=ACTIVE_BOOKING_STATUSES)
        .values("student_user")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not doubled.exists(), list(doubled)


@pytest.mark.parametrize("clients", [2, 8])
def test_concurrent_accepts_of_one_offer_make_one_booking(
    clients: int, make_session: Any, user_model: Any, teacher: Any
) -> None:
    session, bookings = full_session(make_session, user_model, capacity=2)
    (waiter,) = make_students(user_model, 1, "waiter")
    (entry,) = join_in_order(session, [waiter])
    services.cancel_booking(bookings[0], actor=teacher)
    assert fresh(entry).status == W.OFFERED
    # The same student, from several clients (tabs, retries) at once.
    copies = [SessionWaitlist.objects.get(pk=entry.pk) for _ in range(clients)]

    results = race(clients, lambda i: services.accept_offer(copies[i], actor=waiter))

    assert outcomes(results) == {"ok": 1, "invalid_transition": clients - 1}
    (booking,) = [result for code, result in results if code == "ok"]
    entry = fresh(entry)
    assert (entry.status, entry.booking_id) == (W.ACCEPTED, booking.pk)
    assert session.bookings.filter(student_user=waiter).count() == 1
    assert BookingEvent.objects.filter(booking=booking).count() == 1
    seats = assert_seats_exact(session)
    assert (seats["seats_taken"], seats["booked"], seats["offered"]) == (2, 2, 0)


#: What (accept, leave, expire) each get, by the action that won.
RACE_OUTCOMES = {
    W.ACCEPTED: ("ok", "invalid_transition", "ok"),
    W.LEFT: ("invalid_transition", "ok", "ok"),
    W.EXPIRED: ("offer_expired", "invalid_transition", "ok"),
}


@pytest.mark.parametrize("attempt", range(4))  # which action wins is up to the scheduler
def test_accept_racing_leave_and_expiry_has_one_winner(
    attempt: int, make_session: Any, user_model: Any, teacher: Any, staff: Any
) -> None:
    session, bookings = full_session(make_session, user_model, capacity=2)
    waiter, next_in_line = make_students(user_model, 2, "waiter")
    entry, second = join_in_order(session, [waiter, next_in_line])
    services.cancel_booking(bookings[0], actor=teacher)
    copies = [SessionWaitlist.objects.get(pk=entry.pk) for _ in range(3)]
    actions = [
        lambda: services.accept_offer(copies[0], actor=waiter),
        lambda: services.leave_waitlist(copies[1], actor=waiter),
        lambda: services.expire_offer(copies[2], actor=staff),
    ]

    results = race(3, lambda i: actions[i]())

    final = fresh(entry).status
    assert tuple(code for code, _ in results) == RACE_OUTCOMES[final], results
    assert (results[2][1] is not None) == (final == W.EXPIRED)  # None: nothing left to expire
    booked = session.bookings.filter(student_user=waiter, status__in=ACTIVE_BOOKING_STATUSES)
    if final == W.ACCEPTED:
        assert booked.count() == 1
        assert fresh(second).status == W.WAITING
    else:
        assert not booked.exists()
        assert fresh(second).status == W.OFFERED  # the seat was passed on
    assert assert_seats_exact(session)["seats_taken"] == 2


def test_one_student_joining_from_many_clients_is_queued_once(
    make_session: Any, user_model: Any
) -> None:
    session, _ = full_session(make_session, user_model, capacity=2)
    (waiter,) = make_students(user_model, 1, "waiter")
    results = race(8, lambda i: services.join_waitlist(student=waiter, session=session))
    assert outcomes(results) == {"ok": 1, "already_waitlisted": 7}
    assert SessionWaitlist.objects.filter(session=session, student_user=waiter).count() == 1


def test_direct_bookings_never_take_a_seat_offered_to_the_queue(
    make_session: Any, user_model: Any, teacher: Any
) -> None:
    rounds, outsiders_per_round = 4, 15
    session, bookings = full_session(make_session, user_model, capacity=rounds)
    waiters = make_students(user_model, rounds, "waiter")
    entries = join_in_order(session, waiters)
    outsiders = make_students(user_model, rounds * outsiders_per_round, "outsider")

    for round_ in range(rounds):
        crowd = outsiders[round_ * outsiders_per_round : (round_ + 1) * outsiders_per_round]

        def work(i: int, crowd: list[Any] = crowd, round_: int = round_) -> Any:
            if i == 0:  # frees a seat: offered to the next in line, in the same transaction
                return services.cancel_booking(bookings[round_], actor=teacher)
            return services.book_group_session(student=crowd[i - 1], session=session)

        results = race(1 + outsiders_per_round, work)

        assert results[0][0] == "ok"
        assert outcomes(results[1:]) == {"session_full": outsiders_per_round}, results
        statuses = [fresh(entry).status for entry in entries]
        assert statuses == [W.OFFERED] * (round_ + 1) + [W.WAITING] * (rounds - round_ - 1)
        seats = assert_seats_exact(session)
        assert (seats["seats_taken"], seats["offered"]) == (rounds, round_ + 1)
    assert not session.bookings.filter(student_user__in=outsiders).exists()


def test_thirty_cancellations_and_accepts_interleaved_across_threads(
    make_session: Any, user_model: Any, teacher: Any
) -> None:
    # Three threads cancel bookings (the first ten, then those made from offers), three accept
    # offers as they appear (colliding on the same offers), one books directly all along and
    # one checks snapshots; 35 students queue, so five are still waiting at the end.
    capacity, waiting, cancels = 10, 35, 30
    session, bookings = full_session(make_session, user_model, capacity=capacity)
    waiters = make_students(user_model, waiting, "waiter")
    entries = join_in_order(session, waiters)
    outsiders = make_students(user_model, 60, "outsider")
    booking_model = type(bookings[0])

    guard = threading.Lock()
    cancellable = [booking.pk for booking in bookings]
    counts = {"claimed": 0, "cancelled": 0, "accepted": 0, "lost_races": 0, "workers_left": 6}
    finished = threading.Event()
    deadline = time.monotonic() + 30

    def worker_done() -> None:
        with guard:
            counts["workers_left"] -= 1
            if counts["workers_left"] == 0:
                finished.set()

    def canceller() -> Any:
        try:
            while time.monotonic() < deadline:
                with guard:
                    if counts["claimed"] == cancels:
                        return "done"
                    pk = None
                    if cancellable:
                        pk = cancellable.pop(random.randrange(len(cancellable)))
                        counts["claimed"] += 1
                if pk is None:
                    time.sleep(0.002)
                    continue
                services.cancel_booking(booking_model.objects.get(pk=pk), actor=teacher)
                with guard:
                    counts["cancelled"] += 1
            return "timed out"
        finally:
            worker_done()

    def acceptor(reverse: bool) -> Any:
        try:
            while time.monotonic() < deadline:
                with guard:
                    if counts["accepted"] == cancels:
                        return "done"
                offered = list(
                    SessionWaitlist.objects.filter(session=session, status=W.OFFERED).order_by(
                        "created_at", "pk"
                    )
                )
                for entry in reversed(offered) if reverse else offered:
                    try:
                        booking = services.accept_offer(entry, actor=entry.student_user)
                    except InvalidTransition:
                        with guard:  # another acceptor got there first
                            counts["lost_races"] += 1
                        continue
                    with guard:
                        counts["accepted"] += 1
                        cancellable.append(booking.pk)
                time.sleep(0.002)
            return "timed out"
        finally:
            worker_done()

    def monitor() -> Any:
        """Snapshots while the others work: every committed state keeps the seat rules."""
        snapshots, bad = 0, []
        while not finished.is_set() and time.monotonic() < deadline:
            seats = seat_count(session)
            snapshots += 1
            if (
                seats["seats_taken"] != seats["booked"] + seats["offered"]
                or seats["seats_taken"] > seats["capacity"]
                or seats["out_of_order"]
            ):
                bad.append(seats)
            time.sleep(0.003)
        return snapshots, bad

    def outsider() -> Any:
        """Direct bookings all along: somebody always waits, so every one is refused."""
        codes = []
        for student in outsiders:
            if finished.is_set() or time.monotonic() > deadline:
                break
            try:
                services.book_group_session(student=student, session=session)
                codes.append("ok")
            except SessionFull as exc:
                codes.append(exc.code)
            time.sleep(0.003)
        return codes

    roles = [canceller] * 3 + [
        lambda: acceptor(False),
        lambda: acceptor(True),
        lambda: acceptor(False),
        monitor,
        outsider,
    ]
    results = race(len(roles), lambda i: roles[i]())

    failed = [result for result in results if result[0] != "ok"]
    assert [code for code, _ in results] == ["ok"] * len(roles), failed
    assert [result for _, result in results[:6]] == ["done"] * 6, (results, counts)
    assert (counts["cancelled"], counts["accepted"]) == (cancels, cancels)
    snapshots, bad = results[6][1]
    assert snapshots > 0
    assert bad == []
    codes = results[7][1]
    assert codes
    assert set(codes) == {"session_full"}

    # Afterwards: exact seats, one active booking per student, nobody from outside.
    seats = assert_seats_exact(session)
    assert (seats["seats_taken"], seats["booked"], seats["offered"]) == (capacity, capacity, 0)
    assert seats["waiting"] == waiting - cancels
    assert_one_active_booking_per_student(session)
    assert not session.bookings.filter(student_user__in=outsiders).exists()
    # Offers went out in join order: the first ``cancels`` to join were offered (and
    # accepted), one per cancellation, their offer times following the join order.
    entries = [fresh(entry) for entry in entries]
    assert [e.status for e in entries] == [W.ACCEPTED] * cancels + [W.WAITING] * (waiting - cancels)
    offered_at = [e.offered_at for e in entries[:cancels]]
    assert offered_at == sorted(offered_at)
    for entry in entries[:cancels]:
        assert entry.booking is not None
        assert entry.booking.student_user_id == entry.student_user_id


def test_a_join_that_waited_for_the_lock_queues_behind_those_who_got_in_first(
    make_session: Any, user_model: Any, teacher: Any, monkeypatch: Any
) -> None:
    session, (booking,) = full_session(make_session, user_model, capacity=1)
    slow, quick = make_students(user_model, 2, "joiner")
    stamped, go = threading.Event(), threading.Event()
    settle_session = waitlist_services.settle_session

    def held_up(session_pk: Any, now: Any) -> None:
        # The slow join has taken its time stamp and is about to lock the session: hold it
        # here, as a busy session row would.
        if threading.current_thread().name == "slow-join":
            stamped.set()
            go.wait(10)
        settle_session(session_pk, now)

    monkeypatch.setattr(waitlist_services, "settle_session", held_up)
    joined: dict[str, Any] = {}

    def slow_join() -> None:
        try:
            joined["entry"] = services.join_waitlist(student=slow, session=session)
        except Exception as exc:
            joined["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_join, name="slow-join")
    thread.start()
    try:
        if not stamped.wait(10):
            pytest.fail("the slow join never started")
        time.sleep(0.01)
        (quick_entry,) = join_in_order(session, [quick])
        services.cancel_booking(booking, actor=teacher)  # offered to quick, the only one queued
        if fresh(quick_entry).status != W.OFFERED:
            pytest.fail("quick was not offered the seat")
    finally:
        go.set()
        thread.join(30)
    if "entry" not in joined or fresh(joined["entry"]).status != W.WAITING:
        pytest.fail(f"the slow join did not queue: {joined}")

    seats = seat_count(session)
    assert not seats["out_of_order"], (
        f"slow joined at {joined['entry'].created_at}, ahead of quick "
        f"({fresh(quick_entry).created_at}), who was offered the seat first"
    )
