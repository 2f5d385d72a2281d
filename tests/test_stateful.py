"""Random sequences of booking operations against a model of what each should do: every
operation the model allows succeeds with the outcome it predicts, every other one is refused
with the code it predicts, and the seat invariant holds throughout (docs/concurrency.md:
seats_taken == seats of pending + confirmed bookings <= capacity, for every session).

Each operation commits for real (the test is transactional), so what happens after a commit
happens too: each change sends its signal once, and each transaction that wrote outbox events
is covered by a dispatcher pass on the task backend: one it enqueued, or one enqueued before
that runs after its commit (``LIVECLASS_BOOKING_DISPATCH_INTERVAL``)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from model_bakery import baker

from liveclass_booking import services, signals
from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES
from liveclass_booking.choices import BookingStatus as S
from liveclass_booking.exceptions import BookingError
from liveclass_booking.models import (
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from tests.conftest import grant_teaching

#: The signal of each status a booking comes to.
SIGNAL_FOR = {
    S.PENDING: signals.booking_requested,
    S.CONFIRMED: signals.booking_confirmed,
    S.DECLINED: signals.booking_declined,
    S.CANCELLED: signals.booking_cancelled,
    S.RESCHEDULED: signals.booking_rescheduled,
}


@dataclass
class Expected:
    """The model's booking: who, where, how many seats, and its status."""

    pk: Any
    student: int
    session: int
    seats: int
    status: str


class AfterCommit:
    """What ran after commits: the booking signals (booking pk, status), when outbox events
    were last announced (after the commit that wrote them), and the dispatcher passes
    enqueued on the task backend."""

    def __init__(self) -> None:
        self.signals: list[tuple[Any, str]] = []
        self.announced: Any = None
        self.guard = threading.Lock()
        self.receivers = []
        for status, signal in SIGNAL_FOR.items():

            def receive(sender: Any, status: str = status, **kwargs: Any) -> None:
                with self.guard:
                    self.signals.append((kwargs["booking"].pk, status))

            signal.connect(receive, weak=False)
            self.receivers.append((signal, receive))

        def announce(sender: Any, **kwargs: Any) -> None:
            self.announced = timezone.now()

        signals.outbox_written.connect(announce, weak=False)
        self.receivers.append((signals.outbox_written, announce))
        from liveclass_booking import tasks

        self.backend = tasks.task_backends["default"] if tasks.task is not None else None

    def passes(self) -> list[Any]:
        """The dispatcher passes enqueued so far (none without a tasks framework)."""
        if self.backend is None:
            return []
        return [r for r in self.backend.results if r.task.name == "dispatch_notifications"]

    def covered(self, before: int) -> bool:
        """Whether the last announced commit is covered by a pass: one enqueued since
        ``before`` passes were, to run at once, or any that runs after the announcement."""
        passes = self.passes()
        later = [p.task.run_after for p in passes if p.task.run_after is not None]
        return any(p.task.run_after is None for p in passes[before:]) or any(
            at > self.announced for at in later
        )

    def close(self) -> None:
        for signal, receive in self.receivers:
            signal.disconnect(receive)


class SeatMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        users = get_user_model().objects
        tag = uuid.uuid4().hex[:8]
        self.teacher = grant_teaching(users.create_user(username=f"t{tag}", password="x"))
        self.students = [users.create_user(username=f"s{i}{tag}", password="x") for i in range(4)]
        course = baker.make(get_course_model())
        start = timezone.now() + timedelta(days=3)
        self.sessions = [
            services.create_session(
                teacher=self.teacher,
                course=course,
                title=f"class {i}",
                start_at_utc=start + timedelta(days=i),
                end_at_utc=start + timedelta(days=i, hours=1),
                capacity=4,
            )
            for i in range(2)
        ]
        self.policy = TeacherBookingPolicy.objects.create(teacher=self.teacher)
        self.capacity = [4, 4]
        self.bookings: list[Expected] = []
        self.after = AfterCommit()

    def teardown(self) -> None:
        self.after.close()

    # The model -------------------------------------------------------------------------------

    def held(self, session: int) -> int:
        return sum(
            b.seats
            for b in self.bookings
            if b.session == session and b.status in ACTIVE_BOOKING_STATUSES
        )

    def holds(self, student: int, session: int) -> bool:
        return any(
            b.student == student and b.session == session and b.status in ACTIVE_BOOKING_STATUSES
            for b in self.bookings
        )

    def new_status(self) -> str:
        return S.PENDING if self.policy.requires_approval_for_group else S.CONFIRMED

    def run(self, expected: str, action: Any, heard: list[tuple[Any, str]] | None = None) -> Any:
        """Run ``action``: it succeeds if ``expected`` is ``ok``, else it is refused with that
        code and sends nothing. A success sends exactly the signals ``heard`` (booking pk
        and status; the result's pk where it is None) after its commit and, if it sent any,
        announces its outbox events, covered by a dispatcher pass."""
        signals_before, passes_before = len(self.after.signals), len(self.after.passes())
        self.after.announced = None
        try:
            result, refused = action(), None
        except BookingError as exc:
            result, refused = None, exc.code
        if refused is not None:
            assert refused == expected, f"refused with {refused}, expected {expected}"
            assert len(self.after.signals) == signals_before, "a refusal sent a signal"
            assert len(self.after.passes()) == passes_before, "a refusal enqueued a pass"
            assert self.after.announced is None, "a refusal announced outbox events"
            return None
        assert expected == "ok", f"succeeded, expected {expected}"
        if heard is not None:
            assert self.after.signals[signals_before:] == [
                (result.pk if pk is None else pk, status) for pk, status in heard
            ]
            if heard and self.after.backend:  # every change here tells somebody
                assert self.after.announced is not None, "no outbox events announced"
                assert self.after.covered(passes_before), "no dispatcher pass after the commit"
        return result

    # Rules -----------------------------------------------------------------------------------

    @rule(approval=st.booleans())
    def set_group_approval(self, approval: bool) -> None:
        self.policy.requires_approval_for_group = approval
        self.policy.save()

    @rule(student=st.integers(0, 3), session=st.integers(0, 1), seats=st.integers(1, 3))
    def book(self, student: int, session: int, seats: int) -> None:
        if self.holds(student, session):
            expected = "already_booked"
        elif self.capacity[session] - self.held(session) < seats:
            expected = "session_full"
        else:
            expected = "ok"
        status = self.new_status()
        booking = self.run(
            expected,
            lambda: services.book_group_session(
                student=self.students[student], session=self.sessions[session], seats=seats
            ),
            heard=[(None, status)],
        )
        if booking is not None:
            assert (booking.status, booking.seats_reserved) == (status, seats)
            self.bookings.append(Expected(booking.pk, student, session, seats, status))

    def decide(self, data: Any, allowed: tuple[str, ...], new: str, action: Any) -> None:
        """Apply ``action`` to a booking drawn from the model: it succeeds (the booking becomes
        ``new``) if the booking's status is one of ``allowed``."""
        if not self.bookings:
            return
        booking = data.draw(st.sampled_from(self.bookings))
        expected = "ok" if booking.status in allowed else "invalid_transition"
        row = get_booking_model().objects.get(pk=booking.pk)
        done = self.run(expected, lambda: action(row), heard=[(booking.pk, new)])
        if done is not None:
            assert done.status == new
            booking.status = new

    @rule(data=st.data())
    def approve(self, data: Any) -> None:
        self.decide(
            data,
            (S.PENDING,),
            S.CONFIRMED,
            lambda row: services.approve_booking(row, actor=self.teacher),
        )

    @rule(data=st.data())
    def decline(self, data: Any) -> None:
        self.decide(
            data,
            (S.PENDING,),
            S.DECLINED,
            lambda row: services.decline_booking(row, actor=self.teacher),
        )

    @rule(data=st.data(), by_teacher=st.booleans())
    def cancel(self, data: Any, by_teacher: bool) -> None:
        def cancel(row: Any) -> Any:
            actor = self.teacher if by_teacher else row.student_user
            return services.cancel_booking(row, actor=actor)

        self.decide(data, (S.PENDING, S.CONFIRMED), S.CANCELLED, cancel)

    @rule(data=st.data(), session=st.integers(0, 1))
    def reschedule(self, data: Any, session: int) -> None:
        if not self.bookings:
            return
        old = data.draw(st.sampled_from(self.bookings))
        if old.status != S.CONFIRMED:
            expected = "invalid_transition"
        elif old.session == session:
            expected = "invalid"
        elif self.holds(old.student, session):
            expected = "already_booked"
        elif self.capacity[session] - self.held(session) < old.seats:
            expected = "session_full"
        else:
            expected = "ok"
        status = self.new_status()  # moved by its student: under the target's approval
        row = get_booking_model().objects.get(pk=old.pk)
        new = self.run(
            expected,
            lambda: services.reschedule_booking(
                row, actor=row.student_user, session=self.sessions[session]
            ),
            heard=[(old.pk, S.RESCHEDULED), (None, status)],
        )
        if new is not None:
            assert (new.status, new.session_id, new.seats_reserved) == (
                status,
                self.sessions[session].pk,
                old.seats,
            )
            assert new.rescheduled_from_id == old.pk
            old.status = S.RESCHEDULED
            self.bookings.append(Expected(new.pk, old.student, session, old.seats, status))

    @rule(session=st.integers(0, 1), capacity=st.integers(0, 6))
    def change_capacity(self, session: int, capacity: int) -> None:
        expected = "invalid" if capacity < self.held(session) else "ok"
        changed = self.run(
            expected,
            lambda: services.update_session(
                self.sessions[session], actor=self.teacher, capacity=capacity
            ),
            heard=[],  # nobody is waiting: nothing to offer, nobody to tell
        )
        if changed is not None:
            assert changed.capacity == capacity
            self.capacity[session] = capacity

    # Invariants ------------------------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self) -> None:
        statuses = dict(
            get_booking_model()
            .objects.filter(pk__in=[b.pk for b in self.bookings])
            .values_list("pk", "status")
        )
        assert statuses == {b.pk: b.status for b in self.bookings}

    @invariant()
    def seats_taken_matches_active_bookings(self) -> None:
        for index, session in enumerate(
            get_session_model().objects.filter(pk__in=[s.pk for s in self.sessions]).order_by("pk")
        ):
            held = (
                get_booking_model()
                .objects.filter(session=session, status__in=ACTIVE_BOOKING_STATUSES)
                .aggregate(total=Sum("seats_reserved"))["total"]
                or 0
            )
            assert session.seats_taken == held == self.held(index)
            assert session.capacity == self.capacity[index]
            assert 0 <= session.seats_taken <= session.capacity


@pytest.mark.django_db(transaction=True)
def test_random_operation_sequences_do_what_the_model_says() -> None:
    # A task backend of the test's own: the passes an earlier test's threads enqueued on the
    # default one (each thread has its own backend object, whose queue this test cannot
    # see) count no more, so every pass that covers a commit here is one it can see.
    with override_settings(TASKS={"default": dict(django_settings.TASKS["default"])}):
        run_state_machine_as_test(
            SeatMachine,
            settings=settings(
                max_examples=40,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
                database=None,
            ),
        )
