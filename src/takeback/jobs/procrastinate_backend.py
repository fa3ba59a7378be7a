"""The multi-machine backend: procrastinate on PostgreSQL, any number of ``takeback worker`` processes anywhere.

How the library's guarantees map onto ours (https://procrastinate.readthedocs.io):

* a job is a row in ``procrastinate_jobs``; workers take one with ``SELECT … FOR UPDATE SKIP LOCKED``, so each job
  goes to one worker and a busy table never blocks the others; LISTEN/NOTIFY wakes idle workers at once;
* our job *key* is both the procrastinate ``queueing_lock`` (one waiting job per key: a second ``enqueue`` returns
  None) and its ``lock`` (jobs with the same key never run at the same time);
* schedules are procrastinate periodic tasks: every worker runs the deferrer, and the database refuses a second job
  for the same schedule and tick, so N workers still give one job per tick;
* every worker sends a heartbeat (``jobs_heartbeat_s``).  A worker that dies (kill -9, lost machine) leaves its
  jobs in ``doing``; every worker looks for jobs of workers silent for ``jobs_stalled_after_s`` and puts them back
  to ``todo`` (``JobManager.get_stalled_jobs`` + ``retry_job``, the library's documented recipe), where another
  worker runs them again.  Tasks are idempotent (``effects``), so the second run completes without repeating what
  the first one already did.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import procrastinate
from procrastinate import exceptions as pexc
from procrastinate.jobs import Status
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy.engine import make_url

from takeback.jobs.errors import BackendUnavailable, NotRetryable, TaskUnavailable, UnknownJob, UnsupportedBackend
from takeback.jobs.spec import (
    JobContext,
    JobInfo,
    TaskSet,
    TaskSpec,
    backoff_s,
    check_key,
    check_name,
    check_payload,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from takeback.config import Settings

log = logging.getLogger("takeback.jobs.procrastinate")

#: Serialises schema creation between processes starting together.
_SCHEMA_LOCK = 0x74616B65  # "take"


def conninfo(database_url: str) -> str:
    """A libpq connection string for the store's SQLAlchemy URL (``postgresql+psycopg://…`` → ``postgresql://…``)."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise UnsupportedBackend(
            "the procrastinate job backend needs PostgreSQL (TAKEBACK_DATABASE_URL=postgresql://…); "
            "with SQLite use TAKEBACK_JOBS_BACKEND=local"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_schema(database_url: str) -> bool:
    """Create procrastinate's tables and functions when missing; True if they were created now.  Upgrading
    procrastinate across a schema change needs its migrations applied (docs/jobs.md)."""
    import psycopg

    try:
        with psycopg.connect(conninfo(database_url), autocommit=False) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if row is not None and row[0]:
                return False
            conn.execute(procrastinate.schema.SchemaManager.get_schema().encode())  # type: ignore[call-overload]
            conn.commit()
            return True
    except psycopg.Error as exc:
        raise BackendUnavailable(f"cannot prepare the job tables: {exc}".strip()) from exc


class ProcrastinateBackend:
    name = "procrastinate"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], tasks: TaskSet) -> None:
        self.settings = settings
        self.sessions = sessions
        self.tasks = tasks
        connector = procrastinate.PsycopgConnector(conninfo=conninfo(settings.resolved_database_url))
        self.app = procrastinate.App(connector=connector)
        self._ptasks: dict[str, Any] = {}
        for spec in tasks.tasks.values():
            self._ptasks[spec.name] = self._register(spec)
        for schedule in tasks.schedules:
            self.app.periodic(
                cron=schedule.cron,
                periodic_id=schedule.name,
                queueing_lock=f"schedule:{schedule.name}",
                task_kwargs={"payload": dict(schedule.payload)},
            )(self._ptasks[schedule.task])
        self._open = False
        self._deferrer: Any = None

    def _register(self, spec: TaskSpec) -> Any:
        retry: Any = _Retry(spec) if spec.retries else False

        async def run(context: Any, payload: dict[str, Any] | None = None, timestamp: int | None = None) -> None:
            job = context.job
            ctx = JobContext(
                self.settings, self.sessions, int(job.id), spec.name, job.queueing_lock, int(job.attempts), self.enqueue
            )
            await spec.run(ctx, dict(payload or {}))

        run.__name__ = run.__qualname__ = spec.name.replace(".", "_").replace(":", "_").replace("-", "_")
        return self.app.task(name=spec.name, pass_context=True, queue=spec.queue, retry=retry)(run)

    # --- connection ----------------------------------------------------------------------------------------------
    async def open(self) -> ProcrastinateBackend:
        if not self._open:
            try:
                await self.app.open_async()
            except Exception as exc:
                raise BackendUnavailable(f"cannot connect to the job database: {exc}") from exc
            self._open = True
        return self

    async def close(self) -> None:
        if self._open:
            await self.app.close_async()
            self._open = False

    # --- requesting work -----------------------------------------------------------------------------------------
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
        options: dict[str, Any] = {"queue": queue, "queueing_lock": key, "lock": key}
        if delay_s > 0:
            options["schedule_in"] = {"seconds": float(delay_s)}
        try:
            return int(await self._ptasks[task].configure(**options).defer_async(payload=body))
        except pexc.AlreadyEnqueued:
            return None
        except pexc.ConnectorException as exc:
            raise BackendUnavailable(f"cannot enqueue {task}: {exc}") from exc

    async def tick(self, now: float | None = None) -> int:
        """Defer the periodic jobs due at ``now``: what each worker's periodic deferrer does on its own clock, here
        on a given one (tests, ``takeback jobs schedule``).  The database keeps one job per schedule and tick."""
        from procrastinate.periodic import PeriodicDeferrer

        at = time.time() if now is None else now
        deferrer = self._deferrer or PeriodicDeferrer(registry=self.app.periodic_registry)
        self._deferrer = deferrer
        count = 0
        for periodic, timestamp in deferrer.get_previous_tasks(at=at):
            kwargs = {**periodic.configure_kwargs, "task_kwargs": {**periodic.configure_kwargs.get("task_kwargs", {})}}
            kwargs["task_kwargs"]["timestamp"] = timestamp
            job = periodic.task.configure(**kwargs).job
            try:
                job_id = await self.app.job_manager.defer_periodic_job(job, periodic.periodic_id, timestamp)
            except pexc.AlreadyEnqueued:
                continue
            count += job_id is not None
        return count

    # --- looking at it -------------------------------------------------------------------------------------------
    async def list_jobs(
        self, *, status: str | None = None, queue: str | None = None, task: str | None = None, limit: int = 100
    ) -> list[JobInfo]:
        jobs = await self.app.job_manager.list_jobs_async(status=status, queue=queue, task=task)
        out = [_info(job) for job in jobs]
        out.sort(key=lambda j: j.id, reverse=True)
        return out[: max(0, limit)]

    async def get(self, job_id: int) -> JobInfo:
        jobs = list(await self.app.job_manager.list_jobs_async(id=job_id))
        if not jobs:
            raise UnknownJob(job_id)
        return _info(jobs[0])

    async def retry(self, job_id: int) -> None:
        job = await self.get(job_id)
        if job.status != Status.FAILED.value:
            raise NotRetryable(job_id, job.status)
        await self.app.job_manager.retry_job_by_id_async(job_id, retry_at=dt.datetime.now(dt.UTC))

    async def retry_stalled(self) -> list[int]:
        """Put the jobs of workers silent for ``jobs_stalled_after_s`` back to ``todo``; their ids."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=self.settings.jobs_stalled_after_s)
        retried = []
        for job in stalled:
            try:
                await manager.retry_job(job)
            except pexc.UniqueViolation:
                # An identical job (same key) is already waiting: it will do the work; close this one.
                with contextlib.suppress(Exception):
                    await manager.finish_job(job, Status.FAILED, delete_job=False)
                continue
            except pexc.ConnectorException:
                continue  # another worker retried it first (it is no longer "doing")
            log.warning("job %s (%s) was running on a worker that stopped; retrying it", job.id, job.task_name)
            retried.append(int(job.id))  # type: ignore[arg-type]
        return retried

    # --- running it ----------------------------------------------------------------------------------------------
    async def run_worker(
        self, *, queues: Sequence[str] | None = None, concurrency: int = 1, stop: asyncio.Event | None = None
    ) -> None:
        await self.open()
        settings = self.settings
        watcher = asyncio.create_task(self._watch_stalled(), name="takeback-stalled-jobs")
        worker = asyncio.create_task(
            self.app.run_worker_async(
                queues=list(queues) if queues else None,
                concurrency=max(1, concurrency),
                install_signal_handlers=stop is None,
                update_heartbeat_interval=settings.jobs_heartbeat_s,
                stalled_worker_timeout=settings.jobs_stalled_after_s,
                shutdown_graceful_timeout=settings.jobs_shutdown_timeout_s,
            ),
            name="takeback-worker",
        )
        waiters: list[asyncio.Future[Any]] = [worker]
        if stop is not None:
            waiters.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not worker.done():
                worker.cancel()  # procrastinate treats cancellation as a graceful stop
            for task in (watcher, worker, *waiters[1:]):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _watch_stalled(self) -> None:
        while True:
            try:
                await self.retry_stalled()
            except Exception:
                log.exception("looking for stalled jobs failed")
            await asyncio.sleep(self.settings.jobs_stalled_check_s)


class _Retry(BaseRetryStrategy):
    """The task's ``retries`` with the local backend's doubling backoff; a missing module is not retried."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if isinstance(exception, TaskUnavailable) or job.attempts >= self.spec.retries:
            return None
        return RetryDecision(retry_in={"seconds": int(backoff_s(self.spec, job.attempts + 1))})


def _info(job: Any) -> JobInfo:
    kwargs = dict(job.task_kwargs or {})
    payload = kwargs.get("payload")
    return JobInfo(
        id=int(job.id),
        task=job.task_name,
        queue=job.queue,
        status=str(job.status),
        key=job.queueing_lock,
        payload=payload if isinstance(payload, dict) else {},
        attempts=int(job.attempts),
        scheduled_at=job.scheduled_at,
    )
