"""Busy times from CalDAV calendars (``liveclass_booking.calendar.caldav.fetch_caldav_busy``)
against a real Radicale server on loopback, filled through CalDAV itself; and against small
loopback servers for the failures Radicale does not produce (slow, oversized, redirecting and
non-CalDAV answers).

Radicale and the caldav package are test dependencies: without them these tests are skipped,
except under ``CI=true`` where they fail.

Expected intervals are written literally in UTC: Europe/Berlin is UTC+1 in March 2027 (DST from
28 March); America/New_York changes from UTC-5 to UTC-4 on 14 March 2027.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest

from liveclass_booking.calendar.busy import CalendarParseError
from liveclass_booking.calendar.caldav import fetch_caldav_busy
from liveclass_booking.calendar.fetch import FetchError

USER, SECRET = "tutor", "s3cret-pw"
START, END = datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 3, 22, tzinfo=UTC)
ZONE = "Europe/Berlin"


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=UTC)


def require(module: str) -> Any:
    """Import ``module``; skip the test without it (fail it under ``CI=true``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{module} is needed for the CalDAV tests ({exc}); install the test dependencies"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI is set and {message}", pytrace=False)
        pytest.skip(message)


def vcalendar(*blocks: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN"]
    for block in blocks:
        lines += [line.strip() for line in block.strip().splitlines() if line.strip()]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


BERLIN = """
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE
"""

# A zone known only from its VTIMEZONE (as Outlook names them), with New York's rules.
EASTERN = """
BEGIN:VTIMEZONE
TZID:Eastern (custom)
BEGIN:DAYLIGHT
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
TZNAME:EDT
DTSTART:20070311T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
TZNAME:EST
DTSTART:20071104T020000
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
END:VTIMEZONE
"""

EVENTS = {
    # Across the window's start: clipped to it.
    "edge": vcalendar("""
        BEGIN:VEVENT
        UID:edge@test
        DTSTAMP:20270101T000000Z
        DTSTART:20270228T230000Z
        DTEND:20270301T010000Z
        END:VEVENT
    """),
    "single": vcalendar("""
        BEGIN:VEVENT
        UID:single@test
        DTSTAMP:20270101T000000Z
        DTSTART:20270302T090000Z
        DTEND:20270302T100000Z
        SUMMARY:Dentist
        END:VEVENT
    """),
    # Wednesdays 15:00 Berlin: 3 March busy, 10 March excluded, 17 March moved to Thursday
    # 18 March 11:00.
    "weekly": vcalendar(
        BERLIN,
        """
        BEGIN:VEVENT
        UID:weekly@test
        DTSTAMP:20270101T000000Z
        DTSTART;TZID=Europe/Berlin:20270303T150000
        DTEND;TZID=Europe/Berlin:20270303T160000
        RRULE:FREQ=WEEKLY;COUNT=3
        EXDATE;TZID=Europe/Berlin:20270310T150000
        SUMMARY:Choir
        END:VEVENT
        BEGIN:VEVENT
        UID:weekly@test
        DTSTAMP:20270101T000000Z
        RECURRENCE-ID;TZID=Europe/Berlin:20270317T150000
        DTSTART;TZID=Europe/Berlin:20270318T110000
        DTEND;TZID=Europe/Berlin:20270318T120000
        SUMMARY:Choir (moved)
        END:VEVENT
        """,
    ),
    "cancelled": vcalendar("""
        BEGIN:VEVENT
        UID:cancelled@test
        DTSTAMP:20270101T000000Z
        DTSTART:20270304T090000Z
        DTEND:20270304T100000Z
        STATUS:CANCELLED
        END:VEVENT
    """),
    "transparent": vcalendar("""
        BEGIN:VEVENT
        UID:transparent@test
        DTSTAMP:20270101T000000Z
        DTSTART:20270305T090000Z
        DTEND:20270305T100000Z
        TRANSP:TRANSPARENT
        END:VEVENT
    """),
    # Berlin's 8 March (the default zone), midnight to midnight.
    "all-day": vcalendar("""
        BEGIN:VEVENT
        UID:all-day@test
        DTSTAMP:20270101T000000Z
        DTSTART;VALUE=DATE:20270308
        DTEND;VALUE=DATE:20270309
        END:VEVENT
    """),
    # Fridays 09:00 New York: 14:00Z before 14 March, 13:00Z after.
    "new-york": vcalendar(
        EASTERN,
        """
        BEGIN:VEVENT
        UID:new-york@test
        DTSTAMP:20270101T000000Z
        DTSTART;TZID=Eastern (custom):20270312T090000
        DTEND;TZID=Eastern (custom):20270312T100000
        RRULE:FREQ=WEEKLY;COUNT=2
        END:VEVENT
        """,
    ),
    "later": vcalendar("""
        BEGIN:VEVENT
        UID:later@test
        DTSTAMP:20270101T000000Z
        DTSTART:20270410T090000Z
        DTEND:20270410T100000Z
        END:VEVENT
    """),
}

EXPECTED = [
    (utc(3, 1, 0), utc(3, 1, 1)),
    (utc(3, 2, 9), utc(3, 2, 10)),
    (utc(3, 3, 14), utc(3, 3, 15)),
    (utc(3, 7, 23), utc(3, 8, 23)),
    (utc(3, 12, 14), utc(3, 12, 15)),
    (utc(3, 18, 10), utc(3, 18, 11)),
    (utc(3, 19, 13), utc(3, 19, 14)),
]


# Radicale


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Radicale:
    """Radicale's WSGI application with htpasswd (plain) authentication for one user."""

    def __init__(self, folder: Path) -> None:
        radicale = require("radicale")
        config = require("radicale.config")
        users = folder / "users"
        users.write_text(f"{USER}:{SECRET}\n")
        configuration = config.load()
        configuration.update(
            {
                "storage": {"filesystem_folder": str(folder / "collections")},
                "auth": {
                    "type": "htpasswd",
                    "htpasswd_filename": str(users),
                    "htpasswd_encryption": "plain",
                    "delay": "0",
                },
                "rights": {"type": "owner_only"},
                "logging": {"level": "critical"},
            },
            "test",
            privileged=True,
        )
        self.app = radicale.Application(configuration)

    def serve(self) -> tuple[WSGIServer, str]:
        server = make_server(
            "127.0.0.1",
            0,
            self.app,
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}"


def stop(server: WSGIServer | ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Radicale, str]]:
    require("caldav")
    instance = Radicale(tmp_path_factory.mktemp("radicale"))
    server, base = instance.serve()
    yield instance, base
    stop(server)


@pytest.fixture(scope="module")
def principal(radicale: tuple[Radicale, str]) -> Any:
    from caldav.davclient import DAVClient

    client = DAVClient(url=f"{radicale[1]}/{USER}/", username=USER, password=SECRET)
    return client.principal()


@pytest.fixture(scope="module")
def calendar_url(principal: Any) -> str:
    """A calendar holding EVENTS, put there through CalDAV."""
    calendar = principal.make_calendar(name="Busy", cal_id="busy")
    for data in EVENTS.values():
        calendar.add_event(data)
    return str(calendar.url)


def busy(url: str, **kwargs: Any) -> list[tuple[datetime, datetime]]:
    kwargs.setdefault("allow_private", True)
    kwargs.setdefault("timeout", 2.0)
    username = kwargs.pop("username", USER)
    password = kwargs.pop("password", SECRET)
    return fetch_caldav_busy(url, username, password, START, END, ZONE, **kwargs)


def fails(reason: str, url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        busy(url, **kwargs)
    assert caught.value.reason == reason, str(caught.value)
    assert SECRET not in str(caught.value)
    assert USER not in str(caught.value)
    return caught.value


def test_the_calendars_events_are_busy_by_the_busy_rules(calendar_url: str) -> None:
    """A single event, a weekly rule with an excluded and a moved occurrence, a cancelled and
    a transparent event (free), an all-day event in the default zone, a weekly event across
    New York's DST change in a zone defined only by its VTIMEZONE, an event clipped at the
    window's start; the event in April is outside the window."""
    assert busy(calendar_url) == EXPECTED


def test_a_host_name_is_resolved_once_and_pinned(
    calendar_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved and checked once; the client connects to those addresses and
    does not ask again (where a rebinding name could answer differently)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolve_once(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "calendar.test":
            return real(host, *args, **kwargs)
        asked.append(host)
        if len(asked) > 1:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve_once)
    assert busy(calendar_url.replace("127.0.0.1", "calendar.test")) == EXPECTED
    assert asked == ["calendar.test"]


def test_a_narrower_window_clips(calendar_url: str) -> None:
    intervals = fetch_caldav_busy(
        calendar_url, USER, SECRET, utc(3, 8, 12), utc(3, 12, 14, 30), ZONE, allow_private=True
    )
    assert intervals == [(utc(3, 8, 12), utc(3, 8, 23)), (utc(3, 12, 14), utc(3, 12, 14, 30))]


def test_all_day_events_are_found_in_the_default_zone(calendar_url: str) -> None:
    # New York's 8 March ends at 05:00Z on 9 March; a server comparing the date in UTC sees
    # it end at midnight, before this window.
    intervals = fetch_caldav_busy(
        calendar_url, USER, SECRET, utc(3, 9), utc(3, 10), "America/New_York", allow_private=True
    )
    assert intervals == [(utc(3, 9), utc(3, 9, 5))]


def test_a_deleted_event_is_no_longer_busy(principal: Any) -> None:
    calendar = principal.make_calendar(name="Changing", cal_id="changing")
    url = str(calendar.url)
    assert busy(url) == []
    event = calendar.add_event(EVENTS["single"])
    assert busy(url) == [(utc(3, 2, 9), utc(3, 2, 10))]
    event.delete()
    assert busy(url) == []


def test_an_empty_user_name_connects_anonymously(calendar_url: str) -> None:
    # Radicale asks for credentials; without any the server's 401 is the answer.
    fails("unauthorized", calendar_url, username="", password="")


def test_a_wrong_password_is_unauthorized(calendar_url: str) -> None:
    error = fails("unauthorized", calendar_url, password="wrong-secret")
    assert "wrong-secret" not in str(error)
    assert "user name or password" in str(error)


def test_another_users_calendar_is_unauthorized(radicale: tuple[Radicale, str]) -> None:
    error = fails("unauthorized", f"{radicale[1]}/someone-else/")
    assert "does not let this account" in str(error)


def test_an_unknown_calendar_is_not_a_calendar(calendar_url: str) -> None:
    fails("not_a_calendar", calendar_url.rstrip("/") + "-missing/")


def test_the_users_principal_is_not_a_calendar(principal: Any, calendar_url: str) -> None:
    # A collection without events of its own: answering nothing would read as "never busy".
    fails("not_a_calendar", str(principal.url))


def test_a_stopped_server_is_a_connection_error(radicale: tuple[Radicale, str]) -> None:
    server, base = radicale[0].serve()
    stop(server)
    fails("connection", f"{base}/{USER}/busy/")


def test_loopback_is_refused_without_the_setting(calendar_url: str) -> None:
    error = fails("address_not_allowed", calendar_url, allow_private=False)
    assert "private, loopback" in str(error)


def test_the_answers_are_capped(calendar_url: str) -> None:
    fails("too_large", calendar_url, max_bytes=1000)


def test_the_occurrence_cap_is_passed_on(calendar_url: str) -> None:
    from liveclass_booking.calendar.busy import CalendarTooLargeError

    with pytest.raises(CalendarTooLargeError):
        busy(calendar_url, max_occurrences=3)


# Addresses and the optional package


@pytest.mark.parametrize(
    "url", ["webcal://127.0.0.1/cal/", "ftp://127.0.0.1/cal/", "https:///cal/", "http://h:x/"]
)
def test_other_addresses_are_bad_urls(url: str) -> None:
    fails("bad_url", url)


def test_without_the_caldav_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if it were not installed: importing any of it fails.
    for name in [name for name in sys.modules if name.split(".")[0] == "caldav"] + ["caldav"]:
        monkeypatch.setitem(sys.modules, name, None)
    error = fails("caldav_unavailable", "http://127.0.0.1:9/cal/")
    assert "liveclass-booking[caldav]" in str(error)


def test_naive_or_inverted_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        fetch_caldav_busy(
            "http://127.0.0.1:9/", USER, SECRET, START.replace(tzinfo=None), END, ZONE
        )
    with pytest.raises(ValueError, match="before"):
        fetch_caldav_busy("http://127.0.0.1:9/", USER, SECRET, END, START, ZONE)


# Answers Radicale does not give, from a small server on loopback


MULTISTATUS = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:multistatus xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">{}</d:multistatus>'
)
CALENDAR_PROPS = (
    "<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:resourcetype><d:collection/>"
    "<c:calendar/></d:resourcetype></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
    "</d:response>"
)
EVENT_DATA = (
    '<d:response><d:href>{href}</d:href><d:propstat><d:prop><d:getetag>"1"</d:getetag>'
    "<c:calendar-data>{data}</c:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status>"
    "</d:propstat></d:response>"
)
BROKEN_EVENT = vcalendar("""
    BEGIN:VEVENT
    UID:broken@test
    DTSTAMP:20270101T000000Z
    DTSTART:20270302T090000Z
    DURATION:soon
    END:VEVENT
""")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _xml(self, content: str) -> None:
        body = MULTISTATUS.format(content).encode()
        self._send(207, body, {"Content-Type": "application/xml; charset=utf-8"})

    def do_PROPFIND(self) -> None:
        self._answer()

    def do_REPORT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.command, self.path, self.headers.get("Host", "")))
        route = self.path.strip("/").split("/")[0]
        if route == "html":
            page = b"<!DOCTYPE html><html><body>Sign in</body></html>"
            return self._send(200, page, {"Content-Type": "text/html"})
        if route == "error":
            return self._send(500, b"oops")
        if route == "moved":
            return self._send(308, headers={"Location": "/empty/"})
        if route == "elsewhere":
            port = self.server.server_address[1]
            return self._send(301, headers={"Location": f"http://localhost:{port}/calendar/"})
        if self.command == "PROPFIND":
            return self._xml(CALENDAR_PROPS.format(href=self.path))
        if route == "slow":
            time.sleep(1.5)
            return self._xml("")
        if route == "drip":
            self.send_response(207)
            self.send_header("Content-Length", "10000")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if route == "huge":
            # No Content-Length: the body runs until the connection closes.
            self.send_response(207)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(MULTISTATUS.format(" " * 200_000).encode())
            self.close_connection = True
            return None
        if route == "broken":
            href = f"{self.path}broken.ics"
            return self._xml(EVENT_DATA.format(href=href, data=escape(BROKEN_EVENT)))
        return self._xml("")


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str, str]]

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (the timeout tests) leaves a broken pipe behind.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    require("caldav")
    server = FakeServer(("127.0.0.1", 0), Handler)
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    stop(server)


@pytest.fixture
def fake(fake_server: FakeServer) -> Callable[[str], str]:
    fake_server.requests.clear()
    port = fake_server.server_address[1]
    return lambda route: f"http://127.0.0.1:{port}/{route}/"


def test_an_empty_calendar_is_never_busy(fake: Callable[[str], str]) -> None:
    assert busy(fake("empty")) == []


def test_a_slow_server_times_out(fake: Callable[[str], str]) -> None:
    started = time.monotonic()
    fails("timeout", fake("slow"), timeout=0.4)
    assert time.monotonic() - started < 1.2


def test_a_dripping_answer_is_bounded_by_the_timeout(fake: Callable[[str], str]) -> None:
    # Each byte arrives well within the timeout; the whole answer does not.
    started = time.monotonic()
    fails("timeout", fake("drip"), timeout=0.4)
    assert time.monotonic() - started < 1.2


def test_an_answer_without_length_is_cut_at_the_cap(fake: Callable[[str], str]) -> None:
    fails("too_large", fake("huge"), max_bytes=50_000)


def test_a_redirect_on_the_same_server_is_followed(
    fake: Callable[[str], str], fake_server: FakeServer
) -> None:
    assert busy(fake("moved")) == []
    assert ("REPORT", "/empty/") in [request[:2] for request in fake_server.requests]


def test_a_redirect_to_another_server_is_not_followed(
    fake: Callable[[str], str], fake_server: FakeServer
) -> None:
    # localhost is another origin than 127.0.0.1, on the very same server.
    fails("address_not_allowed", fake("elsewhere"))
    assert [host.split(":")[0] for _, _, host in fake_server.requests] == ["127.0.0.1"]


def test_a_login_page_is_not_a_calendar(fake: Callable[[str], str]) -> None:
    fails("not_a_calendar", fake("html"))


def test_a_server_error_names_its_status(fake: Callable[[str], str]) -> None:
    assert "500" in str(fails("http_status", fake("error")))


def test_an_unreadable_event_is_a_parse_error(fake: Callable[[str], str]) -> None:
    with pytest.raises(CalendarParseError):
        busy(fake("broken"))


def test_a_server_that_accepts_and_never_answers_times_out() -> None:
    require("caldav")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        fails("timeout", f"http://127.0.0.1:{port}/cal/", timeout=0.3)


def test_the_address_check_comes_before_any_request(
    fake: Callable[[str], str], fake_server: FakeServer
) -> None:
    fails("address_not_allowed", fake("empty"), allow_private=False)
    assert fake_server.requests == []


LESSON_TIME_EVENT = vcalendar("""
BEGIN:VEVENT
UID:sync-dentist@test
DTSTAMP:20300101T000000Z
DTSTART;TZID=Europe/Berlin:20300109T100000
DTEND;TZID=Europe/Berlin:20300109T110000
SUMMARY:Dentist
END:VEVENT
""")


@pytest.mark.django_db
def test_a_synced_caldav_calendar_blocks_slots_until_its_event_is_deleted(
    principal: Any,
    radicale: tuple[Radicale, str],
    teacher: Any,
    course: Any,
    open_all_week: None,
    settings: Any,
) -> None:
    import time_machine

    from liveclass_booking import services
    from liveclass_booking.calendar.sources import create_busy_source
    from liveclass_booking.calendar.sync import sync_source

    settings.LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES = True
    calendar = principal.make_calendar(name="Teaching", cal_id="teaching")
    source = create_busy_source(
        actor=teacher,
        teacher=teacher,
        kind="caldav",
        url=str(calendar.url),
        username=USER,
        password=SECRET,
    )
    berlin = ZoneInfo(ZONE)
    ten = datetime(2030, 1, 9, 10, tzinfo=berlin).astimezone(UTC)

    def slots() -> list[datetime]:
        return services.free_slots(
            teacher,
            course,
            ten - timedelta(hours=1),
            ten + timedelta(hours=2),
            timedelta(hours=1),
        )

    event = calendar.add_event(LESSON_TIME_EVENT)
    with time_machine.travel(datetime(2030, 1, 7, 8, tzinfo=UTC), tick=False):
        assert slots() == [ten - timedelta(hours=1), ten, ten + timedelta(hours=1)]
        assert sync_source(source).outcome == "synced"
        assert slots() == [ten - timedelta(hours=1), ten + timedelta(hours=1)]
        event.delete()
        assert slots() == [ten - timedelta(hours=1), ten + timedelta(hours=1)]  # until synced
        assert sync_source(source).outcome == "synced"
        assert slots() == [ten - timedelta(hours=1), ten, ten + timedelta(hours=1)]
        source.password_encrypted = ""
        failed = sync_source(source)
    assert failed.error_code == "unauthorized"
