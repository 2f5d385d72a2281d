"""Domain errors. Each carries the stable ``code`` and HTTP status of docs/api.md, and a ``detail``
that names the rule and its numbers. The API, the admin and the commands all speak these."""

from __future__ import annotations

import re
from typing import Any


class BookingError(Exception):
    """Base of every domain error."""

    code = "invalid"
    http_status = 400

    def __init__(self, detail: str, **data: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.data = data

    def __str__(self) -> str:
        return self.detail

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.data}


class InvalidInput(BookingError):
    code = "invalid"


class NaiveDatetime(BookingError):
    code = "naive_datetime"


class MinNotice(BookingError):
    code = "min_notice"


class OutsideAvailability(BookingError):
    code = "outside_availability"


class CancelWindowClosed(BookingError):
    code = "cancel_window_closed"


class NotAllowed(BookingError):
    code = "not_allowed"
    http_status = 403


class SessionFull(BookingError):
    code = "session_full"
    http_status = 409


class SessionNotBookable(BookingError):
    code = "session_not_bookable"
    http_status = 409


class SlotUnavailable(BookingError):
    code = "slot_unavailable"
    http_status = 409


class DailyLimitReached(BookingError):
    code = "daily_limit_reached"
    http_status = 409


class LimitReached(BookingError):
    """A per-account limit (docs/security.md): seats per booking, active bookings, pending
    requests, waitlist entries, active series. ``limit`` names it and ``max`` gives its number."""

    code = "limit_reached"
    http_status = 409


class SyncTooSoon(BookingError):
    """A busy calendar was synced moments ago; ``retry_after`` gives the seconds to wait."""

    code = "throttled"
    http_status = 429


class AlreadyBooked(BookingError):
    code = "already_booked"
    http_status = 409


class AlreadyWaitlisted(BookingError):
    """The student already waits on (or holds an offer from) this session's waitlist."""

    code = "already_waitlisted"
    http_status = 409


class SeatsAvailable(BookingError):
    """Joining the waitlist of a session with a free seat; book it."""

    code = "seats_available"
    http_status = 409


class InvalidTransition(BookingError):
    code = "invalid_transition"
    http_status = 409


class SeriesConflict(BookingError):
    """All-or-nothing series creation found occurrences it cannot book; ``occurrences``
    carries the per-occurrence report."""

    code = "series_conflict"
    http_status = 409


class OfferExpired(BookingError):
    code = "offer_expired"
    http_status = 409


class IdempotencyConflict(BookingError):
    code = "idempotency_conflict"
    http_status = 409


class BookingRefused(BookingError):
    """A host rule refusing a booking, raised from the resolver's ``check_booking`` with the
    host's own ``code`` (lower-case letters, digits and underscores) and message, and an HTTP
    status from 400 to 499 (403 by default). Extra keywords travel in the API's error body.

    ``raise BookingRefused("Your plan allows 3 lessons a week.", code="weekly_limit",
    limit=3)``"""

    code = "refused"
    http_status = 403

    def __init__(
        self, detail: str, *, code: str = "refused", http_status: int = 403, **data: Any
    ) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,49}", code):
            raise ValueError(f"A refusal's code is a lower-case identifier, not {code!r}.")
        if not 400 <= http_status <= 499:
            raise ValueError(f"A refusal's HTTP status is a 4xx, not {http_status!r}.")
        super().__init__(detail, **data)
        self.code = code
        self.http_status = http_status
