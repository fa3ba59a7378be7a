"""Reaching a Ray cluster, quietly and without exposing more than Ray itself needs.

`connect` joins an existing cluster by address (what `takeback hash --ray HOST:PORT` does), or with the address
``local`` starts a private single-machine Ray inside this process: no dashboard, no usage statistics sent anywhere,
a small object store (only hashes and small work lists travel through it) and its files in a fresh temporary folder
that is removed afterwards.

An unreachable address must fail in seconds: Ray's own client waits minutes for a cluster that is not there, so the
address is checked with a plain TCP connect first.

`start_head` runs ``ray start --head --block`` in a subprocess, for tests and benchmarks that need a real separate
cluster on this machine; `HeadNode.stop` ends it (and only it) with SIGTERM, which makes Ray drain and stop every
process of that node.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

#: Environment for every Ray process we start or join: never phone home.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
AUTH_MODE, AUTH_TOKEN = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"
#: The address that means "start a private Ray on this machine".
LOCAL = "local"
#: Default object store for a local Ray: hashes and file lists are small.
DEFAULT_OBJECT_STORE_MB = 200
#: How long a TCP connect to the cluster's address may take before we call it unreachable.
PROBE_TIMEOUT_S = 5.0


class RayUnavailable(Exception):
    """Ray cannot be used: it is not installed, the address is malformed, or nothing answers there."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def require_ray() -> ModuleType:
    """The `ray` module, or a RayUnavailable that says how to install it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("Ray is not installed: pip install 'takeback[scale]'") from None
    return ray


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``); a `ray://` client URL is refused (the driver must join the cluster)."""
    text = address.strip()
    if "://" in text:
        raise RayUnavailable(f"give the cluster's HOST:PORT (the GCS address printed by `ray start`), not {text!r}")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayUnavailable(f"not a Ray cluster address (HOST:PORT, or 'local'): {text!r}")
    return host, int(port)


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise RayUnavailable unless something accepts a TCP connection at `address`."""
    host, port = split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: {reason}") from None


def _quiet_env() -> None:
    for name, value in RAY_ENV.items():
        os.environ.setdefault(name, value)


def token_auth_env() -> dict[str, str]:
    """Token authentication for a cluster we start: the caller's RAY_AUTH_TOKEN, or a fresh random token.

    Ray listens on the machine's network address (it refuses to bind a head node to loopback), so a cluster we
    start takes only drivers and workers that hold its token. A token passed in the environment also keeps Ray from
    writing one to ~/.ray/auth_token.
    """
    return {AUTH_MODE: "token", AUTH_TOKEN: os.environ.get(AUTH_TOKEN) or secrets.token_hex(32)}


def _reload_auth_settings() -> None:
    """Make Ray re-read RAY_AUTH_MODE/RAY_AUTH_TOKEN: it caches both on first use, so a process that imported Ray
    before the variables were set (a test run, a program embedding takeback) would otherwise connect without them.

    Ray's own ``ray.init`` refreshes the same caches this way; on a Ray without token authentication there is
    nothing to refresh."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    _reload_auth_settings()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def connect(
    address: str, *, num_cpus: int | None = None, object_store_mb: int = DEFAULT_OBJECT_STORE_MB
) -> Iterator[int]:
    """Join the cluster at `address` (or start a private one for ``local``) for the duration; yields its CPU count.

    A cluster with token authentication is joined with its token in RAY_AUTH_TOKEN (or ~/.ray/auth_token with
    RAY_AUTH_MODE=token), as Ray documents. When this process is already connected (a program embedding takeback),
    that connection is used and left open.
    """
    ray = require_ray()
    _quiet_env()
    if ray.is_initialized():
        yield _cpus(ray)
        return
    temp_dir = None
    common = {"log_to_driver": False, "logging_level": "WARNING"}
    if address == LOCAL:
        auth = token_auth_env()
        # Ray puts Unix socket paths under its temp dir; they must stay under ~100 characters.
        temp_dir = tempfile.mkdtemp(prefix="tb-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
    else:
        auth = {AUTH_MODE: "token"} if os.environ.get(AUTH_TOKEN) and not os.environ.get(AUTH_MODE) else {}
        probe(address)
    with _environ(auth):
        try:
            if temp_dir is not None:
                ray.init(
                    address="local",
                    num_cpus=num_cpus or os.cpu_count() or 1,
                    object_store_memory=object_store_mb * 2**20,
                    include_dashboard=False,
                    _temp_dir=temp_dir,
                    **common,
                )
            else:
                ray.init(address=address.strip(), **common)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)
            raise RayUnavailable(f"cannot join the Ray cluster at {address}: {exc}") from None
        try:
            yield _cpus(ray)
        finally:
            ray.shutdown()
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)


def _cpus(ray: ModuleType) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# --- a head node in a subprocess (tests, benchmarks) -----------------------------------------------------------------


@dataclass
class HeadNode:
    """A ``ray start --head --block`` process; `address` is its GCS address (HOST:PORT).

    The node requires token authentication; `auth` holds the RAY_AUTH_MODE/RAY_AUTH_TOKEN variables a driver needs.
    While the node runs they are also set in this process's environment, so `connect(head.address)` here just works
    (and a `takeback` subprocess started from here inherits them); `stop` restores the previous values.
    """

    process: subprocess.Popen[str]
    address: str
    temp_dir: Path
    auth: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    _saved: dict[str, str | None] = field(default_factory=dict)

    def _export_auth(self) -> None:
        self._saved = {name: os.environ.get(name) for name in self.auth}
        os.environ.update(self.auth)

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM the `ray start` process: Ray drains and stops that node's processes, then it exits."""
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved = {}
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> HeadNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: `ray start --block` prints this after it has written the cluster's address file.
_READY = "block forever"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_head(num_cpus: int, *, object_store_mb: int = DEFAULT_OBJECT_STORE_MB, timeout_s: float = 120.0) -> HeadNode:
    """Start a Ray head node on this machine in its own temp dir and wait until it accepts drivers.

    Every port Ray would otherwise take at a fixed number (dashboard, dashboard agent) is a free one, so two
    clusters on one machine (a test run and a benchmark) do not collide.
    """
    _quiet_env()
    temp_dir = Path(tempfile.mkdtemp(prefix="tb-ray-", dir="/tmp" if os.path.isdir("/tmp") else None))
    ray_cli = Path(sys.executable).with_name("ray")
    command = [
        str(ray_cli) if ray_cli.exists() else "ray",
        "start",
        "--head",
        "--block",
        "--port=0",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--include-dashboard=false",
        f"--dashboard-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--object-store-memory={object_store_mb * 2**20}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
    ]
    auth = token_auth_env()
    env = dict(os.environ, **RAY_ENV, **auth, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)
    head = HeadNode(process, "", temp_dir, auth)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            head.output.append(line)
            if _READY in line:
                ready.set()
        ready.set()  # the process ended: let the waiter see it

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout_s) or not any(_READY in line for line in head.output):
        head.stop()
        raise RayUnavailable(f"ray start did not come up within {timeout_s:.0f} s:\n{''.join(head.output)[-2000:]}")
    address_file = temp_dir / "ray_current_cluster"
    try:
        head.address = address_file.read_text().strip()
    except OSError:
        head.stop()
        raise RayUnavailable(f"ray start wrote no {address_file}") from None
    head._export_auth()
    return head
