"""Webhook delivery through the job layer (procrastinate backend), reusing the in-process dispatcher's sending.

On the single-machine backend the server's own ``WebhookDispatcher`` delivers (web/webhooks.py).  With workers on
other machines the server only records the delivery (the durable ``webhook_deliveries`` row, as before) and
enqueues a ``webhooks.deliver`` job keyed by the delivery id; a worker makes one attempt per job — the same
signed, SSRF-checked, address-pinned POST as the dispatcher — and enqueues the next attempt after the same
backoff.  A delivery whose job was never enqueued (server died in between) is found by the ``webhooks.resume``
schedule.  A worker killed between the POST and recording it makes the retried job POST again with the same
``X-Takeback-Delivery`` id, which receivers use to drop the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import httpx

from takeback.jobs.spec import JobBackend
from takeback.web.webhooks import USER_AGENT, Job, Target, WebhookDispatcher

log = logging.getLogger("takeback.jobs.webhooks")

TASK = "webhooks.deliver"
QUEUE = "webhooks"


def delivery_key(delivery_id: int) -> str:
    return f"webhook-delivery:{delivery_id}"


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    retry: bool
    response_status: int | None
    error: str | None


@dataclass
class JobWebhookDispatcher(WebhookDispatcher):
    """In the server: ``submit`` records deliveries and enqueues jobs instead of sending.  In a worker:
    ``attempt`` makes one delivery attempt."""

    jobs: JobBackend | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._client = httpx.AsyncClient(
            transport=self.transport,
            timeout=self.settings.webhook_timeout_s,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def stop(self) -> None:
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.webhook_timeout_s)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
        self._client = None

    def _enqueue(self, job: Job) -> None:  # called on the loop by WebhookDispatcher.submit
        task = asyncio.create_task(self._record_and_enqueue(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_and_enqueue(self, job: Job) -> None:
        try:
            delivery_id = await asyncio.to_thread(
                self.recorder.create, job.target.webhook_id, job.event_id, job.body.decode("utf-8")
            )
        except Exception:
            log.exception("could not record a webhook delivery for webhook %s", job.target.webhook_id)
            return
        if self.jobs is None:
            return
        try:
            await self.jobs.enqueue(TASK, {"delivery_id": delivery_id}, key=delivery_key(delivery_id), queue=QUEUE)
        except Exception:
            # The pending row stays; the webhooks.resume schedule enqueues it later.
            log.exception("could not enqueue webhook delivery %s", delivery_id)

    async def attempt(self, target: Target, delivery_id: int, body: bytes, attempts: int) -> AttemptResult:
        if self._client is None:
            await self.start()
        result = await self._attempt(Job(target, "", body, delivery_id, attempts))
        return AttemptResult(result.ok, result.retry, result.response_status, result.error)
