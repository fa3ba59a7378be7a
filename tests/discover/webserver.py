"""A real HTTP server on 127.0.0.1 in a thread, for tests that need one (fetcher, crawler, re-checks).

Routes map a path (without the query) to a `Reply` or to a function of the `Request` returning one; a Reply's body
may be bytes or an iterable of chunks (sent chunked unless a Content-Length header is given), so tests can serve
slow, endless or broken bodies.  Chunk iterables should watch `request.stopping` (set when the server closes) so
that an endless body ends with the test.  The server counts requests per path and the most requests it was ever
serving at once (`max_in_flight`), which is how the per-host concurrency limit is measured.

    with WebServer({"/": Reply(body=b"<html>hi</html>", content_type="text/html")}) as site:
        fetch(site.url("/"))
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

ALLOW_LOOPBACK = ("127.0.0.1/32",)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names
    stopping: threading.Event


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str | None = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Hold the answer this long before sending anything (slow servers, overlap for concurrency tests).
    delay_s: float = 0.0
    #: Write the body chunks as they are, with no framing, then close (broken chunking and other protocol abuse).
    raw: bool = False


Route = Reply | Callable[[Request], Reply]


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status=status, body=b"", content_type=None, headers={"Location": location})


class WebServer:
    """Context manager: starts the server on enter (port chosen by the OS), stops it and its streams on exit."""

    def __init__(self, routes: Mapping[str, Route] | None = None, default: Route | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.default: Route = default or Reply(status=404, body=b"not found", content_type="text/plain")
        self.stopping = threading.Event()
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        #: TCP connections accepted (fewer than requests when the client keeps connections alive).
        self.connections = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> WebServer:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    # --- bookkeeping used by the handler ---------------------------------------------------------------------------

    def _enter(self, path: str) -> None:
        with self._lock:
            self.hits[path] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _make_handler(server: WebServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server.connections += 1

        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True  # the client hung up: normal for size caps and timeouts

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=parts.path,
                query=parts.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                stopping=server.stopping,
            )
            server._enter(parts.path)
            try:
                route = server.routes.get(parts.path, server.default)
                reply = route(request) if callable(route) else route
                if reply.delay_s and server.stopping.wait(reply.delay_s):
                    return
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                server._leave()

        def _send(self, reply: Reply) -> None:
            self.send_response(reply.status)
            names = {k.lower() for k in reply.headers}
            if reply.content_type and "content-type" not in names:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value.encode("utf-8").decode("latin-1"))  # raw UTF-8, as sloppy servers send
            if isinstance(reply.body, bytes | bytearray):
                if "content-length" not in names:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                return
            chunked = "content-length" not in names and not reply.raw
            if chunked and "transfer-encoding" not in names:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in reply.body:
                if server.stopping.is_set():
                    self.close_connection = True
                    return
                if not chunk:
                    continue
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    self.wfile.write(chunk)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.close_connection = True

    return Handler
