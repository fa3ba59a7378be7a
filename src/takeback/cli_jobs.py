"""Background-job commands: `takeback worker` and `takeback jobs list|retry|schedule` (docs/jobs.md).

The backend comes from TAKEBACK_JOBS_BACKEND and the database from TAKEBACK_DATABASE_URL.  Exit codes: 0 done;
1 the backend could not be reached or prepared; 2 usage error (unknown task, bad payload, a command the backend
does not have); 7 the job cannot be retried (unknown, or not failed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from takeback import config
from takeback.jobs import errors as job_errors

EXIT_OK = 0
EXIT_BACKEND = 1
EXIT_USAGE = 2
EXIT_NOT_RETRYABLE = 7

T = TypeVar("T")

jobs_app = typer.Typer(help="Look at and steer background jobs (re-scans, re-checks, notices, webhooks).")


def _fail(message: str, code: int) -> typer.Exit:
    sys.stderr.write(f"takeback: {message}\n")
    return typer.Exit(code)


def _with_backend(settings: config.Settings, action: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store and the backend, run ``action(backend)``, close everything; job errors become exit codes."""
    from sqlalchemy.exc import SQLAlchemyError

    from takeback.jobs.runtime import open_backend, prepare
    from takeback.store.db import open_store

    try:
        engine, sessions = open_store(settings)
    except (OSError, SQLAlchemyError) as exc:
        raise _fail(f"cannot open the database: {str(exc).splitlines()[0]}", EXIT_BACKEND) from None
    try:
        prepare(settings, engine)

        async def run() -> T:
            backend = await open_backend(settings, sessions)
            try:
                return await action(backend)
            finally:
                await backend.close()

        return asyncio.run(run())
    except (job_errors.UnknownJob, job_errors.NotRetryable) as exc:
        raise _fail(str(exc), EXIT_NOT_RETRYABLE) from None
    except (job_errors.UnknownTask, job_errors.InvalidPayload, job_errors.UnsupportedBackend) as exc:
        raise _fail(str(exc), EXIT_USAGE) from None
    except job_errors.JobError as exc:
        raise _fail(str(exc), EXIT_BACKEND) from None
    finally:
        engine.dispose()


def worker_command(
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", "-q", help="Only these queues (repeat or comma-separate; default all)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Jobs run at the same time.")] = 1,
) -> None:
    """Run background jobs from the PostgreSQL queue until stopped (SIGINT/SIGTERM: finish running jobs first).
    Start any number, on any machines sharing TAKEBACK_DATABASE_URL."""
    settings = config.load()
    if settings.jobs_backend != "procrastinate":
        raise _fail(
            "workers need the multi-machine backend: set TAKEBACK_JOBS_BACKEND=procrastinate and a PostgreSQL "
            "TAKEBACK_DATABASE_URL (with the default local backend, `takeback serve` runs the jobs itself)",
            EXIT_USAGE,
        )
    chosen = [q.strip() for item in queues or () for q in item.split(",") if q.strip()] or None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run(backend: Any) -> None:
        names = ", ".join(chosen) if chosen else "all queues"
        sys.stderr.write(f"takeback: worker ready ({names}, concurrency {concurrency})\n")
        sys.stderr.flush()
        await backend.run_worker(queues=chosen, concurrency=concurrency)

    _with_backend(settings, run)


@jobs_app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option(help="todo, doing, succeeded, failed, cancelled or aborted.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest first, at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List jobs, newest first (the local backend only knows this process's jobs: see `jobs schedule`)."""
    from takeback.jobs.spec import STATUSES

    if status is not None and status not in STATUSES:
        raise _fail(f"--status must be one of {', '.join(STATUSES)}", EXIT_USAGE)
    settings = config.load()
    if settings.jobs_backend == "local":
        raise _fail(
            "the local backend keeps its queue inside the `takeback serve` process; there is nothing to list here "
            "(what is due is in the store: `takeback jobs schedule` shows the schedules)",
            EXIT_USAGE,
        )

    async def run(backend: Any) -> list[Any]:
        return list(await backend.list_jobs(status=status, queue=queue, task=task, limit=limit))

    jobs = _with_backend(settings, run)
    if as_json:
        for job in jobs:
            row = {**job.__dict__, "scheduled_at": job.scheduled_at.isoformat() if job.scheduled_at else None}
            print(json.dumps(row, ensure_ascii=False, sort_keys=True))
        return
    table = Table("id", "task", "queue", "status", "attempts", "key", "payload", "scheduled")
    for job in jobs:
        table.add_row(
            str(job.id), job.task, job.queue, job.status, str(job.attempts), escape(job.key or ""),
            escape(json.dumps(job.payload, ensure_ascii=False)[:60]),
            job.scheduled_at.strftime("%Y-%m-%d %H:%M:%S") if job.scheduled_at else "",
        )  # fmt: skip
    Console().print(table)


@jobs_app.command("retry")
def retry_command(
    job_id: Annotated[int | None, typer.Argument(help="A failed job's id.")] = None,
    stalled: Annotated[
        bool, typer.Option("--stalled", help="Instead: re-run now the jobs of workers that stopped sending heartbeats.")
    ] = False,
) -> None:
    """Run a failed job again, or (--stalled) the jobs left running by dead workers."""
    if (job_id is None) == (not stalled):
        raise _fail("give a job id or --stalled (not both)", EXIT_USAGE)
    settings = config.load()
    if settings.jobs_backend == "local":
        raise _fail("the local backend retries inside `takeback serve`; nothing to retry from here", EXIT_USAGE)

    async def run(backend: Any) -> list[int]:
        if stalled:
            return list(await backend.retry_stalled())
        await backend.retry(job_id)
        return [int(job_id)]  # type: ignore[arg-type]

    retried = _with_backend(settings, run)
    print(f"retrying {len(retried)} job(s)" + (f": {', '.join(map(str, retried))}" if retried else ""))


@jobs_app.command("schedule")
def schedule_command(
    task: Annotated[
        str | None, typer.Argument(help="Enqueue this task now (without it: list tasks and schedules).")
    ] = None,
    payload: Annotated[str, typer.Option(help="The job's payload, a JSON object.")] = "{}",
    key: Annotated[str | None, typer.Option(help="Idempotency key: no second job while one with it waits.")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue (default: the task's).")] = None,
    delay: Annotated[float, typer.Option("--in", min=0, help="Run no sooner than this many seconds from now.")] = 0,
) -> None:
    """List the tasks and their schedules, or enqueue one job.  With the local backend the job runs right here,
    now (tasks are idempotent, so running one beside the server is harmless)."""
    settings = config.load()
    if task is None:
        from takeback.jobs.runtime import load_tasks

        try:
            tasks = load_tasks(settings)
        except job_errors.JobError as exc:
            raise _fail(str(exc), EXIT_USAGE) from None
        table = Table("task", "queue", "schedule (cron, UTC)", "what it does")
        crons: dict[str, list[str]] = {}
        for s in tasks.schedules:
            crons.setdefault(s.task, []).append(s.cron)
        for spec in tasks.tasks.values():
            table.add_row(spec.name, spec.queue, "; ".join(crons.get(spec.name, [])) or "on demand", spec.doc)
        Console().print(table)
        print(f"backend: {settings.jobs_backend}")
        return
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise _fail(f"--payload is not JSON: {exc}", EXIT_USAGE) from None

    async def run(backend: Any) -> str:
        job_id = await backend.enqueue(task, body, key=key, queue=queue, delay_s=delay)
        if job_id is None:
            return f"a job with key {key!r} is already waiting; nothing enqueued"
        if settings.jobs_backend == "local":
            ran = await backend.run_due()
            failed = await backend.list_jobs(status="failed")
            if failed:
                raise job_errors.JobError(f"job {failed[0].id} ({failed[0].task}) failed: {failed[0].error}")
            return f"ran {ran} job(s) here (local backend)"
        return f"enqueued job {job_id}"

    print(_with_backend(settings, run))


def register(app: typer.Typer) -> None:
    """Attach `takeback worker` and `takeback jobs …` to the main app."""
    app.command("worker")(worker_command)
    app.add_typer(jobs_app, name="jobs")
