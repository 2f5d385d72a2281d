"""The waitlist endpoints (docs/api.md): join, list with places in line, accept, leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from rest_framework.test import APIClient

from liveclass_booking import services
from liveclass_booking.models import SessionWaitlist
from tests.conftest import grant_teaching

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
TTL = timedelta(hours=12)


@pytest.fixture(autouse=True)
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def url(name: str, *args: Any) -> str:
    return reverse(f"liveclass_booking:{name}", args=args)


def as_json(pk: Any) -> Any:
    return pk if isinstance(pk, int) else str(pk)


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def users(user_model: Any) -> Any:
    made: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in made:
            made[name] = user_model.objects.create_user(username=name, password="pw")
        return made[name]

    return get


@pytest.fixture
def full(make_session: Any, users: Any) -> Any:
    """The teacher's session with both seats booked (by booker0 and booker1)."""
    session = make_session(capacity=2)
    for name in ("booker0", "booker1"):
        services.book_group_session(student=users(name), session=session)
    return session


def join(client: APIClient, session: Any, **headers: str) -> Any:
    return client.post(
        url("waitlist-list"), {"session": as_json(session.pk)}, format="json", headers=headers
    )


def free_a_seat(session: Any, users: Any) -> None:
    booking = session.bookings.get(student_user=users("booker0"))
    services.cancel_booking(booking, actor=users("booker0"))


class TestJoin:
    def test_a_student_joins_a_full_session_and_sees_their_place(
        self, full: Any, users: Any, clock: Any
    ) -> None:
        first = join(client_for(users("a")), full)
        clock.shift(timedelta(minutes=1))
        second = join(client_for(users("b")), full)
        assert (first.status_code, second.status_code) == (201, 201)
        body = second.json()
        assert (body["status"], body["position"], body["student_user"]) == (
            "waiting",
            2,
            as_json(users("b").pk),
        )
        assert body["created_at"] == "2027-01-04T08:01:00Z"
        assert body["offer_expires_at"] is None

    @pytest.mark.parametrize(
        ("who", "code"),
        [("booker0", "already_booked"), ("a", "already_waitlisted")],
    )
    def test_refusals_are_409_and_change_nothing(
        self, full: Any, users: Any, who: str, code: str
    ) -> None:
        join(client_for(users("a")), full)
        before = list(SessionWaitlist.objects.values())
        response = join(client_for(users(who)), full)
        assert response.status_code == 409
        assert response.json()["code"] == code
        assert list(SessionWaitlist.objects.values()) == before

    def test_a_session_with_a_free_seat_says_book_it(self, session: Any, student: Any) -> None:
        response = join(client_for(student), session)
        assert response.status_code == 409
        assert response.json()["code"] == "seats_available"
        assert response.json()["seats_available"] == 10
        assert not SessionWaitlist.objects.exists()

    def test_a_cancelled_session_is_not_bookable(self, full: Any, users: Any, teacher: Any) -> None:
        services.cancel_session(full, actor=teacher)
        response = join(client_for(users("a")), full)
        assert (response.status_code, response.json()["code"]) == (409, "session_not_bookable")

    def test_an_unknown_session_is_a_400(self, users: Any) -> None:
        response = client_for(users("a")).post(
            url("waitlist-list"), {"session": 999999}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert "session" in response.json()["errors"]

    def test_the_idempotency_key_replays_a_join(self, full: Any, users: Any) -> None:
        client = client_for(users("a"))
        first = join(client, full, **{"Idempotency-Key": "join-1"})
        again = join(client, full, **{"Idempotency-Key": "join-1"})
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert SessionWaitlist.objects.count() == 1
        conflict = client.post(
            url("waitlist-list"),
            {"session": as_json(full.pk), "extra": 1},
            format="json",
            headers={"Idempotency-Key": "join-1"},
        )
        assert (conflict.status_code, conflict.json()["code"]) == (409, "idempotency_conflict")

    def test_anonymous_users_are_refused(self, full: Any) -> None:
        response = join(APIClient(), full)
        assert response.status_code in (401, 403)
        assert not SessionWaitlist.objects.exists()


class TestVisibility:
    @pytest.fixture
    def queue(self, full: Any, users: Any, clock: Any, make_session: Any, user_model: Any) -> Any:
        join(client_for(users("a")), full)
        clock.shift(timedelta(minutes=1))
        join(client_for(users("b")), full)
        other_teacher = grant_teaching(user_model.objects.create_user(username="ot", password="pw"))
        elsewhere = make_session(teacher=other_teacher, capacity=1)
        services.book_group_session(student=users("booker0"), session=elsewhere)
        join(client_for(users("b")), elsewhere)
        return other_teacher

    def listed(self, user: Any, **query: Any) -> list[tuple[str, Any, Any]]:
        response = client_for(user).get(url("waitlist-list"), query)
        assert response.status_code == 200, response.json()
        return [
            (row["student_user"], row["status"], row["position"])
            for row in response.json()["results"]
        ]

    def test_students_see_their_own_entries_with_their_place(self, queue: Any, users: Any) -> None:
        a, b = as_json(users("a").pk), as_json(users("b").pk)
        assert self.listed(users("a")) == [(a, "waiting", 1)]
        assert self.listed(users("b")) == [(b, "waiting", 2), (b, "waiting", 1)]

    def test_teachers_see_the_queues_of_their_sessions(
        self, queue: Any, users: Any, teacher: Any, full: Any
    ) -> None:
        a, b = as_json(users("a").pk), as_json(users("b").pk)
        assert self.listed(teacher) == [(a, "waiting", 1), (b, "waiting", 2)]
        assert self.listed(queue) == [(b, "waiting", 1)]
        assert self.listed(teacher, session=as_json(full.pk)) == [
            (a, "waiting", 1),
            (b, "waiting", 2),
        ]

    def test_staff_see_every_queue(self, queue: Any, staff: Any) -> None:
        assert len(self.listed(staff)) == 3

    def test_other_students_entries_are_404(self, queue: Any, users: Any) -> None:
        entry = SessionWaitlist.objects.get(student_user=users("a"))
        for path in (url("waitlist-detail", entry.pk), url("waitlist-leave", entry.pk)):
            method = "get" if path.endswith(f"/{entry.pk}/") else "post"
            response = getattr(client_for(users("c")), method)(path, {}, format="json")
            assert (response.status_code, response.json()["code"]) == (404, "not_found")
        assert SessionWaitlist.objects.get(pk=entry.pk).status == "waiting"

    def test_an_offer_past_its_time_reads_as_expired_before_any_job(
        self, queue: Any, users: Any, full: Any, clock: Any
    ) -> None:
        free_a_seat(full, users)
        entry = SessionWaitlist.objects.get(session=full, student_user=users("a"))
        client = client_for(users("a"))
        body = client.get(url("waitlist-detail", entry.pk)).json()
        assert (body["status"], body["position"]) == ("offered", None)
        assert body["offer_expires_at"] == "2027-01-04T20:01:00Z"
        clock.shift(TTL)
        assert client.get(url("waitlist-detail", entry.pk)).json()["status"] == "expired"
        assert self.listed(users("a"), status="expired") == [
            (as_json(users("a").pk), "expired", None)
        ]
        assert self.listed(users("a"), status="offered") == []
        assert SessionWaitlist.objects.get(pk=entry.pk).status == "offered"  # nothing ran


class TestAcceptAndLeave:
    @pytest.fixture
    def offered(self, full: Any, users: Any, clock: Any) -> Any:
        join(client_for(users("a")), full)
        clock.shift(timedelta(minutes=1))
        join(client_for(users("b")), full)
        free_a_seat(full, users)
        return SessionWaitlist.objects.get(session=full, student_user=users("a"))

    def test_accept_answers_with_the_new_booking(self, offered: Any, users: Any, full: Any) -> None:
        client = client_for(users("a"))
        response = client.post(
            url("waitlist-accept", offered.pk), {"student_note": "yes"}, format="json"
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["session"], body["status"], body["student_note"]) == (
            as_json(full.pk),
            "confirmed",
            "yes",
        )
        entry = client.get(url("waitlist-detail", offered.pk)).json()
        assert (entry["status"], entry["booking"]) == ("accepted", body["id"])
        again = client.post(url("waitlist-accept", offered.pk), {}, format="json")
        assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")

    def test_accepting_too_late_is_offer_expired(
        self, offered: Any, users: Any, clock: Any, full: Any
    ) -> None:
        clock.shift(TTL)
        response = client_for(users("a")).post(
            url("waitlist-accept", offered.pk), {}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (409, "offer_expired")
        b = SessionWaitlist.objects.get(session=full, student_user=users("b"))
        assert b.status == "offered"  # the seat went on to the next in line
        assert not full.bookings.filter(student_user=users("a")).exists()

    def test_the_teacher_sees_the_offer_but_cannot_accept_it(
        self, offered: Any, teacher: Any
    ) -> None:
        response = client_for(teacher).post(url("waitlist-accept", offered.pk), {}, format="json")
        assert (response.status_code, response.json()["code"]) == (403, "not_allowed")
        assert SessionWaitlist.objects.get(pk=offered.pk).status == "offered"

    def test_leaving_an_offer_passes_it_on(self, offered: Any, users: Any, full: Any) -> None:
        client = client_for(users("a"))
        response = client.post(url("waitlist-leave", offered.pk), {})
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["left_at"]) == (
            "left",
            "2027-01-04T08:01:00Z",
        )
        b = SessionWaitlist.objects.get(session=full, student_user=users("b"))
        assert b.status == "offered"
        again = client.post(url("waitlist-leave", offered.pk), {})
        assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")

    def test_a_bad_note_is_a_400(self, offered: Any, users: Any) -> None:
        response = client_for(users("a")).post(
            url("waitlist-accept", offered.pk), {"student_note": ["x"]}, format="json"
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")
        assert SessionWaitlist.objects.get(pk=offered.pk).status == "offered"
