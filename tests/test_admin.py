"""The admin: every model is browsable, searchable and filtered; service-owned state is
read-only; the audit trail cannot be edited."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from liveclass_booking.models import (
    AvailabilityException,
    BookingEvent,
    BookingSeries,
    BookingSeriesItem,
    IdempotencyKey,
    SessionWaitlist,
    TeacherAvailability,
    TeacherBookingPolicy,
    get_booking_model,
    get_course_model,
    get_session_model,
)

pytestmark = pytest.mark.django_db


def url(model: Any, view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture
def admin_client_(client: Client, staff: Any) -> Client:
    client.force_login(staff)
    return client


@pytest.fixture
def every_object(
    session: Any, make_booking: Any, teacher: Any, student: Any, course: Any
) -> dict[Any, Any]:
    booking = make_booking()
    series = BookingSeries.objects.create(
        student_user=student,
        teacher=teacher,
        course=course,
        type="one_on_one_series",
        occurrence_count=4,
        start_date=date(2027, 1, 4),
        start_time=time(17),
        duration_minutes=45,
        timezone="Europe/Berlin",
    )
    return {
        get_session_model(): session,
        get_booking_model(): booking,
        TeacherBookingPolicy: TeacherBookingPolicy.objects.create(teacher=teacher),
        BookingSeries: series,
        BookingSeriesItem: BookingSeriesItem.objects.create(
            series=series,
            booking=booking,
            occurrence_index=1,
            start_at_utc=booking.start_at_utc,
            end_at_utc=booking.end_at_utc,
        ),
        SessionWaitlist: SessionWaitlist.objects.create(session=session, student_user=teacher),
        TeacherAvailability: TeacherAvailability.objects.create(
            teacher=teacher, weekday=0, start_time=time(9), end_time=time(12), timezone="UTC"
        ),
        AvailabilityException: AvailabilityException.objects.create(
            teacher=teacher, date=date(2027, 1, 4), timezone="UTC"
        ),
        BookingEvent: BookingEvent.objects.create(booking=booking, to_status="confirmed"),
        IdempotencyKey: IdempotencyKey.objects.create(
            user=student, scope="bookings", key="abc", request_fingerprint="f"
        ),
    }


ADMIN_MODELS = [
    TeacherBookingPolicy,
    BookingSeries,
    SessionWaitlist,
    TeacherAvailability,
    AvailabilityException,
    BookingEvent,
    IdempotencyKey,
]


def test_every_model_has_an_admin() -> None:
    for model in [*ADMIN_MODELS, get_session_model(), get_booking_model()]:
        assert admin.site.is_registered(model), model
    # The library's own course is administered only when it is the active course model.
    from liveclass_booking.models import Course

    assert admin.site.is_registered(Course) == (get_course_model() is Course)


def test_changelists_and_change_pages_load(
    admin_client_: Client, every_object: dict[Any, Any]
) -> None:
    for model, obj in every_object.items():
        if not admin.site.is_registered(model):
            continue  # series items are shown inline on their series
        assert admin_client_.get(url(model, "changelist")).status_code == 200, model
        assert admin_client_.get(url(model, "changelist"), {"q": "student"}).status_code == 200
        assert admin_client_.get(url(model, "change", obj.pk)).status_code == 200, model


def test_date_hierarchy_and_filters_work(admin_client_: Client, every_object: Any) -> None:
    session = every_object[get_session_model()]
    response = admin_client_.get(
        url(get_session_model(), "changelist"),
        {"status__exact": "scheduled", "start_at_utc__year": session.start_at_utc.year},
    )
    assert response.status_code == 200
    assert session.title in response.content.decode()


def test_search_finds_bookings_by_student(
    admin_client_: Client, every_object: Any, student: Any
) -> None:
    model = get_booking_model()
    found = admin_client_.get(url(model, "changelist"), {"q": student.username})
    missing = admin_client_.get(url(model, "changelist"), {"q": "nobody-by-that-name"})
    assert found.context["cl"].result_count == 1
    assert missing.context["cl"].result_count == 0


def test_policies_and_availability_can_be_added(admin_client_: Client) -> None:
    for model in (TeacherBookingPolicy, TeacherAvailability, AvailabilityException):
        assert admin_client_.get(url(model, "add")).status_code == 200


def test_bookings_waitlist_and_series_cannot_be_added_or_deleted(
    admin_client_: Client, every_object: Any
) -> None:
    for model in (get_booking_model(), SessionWaitlist, BookingSeries):
        obj = every_object[model]
        assert admin_client_.get(url(model, "add")).status_code == 403
        assert admin_client_.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
        assert model.objects.filter(pk=obj.pk).exists()


def test_booking_status_and_notes_cannot_be_edited(
    admin_client_: Client, every_object: Any
) -> None:
    booking = every_object[get_booking_model()]
    admin_client_.post(
        url(get_booking_model(), "change", booking.pk),
        {
            "status": "cancelled",
            "student_note": "edited",
            "teacher_note": "",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )
    booking.refresh_from_db()
    assert booking.status == "confirmed"
    # Every write goes through the services: the notes are the student's and the teacher's
    # (the teacher's is set when approving), not the admin's to rewrite.
    assert booking.student_note != "edited"


def test_audit_events_are_read_only(admin_client_: Client, every_object: Any) -> None:
    event = every_object[BookingEvent]
    assert admin_client_.get(url(BookingEvent, "add")).status_code == 403
    response = admin_client_.post(url(BookingEvent, "change", event.pk), {"to_status": "x"})
    assert response.status_code == 403
    assert (
        admin_client_.post(url(BookingEvent, "delete", event.pk), {"post": "yes"}).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.to_status == "confirmed"


def test_seats_taken_cannot_be_edited_on_a_session(
    admin_client_: Client, every_object: Any
) -> None:
    model = get_session_model()
    session = every_object[model]
    page = admin_client_.get(url(model, "change", session.pk)).content.decode()
    assert 'name="seats_taken"' not in page
    assert 'name="start_at_utc_0"' not in page  # times move through the services only
    assert 'name="capacity"' in page


def test_capacity_below_seats_taken_is_a_form_error(
    admin_client_: Client, every_object: Any
) -> None:
    model = get_session_model()
    session = every_object[model]
    model.objects.filter(pk=session.pk).update(seats_taken=3)
    response = admin_client_.post(
        url(model, "change", session.pk),
        {
            "course": session.course_id,
            "teacher": session.teacher_id,
            "title": session.title,
            "timezone_snapshot": "Europe/Berlin",
            "meeting_provider": "custom",
            "capacity": 2,
        },
    )
    assert response.status_code == 200
    assert "Capacity cannot go below the 3 seats already taken" in response.content.decode()
    session.refresh_from_db()
    assert session.capacity == 10


class TestActionsGoThroughTheServices:
    def test_approve_action(
        self, admin_client_: Client, session: Any, student: Any, teacher: Any, staff: Any
    ) -> None:
        from liveclass_booking import services

        TeacherBookingPolicy.objects.create(teacher=teacher, requires_approval_for_group=True)
        booking = services.book_group_session(student=student, session=session)
        response = admin_client_.post(
            url(get_booking_model(), "changelist"),
            {"action": "approve", "_selected_action": [booking.pk]},
            follow=True,
        )
        assert "1 booking(s) approved." in response.content.decode()
        booking.refresh_from_db()
        assert (booking.status, booking.decided_by_id) == ("confirmed", staff.pk)
        assert booking.events.last().actor_id == staff.pk

    def test_failed_action_reports_the_error_code(
        self, admin_client_: Client, session: Any, student: Any
    ) -> None:
        from liveclass_booking import services

        booking = services.book_group_session(student=student, session=session)  # confirmed
        response = admin_client_.post(
            url(get_booking_model(), "changelist"),
            {"action": "decline", "_selected_action": [booking.pk]},
            follow=True,
        )
        assert "(invalid_transition)" in response.content.decode()
        booking.refresh_from_db()
        assert booking.status == "confirmed"

    def test_cancel_and_attendance_actions(
        self, admin_client_: Client, session: Any, student: Any
    ) -> None:
        from liveclass_booking import services

        booking = services.book_group_session(student=student, session=session)
        admin_client_.post(
            url(get_booking_model(), "changelist"),
            {"action": "mark_attended", "_selected_action": [booking.pk]},
        )
        booking.refresh_from_db()
        assert booking.status == "confirmed"  # not started yet: refused
        admin_client_.post(
            url(get_booking_model(), "changelist"),
            {"action": "cancel", "_selected_action": [booking.pk]},
        )
        booking.refresh_from_db()
        session.refresh_from_db()
        assert (booking.status, session.seats_taken) == ("cancelled", 0)

    def test_cancel_session_action(self, admin_client_: Client, session: Any, student: Any) -> None:
        from liveclass_booking import services

        booking = services.book_group_session(student=student, session=session)
        admin_client_.post(
            url(get_session_model(), "changelist"),
            {"action": "cancel_sessions", "_selected_action": [session.pk]},
        )
        session.refresh_from_db()
        booking.refresh_from_db()
        assert (session.status, booking.status) == ("cancelled", "cancelled")


class TestWaitlistAdmin:
    @pytest.fixture
    def queue(self, make_session: Any, user_model: Any) -> Any:
        """A full one-seat session with ``a`` then ``b`` waiting."""
        from liveclass_booking import services

        session = make_session(capacity=1)
        booker = user_model.objects.create_user(username="booker", password="pw")
        services.book_group_session(student=booker, session=session)
        entries = []
        for name in ("a", "b"):
            user = user_model.objects.create_user(username=name, password="pw")
            entries.append(services.join_waitlist(student=user, session=session))
        return session, booker, entries

    def test_the_session_page_shows_its_queue_in_order(
        self, admin_client_: Client, queue: Any
    ) -> None:
        session, _, _ = queue
        page = admin_client_.get(url(get_session_model(), "change", session.pk)).content.decode()
        assert "Waitlist (in join order)" in page
        assert page.index(">a<") < page.index(">b<")

    def test_raising_capacity_in_the_admin_offers_the_seat(
        self, admin_client_: Client, queue: Any
    ) -> None:
        session, _, (a, b) = queue
        response = admin_client_.post(
            url(get_session_model(), "change", session.pk),
            {
                "course": session.course_id,
                "teacher": session.teacher_id,
                "title": session.title,
                "timezone_snapshot": "Europe/Berlin",
                "meeting_provider": "custom",
                "capacity": 2,
                "waitlist_entries-TOTAL_FORMS": 2,
                "waitlist_entries-INITIAL_FORMS": 2,
            },
            follow=True,
        )
        assert "1 seat(s) offered to the waitlist." in response.content.decode()
        a.refresh_from_db()
        b.refresh_from_db()
        session.refresh_from_db()
        assert (a.status, b.status, session.seats_taken) == ("offered", "waiting", 2)

    def test_expire_now_passes_the_seat_on_and_explains_refusals(
        self, admin_client_: Client, queue: Any
    ) -> None:
        from liveclass_booking import services

        session, booker, (a, b) = queue
        services.cancel_booking(session.bookings.get(), actor=booker)
        response = admin_client_.post(
            url(SessionWaitlist, "changelist"),
            {"action": "expire_now", "_selected_action": [a.pk, b.pk]},
            follow=True,
        )
        page = response.content.decode()
        assert "1 offer(s) expired." in page
        assert "holds no open offer. (invalid_transition)" in page  # b was waiting when asked
        a.refresh_from_db()
        b.refresh_from_db()
        assert (a.status, b.status) == ("expired", "offered")

    def test_offer_next_fills_a_seat_freed_outside_the_services(
        self, admin_client_: Client, queue: Any
    ) -> None:
        session, _, (a, b) = queue
        get_session_model().objects.filter(pk=session.pk).update(capacity=2)
        response = admin_client_.post(
            url(SessionWaitlist, "changelist"),
            {"action": "offer_next", "_selected_action": [b.pk]},
            follow=True,
        )
        assert "1 seat(s) offered." in response.content.decode()
        a.refresh_from_db()
        b.refresh_from_db()
        assert (a.status, b.status) == ("offered", "waiting")

    def test_the_changelist_shows_places_in_line(self, admin_client_: Client, queue: Any) -> None:
        response = admin_client_.get(url(SessionWaitlist, "changelist"))
        assert response.status_code == 200
        rows = response.context["cl"].result_list
        assert [(e.student_user.username, e.position) for e in rows] == [("a", 1), ("b", 2)]


class TestSeriesAdmin:
    def test_pause_resume_and_cancel_actions_go_through_the_services(
        self, admin_client_: Client, teacher: Any, student: Any, course: Any, make_session: Any
    ) -> None:
        from datetime import UTC, time

        from liveclass_booking import services
        from liveclass_booking.recurrence import Recurrence

        soon = timezone.now().replace(second=0, microsecond=0) + timedelta(days=3)
        first = make_session(start_at_utc=soon)
        local = first.start_at_utc.astimezone(UTC)
        report = services.create_series(
            student=student,
            teacher=teacher,
            course=course,
            series_type="group_series",
            rule=Recurrence(
                frequency="weekly",
                start_date=local.date(),
                start_time=time(local.hour, local.minute),
                timezone="UTC",
                duration_minutes=60,
                occurrence_count=3,
            ),
        )
        series = report.series
        page = admin_client_.get(url(BookingSeries, "change", series.pk)).content.decode()
        assert "awaiting_session" in page or "Waiting for a session" in page

        def act(action: str) -> str:
            response = admin_client_.post(
                url(BookingSeries, "changelist"),
                {"action": action, "_selected_action": [series.pk]},
                follow=True,
            )
            series.refresh_from_db()
            return response.content.decode()

        assert "1 series paused" in act("pause")
        assert series.status == "paused"
        first.refresh_from_db()
        assert first.seats_taken == 0
        assert "invalid_transition" in act("pause")
        assert "1 series resumed" in act("resume")
        first.refresh_from_db()
        assert (series.status, first.seats_taken) == ("active", 1)
        assert "1 series cancelled" in act("cancel")
        assert series.status == "cancelled"


def test_feed_tokens_are_listed_without_secrets_and_revoked_through_the_action(
    admin_client_: Client, student: Any
) -> None:
    from liveclass_booking.calendar.tokens import create_token, feed_owner
    from liveclass_booking.models import CalendarFeedToken

    token, secret = create_token(student, "phone")
    page = admin_client_.get(url(CalendarFeedToken, "changelist"), {"q": student.username})
    assert page.status_code == 200
    assert "phone" in page.content.decode()
    assert secret not in page.content.decode()
    change = admin_client_.get(url(CalendarFeedToken, "change", token.pk)).content.decode()
    assert secret not in change
    assert token.token_hash in change  # read-only, and useless without the secret
    assert admin_client_.get(url(CalendarFeedToken, "add")).status_code == 403
    response = admin_client_.post(
        url(CalendarFeedToken, "changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )
    assert "1 token(s) revoked." in response.content.decode()
    assert CalendarFeedToken.objects.get().revoked_at is not None
    assert feed_owner(secret) is None
