"""Fetching calendar feeds (``liveclass_booking.calendar.fetch``) from a real HTTP server on
loopback: validators and 304, timeouts, size caps, gzip, redirects, non-calendar bodies, HTTP
errors, Basic authentication from the URL, and the address check that refuses non-public
addresses before connecting anywhere."""

from __future__ import annotations

import base64
import gzip
import time
from collections.abc import Iterator

import pytest

from liveclass_booking.calendar.fetch import FetchError, FetchResult, fetch_calendar
from tests.loopback import LoopbackServer as Server
from tests.loopback import QuietHandler, serving

CALENDAR = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    b"UID:1@test\r\nDTSTART:20260105T090000Z\r\nDTEND:20260105T100000Z\r\n"
    b"END:VEVENT\r\nEND:VCALENDAR\r\n"
)
ETAG = '"v1"'
LAST_MODIFIED = "Mon, 05 Jan 2026 09:00:00 GMT"
USER, SECRET = "tutor@example.com", "s3cret:pw"


class Handler(QuietHandler):
    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        path = self.path
        if path == "/cal.ics":
            if self.headers.get("If-None-Match") == ETAG:
                return self.send(304, headers={"ETag": ETAG})
            if self.headers.get("If-Modified-Since") == LAST_MODIFIED:
                return self.send(304)
            calendar_headers = {
                "Content-Type": "text/calendar",
                "ETag": ETAG,
                "Last-Modified": LAST_MODIFIED,
            }
            return self.send(200, CALENDAR, calendar_headers)
        if path == "/bom.ics":
            return self.send(200, b"\xef\xbb\xbf \r\n" + CALENDAR.lower())
        if path == "/slow.ics":
            time.sleep(1.5)
            return self.send(200, CALENDAR)
        if path == "/drip.ics":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b"X")
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if path == "/big.ics":
            return self.send(200, CALENDAR + b"X" * 5000)
        if path == "/lying-length.ics":
            # Claims a huge body, sends a small one: refused from the header alone.
            self.send_response(200)
            self.send_header("Content-Length", str(10**9))
            self.end_headers()
            self.wfile.write(CALENDAR)
            return None
        if path == "/unbounded.ics":
            # No Content-Length: the body runs until the connection closes.
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(CALENDAR + b"X" * 50_000)
            self.close_connection = True
            return None
        if path == "/gzip.ics":
            return self.send(200, gzip.compress(CALENDAR), {"Content-Encoding": "gzip"})
        if path == "/gzip-bomb.ics":
            bomb = gzip.compress(CALENDAR + b"X" * 1_000_000)
            return self.send(200, bomb, {"Content-Encoding": "gzip"})
        if path == "/brotli.ics":
            return self.send(200, CALENDAR, {"Content-Encoding": "br"})
        if path.startswith("/hop/"):
            left = int(path.removeprefix("/hop/"))
            target = "/cal.ics" if left == 0 else f"/hop/{left - 1}"
            return self.send(302, headers={"Location": target})
        if path == "/to-absolute":
            return self.send(301, headers={"Location": f"{self.server.base}/cal.ics"})
        if path == "/to-unspecified":
            port = self.server.server_address[1]
            return self.send(302, headers={"Location": f"http://0.0.0.0:{port}/cal.ics"})
        if path == "/to-file":
            return self.send(302, headers={"Location": "file:///etc/passwd"})
        if path == "/to-localhost":
            port = self.server.server_address[1]
            return self.send(307, headers={"Location": f"http://localhost:{port}/private.ics"})
        if path == "/html":
            page = b"<!DOCTYPE html><html><body>Sign in</body></html>"
            return self.send(200, page, {"Content-Type": "text/html"})
        if path == "/json":
            return self.send(200, b'{"error": "BEGIN:VCALENDAR"}')
        if path == "/error":
            return self.send(500, b"oops")
        if path == "/missing":
            return self.send(404, b"")
        if path in ("/private.ics", "/private-redirect"):
            expected = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                return self.send(401, headers={"WWW-Authenticate": 'Basic realm="cal"'})
            if path == "/private-redirect":
                return self.send(302, headers={"Location": "/private.ics"})
            return self.send(200, CALENDAR)
        return self.send(404)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serving(Handler) as httpd:
        yield httpd


@pytest.fixture
def base(server: Server) -> str:
    server.requests.clear()
    return server.base


def fetch(url: str, **kwargs: object) -> FetchResult:
    kwargs.setdefault("allow_private", True)
    kwargs.setdefault("timeout", 0.5)
    return fetch_calendar(url, **kwargs)  # type: ignore[arg-type]


def fails(reason: str, url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, **kwargs)
    assert caught.value.reason == reason, str(caught.value)
    return caught.value


# Fetching and validators


def test_a_calendar_comes_with_its_validators(base: str, server: Server) -> None:
    result = fetch(f"{base}/cal.ics")
    assert result == FetchResult("ok", CALENDAR, ETAG, LAST_MODIFIED, f"{base}/cal.ics")
    headers = server.requests[0][1]
    assert "If-None-Match" not in headers
    assert "If-Modified-Since" not in headers
    assert "Authorization" not in headers


def test_a_matching_etag_is_not_modified_and_keeps_the_validators(
    base: str, server: Server
) -> None:
    result = fetch(f"{base}/cal.ics", etag=ETAG, last_modified=LAST_MODIFIED)
    assert result == FetchResult("not_modified", b"", ETAG, LAST_MODIFIED, f"{base}/cal.ics")
    assert server.requests[0][1]["If-None-Match"] == ETAG
    assert server.requests[0][1]["If-Modified-Since"] == LAST_MODIFIED


def test_a_matching_last_modified_is_not_modified(base: str) -> None:
    result = fetch(f"{base}/cal.ics", etag='"old"', last_modified=LAST_MODIFIED)
    # The server sent no new validators: the given ones are kept.
    assert (result.status, result.body, result.etag) == ("not_modified", b"", '"old"')
    assert result.last_modified == LAST_MODIFIED


def test_a_stale_etag_gets_the_new_calendar_and_validators(base: str) -> None:
    result = fetch(f"{base}/cal.ics", etag='"v0"')
    assert (result.status, result.body, result.etag) == ("ok", CALENDAR, ETAG)


def test_a_byte_order_mark_white_space_and_lower_case_are_a_calendar(base: str) -> None:
    assert fetch(f"{base}/bom.ics").body.startswith(b"\xef\xbb\xbf")


def test_webcal_is_read_as_https(base: str) -> None:
    # The loopback server speaks plain HTTP, so the TLS handshake it was rewritten to fails.
    port = base.rsplit(":", 1)[1]
    error = fails("connection", f"webcal://127.0.0.1:{port}/cal.ics")
    assert "secure connection" in str(error)


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/cal.ics", "file:///etc/passwd", "https:///cal.ics", "http://h:x/"]
)
def test_other_addresses_are_bad_urls(url: str) -> None:
    fails("bad_url", url)


# Bounds


def test_a_slow_server_times_out(base: str) -> None:
    started = time.monotonic()
    fails("timeout", f"{base}/slow.ics")
    assert time.monotonic() - started < 1.0


def test_a_dripping_body_is_bounded_by_the_total_timeout(base: str) -> None:
    # Each byte arrives well within the timeout; the whole body does not.
    started = time.monotonic()
    fails("timeout", f"{base}/drip.ics")
    assert time.monotonic() - started < 1.0


def test_an_oversized_body_is_refused(base: str) -> None:
    fails("too_large", f"{base}/big.ics", max_bytes=1000)
    assert fetch(f"{base}/big.ics", max_bytes=len(CALENDAR) + 5000).status == "ok"


def test_a_content_length_over_the_cap_is_refused_before_reading(base: str) -> None:
    fails("too_large", f"{base}/lying-length.ics", max_bytes=1000)


def test_a_body_without_length_is_cut_at_the_cap(base: str) -> None:
    fails("too_large", f"{base}/unbounded.ics", max_bytes=10_000)


def test_gzip_is_decompressed(base: str, server: Server) -> None:
    assert fetch(f"{base}/gzip.ics").body == CALENDAR
    assert server.requests[0][1]["Accept-Encoding"] == "gzip"


def test_the_decompressed_size_is_capped(base: str) -> None:
    # About 1 kB compressed, 1 MB decompressed.
    fails("too_large", f"{base}/gzip-bomb.ics", max_bytes=100_000)


def test_an_unsupported_encoding_is_refused(base: str) -> None:
    fails("bad_encoding", f"{base}/brotli.ics")


# Redirects


def test_redirects_are_followed(base: str) -> None:
    assert fetch(f"{base}/hop/4").final_url == f"{base}/cal.ics"
    assert fetch(f"{base}/to-absolute").body == CALENDAR


def test_more_than_five_redirects_are_refused(base: str, server: Server) -> None:
    fails("too_many_redirects", f"{base}/hop/5")
    assert len(server.requests) == 6


def test_each_hop_is_checked(base: str, server: Server) -> None:
    # Even with private addresses allowed, the unspecified address is not.
    fails("address_not_allowed", f"{base}/to-unspecified")
    fails("bad_url", f"{base}/to-file")
    assert [path for path, _ in server.requests] == ["/to-unspecified", "/to-file"]


def test_a_redirect_to_loopback_is_refused_without_the_setting(base: str) -> None:
    # The server itself is on loopback, so with the check on, nothing is sent at all; with
    # it off, the redirect to "localhost" is followed.
    fails("address_not_allowed", f"{base}/to-localhost", allow_private=False)
    fails("http_status", f"{base}/to-localhost")


# Wrong answers


@pytest.mark.parametrize("path", ["/html", "/json"])
def test_a_page_instead_of_a_calendar_is_refused(base: str, path: str) -> None:
    fails("not_a_calendar", f"{base}{path}")


@pytest.mark.parametrize(("path", "code"), [("/error", "500"), ("/missing", "404")])
def test_http_errors_name_their_status(base: str, path: str, code: str) -> None:
    assert code in str(fails("http_status", f"{base}{path}"))


def test_a_closed_port_is_a_connection_error(server: Server) -> None:
    # A port that was free a moment ago: the operating system refuses the connection.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fails("connection", f"http://127.0.0.1:{port}/cal.ics")


# Credentials


def test_credentials_in_the_url_are_sent_as_basic_auth(base: str) -> None:
    user, secret = "tutor%40example.com", "s3cret%3Apw"
    port = base.rsplit(":", 1)[1]
    url = f"http://{user}:{secret}@127.0.0.1:{port}/private.ics"
    result = fetch(url)
    assert result.body == CALENDAR
    assert result.final_url == f"{base}/private.ics"
    # Followed to the same origin, they are sent again.
    assert fetch(url.replace("private.ics", "private-redirect")).body == CALENDAR


def test_credentials_never_appear_in_errors(base: str) -> None:
    port = base.rsplit(":", 1)[1]
    refused = fails("http_status", f"http://tutor:wrong-secret@127.0.0.1:{port}/private.ics")
    assert "401" in str(refused)
    for error in (
        refused,
        fails("timeout", f"http://tutor:wrong-secret@127.0.0.1:{port}/slow.ics"),
        fails("address_not_allowed", "http://tutor:wrong-secret@127.0.0.1/", allow_private=False),
    ):
        assert "wrong-secret" not in str(error)
        assert "tutor" not in str(error)


def test_credentials_are_not_sent_to_another_origin(base: str, server: Server) -> None:
    # localhost is another origin than 127.0.0.1: the redirected request goes without them.
    port = base.rsplit(":", 1)[1]
    fails("http_status", f"http://{USER.replace('@', '%40')}:x@127.0.0.1:{port}/to-localhost")
    assert "Authorization" in server.requests[0][1]
    assert "Authorization" not in server.requests[1][1]


# The address check


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "192.168.1.1", "[fd00::1]",
     "100.64.0.1", "[::ffff:127.0.0.1]", "localhost", "0.0.0.0", "224.0.0.1"],
)  # fmt: skip
def test_non_public_addresses_are_refused_before_connecting(
    host: str, server: Server, base: str
) -> None:
    # A port that serves the calendar on 127.0.0.1, so that a missing check would succeed
    # there; the other addresses are never contacted (the check comes first), and the timeout
    # would turn an attempt into "timeout" or "connection" instead.
    port = server.server_address[1]
    error = fails("address_not_allowed", f"http://{host}:{port}/cal.ics", allow_private=False)
    assert "private, loopback" in str(error)
    assert server.requests == []


def test_unspecified_and_multicast_are_refused_even_when_private_is_allowed() -> None:
    fails("address_not_allowed", "http://0.0.0.0:9/cal.ics")
    fails("address_not_allowed", "http://[::]:9/cal.ics")
    fails("address_not_allowed", "http://224.0.0.1:9/cal.ics")


# TLS over the checked address


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """The same routes over TLS, with a certificate for the name "localhost" only."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def wrap(sock: object) -> object:
        return context.wrap_socket(sock, server_side=True)  # type: ignore[arg-type]

    with serving(Handler, wrap_socket=wrap, host="localhost") as httpd:
        yield httpd, str(cert)


def test_https_is_verified_against_the_host_name(
    tls_server: tuple[Server, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    port = server.server_address[1]
    # Connected to the resolved loopback address, the certificate is checked for the name.
    result = fetch(f"webcal://localhost:{port}/cal.ics")
    assert (result.body, result.final_url) == (CALENDAR, f"https://localhost:{port}/cal.ics")
    # The same server by address: the certificate does not name it.
    assert "secure connection" in str(fails("connection", f"https://127.0.0.1:{port}/cal.ics"))


def test_an_untrusted_certificate_is_refused(tls_server: tuple[Server, str]) -> None:
    port = tls_server[0].server_address[1]
    fails("connection", f"https://localhost:{port}/cal.ics")


def test_the_setting_defaults_to_off(settings: object) -> None:
    from liveclass_booking.conf import booking_settings

    assert booking_settings.BUSY_ALLOW_PRIVATE_ADDRESSES is False
    settings.LIVECLASS_BOOKING_BUSY_ALLOW_PRIVATE_ADDRESSES = True  # type: ignore[attr-defined]
    assert booking_settings.BUSY_ALLOW_PRIVATE_ADDRESSES is True
