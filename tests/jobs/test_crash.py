"""kill -9 a real `takeback worker` while its jobs run: a second worker re-runs them, they complete, and each
effect happened exactly once.

Two jobs run on worker A: ``before`` waits for the gate before its effect, ``after`` waits for it after its effect
committed (the hard case: a naive retry would do the effect again).  The test waits (polling with a deadline, not
sleeping) until both are at their waits, kills A with SIGKILL, opens the gate and starts worker B.  B sees that A
stopped sending heartbeats, puts A's jobs back in the queue and runs them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from takeback.jobs import prepare
from takeback.store.db import make_engine
from tests.jobs.conftest import create_probe_table, job_settings
from tests.jobs.processes import REPO, Proc, wait_until


def worker(env: dict[str, str], *args: str) -> Proc:
    """`takeback worker` in its own process."""
    return Proc([sys.executable, "-c", "from takeback.cli import run; run()", "worker", *args], env)


@pytest.fixture
def setup(pg_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], Any, Path]]:
    settings = job_settings(pg_url, tmp_path / "data", jobs_backend="procrastinate")
    engine = make_engine(pg_url)
    prepare(settings, engine)
    create_probe_table(engine)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TAKEBACK_")},
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "TAKEBACK_DATABASE_URL": pg_url,
        "TAKEBACK_DATA_DIR": str(tmp_path / "data"),
        "TAKEBACK_CACHE_DIR": str(tmp_path / "cache"),
        "TAKEBACK_JOBS_BACKEND": "procrastinate",
        "TAKEBACK_JOBS_TASK_MODULES": json.dumps(["tests.jobs.probe_tasks"]),
        "TAKEBACK_JOBS_HEARTBEAT_S": "0.5",
        "TAKEBACK_JOBS_STALLED_AFTER_S": "2",
        "TAKEBACK_JOBS_STALLED_CHECK_S": "0.5",
    }
    markers = tmp_path / "markers"
    markers.mkdir()
    yield env, engine, markers
    engine.dispose()


def test_killed_workers_jobs_are_retried_and_their_effects_happen_once(
    setup: tuple[dict[str, str], Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, engine, markers = setup
    from typer.testing import CliRunner

    from takeback.cli import app

    for name, value in env.items():
        if name.startswith("TAKEBACK_"):
            monkeypatch.setenv(name, value)

    def enqueue(name: str, block: str) -> int:
        """`takeback jobs schedule`, in this process (the worker is the process that matters here)."""
        payload = json.dumps({"dir": str(markers), "name": name, "block": block})
        result = CliRunner().invoke(app, ["jobs", "schedule", "probe.effect", "--payload", payload, "--key", name])
        assert result.exit_code == 0, result.output
        return int(result.stdout.split()[-1])

    ids = {"before": enqueue("before", "before"), "after": enqueue("after", "after")}

    def statuses() -> dict[str, str]:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, status FROM procrastinate_jobs WHERE id IN (:a, :b)"),
                {"a": ids["before"], "b": ids["after"]},
            )
            by_id = dict(rows.all())
        return {name: str(by_id[job_id]) for name, job_id in ids.items()}

    def effects() -> list[tuple[str, int]]:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(text("SELECT name, pid FROM probe_effects ORDER BY name"))]

    first = worker(env, "--queues", "probe", "--concurrency", "2")
    second: Proc | None = None
    try:
        first.ready()
        wait_until(
            "both jobs wait on worker A",
            lambda: any(markers.glob("started-before-*")) and any(markers.glob("effect-after-*")),
            [first],
        )
        assert statuses() == {"before": "doing", "after": "doing"}
        assert effects() == [("after", first.proc.pid)]
        first.kill()
        assert first.proc.returncode == -signal.SIGKILL
        assert statuses() == {"before": "doing", "after": "doing"}  # left running by a dead worker

        (markers / "gate").touch()
        second = worker(env, "--queues", "probe")
        second.ready()
        wait_until("both jobs succeed on worker B", lambda: statuses() == {"before": "succeeded", "after": "succeeded"},
                   [first, second])  # fmt: skip
    finally:
        first.kill()
        if second is not None:
            second.stop()

    assert second.proc.returncode == 0  # SIGTERM: a clean stop
    # Each job ran on both workers …
    for name in ("before", "after"):
        pids = {int(p.name.split("-")[2]) for p in markers.glob(f"started-{name}-*")}
        assert pids == {first.proc.pid, second.proc.pid}, name
    # … and each effect happened exactly once: "after" by worker A before it died, "before" by worker B.
    assert effects() == [("after", first.proc.pid), ("before", second.proc.pid)]
    assert "was running on a worker that stopped" in "".join(second.log)
