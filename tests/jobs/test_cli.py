"""`takeback worker` and `takeback jobs list|retry|schedule`: outputs and exit codes on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from takeback.cli import app


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TAKEBACK_DATABASE_URL", raising=False)
    monkeypatch.setenv("TAKEBACK_JOBS_BACKEND", "local")
    monkeypatch.setenv("TAKEBACK_JOBS_TASK_MODULES", json.dumps(["tests.jobs.probe_tasks"]))
    return tmp_path


def test_local_backend_commands(local_env: Path) -> None:
    code, out, _ = invoke("jobs", "schedule")
    assert code == 0
    for name in ("notices.send_queued", "cases.rescan", "findings.recheck_due", "probe.effect"):
        assert name in out
    assert "backend: local" in out

    payload = json.dumps({"dir": str(local_env), "name": "cli"})
    code, out, err = invoke("jobs", "schedule", "probe.effect", "--payload", payload)
    assert (code, out.strip()) == (0, "ran 1 job(s) here (local backend)"), err
    assert list(local_env.glob("effect-cli-*"))

    code, _, err = invoke("jobs", "schedule", "probe.fail")
    assert code == 1 and "probe failure" in err
    code, _, err = invoke("jobs", "schedule", "no.such.task")
    assert code == 2 and "no task named" in err
    code, _, err = invoke("jobs", "schedule", "probe.effect", "--payload", "[1, 2")
    assert code == 2 and "--payload is not JSON" in err
    code, _, err = invoke("jobs", "schedule", "probe.effect", "--payload", "[1, 2]")
    assert code == 2 and "JSON object" in err
    for args in (("jobs", "list"), ("jobs", "retry", "1"), ("worker",)):
        code, _, err = invoke(*args)
        assert code == 2 and "local backend" in err, args


def test_procrastinate_commands(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TAKEBACK_DATABASE_URL", pg_url)
    monkeypatch.setenv("TAKEBACK_JOBS_BACKEND", "procrastinate")
    monkeypatch.setenv("TAKEBACK_JOBS_TASK_MODULES", json.dumps(["tests.jobs.probe_tasks"]))
    payload = json.dumps({"dir": str(tmp_path), "name": "cli"})

    code, out, err = invoke("jobs", "schedule", "probe.effect", "--payload", payload, "--key", "k1", "--in", "60")
    assert code == 0 and out.startswith("enqueued job "), err
    job_id = int(out.split()[-1])
    code, out, _ = invoke("jobs", "schedule", "probe.effect", "--payload", payload, "--key", "k1")
    assert code == 0 and "already waiting" in out

    code, out, _ = invoke("jobs", "list", "--json", "--task", "probe.effect")
    assert code == 0
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert (row["id"], row["status"], row["key"], row["payload"]) == (job_id, "todo", "k1", json.loads(payload))
    code, out, _ = invoke("jobs", "list", "--status", "failed")
    assert code == 0 and "probe.effect" not in out
    code, _, err = invoke("jobs", "list", "--status", "bogus")
    assert code == 2

    code, _, err = invoke("jobs", "retry", str(job_id))
    assert code == 7 and "only failed jobs" in err
    code, _, err = invoke("jobs", "retry", "999999")
    assert code == 7 and "no job" in err
    code, out, _ = invoke("jobs", "retry", "--stalled")
    assert (code, out.strip()) == (0, "retrying 0 job(s)")
    code, _, _ = invoke("jobs", "retry")
    assert code == 2


def test_worker_refuses_sqlite_with_procrastinate(local_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEBACK_JOBS_BACKEND", "procrastinate")
    code, _, err = invoke("worker")
    assert code == 2 and "needs PostgreSQL" in err
