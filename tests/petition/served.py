"""A real `takeback serve` process with a petition, for the crash and browser tests (not a test module)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from takeback.config import Settings
from takeback.store import banks, petitions
from takeback.store.db import open_store

SECRET = "test-secret-" + "1" * 40
SLUG = "give-it-back"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_petition(data_dir: Path, database_url: str = "", *, goal: int = 100) -> int:
    """Migrate the database and create a case with the test petition (idempotent); returns the petition id."""
    engine, sessions = open_store(Settings(data_dir=data_dir, database_url=database_url))
    try:
        with sessions.begin() as session:
            existing = petitions.get_petition_by_slug(session, SLUG)
            if existing is not None:
                return existing.id
            case = banks.create_case(session, "case")
            text = "Put her domains under her control.\n\nReturn her video rights."
            return petitions.create_petition(
                session, case.id, SLUG, "Give her domains back", text, "The registrar", goal
            ).id
    finally:
        engine.dispose()


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"takeback serve exited with {self.process.returncode}:\n{''.join(self.lines)}")
            try:
                response = httpx.get(f"{self.url}/v1/petitions/{SLUG}/counts", timeout=1.0, trust_env=False)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"takeback serve was not ready within {deadline_s} s:\n{''.join(self.lines)}")

    def kill9(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()


def serve(data_dir: Path, port: int, **settings: Any) -> Served:
    """Start `takeback serve` on loopback with petition settings from TAKEBACK_* variables; wait until it answers."""
    env = dict(os.environ, TAKEBACK_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", TAKEBACK_PETITION_SECRET=SECRET)
    env.pop("TAKEBACK_DATABASE_URL", None)
    for name, value in settings.items():
        env[f"TAKEBACK_{name.upper()}"] = str(value)
    command = [sys.executable, "-c", "from takeback.cli import run; run()", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    served = Served(process, f"http://127.0.0.1:{port}")
    threading.Thread(target=served._read, daemon=True).start()
    try:
        served.wait_ready()
    except BaseException:
        served.stop()
        raise
    return served
