"""The demo web site: a loopback HTTP server, in a thread of the `takeback serve --demo` process.

It serves ``pages.layout()``.  Paths the pretend host has taken down (after a notice) answer ``410 Gone``, and that
list is kept in a file in the demo data dir, so the site still agrees with the database after a restart: a later
re-check confirms the removal instead of finding the copy "back again".

The server binds 127.0.0.1 only.  The match service may fetch from it because `serve --demo` allows exactly this
host:port (``Settings.allowing_origins``); the SSRF guard stays on for every other address.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from takeback.demo.pages import Resource, layout

HOST = "127.0.0.1"
GONE = Resource("text/html; charset=utf-8", b"<!doctype html><title>Gone</title><p>Removed by the host.</p>")
MISSING = Resource("text/plain", b"not found")


class DemoSite:
    """Start with ``start()`` (or as a context manager); ``origin`` is its ``127.0.0.1:port``."""

    def __init__(self, port: int = 0, removed_file: Path | None = None) -> None:
        self._requested_port = port
        self._removed_file = removed_file
        self._lock = threading.Lock()
        self._removed: set[str] = set()
        if removed_file is not None and removed_file.exists():
            self._removed = {line.strip() for line in removed_file.read_text().splitlines() if line.strip()}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.resources = layout()

    # --- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> DemoSite:
        """Bind and serve; ``OSError`` when the port is taken."""
        self._server = ThreadingHTTPServer((HOST, self._requested_port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="demo-site", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "the demo site is not started"
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"{HOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.origin}{path}"

    # --- the pretend host's removals -------------------------------------------------------------------------------

    def take_down(self, path: str) -> None:
        """The host removes ``path``: from now on (and after restarts) it answers 410."""
        with self._lock:
            if path in self._removed:
                return
            self._removed.add(path)
            if self._removed_file is not None:
                self._removed_file.parent.mkdir(parents=True, exist_ok=True)
                self._removed_file.write_text("".join(f"{p}\n" for p in sorted(self._removed)))

    def is_removed(self, path: str) -> bool:
        with self._lock:
            return path in self._removed

    def resolve(self, path: str) -> tuple[int, Resource]:
        if self.is_removed(path):
            return 410, GONE
        found = self.resources.get(path)
        return (200, found) if found is not None else (404, MISSING)


def _handler(site: DemoSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "PicDump-demo"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, with_body: bool) -> None:
            status, resource = site.resolve(urlsplit(self.path).path)
            self.send_response(status)
            self.send_header("Content-Type", resource.content_type)
            self.send_header("Content-Length", str(len(resource.body)))
            self.end_headers()
            if with_body:
                self.wfile.write(resource.body)

        def do_GET(self) -> None:
            try:
                self._answer(True)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def do_HEAD(self) -> None:
            self._answer(False)

    return Handler
