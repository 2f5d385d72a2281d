"""``Idempotency-Key`` on POST bookings/ (docs/api.md): replay, conflict, expiry, concurrency."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from liveclass_booking.models import IdempotencyKey
from tests.concurrency import race

URL = "liveclass_booking:booking-list"


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(user: Any, body: dict[str, Any], key: str | None) -> Any:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client_for(user).post(reverse(URL), body, format="json", headers=headers)


def group_body(session: Any, **extra: Any) -> dict[str, Any]:
    pk = session.pk if isinstance(session.pk, int) else str(session.pk)
    return {"booking_type": "group_session", "session": pk, **extra}


@pytest.mark.django_db
class TestReplay:
    def test_same_key_same_body_replays_the_first_response(
        self, session: Any, student: Any, booking_model: Any
    ) -> None:
        first = post(student, group_body(session), "key-1")
        again = post(student, group_body(session), "key-1")

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
        assert not first.has_header("Idempotent-Replayed")
        assert booking_model.objects.filter(student_user=student).count() == 1
        session.refresh_from_db()
        assert session.seats_taken == 1

    def test_key_order_in_the_body_does_not_matter(self, session: Any, student: Any) -> None:
        body = group_body(session, student_note="hi")
        first = post(student, body, "key-2")
        again = post(student, dict(reversed(list(body.items()))), "key-2")
        assert again.json() == first.json()

    def test_same_key_other_body_is_a_conflict_and_changes_nothing(
        self, make_session: Any, student: Any, booking_model: Any
    ) -> None:
        first_session, other_session = make_session(), make_session()
        post(student, group_body(first_session), "key-3")

        response = post(student, group_body(other_session), "key-3")

        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_conflict"
        assert "detail" in response.json()
        other_session.refresh_from_db()
        assert other_session.seats_taken == 0
        assert booking_model.objects.filter(student_user=student).count() == 1

    def test_keys_are_per_user(
        self, session: Any, student: Any, other_student: Any, booking_model: Any
    ) -> None:
        assert post(student, group_body(session), "shared").status_code == 201
        assert post(other_student, group_body(session), "shared").status_code == 201
        assert booking_model.objects.filter(session=session).count() == 2

    def test_without_a_key_each_request_is_new(self, session: Any, student: Any) -> None:
        assert post(student, group_body(session), None).status_code == 201
        response = post(student, group_body(session), None)
        assert response.json()["code"] == "already_booked"
        assert not IdempotencyKey.objects.exists()

    def test_a_failed_request_stores_nothing_and_may_be_retried(
        self, make_session: Any, student: Any, other_student: Any
    ) -> None:
        full = make_session(capacity=1)
        post(other_student, group_body(full), None)

        refused = post(student, group_body(full), "retry-me")
        assert refused.status_code == 409
        assert refused.json()["code"] == "session_full"
        assert not IdempotencyKey.objects.exists()

        client_for(other_student).post(
            reverse("liveclass_booking:booking-cancel", args=[full.bookings.get().pk]),
            {},
            format="json",
        )
        assert post(student, group_body(full), "retry-me").status_code == 201

    @pytest.mark.parametrize("key", ["", "x" * 256, "has space", "naïve"])
    def test_malformed_keys_are_400(
        self, session: Any, student: Any, booking_model: Any, key: str
    ) -> None:
        response = post(student, group_body(session), key)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid"
        assert not booking_model.objects.exists()

    def test_expired_keys_are_forgotten(
        self, make_session: Any, student: Any, booking_model: Any
    ) -> None:
        first_session, second_session = make_session(), make_session()
        post(student, group_body(first_session), "daily")
        with time_machine.travel(timezone.now() + timedelta(hours=25)):
            response = post(student, group_body(second_session), "daily")
        assert response.status_code == 201
        assert response.json()["session"] in (second_session.pk, str(second_session.pk))
        assert IdempotencyKey.objects.count() == 1

    def test_a_key_is_still_honoured_just_before_it_expires(
        self, make_session: Any, student: Any
    ) -> None:
        first_session, second_session = make_session(), make_session()
        post(student, group_body(first_session), "daily")
        with time_machine.travel(timezone.now() + timedelta(hours=23)):
            response = post(student, group_body(second_session), "daily")
        assert response.json()["code"] == "idempotency_conflict"

    def test_purge_command_deletes_only_expired_keys(
        self, make_session: Any, student: Any, other_student: Any
    ) -> None:
        post(student, group_body(make_session()), "old")
        with time_machine.travel(timezone.now() + timedelta(hours=30)):
            post(other_student, group_body(make_session()), "new-a")  # purges only its own
            assert IdempotencyKey.objects.count() == 2
            out = StringIO()
            call_command("liveclass_booking_purge_keys", stdout=out)
        assert "Deleted 1 " in out.getvalue()
        assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new-a"]


@pytest.mark.concurrent
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_requests_with_one_key_make_one_booking(
    session: Any, student: Any, booking_model: Any
) -> None:
    body = group_body(session)

    results = race(20, lambda i: post(student, body, "race-key"))

    responses = [result for code, result in results if code == "ok"]
    assert len(responses) == 20, results
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.has_header("Idempotent-Replayed") for r in responses) == 19
    assert booking_model.objects.filter(student_user=student).count() == 1
    session.refresh_from_db()
    assert session.seats_taken == 1
    assert IdempotencyKey.objects.count() == 1
