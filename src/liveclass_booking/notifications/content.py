"""What a message says: the template context of one (event, recipient), built from what the
event carries (times, reasons, what changed) and the rows it names (titles, names, links)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.dateparse import parse_datetime

from ..choices import BookingStatus, BookingType, NotificationKind
from ..models import BookingSeries, NotificationEvent, get_booking_model
from ..policies import display_name, get_policy_resolver

#: Data keys holding instants (stored as ISO 8601 text in the event).
INSTANT_KEYS = (
    "start",
    "end",
    "old_start",
    "old_end",
    "offer_expires_at",
    "first_start",
    "due_at",
)

#: Kinds whose message carries the booking's calendar entry, and its iCalendar status.
CALENDAR_STATUS: dict[str, str] = {
    NotificationKind.BOOKING_REQUESTED: "TENTATIVE",
    NotificationKind.BOOKING_CONFIRMED: "CONFIRMED",
    NotificationKind.BOOKING_RESCHEDULED: "",  # follows the new booking's status
    NotificationKind.WAITLIST_ACCEPTED: "",
    NotificationKind.SESSION_MOVED: "",
    NotificationKind.SESSION_DETAILS_CHANGED: "",
    NotificationKind.BOOKING_DECLINED: "CANCELLED",
    NotificationKind.BOOKING_CANCELLED: "CANCELLED",
    NotificationKind.BOOKING_EXPIRED: "CANCELLED",
    NotificationKind.SESSION_CANCELLED: "CANCELLED",
}


@dataclass
class Message:
    """One (event, recipient): everything a notifier needs to tell that person."""

    event: NotificationEvent
    recipient: Any
    channel: str
    zone: str
    language: str
    booking: Any = None
    session: Any = None
    series: Any = None
    entry: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    #: The recipient's own booking the message is about (for session events, theirs).
    own_booking: Any = None
    #: The calendar SEQUENCE of the recipient's entry as this event left it.
    sequence: int = 0
    #: A stable id for this message (the same on a repeated attempt).
    message_id: str = ""

    @property
    def kind(self) -> str:
        return str(self.event.kind)

    @property
    def role(self) -> str:
        """``teacher`` when the recipient teaches what the event is about, else ``student``."""
        about = self._about()
        return (
            "teacher" if about is not None and about.teacher_id == self.recipient.pk else "student"
        )

    @property
    def calendar_status(self) -> str:
        """The iCalendar status of the attached entry, or "" when the message has none: no
        booking of the recipient's, a series occurrence (series mails summarise; calendars
        get occurrences from the feed), or a teacher's group booking (the teacher's entry is
        the session, not each seat)."""
        booking = self.own_booking
        if self.kind not in CALENDAR_STATUS or booking is None or self.series is not None:
            return ""
        if self.role == "teacher" and booking.booking_type == BookingType.GROUP_SESSION:
            return ""
        status = CALENDAR_STATUS[self.kind]
        if status:
            return status
        # Session events carry no booking status: the recipient's booking has it.
        current = self.data.get("to_status") or booking.status
        return "TENTATIVE" if current == BookingStatus.PENDING else "CONFIRMED"

    @property
    def title(self) -> str:
        if self.session is not None:
            return str(self.session.title)
        course = None
        for obj in (self.booking, self.series):
            if obj is not None:
                course = obj.course
                break
        return str(course) if course is not None else ""

    @property
    def meeting(self) -> Any:
        """What holds the meeting details told: the session, or the recipient's own lesson."""
        if self.session is not None:
            return self.session
        booking = self.own_booking or self.booking
        return booking.meeting if booking is not None else None

    @property
    def meeting_link(self) -> str:
        if self.meeting is not None and self.meeting.meeting_link:
            return str(self.meeting.meeting_link)
        if self.series is not None:
            return str(self.series.default_meeting_link)
        return ""

    def context(self) -> dict[str, Any]:
        """The template context (times are aware; the templates render them in ``zone``)."""
        return {
            "kind": self.kind,
            "event": self.event,
            "recipient": self.recipient,
            "recipient_name": display_name(self.recipient),
            "role": self.role,
            "actor": self.event.actor,
            "actor_name": display_name(self.event.actor) if self.event.actor else "",
            "booking": self.own_booking or self.booking,
            "session": self.session,
            "series": self.series,
            "entry": self.entry,
            "title": self.title,
            "teacher_name": display_name(self._teacher()),
            "student_name": display_name(self._student()),
            "meeting_link": self.meeting_link,
            "meeting_id": getattr(self.meeting, "meeting_id", ""),
            "meeting_passcode": getattr(self.meeting, "meeting_passcode", ""),
            "zone": self.zone,
            **self.data,
        }

    def _student(self) -> Any:
        for obj in (self.own_booking, self.booking, self.series, self.entry):
            if obj is not None:
                return obj.student_user
        return None

    def _about(self) -> Any:
        """The booking, session or series the event is about (the first there is)."""
        return next((o for o in (self.booking, self.session, self.series) if o is not None), None)

    def _teacher(self) -> Any:
        about = self._about()
        return about.teacher if about is not None else None


def event_data(event: NotificationEvent) -> dict[str, Any]:
    """The event's data with its instants parsed back into aware datetimes."""
    data = dict(event.data)
    for key in INSTANT_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            data[key] = parse_datetime(value)
    return data


def build_message(
    event: NotificationEvent, recipient: Any, channel: str, message_id: str
) -> Message:
    """The message of ``event`` for ``recipient``: its rows, the recipient's zone and
    language, and (for session events) the recipient's own booking."""
    resolver = get_policy_resolver()
    data = event_data(event)
    booking = event.booking
    own = booking
    bookings = data.get("bookings") or {}
    sequence = data.get("sequence")
    if own is None and str(recipient.pk) in bookings:
        # Session events: the recipient's own booking, at the version the event made.
        own_pk, sequence = bookings[str(recipient.pk)]
        own = (
            get_booking_model()
            .objects.select_related("teacher", "student_user", "course")
            .filter(pk=own_pk)
            .first()
        )
    series = event.series
    if series is None and own is not None:
        series = BookingSeries.objects.filter(items__booking=own).first()
    return Message(
        event=event,
        recipient=recipient,
        channel=channel,
        zone=resolver.get_user_timezone(recipient),
        language=resolver.get_user_language(recipient),
        booking=booking,
        session=event.session,
        series=series,
        entry=event.waitlist_entry,
        data=data,
        own_booking=own,
        sequence=int(sequence if sequence is not None else getattr(own, "calendar_sequence", 0)),
        message_id=message_id,
    )
