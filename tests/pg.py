"""A throwaway PostgreSQL server for the test suite, started from the machine's binaries.

``initdb`` into a fresh temporary directory, ``pg_ctl start`` listening on a unix socket in that directory only
(no TCP at all, so nothing outside the machine can reach it and parallel runs never fight over a port), trust
authentication for the one superuser, durability switched off (fsync) because the data is thrown away.  ``stop()``
kills it and deletes the directory.  PostgreSQL refuses to run as root; when the tests run as root the server runs
as the ``postgres`` user (or ``nobody``), which owns the directory.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "takeback"
REQUIRE_ENV = "TAKEBACK_REQUIRE_POSTGRES"
_TOOLS = ("initdb", "pg_ctl", "postgres")


def find_bindir() -> Path | None:
    """The directory holding initdb/pg_ctl/postgres: $TAKEBACK_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin
    (Debian keeps them off PATH), else PATH."""
    candidates: list[Path] = []
    if os.environ.get("TAKEBACK_PG_BINDIR"):
        candidates.append(Path(os.environ["TAKEBACK_PG_BINDIR"]))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versioned, key=lambda p: _version(p), reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in _TOOLS):
            return directory
    return None


def _version(path: str) -> tuple[int, ...]:
    part = Path(path).parent.name
    return tuple(int(x) for x in part.split(".") if x.isdigit()) or (0,)


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


class PostgresServer:
    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self._owner = _run_as()
        self._names = itertools.count(1)
        self.running = False

    # --- lifecycle -------------------------------------------------------------------------------------------------

    @classmethod
    def start(cls, bindir: Path) -> PostgresServer:
        # Short base path: a unix socket path must stay under ~100 bytes.
        base = tempfile.gettempdir()
        if len(base) > 40:
            base = "/tmp"
        root = Path(tempfile.mkdtemp(prefix="tb-pg-", dir=base))
        server = cls(bindir, root)
        try:
            server._init_and_start()
        except BaseException:
            server.stop()
            raise
        return server

    def _call(self, *args: str) -> None:
        kwargs: dict[str, object] = {}
        if self._owner is not None:
            kwargs.update(user=self._owner[0], group=self._owner[1], extra_groups=[])
        result = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
            **kwargs,  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{log}")

    def _init_and_start(self) -> None:
        os.chmod(self.root, 0o700)
        if self._owner is not None:
            os.chown(self.root, *self._owner)
        self._call(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        )
        options = " ".join(
            [
                f"-k {self.root}",
                "-c listen_addresses=''",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
            ]
        )
        self._call("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        self.running = True

    def stop(self) -> None:
        """Kill the server (immediate: nothing worth a clean shutdown) and delete everything."""
        if self.running:
            with contextlib.suppress(Exception):
                self._call("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases -------------------------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.root}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=str(self.root), user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None, prefix: str = "test") -> str:
        """A new empty database (or a copy of ``template``); returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
