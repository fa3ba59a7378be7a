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
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from takeback.jobs import prepare
from takeback.store.db import make_engine
from tests.jobs.conftest import create_probe_table, job_settings

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0


class Worker:
    """`takeback worker` in its own process; ``ready`` waits for its start-up line on stderr."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from takeback.cli import run; run()", "worker", *args],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._ready: queue.Queue[bool] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if "worker ready" in line:
                self._ready.put(True)
        self._ready.put(False)

    def ready(self) -> None:
        try:
            ok = self._ready.get(timeout=DEADLINE_S)
        except queue.Empty:
            ok = False
        if not ok:
            self.stop()
            pytest.fail("worker did not start:\n" + "".join(self.log[-40:]))

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(what: str, condition: Callable[[], bool], workers: list[Worker]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join("".join(w.log[-30:]) for w in workers)
            pytest.fail(f"timed out waiting until {what}\n{logs}")
        time.sleep(0.05)  # polling a condition with a deadline, not sleeping in place of it


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

    first = Worker(env, "--queues", "probe", "--concurrency", "2")
    second: Worker | None = None
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
        second = Worker(env, "--queues", "probe")
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
