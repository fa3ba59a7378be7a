"""Webhook delivery: match events POSTed to clients' URLs, signed, retried with backoff, recorded.

A match request only *submits* an event (a non-blocking put on an in-memory queue); a background asyncio worker
records one delivery per webhook, sends it, and retries network errors, 5xx and 429 answers with exponential backoff
(`webhook_backoff_s * 2**(attempt-1)`, up to `webhook_max_attempts` attempts).  Each attempt re-checks the URL with
fresh DNS (`discover.urlguard`) and connects to the address it checked — never to a second lookup an attacker could
answer differently — keeping the host name for the Host header and TLS (SNI and certificate check).  Redirects are
not followed.  Deliveries still pending at shutdown are resumed at the next start.

Receivers verify ``X-Takeback-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw request body under the webhook
secret (compare in constant time), and may use ``X-Takeback-Delivery`` to drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from takeback.config import Settings
from takeback.discover.urlguard import Resolver, UnsafeURL, check_url, system_resolver

log = logging.getLogger("takeback.web.webhooks")

SIGNATURE_HEADER = "X-Takeback-Signature"
EVENT_HEADER = "X-Takeback-Event"
DELIVERY_HEADER = "X-Takeback-Delivery"
TIMESTAMP_HEADER = "X-Takeback-Timestamp"
USER_AGENT = "takeback-webhooks/1"
MAX_BACKOFF_S = 600.0
QUEUE_SIZE = 10_000
CONCURRENCY = 32


def sign(secret: str, body: bytes) -> str:
    """The signature header value for a body: ``sha256=<hex hmac>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (used by the tests): constant-time comparison of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)


def new_secret() -> str:
    import secrets

    return "whsec_" + secrets.token_urlsafe(32)


def match_event(
    client: str, query: dict[str, Any], matches: list[dict[str, Any]], *, reason: dict[str, Any] | None = None
) -> tuple[str, bytes]:
    """(event_id, JSON body) of a match event; the body is what is signed, stored and sent, byte for byte.
    ``reason`` says why a match was made other than by the client's own query (an accepted TAKE IT DOWN request
    sweeping the client's uploads)."""
    event_id = str(uuid.uuid4())
    payload: dict[str, Any] = {
        "event_id": event_id,
        "type": "match",
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "client": client,
        "query": query,
        "matches": matches,
    }
    if reason is not None:
        payload["reason"] = reason
    return event_id, json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Target:
    webhook_id: int
    url: str
    secret: str


@dataclass(slots=True)
class Job:
    target: Target
    event_id: str
    body: bytes
    delivery_id: int | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """Final state of one delivery (what listeners are told)."""

    delivery_id: int | None
    webhook_id: int
    event_id: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None


class DeliveryRecorder(Protocol):
    """Where deliveries are recorded (the store); called from worker threads."""

    def create(self, webhook_id: int, event_id: str, payload: str) -> int: ...

    def update(
        self,
        delivery_id: int,
        *,
        status: str,
        attempts: int,
        response_status: int | None,
        last_error: str | None,
    ) -> None: ...

    def pending(self) -> list[tuple[int, Target, str, str, int]]:
        """(delivery_id, target, event_id, payload, attempts) of deliveries left pending by a previous run."""
        ...


@dataclass(slots=True)
class _Attempt:
    ok: bool
    retry: bool
    response_status: int | None = None
    error: str | None = None


@dataclass
class WebhookDispatcher:
    settings: Settings
    recorder: DeliveryRecorder
    resolver: Resolver = system_resolver
    transport: httpx.AsyncBaseTransport | None = None
    listeners: list[Callable[[Outcome], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.dropped = 0

    # --- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(QUEUE_SIZE)
        self._client = httpx.AsyncClient(
            transport=self.transport,
            timeout=self.settings.webhook_timeout_s,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._worker = asyncio.create_task(self._run(), name="takeback-webhooks")
        try:
            pending = await asyncio.to_thread(self.recorder.pending)
        except Exception:
            log.exception("could not load pending webhook deliveries")
            pending = []
        for delivery_id, target, event_id, payload, attempts in pending:
            self._enqueue(Job(target, event_id, payload.encode("utf-8"), delivery_id, attempts))

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in [self._worker, *tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._client is not None:
            await self._client.aclose()
        self._worker = None
        self._client = None

    # --- submitting (from request handlers, any thread) --------------------------------------------------------
    def submit(self, targets: Sequence[Target], event_id: str, body: bytes) -> None:
        """Queue one event for each target; never blocks, never raises (a full queue drops and logs)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for target in targets:
            job = Job(target, event_id, body)
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._enqueue(job)
            else:
                loop.call_soon_threadsafe(self._enqueue, job)

    def _enqueue(self, job: Job) -> None:
        assert self._queue is not None
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("webhook queue full: dropped event %s for webhook %s", job.event_id, job.target.webhook_id)

    # --- worker ------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._queue is not None
        slots = asyncio.Semaphore(CONCURRENCY)
        while True:
            job = await self._queue.get()
            await slots.acquire()
            task = asyncio.create_task(self._deliver(job))
            self._tasks.add(task)

            def done(t: asyncio.Task[None]) -> None:
                self._tasks.discard(t)
                slots.release()

            task.add_done_callback(done)

    async def _deliver(self, job: Job) -> None:
        try:
            await self._deliver_inner(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", job.delivery_id)

    async def _deliver_inner(self, job: Job) -> None:
        settings = self.settings
        if job.delivery_id is None:
            job.delivery_id = await asyncio.to_thread(
                self.recorder.create, job.target.webhook_id, job.event_id, job.body.decode("utf-8")
            )
        while True:
            job.attempts += 1
            attempt = await self._attempt(job)
            final = attempt.ok or not attempt.retry or job.attempts >= settings.webhook_max_attempts
            status = "delivered" if attempt.ok else ("failed" if final else "pending")
            await asyncio.to_thread(
                self.recorder.update,
                job.delivery_id,
                status=status,
                attempts=job.attempts,
                response_status=attempt.response_status,
                last_error=attempt.error,
            )
            if final:
                outcome = Outcome(
                    job.delivery_id,
                    job.target.webhook_id,
                    job.event_id,
                    status,
                    job.attempts,
                    attempt.response_status,
                    attempt.error,
                )
                for listener in list(self.listeners):
                    try:
                        listener(outcome)
                    except Exception:
                        log.exception("webhook listener failed")
                return
            delay = min(MAX_BACKOFF_S, settings.webhook_backoff_s * 2 ** (job.attempts - 1))
            if delay > 0:
                await asyncio.sleep(delay)

    async def _attempt(self, job: Job) -> _Attempt:
        assert self._client is not None
        target = job.target
        try:
            checked = await asyncio.to_thread(
                check_url, target.url, allow_private=self.settings.allow_private_webhooks, resolver=self.resolver
            )
        except UnsafeURL as exc:
            retry = "does not resolve" in exc.message
            return _Attempt(False, retry, error=f"unsafe_url: {exc.message}")
        url = httpx.URL(target.url)
        address = checked.addresses[0]
        host_header = f"[{checked.host}]" if ":" in checked.host else checked.host
        if url.port is not None:
            host_header += f":{url.port}"
        headers = {
            "Content-Type": "application/json",
            "Host": host_header,
            SIGNATURE_HEADER: sign(target.secret, job.body),
            EVENT_HEADER: "match",
            DELIVERY_HEADER: str(job.delivery_id),
            TIMESTAMP_HEADER: str(int(time.time())),
        }
        extensions = {"sni_hostname": checked.host} if checked.scheme == "https" else {}
        try:
            response = await self._client.post(
                url.copy_with(host=address), content=job.body, headers=headers, extensions=extensions
            )
        except httpx.HTTPError as exc:
            return _Attempt(False, True, error=f"{type(exc).__name__}: {exc}"[:500])
        status = response.status_code
        if 200 <= status < 300:
            return _Attempt(True, False, status)
        retry = status >= 500 or status == 429
        return _Attempt(False, retry, status, f"HTTP {status}")
