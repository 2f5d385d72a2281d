"""Random sequences of bookings, cancellations and waitlist operations against one small group
session, under a controlled clock, keep the waitlist rules (docs/concurrency.md and the waitlist):

- ``seats_taken`` == seats of pending + confirmed bookings + open offers <= capacity;
- offers go out in join order: every open offer joined before every entry still waiting;
- an offer never converts once its time is up (``offer_expired``, no booking), with or
  without an expiry job having run;
- no seat stays free while somebody waits (for a scheduled session that has not started);
- a booking or a join succeeds exactly when the session, settled as the call settles it,
  allows it, and is otherwise refused with the code that says why.

Every operation commits for real (the test is transactional), so that the signals, offer
deadlines and dispatcher passes that run after a commit run here too.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db.models import Count, Sum
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from model_bakery import baker

from liveclass_booking import services, signals
from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES, OPEN_WAITLIST_STATUSES
from liveclass_booking.choices import WaitlistStatus as W
from liveclass_booking.exceptions import (
    AlreadyBooked,
    BookingError,
    InvalidTransition,
    OfferExpired,
)
from liveclass_booking.models import (
    WAITLIST_QUEUE_ORDER,
    SessionWaitlist,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from tests.conftest import grant_teaching

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
#: A short offer lifetime, so that offers run out within a run ...
TTL = timedelta(hours=3)
#: ... and a start far enough for a few lifetimes, near enough that some runs reach it (offers
#: made late end at the start).
START = NOW + timedelta(hours=10)
#: Every step moves the clock on a little: joins get distinct times, as they do for real.
TICK = timedelta(seconds=1)
STUDENTS = 5


class WaitlistMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.traveller = time_machine.travel(NOW, tick=False)
        self.clock = self.traveller.start()
        users = get_user_model().objects
        tag = uuid.uuid4().hex[:8]
        self.teacher = grant_teaching(users.create_user(username=f"t{tag}", password="x"))
        self.students = [
            users.create_user(username=f"s{i}{tag}", password="x") for i in range(STUDENTS)
        ]
        self.course = baker.make(get_course_model())
        self.session: Any = None
        #: Join order as the machine saw it: entry pk -> number of the successful join.
        self.join_order: dict[Any, int] = {}
        self.joins = 0
        self.raised = False
        #: What the signals sent after each commit said: each entry's last offer and the
        #: last deadline set for it.
        self.offered: dict[Any, Any] = {}
        self.deadlines: dict[Any, Any] = {}
        signals.waitlist_offered.connect(self.heard_offer)
        signals.offer_deadline_set.connect(self.heard_deadline)

    def heard_offer(self, sender: Any, entry: Any, **kwargs: Any) -> None:
        self.offered[entry.pk] = entry.offered_at

    def heard_deadline(self, sender: Any, entry_pk: Any, at: Any, **kwargs: Any) -> None:
        self.deadlines[entry_pk] = at

    def teardown(self) -> None:
        signals.waitlist_offered.disconnect(self.heard_offer)
        signals.offer_deadline_set.disconnect(self.heard_deadline)
        self.traveller.stop()

    @initialize(capacity=st.integers(2, 3), waiting=st.integers(0, STUDENTS - 2))
    def create_session(self, capacity: int, waiting: int) -> None:
        self.session = services.create_session(
            teacher=self.teacher,
            course=self.course,
            title="small class",
            start_at_utc=START,
            end_at_utc=START + timedelta(hours=1),
            capacity=capacity,
        )
        # Start full (the first students hold the seats) with some of the others in the queue,
        # so that the waitlist is busy from the first step.
        for student in self.students[:capacity]:
            services.book_group_session(student=student, session=self.session)
        for student in self.students[capacity : capacity + waiting]:
            self.join_one(student)

    # Helpers ---------------------------------------------------------------------------------

    def tick(self) -> None:
        self.clock.shift(TICK)

    def expect(self, expected: str, action: Any) -> Any:
        """Run ``action``: it succeeds if ``expected`` is ``ok``, else it is refused with that
        code."""
        try:
            result, refused = action(), None
        except BookingError as exc:
            result, refused = None, exc.code
        if refused is not None:
            assert refused == expected, f"refused with {refused}, expected {expected}"
            return None
        assert expected == "ok", f"succeeded, expected {expected}"
        return result

    def settled(self) -> tuple[int, dict[Any, str]]:
        """The session as a call settles it now: offers past their time expire, and free seats
        go to the students waiting, in queue order. Returns the seats then still free and each
        student's waitlist status then."""
        now = timezone.now()
        session = self.current()
        booked = self.active_bookings().aggregate(total=Sum("seats_reserved"))["total"] or 0
        entries = list(self.entries().order_by(*WAITLIST_QUEUE_ORDER))
        status = {entry.student_user_id: entry.status for entry in entries}
        live = 0
        for entry in entries:
            if entry.status == W.OFFERED and entry.offer_expires_at <= now:
                status[entry.student_user_id] = W.EXPIRED
            elif entry.status == W.OFFERED:
                live += 1
        free = session.capacity - booked - live
        if session.start_at_utc > now:
            for entry in entries:
                if free > 0 and entry.status == W.WAITING:
                    status[entry.student_user_id] = W.OFFERED
                    free -= 1
        return free, status

    def started(self) -> bool:
        return bool(self.session.start_at_utc <= timezone.now())

    def entry_of(self, student: Any) -> Any:
        return SessionWaitlist.objects.filter(session=self.session, student_user=student).first()

    def active_bookings(self, student: Any = None) -> Any:
        bookings = get_booking_model().objects.filter(
            session=self.session, status__in=ACTIVE_BOOKING_STATUSES
        )
        return bookings if student is None else bookings.filter(student_user=student)

    def current(self) -> Any:
        return get_session_model().objects.get(pk=self.session.pk)

    def pick(self, n: int, candidates: list[Any], fallback: bool = True) -> Any:
        """The ``n``-th (cyclically) of the students the rule can act on; of all students when
        there is none and ``fallback`` (the refusals are worth trying too)."""
        if not candidates:
            if not fallback:
                return None
            candidates = self.students
        return candidates[n % len(candidates)]

    def students_with(self, pks: Any) -> list[Any]:
        wanted = set(pks)
        return [s for s in self.students if s.pk in wanted]

    def entries(self, *statuses: str) -> Any:
        entries = SessionWaitlist.objects.filter(session=self.session)
        return entries.filter(status__in=statuses) if statuses else entries

    def join_one(self, student: Any, tick: bool = True) -> None:
        if tick:
            self.tick()
        entry = services.join_waitlist(student=student, session=self.session)
        assert entry.status == W.WAITING
        self.joins += 1
        self.join_order[entry.pk] = self.joins

    # Rules -----------------------------------------------------------------------------------

    @rule(student=st.integers(0, STUDENTS - 1), seats=st.integers(1, 2))
    def book(self, student: int, seats: int) -> None:
        self.tick()
        user = self.students[student]
        free, _ = self.settled()
        if self.active_bookings(user).exists():
            expected = "already_booked"
        elif self.started():
            expected = "session_not_bookable"
        else:
            expected = "ok" if free >= seats else "session_full"
        booking = self.expect(
            expected,
            lambda: services.book_group_session(student=user, session=self.session, seats=seats),
        )
        if booking is not None:
            # A direct booking never takes a seat owed to the queue: it succeeds only when,
            # with every free seat offered first, nobody was left waiting.
            waiting = SessionWaitlist.objects.filter(session=self.session, status=W.WAITING)
            assert not waiting.exists(), "a direct booking jumped the waitlist"

    @rule(n=st.integers(0, STUDENTS - 1))
    def cancel(self, n: int) -> None:
        self.tick()
        booked = self.students_with(self.active_bookings().values_list("student_user", flat=True))
        student = self.pick(n, booked, fallback=False)
        if student is not None:
            booking = self.active_bookings(student).get()
            services.cancel_booking(booking, actor=self.teacher, reason="stateful")

    @rule(n=st.integers(0, STUDENTS - 1))
    def join(self, n: int) -> None:
        busy = {
            *self.active_bookings().values_list("student_user", flat=True),
            *self.entries(*OPEN_WAITLIST_STATUSES).values_list("student_user", flat=True),
        }
        student = self.pick(n, [s for s in self.students if s.pk not in busy])
        self.tick()
        free, status = self.settled()
        if self.started():
            expected = "session_not_bookable"
        elif self.active_bookings(student).exists():
            expected = "already_booked"
        elif status.get(student.pk) in OPEN_WAITLIST_STATUSES:
            expected = "already_waitlisted"
        elif free > 0:
            expected = "seats_available"
        else:
            expected = "ok"
        self.expect(expected, lambda: self.join_one(student, tick=False))

    @rule(n=st.integers(0, STUDENTS - 1))
    def leave(self, n: int) -> None:
        self.tick()
        queued = self.entries(*OPEN_WAITLIST_STATUSES).values_list("student_user", flat=True)
        student = self.pick(n, self.students_with(queued))
        entry = self.entry_of(student)
        if entry is None:
            return
        was_open = entry.status in OPEN_WAITLIST_STATUSES
        try:
            services.leave_waitlist(entry, actor=student)
        except InvalidTransition:
            assert not was_open
        else:
            assert was_open
            assert entry.status == W.LEFT

    @rule(n=st.integers(0, STUDENTS - 1))
    def accept(self, n: int) -> None:
        self.tick()
        offered = self.entries(W.OFFERED).values_list("student_user", flat=True)
        listed = self.entries().values_list("student_user", flat=True)
        self.check_accept(self.pick(n, self.students_with(offered) or self.students_with(listed)))

    @rule(n=st.integers(0, STUDENTS - 1), late=st.booleans())
    def accept_at_the_deadline(self, n: int, late: bool) -> None:
        """Move the clock to an open offer's end (or a second before) and accept it there, with
        no expiry job or settling in between."""
        offered = self.entries(W.OFFERED).values_list("student_user", flat=True)
        user = self.pick(n, self.students_with(offered), fallback=False)
        if user is None:
            return
        expires = self.entry_of(user).offer_expires_at
        target = expires if late else expires - TICK
        if target > timezone.now():
            self.clock.shift(target - timezone.now())
        self.check_accept(user)

    def check_accept(self, user: Any) -> None:
        """Accept ``user``'s entry and check the outcome against the entry as it was."""
        entry = self.entry_of(user)
        if entry is None:
            return
        now = timezone.now()
        status, expires = entry.status, entry.offer_expires_at
        was_offered = entry.offered_at is not None
        bookings_before = set(self.active_bookings(user).values_list("pk", flat=True))
        try:
            booking = services.accept_offer(entry, actor=user)
        except OfferExpired:
            # Only an offer whose time is up (recorded or not) is refused as expired.
            assert status == W.EXPIRED or (status == W.OFFERED and expires <= now)
            assert SessionWaitlist.objects.get(pk=entry.pk).status == W.EXPIRED
        except AlreadyBooked:
            # The student also booked directly while holding the offer (see
            # test_booking_directly_while_holding_an_offer_does_not_hold_two_seats below).
            assert status == W.OFFERED
            assert expires > now
            assert bookings_before
        except InvalidTransition:
            # Nothing to accept: waiting, accepted, left, or closed without ever being offered.
            assert status != W.OFFERED
            assert status != W.EXPIRED or not was_offered
        else:
            # An offer converts only while it is open.
            assert status == W.OFFERED, f"a {status} entry converted"
            assert expires > now, f"an offer converted at {now}, after it expired at {expires}"
            fresh = SessionWaitlist.objects.get(pk=entry.pk)
            assert (fresh.status, fresh.booking_id) == (W.ACCEPTED, booking.pk)
            assert booking.student_user_id == user.pk
            assert booking.seats_reserved == 1
            return
        # A refused accept never leaves a booking behind.
        after = set(self.active_bookings(user).values_list("pk", flat=True))
        assert after == bookings_before

    @rule(delta=st.sampled_from([timedelta(minutes=20), timedelta(hours=1), TTL]))
    def advance_clock(self, delta: timedelta) -> None:
        self.clock.shift(delta)

    @rule()
    def expire(self) -> None:
        self.tick()
        services.expire_due_offers()
        now = timezone.now()
        due = SessionWaitlist.objects.filter(
            session=self.session, status=W.OFFERED, offer_expires_at__lte=now
        )
        assert not due.exists(), "expire_due_offers left an offer past its time open"
        if self.session.start_at_utc <= now:
            still_open = SessionWaitlist.objects.filter(
                session=self.session, status__in=OPEN_WAITLIST_STATUSES
            )
            assert not still_open.exists(), "entries of a started session stayed open"

    @precondition(lambda self: not self.raised)
    @rule()
    def raise_capacity(self) -> None:
        # Once, by one seat: more seats than students would leave nobody waiting.
        self.tick()
        self.raised = True
        capacity = self.current().capacity + 1
        services.update_session(self.session, actor=self.teacher, capacity=capacity)

    # Invariants ------------------------------------------------------------------------------

    @invariant()
    def seats_taken_counts_bookings_and_open_offers(self) -> None:
        session = self.current()
        booked = self.active_bookings().aggregate(total=Sum("seats_reserved"))["total"] or 0
        offered = SessionWaitlist.objects.filter(session=session, status=W.OFFERED).count()
        assert session.seats_taken == booked + offered
        assert 0 <= session.seats_taken <= session.capacity

    @invariant()
    def offers_follow_join_order(self) -> None:
        open_entries = SessionWaitlist.objects.filter(
            session=self.session, status__in=OPEN_WAITLIST_STATUSES
        )
        offered = [e for e in open_entries if e.status == W.OFFERED]
        waiting = [e for e in open_entries if e.status == W.WAITING]
        if offered and waiting:
            assert max((e.created_at, e.pk) for e in offered) < min(
                (e.created_at, e.pk) for e in waiting
            )
            # The same in the order the machine saw the joins succeed (a rejoin counts anew).
            assert max(self.join_order[e.pk] for e in offered) < min(
                self.join_order[e.pk] for e in waiting
            )

    @invariant()
    def no_free_seat_while_somebody_waits(self) -> None:
        session = self.current()
        if (
            session.status == "scheduled"
            and session.start_at_utc > timezone.now()
            and session.seats_taken < session.capacity
        ):
            waiting = SessionWaitlist.objects.filter(session=session, status=W.WAITING)
            assert not waiting.exists(), "a free seat was not offered to the waitlist"

    @invariant()
    def every_open_offer_was_announced_after_its_commit(self) -> None:
        for entry in self.entries(W.OFFERED):
            assert self.offered.get(entry.pk) == entry.offered_at, "an offer was not signalled"
            assert self.deadlines.get(entry.pk) == entry.offer_expires_at, (
                "an offer's deadline was not announced"
            )

    @invariant()
    def one_active_booking_per_student(self) -> None:
        doubled = (
            self.active_bookings().values("student_user").annotate(n=Count("pk")).filter(n__gt=1)
        )
        assert not doubled.exists()

    @invariant()
    def accepted_entries_point_at_their_booking(self) -> None:
        for entry in SessionWaitlist.objects.filter(session=self.session, status=W.ACCEPTED):
            assert entry.booking is not None
            assert entry.booking.student_user_id == entry.student_user_id
            assert entry.accepted_at is not None
            assert entry.offered_at is not None
            assert entry.offer_expires_at is not None
            assert entry.accepted_at < entry.offer_expires_at  # converted while open


@pytest.mark.django_db(transaction=True)
@override_settings(LIVECLASS_BOOKING_WAITLIST_OFFER_TTL=TTL)
def test_random_waitlist_sequences_keep_the_rules() -> None:
    run_state_machine_as_test(
        WaitlistMachine,
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )


# Bugs the machine ran into, kept as plain scenarios.


def _full_session_with_queue(make_session: Any, user_model: Any, start: datetime) -> Any:
    """A session of capacity 2 booked by b0 and b1; ``a`` is yet to join."""
    session = make_session(capacity=2, start_at_utc=start)
    users = {
        name: user_model.objects.create_user(username=name, password="x")
        for name in ("b0", "b1", "a")
    }
    bookings = [
        services.book_group_session(student=users[name], session=session) for name in ("b0", "b1")
    ]
    return session, users, bookings


@pytest.mark.parametrize("closed_by", ["session_started", "session_cancelled"])
@pytest.mark.django_db
def test_accepting_an_entry_closed_while_waiting_is_refused(
    closed_by: str, make_session: Any, user_model: Any, teacher: Any
) -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        session, users, _ = _full_session_with_queue(make_session, user_model, START)
        entry = services.join_waitlist(student=users["a"], session=session)
        if closed_by == "session_started":
            clock.shift(START - NOW + TICK)
            assert services.expire_due_offers().closed == 1
        else:
            services.cancel_session(session, actor=teacher)
        entry.refresh_from_db()
        assert (entry.status, entry.offered_at) == (W.EXPIRED, None)
        with pytest.raises((OfferExpired, InvalidTransition)):
            services.accept_offer(entry, actor=users["a"])
        assert not get_booking_model().objects.filter(student_user=users["a"]).exists()


@pytest.mark.django_db
def test_booking_directly_while_holding_an_offer_does_not_hold_two_seats(
    make_session: Any, user_model: Any, teacher: Any
) -> None:
    with time_machine.travel(NOW, tick=False) as clock:
        session, users, (b0, b1) = _full_session_with_queue(make_session, user_model, START)
        entry = services.join_waitlist(student=users["a"], session=session)
        services.cancel_booking(b0, actor=teacher)  # a is offered b0's seat
        entry.refresh_from_db()
        assert entry.status == W.OFFERED
        clock.shift(TICK)
        services.cancel_booking(b1, actor=teacher)  # nobody else waits: this seat stays free
        clock.shift(TICK)
        with contextlib.suppress(BookingError):  # refusing (accept the offer) would do too
            services.book_group_session(student=users["a"], session=session)
        entry.refresh_from_db()
        session.refresh_from_db()
        held = (
            get_booking_model()
            .objects.filter(
                session=session, student_user=users["a"], status__in=ACTIVE_BOOKING_STATUSES
            )
            .aggregate(total=Sum("seats_reserved"))["total"]
            or 0
        ) + (entry.status == W.OFFERED)
        assert held == 1, f"a holds {held} seats: a booking and an open offer"
        assert session.seats_taken == 1  # the other seat is free for the next student
