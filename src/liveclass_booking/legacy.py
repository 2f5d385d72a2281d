"""The host adapter for importing legacy booking tables.

A project that kept its group and one-on-one bookings in tables of its own (for example
separate ``Booking`` and ``OneOnOneBooking`` models, with ``scheduled_start``, ``total_seats``
and ``meeting_password`` on the session) subclasses :class:`LegacyAdapter` and maps its rows
to the plain records below; the ``liveclass_booking_import_legacy`` command (the service
:func:`liveclass_booking.services.legacy.import_legacy`) checks and writes them.

Every record carries ``key``, the row's stable key in its legacy table: the import remembers
``(source, kind, key)`` and skips a row it has imported before, so it may run again at any
time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["LegacyAdapter", "LegacyGroupBooking", "LegacyLesson", "LegacySession"]


@dataclass(frozen=True)
class LegacySession:
    """A legacy group session. ``teacher`` and ``course`` are instances or primary keys;
    times must be timezone-aware; ``status`` is a session status value (``scheduled``,
    ``cancelled``, ``completed``). ``timezone_snapshot`` defaults to the teacher's zone now."""

    key: str
    teacher: Any
    course: Any
    title: str
    start_at_utc: datetime
    end_at_utc: datetime
    capacity: int
    status: str = "scheduled"
    description: str = ""
    meeting_provider: str = "custom"
    meeting_link: str = ""
    meeting_id: str = ""
    meeting_passcode: str = ""
    timezone_snapshot: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class LegacyGroupBooking:
    """A legacy booking of seats in a group session. ``session_key`` is the ``key`` of the
    :class:`LegacySession` it belongs to (imported in this run or an earlier one); ``status``
    is a booking status value."""

    key: str
    session_key: str
    student: Any
    status: str
    seats_reserved: int = 1
    student_note: str = ""
    teacher_note: str = ""
    decision_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True)
class LegacyLesson:
    """A legacy one-on-one lesson; times timezone-aware, ``status`` a booking status value."""

    key: str
    teacher: Any
    student: Any
    course: Any
    start_at_utc: datetime
    end_at_utc: datetime
    status: str
    student_note: str = ""
    teacher_note: str = ""
    decision_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str = ""
    created_at: datetime | None = None


class LegacyAdapter:
    """Maps a host's legacy tables to records the import understands.

    Subclass it, set :attr:`source` and override the methods for the tables you have; each
    returns an iterable of records (a generator is fine). The default yields nothing.
    """

    #: Names the legacy tables; a row's key is unique within (source, kind).
    source: str = "legacy"

    def sessions(self) -> Iterable[LegacySession]:
        """The legacy group sessions."""
        return ()

    def group_bookings(self) -> Iterable[LegacyGroupBooking]:
        """The legacy bookings of group sessions."""
        return ()

    def lessons(self) -> Iterable[LegacyLesson]:
        """The legacy one-on-one lessons."""
        return ()
