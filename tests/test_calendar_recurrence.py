"""Series in the calendar feed across daylight-saving changes.

The feed writes every occurrence of a series as its own VEVENT in UTC. These tests create
series that cross a DST change (Europe/Berlin, America/New_York, Australia/Sydney; Asia/
Kolkata, which has none, as the control), fetch the feeds through the public URL, parse them
with icalendar, vobject and ical.js (``parse_everywhere``), expand them with
``recurring_ical_events`` and compare what a calendar client would show with the DATABASE:
the attending bookings (or the sessions), their UIDs (the first booking of a reschedule
chain) and their times. The expected values are never re-derived from the rule: only the
wall time is checked against the series' ``start_time`` in its zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import time_machine
from dateutil.relativedelta import relativedelta
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, assume, event, example, given, note, settings
from hypothesis import strategies as st
from model_bakery import baker

from liveclass_booking import services
from liveclass_booking.calendar import calendar_domain
from liveclass_booking.calendar.tokens import create_token
from liveclass_booking.choices import DAY_CODES, BookingStatus
from liveclass_booking.conf import booking_settings
from liveclass_booking.models import (
    BookingSeriesItem,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)
from liveclass_booking.recurrence import Recurrence
from tests.calendar_parsers import ParsedCalendar, parse_everywhere
from tests.conftest import grant_teaching

pytestmark = pytest.mark.django_db

YEAR = 2027
DST_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")
CONTROL_ZONE = "Asia/Kolkata"  # no DST: every occurrence keeps +05:30
#: Wall times around the changes (02:00 and 03:00 are the switch in all three zones; 01:30 is
#: ambiguous in New York in November, 02:30 in Berlin in October and Sydney in April, and 02:30
#: does not exist on the spring-forward days), and ordinary times.
START_TIMES = tuple(
    time(h, m) for h, m in ((0, 30), (1, 30), (2, 0), (2, 30), (3, 0), (3, 30), (9, 15), (18, 45))
)
ATTENDING = (
    BookingStatus.CONFIRMED,
    BookingStatus.PENDING,
    BookingStatus.ATTENDED,
    BookingStatus.NO_SHOW,
)


def dst_changes(zone: str, year: int = YEAR) -> list[date]:
    """The local dates in ``year`` whose UTC offset at the end of the day differs from the
    one at its start (by zoneinfo, not by the app)."""
    tz = ZoneInfo(zone)
    changes = []
    day = date(year, 1, 1)
    while day.year == year:
        start = datetime.combine(day, time(0), tzinfo=tz).utcoffset()
        end = datetime.combine(day, time(23, 59), tzinfo=tz).utcoffset()
        if start != end:
            changes.append(day)
        day += timedelta(days=1)
    return changes


CHANGES = {zone: dst_changes(zone) for zone in DST_ZONES}
CHANGES[CONTROL_ZONE] = CHANGES["Europe/Berlin"]  # the same dates, nothing changes there


def test_the_zones_have_the_expected_changes() -> None:
    assert CHANGES["Europe/Berlin"] == [date(2027, 3, 28), date(2027, 10, 31)]
    assert CHANGES["America/New_York"] == [date(2027, 3, 14), date(2027, 11, 7)]
    assert CHANGES["Australia/Sydney"] == [date(2027, 4, 4), date(2027, 10, 3)]
    assert dst_changes(CONTROL_ZONE) == []


# --- helpers --------------------------------------------------------------------------------


def make_user(name: str, *, teacher: bool = False) -> Any:
    user = get_user_model().objects.create_user(
        username=name, password="pw", email=f"{name}@example.com"
    )
    return grant_teaching(user) if teacher else user


def fetch_feed(user: Any) -> bytes:
    """``user``'s feed through the public URL (a new token, no login)."""
    _, secret = create_token(user, "test")
    response = Client().get(reverse("liveclass_booking:calendar-feed", kwargs={"token": secret}))
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].split(";")[0].strip() == "text/calendar"
    return bytes(response.content)


def feed_window(now: datetime) -> tuple[datetime, datetime]:
    return now - booking_settings.CALENDAR_FEED_PAST, now + booking_settings.CALENDAR_FEED_FUTURE


def expanded(body: bytes, now: datetime) -> list[tuple[str, datetime, datetime, str]]:
    """(UID, start, end, STATUS) of every event ``recurring_ical_events`` shows in the feed
    window, in UTC."""
    a, b = feed_window(now)
    events = recurring_ical_events.of(icalendar.Calendar.from_ical(body)).between(a, b)
    return [
        (
            str(vevent["UID"]),
            vevent["DTSTART"].dt.astimezone(UTC),
            vevent["DTEND"].dt.astimezone(UTC),
            str(vevent.get("STATUS", "")),
        )
        for vevent in events
    ]


def booking_uid_of(booking: Any) -> str:
    """``booking-<pk of the first booking of its reschedule chain>@<domain>``, walking the
    chain in the database."""
    model = get_booking_model()
    root = booking
    while root.rescheduled_from_id is not None:
        root = model.objects.get(pk=root.rescheduled_from_id)
    return f"booking-{root.pk}@{calendar_domain()}"


def is_attending(booking: Any, now: datetime) -> bool:
    if booking.status == BookingStatus.PENDING:
        return booking.approval_expires_at is None or booking.approval_expires_at > now
    return booking.status in ATTENDING


def in_window(start: datetime, end: datetime, now: datetime) -> bool:
    a, b = feed_window(now)
    return end > a and start < b


def related(body: bytes) -> dict[str, tuple[str, str]]:
    """UID -> (RELATED-TO, its RELTYPE) for every VEVENT of ``body`` that has one."""
    out = {}
    for vevent in icalendar.Calendar.from_ical(body).walk("VEVENT"):
        if "RELATED-TO" in vevent:
            value = vevent["RELATED-TO"]
            out[str(vevent["UID"])] = (str(value), str(value.params.get("RELTYPE", "")))
    return out


def summary_of(parsed: ParsedCalendar) -> set[tuple[Any, ...]]:
    return {(e.uid, e.dtstart, e.dtend, e.status) for e in parsed.events}


# --- one-on-one series (Hypothesis) --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    rule: Recurrence
    lead: timedelta  # how long before the first occurrence "now" is (5 h at least)
    approval: bool  # the teacher's policy asks for approval of one-on-one lessons
    cancel: tuple[int, ...]  # positions (in the booked occurrences) the teacher cancels
    move: int | None  # the position the teacher reschedules
    moves: int  # how many times (a chain of reschedules)
    later: timedelta  # the feed is fetched this long after the changes

    def __repr__(self) -> str:  # shrunk examples stay readable
        r = self.rule
        return (
            f"Case({r.frequency} {r.days_of_week or '-'} from {r.start_date} {r.start_time} "
            f"{r.timezone} x{r.occurrence_count} {r.duration_minutes}min, lead={self.lead}, "
            f"approval={self.approval}, cancel={self.cancel}, move={self.move}x{self.moves}, "
            f"later={self.later})"
        )


@st.composite
def cases(draw: Any) -> Case:
    zone = draw(st.sampled_from((*DST_ZONES, CONTROL_ZONE)))
    change = draw(st.sampled_from(CHANGES[zone]))
    kind = draw(st.sampled_from(("weekly", "weekly2", "biweekly", "monthly")))
    count = draw(st.integers(2, 12))
    # Either a start a whole number of periods before the change (the change day is then an
    # occurrence: the nonexistent and ambiguous wall times are hit) or any start within the
    # series' span before it.
    aligned = draw(st.booleans())
    periods = draw(st.integers(1, count - 1))
    if kind == "monthly":
        start = (
            change - relativedelta(months=periods)
            if aligned
            else change - timedelta(days=draw(st.integers(1, 28 * (count - 1))))
        )
    else:
        step = 14 if kind == "biweekly" else 7
        if aligned:
            start = change - timedelta(days=step * periods)
        else:
            start = change - timedelta(days=draw(st.integers(1, step * (count - 1))))
    days = ""
    if kind == "weekly2":
        other = draw(st.sampled_from([c for c in DAY_CODES if c != DAY_CODES[start.weekday()]]))
        days = ",".join(sorted({DAY_CODES[start.weekday()], other}, key=DAY_CODES.index))
    elif kind == "weekly" and draw(st.booleans()):
        days = DAY_CODES[start.weekday()]
    rule = Recurrence(
        frequency="monthly" if kind == "monthly" else kind.rstrip("2"),
        start_date=start,
        start_time=draw(st.sampled_from(START_TIMES)),
        timezone=zone,
        duration_minutes=draw(st.sampled_from((30, 45, 60, 90))),
        days_of_week=days,
        occurrence_count=count,
    )
    occurrences = rule.expand().occurrences
    if zone != CONTROL_ZONE:
        # Only series that cross a change: their occurrences have two UTC offsets.
        tz = ZoneInfo(zone)
        assume(len({o.start.astimezone(tz).utcoffset() for o in occurrences}) == 2)
    cancel = tuple(draw(st.lists(st.integers(0, count - 1), max_size=2, unique=True).map(sorted)))
    movable = [i for i in range(count) if i not in cancel]
    move = draw(st.none() | st.sampled_from(movable)) if movable else None
    return Case(
        rule=rule,
        # At least 5 hours: an evening lesson moved twice, 2 hours earlier each time, is
        # still in the future.
        lead=timedelta(minutes=draw(st.integers(5 * 60, 10 * 24 * 60))),
        approval=draw(st.booleans()),
        cancel=cancel,
        move=move,
        moves=draw(st.integers(1, 2)),
        later=timedelta(hours=draw(st.sampled_from((0, 0, 30, 24 * 20)))),
    )


def expected_entries(
    student: Any, now: datetime
) -> tuple[set[tuple[str, datetime, datetime]], set[str], list[Any]]:
    """From the database: (UID, start, end) of the student's attending bookings in the feed
    window, the UIDs of their ended (cancelled, declined, expired) ones, and the attending
    bookings themselves."""
    listed: set[tuple[str, datetime, datetime]] = set()
    ended: set[str] = set()
    attending = []
    for booking in get_booking_model().objects.filter(student_user=student):
        if booking.status == BookingStatus.RESCHEDULED:
            continue  # its replacement carries its UID
        if not in_window(booking.start_at_utc, booking.end_at_utc, now):
            continue
        uid = booking_uid_of(booking)
        if is_attending(booking, now):
            listed.add((uid, booking.start_at_utc, booking.end_at_utc))
            attending.append(booking)
        else:
            ended.add(uid)
    return listed, ended, attending


def edge(
    zone: str,
    start: date,
    at: time,
    count: int,
    frequency: str = "weekly",
    days: str = "",
    **changes: Any,
) -> Case:
    """A case Hypothesis might not find by itself in a few examples."""
    values: dict[str, Any] = {
        "lead": timedelta(hours=5),
        "approval": False,
        "cancel": (),
        "move": None,
        "moves": 1,
        "later": timedelta(0),
    }
    values.update(changes)
    rule = Recurrence(
        frequency=frequency,
        start_date=start,
        start_time=at,
        timezone=zone,
        duration_minutes=60,
        days_of_week=days,
        occurrence_count=count,
    )
    return Case(rule=rule, **values)


#: Always run: series whose wall time does not exist on the spring-forward day (skipped, not
#: counted) or happens twice on the fall-back day (the first instant), in each zone, weekly,
#: biweekly and monthly, with cancellations, a chain of two moves and a late fetch.
EDGE_CASES = (
    edge("Europe/Berlin", date(2027, 3, 14), time(2, 30), 4, cancel=(1,), move=3, moves=2),
    edge("Europe/Berlin", date(2027, 10, 17), time(2, 30), 4, approval=True, cancel=(0, 2), move=1),
    edge("America/New_York", date(2027, 2, 28), time(2, 30), 3, "biweekly", move=0),
    edge("America/New_York", date(2027, 10, 31), time(1, 30), 4, "weekly", "SU,WE", cancel=(1,)),
    edge("Australia/Sydney", date(2027, 9, 26), time(2, 0), 3, later=timedelta(days=20)),
    edge("Australia/Sydney", date(2027, 3, 21), time(2, 30), 4, cancel=(2,), move=1, moves=2),
    edge("Australia/Sydney", date(2027, 7, 3), time(2, 30), 6, "monthly", approval=True, move=5),
    edge("Europe/Berlin", date(2027, 3, 31), time(2, 30), 6, "monthly", cancel=(4,), move=5),
    edge("Asia/Kolkata", date(2027, 3, 21), time(2, 30), 3, cancel=(2,), move=0),
)


def with_edge_cases(test: Any) -> Any:
    for case in EDGE_CASES:
        test = example(case=case)(test)
    return test


@with_edge_cases
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=cases())
def test_one_on_one_series_across_dst_in_the_feed(case: Case) -> None:
    """A student's one-on-one series crossing a DST change (the teacher may then cancel some
    occurrences and move one): both parties' feeds show exactly the database's lessons, under
    stable UIDs, at the series' wall time, each linked to its series."""
    note(repr(case))
    rule = case.rule
    first = rule.expand().occurrences[0].start
    now = first - case.lead
    # Each example in a savepoint rolled back at its end: a fresh database every time.
    with time_machine.travel(now, tick=False) as clock, transaction.atomic():
        run_one_on_one_case(case, now, clock)
        transaction.set_rollback(True)


def run_one_on_one_case(case: Case, now: datetime, clock: Any) -> None:
    rule = case.rule
    zone = ZoneInfo(rule.timezone)
    domain = calendar_domain()
    teacher = make_user("teacher", teacher=True)
    student = make_user("student")
    course = baker.make(get_course_model())
    TeacherBookingPolicy.objects.create(
        teacher=teacher,
        min_notice_hours=0,
        requires_approval_for_one_on_one=case.approval,
    )
    for weekday in range(7):  # open all day, every day, in the series' zone
        TeacherAvailability.objects.create(
            teacher=teacher,
            weekday=weekday,
            start_time=time(0),
            end_time=time(23, 59),
            timezone=rule.timezone,
        )
    report = services.create_series(
        student=student,
        teacher=teacher,
        course=course,
        series_type="one_on_one_series",
        rule=rule,
        actor=student,
    )
    series = report.series
    series.refresh_from_db()
    items = list(
        BookingSeriesItem.objects.filter(series=series)
        .select_related("booking")
        .order_by("occurrence_index")
    )
    assert len(items) == rule.occurrence_count
    assert all(item.booking is not None for item in items), [i.status for i in items]
    series_ref = f"series-{series.pk}@{domain}"
    event(f"zone {rule.timezone}, {rule.frequency}")
    if report.skipped_times:
        event("a wall time did not exist (skipped)")
    if any(item.start_at_utc.astimezone(zone).fold for item in items):
        event("an ambiguous wall time (second instant)")  # the app takes the first
    if any(
        (item.start_at_utc + timedelta(hours=1)).astimezone(zone).time() == series.start_time
        for item in items
        if item.start_at_utc.astimezone(zone).utcoffset()
        != (item.start_at_utc + timedelta(hours=1)).astimezone(zone).utcoffset()
    ):
        event("an ambiguous wall time (first instant)")

    before = fetch_feed(student)

    # The teacher cancels some occurrences and moves one (once, or twice: a chain).
    cancelled = [items[i].booking for i in case.cancel]
    for booking in cancelled:
        services.cancel_booking(booking, actor=teacher, reason="ill")
    moved_from = moved = None
    if case.move is not None:
        moved_from = moved = items[case.move].booking
        if moved.status == BookingStatus.PENDING:
            moved = services.approve_booking(moved, actor=teacher)
        # Two hours later (earlier for an evening lesson): inside the teacher's hours.
        shift = timedelta(hours=2 if rule.start_time < time(12) else -2)
        for _ in range(case.moves):
            moved = services.reschedule_booking(
                moved,
                actor=teacher,
                start_at_utc=moved.start_at_utc + shift,
                end_at_utc=moved.end_at_utc + shift,
            )
        assert moved.status == BookingStatus.CONFIRMED
    later = now + case.later
    clock.move_to(later)

    student_feed = fetch_feed(student)
    teacher_feed = fetch_feed(teacher)
    parsed_before, parsed_student, parsed_teacher = parse_everywhere(
        before, student_feed, teacher_feed
    )

    # What a client shows (recurring_ical_events over the whole window) is the database's.
    listed, ended, attending = expected_entries(student, later)
    shown = expanded(student_feed, later)
    uids = [uid for uid, *_ in shown]
    assert len(uids) == len(set(uids)), f"a UID appears twice: {sorted(uids)}"
    assert {(u, s, e) for u, s, e, status in shown if status != "CANCELLED"} == listed
    assert {u for u, s, e, status in shown if status == "CANCELLED"} == ended
    # recurring_ical_events and the three parsers read the same events.
    assert {(u, s, e, st_) for u, s, e, st_ in shown} == summary_of(parsed_student)

    # Each lesson the app did not move is at the series' wall time in the series' zone.
    for booking in attending:
        if booking.rescheduled_from_id is None:
            local = booking.start_at_utc.astimezone(zone)
            assert local.time() == series.start_time, (booking.start_at_utc, local)
    # A wall time the zone skipped is no lesson, in the database or in the feed.
    gaps = {skipped.date for skipped in report.skipped_times}
    days = {s.astimezone(zone).date() for _, s, _, status in shown if status != "CANCELLED"}
    assert not days & gaps
    if rule.timezone == CONTROL_ZONE:
        offsets = {item.start_at_utc.astimezone(zone).utcoffset() for item in items}
        assert offsets == {timedelta(hours=5, minutes=30)}
    else:
        offsets = {item.start_at_utc.astimezone(zone).utcoffset() for item in items}
        assert len(offsets) == 2, "the series was meant to cross a change"

    # Every occurrence names its series; cancelled ones keep the UID they had.
    links = related(student_feed)
    for uid, *_ in shown:
        assert links.get(uid) == (series_ref, "PARENT"), uid
    before_uids = {e.uid for e in parsed_before.events}
    for booking in cancelled:  # (a monthly series may reach past the feed's window)
        uid = f"booking-{booking.pk}@{domain}"
        if in_window(booking.start_at_utc, booking.end_at_utc, now):
            assert uid in before_uids
        if in_window(booking.start_at_utc, booking.end_at_utc, later):
            assert (uid, "CANCELLED") in {(u, status) for u, *_, status in shown}
    if moved_from is not None and moved is not None:
        uid = f"booking-{moved_from.pk}@{domain}"
        if in_window(moved_from.start_at_utc, moved_from.end_at_utc, now):
            assert uid in before_uids
        moved.refresh_from_db()
        if in_window(moved.start_at_utc, moved.end_at_utc, later):
            assert (uid, moved.start_at_utc, moved.end_at_utc) in listed
            assert booking_uid_of(moved) == uid
    # Every VEVENT of the student's feeds belongs to the series.
    for parsed in (parsed_before, parsed_student):
        assert {e.related_to for e in parsed.events} <= {series_ref}

    # The teacher's feed shows the same lessons under the same UIDs, times and statuses.
    assert summary_of(parsed_teacher) == summary_of(parsed_student)
    assert {(u, s, e, st_) for u, s, e, st_ in expanded(teacher_feed, later)} == set(shown)
    assert related(teacher_feed) == links


# --- group sessions (deterministic) -------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
GROUP_NOW = datetime(2027, 3, 10, 12, tzinfo=UTC)
GROUP_RULE = Recurrence(
    frequency="weekly",
    days_of_week="SA,SU",
    start_date=date(2027, 3, 20),  # a Saturday; CEST starts on Sunday 28 March
    start_time=time(18),
    timezone="Europe/Berlin",
    duration_minutes=60,
    occurrence_count=8,
)


@pytest.fixture
def group_clock() -> Any:
    with time_machine.travel(GROUP_NOW, tick=False) as traveller:
        yield traveller


@pytest.mark.usefixtures("group_clock")
def test_group_sessions_across_the_berlin_change_in_the_feeds(
    teacher: Any, student: Any, other_student: Any, course: Any
) -> None:
    domain = calendar_domain()
    TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=False)
    sessions, skipped = services.create_recurring_sessions(
        teacher=teacher,
        course=course,
        title="Evening class",
        rule=GROUP_RULE,
        capacity=5,
        actor=teacher,
    )
    assert skipped == []
    report = services.create_series(
        student=student,
        teacher=teacher,
        course=course,
        series_type="group_series",
        rule=GROUP_RULE,
        actor=student,
    )
    assert [r.status for r in report.occurrences] == ["booked"] * 8
    # Another student books one class before and one after the change, one at a time.
    rows = list(get_session_model().objects.filter(teacher=teacher).order_by("start_at_utc"))
    assert [s.pk for s in rows] == [s.pk for s in sessions]
    for session in (rows[2], rows[4]):
        services.book_group_session(student=other_student, session=session)

    teacher_feed = fetch_feed(teacher)
    student_feed = fetch_feed(student)
    parsed_teacher, parsed_student = parse_everywhere(teacher_feed, student_feed)

    # The teacher: one VEVENT per session, its UID, at 18:00 Berlin on both sides.
    db_sessions = {(f"session-{s.pk}@{domain}", s.start_at_utc, s.end_at_utc) for s in rows}
    assert {(e.uid, e.dtstart, e.dtend) for e in parsed_teacher.events} == db_sessions
    assert len(parsed_teacher.events) == 8
    for vevent in parsed_teacher.events:
        assert isinstance(vevent.dtstart, datetime)
        assert vevent.dtstart.astimezone(BERLIN).time() == time(18)
        assert vevent.status == "CONFIRMED"
        assert vevent.related_to is None
    starts = sorted(e.dtstart for e in parsed_teacher.events if isinstance(e.dtstart, datetime))
    offsets = [start.astimezone(BERLIN).utcoffset() for start in starts]
    assert offsets == [timedelta(hours=1)] * 3 + [timedelta(hours=2)] * 5
    # Saturday 27 March at 17:00 UTC, Sunday 28 March (CEST from 03:00) at 16:00 UTC.
    assert starts[2:4] == [
        datetime(2027, 3, 27, 17, tzinfo=UTC),
        datetime(2027, 3, 28, 16, tzinfo=UTC),
    ]
    # Each session's entry counts the students the database has in it.
    booking_model = get_booking_model()
    for session in rows:
        entry = next(e for e in parsed_teacher.events if e.uid == f"session-{session.pk}@{domain}")
        held = booking_model.objects.filter(session=session, status__in=ATTENDING).count()
        assert entry.description is not None
        assert entry.description.startswith(f"Students ({held}):"), entry.description
    shown = expanded(teacher_feed, GROUP_NOW)
    assert {(u, s, e) for u, s, e, _ in shown} == db_sessions
    assert len(shown) == 8

    # The student: one VEVENT per booking, in the series, at the sessions' times.
    series_ref = f"series-{report.series.pk}@{domain}"
    bookings = list(booking_model.objects.filter(student_user=student))
    assert len(bookings) == 8
    by_booking = {
        (f"booking-{b.pk}@{domain}", b.session.start_at_utc, b.session.end_at_utc) for b in bookings
    }
    assert {(u, s, e) for u, s, e, _ in expanded(student_feed, GROUP_NOW)} == by_booking
    assert {(e.uid, e.dtstart, e.dtend) for e in parsed_student.events} == by_booking
    assert {e.related_to for e in parsed_student.events} == {series_ref}
    assert set(related(student_feed).values()) == {(series_ref, "PARENT")}
