"""Petition signing under a burst, over loopback against `takeback serve`: signatures/s, p50/p99 latency, and the
acknowledged-but-missing count after kill -9 mid-run (must be 0).

What runs:

* the server: ``takeback serve --host 127.0.0.1 --port <free> --data-dir <temp> --no-access-log`` in its own
  process; SQLite (WAL, synchronous=FULL: a signature is acknowledged only after its group commit is fsync'd) or,
  with ``--postgres URL``, PostgreSQL (acknowledged after COMMIT).  Settings by environment: a fixed
  TAKEBACK_PETITION_SECRET, verification mail off (no SMTP in the loop), velocity limits off (all load comes from
  127.0.0.1; the limiter itself still runs on every request), proof-of-work difficulty --difficulty;
* the petition: created in the database before the server starts;
* the proofs-of-work: precomputed by the generator — it holds the server secret, issues challenges exactly as the
  server would and solves them (the server still verifies each one: HMAC, expiry, SHA-256, single use);
* the load generator: a separate process (spawn) with an asyncio loop over N keep-alive HTTP/1.1 connections on raw
  sockets, closed loop (send, read the whole answer, record the latency, send the next).  Every answer's status is
  checked; a 202 is an acknowledgement and its e-mail address is recorded.

Phases: a timed burst (--seconds after --warmup) at --concurrency; then a crash run: a fresh burst, kill -9 of the
server after --kill-after seconds, and a check of the database: every acknowledged signature must be there, and the
maintained counters must equal a recount of the rows.

Targets (issue #6): SQLite >= 3,000 signatures/s sustained with p99 <= 100 ms; PostgreSQL >= 2,000/s.

Run:

    source /work/venv/bin/activate
    python benchmarks/petition.py                          # SQLite, 10 s, 64 connections
    python benchmarks/petition.py --postgres postgresql://user@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from _common import machine_lines

SECRET = "benchmark-secret-" + "0" * 32
SLUG = "burst"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-c", "from takeback.cli import run; run()", "serve", "--host", "127.0.0.1",
                   "--port", str(port), "--data-dir", str(data_dir), "--no-access-log"]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("takeback serve exited:\n" + "".join(self.output[-30:]))
            try:
                if httpx.get(f"{self.url}/v1/petitions/{SLUG}/counts", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise SystemExit("takeback serve did not become ready:\n" + "".join(self.output[-30:]))

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()


def server_env(data_dir: Path, database_url: str | None, difficulty: int) -> dict[str, str]:
    env = dict(
        os.environ,
        PYTHONUNBUFFERED="1",
        TAKEBACK_DATA_DIR=str(data_dir),
        TAKEBACK_PETITION_SECRET=SECRET,
        TAKEBACK_PETITION_SEND_MAIL="false",
        TAKEBACK_PETITION_IP_LIMIT_PER_MINUTE="0",
        TAKEBACK_PETITION_NETWORK_LIMIT_PER_MINUTE="0",
        TAKEBACK_PETITION_POW_MAX_NUMBER=str(difficulty),
        TAKEBACK_PETITION_POW_EXPIRY_S="3600",
    )
    env.pop("TAKEBACK_DATABASE_URL", None)
    if database_url:
        env["TAKEBACK_DATABASE_URL"] = database_url
    return env


def prepare_database(data_dir: Path, database_url: str | None) -> int:
    """Migrate, create a case and the petition (goal 2 million); returns the petition id."""
    from takeback.config import Settings
    from takeback.store import banks, petitions
    from takeback.store.db import open_store

    settings = Settings(data_dir=data_dir, database_url=database_url or "")
    engine, sessions = open_store(settings)
    try:
        with sessions.begin() as session:
            existing = petitions.get_petition_by_slug(session, SLUG)
            if existing is not None:
                return existing.id
            case = banks.create_case(session, "benchmark")
            return petitions.create_petition(
                session, case.id, SLUG, "Burst", "A viral burst.", "Everyone", 2_000_000
            ).id
    finally:
        engine.dispose()


# --- requests (precomputed) ---------------------------------------------------------------------------------------


def _solve_chunk(args: tuple[int, int, int, int, str]) -> list[bytes]:
    from takeback.petition import pow as pow_mod
    from takeback.petition.service import derive_key

    start, count, petition_id, difficulty, run = args
    key = derive_key(SECRET, "pow")
    bodies = []
    countries = ("FR", "DE", "US", "BR", "IN", "GB", "ES", "IT", "NG", "JP")
    for i in range(start, start + count):
        challenge = pow_mod.create_challenge(key, petition_id, max_number=difficulty, expires_s=3600)
        number = pow_mod.solve(challenge)
        body = {
            "name": f"Signer {i}",
            "email": f"{run}-{i}@example.org",
            "country": countries[i % len(countries)],
            "postcode": f"{10000 + i % 5000}",
            "consent_public": i % 2 == 0,
            "pow": pow_mod.encode_solution(challenge, number),
            "idempotency_key": f"{run}-{i}",
        }
        bodies.append(json.dumps(body).encode())
    return bodies


def make_bodies(n: int, petition_id: int, difficulty: int, run: str) -> list[bytes]:
    ctx = multiprocessing.get_context("spawn")
    workers = max(1, os.cpu_count() or 1)
    step = (n + workers - 1) // workers
    chunks = [(s, min(step, n - s), petition_id, difficulty, run) for s in range(0, n, step)]
    with ctx.Pool(workers) as pool:
        return [b for part in pool.map(_solve_chunk, chunks) for b in part]


# --- the load generator (separate process) ------------------------------------------------------------------------


@dataclass
class PhaseResult:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # body indexes answered 202
    connection_errors: int = 0


def _request(port: int, body: bytes) -> bytes:
    head = (
        f"POST /v1/petitions/{SLUG}/signatures HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    port: int, requests: list[bytes], next_index: list[int], warm_until: float, stop_at: float, out: PhaseResult
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        out.connection_errors += 1
        return
    clock = time.perf_counter
    try:
        while True:
            started = clock()
            if started >= stop_at or next_index[0] >= len(requests):
                return
            i = next_index[0]
            next_index[0] += 1
            writer.write(requests[i])
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            done = clock()
            if status == 202:
                out.acked.append(i)  # acknowledged: must survive anything from now on
            if started >= warm_until:
                out.requests += 1
                out.latencies_ms.append((done - started) * 1000.0)
                out.statuses[status] = out.statuses.get(status, 0) + 1
    except (OSError, asyncio.IncompleteReadError):
        out.connection_errors += 1  # the server was killed mid-request: that request was never acknowledged
    finally:
        writer.close()


async def _run_phase(port: int, bodies: list[bytes], concurrency: int, warmup: float, seconds: float) -> PhaseResult:
    requests = [_request(port, b) for b in bodies]
    warm_until = time.perf_counter() + warmup
    stop_at = warm_until + seconds
    result = PhaseResult(seconds=seconds)
    next_index = [0]
    began = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, requests, next_index, warm_until, stop_at, result) for _ in range(concurrency))
    )
    result.seconds = max(1e-9, min(seconds, time.perf_counter() - max(began, warm_until)))
    return result


def generator_main(port: int, bodies: list[bytes], concurrency: int, warmup: float, seconds: float, queue) -> None:  # type: ignore[no-untyped-def]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    queue.put(asyncio.run(_run_phase(port, bodies, concurrency, warmup, seconds)))


def start_generator(port: int, bodies: list[bytes], concurrency: int, warmup: float, seconds: float):  # type: ignore[no-untyped-def]
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=generator_main, args=(port, bodies, concurrency, warmup, seconds, queue), daemon=True)
    process.start()
    return process, queue


# --- checks -------------------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def check_database(
    data_dir: Path, database_url: str | None, petition_id: int, emails: list[str]
) -> tuple[int, bool, int]:
    """(acknowledged signatures missing, counters == recount, rows) read straight from the database."""
    from sqlalchemy import select

    from takeback.config import Settings
    from takeback.petition.emails import email_key, normalise_email
    from takeback.store import petitions
    from takeback.store.db import open_store
    from takeback.store.models_petition import Signature

    settings = Settings(data_dir=data_dir, database_url=database_url or "")
    engine, sessions = open_store(settings)
    try:
        with sessions.begin() as session:
            stored = set(
                session.execute(select(Signature.email_key).where(Signature.petition_id == petition_id)).scalars()
            )
            exact = petitions.counter_table(session, petition_id) == petitions.recount(session, petition_id)
        missing = sum(1 for e in emails if email_key(normalise_email(e)) not in stored)
        return missing, exact, len(stored)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--difficulty", type=int, default=200, help="proof-of-work maxnumber (precomputed)")
    parser.add_argument("--signatures", type=int, default=0, help="bodies to precompute (default: enough)")
    parser.add_argument("--kill-after", type=float, default=3.0, help="seconds into the crash run before kill -9")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL instead of SQLite")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    for line in machine_lines(["takeback", "fastapi", "starlette", "uvicorn", "uvloop", "sqlalchemy", "psycopg"]):
        print(line)
    print(f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    data_dir = Path(tempfile.mkdtemp(prefix="takeback-bench-petition-"))
    backend = "PostgreSQL" if args.postgres else "SQLite (WAL, synchronous=FULL)"
    try:
        petition_id = prepare_database(data_dir, args.postgres)
        n = args.signatures or int(6000 * (args.seconds + args.warmup)) + 10_000
        began = time.perf_counter()
        bodies = make_bodies(n, petition_id, args.difficulty, "burst")
        crash_bodies = make_bodies(int(6000 * (args.kill_after + 5)), petition_id, args.difficulty, "crash")
        print(f"precomputed {len(bodies) + len(crash_bodies):,} signatures with solved proofs-of-work "
              f"(maxnumber {args.difficulty}) in {time.perf_counter() - began:.1f} s")  # fmt: skip
        port = free_port()
        env = server_env(data_dir, args.postgres, args.difficulty)
        print(f"\nserver ({backend}): takeback serve --host 127.0.0.1 --port {port} --data-dir {data_dir} "
              "--no-access-log", flush=True)  # fmt: skip
        server = Server(data_dir, port, env)
        server.wait_ready()

        process, queue = start_generator(port, bodies, args.concurrency, args.warmup, args.seconds)
        result: PhaseResult = queue.get(timeout=args.warmup + args.seconds + 300)
        process.join(30)
        rate = result.requests / result.seconds
        ok = result.statuses.get(202, 0)
        print("\n| backend | connections | signatures (timed) | signatures/s | p50 ms | p99 ms | non-202 |")
        print("|---|---|---|---|---|---|---|")
        others = {k: v for k, v in result.statuses.items() if k != 202}
        print(f"| {backend} | {args.concurrency} | {ok:,} | {rate:,.0f} | {percentile(result.latencies_ms, 50):.1f} "
              f"| {percentile(result.latencies_ms, 99):.1f} | {others or 0} |", flush=True)  # fmt: skip
        counts = httpx.get(f"{server.url}/v1/petitions/{SLUG}/counts").json()
        print(f"counts after the burst: {counts} (acknowledged: {len(result.acked):,})")

        # Crash run: kill -9 in the middle of a burst, then check every acknowledged signature.
        process, queue = start_generator(port, crash_bodies, args.concurrency, 0.0, args.kill_after + 60)
        time.sleep(args.kill_after)
        server.kill9()
        crash: PhaseResult = queue.get(timeout=120)
        process.join(30)
        acked = [json.loads(crash_bodies[i])["email"] for i in crash.acked]
        acked += [json.loads(bodies[i])["email"] for i in result.acked]
        missing, exact, rows = check_database(data_dir, args.postgres, petition_id, acked)
        print(f"\ncrash run: kill -9 after {args.kill_after:.1f} s; acknowledged before the kill: "
              f"{len(crash.acked):,} (+{len(result.acked):,} from the burst); connections cut: "
              f"{crash.connection_errors}")  # fmt: skip
        print(f"after restart: rows {rows:,}; acknowledged-but-missing: {missing}; counters equal to the rows: {exact}")
        server = Server(data_dir, port, env)
        server.wait_ready()
        counts = httpx.get(f"{server.url}/v1/petitions/{SLUG}/counts").json()
        server.stop()
        print(f"restarted server's count: {counts['pending'] + counts['verified']:,} (rows {rows:,})")
        return 0 if missing == 0 and exact and counts["pending"] + counts["verified"] == rows else 1
    finally:
        if args.keep:
            print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
