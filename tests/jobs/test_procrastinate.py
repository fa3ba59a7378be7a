"""The multi-machine backend on a real PostgreSQL: enqueue/run, keys, effects once, periodic ticks on given times,
retry of failed jobs, webhook delivery through a worker."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from takeback.jobs import NotRetryable, UnknownJob, UnknownTask, load_tasks, prepare
from takeback.jobs.errors import UnsupportedBackend
from takeback.jobs.procrastinate_backend import ProcrastinateBackend, conninfo, ensure_schema
from takeback.store import clients, webhooks
from takeback.store.db import make_engine, session_factory
from takeback.web.webhooks import Target, match_event, verify
from tests.jobs.conftest import create_probe_table, job_settings

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 5, 10, 0, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    settings = job_settings(pg_url, tmp_path, jobs_backend="procrastinate", allow_private_webhooks=True)
    engine = make_engine(pg_url)
    prepare(settings, engine)
    create_probe_table(engine)
    yield settings, engine, session_factory(engine)
    engine.dispose()


async def drain(backend: ProcrastinateBackend) -> None:
    """Run every job that is due now, then return (procrastinate's wait=False worker)."""
    await backend.app.run_worker_async(wait=False, install_signal_handlers=False, listen_notify=False)


def probe_rows(engine: Any) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text("SELECT name, pid FROM probe_effects ORDER BY name"))]


def test_schema_is_created_once_and_sqlite_is_refused(pg_url: str) -> None:
    assert ensure_schema(pg_url) is True
    assert ensure_schema(pg_url) is False
    with pytest.raises(UnsupportedBackend):
        conninfo("sqlite:///x.sqlite3")
    assert conninfo(pg_url).startswith("postgresql://")


async def test_enqueue_run_keys_and_effect_once(env: tuple[Any, Any, Any], tmp_path: Path) -> None:
    settings, engine, sessions = env
    backend = await ProcrastinateBackend(settings, sessions, load_tasks(settings)).open()
    try:
        payload = {"dir": str(tmp_path), "name": "a"}
        first = await backend.enqueue("probe.effect", payload, key="probe:a")
        assert first is not None
        assert await backend.enqueue("probe.effect", payload, key="probe:a") is None
        with pytest.raises(UnknownTask):
            await backend.enqueue("no.such.task")
        await drain(backend)
        second = await backend.enqueue("probe.effect", payload, key="probe:a")  # the first finished: allowed
        assert second is not None
        await drain(backend)
        jobs = await backend.list_jobs(task="probe.effect")
        assert [(j.id, j.status, j.key, j.payload) for j in jobs] == [
            (second, "succeeded", "probe:a", payload),
            (first, "succeeded", "probe:a", payload),
        ]
        assert len(list(tmp_path.glob("started-a-*"))) == 2  # the task ran twice …
        assert [name for name, _ in probe_rows(engine)] == ["a"]  # … its effect happened once
    finally:
        await backend.close()


async def test_failed_job_is_retried_by_hand(env: tuple[Any, Any, Any], tmp_path: Path) -> None:
    settings, _, sessions = env
    backend = await ProcrastinateBackend(settings, sessions, load_tasks(settings)).open()
    try:
        job_id = await backend.enqueue("probe.fail", {})
        assert job_id is not None
        with pytest.raises(NotRetryable):
            await backend.retry(job_id)  # still waiting
        await drain(backend)
        assert (await backend.get(job_id)).status == "failed"
        await backend.retry(job_id)
        assert (await backend.get(job_id)).status == "todo"
        await drain(backend)  # ran again (and failed again)
        job = await backend.get(job_id)
        assert job.status == "failed" and job.attempts >= 2
        with pytest.raises(UnknownJob):
            await backend.retry(10**9)
    finally:
        await backend.close()


async def test_periodic_ticks_on_given_times_one_job_per_tick(env: tuple[Any, Any, Any]) -> None:
    settings, engine, sessions = env
    tasks = load_tasks(settings)
    backends = [await ProcrastinateBackend(settings, sessions, tasks).open() for _ in range(2)]

    def ticks() -> list[int]:
        """The ticks (minutes after T0's minute) that got a notices.send_queued job.  A draining worker's own
        deferrer adds jobs for the real time too; those are far from T0 and left out."""
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT (args->>'timestamp')::bigint FROM procrastinate_jobs WHERE task_name = :t"),
                {"t": "notices.send_queued"},
            )
            return sorted(int(ts - (T0 - 30)) // 60 for (ts,) in rows if abs(ts - T0) < 3600)

    try:
        # Two workers' deferrers see the same tick: the database keeps one job.  (On its first tick a deferrer
        # takes the latest past occurrence within procrastinate's max delay: 10:00 for "* * * * *".)
        assert await backends[0].tick(T0) >= 1
        assert await backends[1].tick(T0) == 0
        assert ticks() == [0]
        # The next minute: that schedule's previous job still waits (queueing lock), so nothing piles up.
        await backends[0].tick(T0 + 60)
        assert ticks() == [0]
        await drain(backends[0])
        await backends[0].tick(T0 + 120)
        assert ticks() == [0, 2]
    finally:
        for b in backends:
            await b.close()


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec = holder[0]
            rec.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = rec.statuses.pop(0) if rec.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


async def test_webhook_delivery_through_workers(env: tuple[Any, Any, Any], receiver: Receiver) -> None:
    """The server records the delivery and enqueues it; a worker sends it signed; a 503 is retried by a later job;
    a delivery whose job was lost is found by the resume schedule."""
    from takeback.jobs.webhook_jobs import JobWebhookDispatcher

    settings, _, sessions = env
    settings = settings.model_copy(update={"webhook_backoff_s": 0.0})
    with sessions.begin() as session:
        client, _ = clients.create_client(session, "platform", ["match"])
        hook = webhooks.create_webhook(session, client.id, receiver.url, secret="s3cret")
    backend = await ProcrastinateBackend(settings, sessions, load_tasks(settings)).open()
    from takeback.web.storage import Store

    dispatcher = JobWebhookDispatcher(settings, recorder=Store(sessions, lambda *_: None, 60).recorder(), jobs=backend)
    try:
        await dispatcher.start()
        receiver.statuses = [503]
        event_id, body = match_event("platform", {"signal_type": "pdq"}, [{"bank": "b"}])
        dispatcher.submit([Target(hook.id, hook.url, hook.secret)], event_id, body)
        await dispatcher.stop()  # waits for the record-and-enqueue step
        await drain(backend)  # attempt 1: 503, next attempt enqueued (no backoff in this test)
        await drain(backend)  # attempt 2: 200
        assert len(receiver.requests) == 2
        headers, sent = receiver.requests[-1]
        assert sent == body and verify("s3cret", body, headers["x-takeback-signature"])
        with sessions() as session:
            (delivery,) = webhooks.list_deliveries(session, hook.id)
        assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 2, 200)
        assert headers["x-takeback-delivery"] == str(delivery.id)
        # Re-running a finished delivery's job sends nothing.
        await backend.enqueue("webhooks.deliver", {"delivery_id": delivery.id})
        await drain(backend)
        assert len(receiver.requests) == 2

        # A delivery recorded but never enqueued (server died in between) is picked up by webhooks.resume.
        with sessions.begin() as session:
            orphan = webhooks.create_delivery(session, hook.id, "e-2", json.dumps({"event_id": "e-2"}))
            session.execute(
                text("UPDATE webhook_deliveries SET updated_at = updated_at - interval '1 hour' WHERE id = :i"),
                {"i": orphan.id},
            )
        await backend.enqueue("webhooks.resume", {})
        await drain(backend)
        with sessions() as session:
            assert webhooks.get_delivery(session, orphan.id).status == "delivered"  # type: ignore[union-attr]
        assert len(receiver.requests) == 3
    finally:
        await backend.close()
