"""takeback's own tasks through both job backends, against a loopback web site and a loopback SMTP server: scheduled
re-scans (``cases.rescan_due`` → ``cases.rescan``), re-checks (``findings.recheck_due`` → ``findings.recheck``) and
notice sending (``notices.send_queued`` → ``notices.send``).

Each test runs on the local backend (SQLite and PostgreSQL) and on procrastinate (PostgreSQL), and delivers the
same item job twice: the effects — findings recorded, status changes, mail sent — happen exactly once, and a sweep
run again finds nothing left to do.  (tests/jobs/test_real_tasks_crash.py kills workers in the middle of these.)
"""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback.config import Settings
from takeback.jobs import load_tasks, prepare
from takeback.jobs.local import LocalBackend
from takeback.store.db import make_engine, session_factory
from tests.discover.webserver import Reply, WebServer
from tests.jobs.real_tasks import (
    QUIET_CRONS,
    RECIPIENT,
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

pytestmark = pytest.mark.anyio


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer(site_routes()) as server:
        yield server


@pytest.fixture
def box() -> Iterator[Mailbox]:
    yield from mailbox()


@dataclass
class Jobs:
    """One backend with takeback's tasks, settings allowing exactly the test site's origin, and its store."""

    name: str
    settings: Settings
    sessions: sessionmaker[Session]
    backend: Any

    async def enqueue(self, task: str, payload: dict[str, Any] | None = None, key: str | None = None) -> int | None:
        return await self.backend.enqueue(task, payload or {}, key=key)

    async def run(self) -> None:
        """Run every job due now, and the follow-ups they enqueue, until none is left."""
        if self.name == "procrastinate":
            await self.backend.app.run_worker_async(wait=False, install_signal_handlers=False, listen_notify=False)
        else:
            await self.backend.run_due()


@pytest.fixture(params=["local-sqlite", "local-postgres", "procrastinate"])
async def jobs(
    request: pytest.FixtureRequest, tmp_path: Path, site: WebServer, box: Mailbox
) -> AsyncIterator[Jobs]:
    name = request.param
    if name == "local-sqlite":
        path = tmp_path / "db" / "takeback.sqlite3"
        path.parent.mkdir(mode=0o700)
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
    backend_name = "procrastinate" if name == "procrastinate" else "local"
    settings = Settings(
        data_dir=tmp_path / "data", database_url=url, jobs_backend=backend_name, **QUIET_CRONS, **box.settings()
    ).allowing_origins(f"127.0.0.1:{site.port}")  # type: ignore[arg-type]
    engine = make_engine(url)
    prepare(settings, engine)
    sessions = session_factory(engine)
    tasks = load_tasks(settings)
    if backend_name == "procrastinate":
        from takeback.jobs.procrastinate_backend import ProcrastinateBackend

        backend: Any = await ProcrastinateBackend(settings, sessions, tasks).open()
    else:
        backend = LocalBackend(settings, sessions, tasks)
    try:
        yield Jobs(backend_name, settings, sessions, backend)
    finally:
        await backend.close()
        engine.dispose()


def found_once(events: dict[str, list[str]]) -> bool:
    return all(kinds.count("found") == 1 for kinds in events.values())


async def test_rescan_records_each_finding_once(jobs: Jobs, site: WebServer) -> None:
    case_id = week_old_scan(jobs.sessions, site)
    assert await jobs.enqueue("cases.rescan_due") is not None
    await jobs.run()
    assert findings_by_path(jobs.sessions, case_id, site) == {"/a.jpg": "open", "/b.jpg": "open"}
    assert crawl_runs(jobs.sessions, case_id) == ["done", "done"]
    # The sweep again: the case was just scanned, nothing is due.
    await jobs.enqueue("cases.rescan_due")
    await jobs.run()
    assert crawl_runs(jobs.sessions, case_id) == ["done", "done"]

    # The same item job delivered twice (a second while the first waits is refused by its key; a later one runs).
    key = f"case-rescan:{case_id}"
    assert await jobs.enqueue("cases.rescan", {"case_id": case_id}, key) is not None
    assert await jobs.enqueue("cases.rescan", {"case_id": case_id}, key) is None
    await jobs.run()
    assert await jobs.enqueue("cases.rescan", {"case_id": case_id}, key) is not None
    await jobs.run()
    assert crawl_runs(jobs.sessions, case_id) == ["done"] * 4  # each delivery is a crawl run …
    assert findings_by_path(jobs.sessions, case_id, site) == {"/a.jpg": "open", "/b.jpg": "open"}  # … one row each
    events = finding_events(jobs.sessions, case_id, site)
    assert found_once(events) and all(kinds.count("seen") == 2 for kinds in events.values()), events


async def test_recheck_changes_a_status_once(jobs: Jobs, site: WebServer) -> None:
    case_id, (gone, kept) = checked_findings(jobs.sessions, site, ("/a.jpg", "/b.jpg"))
    site.routes["/a.jpg"] = Reply(status=404, body=b"gone", content_type="text/plain")
    assert await jobs.enqueue("findings.recheck_due") is not None
    await jobs.run()
    assert findings_by_path(jobs.sessions, case_id, site) == {"/a.jpg": "removed", "/b.jpg": "open"}
    assert finding_events(jobs.sessions, case_id, site) == {"/a.jpg": ["found", "removed"], "/b.jpg": ["found", "seen"]}

    # The same re-check delivered twice more: the removal is recorded once; later checks only say it is still gone.
    for _ in range(2):
        assert await jobs.enqueue("findings.recheck", {"finding_id": gone}, f"finding-recheck:{gone}") is not None
        await jobs.run()
    events = finding_events(jobs.sessions, case_id, site)
    assert events["/a.jpg"] == ["found", "removed", "still_removed", "still_removed"]
    assert findings_by_path(jobs.sessions, case_id, site) == {"/a.jpg": "removed", "/b.jpg": "open"}
    # Both were just checked: the sweep finds nothing due.
    await jobs.enqueue("findings.recheck_due")
    await jobs.run()
    assert finding_events(jobs.sessions, case_id, site) == events
    assert kept > 0


async def test_queued_notice_is_mailed_once(jobs: Jobs, box: Mailbox) -> None:
    _, notice_id = queued_notice(jobs.sessions)
    assert await jobs.enqueue("notices.send_queued") is not None
    await jobs.run()
    assert box.recipients() == [[RECIPIENT]]
    state, events, sent = notice_state(jobs.sessions, notice_id)
    assert (state, sent, events.count("sent")) == ("sent", 1, 1)

    # Delivered twice more (the sweep's item job, as a retry would): it is no longer queued, so nothing is sent.
    for _ in range(2):
        assert await jobs.enqueue("notices.send", {"notice_id": notice_id}, f"notice-send:{notice_id}") is not None
        await jobs.run()
    await jobs.enqueue("notices.send_queued")
    await jobs.run()
    assert box.recipients() == [[RECIPIENT]]
    assert notice_state(jobs.sessions, notice_id) == (state, events, 1)


async def test_local_schedules_start_the_sweeps(tmp_path: Path, site: WebServer, box: Mailbox) -> None:
    """On the single-machine backend the schedules themselves fire the sweeps (an injected clock, default crons):
    an hour after the first tick, the due re-scan, the due re-checks and the queued notice are all done."""
    path = tmp_path / "takeback.sqlite3"
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{path}", **box.settings())
    settings = settings.allowing_origins(f"127.0.0.1:{site.port}")
    from takeback.store.db import upgrade

    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    prepare(settings, engine)
    sessions = session_factory(engine)
    now = [time.time()]  # the tasks' "now" too: the rows below are dated relative to the real time
    backend = LocalBackend(settings, sessions, load_tasks(settings), clock=lambda: now[0])
    try:
        scanned = week_old_scan(sessions, site)
        checked, _ = checked_findings(sessions, site, ("/b.jpg",))
        _, notice_id = queued_notice(sessions)
        assert await backend.tick() == 0  # a fresh process starts at the next tick of each schedule
        now[0] += 3600
        assert await backend.tick() >= 4
        fired = {job.task for job in await backend.list_jobs(status="todo")}
        assert {"notices.send_queued", "cases.rescan_due", "findings.recheck_due"} <= fired, fired
        await backend.run_due()
        assert [(j.task, j.error) for j in await backend.list_jobs(status="failed")] == []
        assert findings_by_path(sessions, scanned, site) == {"/a.jpg": "open", "/b.jpg": "open"}
        assert finding_events(sessions, checked, site) == {"/b.jpg": ["found", "seen"]}
        assert notice_state(sessions, notice_id)[0] == "sent" and box.recipients() == [[RECIPIENT]]
    finally:
        await backend.close()
        engine.dispose()
