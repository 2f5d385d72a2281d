"""Busy times out of a teacher's CalDAV calendar: the CalDAV counterpart of fetching an ICS
feed (:mod:`.fetch`) and reading it (:mod:`.busy`).

``fetch_caldav_busy(url, username, password, start, end, default_zone)`` asks the calendar
collection at ``url`` for the events overlapping the window (a ``calendar-query`` REPORT with a
time range, never asking the server to expand recurrences: servers differ there), puts the
events it answers into one iCalendar document and returns :func:`.busy.busy_intervals` of it.
Needs the optional ``caldav`` package (the ``caldav`` extra).

Errors are :class:`.fetch.FetchError`, with the reasons of :func:`.fetch.fetch_calendar` and two
more, or :class:`.busy.CalendarParseError` when an event cannot be read:

- ``caldav_unavailable``: the ``caldav`` package is not installed.
- ``bad_url``: not an ``http``/``https`` URL, no host, a bad port.
- ``address_not_allowed``: the host resolves to a non-public address and ``allow_private`` is
  off (the rules of :mod:`.fetch`); or the server sends the client to another server (a
  redirect, an event's address elsewhere), which is not contacted.
- ``unauthorized``: the server refuses the user name and password (401) or does not let the
  account read the calendar (403).
- ``not_a_calendar``: nothing at the URL (404), a collection that is not a calendar (a user's
  principal, say), or an answer that is not CalDAV at all (a login page).
- ``http_status``: another error status (the code is in the message).
- ``connection``: the name does not resolve, the connection or TLS handshake fails.
- ``timeout``: the server did not answer within ``timeout`` seconds.
- ``too_large``: the server's answers add up to more than ``max_bytes`` (after decompression).

Messages name the host, never the user name or password.

How the address check holds: the host name is resolved once, every address is checked, and the
HTTP client is given a resolver that knows only those addresses, so a name that resolves
differently a moment later cannot lead the requests elsewhere. Every request the client makes,
redirects included, must go to the URL's own scheme, host and port. Environment proxies and
``.netrc`` are not used. Name resolution itself runs in the system resolver and is not bounded
by ``timeout``.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

import icalendar

from . import busy
from .busy import Interval
from .fetch import (
    MAX_REDIRECTS,
    USER_AGENT,
    FetchError,
    IPAddress,
    Target,
    parse_target,
    resolve_addresses,
)

__all__ = ["fetch_caldav_busy"]

# Servers compare dates and floating times in UTC or a zone of their own; asking for one more
# day on each side finds every event that can fall within the window in any zone
# (busy_intervals clips to the window).
_MARGIN = timedelta(days=1)
_CALENDAR_TYPE = "{urn:ietf:params:xml:ns:caldav}calendar"
_PRODID = "-//liveclass-booking//CalDAV busy times//EN"


def fetch_caldav_busy(
    url: str,
    username: str,
    password: str,
    start: datetime,
    end: datetime,
    default_zone: str,
    *,
    timeout: float = 10.0,
    allow_private: bool = False,
    max_bytes: int = 5_000_000,
    max_occurrences: int = busy.MAX_OCCURRENCES,
) -> list[Interval]:
    """Return the busy intervals of the CalDAV calendar collection at ``url`` within
    ``[start, end)``: sorted, merged, aware UTC pairs, by the rules of
    :func:`.busy.busy_intervals` (``default_zone`` and ``max_occurrences`` are passed on).

    ``url`` is the calendar itself (``https://host/remote.php/dav/calendars/user/personal/``),
    not the server's or the user's address. An empty ``username`` connects anonymously.
    ``timeout`` bounds each wait for the server and, checked between reads, the whole
    exchange; ``max_bytes`` the total of the server's answers. ``allow_private`` lets the URL
    reach non-public addresses. Raises :class:`.fetch.FetchError` or
    :class:`.busy.CalendarParseError` (see the module's documentation), and ``ValueError``
    for naive or inverted ``start``/``end``.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes.")
    if not start < end:
        raise ValueError("start must be before end.")
    try:
        import niquests
        from caldav.lib import error as dav_errors
    except ImportError:
        raise FetchError(
            "caldav_unavailable",
            "Reading CalDAV calendars needs the caldav package: "
            "install liveclass-booking with the caldav extra (liveclass-booking[caldav]).",
        ) from None

    if urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
        raise FetchError("bad_url", "Only http and https addresses can be read over CalDAV.")
    target = parse_target(url)
    addresses = resolve_addresses(target, allow_private)
    exchange = _Exchange(target, timeout, max_bytes)
    session = niquests.Session(
        resolver=_pinned_resolver(target, addresses),
        timeout=timeout,
        disable_http3=True,
        # The pinned resolver knows only the calendar's host, so the certificate revocation
        # check could not reach its responders (fetch_calendar does not check either).
        revocation_configuration=None,
    )
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    session.hooks["pre_request"].append(exchange.check_request)
    session.hooks["response"].append(exchange.read_response)
    try:
        resources = _calendar_events(
            session, target, username, password, start - _MARGIN, end + _MARGIN
        )
    except FetchError:
        raise
    except dav_errors.AuthorizationError as exc:
        if getattr(exc, "status", None) == 403:
            message = f"{target.host} does not let this account read the calendar."
        elif not username:
            message = f"{target.host} asks for a user name and password."
        else:
            message = f"{target.host} refused the user name or password."
        raise FetchError("unauthorized", message) from None
    except dav_errors.NotFoundError:
        message = f"{target.host} has no calendar at this address."
        raise FetchError("not_a_calendar", message) from None
    except dav_errors.DAVError as exc:
        status = getattr(exc, "status", None)
        if status is None:
            message = f"{target.host} did not answer as a CalDAV calendar."
            raise FetchError("not_a_calendar", message) from None
        raise FetchError("http_status", f"{target.host} answered HTTP {status}.") from None
    except niquests.exceptions.RequestException as exc:
        raise _transport_error(exc, target) from None
    except Exception:
        # The library's parsers fail in their own ways (TypeError, AttributeError, lxml's
        # errors) on answers that are not CalDAV, such as a login page.
        message = f"{target.host} did not answer as a CalDAV calendar."
        raise FetchError("not_a_calendar", message) from None
    finally:
        session.close()
    document = _combine(resources)
    return busy.busy_intervals(document, start, end, default_zone, max_occurrences=max_occurrences)


def _calendar_events(
    session: Any, target: Target, username: str, password: str, start: datetime, end: datetime
) -> list[tuple[str, Any]]:
    """The address and iCalendar data of each resource of the calendar with events overlapping
    ``[start, end)``, unexpanded; FetchError when the URL is not a calendar collection."""
    from caldav.collection import Calendar
    from caldav.davclient import DAVClient
    from caldav.elements import dav

    client = DAVClient(
        url=target.public_url,
        username=username or None,
        password=password if username else None,
        headers={"User-Agent": USER_AGENT},
        enable_rfc6764=False,
    )
    client.session.close()
    client.session = session
    calendar = Calendar(client=client, url=target.public_url)
    # A sync client answers directly (the return types also cover async clients).
    properties = cast(dict[str, Any], calendar.get_properties([dav.ResourceType()]))
    if _CALENDAR_TYPE not in (properties.get(dav.ResourceType.tag) or []):
        # A collection without events of its own (the user's principal, say) would answer
        # nothing: "never busy" instead of an error.
        message = f"The address on {target.host} is not a CalDAV calendar."
        raise FetchError("not_a_calendar", message)
    found = cast(
        list[Any],
        calendar.search(event=True, start=start, end=end, expand=False, post_filter=False),
    )
    return [(str(event.url), event.data) for event in found]


def _pinned_resolver(target: Target, addresses: list[IPAddress]) -> str | None:
    """A resolver for the HTTP client that knows the checked addresses of the host only
    (none for an IP address, which is not resolved)."""
    try:
        ipaddress.ip_address(target.host)
    except ValueError:
        hosts = ",".join(f"{target.host}:{address}" for address in addresses)
        return f"in-memory://default/?hosts={hosts}"
    return None


def _transport_error(exc: Exception, target: Target) -> FetchError:
    """A FetchError for a failure of the HTTP library (niquests)."""
    if _timed_out(exc):
        return FetchError("timeout", f"{target.host} did not answer in time.")
    return FetchError("connection", f"The connection to {target.host} failed.")


def _timed_out(exc: BaseException) -> bool:
    """Whether the HTTP library failed on a timeout; a read timing out within the body is
    reported as a connection error that carries the transport's timeout error."""
    from niquests.exceptions import Timeout
    from niquests.packages.urllib3.exceptions import TimeoutError as TransportTimeout

    if isinstance(exc, Timeout | TimeoutError):
        return True
    return any(isinstance(arg, TransportTimeout | TimeoutError) for arg in exc.args)


class _Exchange:
    """The bounds of one exchange with the server, applied from the HTTP client's hooks: the
    deadline, the size budget, and the one origin requests may go to."""

    def __init__(self, target: Target, timeout: float, max_bytes: int) -> None:
        self.target = target
        self.end = time.monotonic() + timeout
        self.max_bytes = max_bytes
        self.left = max_bytes

    def _check_deadline(self) -> None:
        if time.monotonic() >= self.end:
            raise FetchError("timeout", f"{self.target.host} did not answer in time.")

    def check_request(self, request: Any, **kwargs: Any) -> None:
        """Refuse a request past the deadline or to another scheme, host or port."""
        self._check_deadline()
        try:
            origin = parse_target(str(request.url)).origin
        except FetchError:
            origin = None
        if origin != self.target.origin:
            raise FetchError(
                "address_not_allowed",
                f"{self.target.host} sent the client to another server, which is not contacted.",
            )

    def _too_large(self) -> FetchError:
        return FetchError(
            "too_large", f"The calendar's answers are larger than {self.max_bytes} bytes."
        )

    def read_response(self, response: Any, **kwargs: Any) -> None:
        """Read the body within the budget and the deadline (the client would read it whole)."""
        if response.raw is None:
            return
        length = response.headers.get("Content-Length")
        if length and length.strip().isdigit() and int(length) > self.left:
            raise self._too_large()
        body = bytearray()
        try:
            # Chunks as they arrive (-1), so the deadline is checked while a slow body drips.
            for chunk in response.iter_content(-1):
                body += chunk
                if len(body) > self.left:
                    raise self._too_large()
                self._check_deadline()
        except FetchError:
            raise
        except Exception as exc:
            raise _transport_error(exc, self.target) from None
        self.left -= len(body)
        # Where the client keeps a body it has read; the caldav library reads it from there.
        response._content = bytes(body)


def _combine(resources: list[tuple[str, Any]]) -> bytes:
    """One iCalendar document of the resources' events and time zones; the components of
    one resource (a recurring event and its moved or cancelled occurrences) stay together."""
    combined = icalendar.Calendar()
    combined.add("prodid", _PRODID)
    combined.add("version", "2.0")
    zones: set[str] = set()
    events: list[icalendar.Component] = []
    seen: set[str] = set()
    for address, data in resources:
        if address in seen:  # a resource answered twice
            continue
        seen.add(address)
        name = urlsplit(address).path.rstrip("/").rsplit("/", 1)[-1] or address
        calendar = busy.read_calendar(data, f"The event {name}")
        for component in calendar.subcomponents:
            if component.name == "VTIMEZONE":
                tzid = str(component.get("TZID", ""))
                if tzid not in zones:
                    zones.add(tzid)
                    combined.add_component(component)
            elif component.name == "VEVENT":
                events.append(component)
    for event in events:
        combined.add_component(event)
    document: bytes = combined.to_ical()
    return document
