"""Prepared statements (liveclass_booking.prepared): the SQL the ORM compiles once per
connection, run again with new values. They must answer exactly what the queryset they were
built from answers, adapt values as the ORM does, count what an UPDATE matched, and run on
the database the routers choose."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import CharField, DateField, DateTimeField, IntegerField
from django.db.transaction import TransactionManagementError
from django.test import override_settings
from django.utils import timezone

from liveclass_booking import services
from liveclass_booking.models import TeacherAvailability, get_session_model
from liveclass_booking.prepared import Param, Prepared

pytestmark = [pytest.mark.django_db, pytest.mark.every_database]


def _windows(teacher: Any, valid_from: Any) -> Any:
    return (
        TeacherAvailability.objects.filter(teacher_id=teacher, valid_from__gte=valid_from)
        .order_by("pk")
        .values_list("pk", "weekday", "valid_from", "valid_until", "start_time", "end_time")
    )


def test_rows_are_the_querysets_rows_converted_alike(teacher: Any, user_model: Any) -> None:
    other = user_model.objects.create_user(username="other-teacher", password="x")
    for who, day in ((teacher, 1), (teacher, 20), (other, 5)):
        TeacherAvailability.objects.create(
            teacher=who,
            weekday=day % 7,
            start_time=time(9, 30),
            end_time=time(17, 15, 30),
            timezone="Europe/Berlin",
            valid_from=date(2030, 1, day),
            valid_until=date(2030, 2, day),
        )
    prepared = Prepared(
        lambda: _windows(Param("teacher", get_user_model()._meta.pk), Param("since", DateField()))
    )
    for who in (teacher, other):
        for since in (date(2029, 12, 31), date(2030, 1, 2), date(2031, 1, 1)):
            expected = list(_windows(who.pk, since))
            found = prepared.rows(teacher=who.pk, since=since)
            assert found == expected
            assert [type(value) for row in found for value in row] == [
                type(value) for row in expected for value in row
            ]
    assert len(prepared.rows(teacher=teacher.pk, since=date(2030, 1, 1))) == 2


def test_aware_datetimes_in_any_zone_select_what_the_orm_selects(make_session: Any) -> None:
    base = timezone.now().replace(microsecond=0) + timedelta(days=3)
    for hours in range(6):
        make_session(start_at_utc=base + timedelta(hours=hours))
    model = get_session_model()

    def starting_after(moment: Any) -> Any:
        return model.objects.filter(start_at_utc__gt=moment).order_by("pk").values_list("pk")

    prepared = Prepared(lambda: starting_after(Param("moment", DateTimeField())))
    for zone in ("UTC", "Asia/Kolkata", "America/St_Johns"):
        for hours in (-1, 0, 2.5, 5, 7):
            moment = (base + timedelta(hours=hours)).astimezone(ZoneInfo(zone))
            assert prepared.rows(moment=moment) == list(starting_after(moment))
    assert len(prepared.rows(moment=base + timedelta(hours=2.5))) == 3


def test_compiled_once_then_only_run(make_session: Any) -> None:
    built: list[int] = []
    model = get_session_model()

    def build() -> Any:
        built.append(1)
        return model.objects.filter(capacity__gte=Param("capacity", IntegerField())).values_list(
            "capacity"
        )

    make_session(capacity=3)
    prepared = Prepared(build)
    assert prepared.rows(capacity=3) == [(3,)]
    compiled = len(built)
    for capacity in (1, 2, 4, 5):
        prepared.rows(capacity=capacity)
    assert len(built) == compiled
    assert prepared.rows(capacity=4) == []


def test_an_update_counts_the_rows_it_matched_also_when_nothing_changes(
    make_session: Any,
) -> None:
    model = get_session_model()
    first, second = make_session(), make_session()
    prepared = Prepared(
        lambda: model.objects.filter(pk=Param("session", model._meta.pk)),
        update=lambda: {"title": Param("title", CharField())},
    )
    with transaction.atomic():
        assert prepared.update(session=first.pk, title="Renamed") == 1
        # The same value again: matched, not changed (MySQL/MariaDB count found rows too).
        assert prepared.update(session=first.pk, title="Renamed") == 1
        assert prepared.update(session=-1, title="Nobody") == 0
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.title, second.title) == ("Renamed", "Live class")


class Recording:
    """A router that routes nothing (the default database), but records what it is asked."""

    asked: list[tuple[str, str]] = []

    def db_for_read(self, model: Any, **hints: Any) -> None:
        self.asked.append(("read", model._meta.model_name))

    def db_for_write(self, model: Any, **hints: Any) -> None:
        self.asked.append(("write", model._meta.model_name))


@override_settings(DATABASE_ROUTERS=[f"{__name__}.Recording"])
def test_reads_and_writes_go_where_the_routers_send_them(
    teacher: Any, student: Any, course: Any, open_all_week: Any, session: Any
) -> None:
    Recording.asked.clear()
    start = timezone.now() + timedelta(days=2)
    services.free_slots(teacher, course, start, start + timedelta(days=1), timedelta(minutes=30))
    # The policy, the open hours and the taken time are reads: a replica may answer them.
    assert {("read", "teacherbookingpolicy"), ("read", "teacheravailability")} <= set(
        Recording.asked
    )
    # (Django itself asks db_for_write when the unsaved default policy gets its teacher.)
    writes = {asked for asked in Recording.asked if asked[0] == "write"}
    assert writes <= {("write", "teacherbookingpolicy")}, Recording.asked
    Recording.asked.clear()
    services.book_group_session(student=student, session=session)
    # A booking's row lock and its seats are writes: they go to the primary.
    user = get_user_model()._meta.model_name
    session_name = get_session_model()._meta.model_name
    assert {("write", user), ("write", session_name)} <= set(Recording.asked)


@pytest.mark.django_db(transaction=True)
def test_a_prepared_row_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it(
    student: Any,
) -> None:
    from django.db import connection

    from liveclass_booking.services.common import lock_users

    if not connection.features.has_select_for_update:
        pytest.skip("SQLite locks nothing: the ORM makes select_for_update a no-op there")
    with transaction.atomic():
        lock_users(student)  # compiled here, inside a transaction
    with pytest.raises(TransactionManagementError):
        lock_users(student)  # the same statement again, without one: a lock held for nothing


def test_none_is_refused_rather_than_compared_with_equals(make_session: Any) -> None:
    model = get_session_model()
    prepared = Prepared(
        lambda: (
            model.objects.filter(teacher_id=Param("teacher", get_user_model()._meta.pk))
            .order_by()
            .values_list("pk")
        )
    )
    with pytest.raises(ValueError, match="'teacher'"):
        prepared.rows(teacher=None)  # the ORM would ask IS NULL, or refuse an unsaved user


def test_an_update_over_a_join_is_refused(session: Any, booking_model: Any) -> None:
    prepared = Prepared(
        lambda: booking_model.objects.filter(session__title=Param("title", CharField())),
        update=lambda: {"student_note": "x"},
    )
    with pytest.raises(ValueError, match="one table"):
        prepared.update(title=session.title)


def test_an_audit_entry_is_stored_as_create_stores_it(make_booking: Any, user_model: Any) -> None:
    from liveclass_booking.models import BookingEvent
    from liveclass_booking.services.common import record_event

    booking = make_booking()
    actor = user_model.objects.create_user(username="auditor", password="x")
    at = timezone.now() - timedelta(minutes=5)
    data = {"when": at, "seats": 2, "note": "ü ✓", "nested": {"list": [1, None, "x"]}}
    record_event(booking, actor=actor, from_status="pending", to_status="confirmed", **data)
    BookingEvent.objects.create(
        booking=booking,
        actor=actor,
        from_status="pending",
        to_status="confirmed",
        reason="",
        data=data,
    )
    fields = ["booking_id", "actor_id", "from_status", "to_status", "reason", "data"]
    prepared, created = BookingEvent.objects.filter(booking=booking).order_by("pk")
    assert [getattr(prepared, name) for name in fields] == [
        getattr(created, name) for name in fields
    ]
    assert prepared.data["nested"] == {"list": [1, None, "x"]}
    assert prepared.at is not None
    assert abs(prepared.at - created.at) < timedelta(seconds=5)


def test_nothing_held_reads_as_zero(student: Any, teacher: Any) -> None:
    from liveclass_booking.services.rules import _holdings, check_group_totals

    now = timezone.now()
    assert _holdings(student, now) == {"active": 0}
    assert _holdings(student, now, teacher) == {"active": 0, "single": 0, "series": 0}
    limits = {"active_bookings_per_student": 5}
    missing = get_session_model()(pk=987654).pk
    assert check_group_totals(student, missing, limits, now) == {"waiting": False}
