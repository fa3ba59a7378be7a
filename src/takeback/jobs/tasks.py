"""takeback's background tasks: thin wrappers that find what is due in the store and call the module doing the work.

Each sweep (scheduled) asks the store what is due and enqueues one keyed job per item; each item job does one
thing and is safe to run twice.  The work itself belongs to other modules; a task whose module is not installed
fails with ``TaskUnavailable`` and its sweep enqueues nothing.  "Now" is the backend's clock (``ctx.clock``).

========================  ====================================================================================
task                      what it does
========================  ====================================================================================
notices.send_queued       sweep: one ``notices.send`` per queued notice (backing off after failed attempts)
notices.send              takedown.service.send_notice (queued → sent; a refusal keeps it queued with the error)
notices.check_deadlines   sweep: takedown.service.check_due (past deadline → expired + proposal), reopen_reappeared
                          (a removed URL is back → follow-up drafted), then one ``notices.remind`` per expired notice
                          due a reminder and one ``notices.escalate`` per notice due its next step
notices.remind            takedown.followup.send_reminder: the one reminder to the same party (at most once)
notices.escalate          takedown.followup.escalation_step: proposed to the person, or carried out and the new
                          notice sent (``takedown_auto_escalate``)
notices.recheck_due       sweep: one ``notices.recheck`` per notice awaiting removal (or removed: re-uploads)
                          whose URLs were not checked lately
notices.recheck           takedown.service.recheck_notice: every URL again through the discover fetcher
cases.rescan              discover.scan: a new crawl run of the case from its previous seeds
cases.rescan_due          sweep: discover.scan.due_cases(session, now) -> case ids
findings.recheck          discover.recheck.recheck_finding(sessions, settings, finding_id)
findings.recheck_due      sweep: discover.recheck.due_findings(session, now) -> finding ids
webhooks.deliver          one attempt of a recorded webhook delivery (procrastinate backend; see webhook_jobs)
webhooks.resume           sweep: deliveries left pending without a job (procrastinate backend)
========================  ====================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from takeback.config import Settings
from takeback.jobs import webhook_jobs
from takeback.jobs.effects import claim_effect, effect_done
from takeback.jobs.errors import InvalidPayload, TaskUnavailable
from takeback.jobs.spec import JobContext, Schedule, TaskSet, TaskSpec

log = logging.getLogger("takeback.jobs.tasks")

#: Items one sweep enqueues at most (the next sweep takes the rest).
SWEEP_LIMIT = 1000
#: A queued notice whose last attempt failed waits 2**attempts minutes (at most a day) before the next one.
NOTICE_BACKOFF_MAX = timedelta(days=1)
#: Pending webhook deliveries untouched this long have lost their job (a job waiting for its retry keeps the key).
WEBHOOK_ORPHAN_AFTER = timedelta(minutes=15)


def hook(module: str, name: str) -> Callable[..., Any] | None:
    """The function ``module.name`` if that module exists and has it (other engineers' modules land over time)."""
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    return found if callable(found) else None


def need(module: str, name: str) -> Callable[..., Any]:
    found = hook(module, name)
    if found is None:
        raise TaskUnavailable(f"{module}.{name} is not available in this installation")
    return found


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``function`` (sync ones in a thread, so the worker's event loop keeps its heartbeat going)."""
    if inspect.iscoroutinefunction(function):
        return await function(*args, **kwargs)
    return await asyncio.to_thread(function, *args, **kwargs)


def _id(payload: dict[str, Any], field: str) -> int:
    value = payload.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidPayload(f"payload needs a positive integer {field!r}")
    return value


def _now(ctx: JobContext | None = None) -> datetime:
    return datetime.fromtimestamp(ctx.clock() if ctx is not None else datetime.now(UTC).timestamp(), UTC)


# --- notices (takedown) ----------------------------------------------------------------------------------------------


def _notice_ready(notice: Any, now: datetime) -> bool:
    if not notice.attempts:
        return True
    wait = min(NOTICE_BACKOFF_MAX, timedelta(minutes=2 ** min(notice.attempts, 20)))
    return bool(notice.updated_at <= now - wait)


async def send_queued(ctx: JobContext, payload: dict[str, Any]) -> None:
    if hook("takeback.takedown.service", "send_notice") is None:
        return  # takedown not installed here
    from takeback import store

    def due() -> list[int]:
        now = _now(ctx)
        with ctx.sessions() as session:
            return [n.id for n in store.queued_notices(session, limit=SWEEP_LIMIT) if _notice_ready(n, now)]

    for notice_id in await asyncio.to_thread(due):
        await ctx.enqueue("notices.send", {"notice_id": notice_id}, key=f"notice-send:{notice_id}")


async def send_notice(ctx: JobContext, payload: dict[str, Any]) -> None:
    """At least once: a worker killed after the mail server accepted the notice but before ``sent`` was committed
    sends it again on retry, with the same Message-ID (a lost takedown notice is worse than a repeated one)."""
    notice_id = _id(payload, "notice_id")
    send = need("takeback.takedown.service", "send_notice")
    from takeback import store

    def run() -> None:
        with ctx.sessions.begin() as session:
            notice = store.get_notice(session, notice_id)
            if notice is None or notice.state != "queued":
                return  # sent meanwhile (an earlier run of this job), withdrawn, or never queued
            send(session, ctx.settings, notice_id, now=_now(ctx))

    await asyncio.to_thread(run)


def _directory(settings: Settings) -> Any:
    from takeback.takedown.directory import DirectoryError, load_directory

    try:
        return load_directory(settings.takedown_platforms_file)
    except DirectoryError as exc:  # a broken local file must not stop deadlines: the shipped directory still works
        log.warning("platform directory %s unusable (%s); using the shipped one", settings.takedown_platforms_file,
                    exc)
        return load_directory()


async def check_deadlines(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Expire what is past its deadline, reopen chains whose content came back, then fan out the follow-through:
    a reminder per newly expired notice, the next step per notice whose reminder went unanswered."""
    if hook("takeback.takedown.followup", "reminders_due") is None:
        return  # takedown not installed here
    from takeback.takedown import followup, service

    settings = ctx.settings

    def run() -> tuple[list[int], list[int]]:
        now = _now(ctx)
        directory = _directory(settings)
        with ctx.sessions.begin() as session:  # each due notice moves once: the transition locks its row
            service.check_due(session, now=now, directory=directory)
            service.reopen_reappeared(session, now=now)
        with ctx.sessions() as session:
            return (followup.reminders_due(session, settings, now, limit=SWEEP_LIMIT),
                    followup.escalations_due(session, settings, now, limit=SWEEP_LIMIT))

    reminders, escalations = await asyncio.to_thread(run)
    for notice_id in reminders:
        await ctx.enqueue("notices.remind", {"notice_id": notice_id}, key=f"notice-remind:{notice_id}")
    for notice_id in escalations:
        await ctx.enqueue("notices.escalate", {"notice_id": notice_id}, key=f"notice-escalate:{notice_id}")


async def remind_notice(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The reminder goes out at most once per notice in our records: the notice row is locked, the effect key and
    the "reminder_sent" event are written in the transaction that follows the mail server's acceptance.  A crash
    between that acceptance and the commit sends the reminder again on retry, with the same Message-ID."""
    notice_id = _id(payload, "notice_id")
    from takeback import store
    from takeback.takedown import followup

    key = f"notice-reminder:{notice_id}"

    def run() -> None:
        with ctx.sessions.begin() as session:
            if store.get_notice(session, notice_id, for_update=True) is None or effect_done(session, key):
                return
            outcome = followup.send_reminder(session, ctx.settings, notice_id, now=_now(ctx))
            if outcome.sent:
                claim_effect(session, key, task=ctx.task)

    await asyncio.to_thread(run)


async def escalate_notice(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The next step once (effect key with the escalation in one transaction), then — when it was carried out —
    the new notice is sent in a transaction of its own, so a crash while sending never redoes the escalation and
    the retried send keeps the same Message-ID."""
    notice_id = _id(payload, "notice_id")
    from takeback import store
    from takeback.takedown import followup, service

    key = f"notice-escalation:{notice_id}"
    settings = ctx.settings

    def run() -> None:
        now = _now(ctx)
        with ctx.sessions.begin() as session:
            if store.get_notice(session, notice_id, for_update=True) is None:
                return
            if not effect_done(session, key):
                step = followup.escalation_step(session, settings, notice_id, now=now, directory=_directory(settings))
                if step.action != "skipped":
                    claim_effect(session, key, task=ctx.task)
        with ctx.sessions() as session:
            drafts = [n.id for n in followup.auto_escalated_drafts(session, notice_id)]
        for draft_id in drafts:
            with ctx.sessions.begin() as session:
                draft = store.get_notice(session, draft_id, for_update=True)
                if draft is not None and draft.state == "drafted":
                    service.send_notice(session, settings, draft_id, now=now)  # refused: queued, retried by sweep

    await asyncio.to_thread(run)


async def recheck_notices_due(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Notices awaiting removal not checked for ``takedown_recheck_hours``, and removed ones (a re-upload reopens
    the chain) not checked for ``takedown_recheck_removed_hours``."""
    if hook("takeback.takedown.service", "recheck_notice") is None:
        return
    from takeback import store

    settings = ctx.settings

    def due() -> list[int]:
        now = _now(ctx)
        with ctx.sessions() as session:
            waiting = store.notices_to_recheck(
                session, checked_before=now - timedelta(hours=settings.takedown_recheck_hours), limit=SWEEP_LIMIT)
            removed = store.notices_to_recheck(
                session, checked_before=now - timedelta(hours=settings.takedown_recheck_removed_hours),
                limit=SWEEP_LIMIT, states=("removed",))
        return list(dict.fromkeys(n.id for n in (*waiting, *removed)))

    for notice_id in await asyncio.to_thread(due):
        await ctx.enqueue("notices.recheck", {"notice_id": notice_id}, key=f"notice-recheck:{notice_id}")


async def recheck_notice(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Fetch the notice's URLs again.  Twice is harmless: each run records what it saw; removal is confirmed once
    (state machine) and a reopened chain gets one follow-up (the second run finds it)."""
    notice_id = _id(payload, "notice_id")
    recheck = need("takeback.takedown.service", "recheck_notice")
    from takeback import store
    from takeback.takedown import network

    async with network.open_fetcher(ctx.settings) as fetcher:
        try:
            await recheck(ctx.sessions, notice_id, fetcher, now=_now(ctx))
        except store.UnknownNotice:
            return  # deleted with its case


# --- cases and findings (discover) -----------------------------------------------------------------------------------


async def rescan_case(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A new crawl run from the case's previous seeds.  Running twice makes two runs, each recording findings by
    URL key, so findings are never duplicated."""
    case_id = _id(payload, "case_id")
    start_scan = need("takeback.discover.scan", "start_scan")
    run_scan = need("takeback.discover.scan", "run_scan")
    crawl_options = need("takeback.discover.scan", "crawl_options")
    options = crawl_options(ctx.settings)
    run_id = await call(start_scan, ctx.sessions, case_id, (), options)
    limit = getattr(importlib.import_module("takeback.discover.scan"), "RESCAN_MAX_S", None)
    # Bounded, so a hung crawl ends as a failed run with its reason instead of holding the job (and the case).
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run_scan(ctx.sessions, ctx.settings, run_id, options), timeout=limit)


async def rescan_due(ctx: JobContext, payload: dict[str, Any]) -> None:
    due_cases = hook("takeback.discover.scan", "due_cases")  # (session, now) -> case ids
    if due_cases is None:
        return

    def due() -> list[int]:
        with ctx.sessions() as session:
            return list(due_cases(session, _now(ctx)))[:SWEEP_LIMIT]

    for case_id in await asyncio.to_thread(due):
        await ctx.enqueue("cases.rescan", {"case_id": int(case_id)}, key=f"case-rescan:{case_id}")


async def recheck_finding(ctx: JobContext, payload: dict[str, Any]) -> None:
    finding_id = _id(payload, "finding_id")
    recheck = need("takeback.discover.recheck", "recheck_finding")
    await call(recheck, ctx.sessions, ctx.settings, finding_id)


async def recheck_due(ctx: JobContext, payload: dict[str, Any]) -> None:
    due_findings = hook("takeback.discover.recheck", "due_findings")  # (session, now) -> finding ids
    if due_findings is None or hook("takeback.discover.recheck", "recheck_finding") is None:
        return

    def due() -> list[int]:
        with ctx.sessions() as session:
            return list(due_findings(session, _now(ctx)))[:SWEEP_LIMIT]

    for finding_id in await asyncio.to_thread(due):
        await ctx.enqueue("findings.recheck", {"finding_id": int(finding_id)}, key=f"finding-recheck:{finding_id}")


# --- webhooks ---------------------------------------------------------------------------------------------------------


async def deliver_webhook(ctx: JobContext, payload: dict[str, Any]) -> None:
    delivery_id = _id(payload, "delivery_id")
    from takeback.store import webhooks
    from takeback.web.webhooks import MAX_BACKOFF_S, Target

    def load() -> tuple[Any, Any] | None:
        with ctx.sessions() as session:
            delivery = webhooks.get_delivery(session, delivery_id)
            hook_ = webhooks.get_webhook(session, delivery.webhook_id) if delivery is not None else None
            return (delivery, hook_) if delivery is not None and hook_ is not None else None

    loaded = await asyncio.to_thread(load)
    if loaded is None:
        return  # the webhook (and its deliveries) was deleted
    delivery, webhook = loaded
    if delivery.status != "pending" or not webhook.active:
        return  # delivered or given up by an earlier run
    settings = ctx.settings
    sender = webhook_jobs.JobWebhookDispatcher(settings, recorder=_NoRecorder())
    try:
        result = await sender.attempt(
            Target(webhook.id, webhook.url, webhook.secret), delivery.id, delivery.payload.encode("utf-8"),
            delivery.attempts,
        )  # fmt: skip
    finally:
        await sender.stop()
    attempts = delivery.attempts + 1
    final = result.ok or not result.retry or attempts >= settings.webhook_max_attempts
    status = "delivered" if result.ok else ("failed" if final else "pending")

    def record() -> None:
        with ctx.sessions.begin() as session:
            webhooks.update_delivery(
                session, delivery.id, status=status, attempts=attempts, response_status=result.response_status,
                last_error=result.error,
            )  # fmt: skip

    await asyncio.to_thread(record)
    if not final:
        delay = min(MAX_BACKOFF_S, settings.webhook_backoff_s * 2 ** (attempts - 1))
        await ctx.enqueue(
            webhook_jobs.TASK, {"delivery_id": delivery.id}, key=webhook_jobs.delivery_key(delivery.id),
            queue=webhook_jobs.QUEUE, delay_s=delay,
        )  # fmt: skip


async def resume_webhooks(ctx: JobContext, payload: dict[str, Any]) -> None:
    from takeback.store import webhooks

    def orphans() -> list[int]:
        cutoff = _now(ctx) - WEBHOOK_ORPHAN_AFTER
        out = []
        with ctx.sessions() as session:
            for d in webhooks.pending_deliveries(session, limit=SWEEP_LIMIT):
                hook_ = webhooks.get_webhook(session, d.webhook_id)
                if d.updated_at <= cutoff and hook_ is not None and hook_.active:
                    out.append(d.id)
        return out

    for delivery_id in await asyncio.to_thread(orphans):
        await ctx.enqueue(
            webhook_jobs.TASK, {"delivery_id": delivery_id}, key=webhook_jobs.delivery_key(delivery_id),
            queue=webhook_jobs.QUEUE,
        )  # fmt: skip


class _NoRecorder:
    """The worker-side sender records through the task, not through a recorder."""

    def create(self, webhook_id: int, event_id: str, payload: str) -> int:  # pragma: no cover - never called
        raise NotImplementedError

    def update(self, delivery_id: int, **_: Any) -> None:  # pragma: no cover - never called
        raise NotImplementedError

    def pending(self) -> list[Any]:
        return []


# --- the set -------------------------------------------------------------------------------------------------------


def takeback_tasks(settings: Settings, *, backend: str | None = None) -> TaskSet:
    """The tasks and schedules of a takeback process.  Webhook jobs are scheduled only where workers deliver
    (procrastinate backend); on the local backend the server's dispatcher does."""
    backend = backend or settings.jobs_backend
    tasks = TaskSet()
    tasks.add(
        TaskSpec("notices.send_queued", send_queued, queue="notices", doc="enqueue a send for each queued notice"),
        TaskSpec("notices.send", send_notice, queue="notices", doc="send one queued notice"),
        TaskSpec("notices.check_deadlines", check_deadlines, queue="notices",
                 doc="expire notices past deadline, reopen chains, enqueue reminders and escalations"),
        TaskSpec("notices.remind", remind_notice, queue="notices", retries=3, retry_backoff_s=60,
                 doc="send the one reminder of an expired notice"),
        TaskSpec("notices.escalate", escalate_notice, queue="notices", retries=3, retry_backoff_s=60,
                 doc="propose or carry out the next step of an unanswered notice"),
        TaskSpec("notices.recheck_due", recheck_notices_due, queue="scans",
                 doc="enqueue re-checks of notices whose URLs were not checked lately"),
        TaskSpec("notices.recheck", recheck_notice, queue="scans", doc="fetch one notice's URLs again"),
        TaskSpec("cases.rescan", rescan_case, queue="scans", doc="crawl a case again from its seeds"),
        TaskSpec("cases.rescan_due", rescan_due, queue="scans", doc="enqueue re-scans of cases that are due"),
        TaskSpec("findings.recheck", recheck_finding, queue="scans", doc="fetch one finding's URL again"),
        TaskSpec("findings.recheck_due", recheck_due, queue="scans", doc="enqueue re-checks that are due"),
        TaskSpec(webhook_jobs.TASK, deliver_webhook, queue=webhook_jobs.QUEUE, doc="one webhook delivery attempt"),
        TaskSpec("webhooks.resume", resume_webhooks, queue=webhook_jobs.QUEUE, doc="re-enqueue orphaned deliveries"),
    )
    tasks.schedule(
        Schedule("notices-send", "notices.send_queued", settings.jobs_notices_cron),
        Schedule("notices-deadlines", "notices.check_deadlines", settings.jobs_notices_cron),
        Schedule("cases-rescan", "cases.rescan_due", settings.jobs_rescan_cron),
        Schedule("findings-recheck", "findings.recheck_due", settings.jobs_recheck_cron),
        Schedule("notices-recheck", "notices.recheck_due", settings.jobs_recheck_cron),
    )
    if backend == "procrastinate":
        tasks.schedule(Schedule("webhooks-resume", "webhooks.resume", settings.jobs_webhooks_cron))
    return tasks
