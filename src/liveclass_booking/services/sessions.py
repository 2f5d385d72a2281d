"""Group sessions: create, update, cancel, complete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import signals
from ..choices import (
    ACTIVE_BOOKING_STATUSES,
    OPEN_WAITLIST_STATUSES,
    BookingStatus,
    NotificationKind,
    SessionStatus,
    WaitlistStatus,
)
from ..exceptions import InvalidInput, InvalidTransition, NotAllowed
from ..models import BookingEvent, SessionWaitlist, get_booking_model, get_session_model
from ..policies import get_policy_resolver
from ..recurrence import Recurrence, SkippedTime
from .common import (
    require_aware,
    require_manager,
    retry_on_deadlock,
    send_after_commit,
)
from .outbox import notify
from .rules import require_bounded_text
from .seats import close_waiting, lock_session, offer_free_seats, schedule_offer_expiry
from .series_write import enrol_waiting_series

#: Session fields a teacher may change with :func:`update_session`.
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "start_at_utc",
        "end_at_utc",
        "meeting_provider",
        "meeting_link",
        "meeting_id",
        "meeting_passcode",
        "capacity",
    }
)


def _validate(session: Any) -> None:
    try:
        session.full_clean(exclude=["seats_taken"])
    except ValidationError as exc:
        fields = getattr(exc, "message_dict", {"__all__": exc.messages})
        first = next(iter(fields.values()))[0]
        raise InvalidInput(first, errors=fields) from exc


def new_session(
    *,
    teacher: Any,
    course: Any,
    title: str,
    start_at_utc: datetime,
    end_at_utc: datetime,
    capacity: int,
    **fields: Any,
) -> Any:
    """An unsaved scheduled session; its zone snapshot is the teacher's zone now."""
    require_aware(start_at_utc, "start_at_utc")
    require_aware(end_at_utc, "end_at_utc")
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Unknown or server-owned fields: {', '.join(sorted(unknown))}.")
    return get_session_model()(
        teacher=teacher,
        course=course,
        title=title,
        start_at_utc=start_at_utc,
        end_at_utc=end_at_utc,
        capacity=capacity,
        timezone_snapshot=get_policy_resolver().get_user_timezone(teacher),
        **fields,
    )


def check_new_session(session: Any, *, actor: Any = None) -> None:
    """The rules for a new session: ``actor`` (if given) is its teacher or staff, the teacher
    passes the resolver's ``can_teach``, it starts in the future and has a seat."""
    require_manager(actor, session, "create a session for this teacher")
    if not get_policy_resolver().can_teach(session.teacher, session.course):
        raise NotAllowed(f"{session.teacher} may not teach this course.")
    if session.start_at_utc <= timezone.now():
        raise InvalidInput("A session must start in the future.", field="start_at_utc")
    if session.capacity is None or session.capacity < 1:
        raise InvalidInput("A session needs at least one seat.", field="capacity")
    _validate(session)


@retry_on_deadlock
def create_session(
    *,
    teacher: Any,
    course: Any,
    title: str,
    start_at_utc: datetime,
    end_at_utc: datetime,
    capacity: int,
    actor: Any = None,
    **fields: Any,
) -> Any:
    """Create a scheduled group session taught by ``teacher``.

    The teacher must pass the resolver's ``can_teach``; ``actor`` (if given) must be the teacher
    or staff. The session's zone snapshot is the teacher's zone now. Group series waiting for
    a session of this teacher and course at this start are enrolled at once.
    """
    session = new_session(
        teacher=teacher,
        course=course,
        title=title,
        start_at_utc=start_at_utc,
        end_at_utc=end_at_utc,
        capacity=capacity,
        **fields,
    )
    check_new_session(session, actor=actor)
    with transaction.atomic():
        session.save()
        enrol_waiting_series([session])
    return session


@retry_on_deadlock
def create_recurring_sessions(
    *,
    teacher: Any,
    course: Any,
    title: str,
    rule: Recurrence,
    capacity: int,
    actor: Any = None,
    **fields: Any,
) -> tuple[list[Any], list[SkippedTime]]:
    """Create one scheduled session per occurrence of ``rule`` (expanded in local wall time,
    so right across DST changes) in one statement, under the rules of :func:`create_session`.
    Group series waiting for those times are enrolled at once. Returns the sessions and the
    local times skipped because they do not exist."""
    expansion = rule.expand()
    sessions = [
        new_session(
            teacher=teacher,
            course=course,
            title=title,
            start_at_utc=occurrence.start,
            end_at_utc=occurrence.end,
            capacity=capacity,
            **fields,
        )
        for occurrence in expansion.occurrences
    ]
    # The occurrences differ only in time, and the first is the earliest.
    check_new_session(sessions[0], actor=actor)
    with transaction.atomic():
        get_session_model().objects.bulk_create(sessions)
        enrol_waiting_series(sessions)
    return sessions, expansion.skipped


def check_session_change(session: Any, *, actor: Any = None) -> None:
    """The rules for changing ``session`` at all: ``actor`` manages it and it is scheduled
    (the values themselves are checked by :func:`update_session`)."""
    require_manager(actor, session, "change this session")
    if session.status != SessionStatus.SCHEDULED:
        raise InvalidTransition(f"A {session.status} session cannot be changed.")


@retry_on_deadlock
def update_session(session: Any, *, actor: Any = None, **changes: Any) -> Any:
    """Change a scheduled session. Capacity never goes below the seats taken; new times carry
    over to the session's active bookings."""
    require_manager(actor, session, "change this session")
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Unknown or server-owned fields: {', '.join(sorted(unknown))}.")
    for name in ("start_at_utc", "end_at_utc"):
        if name in changes:
            require_aware(changes[name], name)
    if "start_at_utc" in changes and changes["start_at_utc"] <= timezone.now():
        raise InvalidInput("A session cannot be moved into the past.", field="start_at_utc")
    now = timezone.now()
    with transaction.atomic():
        locked = lock_session(session.pk)
        if locked.status != SessionStatus.SCHEDULED:
            raise InvalidTransition(f"A {locked.status} session cannot be changed.")
        before = {name: getattr(locked, name) for name in changes}
        for name, value in changes.items():
            setattr(locked, name, value)
        changed = {name for name in changes if getattr(locked, name) != before[name]}
        if locked.capacity < locked.seats_taken:
            raise InvalidInput(
                f"capacity cannot go below the {locked.seats_taken} seats already taken.",
                field="capacity",
            )
        _validate(locked)
        # A change of time or meeting details is a new version of every calendar entry.
        versioned = bool(CALENDAR_FIELDS & changed)
        if versioned:
            locked.calendar_sequence += 1
        locked.save(update_fields=[*changes, "calendar_sequence", "updated_at"])
        if "start_at_utc" in changes:
            _shorten_offers(locked)
        if "capacity" in changes:
            offer_free_seats(locked, now)
        booked = get_booking_model().objects.filter(
            session=locked, status__in=ACTIVE_BOOKING_STATUSES
        )
        if {"start_at_utc", "end_at_utc"} & set(changes):
            booked.update(
                start_at_utc=locked.start_at_utc,
                end_at_utc=locked.end_at_utc,
                updated_at=now,
                calendar_sequence=F("calendar_sequence") + int(versioned),
            )
        elif versioned:
            booked.update(calendar_sequence=F("calendar_sequence") + 1)
        _tell_session_change(locked, before, changed, actor=actor, now=now)
    return locked


#: Session fields whose change people booked or waiting are told about.
MEETING_FIELDS = frozenset({"meeting_provider", "meeting_link", "meeting_id", "meeting_passcode"})
#: Session fields that are part of a calendar entry: a change is a new version of it.
CALENDAR_FIELDS = MEETING_FIELDS | {"start_at_utc", "end_at_utc"}


def _audience(session: Any, bookings: list[Any] | None = None) -> tuple[dict[str, Any], list[Any]]:
    """Who a change of ``session`` concerns: its active bookings (or ``bookings``) by student,
    as ``[booking pk, calendar sequence]``, and the students on its waitlist (two queries at
    most, however many there are)."""
    if bookings is None:
        bookings = list(
            get_booking_model()
            .objects.filter(session_id=session.pk, status__in=ACTIVE_BOOKING_STATUSES)
            .only("pk", "student_user_id", "calendar_sequence")
        )
    booked = {str(b.student_user_id): [b.pk, b.calendar_sequence] for b in bookings}
    waiting = list(
        SessionWaitlist.objects.filter(
            session_id=session.pk, status__in=OPEN_WAITLIST_STATUSES
        ).values_list("student_user_id", flat=True)
    )
    return booked, waiting


def _teacher_unless_actor(session: Any, actor: Any) -> list[Any]:
    """The session's teacher as a recipient, unless the teacher made the change."""
    return [] if actor is not None and actor.pk == session.teacher_id else [session.teacher_id]


def _tell_session_change(
    session: Any, before: dict[str, Any], changed: set[str], *, actor: Any, now: datetime
) -> None:
    """One outbox event for a moved session or changed meeting details, to every student
    booked or waiting (and the teacher when someone else made the change)."""
    moved = bool({"start_at_utc", "end_at_utc"} & changed)
    if not moved and not MEETING_FIELDS & changed:
        return
    booked, waiting = _audience(session)
    teacher = _teacher_unless_actor(session, actor)
    notify(
        NotificationKind.SESSION_MOVED if moved else NotificationKind.SESSION_DETAILS_CHANGED,
        recipients=[*booked, *waiting, *teacher],
        session=session,
        actor=actor,
        at=now,
        start=session.start_at_utc,
        end=session.end_at_utc,
        old_start=before.get("start_at_utc", session.start_at_utc),
        old_end=before.get("end_at_utc", session.end_at_utc),
        changed=sorted(changed),
        bookings=booked,
        sequence=session.calendar_sequence,
    )


def _shorten_offers(session: Any) -> None:
    """An earlier start shortens the open offers that would outlive it."""
    late = list(
        SessionWaitlist.objects.filter(
            session_id=session.pk,
            status=WaitlistStatus.OFFERED,
            offer_expires_at__gt=session.start_at_utc,
        ).values_list("pk", flat=True)
    )
    if late:
        SessionWaitlist.objects.filter(pk__in=late).update(offer_expires_at=session.start_at_utc)
        for pk in late:
            schedule_offer_expiry(pk, session.start_at_utc)


@retry_on_deadlock
def cancel_session(session: Any, *, actor: Any = None, reason: str = "") -> Any:
    """Cancel a scheduled session, its active bookings and its waitlist entries (audited)."""
    require_bounded_text(reason=reason)
    require_manager(actor, session, "cancel this session")
    model = get_session_model()
    booking_model = get_booking_model()
    now = timezone.now()
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=session.pk)
        if locked.status != SessionStatus.SCHEDULED:
            raise InvalidTransition(f"A {locked.status} session cannot be cancelled.")
        bookings = list(
            booking_model.objects.select_for_update().filter(
                session=locked, status__in=ACTIVE_BOOKING_STATUSES
            )
        )
        # One UPDATE and one INSERT, however many bookings the session has.
        booking_model.objects.filter(pk__in=[b.pk for b in bookings]).update(
            status=BookingStatus.CANCELLED,
            cancelled_by=actor,
            cancelled_at=now,
            cancel_reason=reason,
            updated_at=now,
            calendar_sequence=F("calendar_sequence") + 1,
        )
        for booking in bookings:
            booking.calendar_sequence += 1
        booked, waiting = _audience(locked, bookings)
        BookingEvent.objects.bulk_create(
            [
                BookingEvent(
                    booking=booking,
                    actor=actor,
                    from_status=booking.status,
                    to_status=BookingStatus.CANCELLED,
                    reason=reason,
                    at=now,
                    data={"session_cancelled": True},
                )
                for booking in bookings
            ]
        )
        for booking in bookings:
            old = booking.status
            booking.status = BookingStatus.CANCELLED
            booking.cancelled_by, booking.cancelled_at, booking.cancel_reason = actor, now, reason
            send_after_commit(
                signals.booking_cancelled,
                booking_model,
                booking=booking,
                actor=actor,
                from_status=old,
                to_status=BookingStatus.CANCELLED,
            )
        teacher = _teacher_unless_actor(locked, actor)
        notify(
            NotificationKind.SESSION_CANCELLED,
            recipients=[*booked, *waiting, *teacher],
            session=locked,
            actor=actor,
            at=now,
            reason=reason,
            start=locked.start_at_utc,
            end=locked.end_at_utc,
            bookings=booked,
            sequence=locked.calendar_sequence + 1,
        )
        # The session's seats all go (seats_taken becomes 0 below), held offers included.
        close_waiting(locked, now, reason="session_cancelled", actor=actor)
        model.objects.filter(pk=locked.pk).update(
            status=SessionStatus.CANCELLED,
            seats_taken=0,
            updated_at=now,
            calendar_sequence=F("calendar_sequence") + 1,
        )
        locked.refresh_from_db()
        send_after_commit(
            signals.session_cancelled, model, session=locked, actor=actor, reason=reason
        )
    return locked


def complete_sessions(now: datetime | None = None) -> int:
    """Mark every scheduled session that has ended as completed; return how many."""
    now = now or timezone.now()
    return int(
        get_session_model()
        .objects.filter(status=SessionStatus.SCHEDULED, end_at_utc__lte=now)
        .update(status=SessionStatus.COMPLETED, updated_at=now)
    )


def complete_session(session: Any, *, actor: Any = None) -> Any:
    """Mark one session completed; only after it has ended."""
    require_manager(actor, session, "complete this session")
    now = timezone.now()
    model = get_session_model()
    updated = model.objects.filter(
        pk=session.pk, status=SessionStatus.SCHEDULED, end_at_utc__lte=now
    ).update(status=SessionStatus.COMPLETED, updated_at=now)
    session.refresh_from_db()
    if not updated:
        raise InvalidTransition(
            "Only a scheduled session that has ended can be completed "
            f"(this one is {session.status} and ends at {session.end_at_utc:%Y-%m-%d %H:%M} UTC)."
        )
    return session
