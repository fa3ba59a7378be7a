"""Media hashing on other cores: worker processes fed in batches, so a crawl's event loop only moves bytes.

Why processes, and why not ``ProcessPoolExecutor``: hashing a thumbnail is ~0.4 ms of mostly Python-level work
(decode, PDQ's small matrix products), which holds the GIL, so threads leave the event loop starved and one core
idle.  An executor pays its own pickling and feeder-thread costs per task (as much as the hash for a thumbnail),
treats one crashed worker as a broken pool, and cannot give its workers a one-thread BLAS.  Here each worker is a
``takeback.discover.hash_worker`` subprocess on pipes:

* **Batches.**  Bodies queue up while a worker is busy and go as one batch (up to ``max_batch``) when it has room;
  each worker holds at most ``depth`` batches so it never waits for the next one.  Under light load a batch is a
  single body and nothing waits for a batch to fill.
* **Crashes and hangs are one file's problem.**  A worker that dies or overruns its deadline is killed and
  restarted; the bodies of its lost batches are retried one at a time, so only the body that kills a worker again
  (or hangs it again) comes back as a ``HashFailure`` ("internal"), and the crawl goes on.
* **Same hashes.**  Workers run ``media_hash.hash_media``, the in-process code, and answer in JSON
  (``hash_wire``); nothing is written to disk and nothing outlives its batch.
* **The loop first.**  Workers run at a lower CPU priority (``niceness``): the single-threaded event loop that
  fetches, parses and feeds them is the crawl's critical path, and on two cores an equal share would leave it
  waiting behind its own workers (measured: the loop needed ~8 of the 19 CPU-seconds of a benchmark crawl).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from takeback.discover import hash_wire
from takeback.discover.media_hash import HashFailure, MediaHashes
from takeback.media.images import DEFAULT_MAX_PIXELS
from takeback.signals import exact
from takeback.signals.variants import CRAWL_QUERY_MODES, Mode, modes_text

_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(eq=False, slots=True)
class _Item:
    body: bytes
    future: asyncio.Future[MediaHashes | HashFailure]
    retried: bool = False


@dataclass(eq=False, slots=True)
class _Batch:
    items: list[_Item]
    generation: int


@dataclass(eq=False)
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    generation: int = 0
    inflight: deque[_Batch] = field(default_factory=deque)
    room: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    sent: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set while a process is running (cleared during a restart); ``retired`` once out of restarts.
    up: asyncio.Event = field(default_factory=asyncio.Event)
    retired: bool = False


class HashPool:
    """``await pool.hash(body)`` hashes in a worker process; use as an async context manager."""

    def __init__(
        self,
        processes: int = 2,
        *,
        max_batch: int = 32,
        depth: int = 2,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        batch_timeout_s: float = 30.0,
        item_timeout_s: float = 5.0,
        max_restarts: int = 50,
        query_modes: frozenset[Mode] = CRAWL_QUERY_MODES,
        niceness: int = 10,
        worker: Sequence[str] | None = None,
    ) -> None:
        """``worker`` replaces the worker's arguments after the interpreter (tests run stand-in workers)."""
        self.processes = max(1, processes)
        self.max_batch = max(1, max_batch)
        self.depth = max(1, depth)
        self.max_pixels = max_pixels
        self.batch_timeout_s = batch_timeout_s
        self.item_timeout_s = item_timeout_s
        self.max_restarts = max_restarts
        self.query_modes = query_modes
        modes = modes_text(query_modes)
        self.worker = (
            tuple(worker)
            if worker
            else ("-m", "takeback.discover.hash_worker", str(max_pixels), modes, str(max(0, niceness)))
        )
        self.restarts = 0
        self._queue: deque[_Item] = deque()
        self._retry: deque[_Item] = deque()
        self._ready = asyncio.Event()
        self._workers: list[_Worker] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def __aenter__(self) -> HashPool:
        for i in range(self.processes):
            worker = _Worker(i, room=asyncio.Semaphore(self.depth))
            await self._start(worker)
            self._workers.append(worker)
            self._tasks.append(asyncio.create_task(self._send_loop(worker)))
            self._tasks.append(asyncio.create_task(self._read_loop(worker)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in self._workers:
            await self._stop(worker)
        for item in (*self._queue, *self._retry, *(i for w in self._workers for b in w.inflight for i in b.items)):
            if not item.future.done():
                item.future.cancel()

    async def hash(self, body: bytes) -> MediaHashes | HashFailure:
        """The hashes of ``body`` (never raises for bad media: a failure is a ``HashFailure``)."""
        if self._closed or not self._workers:
            raise RuntimeError("use the HashPool as an async context manager")
        if all(w.retired for w in self._workers):
            return _crashed(body)
        item = _Item(body, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._ready.set()
        return await item.future

    # --- workers ---------------------------------------------------------------------------------------------------

    async def _start(self, worker: _Worker) -> None:
        env = {**os.environ, **_ONE_THREAD}
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        worker.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *self.worker,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        worker.generation += 1
        worker.up.set()

    async def _stop(self, worker: _Worker) -> None:
        process = worker.process
        if process is None:
            return
        worker.process = None
        if process.returncode is None:
            with contextlib.suppress(Exception):
                assert process.stdin is not None
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 2.0)
            except TimeoutError:
                process.kill()
                await process.wait()

    def _take(self) -> list[_Item] | None:
        """The next batch: a retried body alone, else this worker's share of the queued bodies (at most max_batch):
        a crawl's media tasks wait for their hashes, so one worker taking the whole queue would leave the other
        idle until that batch is done."""
        while self._retry:
            item = self._retry.popleft()
            if not item.future.done():
                return [item]
        share = min(self.max_batch, -(-len(self._queue) // self.processes))
        batch: list[_Item] = []
        while self._queue and len(batch) < share:
            item = self._queue.popleft()
            if not item.future.done():
                batch.append(item)
        return batch or None

    async def _send_loop(self, worker: _Worker) -> None:
        while True:
            await worker.room.acquire()
            await worker.up.wait()
            if worker.retired:
                return
            items = self._take()
            while items is None:
                self._ready.clear()
                await self._ready.wait()
                items = self._take()
            if self._queue or self._retry:
                self._ready.set()  # more work for the other workers
            process = worker.process
            batch = _Batch(items, worker.generation)
            worker.inflight.append(batch)
            worker.sent.set()
            if process is not None and process.stdin is not None:
                try:
                    process.stdin.write(hash_wire.encode_batch([i.body for i in items]))
                    await process.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the reader sees the worker gone and recovers the batch

    async def _read_loop(self, worker: _Worker) -> None:
        while True:
            while not worker.inflight:
                worker.sent.clear()
                await worker.sent.wait()
            batch = worker.inflight[0]
            results: list[MediaHashes | HashFailure] | None = None
            if batch.generation == worker.generation:
                results = await self._answer(worker, batch)
            worker.inflight.popleft()
            worker.room.release()
            if results is None:
                await self._recover(worker, batch)
                continue
            for item, result in zip(batch.items, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    async def _answer(self, worker: _Worker, batch: _Batch) -> list[MediaHashes | HashFailure] | None:
        """The worker's answer to its oldest batch, or None when it died, hung or sent garbage."""
        process = worker.process
        if process is None or process.stdout is None:
            return None
        deadline = self.batch_timeout_s + self.item_timeout_s * len(batch.items)
        try:
            async with asyncio.timeout(deadline):
                size = hash_wire.unpack_u32(await process.stdout.readexactly(4))
                if size > hash_wire.MAX_ANSWER_BYTES:
                    return None
                payload = await process.stdout.readexactly(size)
            return hash_wire.decode_answer(payload, len(batch.items))
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, hash_wire.WireError):
            return None

    async def _recover(self, worker: _Worker, lost: _Batch) -> None:
        """A worker failed while holding ``lost``.  The oldest unanswered batch of a generation is the one it failed
        on: restart the worker, retry those bodies one at a time, and fail a body that fails alone.  Later batches of
        that generation were only queued behind it: they go back unchanged."""
        if lost.generation != worker.generation:
            dead = all(w.retired for w in self._workers)
            for item in lost.items:
                if item.future.done():
                    continue
                if dead:
                    item.future.set_result(_crashed(item.body))
                else:
                    (self._retry if item.retried else self._queue).appendleft(item)
            self._ready.set()
            return
        worker.up.clear()
        if worker.process is not None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await self._stop(worker)
        self.restarts += 1
        if self.restarts <= self.max_restarts:
            await self._start(worker)
        else:  # out of restarts: this worker stops; what it still holds is requeued for the others
            worker.retired = True
            worker.generation += 1
            worker.up.set()
        for item in lost.items:
            if item.future.done():
                continue
            if item.retried or worker.retired:
                item.future.set_result(_crashed(item.body))
            else:
                item.retried = True
                self._retry.append(item)
        if all(w.retired for w in self._workers):
            for item in (*self._queue, *self._retry):
                if not item.future.done():
                    item.future.set_result(_crashed(item.body))
            self._queue.clear()
            self._retry.clear()
        self._ready.set()


def _crashed(body: bytes) -> HashFailure:
    digests = exact.digest_bytes(body)
    return HashFailure(
        "internal", "the hashing worker died or hung on these bytes", digests.size, digests.md5, digests.sha256
    )
