"""The single-machine backend: jobs run inside the ``takeback serve`` process, nothing else to install or run.

Its queue lives in memory: it is lost when the process stops.  That is safe because everything the scheduled
tasks do is derived from durable state in the store: "which notices are queued", "which findings are due for a
re-check" are queries, so after a crash the next scheduled run finds the same work again, and running a task twice
is harmless (jobs are idempotent, see ``effects``).  Webhook deliveries keep their own durable records and are sent
by the server's in-process dispatcher (``web.webhooks``), which resumes pending ones at start.

Schedules follow cron expressions like procrastinate's periodic tasks, except that a fresh process does not catch
up on a tick it missed while down: it starts at the next one (nothing is lost, the store says what is due).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from takeback.jobs.errors import NotRetryable, TaskUnavailable, UnknownJob
from takeback.jobs.spec import (
    JobContext,
    JobInfo,
    TaskSet,
    backoff_s,
    check_key,
    check_name,
    check_payload,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from takeback.config import Settings

log = logging.getLogger("takeback.jobs.local")

#: First half of the advisory-lock id of job keys (the second is the key's hash).
_LOCK_NAMESPACE = 0x6A6F6273  # "jobs"
#: Longest single wait for a key's advisory lock before checking whether the job is being stopped.
_LOCK_SLICE_MS = 500
#: Finished jobs remembered for ``list_jobs``.
HISTORY = 1000
#: Longest the worker loop sleeps without looking at the clock (schedules, delayed jobs).
MAX_WAIT_S = 30.0


@dataclass
class _Job:
    id: int
    task: str
    queue: str
    payload: dict[str, Any]
    key: str | None
    run_at: float
    status: str = "todo"
    attempts: int = 0
    error: str | None = None

    def info(self) -> JobInfo:
        return JobInfo(
            self.id,
            self.task,
            self.queue,
            self.status,
            self.key,
            dict(self.payload),
            self.attempts,
            datetime.fromtimestamp(self.run_at, UTC),
            self.error,
        )


class LocalBackend:
    name = "local"

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        tasks: TaskSet,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.tasks = tasks
        self.clock = clock
        self._jobs: dict[int, _Job] = {}
        self._ids = itertools.count(1)
        self._last_fire: dict[str, float] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None

    # --- requesting work -------------------------------------------------------------------------------------------
    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        queue: str | None = None,
        delay_s: float = 0.0,
    ) -> int | None:
        spec = self.tasks.get(task)
        body = check_payload(payload)
        key = check_key(key)
        queue = check_name("queue", queue or spec.queue)
        if key is not None and any(j.key == key and j.status == "todo" for j in self._jobs.values()):
            return None
        job = _Job(next(self._ids), task, queue, body, key, self.clock() + max(0.0, float(delay_s)))
        self._jobs[job.id] = job
        self._trim()
        if self._wake is not None:
            self._wake.set()
        return job.id

    async def tick(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        count = 0
        for schedule in self.tasks.schedules:
            last = self._last_fire.get(schedule.name)
            if last is None:  # a fresh process starts at the next tick (see the module doc)
                self._last_fire[schedule.name] = now
                continue
            fire = croniter(schedule.cron, datetime.fromtimestamp(last, UTC)).get_next(float)
            if fire > now:
                continue
            # Several missed ticks collapse into one run: the task looks at the store, not at the tick.
            self._last_fire[schedule.name] = now
            job_id = await self.enqueue(schedule.task, schedule.payload, key=f"schedule:{schedule.name}")
            count += job_id is not None
        return count

    def next_tick(self) -> float | None:
        """When the next schedule fires (epoch seconds), None without schedules or before the first tick."""
        times = [
            croniter(s.cron, datetime.fromtimestamp(self._last_fire[s.name], UTC)).get_next(float)
            for s in self.tasks.schedules
            if s.name in self._last_fire
        ]
        return min(times, default=None)

    # --- looking at it -----------------------------------------------------------------------------------------------
    async def list_jobs(
        self, *, status: str | None = None, queue: str | None = None, task: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        jobs = [
            j.info()
            for j in sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)
            if (status is None or j.status == status)
            and (queue is None or j.queue == queue)
            and (task is None or j.task == task)
        ]
        return jobs[: max(0, limit)]

    async def retry(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(job_id)
        if job.status != "failed":
            raise NotRetryable(job_id, job.status)
        job.status, job.run_at, job.error = "todo", self.clock(), None
        if self._wake is not None:
            self._wake.set()

    # --- running it --------------------------------------------------------------------------------------------------
    def _due(self, now: float, queues: Sequence[str] | None) -> list[_Job]:
        """Waiting jobs whose time has come, oldest first, leaving out keys that are running right now."""
        running = {j.key for j in self._jobs.values() if j.status == "doing" and j.key is not None}
        due = [
            j
            for j in self._jobs.values()
            if j.status == "todo" and j.run_at <= now and (not queues or j.queue in queues) and j.key not in running
        ]
        return sorted(due, key=lambda j: (j.run_at, j.id))

    async def run_due(self, now: float | None = None, *, queues: Sequence[str] | None = None) -> int:
        """Run, one after another, every job due at ``now`` — including follow-ups they enqueue without delay —
        until none is left; how many ran.  For tests and ``takeback jobs schedule`` (no worker loop needed)."""
        ran = 0
        while True:
            due = self._due(self.clock() if now is None else now, queues)
            if not due:
                return ran
            await self._run(due[0])
            ran += 1

    async def run_worker(
        self, *, queues: Sequence[str] | None = None, concurrency: int = 1, stop: asyncio.Event | None = None
    ) -> None:
        stop = stop or asyncio.Event()
        self._wake = asyncio.Event()
        slots = asyncio.Semaphore(max(1, concurrency))
        try:
            while not stop.is_set():
                self._wake.clear()
                now = self.clock()
                try:
                    await self.tick(now)
                except Exception:
                    log.exception("scheduling failed")
                for job in self._due(now, queues):
                    if slots.locked():
                        break
                    if job.status != "todo":
                        continue
                    await slots.acquire()
                    job.status = "doing"  # claimed before the task starts, so the next pass skips it
                    task = asyncio.create_task(self._run(job), name=f"takeback-job-{job.id}")
                    self._running.add(task)

                    def done(t: asyncio.Task[None]) -> None:
                        self._running.discard(t)
                        slots.release()
                        if self._wake is not None:
                            self._wake.set()

                    task.add_done_callback(done)
                wait = self._wait_s(self.clock(), queues)
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                try:
                    await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
        finally:
            running = list(self._running)
            for task in running:
                task.cancel()
            for task in running:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._wake = None

    def _wait_s(self, now: float, queues: Sequence[str] | None) -> float:
        times = [j.run_at for j in self._jobs.values() if j.status == "todo" and (not queues or j.queue in queues)]
        tick = self.next_tick()
        if tick is not None:
            times.append(tick)
        return max(0.0, min([now + MAX_WAIT_S, *times]) - now)

    async def _run(self, job: _Job) -> None:
        spec = self.tasks.get(job.task)
        job.status = "doing"
        ctx = JobContext(self.settings, self.sessions, job.id, job.task, job.key, job.attempts, self.enqueue,
                         self.clock)
        finished = False
        try:
            async with self._exclusive(job.key):
                await spec.run(ctx, dict(job.payload))
                finished = True
        except asyncio.CancelledError:
            if finished:  # stopped while giving the key's lock back: the work itself is done
                job.attempts += 1
                job.status, job.error = "succeeded", None
            else:
                job.status = "todo"  # the process is stopping; the store still says what is due
            raise
        except Exception as exc:
            job.attempts += 1
            job.error = f"{type(exc).__name__}: {exc}"[:2000]
            if isinstance(exc, TaskUnavailable) or job.attempts > spec.retries:
                job.status = "failed"
                log.warning("job %s (%s) failed: %s", job.id, job.task, job.error)
            else:
                job.status, job.run_at = "todo", self.clock() + backoff_s(spec, job.attempts)
            return
        job.attempts += 1  # runs that ended, as procrastinate counts them
        job.status, job.error = "succeeded", None

    @contextlib.asynccontextmanager
    async def _exclusive(self, key: str | None) -> AsyncIterator[None]:
        """On PostgreSQL, hold an advisory lock on the job's key while it runs, so that several ``takeback serve``
        processes sharing the database (each with its own in-memory queue) never run the same key at once: the
        second waits, then finds the work done.  SQLite has one server process, so the in-process rule is enough.

        The wait happens in a thread in slices of ``_LOCK_SLICE_MS`` (``lock_timeout``), so a stopping process
        abandons it within one slice and never leaves a lock behind on a pooled connection."""
        bind = self.sessions.kw.get("bind")
        if key is None or bind is None or bind.dialect.name != "postgresql":
            yield
            return
        params = {"ns": _LOCK_NAMESPACE, "key": key}
        abandon = threading.Event()

        def acquire() -> Connection | None:
            connection = bind.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                connection.execute(text(f"SET lock_timeout = {_LOCK_SLICE_MS}"))
                while not abandon.is_set():
                    try:
                        connection.execute(text("SELECT pg_advisory_lock(:ns, hashtext(:key))"), params)
                    except OperationalError as exc:
                        if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available: wait again
                            raise
                        continue
                    if abandon.is_set():  # granted just as the caller gave up
                        release(connection)
                        return None
                    return connection
            except BaseException:
                connection.invalidate()
                connection.close()
                raise
            connection.close()
            return None

        def release(connection: Connection) -> None:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:ns, hashtext(:key))"), params)
            except Exception:
                connection.invalidate()  # a lost session lost its locks too; never pool it
            finally:
                connection.close()

        waiting = asyncio.ensure_future(asyncio.to_thread(acquire))
        try:
            connection = await asyncio.shield(waiting)
        except asyncio.CancelledError:
            abandon.set()
            with contextlib.suppress(Exception):
                await waiting  # returns within one slice; anything it took it has given back
            raise
        assert connection is not None  # only an abandoned wait comes back empty
        try:
            yield
        finally:
            # Shielded: the job's work is done, so a stop arriving now must not leave the lock to the pool.
            await asyncio.shield(asyncio.to_thread(release, connection))

    def _trim(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.status in ("succeeded", "failed")]
        for job_id in sorted(finished)[: max(0, len(finished) - HISTORY)]:
            del self._jobs[job_id]

    async def close(self) -> None:
        return None
