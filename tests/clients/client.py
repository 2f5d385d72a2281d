"""A small client of the example project's API, using the package openapi-python-client
generates (default options) from its schema: list sessions, book a seat, read an error's code.

It is type-checked, not run: tests/test_generated_clients.py generates the package and runs
``mypy --strict`` over this file.
"""

from example_lms_live_class_booking_api_client import AuthenticatedClient
from example_lms_live_class_booking_api_client.api.bookings import liveclass_bookings_create
from example_lms_live_class_booking_api_client.api.sessions import liveclass_sessions_list
from example_lms_live_class_booking_api_client.models import (
    Booking,
    BookingCreateRequest,
    BookingTypeEnum,
    Error,
    PaginatedSessionList,
    Session,
)
from example_lms_live_class_booking_api_client.types import UNSET


def connect(token: str) -> AuthenticatedClient:
    return AuthenticatedClient(base_url="http://127.0.0.1:8000", token=token, prefix="Token")


def list_sessions(client: AuthenticatedClient) -> list[Session]:
    page = liveclass_sessions_list.sync(client=client, has_free_seats=True, page_size=20)
    if isinstance(page, Error):
        raise RuntimeError(read_error(page))
    if not isinstance(page, PaginatedSessionList):
        raise RuntimeError("no answer")
    # Fields of an answer are present: no Unset to rule out first.
    return [s for s in page.results if s.seats_available > 0 and len(s.description) >= 0]


def book_seat(client: AuthenticatedClient, session: Session, key: str) -> Booking | Error:
    # seats_reserved and student_note have server defaults: the body may leave them out.
    body = BookingCreateRequest(booking_type=BookingTypeEnum.GROUP_SESSION, session=session.id)
    answer = liveclass_bookings_create.sync(client=client, body=body, idempotency_key=key)
    if answer is None:
        raise RuntimeError("no answer")
    return answer


def read_error(error: Error) -> str:
    if error.code == "session_full":
        free = 0 if error.seats_available is UNSET else error.seats_available
        return f"full ({free} seats left): {error.detail}"
    return f"{error.code}: {error.detail}"


def describe(result: Booking | Error) -> str:
    if isinstance(result, Error):
        return read_error(result)
    note = result.student_note.strip() or "no note"
    return f"booking {result.id} is {result.status.value}: {result.seats_reserved} seat(s), {note}"
