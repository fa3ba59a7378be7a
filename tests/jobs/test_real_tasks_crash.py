"""kill -9 in the middle of takeback's real tasks — a re-scan, a re-check, a notice being mailed — and the work is
done again, completely, with each effect exactly once.

procrastinate (PostgreSQL): worker A takes the job and is held in the middle of it by the loopback site (an answer
that waits for a gate) or the loopback SMTP server (a conversation held after RCPT TO, before any content); the test
waits for that point (polling with a deadline), kills A with SIGKILL, lets the servers answer, and starts worker B.
B notices that A stopped sending heartbeats, puts A's job back in the queue and runs it.

local (SQLite): the queue lives in the server's memory, so a killed process's jobs are not retried as such; the
next process's sweep finds the same work in the store (docs/jobs.md).  The test kills ``takeback jobs schedule``
(which runs a job in its own process on this backend) mid-job, then runs the sweep as a restarted server's next tick
would.

Worker processes reach the test's site through ``tests/jobs/loopback_cli.py``: the SSRF guard's code-only exception
for exactly that origin.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from takeback.config import Settings
from takeback.jobs import load_tasks, prepare
from takeback.jobs.local import LocalBackend
from takeback.store.db import make_engine, session_factory, upgrade
from tests.discover.webserver import Reply, WebServer
from tests.jobs.processes import REPO, Proc, wait_until
from tests.jobs.real_tasks import (
    QUIET_CRONS,
    RECIPIENT,
    Gate,
    Mailbox,
    checked_findings,
    crawl_runs,
    finding_events,
    findings_by_path,
    mailbox,
    notice_state,
    queued_notice,
    site_routes,
    week_old_scan,
)


def launch(env: dict[str, str], origin: str, *args: str) -> Proc:
    """``takeback …`` through the loopback launcher, in its own process."""
    return Proc([sys.executable, "-m", "tests.jobs.loopback_cli", origin, *args], env)


def base_env(url: str, tmp_path: Path, box: Mailbox, backend: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEBACK_")}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "TAKEBACK_DATABASE_URL": url,
            "TAKEBACK_DATA_DIR": str(tmp_path / "data"),
            "TAKEBACK_CACHE_DIR": str(tmp_path / "cache"),
            "TAKEBACK_JOBS_BACKEND": backend,
            "TAKEBACK_JOBS_HEARTBEAT_S": "0.5",
            "TAKEBACK_JOBS_STALLED_AFTER_S": "2",
            "TAKEBACK_JOBS_STALLED_CHECK_S": "0.5",
            **{f"TAKEBACK_{name.upper()}": cron for name, cron in QUIET_CRONS.items()},
            **box.env(),
        }
    )
    return env


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.open()  # never leave a server thread waiting


@pytest.fixture
def site(gate: Gate) -> Iterator[WebServer]:
    with WebServer(site_routes(gate)) as server:
        yield server


@pytest.fixture
def box() -> Iterator[Mailbox]:
    yield from mailbox()


# --- procrastinate: a killed worker's job is retried by another worker ---------------------------------------------


class Queue:
    """The test's view of the procrastinate queue: enqueue, and a job's status straight from its table."""

    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker[Session]) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions

    def enqueue(self, task: str, payload: dict[str, Any], key: str) -> int:
        from takeback.jobs.procrastinate_backend import ProcrastinateBackend

        async def run() -> int | None:
            backend = await ProcrastinateBackend(self.settings, self.sessions, load_tasks(self.settings)).open()
            try:
                return await backend.enqueue(task, payload, key=key)
            finally:
                await backend.close()

        job_id = asyncio.run(run())
        assert job_id is not None
        return job_id

    def status(self, job_id: int) -> str:
        with self.engine.connect() as connection:
            row = connection.execute(text("SELECT status FROM procrastinate_jobs WHERE id = :i"), {"i": job_id}).one()
        return str(row[0])


@pytest.fixture
def pg(pg_url: str, tmp_path: Path, box: Mailbox) -> Iterator[tuple[Queue, dict[str, str]]]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=pg_url, jobs_backend="procrastinate", **QUIET_CRONS, **box.settings()
    )  # type: ignore[arg-type]
    engine = make_engine(pg_url)
    prepare(settings, engine)
    yield Queue(settings, engine, session_factory(engine)), base_env(pg_url, tmp_path, box, "procrastinate")
    engine.dispose()


def kill_and_retry(
    env: dict[str, str], origin: str, queue_name: str, jobs: Queue, job_id: int, mid_job: Callable[[], bool],
    release: Callable[[], None],
) -> None:  # fmt: skip
    """Worker A runs the job until ``mid_job``; kill -9; ``release`` the servers; worker B completes the job."""
    first = launch(env, origin, "worker", "--queues", queue_name)
    second: Proc | None = None
    try:
        first.ready()
        wait_until("worker A is in the middle of the job", mid_job, [first])
        assert jobs.status(job_id) == "doing"
        first.kill()
        assert first.proc.returncode == -signal.SIGKILL
        assert jobs.status(job_id) == "doing"  # left running by a dead worker
        release()
        second = launch(env, origin, "worker", "--queues", queue_name)
        second.ready()
        wait_until("worker B completes the job", lambda: jobs.status(job_id) == "succeeded", [first, second])
    finally:
        release()
        first.kill()
        if second is not None:
            second.stop()
    assert second.proc.returncode == 0
    assert "was running on a worker that stopped" in "".join(second.log)


def test_killed_rescan_is_retried_and_records_each_finding_once(
    pg: tuple[Queue, dict[str, str]], site: WebServer, gate: Gate
) -> None:
    jobs, env = pg
    case_id = week_old_scan(jobs.sessions, site)
    job_id = jobs.enqueue("cases.rescan", {"case_id": case_id}, f"case-rescan:{case_id}")

    def mid_job() -> bool:
        """A recorded /a.jpg (its effect is committed) and waits for /more."""
        return gate.waiting.is_set() and "/a.jpg" in findings_by_path(jobs.sessions, case_id, site)

    kill_and_retry(env, f"127.0.0.1:{site.port}", "scans", jobs, job_id, mid_job, gate.open)
    assert findings_by_path(jobs.sessions, case_id, site) == {"/a.jpg": "open", "/b.jpg": "open"}
    # /a.jpg: found by A, seen again by B; /b.jpg: found by B.  Never found twice.
    assert finding_events(jobs.sessions, case_id, site) == {"/a.jpg": ["found", "seen"], "/b.jpg": ["found"]}
    # The week-old scan, A's run (its process died with it: left "running"), B's run.
    assert crawl_runs(jobs.sessions, case_id) == ["done", "running", "done"]


def test_killed_recheck_is_retried_and_records_the_removal_once(
    pg: tuple[Queue, dict[str, str]], site: WebServer, gate: Gate
) -> None:
    jobs, env = pg
    case_id, (finding_id,) = checked_findings(jobs.sessions, site, ("/a.jpg",))
    site.routes["/a.jpg"] = gate.hold(Reply(status=404, body=b"gone", content_type="text/plain"))
    job_id = jobs.enqueue("findings.recheck", {"finding_id": finding_id}, f"finding-recheck:{finding_id}")
    kill_and_retry(env, f"127.0.0.1:{site.port}", "scans", jobs, job_id, gate.waiting.is_set, gate.open)
    assert findings_by_path(jobs.sessions, case_id, site) == {"/a.jpg": "removed"}
    assert finding_events(jobs.sessions, case_id, site) == {"/a.jpg": ["found", "removed"]}


def test_killed_notice_send_is_retried_and_mails_once(
    pg: tuple[Queue, dict[str, str]], site: WebServer, box: Mailbox
) -> None:
    jobs, env = pg
    _, notice_id = queued_notice(jobs.sessions)
    box.hold = True
    job_id = jobs.enqueue("notices.send", {"notice_id": notice_id}, f"notice-send:{notice_id}")
    kill_and_retry(env, f"127.0.0.1:{site.port}", "notices", jobs, job_id, box.held.is_set, box.release)
    assert box.recipients() == [[RECIPIENT]]
    state, events, sent = notice_state(jobs.sessions, notice_id)
    assert (state, events.count("sent"), sent) == ("sent", 1, 1)


# --- local: the killed process's work is found again by the next process's sweep -------------------------------------


Local = tuple[Settings, sessionmaker[Session], dict[str, str]]


@pytest.fixture
def local(tmp_path: Path, box: Mailbox, site: WebServer) -> Iterator[Local]:
    url = f"sqlite:///{tmp_path / 'takeback.sqlite3'}"
    settings = Settings(data_dir=tmp_path / "data", database_url=url, **QUIET_CRONS, **box.settings())  # type: ignore[arg-type]
    upgrade(url)
    engine = make_engine(url)
    prepare(settings, engine)
    allowed = settings.allowing_origins(f"127.0.0.1:{site.port}")
    yield allowed, session_factory(engine), base_env(url, tmp_path, box, "local")
    engine.dispose()


def run_once_and_kill(
    env: dict[str, str], origin: str, task: str, payload: dict[str, Any], mid_job: Callable[[], bool]
) -> None:
    """``takeback jobs schedule TASK`` (local backend: runs the job in its own process), killed at ``mid_job``."""
    proc = launch(env, origin, "jobs", "schedule", task, "--payload", json.dumps(payload))
    try:
        wait_until("the job is in the middle of its work", mid_job, [proc])
    finally:
        proc.kill()
    assert proc.proc.returncode == -signal.SIGKILL


def restarted_sweep(settings: Settings, sessions: sessionmaker[Session], sweep: str) -> None:
    """What the restarted server's next tick does: the sweep, and the item jobs it enqueues."""

    async def run() -> None:
        backend = LocalBackend(settings, sessions, load_tasks(settings))
        try:
            assert await backend.enqueue(sweep) is not None
            await backend.run_due()
            assert await backend.list_jobs(status="failed") == []
        finally:
            await backend.close()

    asyncio.run(run())


def test_local_killed_recheck_is_found_again_by_the_next_sweep(
    local: Local, site: WebServer, gate: Gate
) -> None:
    settings, sessions, env = local
    case_id, (finding_id,) = checked_findings(sessions, site, ("/a.jpg",))
    site.routes["/a.jpg"] = gate.hold(Reply(status=404, body=b"gone", content_type="text/plain"))
    origin = f"127.0.0.1:{site.port}"
    run_once_and_kill(env, origin, "findings.recheck", {"finding_id": finding_id}, gate.waiting.is_set)
    assert finding_events(sessions, case_id, site) == {"/a.jpg": ["found"]}  # nothing was recorded
    gate.open()
    restarted_sweep(settings, sessions, "findings.recheck_due")
    assert finding_events(sessions, case_id, site) == {"/a.jpg": ["found", "removed"]}
    restarted_sweep(settings, sessions, "findings.recheck_due")  # and it is not due again
    assert finding_events(sessions, case_id, site) == {"/a.jpg": ["found", "removed"]}


def test_local_killed_notice_send_is_found_again_by_the_next_sweep(
    local: Local, site: WebServer, box: Mailbox
) -> None:
    settings, sessions, env = local
    _, notice_id = queued_notice(sessions)
    box.hold = True
    run_once_and_kill(env, f"127.0.0.1:{site.port}", "notices.send", {"notice_id": notice_id}, box.held.is_set)
    box.release()
    assert box.recipients() == [] and notice_state(sessions, notice_id)[0] == "queued"
    restarted_sweep(settings, sessions, "notices.send_queued")
    restarted_sweep(settings, sessions, "notices.send_queued")
    assert box.recipients() == [[RECIPIENT]]
    state, events, sent = notice_state(sessions, notice_id)
    assert (state, events.count("sent"), sent) == ("sent", 1, 1)


def test_local_killed_rescan_is_found_again_by_the_next_sweep(
    local: Local, site: WebServer, gate: Gate
) -> None:
    settings, sessions, env = local
    case_id = week_old_scan(sessions, site)

    def mid_job() -> bool:
        return gate.waiting.is_set() and "/a.jpg" in findings_by_path(sessions, case_id, site)

    run_once_and_kill(env, f"127.0.0.1:{site.port}", "cases.rescan", {"case_id": case_id}, mid_job)
    gate.open()
    assert crawl_runs(sessions, case_id) == ["done", "running"]
    # A week later the case is due again; the sweep should re-scan it and find /b.jpg, /a.jpg still once.
    from datetime import timedelta

    from sqlalchemy import update

    from takeback.store.models import utcnow
    from takeback.store.models_findings import CrawlRun

    week_ago = utcnow() - timedelta(days=8)
    with sessions.begin() as session:
        session.execute(update(CrawlRun).where(CrawlRun.case_id == case_id).values(started_at=week_ago))
    restarted_sweep(settings, sessions, "cases.rescan_due")
    assert findings_by_path(sessions, case_id, site) == {"/a.jpg": "open", "/b.jpg": "open"}
    # The killed run is closed as failed with its reason; the new one finished.
    assert crawl_runs(sessions, case_id) == ["done", "failed", "done"]
    assert finding_events(sessions, case_id, site)["/a.jpg"].count("found") == 1
