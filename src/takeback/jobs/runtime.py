"""Choosing and starting a backend: for `takeback worker`, `takeback jobs …` and the server's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from takeback.jobs import effects
from takeback.jobs.errors import BackendUnavailable, UnsupportedBackend
from takeback.jobs.spec import JobBackend, TaskSet
from takeback.jobs.tasks import takeback_tasks

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from takeback.config import Settings
    from takeback.discover.urlguard import Resolver
    from takeback.web.webhooks import DeliveryRecorder, WebhookDispatcher

log = logging.getLogger("takeback.jobs")

BACKENDS = ("local", "procrastinate")


def load_tasks(settings: Settings) -> TaskSet:
    """takeback's tasks plus those of ``settings.jobs_task_modules`` (each may define ``TASKS`` and
    ``SCHEDULES``)."""
    tasks = takeback_tasks(settings)
    for name in settings.jobs_task_modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise UnsupportedBackend(f"job task module {name!r} cannot be imported: {exc}") from exc
        tasks.add(*getattr(module, "TASKS", ()))
        tasks.schedule(*getattr(module, "SCHEDULES", ()))
    return tasks


def prepare(settings: Settings, engine: Engine) -> None:
    """Create what the backend keeps in the database (idempotent; every process calls it at start)."""
    if settings.jobs_backend not in BACKENDS:
        raise UnsupportedBackend(f"unknown jobs backend {settings.jobs_backend!r}; one of {', '.join(BACKENDS)}")
    try:
        effects.ensure_tables(engine)
    except Exception as exc:
        raise BackendUnavailable(f"cannot create the job tables: {exc}") from exc
    if settings.jobs_backend == "procrastinate":
        from takeback.jobs.procrastinate_backend import ensure_schema

        ensure_schema(settings.resolved_database_url)


async def open_backend(
    settings: Settings, sessions: sessionmaker[Session], tasks: TaskSet | None = None, **local_options: Any
) -> JobBackend:
    """The configured backend, connected (``prepare`` must have run)."""
    tasks = tasks or load_tasks(settings)
    if settings.jobs_backend == "procrastinate":
        from takeback.jobs.procrastinate_backend import ProcrastinateBackend

        return await ProcrastinateBackend(settings, sessions, tasks).open()
    if settings.jobs_backend == "local":
        from takeback.jobs.local import LocalBackend

        return LocalBackend(settings, sessions, tasks, **local_options)
    raise UnsupportedBackend(f"unknown jobs backend {settings.jobs_backend!r}; one of {', '.join(BACKENDS)}")


@dataclass
class ServerJobs:
    """What ``takeback serve`` runs in the background.  Local backend: the scheduler and its jobs run in the
    server's event loop, webhooks go through the in-process dispatcher.  Procrastinate backend: the server only
    enqueues (webhook deliveries); ``takeback worker`` processes run everything."""

    settings: Settings
    backend: JobBackend | None
    _stop: asyncio.Event | None = None
    _runner: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, settings: Settings, engine: Engine, sessions: sessionmaker[Session]) -> ServerJobs:
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(prepare, settings, engine)
        if settings.jobs_backend == "local" and not settings.jobs_in_server:
            return cls(settings, None)
        backend = await open_backend(settings, sessions)
        jobs = cls(settings, backend)
        if settings.jobs_backend == "local":
            jobs._stop = asyncio.Event()
            jobs._runner = asyncio.create_task(backend.run_worker(concurrency=2, stop=jobs._stop), name="takeback-jobs")
        return jobs

    def webhook_dispatcher(
        self,
        *,
        recorder: DeliveryRecorder,
        resolver: Resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> WebhookDispatcher:
        from takeback.web.webhooks import WebhookDispatcher

        if self.settings.jobs_backend == "procrastinate" and self.backend is not None:
            from takeback.jobs.webhook_jobs import JobWebhookDispatcher

            return JobWebhookDispatcher(
                self.settings, recorder=recorder, resolver=resolver, transport=transport, jobs=self.backend
            )
        return WebhookDispatcher(self.settings, recorder=recorder, resolver=resolver, transport=transport)

    async def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._runner is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        if self.backend is not None:
            await self.backend.close()
