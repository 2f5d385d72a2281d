"""Reminders: once per (booking, recipient, offset), at the right instant in the recipient's
zone across daylight-saving changes, never for cancelled bookings, never late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from liveclass_booking import services
from liveclass_booking.choices import DeliveryStatus
from liveclass_booking.choices import NotificationKind as K
from liveclass_booking.models import NotificationDelivery, NotificationEvent, get_booking_model
from liveclass_booking.notifications import dispatch
from tests.resolvers import PeopleAbroad

pytestmark = pytest.mark.django_db

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney"]
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


@pytest.fixture(autouse=True)
def abroad(settings: Any, monkeypatch: Any) -> None:
    settings.LIVECLASS_BOOKING_POLICY_RESOLVER = "tests.resolvers.PeopleAbroad"
    monkeypatch.setattr(PeopleAbroad, "ZONES", dict(PeopleAbroad.ZONES))


@pytest.fixture
def booked(make_session: Any, student: Any) -> Any:
    """``booked(start, ahead)``: a session at ``start`` booked by the student ``ahead`` of it;
    returns the booking."""

    def book(start: datetime, ahead: timedelta, **fields: Any) -> Any:
        with time_machine.travel(start - ahead, tick=False):
            session = make_session(start_at_utc=start, **fields)
            return services.book_group_session(student=student, session=session, actor=student)

    return book


def reminders_at(moment: datetime) -> list[tuple[str, str]]:
    """Run the dispatcher at ``moment``; return (recipient, subject) of the reminders sent."""
    mail.outbox.clear()
    with time_machine.travel(moment, tick=False):
        dispatch()
    found = [(m.to[0], m.subject) for m in mail.outbox if m.subject.startswith("Reminder")]
    mail.outbox.clear()
    return found


def expected_moment(start: datetime, zone: str, offset: timedelta) -> datetime:
    """The oracle: one day back on the zone's wall clock (a wall time the change skipped is
    read with the offset before it, as RFC 5545 does), hours as elapsed time."""
    tz = ZoneInfo(zone)
    local = start.astimezone(tz)
    if offset == DAY:
        day_before = datetime.combine(local.date() - DAY, local.time(), tzinfo=tz)
        return day_before.astimezone(UTC)
    return start - offset


# Start times around the 2027 changes of all three zones (Berlin: 28 Mar and 31 Oct; New
# York: 14 Mar and 7 Nov; Sydney: 4 Apr and 3 Oct), whole minutes.
CHANGES = [
    datetime(2027, month, day, tzinfo=UTC)
    for month, day in ((3, 28), (10, 31), (3, 14), (11, 7), (4, 4), (10, 3))
]
START_TIMES = st.builds(
    lambda change, minutes: change + timedelta(minutes=minutes),
    st.sampled_from(CHANGES),
    st.integers(min_value=-3 * 1440, max_value=3 * 1440),
)


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(start=START_TIMES, zone=st.sampled_from(ZONES))
def test_each_reminder_once_at_its_instant_across_daylight_saving(
    booked: Any, start: datetime, zone: str, make_session: Any, student: Any, teacher: Any
) -> None:
    PeopleAbroad.ZONES.update(student=zone, teacher=zone)
    booking = booked(start, timedelta(days=10), title="Class")
    session = booking.session
    try:
        mail.outbox.clear()
        everyone = {"s@example.com", "t@example.com"}
        for offset in (DAY, HOUR):
            moment = expected_moment(start, zone, offset)
            assert reminders_at(moment - timedelta(seconds=1)) == []
            found = reminders_at(moment)
            assert {address for address, _ in found} == everyone
            assert len(found) == 2
            assert reminders_at(moment + timedelta(seconds=30)) == []
        assert reminders_at(start - timedelta(seconds=1)) == []
        # Each (booking, recipient, offset) is recorded once.
        assert NotificationEvent.objects.filter(kind=K.REMINDER).count() == 4
    finally:
        NotificationEvent.objects.all().delete()
        get_booking_model().objects.all().delete()
        session.delete()


def test_the_24_hour_reminder_keeps_the_wall_clock_hour_across_a_change(
    booked: Any, make_session: Any, student: Any, teacher: Any
) -> None:
    """A class at 10:00 Berlin on Sunday 28 March 2027 (clocks went forward at 02:00): its
    one-day reminder is at 10:00 on Saturday — 23 hours before, not 24."""
    start = datetime(2027, 3, 28, 8, 0, tzinfo=UTC)  # 10:00 CEST
    PeopleAbroad.ZONES.update(student="Europe/Berlin", teacher="Europe/Berlin")
    booked(start, timedelta(days=5))
    saturday_ten = datetime(2027, 3, 27, 9, 0, tzinfo=UTC)  # 10:00 CET
    assert reminders_at(saturday_ten - timedelta(minutes=1)) == []
    assert len(reminders_at(saturday_ten)) == 2
    assert start - saturday_ten == timedelta(hours=23)


def test_none_for_a_cancelled_booking_even_when_already_queued(
    make_session: Any, student: Any, teacher: Any, settings: Any
) -> None:
    start = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start - timedelta(days=5), tick=False):
        session = make_session(start_at_utc=start)
        booking = services.book_group_session(student=student, session=session, actor=student)
        dispatch()
    # At the 24-hour moment the mail server is down: the reminders wait for a retry.
    settings.EMAIL_BACKEND = "tests.mail_backends.RefusingBackend"
    assert reminders_at(start - DAY) == []
    waiting = NotificationDelivery.objects.filter(event__kind=K.REMINDER)
    assert {d.status for d in waiting} == {DeliveryStatus.PENDING}
    with time_machine.travel(start - DAY + timedelta(minutes=1), tick=False):
        services.cancel_booking(booking, actor=teacher)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert reminders_at(start - timedelta(hours=20)) == []
    assert {d.status for d in waiting.filter(event__data__offset_seconds=86400)} == {
        DeliveryStatus.SKIPPED
    }
    assert reminders_at(start - HOUR) == []  # and no later reminder is written


def test_no_late_reminder_for_a_booking_made_after_its_moment(
    booked: Any, make_session: Any, student: Any, teacher: Any
) -> None:
    start = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    booked(start, timedelta(hours=5))
    assert reminders_at(start - timedelta(hours=4)) == []  # the 24-hour moment had passed
    assert len(reminders_at(start - HOUR)) == 2


def test_a_stopped_dispatcher_catches_up_with_the_nearest_reminder_only(
    booked: Any, make_session: Any, student: Any, teacher: Any
) -> None:
    start = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    booked(start, timedelta(days=3))
    # Nothing ran for two days: both moments have passed; only the one-hour reminder goes.
    found = reminders_at(start - timedelta(minutes=30))
    assert len(found) == 2
    passed = NotificationEvent.objects.filter(kind=K.REMINDER, data__passed=True)
    assert passed.count() == 2
    assert not NotificationDelivery.objects.filter(event__in=passed).exists()


def test_a_moved_session_gets_reminders_for_its_new_time(
    booked: Any, make_session: Any, student: Any, teacher: Any
) -> None:
    start = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    booking = booked(start, timedelta(days=3))
    session = booking.session
    assert len(reminders_at(start - DAY)) == 2
    later = start + timedelta(days=2)
    with time_machine.travel(start - timedelta(hours=20), tick=False):
        services.update_session(session, actor=teacher, start_at_utc=later, end_at_utc=later + HOUR)
    assert reminders_at(start - HOUR) == []  # the old time is gone
    assert len(reminders_at(later - DAY)) == 2
    assert len(reminders_at(later - HOUR)) == 2


def test_a_group_teacher_gets_one_reminder_per_session(
    make_session: Any, teacher: Any, user_model: Any
) -> None:
    start = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    with time_machine.travel(start - timedelta(days=3), tick=False):
        session = make_session(start_at_utc=start)
        for i in range(3):
            person = user_model.objects.create_user(username=f"p{i}", email=f"p{i}@x.org")
            services.book_group_session(student=person, session=session, actor=person)
    found = reminders_at(start - HOUR)
    assert sorted(address for address, _ in found) == [
        "p0@x.org",
        "p1@x.org",
        "p2@x.org",
        "t@example.com",
    ]


def test_offsets_per_teacher_through_the_resolver(
    booked: Any, make_session: Any, student: Any, teacher: Any, settings: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(
        PeopleAbroad, "get_reminder_offsets", lambda self, booking: [timedelta(minutes=15)]
    )
    start = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    booked(start, timedelta(days=3))
    assert reminders_at(start - DAY) == []
    assert reminders_at(start - HOUR) == []
    assert len(reminders_at(start - timedelta(minutes=15))) == 2


def test_a_session_moved_closer_gets_no_late_reminder(booked: Any, teacher: Any) -> None:
    start = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
    session = booked(start, timedelta(days=3)).session
    nearer = start - timedelta(days=2) + timedelta(hours=10)  # now + 10 hours, below
    with time_machine.travel(start - timedelta(days=2), tick=False):
        services.update_session(
            session, actor=teacher, start_at_utc=nearer, end_at_utc=nearer + HOUR
        )
    # The 24-hour moment of the new time had passed when the session moved: none for it.
    assert reminders_at(start - timedelta(days=2) + timedelta(minutes=1)) == []
    assert len(reminders_at(nearer - HOUR)) == 2
