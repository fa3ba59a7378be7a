"""A real `takeback serve --demo` process for the browser tests (not a test module).

Readiness and the printed facts (the demo account's password, the demo site's address, the admin key) are read
from the process's own output as it arrives: a reader thread collects lines and wakes whoever waits for one, so
nothing here sleeps to guess when the server is up.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.petition.served import free_port

READY = "Application startup complete"
PASSWORD = re.compile(r"^\s+password\s+(\S+)\s+\(shown only now")
SITE = re.compile(r"^\s+demo web site\s+(http://127\.0\.0\.1:\d+)/")
EMAIL = re.compile(r"^\s+sign in as\s+(\S+@\S+)")


@dataclass
class ServedDemo:
    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()  # the process ended: wake waiters so they can say so

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        """Block until a line containing ``text`` was printed; fail with the output if the process ends first."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: any(text in line for line in self.lines) or self.process.poll() is not None, timeout
            )
            if not ok or not any(text in line for line in self.lines):
                raise AssertionError(f"takeback serve --demo never printed {text!r}:\n{''.join(self.lines)}")

    def printed(self, pattern: re.Pattern[str]) -> str:
        for line in self.lines:
            found = pattern.match(line)
            if found:
                return found.group(1)
        raise AssertionError(f"no line matches {pattern.pattern!r}:\n{''.join(self.lines)}")

    @property
    def email(self) -> str:
        return self.printed(EMAIL)

    @property
    def password(self) -> str:
        return self.printed(PASSWORD)

    @property
    def site(self) -> str:
        return self.printed(SITE)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve_demo(data_dir: Path, **settings: Any) -> ServedDemo:
    """`takeback serve --demo --no-mail-sink` on loopback (mail goes to TAKEBACK_SMTP_* from ``settings``)."""
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in ("TAKEBACK_DATABASE_URL", "TAKEBACK_DATA_DIR"):
        env.pop(name, None)
    env.update({f"TAKEBACK_{name.upper()}": str(value) for name, value in settings.items()})
    command = [sys.executable, "-c", "from takeback.cli import run; run()", "serve", "--demo", "--data-dir",
               str(data_dir), "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--no-mail-sink"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    served = ServedDemo(process, f"http://127.0.0.1:{port}")
    threading.Thread(target=served._read, daemon=True).start()
    try:
        served.wait_for(READY)
    except BaseException:
        served.stop()
        raise
    return served
