"""Hardening (security review): the rule holes closed at the services, the approval timeout,
bounds on what a user can set, per-account limits and the write throttles — each through the
REST API (and the admin or a command where that is the surface)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking import services, signals
from liveclass_booking.models import (
    BookingEvent,
    BookingSeries,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_session_model,
)
from tests.conftest import grant_teaching

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # a Monday
WED = date(2027, 1, 6)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def wed(hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 1, 6, hour, minute, tzinfo=UTC)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def counts() -> tuple[int, ...]:
    return (
        get_booking_model().objects.count(),
        get_session_model().objects.count(),
        SessionWaitlist.objects.count(),
        BookingSeries.objects.count(),
        BookingEvent.objects.count(),
        TeacherBookingPolicy.objects.count(),
    )


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def open_wednesday(teacher: Any) -> Any:
    return TeacherAvailability.objects.create(
        teacher=teacher, weekday=2, start_time=time(8), end_time=time(20), timezone="UTC"
    )


def lesson_body(teacher: Any, course: Any, start: datetime, minutes: int = 60) -> dict[str, Any]:
    return {
        "booking_type": "one_on_one",
        "teacher": str(teacher.pk),
        "course": str(course.pk),
        "start_at_utc": iso(start),
        "end_at_utc": iso(start + timedelta(minutes=minutes)),
    }


def series_body(teacher: Any, course: Any, series_type: str = "one_on_one_series") -> Any:
    return {
        "type": series_type,
        "teacher": str(teacher.pk),
        "course": str(course.pk),
        "frequency": "weekly",
        "start_date": WED.isoformat(),
        "start_time": "10:00",
        "timezone": "UTC",
        "duration_minutes": 60,
        "occurrence_count": 3,
    }


# 1. Rule holes ------------------------------------------------------------------------------


class TestOnlyTeachersCanBeBooked:
    """A lesson (single or series) names a teacher the resolver accepts for the course;
    every other user gets one and the same answer, revealing nothing about them."""

    @pytest.fixture
    def candidates(self, user_model: Any, student: Any) -> dict[str, Any]:
        plain = user_model.objects.create_user(username="plain", password="pw")
        TeacherAvailability.objects.create(  # even with windows: not a teacher
            teacher=plain, weekday=2, start_time=time(8), end_time=time(20), timezone="Asia/Tokyo"
        )
        retired = grant_teaching(user_model.objects.create_user(username="retired", password="pw"))
        retired.is_active = False
        retired.save()
        missing = user_model(username="ghost")
        missing.pk = (
            987654 if isinstance(student.pk, int) else "6f1c1f9e-0000-4000-8000-000000000001"
        )
        return {"not a teacher": plain, "inactive": retired, "no such user": missing}

    @pytest.mark.usefixtures("open_wednesday")
    def test_unknown_inactive_and_non_teachers_get_the_same_answer(
        self, student: Any, teacher: Any, course: Any, candidates: dict[str, Any]
    ) -> None:
        client = client_for(student)
        before = counts()
        answers = {}
        for label, user in candidates.items():
            for kind in ("lesson", "series", "slots"):
                if kind == "lesson":
                    response = client.post(
                        url("booking-list"), lesson_body(user, course, wed(10)), format="json"
                    )
                elif kind == "series":
                    response = client.post(
                        url("series-list"), series_body(user, course), format="json"
                    )
                else:
                    response = client.get(
                        url("slot-list"),
                        {
                            "teacher": str(user.pk),
                            "course": str(course.pk),
                            "start": iso(wed(0)),
                            "end": iso(wed(23)),
                            "duration": 60,
                        },
                    )
                answers[(label, kind)] = (response.status_code, response.json())
        assert counts() == before
        bodies = {answer for answer in map(repr, answers.values())}
        assert len(bodies) == 1, answers
        status, body = next(iter(answers.values()))
        assert status == 400
        assert body["code"] == "invalid"
        assert body["errors"] == {"teacher": ["Not a teacher of this course."]}
        assert "Tokyo" not in repr(answers)  # nothing of the non-teacher leaks

    @pytest.mark.usefixtures("open_wednesday")
    def test_a_real_teacher_is_still_booked(self, student: Any, teacher: Any, course: Any) -> None:
        response = client_for(student).post(
            url("booking-list"), lesson_body(teacher, course, wed(10)), format="json"
        )
        assert response.status_code == 201, response.json()

    def test_the_host_resolver_decides_per_course(
        self, student: Any, teacher: Any, course: Any, open_wednesday: Any
    ) -> None:
        with override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.NobodyTeaches"):
            response = client_for(student).post(
                url("booking-list"), lesson_body(teacher, course, wed(10)), format="json"
            )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert not get_booking_model().objects.exists()


class TestRescheduleNeedsTheTarget:
    @pytest.fixture
    def other_teacher(self, user_model: Any) -> Any:
        return grant_teaching(user_model.objects.create_user(username="other_teacher"))

    def test_a_teacher_cannot_move_a_student_into_another_teachers_session(
        self, make_session: Any, teacher: Any, other_teacher: Any, student: Any, course: Any
    ) -> None:
        mine = make_session()
        theirs = make_session(teacher=other_teacher, start_at_utc=NOW + timedelta(days=5))
        TeacherBookingPolicy.objects.create(teacher=other_teacher, requires_approval_for_group=True)
        booking = services.book_group_session(student=student, session=mine)
        before = counts()
        response = client_for(teacher).post(
            url("booking-reschedule", booking.pk), {"session": theirs.pk}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (403, "not_allowed")
        assert counts() == before
        booking.refresh_from_db()
        theirs.refresh_from_db()
        assert (booking.status, theirs.seats_taken) == ("confirmed", 0)

    def test_the_target_teacher_may_move_it_and_confirms_it(
        self, make_session: Any, teacher: Any, other_teacher: Any, student: Any, staff: Any
    ) -> None:
        mine = make_session()
        theirs = make_session(teacher=other_teacher, start_at_utc=NOW + timedelta(days=5))
        TeacherBookingPolicy.objects.create(teacher=other_teacher, requires_approval_for_group=True)
        booking = services.book_group_session(student=student, session=mine)
        response = client_for(staff).post(
            url("booking-reschedule", booking.pk), {"session": theirs.pk}, format="json"
        )
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "confirmed"  # staff manage the target: approved

    def test_a_student_moving_gets_the_targets_approval_rule(
        self, make_session: Any, other_teacher: Any, student: Any
    ) -> None:
        mine = make_session()
        theirs = make_session(teacher=other_teacher, start_at_utc=NOW + timedelta(days=5))
        TeacherBookingPolicy.objects.create(teacher=other_teacher, requires_approval_for_group=True)
        booking = services.book_group_session(student=student, session=mine)
        response = client_for(student).post(
            url("booking-reschedule", booking.pk), {"session": theirs.pk}, format="json"
        )
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "pending"
        assert response.json()["approval_expires_at"] is not None

    def test_a_student_moving_needs_can_book_for_the_target(
        self, make_session: Any, student: Any
    ) -> None:
        booking = services.book_group_session(student=student, session=make_session())
        target = make_session(start_at_utc=NOW + timedelta(days=5))
        with override_settings(LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.NobodyBooks"):
            response = client_for(student).post(
                url("booking-reschedule", booking.pk), {"session": target.pk}, format="json"
            )
        assert (response.status_code, response.json()["code"]) == (403, "not_allowed")

    @pytest.mark.usefixtures("open_wednesday")
    def test_a_teacher_moving_a_lesson_keeps_to_the_notice(
        self, teacher: Any, student: Any, course: Any, clock: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
        lesson = services.request_one_on_one(
            student=student, teacher=teacher, course=course, start_at_utc=wed(10),
            end_at_utc=wed(11),
        )  # fmt: skip
        clock.move_to(wed(0))
        response = client_for(teacher).post(
            url("booking-reschedule", lesson.pk),
            {"start_at_utc": iso(wed(12)), "end_at_utc": iso(wed(13))},
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (400, "min_notice")


#: The session admin's waitlist inline, empty.
INLINE_MANAGEMENT = {
    "waitlist_entries-TOTAL_FORMS": "0",
    "waitlist_entries-INITIAL_FORMS": "0",
}


class TestAdminWritesThroughTheServices:
    def test_adding_a_session_in_the_admin_enrols_a_waiting_group_series(
        self, client: Any, staff: Any, teacher: Any, student: Any, course: Any
    ) -> None:
        report = services.create_series(
            student=student,
            teacher=teacher,
            course=course,
            series_type="group_series",
            rule=services.series.Recurrence(
                frequency="weekly",
                start_date=WED,
                start_time=time(10),
                timezone="UTC",
                duration_minutes=60,
                occurrence_count=2,
            ),
        )
        assert [r.status for r in report.occurrences] == ["awaiting_session"] * 2
        client.force_login(staff)
        opts = get_session_model()._meta
        response = client.post(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_add"),
            {
                "course": course.pk,
                "teacher": teacher.pk,
                "title": "Added in the admin",
                "description": "",
                "start_at_utc_0": "2027-01-06",
                "start_at_utc_1": "10:00:00",
                "end_at_utc_0": "2027-01-06",
                "end_at_utc_1": "11:00:00",
                "timezone_snapshot": "UTC",
                "meeting_provider": "custom",
                "capacity": 5,
                **INLINE_MANAGEMENT,
            },
        )
        assert response.status_code == 302, response.context["errors"]
        session = get_session_model().objects.get(title="Added in the admin")
        assert session.seats_taken == 1
        first = report.series.items.order_by("occurrence_index").first()
        assert (first.status, first.session_id) == ("booked", session.pk)
        assert first.booking.session_id == session.pk

    def test_the_admin_refuses_a_session_in_the_past_as_a_form_error(
        self, client: Any, staff: Any, teacher: Any, course: Any
    ) -> None:
        client.force_login(staff)
        opts = get_session_model()._meta
        response = client.post(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_add"),
            {
                "course": course.pk,
                "teacher": teacher.pk,
                "title": "Too late",
                "start_at_utc_0": "2026-01-06",
                "start_at_utc_1": "10:00:00",
                "end_at_utc_0": "2026-01-06",
                "end_at_utc_1": "11:00:00",
                "timezone_snapshot": "UTC",
                "meeting_provider": "custom",
                "capacity": 5,
                **INLINE_MANAGEMENT,
            },
        )
        assert response.status_code == 200
        assert "A session must start in the future. (invalid)" in response.content.decode()
        assert not get_session_model().objects.exists()


# The approval timeout ----------------------------------------------------------------------


class TestApprovalTimeout:
    @pytest.fixture
    def lesson(self, teacher: Any, student: Any, course: Any, open_wednesday: Any) -> Any:
        TeacherBookingPolicy.objects.create(teacher=teacher, approval_timeout_hours=24)
        response = client_for(student).post(
            url("booking-list"), lesson_body(teacher, course, wed(10)), format="json"
        )
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == "pending"
        assert response.json()["approval_expires_at"] == iso(NOW + timedelta(hours=24))
        return get_booking_model().objects.get(pk=response.json()["id"])

    def test_an_undecided_request_reads_expired_without_any_job(
        self, lesson: Any, student: Any, teacher: Any, course: Any, clock: Any
    ) -> None:
        clock.move_to(NOW + timedelta(hours=24, seconds=1))
        data = client_for(student).get(url("booking-detail", lesson.pk)).json()
        assert data["status"] == "expired"
        listed = client_for(teacher).get(url("booking-list"), {"status": "expired"}).json()
        assert [row["id"] for row in listed["results"]] == [data["id"]]
        pending = client_for(teacher).get(url("booking-list"), {"status": "pending"}).json()
        assert pending["results"] == []
        # Its time is free again: in the slots, and for another booking.
        slots = client_for(student).get(
            url("slot-list"),
            {
                "teacher": str(teacher.pk),
                "start": iso(wed(10)),
                "end": iso(wed(11)),
                "duration": 60,
            },
        )
        assert [slot["start_at_utc"] for slot in slots.json()["results"]] == [iso(wed(10))]

    def test_the_time_is_booked_again_and_the_expiry_is_audited_and_signalled(
        self, lesson: Any, other_student: Any, teacher: Any, course: Any, clock: Any,
        django_capture_on_commit_callbacks: Any,
    ) -> None:  # fmt: skip
        received: list[Any] = []

        def receive(sender: Any, **kwargs: Any) -> None:
            received.append(kwargs)

        signals.booking_expired.connect(receive, weak=False)
        try:
            clock.move_to(NOW + timedelta(hours=25))
            with django_capture_on_commit_callbacks(execute=True):
                response = client_for(other_student).post(
                    url("booking-list"), lesson_body(teacher, course, wed(10)), format="json"
                )
        finally:
            signals.booking_expired.disconnect(receive)
        assert response.status_code == 201, response.json()
        lesson.refresh_from_db()
        assert lesson.status == "expired"
        event = BookingEvent.objects.get(booking=lesson, to_status="expired")
        assert (event.from_status, event.actor, event.reason) == (
            "pending",
            None,
            "approval timeout",
        )
        assert [(r["booking"].pk, r["from_status"]) for r in received] == [(lesson.pk, "pending")]

    def test_nobody_can_decide_an_expired_request(
        self, lesson: Any, teacher: Any, student: Any, clock: Any
    ) -> None:
        clock.move_to(NOW + timedelta(hours=30))
        for who, action in ((teacher, "approve"), (teacher, "decline"), (student, "cancel")):
            response = client_for(who).post(url(f"booking-{action}", lesson.pk), {}, format="json")
            assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")
        lesson.refresh_from_db()
        assert lesson.status == "pending"  # nothing written; it reads as expired

    def test_a_pending_seat_expires_and_goes_to_the_waitlist(
        self, make_session: Any, teacher: Any, student: Any, other_student: Any,
        user_model: Any, clock: Any,
    ) -> None:  # fmt: skip
        TeacherBookingPolicy.objects.create(
            teacher=teacher, requires_approval_for_group=True, approval_timeout_hours=2
        )
        session = make_session(capacity=1)
        pending = services.book_group_session(student=student, session=session)
        services.join_waitlist(student=other_student, session=session)
        late = user_model.objects.create_user(username="late")
        clock.move_to(NOW + timedelta(hours=3))
        response = client_for(late).post(
            url("booking-list"), {"booking_type": "group_session", "session": session.pk},
            format="json",
        )  # fmt: skip
        # The expired request's seat went to the student waiting, not to the late comer.
        assert (response.status_code, response.json()["code"]) == (409, "session_full")
        pending.refresh_from_db()
        entry = SessionWaitlist.objects.get(student_user=other_student)
        session.refresh_from_db()
        assert (pending.status, entry.status, session.seats_taken) == ("expired", "offered", 1)

    def test_the_deadline_is_never_after_the_start(
        self, make_session: Any, teacher: Any, student: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
        session = make_session(start_at_utc=NOW + timedelta(hours=10))
        booking = services.book_group_session(student=student, session=session)
        assert booking.approval_expires_at == session.start_at_utc

    def test_the_command_records_expiries_and_gives_old_requests_a_deadline(
        self, lesson: Any, make_session: Any, teacher: Any, other_student: Any, clock: Any
    ) -> None:
        TeacherBookingPolicy.objects.filter(teacher=teacher).update(
            requires_approval_for_group=True
        )
        old = services.book_group_session(student=other_student, session=make_session())
        get_booking_model().objects.filter(pk=old.pk).update(approval_expires_at=None)
        clock.move_to(NOW + timedelta(hours=25))
        out = StringIO()
        call_command("liveclass_booking_expire_requests", stdout=out)
        assert "1 request(s) expired; 1 request(s) without a deadline given one." in out.getvalue()
        lesson.refresh_from_db()
        old.refresh_from_db()
        assert lesson.status == "expired"
        assert (old.status, old.approval_expires_at) == ("pending", NOW + timedelta(hours=49))
        call_command("liveclass_booking_expire_requests", stdout=StringIO())  # idempotent
        assert BookingEvent.objects.filter(to_status="expired").count() == 1


# Bounds -------------------------------------------------------------------------------------


class TestBounds:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("min_notice_hours", 8761),
            ("cancel_window_hours", 2**31),
            ("buffer_before_minutes", 1441),
            ("buffer_after_minutes", 10**6),
            ("max_bookings_per_day", 1001),
            ("approval_timeout_hours", 0),
        ],
    )
    def test_policy_numbers_out_of_range_are_refused(
        self, teacher: Any, field: str, value: int
    ) -> None:
        response = client_for(teacher).post(url("policy-list"), {field: value}, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert field in response.json()["errors"]
        assert not TeacherBookingPolicy.objects.exists()

    def test_the_database_refuses_them_too(self, teacher: Any) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            TeacherBookingPolicy.objects.create(teacher=teacher, buffer_after_minutes=100000)

    def test_free_text_is_bounded(self, student: Any, make_session: Any) -> None:
        session = make_session()
        response = client_for(student).post(
            url("booking-list"),
            {"booking_type": "group_session", "session": session.pk, "student_note": "x" * 5001},
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert "student_note" in response.json()["errors"]
        with pytest.raises(services.rules.InvalidInput):
            services.book_group_session(student=student, session=session, note="x" * 5001)
        assert not get_booking_model().objects.exists()

    def test_capacity_is_bounded(self, teacher: Any, course: Any) -> None:
        response = client_for(teacher).post(
            url("session-list"),
            {
                "course": course.pk,
                "title": "Huge",
                "start_at_utc": iso(NOW + timedelta(days=2)),
                "end_at_utc": iso(NOW + timedelta(days=2, hours=1)),
                "capacity": 10001,
            },
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert "capacity" in response.json()["errors"]


# Per-account limits -------------------------------------------------------------------------


def limited(**limits: Any) -> Any:
    return override_settings(LIVECLASS_BOOKING_LIMITS=limits)


class TestLimits:
    def test_seats_per_booking(self, student: Any, make_session: Any) -> None:
        session = make_session(capacity=1000)
        response = client_for(student).post(
            url("booking-list"),
            {"booking_type": "group_session", "session": session.pk, "seats_reserved": 11},
            format="json",
        )
        body = response.json()
        assert (response.status_code, body["code"]) == (409, "limit_reached")
        assert (body["limit"], body["max"]) == ("seats_per_booking", 10)
        assert "seats_per_booking is 10" in body["detail"]
        session.refresh_from_db()
        assert session.seats_taken == 0

    def test_active_bookings_per_student(self, student: Any, make_session: Any) -> None:
        client = client_for(student)
        sessions = [make_session(start_at_utc=NOW + timedelta(days=2 + i)) for i in range(3)]
        with limited(active_bookings_per_student=2):
            codes = [
                client.post(
                    url("booking-list"),
                    {"booking_type": "group_session", "session": s.pk},
                    format="json",
                ).status_code
                for s in sessions
            ]
            assert codes == [201, 201, 409]
            # A cancelled booking no longer counts.
            first = get_booking_model().objects.filter(student_user=student).first()
            services.cancel_booking(first, actor=student)
            again = client.post(
                url("booking-list"),
                {"booking_type": "group_session", "session": sessions[2].pk},
                format="json",
            )
            assert again.status_code == 201, again.json()

    @pytest.mark.usefixtures("open_wednesday")
    def test_pending_requests_per_teacher(self, student: Any, teacher: Any, course: Any) -> None:
        client = client_for(student)
        with limited(pending_requests_per_teacher=2):
            codes = [
                client.post(
                    url("booking-list"), lesson_body(teacher, course, wed(h)), format="json"
                ).status_code
                for h in (9, 11, 13)
            ]
            assert codes == [201, 201, 409]
            # A series waiting for approval counts as one request.
            response = client.post(
                url("series-list"),
                {**series_body(teacher, course), "start_time": "15:00"},
                format="json",
            )
            assert (response.status_code, response.json()["limit"]) == (
                409,
                "pending_requests_per_teacher",
            )

    def test_open_waitlist_entries_per_student(
        self, student: Any, other_student: Any, make_session: Any
    ) -> None:
        sessions = [
            make_session(capacity=1, start_at_utc=NOW + timedelta(days=2 + i)) for i in range(2)
        ]
        for session in sessions:
            services.book_group_session(student=other_student, session=session)
        client = client_for(student)
        with limited(open_waitlist_entries_per_student=1):
            codes = [
                client.post(url("waitlist-list"), {"session": s.pk}, format="json").status_code
                for s in sessions
            ]
        assert codes == [201, 409]

    def test_active_series_per_student(self, student: Any, teacher: Any, course: Any) -> None:
        client = client_for(student)
        with limited(active_series_per_student=1):
            first = client.post(
                url("series-list"), series_body(teacher, course, "group_series"), format="json"
            )
            second = client.post(
                url("series-list"),
                {**series_body(teacher, course, "group_series"), "start_time": "12:00"},
                format="json",
            )
        assert first.status_code == 201, first.json()
        assert (second.status_code, second.json()["limit"]) == (409, "active_series_per_student")
        assert BookingSeries.objects.count() == 1

    def test_a_series_counts_all_its_bookings(
        self, student: Any, teacher: Any, course: Any, open_wednesday: Any
    ) -> None:
        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_one_on_one=False)
        with limited(active_bookings_per_student=2):
            response = client_for(student).post(
                url("series-list"), series_body(teacher, course), format="json"
            )
        assert (response.status_code, response.json()["limit"]) == (
            409,
            "active_bookings_per_student",
        )
        assert not get_booking_model().objects.exists()

    def test_the_resolver_can_raise_a_limit_per_teacher(
        self, student: Any, make_session: Any
    ) -> None:
        session = make_session(capacity=100)
        with override_settings(
            LIVECLASS_BOOKING_POLICY_RESOLVER="tests.resolvers.BigGroupsForTeacher"
        ):
            response = client_for(student).post(
                url("booking-list"),
                {"booking_type": "group_session", "session": session.pk, "seats_reserved": 30},
                format="json",
            )
        assert response.status_code == 201, response.json()

    def test_none_lifts_a_limit(self, student: Any, make_session: Any) -> None:
        session = make_session(capacity=100)
        with limited(seats_per_booking=None):
            response = client_for(student).post(
                url("booking-list"),
                {"booking_type": "group_session", "session": session.pk, "seats_reserved": 50},
                format="json",
            )
        assert response.status_code == 201, response.json()


# Throttles ----------------------------------------------------------------------------------


class TestThrottles:
    @pytest.fixture(autouse=True)
    def fresh_cache(self) -> Any:
        cache.clear()
        yield
        cache.clear()

    def test_the_defaults_are_on(self, student: Any, make_session: Any) -> None:
        session = make_session()
        client = client_for(student)
        with override_settings(LIVECLASS_BOOKING_THROTTLE_RATES=None):
            answers = [
                client.post(
                    url("booking-list"),
                    {"booking_type": "group_session", "session": session.pk},
                    format="json",
                )
                for _ in range(31)
            ]
        assert [a.status_code for a in answers[:2]] == [201, 409]  # then already_booked
        last = answers[-1]
        assert (last.status_code, last.json()["code"]) == (429, "throttled")
        assert int(last["Retry-After"]) > 0

    def test_a_scope_can_be_changed_or_turned_off(
        self, student: Any, teacher: Any, course: Any
    ) -> None:
        client = client_for(teacher)

        def create() -> int:
            return client.post(
                url("session-list"),
                {
                    "course": course.pk,
                    "title": "Class",
                    "start_at_utc": iso(NOW + timedelta(days=2)),
                    "end_at_utc": iso(NOW + timedelta(days=2, hours=1)),
                    "capacity": 5,
                },
                format="json",
            ).status_code

        with override_settings(LIVECLASS_BOOKING_THROTTLE_RATES={"sessions": "2/hour"}):
            assert [create() for _ in range(3)] == [201, 201, 429]
            # Reads are never throttled, nor other scopes.
            assert client.get(url("session-list")).status_code == 200
        with override_settings(LIVECLASS_BOOKING_THROTTLE_RATES={"sessions": None}):
            assert create() == 201

    def test_users_are_counted_apart(
        self, student: Any, other_student: Any, make_session: Any
    ) -> None:
        sessions = [make_session(start_at_utc=NOW + timedelta(days=2 + i)) for i in range(2)]
        with override_settings(LIVECLASS_BOOKING_THROTTLE_RATES={"book": "1/min"}):
            first = client_for(student).post(
                url("booking-list"),
                {"booking_type": "group_session", "session": sessions[0].pk},
                format="json",
            )
            second = client_for(other_student).post(
                url("booking-list"),
                {"booking_type": "group_session", "session": sessions[0].pk},
                format="json",
            )
            third = client_for(student).post(
                url("booking-list"),
                {"booking_type": "group_session", "session": sessions[1].pk},
                format="json",
            )
        assert (first.status_code, second.status_code, third.status_code) == (201, 201, 429)


class TestAdminTeacherRows:
    def test_an_availability_exception_needs_a_teacher_who_teaches(
        self, client: Any, staff: Any, student: Any, teacher: Any
    ) -> None:
        from liveclass_booking.models import AvailabilityException

        client.force_login(staff)
        add = reverse("admin:liveclass_booking_availabilityexception_add")
        body = {"date": "2027-01-06", "kind": "unavailable", "timezone": "UTC", "reason": ""}
        refused = client.post(add, {**body, "teacher": student.pk})
        assert refused.status_code == 200
        assert "may not teach this course. (not_allowed)" in refused.content.decode()
        assert not AvailabilityException.objects.exists()
        assert client.post(add, {**body, "teacher": teacher.pk}).status_code == 302
        assert AvailabilityException.objects.get().teacher_id == teacher.pk

    def test_a_policy_saved_in_the_admin_goes_through_the_service(
        self, client: Any, staff: Any, teacher: Any
    ) -> None:
        client.force_login(staff)
        response = client.post(
            reverse("admin:liveclass_booking_teacherbookingpolicy_add"),
            {
                "teacher": teacher.pk,
                "requires_approval_for_one_on_one": "on",
                "min_notice_hours": 8761,
                "cancel_window_hours": 24,
                "buffer_before_minutes": 0,
                "buffer_after_minutes": 0,
                "approval_timeout_hours": 48,
            },
        )
        assert response.status_code == 200  # the bound is a form error
        assert not TeacherBookingPolicy.objects.exists()
        response = client.post(
            reverse("admin:liveclass_booking_teacherbookingpolicy_add"),
            {
                "teacher": teacher.pk,
                "requires_approval_for_one_on_one": "on",
                "min_notice_hours": 12,
                "cancel_window_hours": 24,
                "buffer_before_minutes": 0,
                "buffer_after_minutes": 0,
                "approval_timeout_hours": 6,
            },
        )
        assert response.status_code == 302
        assert TeacherBookingPolicy.objects.get(teacher=teacher).approval_timeout_hours == 6
