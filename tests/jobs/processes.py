"""A `takeback` command in its own process, for the tests that kill workers mid-job.

Shared by `test_crash.py` (a bare `takeback worker`) and `test_real_tasks_crash.py` (through the loopback
launcher): both need a process whose stderr is kept for the failure message, a wait for its start-up line, SIGKILL,
and a condition polled with a deadline instead of a sleep.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: How long a start-up or a polled condition may take before the test fails with the processes' logs.
DEADLINE_S = 60.0


class Proc:
    """`argv` in its own process from the repository root; ``ready`` waits for "worker ready" on its stderr."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            list(argv),
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


def wait_until(what: str, condition: Callable[[], bool], procs: Sequence[Proc]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            logs = "\n".join("".join(p.log[-30:]) for p in procs)
            pytest.fail(f"timed out waiting until {what}\n{logs}")
        time.sleep(0.05)  # polling a condition with a deadline, not sleeping in place of it
