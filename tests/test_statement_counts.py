"""The statements of the hot paths, and which of them run while the contended row is locked
(docs/concurrency.md, "Statements per request").

What counts: every statement the library sends through a database cursor for one call of
the service (savepoints included, should one come back), in order; not ``BEGIN`` and
``COMMIT``, and not the queries of the host's policy resolver (the default one's here:
:class:`tests.resolvers.Tallied` marks them). "Under the lock" counts from the statement
that locks the contended row to the ``COMMIT``, both included. The services run as they do
in production, each in a transaction of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.models import (
    AvailabilityException,
    BookingEvent,
    BookingSeriesItem,
    IdempotencyKey,
    NotificationEvent,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_session_model,
)
from liveclass_booking.services.common import hot_row_last
from tests.resolvers import in_resolver

pytestmark = pytest.mark.django_db(transaction=True)

#: The group booking's budget (docs/concurrency.md).
GROUP_BUDGET = 8


def _labels() -> dict[str, str]:
    models = {
        "user": get_user_model(),
        "session": get_session_model(),
        "booking": get_booking_model(),
        "waitlist": SessionWaitlist,
        "event": BookingEvent,
        "outbox": NotificationEvent,
        "availability": TeacherAvailability,
        "exception": AvailabilityException,
        "policy": TeacherBookingPolicy,
        "series_item": BookingSeriesItem,
        "idempotency_key": IdempotencyKey,
    }
    labels = {model._meta.db_table: label for label, model in models.items()}
    labels["auth_permission"] = "permission"
    return labels


def _top_level_from(sql: str) -> str:
    """The table of a SELECT's outermost FROM."""
    depth = 0
    for i, char in enumerate(sql):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and sql.startswith(" FROM ", i):
            return sql[i + 6 :].split()[0]
    raise AssertionError(f"no FROM in {sql}")


def shape(sql: str) -> str:
    """``VERB table`` of a statement, e.g. ``INSERT booking``; ``SELECT UNION`` for a union."""
    text = re.sub(r'["`]', "", sql).strip()
    verb = text.split()[0].upper()
    if text.startswith("(") or " UNION " in text:
        return "SELECT UNION"
    if verb == "SELECT":
        table = _top_level_from(text)
    elif verb in ("INSERT", "DELETE"):
        table = text.split()[2]
    elif verb == "UPDATE":
        table = text.split()[1]
    else:
        return verb
    return f"{verb} {_labels().get(table, table)}"


@dataclass
class Sent:
    """The statements of one call: the library's (``own``) and the resolver's."""

    own: list[str] = field(default_factory=list)
    resolver: list[str] = field(default_factory=list)

    def under_lock(self, locking: str) -> list[str]:
        """The library's statements from ``locking`` on, and the COMMIT."""
        assert self.own.count(locking) == 1, self.own
        return [*self.own[self.own.index(locking) :], "COMMIT"]


@contextmanager
def tally() -> Iterator[Sent]:
    sent = Sent()

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not re.match(r"\s*(BEGIN|COMMIT|ROLLBACK)\b", sql, re.IGNORECASE):
            (sent.resolver if in_resolver() else sent.own).append(shape(sql))
        return execute(sql, params, many, context)

    resolver = "tests.resolvers.Tallied"
    with (
        override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER=resolver),
        connection.execute_wrapper(record),
    ):
        yield sent


def test_a_group_booking_locks_its_session_for_the_update_and_the_commit(
    make_session: Any, student: Any
) -> None:
    session = make_session()
    with tally() as sent:
        booking = services.book_group_session(student=student, session=session)
    assert booking.status == "confirmed"
    if hot_row_last():  # PostgreSQL, SQLite
        assert sent.own == [
            "SELECT user",  # the student's row lock (the limits)
            "SELECT session",  # limits, own waitlist entry, anything to settle
            "INSERT booking",  # the partial unique constraint: one active booking
            "INSERT event",
            "INSERT outbox",
            "UPDATE session",  # the seats, conditionally: locks the row until COMMIT
        ]
        assert sent.under_lock("UPDATE session") == ["UPDATE session", "COMMIT"]
    else:  # MySQL/MariaDB: no partial unique constraint, foreign keys checked at once
        assert sent.own == [
            "SELECT user",
            "SELECT session",
            "UPDATE session",
            "SELECT booking",  # the already-booked check, under the session lock
            "INSERT booking",
            "INSERT event",
            "INSERT outbox",
        ]
        assert len(sent.under_lock("UPDATE session")) == 6
    assert len(sent.own) <= GROUP_BUDGET
    assert sent.resolver == ["SELECT policy"]
    assert NotificationEvent.objects.filter(booking=booking).count() == 1


def test_a_lesson_request_reads_the_teachers_settings_before_the_teacher_lock(
    teacher: Any, student: Any, course: Any, open_all_week: Any
) -> None:
    start = (timezone.now() + timedelta(days=4)).replace(hour=10, minute=0, second=0)
    with tally() as sent:
        services.request_one_on_one(
            student=student,
            teacher=teacher,
            course=course,
            start_at_utc=start,
            end_at_utc=start + timedelta(minutes=30),
        )
    assert sent.own == [
        "SELECT booking",  # requests past their approval timeout, to expire first
        "SELECT UNION",  # the teacher's weekly windows and date exceptions
        "SELECT user",  # the teacher's and the student's row locks
        "SELECT UNION",  # lessons, sessions and busy periods
        "SELECT booking",  # the student's holdings (the limits)
        "INSERT booking",  # PostgreSQL's exclusion constraint stands behind the lock
        "INSERT event",
        "INSERT outbox",
    ]
    assert len(sent.under_lock("SELECT user")) == 7
    # The default can_teach (the user's and the groups' permissions) and the policy.
    assert sorted(sent.resolver) == ["SELECT permission", "SELECT permission", "SELECT policy"]


def test_accepting_an_offer_locks_the_session_for_the_entry_update_and_the_commit(
    make_session: Any, student: Any, other_student: Any, teacher: Any
) -> None:
    session = make_session(capacity=1)
    taken = services.book_group_session(student=other_student, session=session)
    entry = services.join_waitlist(student=student, session=session)
    services.cancel_booking(taken, actor=teacher)
    entry.refresh_from_db()
    assert entry.status == "offered"
    with tally() as sent:
        booking = services.accept_offer(entry, actor=student)
    assert (entry.status, entry.booking) == ("accepted", booking)
    if hot_row_last():
        assert sent.own == [
            "SELECT waitlist",  # the entry with its session, course, teacher and student
            "SELECT user",  # the student's row lock (the limits)
            "SELECT booking",  # the student's holdings
            "INSERT booking",
            "INSERT event",
            "INSERT outbox",
            "SELECT session",  # locks the row, if the session is still scheduled
            "UPDATE waitlist",  # accepted, if the offer is still open
        ]
        assert sent.under_lock("SELECT session") == ["SELECT session", "UPDATE waitlist", "COMMIT"]
    else:
        assert sent.own == [
            "SELECT waitlist",
            "SELECT user",
            "SELECT booking",
            "SELECT session",
            "SELECT booking",  # the already-booked check
            "INSERT booking",
            "INSERT event",
            "INSERT outbox",
            "UPDATE waitlist",
        ]
        assert len(sent.under_lock("SELECT session")) == 7
    assert sent.resolver == ["SELECT policy"]


def test_a_keyed_booking_request_stores_its_answer_under_the_session_lock(
    make_session: Any, student: Any
) -> None:
    """With an Idempotency-Key the booking runs inside the key's transaction, so the key's
    answer is stored while the session row is locked: the seat UPDATE, the release of the
    service's savepoint, the key's UPDATE and the COMMIT. The answer reads nothing more."""
    session = make_session(meeting_link="https://meet.example.com/room")
    client = APIClient()
    client.force_authenticate(student)
    with tally() as sent:
        response = client.post(
            "/api/booking/bookings/",
            {"booking_type": "group_session", "session": session.pk},
            format="json",
            HTTP_IDEMPOTENCY_KEY="a-key-of-this-test",
        )
    assert response.status_code == 201, response.content
    assert response.json()["meeting_link"] == "https://meet.example.com/room"
    if hot_row_last():  # PostgreSQL, SQLite
        assert sent.under_lock("UPDATE session") == [
            "UPDATE session",
            "RELEASE",
            "UPDATE idempotency_key",
            "COMMIT",
        ]
    assert sent.own[-1] == "UPDATE idempotency_key"
    assert "SELECT session" not in sent.own[sent.own.index("UPDATE session") :]


def test_the_booking_list_is_one_statement(make_session: Any, student: Any) -> None:
    for hour in range(3):
        session = make_session(start_at_utc=timezone.now() + timedelta(days=2, hours=hour))
        services.book_group_session(student=student, session=session)
    client = APIClient()
    client.force_authenticate(student)
    with tally() as sent:
        response = client.get("/api/booking/bookings/", {"page_size": 2})
    assert response.status_code == 200
    body = response.json()
    assert (body["count"], len(body["results"]), body["next"] is not None) == (3, 2, True)
    assert sent.own == ["SELECT booking"]  # the page, its total in a subquery
    with tally() as sent:
        response = client.get("/api/booking/bookings/", {"page_size": 2, "page": 2})
    assert (response.json()["count"], len(response.json()["results"])) == (3, 1)
    assert sent.own == ["SELECT booking"]
    # Past the end, and an empty list, as before.
    assert client.get("/api/booking/bookings/", {"page": 3, "page_size": 2}).status_code == 404
    client.force_authenticate(get_user_model().objects.create_user(username="new"))
    empty = client.get("/api/booking/bookings/").json()
    assert (empty["count"], empty["results"]) == (0, [])
