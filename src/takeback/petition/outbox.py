"""Verification mail, sent off the request path.

Why a thread: an SMTP exchange takes milliseconds to seconds; a signature is acknowledged once it is committed,
and the mail follows.  The queue is bounded: when a burst outruns the mail server, the overflow is dropped with a
warning rather than growing without limit, and the signer gets a new mail by signing again (a pending signature's
re-submission resends it).  A crash loses only queued mails, never signatures.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from takeback.config import Settings
from takeback.mail import Mail, MailError, send_mail

log = logging.getLogger("takeback.petition")


class Outbox:
    def __init__(
        self,
        settings: Settings,
        *,
        capacity: int = 10_000,
        sender: Callable[[Settings, Mail], str] = send_mail,
        resend_after_s: float = 300.0,
    ) -> None:
        self._settings = settings
        self._sender = sender
        self._queue: queue.Queue[tuple[int, Mail] | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._recent: dict[int, float] = {}
        self._lock = threading.Lock()
        self._resend_after_s = resend_after_s
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="petition-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=timeout)
            self._thread.join(timeout)
            self._thread = None

    def enqueue(self, key: int, mail: Mail) -> bool:
        """Queue a mail about signature ``key`` unless one went out for it recently (duplicate submissions)."""
        now = time.monotonic()
        with self._lock:
            last = self._recent.get(key)
            if last is not None and now - last < self._resend_after_s:
                return False
            if len(self._recent) > 100_000:
                self._recent = {k: t for k, t in self._recent.items() if now - t < self._resend_after_s}
            self._recent[key] = now
        try:
            self._queue.put_nowait((key, mail))
        except queue.Full:
            self.dropped += 1
            log.warning("petition outbox full: verification mail for signature %d dropped", key)
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            key, mail = item
            try:
                self._sender(self._settings, mail)
                self.sent += 1
            except (MailError, OSError) as exc:
                self.failed += 1
                with self._lock:
                    self._recent.pop(key, None)  # let a re-submission try again
                log.warning("petition: verification mail for signature %d not sent: %s", key, exc)
