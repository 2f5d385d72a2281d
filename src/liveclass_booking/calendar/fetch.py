"""Fetching a teacher's calendar feed: conditional, bounded and safe against server-side
request forgery. The network step of importing busy times; parsing happens elsewhere.

``fetch_calendar(url, etag=..., last_modified=...)`` answers a :class:`FetchResult` or raises
:class:`FetchError`, whose ``reason`` is a stable code:

- ``bad_url``: not an ``http``/``https`` URL (``webcal://`` is read as ``https://``, the form
  calendar apps subscribe with; ``webcals://`` too), no host, a bad port.
- ``address_not_allowed``: the host resolves to an address that is not public (loopback,
  private, shared, link-local, reserved, documentation ranges...) and ``allow_private`` is
  off. Multicast and unspecified addresses (``0.0.0.0``, ``::``) are refused always.
- ``connection``: the name does not resolve, the connection or TLS handshake fails, the
  server closes early or answers something that is not HTTP.
- ``timeout``: the whole exchange, redirects included, took longer than ``timeout`` seconds.
- ``too_large``: the body (or, compressed, the body after decompression) is over
  ``max_bytes``; a ``Content-Length`` over it is refused before reading.
- ``too_many_redirects``: more than five redirects.
- ``http_status``: an answer other than 2xx, 304 or a redirect (the code is in the message).
- ``bad_encoding``: a ``Content-Encoding`` other than ``gzip``, or broken gzip data.
- ``not_a_calendar``: a body that does not start with ``BEGIN:VCALENDAR`` (after an optional
  byte-order mark and white space), such as a login page answered with 200.

Messages name the host, never the URL's user name or password.

How the address check holds (DNS rebinding): each hop's host name is resolved once, every
address it resolves to is checked, and the connection is made to a checked address itself; the
name is only used for the ``Host`` header, TLS server name indication and certificate
verification. A name that resolves differently a moment later cannot lead the request
elsewhere. Environment proxies are not used (a proxy would do its own resolving). Name
resolution itself runs in the system resolver and is not bounded by ``timeout``.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import socket
import ssl
import time
import zlib
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

__all__ = [
    "MAX_REDIRECTS",
    "FetchError",
    "FetchResult",
    "Target",
    "fetch_calendar",
    "parse_target",
    "resolve_addresses",
]

#: Redirects followed before ``too_many_redirects``.
MAX_REDIRECTS = 5

USER_AGENT = "liveclass-booking calendar import"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_SIGNATURE = b"begin:vcalendar"
_SAFE = "/%:@!$&'()*+,;=-._~"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchResult:
    """A fetched feed: ``status`` is ``"ok"`` with the body, or ``"not_modified"`` (the
    server answered 304) with an empty body. ``etag`` and ``last_modified`` are the validators
    to send next time: the server's, or the ones given when it sent none. ``final_url`` is the
    address after redirects, without credentials."""

    status: Literal["ok", "not_modified"]
    body: bytes
    etag: str
    last_modified: str
    final_url: str


class FetchError(Exception):
    """A fetch that failed; ``reason`` is a stable code (see the module's documentation)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Target:
    """A URL taken apart for connecting (shared with the CalDAV client's address check)."""

    scheme: str
    host: str  # ASCII (IDNA), without brackets
    port: int
    path: str  # path and query, quoted
    username: str
    password: str
    public_url: str  # without credentials

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def parse_target(url: str) -> Target:
    """Take ``url`` apart (``webcal``/``webcals`` read as ``https``); raises ``bad_url``."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme in ("webcal", "webcals"):
            scheme = "https"
        if scheme not in ("http", "https"):
            raise FetchError("bad_url", "Only http, https and webcal addresses can be fetched.")
        hostname = parts.hostname
        if not hostname:
            raise FetchError("bad_url", "The address has no host.")
        port = parts.port or (443 if scheme == "https" else 80)
        host = hostname.encode("idna").decode("ascii")
    except FetchError:
        raise
    except (ValueError, UnicodeError):
        raise FetchError("bad_url", "The address cannot be read.") from None
    path_only = quote(parts.path or "/", safe=_SAFE)
    query = quote(parts.query, safe=_SAFE + "?")
    path = f"{path_only}?{query}" if query else path_only
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    public_url = urlunsplit((scheme, netloc, path_only, query, ""))
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        public_url=public_url,
    )


def _is_allowed(address: IPAddress, allow_private: bool) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_multicast or address.is_unspecified:
        return False
    if allow_private:
        return True
    return address.is_global and not (
        address.is_loopback or address.is_private or address.is_link_local or address.is_reserved
    )


def resolve_addresses(target: Target, allow_private: bool) -> list[IPAddress]:
    """Return the addresses to connect to, all checked; refuse if any is not allowed."""
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(target.host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise FetchError("connection", f"The host {target.host} cannot be resolved.") from None
        addresses = []
        for info in infos:
            # The address without an IPv6 scope (a scoped address is link-local anyway).
            candidate = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if candidate not in addresses:
                addresses.append(candidate)
    if not addresses:
        raise FetchError("connection", f"The host {target.host} cannot be resolved.")
    for address in addresses:
        if not _is_allowed(address, allow_private):
            raise FetchError(
                "address_not_allowed",
                f"The host {target.host} resolves to an address that may not be fetched "
                "(a private, loopback, link-local or reserved address).",
            )
    return addresses


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise FetchError("timeout", "The calendar server did not answer in time.")
        return left


def _connect(target: Target, addresses: list[IPAddress], deadline: _Deadline) -> socket.socket:
    """A socket connected to one of the checked addresses (tried in order)."""
    last: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((str(address), target.port), deadline.remaining())
        except TimeoutError:
            raise FetchError("timeout", f"Connecting to {target.host} timed out.") from None
        except OSError as error:
            last = error
    raise FetchError("connection", f"Cannot connect to {target.host}.") from last


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection over a socket already connected to a checked address."""

    def __init__(self, target: Target, sock: socket.socket) -> None:
        super().__init__(target.host, target.port)
        self._pinned = sock

    def connect(self) -> None:
        self.sock = self._pinned


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS over a socket connected to a checked address, verified against the host name."""

    def __init__(self, target: Target, sock: socket.socket) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(target.host, target.port, context=self._tls)
        self._pinned = sock

    def connect(self) -> None:
        self.sock = self._tls.wrap_socket(self._pinned, server_hostname=self.host)


def _headers(credentials: tuple[str, str] | None, etag: str, last_modified: str) -> dict[str, str]:
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/calendar, */*;q=0.1",
        "Accept-Encoding": "gzip",
        "Connection": "close",
    }
    if etag and _header_safe(etag):
        headers["If-None-Match"] = etag
    if last_modified and _header_safe(last_modified):
        headers["If-Modified-Since"] = last_modified
    if credentials:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    return headers


def _header_safe(value: str) -> bool:
    return value.isprintable() and value.isascii()


def _read_body(
    response: http.client.HTTPResponse,
    sock: socket.socket,
    target: Target,
    deadline: _Deadline,
    max_bytes: int,
) -> bytes:
    encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        raise FetchError("bad_encoding", f"{target.host} sent an unsupported encoding.")
    length = response.getheader("Content-Length")
    if length and length.strip().isdigit() and int(length) > max_bytes:
        raise FetchError("too_large", f"The calendar is larger than {max_bytes} bytes.")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "identity" else None
    received = 0
    body = bytearray()
    while True:
        sock.settimeout(deadline.remaining())
        chunk = response.read1(_CHUNK)
        if not chunk:
            break
        received += len(chunk)
        if received > max_bytes:
            raise FetchError("too_large", f"The calendar is larger than {max_bytes} bytes.")
        if inflater is None:
            body += chunk
            continue
        try:
            body += inflater.decompress(chunk, max_bytes - len(body) + 1)
        except zlib.error:
            raise FetchError("bad_encoding", f"{target.host} sent broken gzip data.") from None
        if len(body) > max_bytes:
            raise FetchError("too_large", f"The calendar is larger than {max_bytes} bytes.")
    if inflater is not None and not inflater.eof:
        raise FetchError("bad_encoding", f"{target.host} sent incomplete gzip data.")
    return bytes(body)


def _looks_like_calendar(body: bytes) -> bool:
    start = body[:256]
    if start.startswith(_BOM):
        start = start[len(_BOM) :]
    return start.lstrip().lower().startswith(_SIGNATURE)


def fetch_calendar(
    url: str,
    *,
    etag: str = "",
    last_modified: str = "",
    timeout: float = 10.0,
    max_bytes: int = 5_000_000,
    allow_private: bool = False,
) -> FetchResult:
    """Fetch the calendar at ``url`` (a conditional GET when validators are given).

    ``timeout`` bounds the whole exchange, redirects included; ``max_bytes`` the body, after
    decompression. Credentials in the URL (``https://user:secret@host/...``) are sent as Basic
    authentication, and only to that URL's scheme, host and port (not after a redirect
    elsewhere). ``allow_private`` lets the URL reach non-public addresses (an intranet calendar
    server, or loopback in tests). Raises :class:`FetchError`.
    """
    deadline = _Deadline(timeout)
    target = parse_target(url)
    credentials = (target.username, target.password) if target.username else None
    credentials_origin = target.origin
    redirects = 0
    while True:
        addresses = resolve_addresses(target, allow_private)
        sent = credentials if target.origin == credentials_origin else None
        headers = _headers(sent, etag, last_modified)
        sock = _connect(target, addresses, deadline)
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = _PinnedHTTPSConnection(target, sock)
        else:
            conn = _PinnedHTTPConnection(target, sock)
        try:
            sock.settimeout(deadline.remaining())
            conn.request("GET", target.path, headers=headers)
            # The socket in use (TLS-wrapped for https); the connection forgets it once the
            # response is known to end with the connection.
            wire: socket.socket = conn.sock or sock
            wire.settimeout(deadline.remaining())
            response = conn.getresponse()
            status = response.status
            if status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise FetchError(
                        "http_status", f"{target.host} answered {status} without a Location."
                    )
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise FetchError("too_many_redirects", f"More than {MAX_REDIRECTS} redirects.")
                following = parse_target(urljoin(target.public_url, location.strip()))
                if following.username:
                    credentials = (following.username, following.password)
                    credentials_origin = following.origin
                target = following
                continue
            if status == 304:
                return FetchResult(
                    status="not_modified",
                    body=b"",
                    etag=response.getheader("ETag") or etag,
                    last_modified=response.getheader("Last-Modified") or last_modified,
                    final_url=target.public_url,
                )
            if not 200 <= status < 300:
                raise FetchError("http_status", f"{target.host} answered HTTP {status}.")
            body = _read_body(response, wire, target, deadline, max_bytes)
            if not _looks_like_calendar(body):
                raise FetchError("not_a_calendar", f"{target.host} did not answer with a calendar.")
            return FetchResult(
                status="ok",
                body=body,
                etag=response.getheader("ETag") or etag,
                last_modified=response.getheader("Last-Modified") or last_modified,
                final_url=target.public_url,
            )
        except TimeoutError:
            raise FetchError("timeout", f"{target.host} did not answer in time.") from None
        except ssl.SSLError as error:
            reason = getattr(error, "reason", None) or "TLS error"
            raise FetchError(
                "connection", f"The secure connection to {target.host} failed ({reason})."
            ) from None
        except (OSError, http.client.HTTPException):
            raise FetchError("connection", f"The connection to {target.host} failed.") from None
        finally:
            conn.close()
            sock.close()
