"""iCalendar (RFC 5545) documents built from the models: one builder for the API's files
(``METHOD:PUBLISH``), the subscribable feed and the e-mail attachments (iTIP ``REQUEST`` or
``CANCEL``, RFC 5546).

Identity: a booking's ``UID`` is made from its primary key and never changes; a booking that
replaced another by a reschedule keeps the UID of the first of the chain, so calendars move
the entry. A teacher's group session is one entry with the session's UID. ``SEQUENCE`` is the
stored ``calendar_sequence``, which the services raise on every change of time, status or
meeting details; ``DTSTAMP`` and ``LAST-MODIFIED`` are the row's last change, so the same
data always gives the same bytes (the feed's strong ETag depends on it).

Time: every instant is written in UTC (``Z``). Occurrences of a series are expanded by the
library in the series' local wall time and written one by one, so no client has to apply a
time-zone rule of its own (see docs/calendar.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from icalendar import Calendar, Event, vCalAddress, vDuration, vText

from ..choices import BookingStatus, SessionStatus
from ..conf import booking_settings
from ..policies import display_name

#: The iTIP method of an attachment for each calendar status.
METHOD_FOR_STATUS = {"CONFIRMED": "REQUEST", "TENTATIVE": "REQUEST", "CANCELLED": "CANCEL"}

#: The calendar status of each booking status (``current_status``: an overdue request is
#: ``expired``). A rescheduled booking's entry lives on in its replacement (same UID).
STATUS_FOR_BOOKING = {
    BookingStatus.PENDING: "TENTATIVE",
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.ATTENDED: "CONFIRMED",
    BookingStatus.NO_SHOW: "CONFIRMED",
    BookingStatus.DECLINED: "CANCELLED",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.EXPIRED: "CANCELLED",
    BookingStatus.RESCHEDULED: "CANCELLED",
}


def calendar_domain() -> str:
    """The right-hand side of UIDs: ``LIVECLASS_BOOKING_CALENDAR_DOMAIN``, else the first
    concrete ``ALLOWED_HOSTS`` entry, else ``liveclass-booking.invalid``."""
    configured = booking_settings.CALENDAR_DOMAIN
    if configured:
        return configured
    for host in getattr(settings, "ALLOWED_HOSTS", []):
        host = host.lstrip(".")
        if host and "*" not in host:
            return host
    return "liveclass-booking.invalid"


def booking_uid(booking_pk: Any) -> str:
    return f"booking-{booking_pk}@{calendar_domain()}"


def session_uid(session_pk: Any) -> str:
    return f"session-{session_pk}@{calendar_domain()}"


def series_uid(series_pk: Any) -> str:
    return f"series-{series_pk}@{calendar_domain()}"


def first_of_chain(booking: Any) -> Any:
    """The primary key of the first booking of a chain of reschedules: a booking that
    replaced another keeps the calendar entry (the UID) of the one it replaced, so a move
    updates the entry in the calendar rather than adding one. One query per link; the feed
    resolves many chains at once with :func:`chain_roots`."""
    return chain_roots(type(booking), {booking.pk: booking.rescheduled_from_id})[booking.pk]


def chain_roots(model: Any, previous_of: dict[Any, Any]) -> dict[Any, Any]:
    """For bookings given as ``{pk: rescheduled_from_id}``, the first booking of each one's
    chain of reschedules, one query per step back along the longest chain."""
    roots = {pk: pk if prev is None else prev for pk, prev in previous_of.items()}
    known: dict[Any, Any] = dict(previous_of)
    pending = {prev for prev in previous_of.values() if prev is not None} - set(known)
    while pending:
        step = dict(model.objects.filter(pk__in=pending).values_list("pk", "rescheduled_from_id"))
        known.update(step)
        known.update({pk: None for pk in pending - set(step)})
        pending = {prev for prev in step.values() if prev is not None} - set(known)
    for pk in roots:
        seen = {pk}
        root = roots[pk]
        while known.get(root) is not None and known[root] not in seen:
            seen.add(root)
            root = known[root]
        roots[pk] = root
    return roots


def booking_calendar_status(booking: Any) -> str:
    return STATUS_FOR_BOOKING[booking.current_status]


def session_calendar_status(session: Any) -> str:
    return "CANCELLED" if session.status == SessionStatus.CANCELLED else "CONFIRMED"


def booking_title(booking: Any) -> str:
    """What a booking is called in calendars: its session's title, else its course."""
    if booking.session_id:
        return str(booking.session.title)
    return str(booking.course)


@dataclass(frozen=True)
class Entry:
    """One VEVENT, as the builder writes it."""

    uid: str
    sequence: int
    start: datetime
    end: datetime
    summary: str
    status: str
    stamp: datetime
    description: str = ""
    url: str = ""
    series_uid: str = ""
    #: For iTIP attachments only (a published calendar names no addresses).
    organizer: Any = None
    attendee: Any = None


def _meeting_lines(source: Any, passcode: bool) -> tuple[str, list[str]]:
    """The meeting link and the description lines of ``source`` (a session)."""
    if source is None:
        return "", []
    link = str(source.meeting_link or "")
    lines = []
    if link:
        lines.append(f"{_('Join')}: {link}")
    if source.meeting_id:
        lines.append(f"{_('Meeting ID')}: {source.meeting_id}")
    if passcode and source.meeting_passcode:
        lines.append(f"{_('Passcode')}: {source.meeting_passcode}")
    return link, lines


def booking_entry(
    booking: Any,
    viewer: Any,
    *,
    root: Any = None,
    series: Any = None,
    status: str | None = None,
    sequence: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    stamp: datetime | None = None,
    itip: bool = False,
) -> Entry:
    """A booking as ``viewer`` sees it: its teacher sees the student's name, anyone else the
    teacher's; meeting details while it is not cancelled, the passcode only when ``viewer``
    is the booking's own student or teacher. ``root`` (the first booking of its reschedule
    chain) and ``series`` (the series' primary key) are looked up when not given; the other
    keywords replace the row's values (a message tells of the version its event made)."""
    status = status or booking_calendar_status(booking)
    viewer_pk = getattr(viewer, "pk", None)
    teaching = viewer_pk is not None and viewer_pk == booking.teacher_id
    owner = booking.is_party(viewer)
    summary = booking_title(booking)
    if teaching:
        summary = f"{summary} · {display_name(booking.student_user)}"
        lines = [f"{_('Student')}: {display_name(booking.student_user)}"]
    else:
        lines = [f"{_('Teacher')}: {display_name(booking.teacher)}"]
    url = ""
    if status != "CANCELLED":
        url, meeting = _meeting_lines(booking.meeting, owner)
        lines += meeting
    if root is None:
        root = first_of_chain(booking)
    if series is None:
        series = booking.series_items.values_list("series_id", flat=True).first()
    return Entry(
        uid=booking_uid(root),
        sequence=booking.calendar_sequence if sequence is None else sequence,
        start=start or booking.start_at_utc,
        end=end or booking.end_at_utc,
        summary=summary,
        status=status,
        stamp=stamp or booking.updated_at,
        description="\n".join(lines),
        url=url,
        series_uid=series_uid(series) if series else "",
        organizer=booking.teacher if itip else None,
        attendee=booking.student_user if itip else None,
    )


#: Booking statuses that keep a student in a session (its teacher's entry lists them).
ATTENDING = (
    BookingStatus.PENDING,
    BookingStatus.CONFIRMED,
    BookingStatus.ATTENDED,
    BookingStatus.NO_SHOW,
)


def session_entry(session: Any, bookings: Iterable[Any], viewer: Any) -> Entry:
    """A group session as its teacher sees it: the students it holds by name (from
    ``bookings``, the session's bookings with ``student_user``), the meeting details, the
    passcode for the teacher. Its DTSTAMP is the latest change of the session or of any of
    its bookings (a cancelled one included: the entry changed when it left)."""
    bookings = list(bookings)
    status = session_calendar_status(session)
    names = sorted(display_name(b.student_user) for b in bookings if b.current_status in ATTENDING)
    lines = [
        _("Students (%(count)d): %(names)s") % {"count": len(names), "names": ", ".join(names)}
    ]
    url = ""
    if status != "CANCELLED":
        url, meeting = _meeting_lines(session, getattr(viewer, "pk", None) == session.teacher_id)
        lines += meeting
    return Entry(
        uid=session_uid(session.pk),
        sequence=session.calendar_sequence,
        start=session.start_at_utc,
        end=session.end_at_utc,
        summary=str(session.title),
        status=status,
        stamp=max([session.updated_at, *(b.updated_at for b in bookings)]),
        description="\n".join(lines),
        url=url,
    )


def _address(user: Any, role: str | None = None) -> vCalAddress:
    address = vCalAddress(f"mailto:{getattr(user, 'email', '') or 'unknown@invalid'}")
    address.params["cn"] = vText(display_name(user))
    if role:
        address.params["role"] = vText(role)
    return address


def _event(entry: Entry) -> Event:
    event = Event()
    event.add("uid", entry.uid)
    event.add("sequence", entry.sequence)
    event.add("dtstamp", entry.stamp)
    event.add("last-modified", entry.stamp)
    event.add("dtstart", entry.start)
    event.add("dtend", entry.end)
    event.add("summary", entry.summary)
    event.add("status", entry.status)
    if entry.description:
        event.add("description", entry.description)
    if entry.url:
        event.add("url", entry.url)
        event.add("location", entry.url)
    if entry.series_uid:
        event.add("related-to", entry.series_uid, parameters={"RELTYPE": "PARENT"})
    if entry.organizer is not None:
        event.add("organizer", _address(entry.organizer))
    if entry.attendee is not None:
        event.add("attendee", _address(entry.attendee, "REQ-PARTICIPANT"))
    return event


def to_ical(
    entries: Iterable[Entry],
    method: str | None = "PUBLISH",
    *,
    name: str = "",
    refresh: timedelta | None = None,
) -> bytes:
    """The iCalendar document of ``entries`` (CRLF line ends, lines folded at 75 octets).
    ``name`` becomes ``X-WR-CALNAME``; ``refresh`` the ``REFRESH-INTERVAL`` (RFC 7986) and
    ``X-PUBLISHED-TTL`` a subscribing client is asked to poll at."""
    cal = Calendar()
    cal.add("prodid", "-//liveclass_booking//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    if name:
        cal.add("x-wr-calname", name)
    if refresh is not None:
        cal.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
        cal.add("x-published-ttl", vDuration(refresh))
    for entry in entries:
        cal.add_component(_event(entry))
    return bytes(cal.to_ical())


def itip_calendar(entry: Entry) -> tuple[bytes, str]:
    """An e-mail attachment of one entry and its iTIP method (``REQUEST`` or ``CANCEL``)."""
    method = METHOD_FOR_STATUS[entry.status]
    return to_ical([entry], method), method
