"""Group sessions and their seats, through the services (docs/booking-rules.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings

from liveclass_booking import services, signals
from liveclass_booking.choices import BookingStatus as S
from liveclass_booking.exceptions import (
    AlreadyBooked,
    CancelWindowClosed,
    InvalidInput,
    InvalidTransition,
    NaiveDatetime,
    NotAllowed,
    SessionFull,
    SessionNotBookable,
)
from liveclass_booking.models import BookingEvent, SessionWaitlist, TeacherBookingPolicy

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


SIGNAL_NAMES = (
    "booking_requested",
    "booking_confirmed",
    "booking_cancelled",
    "booking_declined",
    "booking_rescheduled",
    "booking_attendance_marked",
    "session_cancelled",
)


class SignalLog:
    """Records the library's signals; ``with log:`` commits (runs on-commit callbacks) at exit."""

    def __init__(self, capture_factory: Any) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._factory = capture_factory
        self._cm: Any = None

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

    def __enter__(self) -> SignalLog:
        self._cm = self._factory(execute=True)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


@pytest.fixture
def capture(django_capture_on_commit_callbacks: Any) -> Any:
    log = SignalLog(django_capture_on_commit_callbacks)
    receivers = {}
    for name in SIGNAL_NAMES:

        def receive(sender: Any, _name: str = name, **kwargs: Any) -> None:
            log.sent.append((_name, kwargs))

        receivers[name] = receive
        getattr(signals, name).connect(receive, weak=False)
    yield log
    for name, receive in receivers.items():
        getattr(signals, name).disconnect(receive)


def seats(session: Any) -> int:
    session.refresh_from_db()
    return int(session.seats_taken)


class TestCreateSession:
    def test_teacher_creates_a_session_with_their_zone_snapshot(
        self, teacher: Any, course: Any
    ) -> None:
        teacher.timezone = "America/New_York"
        session = services.create_session(
            teacher=teacher,
            course=course,
            title="Algebra",
            start_at_utc=NOW + timedelta(days=2),
            end_at_utc=NOW + timedelta(days=2, hours=1),
            capacity=5,
            actor=teacher,
        )
        assert session.status == "scheduled"
        assert session.timezone_snapshot == "America/New_York"
        assert session.seats_taken == 0

    def test_a_user_who_cannot_teach_is_refused(self, student: Any, course: Any) -> None:
        with pytest.raises(NotAllowed):
            services.create_session(
                teacher=student,
                course=course,
                title="x",
                start_at_utc=NOW + timedelta(days=1),
                end_at_utc=NOW + timedelta(days=1, hours=1),
                capacity=3,
            )

    def test_naive_and_invalid_times_are_refused(self, teacher: Any, course: Any) -> None:
        with pytest.raises(NaiveDatetime):
            services.create_session(
                teacher=teacher,
                course=course,
                title="x",
                start_at_utc=datetime(2027, 2, 1, 10),  # noqa: DTZ001 - the point of the test
                end_at_utc=NOW + timedelta(days=30),
                capacity=3,
            )
        with pytest.raises(InvalidInput, match="must end after it starts"):
            services.create_session(
                teacher=teacher,
                course=course,
                title="x",
                start_at_utc=NOW + timedelta(days=2),
                end_at_utc=NOW + timedelta(days=1),
                capacity=3,
            )
        with pytest.raises(InvalidInput, match="future"):
            services.create_session(
                teacher=teacher,
                course=course,
                title="x",
                start_at_utc=NOW - timedelta(hours=1),
                end_at_utc=NOW + timedelta(hours=1),
                capacity=3,
            )


class TestGroupBooking:
    def test_booking_is_confirmed_and_takes_a_seat(
        self, session: Any, student: Any, capture: Any
    ) -> None:
        with capture:
            booking = services.book_group_session(
                student=student, session=session, seats=2, actor=student
            )
            assert capture.names == []  # nothing is sent before the commit
        assert booking.status == S.CONFIRMED
        assert seats(session) == 2
        event = BookingEvent.objects.get(booking=booking)
        assert (event.from_status, event.to_status, event.actor_id) == ("", "confirmed", student.pk)
        assert capture.names == ["booking_confirmed"]

    def test_approval_policy_makes_it_pending_and_holds_seats(
        self, session: Any, student: Any, teacher: Any, capture: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
        with capture:
            booking = services.book_group_session(student=student, session=session)
        assert booking.status == S.PENDING
        assert seats(session) == 1
        assert capture.names == ["booking_requested"]

    def test_second_active_booking_is_already_booked(self, session: Any, student: Any) -> None:
        services.book_group_session(student=student, session=session)
        with pytest.raises(AlreadyBooked):
            services.book_group_session(student=student, session=session)
        assert seats(session) == 1

    def test_full_session_names_the_numbers(
        self, make_session: Any, student: Any, other_student: Any
    ) -> None:
        session = make_session(capacity=2)
        services.book_group_session(student=other_student, session=session)
        with pytest.raises(SessionFull, match="1 of 2 seats free; you asked for 2"):
            services.book_group_session(student=student, session=session, seats=2)
        assert seats(session) == 1

    def test_cancelled_and_started_sessions_are_not_bookable(
        self, session: Any, student: Any, teacher: Any, frozen: Any
    ) -> None:
        frozen.move_to(session.start_at_utc + timedelta(minutes=1))
        with pytest.raises(SessionNotBookable, match="started"):
            services.book_group_session(student=student, session=session)
        frozen.move_to(NOW)
        services.cancel_session(session, actor=teacher)
        with pytest.raises(SessionNotBookable, match="cancelled"):
            services.book_group_session(student=student, session=session)

    def test_zero_seats_is_invalid(self, session: Any, student: Any) -> None:
        with pytest.raises(InvalidInput):
            services.book_group_session(student=student, session=session, seats=0)

    @override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.NobodyBooks")
    def test_resolver_can_refuse(self, session: Any, student: Any) -> None:
        with pytest.raises(NotAllowed):
            services.book_group_session(student=student, session=session)
        assert seats(session) == 0

    def test_a_student_cannot_book_for_someone_else(
        self, session: Any, student: Any, other_student: Any
    ) -> None:
        with pytest.raises(NotAllowed):
            services.book_group_session(student=student, session=session, actor=other_student)


class TestDecisionsAndCancellation:
    @pytest.fixture
    def pending(self, session: Any, student: Any, teacher: Any) -> Any:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
        return services.book_group_session(student=student, session=session)

    def test_teacher_approves(self, pending: Any, teacher: Any, capture: Any) -> None:
        with capture:
            booking = services.approve_booking(pending, actor=teacher, teacher_note="Welcome")
        assert booking.status == S.CONFIRMED
        assert booking.decided_by_id == teacher.pk
        assert booking.decision_at == NOW
        assert booking.teacher_note == "Welcome"
        assert [e.to_status for e in booking.events.all()] == ["pending", "confirmed"]
        assert capture.names[-1] == "booking_confirmed"

    def test_student_cannot_approve(self, pending: Any, student: Any) -> None:
        with pytest.raises(NotAllowed):
            services.approve_booking(pending, actor=student)

    def test_double_approve_is_an_invalid_transition(self, pending: Any, teacher: Any) -> None:
        services.approve_booking(pending, actor=teacher)
        with pytest.raises(InvalidTransition, match="A confirmed booking cannot become confirmed"):
            services.approve_booking(pending, actor=teacher)
        assert pending.events.count() == 2

    def test_decline_frees_the_seats(self, pending: Any, teacher: Any, session: Any) -> None:
        booking = services.decline_booking(pending, actor=teacher, reason="Class is for level B")
        assert booking.status == S.DECLINED
        assert seats(session) == 0
        assert booking.events.last().reason == "Class is for level B"

    def test_student_cancels_before_the_window(
        self, session: Any, student: Any, capture: Any
    ) -> None:
        with capture:
            booking = services.book_group_session(student=student, session=session)
            cancelled = services.cancel_booking(booking, actor=student, reason="sick")
        assert cancelled.status == S.CANCELLED
        assert (cancelled.cancelled_by_id, cancelled.cancelled_at) == (student.pk, NOW)
        assert seats(session) == 0
        assert capture.names == ["booking_confirmed", "booking_cancelled"]

    def test_student_cannot_cancel_inside_window(
        self, make_session: Any, student: Any, teacher: Any
    ) -> None:
        session = make_session(start_at_utc=NOW + timedelta(hours=3))
        booking = services.book_group_session(student=student, session=session)
        with pytest.raises(
            CancelWindowClosed, match="until 24 h before the start; this starts in 3 h"
        ):
            services.cancel_booking(booking, actor=student)
        assert seats(session) == 1
        # The teacher may cancel at any time.
        assert services.cancel_booking(booking, actor=teacher).status == S.CANCELLED
        assert seats(session) == 0

    def test_another_student_cannot_cancel(
        self, session: Any, student: Any, other_student: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=session)
        with pytest.raises(NotAllowed):
            services.cancel_booking(booking, actor=other_student)

    def test_attendance_only_once_started(
        self, session: Any, student: Any, teacher: Any, frozen: Any, capture: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=session)
        with pytest.raises(InvalidTransition, match="once the booking has started"):
            services.mark_attended(booking, actor=teacher)
        frozen.move_to(session.start_at_utc + timedelta(minutes=5))
        with capture:
            assert services.mark_attended(booking, actor=teacher).status == S.ATTENDED
        with pytest.raises(InvalidTransition):
            services.mark_no_show(booking, actor=teacher)
        assert capture.names[-1] == "booking_attendance_marked"

    def test_no_show(self, session: Any, student: Any, teacher: Any, frozen: Any) -> None:
        booking = services.book_group_session(student=student, session=session)
        frozen.move_to(session.end_at_utc)
        assert services.mark_no_show(booking, actor=teacher).status == S.NO_SHOW


class TestReschedule:
    def test_student_cannot_move_inside_the_cancel_window(
        self, make_session: Any, student: Any, teacher: Any
    ) -> None:
        soon = make_session(start_at_utc=NOW + 3 * H)
        later = make_session(start_at_utc=NOW + timedelta(days=5))
        booking = services.book_group_session(student=student, session=soon)
        with pytest.raises(CancelWindowClosed, match="students can move until 24 h"):
            services.reschedule_booking(booking, actor=student, session=later)
        moved = services.reschedule_booking(booking, actor=teacher, session=later)
        assert (seats(soon), seats(later), moved.status) == (0, 1, S.CONFIRMED)

    def test_group_seat_moves_to_another_session(
        self, session: Any, make_session: Any, student: Any, capture: Any
    ) -> None:
        other = make_session(start_at_utc=NOW + timedelta(days=5))
        with capture:
            booking = services.book_group_session(student=student, session=session)
            new = services.reschedule_booking(booking, actor=student, session=other)
        booking.refresh_from_db()
        assert booking.status == S.RESCHEDULED
        assert new.rescheduled_from_id == booking.pk
        assert booking.rescheduled_to == new
        assert (new.status, new.session_id, new.start_at_utc) == (
            S.CONFIRMED,
            other.pk,
            other.start_at_utc,
        )
        assert (seats(session), seats(other)) == (0, 1)
        names = capture.names
        assert names == ["booking_confirmed", "booking_rescheduled", "booking_confirmed"]

    def test_moving_to_a_full_session_changes_nothing(
        self, session: Any, make_session: Any, student: Any, other_student: Any
    ) -> None:
        full = make_session(start_at_utc=NOW + timedelta(days=5), capacity=1)
        services.book_group_session(student=other_student, session=full)
        booking = services.book_group_session(student=student, session=session)
        with pytest.raises(SessionFull):
            services.reschedule_booking(booking, actor=student, session=full)
        booking.refresh_from_db()
        assert booking.status == S.CONFIRMED
        assert (seats(session), seats(full)) == (1, 1)

    def test_pending_bookings_cannot_be_rescheduled(
        self, session: Any, make_session: Any, student: Any, teacher: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
        booking = services.book_group_session(student=student, session=session)
        with pytest.raises(InvalidTransition):
            services.reschedule_booking(booking, actor=student, session=make_session())


class TestSessionLifecycle:
    def test_cancel_cascades_to_bookings_and_waitlist(
        self, session: Any, student: Any, other_student: Any, teacher: Any, capture: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=session)
        entry = SessionWaitlist.objects.create(session=session, student_user=other_student)
        with capture:
            cancelled = services.cancel_session(session, actor=teacher, reason="teacher ill")
        booking.refresh_from_db()
        entry.refresh_from_db()
        assert cancelled.status == "cancelled"
        assert cancelled.seats_taken == 0
        assert (booking.status, booking.cancel_reason) == (S.CANCELLED, "teacher ill")
        assert booking.events.last().data == {"session_cancelled": True}
        assert entry.status == "expired"
        assert capture.names[-2:] == ["booking_cancelled", "session_cancelled"]
        with pytest.raises(InvalidTransition):
            services.cancel_session(session, actor=teacher)

    def test_only_teacher_or_staff_cancel_a_session(self, session: Any, student: Any) -> None:
        with pytest.raises(NotAllowed):
            services.cancel_session(session, actor=student)

    def test_capacity_never_below_seats_taken(
        self, session: Any, student: Any, other_student: Any, teacher: Any
    ) -> None:
        services.book_group_session(student=student, session=session)
        services.book_group_session(student=other_student, session=session)
        with pytest.raises(InvalidInput, match="below the 2 seats already taken"):
            services.update_session(session, actor=teacher, capacity=1)
        assert services.update_session(session, actor=teacher, capacity=2).capacity == 2

    def test_new_times_carry_over_to_bookings(
        self, session: Any, student: Any, teacher: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=session)
        start = NOW + timedelta(days=4)
        services.update_session(
            session, actor=teacher, start_at_utc=start, end_at_utc=start + timedelta(hours=2)
        )
        booking.refresh_from_db()
        assert (booking.start_at_utc, booking.end_at_utc) == (start, start + timedelta(hours=2))

    def test_a_session_cannot_move_into_the_past(self, session: Any, teacher: Any) -> None:
        with pytest.raises(InvalidInput, match="past"):
            services.update_session(session, actor=teacher, start_at_utc=NOW - H)

    def test_server_owned_fields_cannot_be_updated(self, session: Any, teacher: Any) -> None:
        with pytest.raises(InvalidInput, match="seats_taken"):
            services.update_session(session, actor=teacher, seats_taken=0)

    def test_completion_only_after_the_end(self, session: Any, teacher: Any, frozen: Any) -> None:
        with pytest.raises(InvalidTransition):
            services.complete_session(session, actor=teacher)
        frozen.move_to(session.end_at_utc)
        assert services.complete_sessions() == 1
        session.refresh_from_db()
        assert session.status == "completed"


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("new", list(S))
def test_transition_table_is_spec_section_4(current: str, new: str) -> None:
    allowed = {
        ("pending", "confirmed"),
        ("pending", "declined"),
        ("pending", "cancelled"),
        ("confirmed", "cancelled"),
        ("confirmed", "attended"),
        ("confirmed", "no_show"),
        ("confirmed", "rescheduled"),
        ("pending", "expired"),  # the approval timeout (docs/booking-rules.md)
    }
    if (current, new) in allowed:
        services.check_transition(current, new)
    else:
        with pytest.raises(InvalidTransition):
            services.check_transition(current, new)
