"""Test-only tasks, loaded by workers through TAKEBACK_JOBS_TASK_MODULES='["tests.jobs.probe_tasks"]'.

``probe.effect`` marks that it started (a file named with the worker's pid), optionally waits for a gate file the
test creates, does its effect exactly once (a row in ``probe_effects`` guarded by ``claim_effect`` in the same
transaction), marks that, and optionally waits for the gate again.  The test kills the worker while a job waits.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

from takeback.jobs import JobContext, Schedule, TaskSpec, claim_effect

PROBE_TABLE = "CREATE TABLE IF NOT EXISTS probe_effects (name VARCHAR(100) NOT NULL, pid INTEGER NOT NULL)"


async def _wait_for(path: Path) -> None:
    while not path.exists():  # the job's own wait, bounded by the test killing the worker
        await asyncio.sleep(0.02)


async def probe_effect(ctx: JobContext, payload: dict[str, Any]) -> None:
    folder = Path(payload["dir"])
    name = str(payload["name"])
    pid = os.getpid()
    (folder / f"started-{name}-{pid}-{ctx.job_id}-{ctx.attempts}").touch()
    if payload.get("block") == "before":
        await _wait_for(folder / "gate")

    def effect() -> None:
        with ctx.sessions.begin() as session:
            session.execute(text(PROBE_TABLE))
            if claim_effect(session, f"probe:{name}", task=ctx.task):
                session.execute(text("INSERT INTO probe_effects (name, pid) VALUES (:n, :p)"), {"n": name, "p": pid})

    await asyncio.to_thread(effect)
    (folder / f"effect-{name}-{pid}").touch()
    if payload.get("block") == "after":
        await _wait_for(folder / "gate")


async def probe_fail(ctx: JobContext, payload: dict[str, Any]) -> None:
    raise RuntimeError("probe failure")


TASKS = [
    TaskSpec("probe.effect", probe_effect, queue="probe"),
    TaskSpec("probe.fail", probe_fail, queue="probe"),
]
SCHEDULES: list[Schedule] = []
