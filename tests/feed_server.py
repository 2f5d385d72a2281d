"""A calendar feed server on loopback for the busy-import tests: each path answers what the
test set for it (a calendar with validators, HTML, an error, a slow answer), and every request
is recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Answer:
    body: bytes
    status: int = 200
    content_type: str = "text/calendar"
    etag: str = ""
    delay: float = 0.0


@dataclass
class FeedServer:
    port: int = 0
    answers: dict[str, Answer] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def set(self, path: str, body: bytes, **kwargs: object) -> None:
        self.answers[path] = Answer(body, **kwargs)  # type: ignore[arg-type]

    def hits(self, path: str) -> list[dict[str, str]]:
        return [headers for at, headers in self.requests if at == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    feed: FeedServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.feed.requests.append((self.path, dict(self.headers.items())))
        answer = self.feed.answers.get(self.path, Answer(b"not found", 404, "text/plain"))
        if answer.delay:
            time.sleep(answer.delay)
        if answer.etag and self.headers.get("If-None-Match") == answer.etag:
            self.send_response(304)
            self.send_header("ETag", answer.etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.etag:
            self.send_header("ETag", answer.etag)
        self.end_headers()
        self.wfile.write(answer.body)


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    """Serve a :class:`FeedServer` on 127.0.0.1 for the duration of the block."""
    feed = FeedServer()
    handler = type("Handler", (_Handler,), {"feed": feed})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    feed.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield feed
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def vevent(uid: str, start: str, end: str, summary: str = "Private", *lines: str) -> str:
    """One VEVENT: ``start`` and ``end`` as iCalendar property values with their parameters,
    e.g. ``";TZID=Europe/Berlin:20300109T100000"`` or ``":20300109T090000Z"``."""
    return "\r\n".join(
        [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20300101T000000Z",
            f"DTSTART{start}",
            f"DTEND{end}",
            f"SUMMARY:{summary}",
            *lines,
            "END:VEVENT",
        ]
    )


def vcalendar(*events: str) -> bytes:
    """An iCalendar document holding ``events`` (see :func:`vevent`)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN", *events, "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode()
