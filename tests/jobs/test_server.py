"""The server's background work: the local backend runs in the server process; with the procrastinate backend a
match's webhook deliveries become jobs that a worker delivers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from takeback.config import Settings
from takeback.jobs import ServerJobs, load_tasks
from takeback.jobs.local import LocalBackend
from takeback.jobs.procrastinate_backend import ProcrastinateBackend
from takeback.jobs.webhook_jobs import JobWebhookDispatcher
from takeback.store import banks, clients, signals, webhooks
from takeback.store.db import make_engine, session_factory
from takeback.web.app import create_app
from takeback.web.webhooks import WebhookDispatcher, system_resolver, verify
from tests.jobs.test_procrastinate import Receiver, drain, receiver  # noqa: F401 (fixture)

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_local_backend_runs_inside_the_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'takeback.sqlite3'}"
    from takeback.store.db import upgrade

    upgrade(url)
    engine = make_engine(url)
    settings = Settings(data_dir=tmp_path, database_url=url)

    async def go() -> None:
        jobs = await ServerJobs.start(settings, engine, session_factory(engine))
        assert isinstance(jobs.backend, LocalBackend)
        assert jobs._runner is not None and not jobs._runner.done()
        dispatcher = jobs.webhook_dispatcher(recorder=None, resolver=system_resolver)  # type: ignore[arg-type]
        assert type(dispatcher) is WebhookDispatcher  # webhooks stay with the in-process dispatcher
        assert await jobs.backend.enqueue("notices.check_deadlines") is not None
        await jobs.stop()
        assert jobs._runner.done()

        off = await ServerJobs.start(
            settings.model_copy(update={"jobs_in_server": False}), engine, session_factory(engine)
        )
        assert off.backend is None
        await off.stop()

    try:
        asyncio.run(go())
        with engine.connect() as connection:  # the effects table was created at start
            connection.execute(text("SELECT count(*) FROM job_effects")).scalar_one()
    finally:
        engine.dispose()


def test_match_webhooks_become_jobs_a_worker_delivers(pg_url: str, tmp_path: Path, receiver: Receiver) -> None:  # noqa: F811
    settings = Settings(
        data_dir=tmp_path, database_url=pg_url, jobs_backend="procrastinate", allow_private_webhooks=True
    )
    engine = make_engine(pg_url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        platform, key = clients.create_client(session, "platform", ["match"])
        bank = banks.create_bank(session, "b", grant_to=platform.id)
        signals.add_signals(session, bank.id, [("pdq", PDQ_A, 100, None)])
        hook = webhooks.create_webhook(session, platform.id, receiver.url, secret="s3cret")
    try:
        app = create_app(settings)
        with TestClient(app) as http:
            assert isinstance(app.state.takeback.dispatcher, JobWebhookDispatcher)
            r = http.post(
                "/v1/match", json={"signal_type": "pdq", "value": PDQ_A}, headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 200 and r.json()["matches"], r.text
        # The server has stopped (waiting for its record-and-enqueue step); nothing was sent by it.
        assert receiver.requests == []
        with sessions() as session:
            (delivery,) = webhooks.list_deliveries(session, hook.id)
        assert delivery.status == "pending"

        async def work() -> None:
            backend = await ProcrastinateBackend(settings, sessions, load_tasks(settings)).open()
            try:
                jobs = await backend.list_jobs(task="webhooks.deliver")
                assert [(j.key, j.payload) for j in jobs] == [
                    (f"webhook-delivery:{delivery.id}", {"delivery_id": delivery.id})
                ]
                await drain(backend)
            finally:
                await backend.close()

        asyncio.run(work())
        ((headers, body),) = receiver.requests
        assert verify("s3cret", body, headers["x-takeback-signature"])
        with sessions() as session:
            assert webhooks.get_delivery(session, delivery.id).status == "delivered"  # type: ignore[union-attr]
    finally:
        engine.dispose()
