"""Random sequences of booking operations keep the seat invariant (docs/concurrency.md):
seats_taken == seats of pending + confirmed bookings <= capacity, for every session."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from model_bakery import baker

from liveclass_booking import services
from liveclass_booking.choices import ACTIVE_BOOKING_STATUSES
from liveclass_booking.exceptions import BookingError
from liveclass_booking.models import (
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from tests.conftest import grant_teaching


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
        self.bookings: list[Any] = []

    def attempt(self, action: Any) -> Any:
        try:
            return action()
        except BookingError:
            return None  # a refusal with a stable error code is a valid outcome

    @rule(approval=st.booleans())
    def set_group_approval(self, approval: bool) -> None:
        self.policy.requires_approval_for_group = approval
        self.policy.save()

    @rule(student=st.integers(0, 3), session=st.integers(0, 1), seats=st.integers(1, 3))
    def book(self, student: int, session: int, seats: int) -> None:
        booking = self.attempt(
            lambda: services.book_group_session(
                student=self.students[student], session=self.sessions[session], seats=seats
            )
        )
        if booking is not None:
            self.bookings.append(booking)

    @rule(data=st.data())
    def approve(self, data: Any) -> None:
        if self.bookings:
            booking = data.draw(st.sampled_from(self.bookings))
            self.attempt(lambda: services.approve_booking(booking, actor=self.teacher))

    @rule(data=st.data())
    def decline(self, data: Any) -> None:
        if self.bookings:
            booking = data.draw(st.sampled_from(self.bookings))
            self.attempt(lambda: services.decline_booking(booking, actor=self.teacher))

    @rule(data=st.data(), by_teacher=st.booleans())
    def cancel(self, data: Any, by_teacher: bool) -> None:
        if self.bookings:
            booking = data.draw(st.sampled_from(self.bookings))
            actor = self.teacher if by_teacher else booking.student_user
            self.attempt(lambda: services.cancel_booking(booking, actor=actor))

    @rule(data=st.data(), session=st.integers(0, 1))
    def reschedule(self, data: Any, session: int) -> None:
        if self.bookings:
            booking = data.draw(st.sampled_from(self.bookings))
            new = self.attempt(
                lambda: services.reschedule_booking(
                    booking, actor=booking.student_user, session=self.sessions[session]
                )
            )
            if new is not None:
                self.bookings.append(new)

    @rule(session=st.integers(0, 1), capacity=st.integers(0, 6))
    def change_capacity(self, session: int, capacity: int) -> None:
        self.attempt(
            lambda: services.update_session(
                self.sessions[session], actor=self.teacher, capacity=capacity
            )
        )

    @invariant()
    def seats_taken_matches_active_bookings(self) -> None:
        for session in get_session_model().objects.filter(
            pk__in=[s.pk for s in getattr(self, "sessions", [])]
        ):
            held = (
                get_booking_model()
                .objects.filter(session=session, status__in=ACTIVE_BOOKING_STATUSES)
                .aggregate(total=Sum("seats_reserved"))["total"]
                or 0
            )
            assert session.seats_taken == held
            assert 0 <= session.seats_taken <= session.capacity


@pytest.mark.django_db
def test_random_operation_sequences_keep_seats_exact() -> None:
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
