"""One user's calendar: their bookings as a student, the group sessions and the one-on-one
lessons they teach, within a window around now, in a constant number of queries.

Entries cancelled (declined, expired, cancelled) within ``LIVECLASS_BOOKING_CALENDAR_FEED_
KEEP_CANCELLED`` stay in the feed as ``STATUS:CANCELLED`` so a subscribed client removes them;
older ones leave it. A rescheduled booking is not listed: its replacement carries its UID.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Prefetch, Q
from icalendar import __version__ as icalendar_version

from .. import __version__
from ..choices import BookingStatus, BookingType, SessionStatus
from ..conf import booking_settings
from ..models import BookingSeriesItem, get_booking_model, get_session_model
from ..policies import display_name, get_policy_resolver
from ..querysets import overdue_requests
from .ics import ATTENDING, Entry, booking_entry, chain_roots, session_entry, to_ical


def attending(now: datetime) -> Q:
    """Bookings that hold (or held) their place: not ended by a decision, a cancellation or
    an approval timeout (``ATTENDING`` by their ``current_status``)."""
    return Q(status__in=ATTENDING) & ~overdue_requests(now)


def _listed_bookings(now: datetime) -> Q:
    """Bookings a feed lists: those attending, and those cancelled (declined, expired,
    timed out) recently enough that clients still need to hear of it."""
    since = now - booking_settings.CALENDAR_FEED_KEEP_CANCELLED
    ended = (
        Q(status__in=(BookingStatus.DECLINED, BookingStatus.CANCELLED, BookingStatus.EXPIRED))
        & Q(updated_at__gte=since)
    ) | Q(status=BookingStatus.PENDING, approval_expires_at__gt=since)
    return attending(now) | ended


def _window(now: datetime) -> Q:
    return Q(
        end_at_utc__gt=now - booking_settings.CALENDAR_FEED_PAST,
        start_at_utc__lt=now + booking_settings.CALENDAR_FEED_FUTURE,
    )


def booking_entries(bookings: list[Any], viewer: Any) -> list[Entry]:
    """Entries of many bookings for ``viewer``: the UIDs of their reschedule chains and their
    series resolved in bulk (a query per step of the longest chain, and one for series)."""
    if not bookings:
        return []
    model = type(bookings[0])
    roots = chain_roots(model, {b.pk: b.rescheduled_from_id for b in bookings})
    series = dict(
        BookingSeriesItem.objects.filter(booking__in=[b.pk for b in bookings]).values_list(
            "booking_id", "series_id"
        )
    )
    return [
        booking_entry(b, viewer, root=roots[b.pk], series=series.get(b.pk, "")) for b in bookings
    ]


def user_entries(user: Any, now: datetime) -> list[Entry]:
    """Everything in ``user``'s calendar, ordered by start."""
    window = _window(now)
    bookings = list(
        get_booking_model()
        .objects.filter(window & _listed_bookings(now))
        .filter(Q(student_user=user) | Q(teacher=user, booking_type=BookingType.ONE_ON_ONE))
        .select_related("session", "course", "teacher", "student_user")
        .order_by("start_at_utc", "pk")
    )
    since = now - booking_settings.CALENDAR_FEED_KEEP_CANCELLED
    sessions = (
        get_session_model()
        .objects.filter(window, teacher=user)
        .filter(~Q(status=SessionStatus.CANCELLED) | Q(updated_at__gte=since))
        .prefetch_related(
            Prefetch(
                "bookings",
                queryset=get_booking_model().objects.select_related("student_user"),
                to_attr="calendar_bookings",
            )
        )
        .order_by("start_at_utc", "pk")
    )
    entries = booking_entries(bookings, user)
    entries += [session_entry(s, s.calendar_bookings, user) for s in sessions]
    entries.sort(key=lambda e: (e.start, e.uid))
    return entries


#: How long the ETag of a feed's contents is remembered (in Django's default cache).
ETAG_CACHE_TIMEOUT = 24 * 3600


class Feed:
    """A user's calendar read from the database, not yet written out.

    Its strong ETag is a hash of the bytes, which depend only on the entries (``DTSTAMP`` is
    each entry's last change, not the time of the request). Writing 2,000 entries takes most
    of a request, so the ETag of each set of entries is remembered in Django's default cache
    under a fingerprint of the entries: a client revalidating an unchanged feed gets its 304
    after the reads alone. Without a shared cache every request writes the document; the
    answers are the same."""

    def __init__(self, entries: list[Entry], name: str, refresh: timedelta) -> None:
        self.entries = entries
        self.name = name
        self.refresh = refresh
        self.last_modified = max((e.stamp for e in entries), default=None)
        contents = repr((__version__, icalendar_version, name, refresh, entries))
        self.cache_key = (
            "liveclass_booking:feed-etag:" + hashlib.sha256(contents.encode()).hexdigest()
        )

    def known_etag(self) -> str | None:
        """The ETag of these entries if a request has written them before."""
        etag: str | None = cache.get(self.cache_key)
        return etag

    def render(self) -> tuple[bytes, str]:
        """The document and its ETag (remembered for the next revalidation)."""
        body = to_ical(self.entries, name=self.name, refresh=self.refresh)
        etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
        cache.set(self.cache_key, etag, ETAG_CACHE_TIMEOUT)
        return body, etag


def user_feed(user: Any, now: datetime) -> Feed:
    """``user``'s calendar as a subscribable feed (see :class:`Feed`)."""
    return Feed(
        user_entries(user, now),
        name=display_name(user),
        refresh=booking_settings.CALENDAR_FEED_REFRESH,
    )


def latest_of_chain(booking: Any) -> Any:
    """The booking that now holds ``booking``'s calendar entry: itself, or for a rescheduled
    one the last booking of its chain of reschedules (they share one UID)."""
    model = type(booking)
    seen = {booking.pk}
    while booking.status == BookingStatus.RESCHEDULED:
        successor = (
            model.objects.filter(rescheduled_from=booking.pk)
            .select_related("session", "course", "teacher", "student_user")
            .first()
        )
        if successor is None or successor.pk in seen:
            break
        seen.add(successor.pk)
        booking = successor
    return booking


def booking_document(booking: Any, viewer: Any) -> bytes:
    """One booking's calendar entry as a published file, as ``viewer`` sees it; a rescheduled
    booking's file shows the entry where it has moved to."""
    return to_ical([booking_entry(latest_of_chain(booking), viewer)])


def session_document(session: Any, viewer: Any, now: datetime) -> bytes | None:
    """A group session as a published file: the teacher's entry (booked students by name)
    for whoever manages the session, the student's own booking for a student booked in it
    (their current booking, or their last one when none is current), None for anyone else."""
    bookings = get_booking_model().objects.filter(session=session).select_related("student_user")
    if get_policy_resolver().can_manage(viewer, session):
        return to_ical([session_entry(session, bookings, viewer)])
    own = (
        bookings.filter(student_user=viewer)
        .exclude(status=BookingStatus.RESCHEDULED)
        .select_related("session", "course", "teacher")
        .order_by("-created_at", "-pk")
    )
    booking = own.filter(attending(now)).first() or own.first()
    return None if booking is None else booking_document(booking, viewer)
