"""A real `takeback` server process (uvicorn) on a free loopback port, for kill -9 and multi-process tests.

The caller waits for its "startup complete" log line (no sleeps); `kill` is a hard SIGKILL.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from takeback.config import Settings
from takeback.store import clients
from takeback.store.db import open_store

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Uvicorn:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "takeback.web.app:create_app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        ready: queue.Queue[bool] = queue.Queue()

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                if "Application startup complete" in line:
                    ready.put(True)
            ready.put(False)

        threading.Thread(target=pump, daemon=True).start()
        try:
            started = ready.get(timeout=STARTUP_TIMEOUT)
        except queue.Empty:
            started = False
        if not started:
            self.kill()
            pytest.fail("uvicorn did not start:\n" + "".join(self.log[-30:]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def admin_key(env: dict[str, str]) -> str:
    settings = Settings(data_dir=Path(env["TAKEBACK_DATA_DIR"]), database_url=env["TAKEBACK_DATABASE_URL"])
    engine, sessions = open_store(settings)
    try:
        with sessions() as session:
            _, key = clients.create_client(session, "admin", ["admin"])
            session.commit()
    finally:
        engine.dispose()
    return key
