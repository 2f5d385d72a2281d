"""Import of legacy group sessions, group bookings and one-on-one lessons (docs/legacy.md).

Legacy rows are history, not requests: the booking rules for new requests (notice,
availability, limits, the resolver's ``can_book``/``can_teach``) do not apply to them. What the
import keeps is every invariant of the data: aware UTC times that end after they start, known
status values, existing teachers, students and courses, at most one active booking per student
and session, never more seats held than the capacity, no two active lessons of one teacher at
the same time. A row that breaks one is skipped with a stable ``code`` and a reason.

Imported rows send no signals and write no outbox events (nobody is told about history); each
imported booking gets one audit entry (``from_status`` empty, reason ``imported``). Each
session is imported with its bookings in one transaction, under the session's row lock when
it exists already, and its ``seats_taken`` is then set by the same count that
:func:`~liveclass_booking.services.seats.recount_seats` checks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    BookingStatus,
    BookingType,
    LegacyKind,
    SessionStatus,
)
from ..exceptions import BookingError
from ..legacy import LegacyAdapter, LegacyGroupBooking, LegacyLesson, LegacySession
from ..models import LegacyImport, get_booking_model, get_course_model, get_session_model
from ..policies import get_policy_resolver
from .common import lock_users, record_event, require_aware
from .seats import lock_session, seats_held
from .transitions import approval_deadline

#: The reason recorded on the audit entry of an imported booking.
IMPORT_REASON = "imported"


class Skip(Exception):
    """A legacy row that cannot be imported, with a stable ``code``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class SkippedRow:
    kind: str
    key: str
    code: str
    reason: str


@dataclass
class ImportReport:
    """What :func:`import_legacy` imported, found imported already, and skipped (and why)."""

    source: str
    dry_run: bool
    imported: Counter[str] = field(default_factory=Counter)
    already_imported: Counter[str] = field(default_factory=Counter)
    skipped: list[SkippedRow] = field(default_factory=list)
    #: ``seats_taken`` of every session that received bookings, by the session's legacy key.
    seats_taken: dict[str, int] = field(default_factory=dict)

    def skip(self, kind: str, key: Any, code: str, reason: str) -> None:
        self.skipped.append(SkippedRow(kind, str(key), code, reason))


def import_legacy(adapter: LegacyAdapter, *, dry_run: bool = False) -> ImportReport:
    """Import what ``adapter`` yields: sessions with their group bookings, then lessons.

    Rows imported by an earlier run (same source, kind and key) are counted, not touched.
    With ``dry_run`` everything runs exactly as it would, inside one transaction that is then
    rolled back: the report says what would happen and nothing is written.
    """
    report = ImportReport(source=adapter.source, dry_run=dry_run)
    if dry_run:
        with transaction.atomic():
            _run(adapter, report)
            transaction.set_rollback(True)
    else:
        _run(adapter, report)
    return report


def _run(adapter: LegacyAdapter, report: ImportReport) -> None:
    importer = _Importer(adapter.source, report)
    sessions = importer.unique(LegacyKind.SESSION, adapter.sessions())
    by_session: dict[str, list[LegacyGroupBooking]] = defaultdict(list)
    for row in importer.unique(LegacyKind.GROUP_BOOKING, adapter.group_bookings()):
        by_session[str(row.session_key)].append(row)
    for session_row in sessions:
        bookings = by_session.pop(str(session_row.key), [])
        with transaction.atomic():
            try:
                with transaction.atomic():
                    session = importer.session(session_row)
            except Skip as skip:
                report.skip(LegacyKind.SESSION, session_row.key, skip.code, skip.reason)
                for row in bookings:
                    report.skip(
                        LegacyKind.GROUP_BOOKING,
                        row.key,
                        "unknown_session",
                        f"its session {session_row.key} was not imported ({skip.code}).",
                    )
                continue
            importer.group_bookings(session, str(session_row.key), bookings)
    # Bookings of sessions imported by an earlier run.
    for session_key, bookings in by_session.items():
        with transaction.atomic():
            pk = importer.imported_pk(LegacyKind.SESSION, session_key)
            session = get_session_model().objects.filter(pk=pk).first() if pk else None
            if session is None:
                for row in bookings:
                    report.skip(
                        LegacyKind.GROUP_BOOKING,
                        row.key,
                        "unknown_session",
                        f"no session with key {session_key} was imported.",
                    )
                continue
            importer.group_bookings(lock_session(session.pk), session_key, bookings)
    for lesson in importer.unique(LegacyKind.LESSON, adapter.lessons()):
        try:
            with transaction.atomic():
                importer.lesson(lesson)
        except Skip as skip:
            report.skip(LegacyKind.LESSON, lesson.key, skip.code, skip.reason)


class _Importer:
    def __init__(self, source: str, report: ImportReport) -> None:
        self.source = source
        self.report = report
        self.users: dict[Any, Any] = {}
        self.courses: dict[Any, Any] = {}

    # Keys ----------------------------------------------------------------------------------

    def unique(self, kind: str, rows: Iterable[Any]) -> list[Any]:
        """The rows of one kind, each key once: a repeated key is skipped (which of the two
        rows is meant is the host's call)."""
        seen: set[str] = set()
        kept = []
        for row in rows:
            key = str(row.key)
            if not key or len(key) > 200:
                self.report.skip(kind, key, "invalid_key", "a key has 1 to 200 characters.")
            elif key in seen:
                self.report.skip(kind, key, "duplicate_key", "the adapter yielded this key twice.")
            else:
                seen.add(key)
                kept.append(row)
        return kept

    def imported_pk(self, kind: str, key: Any) -> str | None:
        return (
            LegacyImport.objects.filter(source=self.source, kind=kind, legacy_key=str(key))
            .values_list("object_id", flat=True)
            .first()
        )

    def remember(self, kind: str, key: Any, obj: Any) -> None:
        LegacyImport.objects.create(
            source=self.source, kind=kind, legacy_key=str(key), object_id=str(obj.pk)
        )
        self.report.imported[kind] += 1

    # Lookups -------------------------------------------------------------------------------

    def _find(self, model: type[models.Model], cache: dict[Any, Any], value: Any) -> Any:
        pk = getattr(value, "pk", value)
        if pk is None:
            return None
        if pk not in cache:
            try:
                cache[pk] = model._default_manager.filter(pk=pk).first()
            except (ValueError, TypeError, ValidationError):
                cache[pk] = None
        return cache[pk]

    def user(self, value: Any, role: str) -> Any:
        user = self._find(get_user_model(), self.users, value)
        if user is None:
            raise Skip(f"unknown_{role}", f"no user {getattr(value, 'pk', value)!r} ({role}).")
        return user

    def course(self, value: Any) -> Any:
        course = self._find(get_course_model(), self.courses, value)
        if course is None:
            raise Skip("unknown_course", f"no course {getattr(value, 'pk', value)!r}.")
        return course

    # Checks --------------------------------------------------------------------------------

    @staticmethod
    def times(start: Any, end: Any) -> None:
        try:
            require_aware(start, "start_at_utc")
            require_aware(end, "end_at_utc")
        except BookingError as exc:
            raise Skip(exc.code, exc.detail) from exc
        if end <= start:
            raise Skip("invalid_times", f"it ends ({end:%Y-%m-%d %H:%M}) before it starts.")

    @staticmethod
    def status(value: Any, choices: type[models.TextChoices]) -> str:
        if value not in choices.values:
            raise Skip(
                "unknown_status",
                f"{value!r} is not one of: {', '.join(str(v) for v in choices.values)}.",
            )
        return str(value)

    @staticmethod
    def validate(obj: Any, exclude: list[str]) -> None:
        try:
            obj.full_clean(exclude=exclude, validate_constraints=False)
        except ValidationError as exc:
            fields = getattr(exc, "message_dict", {"__all__": exc.messages})
            name, messages = next(iter(fields.items()))
            raise Skip("invalid", f"{name}: {messages[0]}") from exc

    @staticmethod
    def backdate(obj: Any, created_at: datetime | None) -> None:
        """Keep the legacy row's creation time (``auto_now_add`` set it to now)."""
        if created_at is None:
            return
        require_aware(created_at, "created_at")
        type(obj)._default_manager.filter(pk=obj.pk).update(created_at=created_at)

    # Sessions ------------------------------------------------------------------------------

    def session(self, row: LegacySession) -> Any:
        """The session of ``row``: imported now, or (locked) as an earlier run imported it."""
        pk = self.imported_pk(LegacyKind.SESSION, row.key)
        if pk is not None:
            session = get_session_model().objects.filter(pk=pk).first()
            if session is None:
                raise Skip("deleted", "it was imported before, and the session since deleted.")
            self.report.already_imported[LegacyKind.SESSION] += 1
            return lock_session(session.pk)
        self.times(row.start_at_utc, row.end_at_utc)
        status = self.status(row.status, SessionStatus)
        teacher = self.user(row.teacher, "teacher")
        course = self.course(row.course)
        if not isinstance(row.capacity, int) or isinstance(row.capacity, bool):
            raise Skip("invalid", f"capacity: {row.capacity!r} is not a whole number.")
        zone = row.timezone_snapshot or get_policy_resolver().get_user_timezone(teacher)
        session = get_session_model()(
            teacher=teacher,
            course=course,
            title=row.title,
            description=row.description,
            start_at_utc=row.start_at_utc,
            end_at_utc=row.end_at_utc,
            capacity=row.capacity,
            status=status,
            meeting_provider=row.meeting_provider,
            meeting_link=row.meeting_link,
            meeting_id=row.meeting_id,
            meeting_passcode=row.meeting_passcode,
            timezone_snapshot=zone,
            seats_taken=0,
        )
        self.validate(session, exclude=["seats_taken", "teacher", "course"])
        if session.capacity < 0:
            raise Skip("invalid", "capacity: it cannot be negative.")
        session.save()
        self.backdate_or_skip(session, row.created_at)
        self.remember(LegacyKind.SESSION, row.key, session)
        return session

    def backdate_or_skip(self, obj: Any, created_at: datetime | None) -> None:
        try:
            self.backdate(obj, created_at)
        except BookingError as exc:
            raise Skip(exc.code, exc.detail) from exc

    # Group bookings ------------------------------------------------------------------------

    def group_bookings(
        self, session: Any, session_key: str, rows: list[LegacyGroupBooking]
    ) -> None:
        """Import ``rows`` into ``session`` (new in this transaction, or locked), then set
        its ``seats_taken`` from what its rows hold."""
        held = seats_held(session.pk)
        added = 0
        for row in rows:
            if self.imported_pk(LegacyKind.GROUP_BOOKING, row.key) is not None:
                self.report.already_imported[LegacyKind.GROUP_BOOKING] += 1
                continue
            try:
                with transaction.atomic():
                    held += self.group_booking(session, row, held)
                    added += 1
            except Skip as skip:
                self.report.skip(LegacyKind.GROUP_BOOKING, row.key, skip.code, skip.reason)
        if added:
            taken = seats_held(session.pk)
            get_session_model().objects.filter(pk=session.pk).update(seats_taken=taken)
            session.seats_taken = taken
            self.report.seats_taken[session_key] = taken

    def group_booking(self, session: Any, row: LegacyGroupBooking, held: int) -> int:
        """Import one booking; return the seats it holds."""
        status = self.status(row.status, BookingStatus)
        student = self.user(row.student, "student")
        seats = row.seats_reserved
        if not isinstance(seats, int) or isinstance(seats, bool) or seats < 1:
            raise Skip("invalid", f"seats_reserved: {seats!r} is not a whole number above 0.")
        active = status in ACTIVE_BOOKING_STATUSES
        model = get_booking_model()
        if active:
            if session.status == SessionStatus.CANCELLED:
                raise Skip(
                    "session_cancelled",
                    f"an {status} booking of a cancelled session would hold seats.",
                )
            if model.objects.filter(
                session_id=session.pk, student_user=student, status__in=ACTIVE_BOOKING_STATUSES
            ).exists():
                raise Skip("already_booked", "the student already holds a booking of this session.")
            if held + seats > session.capacity:
                raise Skip(
                    "capacity_exceeded",
                    f"the session has {session.capacity} seat(s) and {held} are taken; "
                    f"this booking needs {seats}.",
                )
        booking = model(
            booking_type=BookingType.GROUP_SESSION,
            session_id=session.pk,
            course_id=session.course_id,
            teacher_id=session.teacher_id,
            student_user=student,
            start_at_utc=session.start_at_utc,
            end_at_utc=session.end_at_utc,
            seats_reserved=seats,
            status=status,
            **self.decisions(row, status, session.start_at_utc, session.teacher, session.course),
        )
        self.save_booking(booking, row, exclude=["session", "course", "teacher", "student_user"])
        self.remember(LegacyKind.GROUP_BOOKING, row.key, booking)
        return seats if active else 0

    # Lessons -------------------------------------------------------------------------------

    def lesson(self, row: LegacyLesson) -> None:
        if self.imported_pk(LegacyKind.LESSON, row.key) is not None:
            self.report.already_imported[LegacyKind.LESSON] += 1
            return
        self.times(row.start_at_utc, row.end_at_utc)
        status = self.status(row.status, BookingStatus)
        teacher = self.user(row.teacher, "teacher")
        student = self.user(row.student, "student")
        course = self.course(row.course)
        if teacher.pk == student.pk:
            raise Skip("invalid", "the teacher and the student are the same user.")
        model = get_booking_model()
        if status in ACTIVE_BOOKING_STATUSES:
            # As the booking path does: the teacher's row serialises the teacher's lessons.
            lock_users(teacher)
            clash = (
                model.objects.filter(
                    teacher=teacher,
                    booking_type=BookingType.ONE_ON_ONE,
                    status__in=ACTIVE_BOOKING_STATUSES,
                    blocked_until_utc__gt=row.start_at_utc,
                    blocked_from_utc__lt=row.end_at_utc,
                )
                .values_list("pk", flat=True)
                .first()
            )
            if clash is not None:
                raise Skip(
                    "slot_unavailable",
                    f"the teacher has another active lesson (booking {clash}) at this time.",
                )
        booking = model(
            booking_type=BookingType.ONE_ON_ONE,
            course=course,
            teacher=teacher,
            student_user=student,
            start_at_utc=row.start_at_utc,
            end_at_utc=row.end_at_utc,
            # The lesson's own time: buffers apply to new requests around it.
            blocked_from_utc=row.start_at_utc,
            blocked_until_utc=row.end_at_utc,
            status=status,
            **self.decisions(row, status, row.start_at_utc, teacher, course),
        )
        self.save_booking(booking, row, exclude=["course", "teacher", "student_user"])
        self.remember(LegacyKind.LESSON, row.key, booking)

    # Shared --------------------------------------------------------------------------------

    @staticmethod
    def decisions(
        row: LegacyGroupBooking | LegacyLesson,
        status: str,
        start: datetime,
        teacher: Any,
        course: Any,
    ) -> dict[str, Any]:
        for name in ("decision_at", "cancelled_at"):
            value = getattr(row, name)
            if value is not None:
                try:
                    require_aware(value, name)
                except BookingError as exc:
                    raise Skip(exc.code, exc.detail) from exc
        expires = None
        if status == BookingStatus.PENDING:
            # An imported request waits for a decision as a new one would (and past its
            # start, it reads as expired at once).
            policy = get_policy_resolver().get_policy(teacher, course)
            expires = approval_deadline(policy, start, timezone.now())
        return {
            "student_note": row.student_note,
            "teacher_note": row.teacher_note,
            "decision_at": row.decision_at,
            "cancelled_at": row.cancelled_at,
            "cancel_reason": row.cancel_reason,
            "approval_expires_at": expires,
        }

    def save_booking(
        self, booking: Any, row: LegacyGroupBooking | LegacyLesson, exclude: list[str]
    ) -> None:
        self.validate(booking, exclude=exclude)
        try:
            with transaction.atomic():
                booking.save()
        except IntegrityError as exc:
            # On PostgreSQL the exclusion constraint, anywhere the one-active-booking rule:
            # whatever the checks above missed, the database refuses.
            raise Skip("conflict", f"the database refused the row: {exc}") from exc
        self.backdate_or_skip(booking, row.created_at)
        record_event(
            booking,
            actor=None,
            from_status="",
            to_status=booking.status,
            reason=IMPORT_REASON,
            source=self.source,
            legacy_key=str(row.key),
        )


__all__ = ["IMPORT_REASON", "ImportReport", "SkippedRow", "import_legacy"]
