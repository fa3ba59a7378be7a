"""A local SMTP server for the demo that delivers nowhere: every message is written to a folder as a ``.eml`` file.

Why: the demo sends real notices and petition verification mails over real SMTP (the code path a deployment uses)
without any of it leaving the machine, and the person can open the files to see exactly what was sent.  It uses
aiosmtpd (the ``demo`` extra); without it ``start`` returns None and the demo says mail is not sent.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


@dataclass
class MailSink:
    folder: Path
    host: str
    port: int
    controller: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    def stored(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def keep(self, data: bytes) -> Path:
        with self._lock:
            self._count += 1
            path = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{self._count:04d}.eml"
            while path.exists():
                self._count += 1
                path = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{self._count:04d}.eml"
            path.write_bytes(data)
            return path

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.sink.keep(envelope.original_content or envelope.content)
        return "250 Kept by the takeback demo (not delivered)"


def _free_port() -> int:
    # aiosmtpd needs a concrete port: it connects to itself to confirm it started.
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start(folder: Path) -> MailSink | None:
    """Start the sink on a free loopback port, or None when aiosmtpd is not installed."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    sink = MailSink(folder, HOST, _free_port())
    controller = Controller(_Handler(sink), hostname=HOST, port=sink.port)
    controller.start()
    sink.controller = controller
    return sink
