"""The FIFO waitlist with timed seat offers, through the services and the model methods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings

from liveclass_booking import services, signals
from liveclass_booking.choices import BookingStatus as S
from liveclass_booking.choices import WaitlistStatus as W
from liveclass_booking.exceptions import (
    AlreadyBooked,
    AlreadyWaitlisted,
    InvalidTransition,
    NotAllowed,
    OfferExpired,
    SeatsAvailable,
    SessionFull,
    SessionNotBookable,
)
from liveclass_booking.models import BookingEvent, SessionWaitlist, TeacherBookingPolicy

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
TTL = timedelta(hours=12)  # the default offer lifetime

WAITLIST_SIGNALS = ("waitlist_offered", "waitlist_offer_expired", "waitlist_accepted")
ALL_SIGNALS = (*WAITLIST_SIGNALS, "waitlist_closed", "booking_confirmed", "booking_requested")


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def users(user_model: Any) -> Any:
    made: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in made:
            made[name] = user_model.objects.create_user(username=name, password="pw")
        return made[name]

    return get


class Sent(list[tuple[str, dict[str, Any]]]):
    """Signals received, as (name, kwargs). ``with sent:`` runs the on-commit callbacks of
    what happens inside it (the test's transaction never commits)."""

    def __init__(self, capture: Any) -> None:
        super().__init__()
        self._capture = capture
        self._cm: Any = None

    def __enter__(self) -> Sent:
        self._cm = self._capture(execute=True)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)

    def kwargs(self, name: str) -> list[dict[str, Any]]:
        return [kw for sent, kw in self if sent == name]


@pytest.fixture
def sent(django_capture_on_commit_callbacks: Any) -> Any:
    log = Sent(django_capture_on_commit_callbacks)
    receivers = {}
    for name in ALL_SIGNALS:

        def receive(sender: Any, _name: str = name, **kwargs: Any) -> None:
            log.append((_name, kwargs))

        receivers[name] = receive
        getattr(signals, name).connect(receive, weak=False)
    yield log
    for name, receive in receivers.items():
        getattr(signals, name).disconnect(receive)


def fresh(obj: Any) -> Any:
    obj.refresh_from_db()
    return obj


def full_session(make_session: Any, users: Any, capacity: int = 2, **fields: Any) -> Any:
    """A session whose ``capacity`` seats are booked by booker0, booker1, ..."""
    session = make_session(capacity=capacity, **fields)
    for i in range(capacity):
        services.book_group_session(student=users(f"booker{i}"), session=session)
    return fresh(session)


def join(session: Any, *names: str, users: Any, clock: Any) -> list[Any]:
    """Join the students in this order, a minute apart (queue order is join time)."""
    entries = []
    for name in names:
        entries.append(services.join_waitlist(student=users(name), session=session))
        clock.shift(timedelta(minutes=1))
    return entries


def booking_of(session: Any, name: str, users: Any) -> Any:
    return session.bookings.get(student_user=users(name), status__in=[S.PENDING, S.CONFIRMED])


def held_offers(session: Any) -> int:
    return SessionWaitlist.objects.filter(session=session, status=W.OFFERED).count()


def check_seats(session: Any) -> None:
    """seats_taken = seats of pending and confirmed bookings + open offers, ≤ capacity."""
    session = fresh(session)
    booked = sum(
        b.seats_reserved for b in session.bookings.filter(status__in=[S.PENDING, S.CONFIRMED])
    )
    assert session.seats_taken == booked + held_offers(session)
    assert session.seats_taken <= session.capacity


class TestJoin:
    def test_a_free_seat_means_book_instead(self, session: Any, student: Any) -> None:
        with pytest.raises(SeatsAvailable) as info:
            services.join_waitlist(student=student, session=session)
        assert info.value.code == "seats_available"
        assert info.value.data == {"seats_available": 10}
        assert not SessionWaitlist.objects.exists()

    def test_students_join_a_full_session_in_order(
        self, make_session: Any, users: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        assert (a.status, b.status) == (W.WAITING, W.WAITING)
        assert a.created_at < b.created_at
        assert fresh(session).seats_taken == 2

    def test_a_booked_student_cannot_join(self, make_session: Any, users: Any) -> None:
        session = full_session(make_session, users)
        with pytest.raises(AlreadyBooked):
            services.join_waitlist(student=users("booker0"), session=session)
        assert not SessionWaitlist.objects.exists()

    def test_joining_twice_is_refused(self, make_session: Any, users: Any, clock: Any) -> None:
        session = full_session(make_session, users)
        (entry,) = join(session, "a", users=users, clock=clock)
        with pytest.raises(AlreadyWaitlisted) as info:
            services.join_waitlist(student=users("a"), session=session)
        assert info.value.data == {"entry": entry.pk, "status": "waiting"}
        assert fresh(entry).created_at == NOW

    def test_no_waitlist_for_cancelled_or_started_sessions(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        cancelled = full_session(make_session, users)
        services.cancel_session(cancelled, actor=teacher)
        with pytest.raises(SessionNotBookable):
            services.join_waitlist(student=users("a"), session=cancelled)
        started = full_session(make_session, users, start_at_utc=NOW + H)
        clock.shift(2 * H)
        with pytest.raises(SessionNotBookable):
            services.join_waitlist(student=users("a"), session=started)
        assert not SessionWaitlist.objects.exists()

    def test_students_join_only_for_themselves(self, make_session: Any, users: Any) -> None:
        session = full_session(make_session, users)
        with pytest.raises(NotAllowed):
            services.join_waitlist(student=users("a"), session=session, actor=users("b"))

    def test_rejoining_after_leaving_goes_to_the_back(
        self, make_session: Any, users: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.leave_waitlist(a, actor=users("a"))
        again = services.join_waitlist(student=users("a"), session=session)
        assert again.pk == a.pk
        assert (again.status, again.left_at) == (W.WAITING, None)
        assert again.created_at > fresh(b).created_at
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        assert (fresh(b).status, fresh(again).status) == (W.OFFERED, W.WAITING)


class TestOffers:
    def test_a_freed_seat_is_offered_to_the_first_in_line_and_held(
        self, make_session: Any, users: Any, clock: Any, sent: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        a, b = fresh(a), fresh(b)
        assert (a.status, b.status) == (W.OFFERED, W.WAITING)
        assert a.offered_at == NOW + 2 * timedelta(minutes=1)
        assert a.offer_expires_at == a.offered_at + TTL
        assert fresh(session).seats_taken == 2  # the offer holds the seat
        with pytest.raises(SessionFull):
            services.book_group_session(student=users("outsider"), session=session)
        check_seats(session)

    def test_freed_seats_go_one_each_in_join_order(
        self, make_session: Any, users: Any, clock: Any
    ) -> None:
        session = make_session(capacity=3)
        services.book_group_session(student=users("big"), session=session, seats=3)
        a, b, c = join(session, "a", "b", "c", users=users, clock=clock)
        big = booking_of(session, "big", users)
        services.cancel_booking(big, actor=users("big"))
        assert [fresh(e).status for e in (a, b, c)] == [W.OFFERED] * 3
        check_seats(session)

    def test_decline_and_reschedule_free_seats_for_the_waitlist(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.decline_booking(booking_of(session, "booker0", users), actor=teacher)
        assert fresh(a).status == W.OFFERED
        services.approve_booking(booking_of(session, "booker1", users), actor=teacher)
        other = make_session(start_at_utc=NOW + timedelta(days=4))
        services.reschedule_booking(
            booking_of(session, "booker1", users), actor=teacher, session=other
        )
        assert fresh(b).status == W.OFFERED
        check_seats(session)

    def test_raising_the_capacity_offers_the_new_seats(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b, c = join(session, "a", "b", "c", users=users, clock=clock)
        services.update_session(session, actor=teacher, capacity=4)
        assert [fresh(e).status for e in (a, b, c)] == [W.OFFERED, W.OFFERED, W.WAITING]
        assert fresh(session).seats_taken == 4
        check_seats(session)

    def test_an_offer_near_the_start_ends_at_the_start(
        self, make_session: Any, users: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users, start_at_utc=NOW + 3 * H)
        (a,) = join(session, "a", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users))
        assert fresh(a).offer_expires_at == session.start_at_utc

    def test_no_offer_once_the_session_has_started(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users, start_at_utc=NOW + H)
        (a,) = join(session, "a", users=users, clock=clock)
        clock.shift(2 * H)
        services.cancel_booking(booking_of(session, "booker0", users), actor=teacher)
        assert fresh(a).status == W.WAITING
        assert fresh(session).seats_taken == 1
        report = services.expire_due_offers()
        assert (report.expired, report.offered, report.closed) == (0, 0, 1)
        assert fresh(a).status == W.EXPIRED

    def test_moving_the_start_earlier_shortens_open_offers(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        (a,) = join(session, "a", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=teacher)
        new_start = NOW + 5 * H
        services.update_session(
            session, actor=teacher, start_at_utc=new_start, end_at_utc=new_start + H
        )
        assert fresh(a).offer_expires_at == new_start

    def test_offers_send_signals_after_commit(
        self, make_session: Any, users: Any, clock: Any, sent: Any
    ) -> None:
        session = full_session(make_session, users)
        (a,) = join(session, "a", users=users, clock=clock)
        with sent:
            services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        offered = sent.kwargs("waitlist_offered")
        assert [kw["entry"].pk for kw in offered] == [a.pk]
        assert offered[0]["entry"].offer_expires_at == fresh(a).offer_expires_at


class TestAccept:
    def offered(self, make_session: Any, users: Any, clock: Any, **fields: Any) -> Any:
        session = full_session(make_session, users, **fields)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        return session, fresh(a), fresh(b)

    def test_accept_turns_the_held_seat_into_a_confirmed_booking(
        self, make_session: Any, users: Any, clock: Any, sent: Any
    ) -> None:
        session, a, _b = self.offered(make_session, users, clock)
        with sent:
            booking = services.accept_offer(a, actor=users("a"), note="thanks")
        a = fresh(a)
        assert (booking.status, booking.seats_reserved, booking.student_note) == (
            S.CONFIRMED,
            1,
            "thanks",
        )
        assert (a.status, a.accepted_at, a.booking_id) == (
            W.ACCEPTED,
            NOW + 2 * timedelta(minutes=1),
            booking.pk,
        )
        assert fresh(session).seats_taken == 2
        event = BookingEvent.objects.get(booking=booking)
        assert (event.to_status, event.data) == (S.CONFIRMED, {"waitlist_entry": a.pk})
        names = [name for name, _ in sent]
        assert "waitlist_accepted" in names
        assert "booking_confirmed" in names
        (accepted,) = sent.kwargs("waitlist_accepted")
        assert (accepted["entry"].pk, accepted["booking"].pk) == (a.pk, booking.pk)
        check_seats(session)

    def test_accept_is_pending_when_group_bookings_need_approval(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
        session, a, _ = self.offered(make_session, users, clock)
        booking = services.accept_offer(a, actor=users("a"))
        assert booking.status == S.PENDING
        check_seats(session)

    def test_accepting_after_the_offer_ran_out_fails_and_passes_the_seat_on(
        self, make_session: Any, users: Any, clock: Any, sent: Any
    ) -> None:
        session, a, b = self.offered(make_session, users, clock)
        clock.shift(TTL)  # exactly at offer_expires_at: no job has run
        assert a.current_status == W.EXPIRED
        with sent, pytest.raises(OfferExpired) as info:
            services.accept_offer(a, actor=users("a"))
        assert info.value.code == "offer_expired"
        assert (fresh(a).status, fresh(a).expired_at) == (
            W.EXPIRED,
            NOW + TTL + 2 * timedelta(minutes=1),
        )
        assert fresh(b).status == W.OFFERED
        assert not session.bookings.filter(student_user=users("a")).exists()
        names = [name for name, _ in sent]
        assert names.count("waitlist_offer_expired") == 1
        with pytest.raises(OfferExpired):
            services.accept_offer(a, actor=users("a"))
        check_seats(session)

    def test_an_offer_converts_only_once(self, make_session: Any, users: Any, clock: Any) -> None:
        session, a, _ = self.offered(make_session, users, clock)
        services.accept_offer(a, actor=users("a"))
        with pytest.raises(InvalidTransition):
            services.accept_offer(a, actor=users("a"))
        assert session.bookings.filter(student_user=users("a")).count() == 1
        check_seats(session)

    def test_only_the_student_or_staff_accepts(
        self, make_session: Any, users: Any, staff: Any, clock: Any
    ) -> None:
        _session, a, b = self.offered(make_session, users, clock)
        with pytest.raises(NotAllowed):
            services.accept_offer(a, actor=users("b"))
        with pytest.raises(InvalidTransition):  # b is still waiting: nothing to accept
            services.accept_offer(b, actor=users("b"))
        booking = services.accept_offer(a, actor=staff)
        assert booking.student_user == users("a")

    def test_model_methods_go_through_the_services(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        session, a, b = self.offered(make_session, users, clock)
        assert a.expire_offer(actor=teacher) is True
        assert a.expire_offer(actor=teacher) is False  # idempotent
        assert fresh(b).status == W.OFFERED
        booking = fresh(b).accept_offer(actor=users("b"))
        assert booking.status == S.CONFIRMED
        check_seats(session)

    def test_offer_seat_repairs_a_free_seat_with_students_waiting(
        self, make_session: Any, users: Any, clock: Any, session_model: Any
    ) -> None:
        session = full_session(make_session, users)
        (a,) = join(session, "a", users=users, clock=clock)
        # A raw write (outside the services) frees a seat without offering it.
        session_model.objects.filter(pk=session.pk).update(capacity=3)
        assert fresh(a).offer_seat() is True
        check_seats(session)


class TestLeave:
    def test_leaving_while_waiting(self, make_session: Any, users: Any, clock: Any) -> None:
        session = full_session(make_session, users)
        (a,) = join(session, "a", users=users, clock=clock)
        left = services.leave_waitlist(a, actor=users("a"))
        assert (left.status, left.left_at) == (W.LEFT, NOW + timedelta(minutes=1))
        with pytest.raises(InvalidTransition):
            services.leave_waitlist(a, actor=users("a"))

    def test_leaving_an_offer_passes_the_seat_on(
        self, make_session: Any, users: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        services.leave_waitlist(fresh(a), actor=users("a"))
        assert (fresh(a).status, fresh(b).status) == (W.LEFT, W.OFFERED)
        check_seats(session)

    def test_leaving_the_last_offer_frees_the_seat_for_booking(
        self, make_session: Any, users: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        (a,) = join(session, "a", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        services.leave_waitlist(fresh(a), actor=users("a"))
        assert fresh(session).seats_taken == 1
        services.book_group_session(student=users("outsider"), session=session)
        check_seats(session)

    def test_others_cannot_take_a_student_off_but_the_teacher_can(
        self, make_session: Any, users: Any, teacher: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        (a,) = join(session, "a", users=users, clock=clock)
        with pytest.raises(NotAllowed):
            services.leave_waitlist(a, actor=users("b"))
        assert services.leave_waitlist(a, actor=teacher).status == W.LEFT


class TestExpiry:
    def test_the_command_expires_due_offers_and_is_idempotent(
        self, make_session: Any, users: Any, clock: Any, capsys: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        clock.shift(TTL - timedelta(seconds=1))
        call_command("liveclass_booking_expire_offers")
        assert fresh(a).status == W.OFFERED  # not due yet
        clock.shift(timedelta(seconds=1))
        call_command("liveclass_booking_expire_offers")
        assert "1 offer(s) expired, 1 seat(s) offered" in capsys.readouterr().out
        assert (fresh(a).status, fresh(b).status) == (W.EXPIRED, W.OFFERED)
        call_command("liveclass_booking_expire_offers")
        assert "0 offer(s) expired, 0 seat(s) offered" in capsys.readouterr().out
        assert fresh(b).status == W.OFFERED
        check_seats(session)

    def test_a_direct_booking_settles_a_due_offer_first(
        self, make_session: Any, users: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        clock.shift(TTL)
        with pytest.raises(SessionFull):  # the seat goes to b, who waited
            services.book_group_session(student=users("outsider"), session=session)
        assert (fresh(a).status, fresh(b).status) == (W.EXPIRED, W.OFFERED)
        clock.shift(TTL)
        booking = services.book_group_session(student=users("outsider"), session=session)
        assert booking.status == S.CONFIRMED  # nobody waits any more
        assert fresh(b).status == W.EXPIRED
        check_seats(session)

    def test_staff_can_expire_an_offer_now(
        self, make_session: Any, users: Any, staff: Any, clock: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        with pytest.raises(NotAllowed):
            services.expire_offer(fresh(a), actor=users("b"))
        assert services.expire_offer(fresh(a), actor=staff) is not None
        assert (fresh(a).status, fresh(b).status) == (W.EXPIRED, W.OFFERED)
        check_seats(session)

    def test_cancelling_the_session_closes_every_entry(
        self, make_session: Any, users: Any, teacher: Any, clock: Any, sent: Any
    ) -> None:
        session = full_session(make_session, users)
        a, b = join(session, "a", "b", users=users, clock=clock)
        services.cancel_booking(booking_of(session, "booker0", users), actor=users("booker0"))
        with sent:
            services.cancel_session(session, actor=teacher, reason="ill")
        assert [fresh(e).status for e in (a, b)] == [W.EXPIRED, W.EXPIRED]
        assert fresh(session).seats_taken == 0
        closed = sent.kwargs("waitlist_closed")
        assert sorted((kw["entry"].pk, kw["previous_status"]) for kw in closed) == [
            (a.pk, W.OFFERED),
            (b.pk, W.WAITING),
        ]
        assert {kw["reason"] for kw in closed} == {"session_cancelled"}
        with pytest.raises(OfferExpired):
            services.accept_offer(fresh(a), actor=users("a"))


class TestDeferredExpiry:
    def test_a_backend_that_defers_gets_a_task_at_the_offer_end(
        self, make_session: Any, users: Any, clock: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        tasks = pytest.importorskip("liveclass_booking.tasks")
        if tasks.task is None:
            pytest.skip("no tasks framework installed")
        dummy = "django.tasks.backends.dummy.DummyBackend"
        if tasks.task.__module__.startswith("django_tasks"):
            dummy = "django_tasks.backends.dummy.DummyBackend"
        with override_settings(
            TASKS={"default": {"BACKEND": dummy}},
            LIVECLASS_BOOKING_TASK_BACKEND="default",
        ):
            backend = tasks.task_backends["default"]
            backend.clear()
            session = full_session(make_session, users)
            (a,) = join(session, "a", users=users, clock=clock)
            with django_capture_on_commit_callbacks(execute=True):
                services.cancel_booking(
                    booking_of(session, "booker0", users), actor=users("booker0")
                )
            # (The outbox events of the change enqueue a notification pass too.)
            (result,) = [r for r in backend.results if r.task.name == "expire_offer"]
            assert result.task.run_after == fresh(a).offer_expires_at
            assert result.args == [str(a.pk)] or result.args == (str(a.pk),)
            assert tasks.expire_offer.call(str(a.pk)) is False  # not due yet: nothing happens
            clock.shift(TTL)
            assert tasks.expire_offer.call(str(a.pk)) is True
            assert fresh(a).status == W.EXPIRED
            assert tasks.expire_offer.call(str(a.pk)) is False  # idempotent
            backend.clear()

    def test_a_backend_without_deferral_gets_nothing(
        self, make_session: Any, users: Any, clock: Any, django_capture_on_commit_callbacks: Any
    ) -> None:
        tasks = pytest.importorskip("liveclass_booking.tasks")
        if tasks.task is None:
            pytest.skip("no tasks framework installed")
        immediate = (
            tasks.task.__module__.replace(".base", "") + ".backends.immediate.ImmediateBackend"
        )
        with override_settings(TASKS={"default": {"BACKEND": immediate}}):
            assert tasks.defer_offer_expiry(1, NOW + H) is False
