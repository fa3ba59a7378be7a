"""End-to-end match requests over loopback against `takeback serve`: requests/s and p50/p99 latency.

What runs:

* the server: ``takeback serve --host 127.0.0.1 --port <free> --data-dir <temp> --no-access-log`` in its own
  process (SQLite in a fresh temporary data directory, uvicorn's defaults otherwise);
* the bank: --signals uniform random PDQ hashes, loaded through the API (``POST /v1/banks/{bank}/signals`` in
  chunks of 10,000) with the admin key printed by ``serve``; the upload rate is printed too;
* the client: a ``match``-scope API client granted only that bank, with a rate limit high enough never to throttle
  (the bank-isolation and rate-limit checks still run on every request);
* the queries: half are stored hashes with 0-31 random bits flipped (each must find its stored hash), half are
  uniform random hashes (misses). Before timing, one batch of them is checked for correctness over HTTP;
* the load generator: a separate process (``multiprocessing``, spawn) running an asyncio loop over N keep-alive
  HTTP/1.1 connections on raw sockets (no HTTP library in the way, so the figures are the server's). Each
  connection sends one request, waits for the whole answer, records the latency, sends the next (closed loop).
  Every answer's status is checked (any non-200 is counted and reported).

Phases: single lookups (``POST /v1/match``) at each --single-concurrency, then batches of --batch queries
(``POST /v1/match/batch``) at each --batch-concurrency; each phase has an untimed --warmup, then --seconds timed.
Signals/s = requests/s x queries per request.

Targets (issue #3): >= 2,000 signals/s single, >= 50,000 signals/s batched, p99 <= 50 ms.

Run:

    source .venv/bin/activate
    python benchmarks/match_http.py                       # 100,000 hashes, 10 s per phase
    python benchmarks/match_http.py --signals 1000000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from _common import machine_lines, timed

KEY_PATTERN = re.compile(r"\btbk_[A-Za-z0-9_\-]+")
UPLOAD_CHUNK = 10_000
THRESHOLD = 31


# --- the server ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`takeback serve` in a subprocess; its admin key is read from its output."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, TAKEBACK_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        command = [sys.executable, "-c", "from takeback.cli import run; run()", "serve", "--host", "127.0.0.1",
                   "--port", str(port), "--data-dir", str(data_dir), "--no-access-log"]  # fmt: skip
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.output: list[str] = []
        self.key_found = threading.Event()
        self.key: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            match = KEY_PATTERN.search(line)
            if match and self.key is None:
                self.key = match.group(0)
                self.key_found.set()

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("takeback serve exited:\n" + "".join(self.output[-30:]))
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1.0).status_code == 200 and self.key_found.is_set():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise SystemExit("takeback serve did not become ready:\n" + "".join(self.output[-30:]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- data -------------------------------------------------------------------------------------------------------


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def to_hex(rows: np.ndarray) -> list[str]:
    return [bytes(r).hex() for r in rows]


def planted(rng: np.random.Generator, stored: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n stored hashes with 0..31 distinct random bits flipped each; (queries, index of the source hash)."""
    sources = rng.integers(0, len(stored), size=n)
    bits = np.unpackbits(stored[sources], axis=1)
    for row, flips in zip(bits, rng.integers(0, THRESHOLD + 1, size=n), strict=True):
        positions = rng.choice(256, size=int(flips), replace=False)
        row[positions] ^= 1
    return np.packbits(bits, axis=1), sources


def make_queries(rng: np.random.Generator, stored: np.ndarray, n: int) -> tuple[list[str], list[int | None]]:
    """Half planted near-duplicates, half random misses, shuffled; (hex values, expected source index or None)."""
    near, sources = planted(rng, stored, n // 2)
    misses = random_hashes(rng, n - n // 2)
    values = to_hex(near) + to_hex(misses)
    expected: list[int | None] = [int(s) for s in sources] + [None] * len(misses)
    order = rng.permutation(n)
    return [values[i] for i in order], [expected[i] for i in order]


# --- the load generator (separate process) ------------------------------------------------------------------------


@dataclass
class PhaseResult:
    requests: int
    errors: int
    statuses: dict[int, int]
    seconds: float
    latencies_ms: list[float]


def _request_bytes(port: int, key: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    port: int, requests: list[bytes], offset: int, warm_until: float, stop_at: float, out: PhaseResult
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    clock = time.perf_counter  # the event loop's clock may tick in whole milliseconds (uvloop)
    try:
        while True:
            started = clock()
            if started >= stop_at:
                return
            writer.write(requests[i % len(requests)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = None
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError("response without Content-Length (the generator does not read chunked bodies)")
            await reader.readexactly(length)
            done = clock()
            if started >= warm_until:
                out.requests += 1
                out.latencies_ms.append((done - started) * 1000.0)
                out.statuses[status] = out.statuses.get(status, 0) + 1
                if status != 200:
                    out.errors += 1
    finally:
        writer.close()


async def _run_phase(port: int, requests: list[bytes], concurrency: int, warmup: float, seconds: float) -> PhaseResult:
    warm_until = time.perf_counter() + warmup
    stop_at = warm_until + seconds
    result = PhaseResult(0, 0, {}, seconds, [])
    step = max(1, len(requests) // concurrency)
    await asyncio.gather(
        *(_connection(port, requests, c * step, warm_until, stop_at, result) for c in range(concurrency))
    )
    return result


def generator_main(
    port: int, key: str, path: str, bodies: list[bytes], concurrency: int, warmup: float, seconds: float, queue
) -> None:
    """Entry point of the load-generator process; puts one PhaseResult on `queue`."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio is fine, a bit slower
        pass
    requests = [_request_bytes(port, key, path, b) for b in bodies]
    queue.put(asyncio.run(_run_phase(port, requests, concurrency, warmup, seconds)))


def run_phase(
    port: int, key: str, path: str, bodies: list[bytes], concurrency: int, warmup: float, seconds: float
) -> PhaseResult:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(
        target=generator_main, args=(port, key, path, bodies, concurrency, warmup, seconds, queue), daemon=True
    )
    process.start()
    result = queue.get(timeout=warmup + seconds + 120)
    process.join(30)
    return result


# --- main -------------------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(label: str, per_request: int, concurrency: int, r: PhaseResult) -> dict[str, float]:
    rps = r.requests / r.seconds
    row = {
        "rps": rps,
        "signals_per_s": rps * per_request,
        "p50": percentile(r.latencies_ms, 50),
        "p99": percentile(r.latencies_ms, 99),
        "mean": statistics.fmean(r.latencies_ms) if r.latencies_ms else float("nan"),
    }
    errors = f", NON-200: {r.errors} {r.statuses}" if r.errors else ""
    print(
        f"| {label} | {concurrency} | {r.requests} | {rps:,.0f} | {row['signals_per_s']:,.0f} | {row['p50']:.2f} | "
        f"{row['p99']:.2f} | {row['mean']:.2f} |{errors}",
        flush=True,
    )
    return row


def check_correctness(client: httpx.Client, values: list[str], expected: list[int | None], ids: list[int]) -> str:
    """One batch over HTTP: every planted query finds its stored hash; misses find nothing."""
    body = {"queries": [{"signal_type": "pdq", "value": v} for v in values]}
    response = client.post("/v1/match/batch", json=body)
    response.raise_for_status()
    results = response.json()["results"]
    found = missed = false_hits = 0
    for result, source in zip(results, expected, strict=True):
        got = {m["signal_id"] for m in result["matches"]}
        if source is None:
            false_hits += bool(got)
        elif ids[source] in got:
            found += 1
        else:
            missed += 1
    planted_n = sum(1 for e in expected if e is not None)
    return f"planted found {found}/{planted_n}, planted missed {missed}, random queries with a hit {false_hits}"


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=100_000, help="random PDQ hashes in the bank")
    parser.add_argument("--batch", type=int, default=1000, help="queries per batched request")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds at the start of each phase")
    parser.add_argument("--single-concurrency", default="1,4,16", help="connections for single lookups")
    parser.add_argument("--batch-concurrency", default="1,2,4", help="connections for batched lookups")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()
    single_levels = [int(x) for x in args.single_concurrency.split(",") if x]
    batch_levels = [int(x) for x in args.batch_concurrency.split(",") if x]

    for line in machine_lines(["takeback", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic",
                               "sqlalchemy", "numpy", "numba"]):  # fmt: skip
        print(line)

    print(f"load average before the run: {_load()}")
    rng = np.random.default_rng(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="takeback-bench-http-"))
    port = free_port()
    print(f"\nserver: takeback serve --host 127.0.0.1 --port {port} --data-dir {data_dir} --no-access-log", flush=True)
    server = Server(data_dir, port)
    try:
        (_, startup) = timed(server.wait_ready)
        print(f"server ready in {startup:.2f} s (fresh SQLite database)")
        assert server.key is not None
        admin = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}, timeout=300, trust_env=False
        )
        admin.post("/v1/banks", json={"name": "bench", "description": "random PDQ hashes"}).raise_for_status()
        stored = random_hashes(rng, args.signals)
        hexes = to_hex(stored)
        ids: list[int] = []

        def upload() -> None:
            for start in range(0, len(hexes), UPLOAD_CHUNK):
                chunk = [{"signal_type": "pdq", "value": v} for v in hexes[start : start + UPLOAD_CHUNK]]
                response = admin.post("/v1/banks/bench/signals", json={"signals": chunk})
                response.raise_for_status()
                ids.extend(response.json()["ids"])

        _, upload_s = timed(upload)
        print(f"loaded {len(ids):,} PDQ hashes via the API in {upload_s:.1f} s ({len(ids) / upload_s:,.0f} signals/s)")
        if len(ids) != len(hexes):
            raise SystemExit(f"expected {len(hexes)} ids, got {len(ids)}")
        created = admin.post(
            "/v1/clients",
            json={
                "name": "bench-platform",
                "scopes": ["match"],
                "banks": ["bench"],
                "rate_limit_per_minute": 10_000_000,
            },
        )
        created.raise_for_status()
        key = created.json()["key"]
        health = admin.get("/v1/health").json()
        print(f"health: {health}")

        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        values, expected = make_queries(rng, stored, args.batch)
        print("correctness (one batch, match-scope client):", check_correctness(client, values, expected, ids))

        pool_values, _ = make_queries(rng, stored, 20_000)
        single_bodies = [json.dumps({"signal_type": "pdq", "value": v}).encode() for v in pool_values]
        batch_bodies = []
        for _ in range(8):
            chunk, _ = make_queries(rng, stored, args.batch)
            batch_bodies.append(json.dumps({"queries": [{"signal_type": "pdq", "value": v} for v in chunk]}).encode())
        print(
            f"\nload generator: separate process, asyncio over raw keep-alive HTTP/1.1 connections; "
            f"{args.warmup:g} s untimed warm-up then {args.seconds:g} s timed per phase; "
            f"queries: half planted (0-{THRESHOLD} bits from a stored hash), half random\n"
        )
        print("| lookup | connections | requests | requests/s | signals/s | p50 ms | p99 ms | mean ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        rows: list[tuple[str, int, dict[str, float]]] = []
        for c in single_levels:
            r = run_phase(port, key, "/v1/match", single_bodies, c, args.warmup, args.seconds)
            rows.append(("single", c, report("single", 1, c, r)))
        for c in batch_levels:
            r = run_phase(port, key, "/v1/match/batch", batch_bodies, c, args.warmup, args.seconds)
            rows.append((f"batch of {args.batch}", c, report(f"batch of {args.batch}", args.batch, c, r)))

        print(f"\nload average after the run: {_load()} (the server and the generator share this machine's cores)")
        print("targets: single >= 2,000 signals/s, batched >= 50,000 signals/s, p99 <= 50 ms")
        for kind, target in (("single", 2000), (f"batch of {args.batch}", 50_000)):
            candidates = [(c, row) for k, c, row in rows if k == kind and row["p99"] <= 50]
            if candidates:
                c, best = max(candidates, key=lambda item: item[1]["signals_per_s"])
                verdict = "met" if best["signals_per_s"] >= target else "NOT met"
                print(
                    f"  {kind}: best with p99 <= 50 ms: {best['signals_per_s']:,.0f} signals/s at {c} connections "
                    f"(p99 {best['p99']:.1f} ms) -> {verdict}"
                )
            else:
                print(f"  {kind}: no phase had p99 <= 50 ms -> NOT met")
        return 0
    finally:
        server.stop()
        if args.keep:
            print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
