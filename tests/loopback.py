"""HTTP servers on 127.0.0.1 for the tests that fetch calendars: each is started by the test
that needs it, on a free port, and stopped after."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    """A threaded server that records the requests it got (path and headers) and knows its
    own address (``base``, without a trailing slash). ``answers`` is for
    :class:`AnswerHandler`."""

    daemon_threads = True
    requests: list[tuple[str, dict[str, str]]]
    base: str
    answers: dict[str, tuple[int, str, bytes]]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Tests cut connections on purpose (timeouts, size caps): a write after the client
        # left is expected, not worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@contextmanager
def serving(
    handler: type[BaseHTTPRequestHandler],
    *,
    wrap_socket: Callable[[Any], Any] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[LoopbackServer]:
    """Run ``handler`` on 127.0.0.1 (``host`` names it in ``base``, e.g. "localhost" for TLS
    by name) until the block ends; ``wrap_socket`` wraps the listening socket (TLS)."""
    httpd = LoopbackServer(("127.0.0.1", 0), handler)
    httpd.requests = []
    httpd.answers = {}
    scheme = "https" if wrap_socket else "http"
    httpd.base = f"{scheme}://{host}:{httpd.server_address[1]}"
    if wrap_socket is not None:
        httpd.socket = wrap_socket(httpd.socket)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and answers with :meth:`send`."""

    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)


class AnswerHandler(QuietHandler):
    """Answers what the test sets as it goes: ``server.answers[path]`` is ``(status, content
    type, body)``; any other path is a 404."""

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        answer = self.server.answers.get(self.path)
        if answer is None:
            return self.send(404)
        status, content_type, body = answer
        return self.send(status, body, {"Content-Type": content_type})
