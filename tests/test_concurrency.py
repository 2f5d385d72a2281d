"""The guarantees of docs/concurrency.md under real concurrent connections on PostgreSQL and
MariaDB/MySQL: threads, each with its own connection, released together."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from liveclass_booking import services
from liveclass_booking.choices import BookingStatus as S
from liveclass_booking.models import BookingEvent, TeacherAvailability, TeacherBookingPolicy
from tests.concurrency import outcomes, race

pytestmark = [pytest.mark.concurrent, pytest.mark.django_db(transaction=True)]


def make_students(user_model: Any, count: int, prefix: str = "racer") -> list[Any]:
    return [
        user_model.objects.create_user(username=f"{prefix}{i}", password="x") for i in range(count)
    ]


def next_weekday(hour: int) -> datetime:
    day = (timezone.now() + timedelta(days=3)).date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=UTC)


@pytest.fixture
def open_all_week(teacher: Any) -> None:
    for weekday in range(7):
        TeacherAvailability.objects.create(
            teacher=teacher,
            weekday=weekday,
            start_time=time(0),
            end_time=time(23, 59),
            timezone="UTC",
        )


def test_fifty_clients_racing_for_the_last_three_seats(make_session: Any, user_model: Any) -> None:
    session = make_session(capacity=10)
    for student in make_students(user_model, 7, "early"):
        services.book_group_session(student=student, session=session)
    racers = make_students(user_model, 50)

    results = race(50, lambda i: services.book_group_session(student=racers[i], session=session))

    assert outcomes(results) == {"ok": 3, "session_full": 47}
    session.refresh_from_db()
    assert session.seats_taken == 10
    assert session.bookings.filter(status=S.CONFIRMED).count() == 10


def test_one_student_racing_themselves_gets_one_seat(make_session: Any, student: Any) -> None:
    session = make_session(capacity=10)
    results = race(10, lambda i: services.book_group_session(student=student, session=session))
    assert outcomes(results) == {"ok": 1, "already_booked": 9}
    session.refresh_from_db()
    assert session.seats_taken == 1


@pytest.mark.usefixtures("open_all_week")
def test_twenty_requests_for_one_slot(teacher: Any, course: Any, user_model: Any) -> None:
    racers = make_students(user_model, 20)
    start = next_weekday(10)

    results = race(
        20,
        lambda i: services.request_one_on_one(
            student=racers[i],
            teacher=teacher,
            course=course,
            start_at_utc=start,
            end_at_utc=start + timedelta(hours=1),
        ),
    )

    assert outcomes(results) == {"ok": 1, "slot_unavailable": 19}


@pytest.mark.usefixtures("open_all_week")
def test_daily_limit_with_twenty_racers_on_different_slots(
    teacher: Any, course: Any, user_model: Any
) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, max_bookings_per_day=3)
    racers = make_students(user_model, 20)
    day_start = next_weekday(0)

    def request(i: int) -> Any:
        start = day_start + timedelta(minutes=60 * i)
        return services.request_one_on_one(
            student=racers[i],
            teacher=teacher,
            course=course,
            start_at_utc=start,
            end_at_utc=start + timedelta(minutes=30),
        )

    results = race(20, request)
    assert outcomes(results) == {"ok": 3, "daily_limit_reached": 17}


def test_approve_racing_decline_exactly_one_wins(
    make_session: Any, student: Any, teacher: Any
) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
    session = make_session()
    booking = services.book_group_session(student=student, session=session)
    actions = [
        lambda: services.approve_booking(booking, actor=teacher),
        lambda: services.decline_booking(booking, actor=teacher),
    ]
    results = race(2, lambda i: actions[i]())
    assert outcomes(results) == {"ok": 1, "invalid_transition": 1}
    booking.refresh_from_db()
    events = list(BookingEvent.objects.filter(booking=booking).values_list("to_status", flat=True))
    assert events == ["pending", booking.status]
    session.refresh_from_db()
    assert session.seats_taken == (1 if booking.status == S.CONFIRMED else 0)


def test_approve_racing_cancel_leaves_one_consistent_history(
    make_session: Any, student: Any, teacher: Any
) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
    session = make_session()
    booking = services.book_group_session(student=student, session=session)
    actions = [
        lambda: services.approve_booking(booking, actor=teacher),
        lambda: services.cancel_booking(booking, actor=student),
    ]
    results = race(2, lambda i: actions[i]())
    booking.refresh_from_db()
    assert booking.status == S.CANCELLED  # cancel wins either way: pending or confirmed
    events = list(BookingEvent.objects.filter(booking=booking).values_list("to_status", flat=True))
    # One event per transition that happened, in a valid order.
    assert events in (["pending", "cancelled"], ["pending", "confirmed", "cancelled"])
    assert outcomes(results)["ok"] == len(events) - 1
    session.refresh_from_db()
    assert session.seats_taken == 0


def test_many_double_approvals_one_wins(make_session: Any, student: Any, teacher: Any) -> None:
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
    booking = services.book_group_session(student=student, session=make_session())
    results = race(10, lambda i: services.approve_booking(booking, actor=teacher))
    assert outcomes(results) == {"ok": 1, "invalid_transition": 9}
    assert BookingEvent.objects.filter(booking=booking, to_status="confirmed").count() == 1


@pytest.mark.postgres  # the exclusion constraint exists on PostgreSQL only
def test_database_refuses_overlapping_lessons_written_directly(
    teacher: Any, student: Any, course: Any, booking_model: Any
) -> None:
    start = next_weekday(10)

    def lesson(offset: int) -> Any:
        begin = start + timedelta(minutes=offset)
        return booking_model.objects.create(
            booking_type="one_on_one",
            course=course,
            teacher=teacher,
            student_user=student,
            start_at_utc=begin,
            end_at_utc=begin + timedelta(hours=1),
            blocked_from_utc=begin,
            blocked_until_utc=begin + timedelta(hours=1),
            status="confirmed",
        )

    lesson(0)
    with pytest.raises(IntegrityError), transaction.atomic():
        lesson(30)
    lesson(60)  # back to back is fine
    cancelled = lesson(120)
    booking_model.objects.filter(pk=cancelled.pk).update(status="cancelled")
    lesson(150)  # overlaps only a cancelled lesson


def test_opposite_moves_and_session_cancel_never_deadlock(
    make_session: Any, user_model: Any, teacher: Any
) -> None:
    first = make_session(capacity=20)
    second = make_session(capacity=20, start_at_utc=timezone.now() + timedelta(days=4))
    students = make_students(user_model, 12, "mover")
    bookings = [
        services.book_group_session(student=s, session=first if i % 2 else second)
        for i, s in enumerate(students)
    ]

    def move(i: int) -> Any:
        booking = bookings[i]
        target = second if booking.session_id == first.pk else first
        return services.reschedule_booking(booking, actor=booking.student_user, session=target)

    results = race(12, move)
    assert outcomes(results) == {"ok": 12}
    for session in (first, second):
        session.refresh_from_db()
        assert session.seats_taken == 6

    # Cancelling a session while its students cancel their own bookings.
    active = list(second.bookings.filter(status=S.CONFIRMED))
    actions = [lambda: services.cancel_session(second, actor=teacher)] + [
        (lambda b=b: services.cancel_booking(b, actor=b.student_user)) for b in active
    ]
    results = race(len(actions), lambda i: actions[i]())
    assert "exception" not in outcomes(results)
    second.refresh_from_db()
    assert (second.status, second.seats_taken) == ("cancelled", 0)
