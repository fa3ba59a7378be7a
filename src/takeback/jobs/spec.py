"""What a task is, what a schedule is, what a job looks like from outside, and the interface both backends share.

A *task* is a named async function ``run(ctx, payload)``; a *job* is one requested run of a task with a JSON
payload and an optional *key*.  The key is the idempotency handle: while a job with that key waits, enqueueing
another is a no-op (``enqueue`` returns None), and jobs with the same key never run at the same time.  Effects that
must happen once whatever the number of runs use ``effects.claim_effect`` inside the effect's own transaction.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from takeback.jobs.errors import InvalidPayload, UnknownTask

if TYPE_CHECKING:
    import asyncio

    from sqlalchemy.orm import Session, sessionmaker

    from takeback.config import Settings

DEFAULT_QUEUE = "default"
PAYLOAD_MAX_BYTES = 64 * 1024
KEY_MAX = 200
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,99}$")
#: Job states, the same words on both backends (procrastinate's).
STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")


class Enqueue(Protocol):
    async def __call__(
        self,
        task: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        queue: str | None = None,
        delay_s: float = 0.0,
    ) -> int | None: ...


@dataclass(frozen=True)
class JobContext:
    """What a running task gets besides its payload."""

    settings: Settings
    sessions: sessionmaker[Session]
    job_id: int
    task: str
    key: str | None
    #: Earlier runs of this job (0 on the first run; a retried stalled job sees 1 or more).
    attempts: int
    #: Enqueue follow-up jobs on the same backend (fan-out from sweeps, delayed retries).
    enqueue: Enqueue
    #: The backend's clock (seconds since the epoch): tasks ask it for "now", so tests can move time.
    clock: Callable[[], float] = time.time


TaskFunc = Callable[[JobContext, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    run: TaskFunc
    queue: str = DEFAULT_QUEUE
    #: Extra runs after the task raised (not after TaskUnavailable), waiting retry_backoff_s * 2**(n-1) before each.
    retries: int = 0
    retry_backoff_s: float = 5.0
    doc: str = ""


@dataclass(frozen=True)
class Schedule:
    """Enqueue ``task`` at the times of a cron expression (5 fields, UTC)."""

    name: str
    task: str
    cron: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobInfo:
    id: int
    task: str
    queue: str
    status: str
    key: str | None
    payload: dict[str, Any]
    attempts: int
    scheduled_at: datetime | None = None
    error: str | None = None


@dataclass
class TaskSet:
    """The tasks and schedules a process knows (built at start-up from code, never mutated while running)."""

    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)

    def add(self, *specs: TaskSpec) -> None:
        for spec in specs:
            check_name("task", spec.name)
            check_name("queue", spec.queue)
            if spec.name in self.tasks:
                raise ValueError(f"task {spec.name!r} registered twice")
            self.tasks[spec.name] = spec

    def schedule(self, *schedules: Schedule) -> None:
        for schedule in schedules:
            if schedule.task not in self.tasks:
                raise UnknownTask(schedule.task)
            if any(s.name == schedule.name for s in self.schedules):
                raise ValueError(f"schedule {schedule.name!r} registered twice")
            check_cron(schedule.cron)
            self.schedules.append(schedule)

    def get(self, name: str) -> TaskSpec:
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTask(name) from None


class JobBackend(Protocol):
    """Both backends: ``local`` (in-process, nothing to run besides the server) and ``procrastinate``
    (PostgreSQL, any number of ``takeback worker`` processes on any number of machines)."""

    name: str
    tasks: TaskSet

    async def enqueue(
        self,
        task: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        queue: str | None = None,
        delay_s: float = 0.0,
    ) -> int | None:
        """Request a run of ``task``; the job id, or None when a job with the same key is already waiting."""
        ...

    async def tick(self, now: float | None = None) -> int:
        """Enqueue the scheduled jobs due at ``now`` (epoch seconds; default the clock); how many were enqueued.
        The worker loop calls this; tests call it with chosen times instead of sleeping."""
        ...

    async def list_jobs(
        self, *, status: str | None = None, queue: str | None = None, task: str | None = None, limit: int = 100
    ) -> list[JobInfo]: ...

    async def retry(self, job_id: int) -> None:
        """Run a failed job again (raises UnknownJob, NotRetryable)."""
        ...

    async def run_worker(
        self, *, queues: Sequence[str] | None = None, concurrency: int = 1, stop: asyncio.Event | None = None
    ) -> None:
        """Run jobs (and schedules) until ``stop`` is set."""
        ...

    async def close(self) -> None: ...


def check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidPayload(f"{what} name {value!r}: 1-100 of a-z 0-9 _ . : - (starting with a letter or digit)")
    return value


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > KEY_MAX or "\x00" in key or not _encodable(key):
        raise InvalidPayload(f"job key must be 1-{KEY_MAX} characters of valid Unicode without NUL")
    return key


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """A plain JSON object of bounded size (what both backends can store), as a fresh dict."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InvalidPayload("a job payload must be a JSON object")
    try:
        text = json.dumps(dict(payload), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"job payload is not JSON: {exc}") from None
    if "\\u0000" in text and _has_nul(payload):  # PostgreSQL's jsonb cannot hold NUL
        raise InvalidPayload("job payload contains NUL characters")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidPayload("job payload contains text that is not valid Unicode (lone surrogates)") from None
    if size > PAYLOAD_MAX_BYTES:
        raise InvalidPayload(f"job payload is larger than {PAYLOAD_MAX_BYTES} bytes")
    result: dict[str, Any] = json.loads(text)
    return result


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def check_cron(expression: str) -> str:
    from croniter import croniter

    if not isinstance(expression, str) or len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise InvalidPayload(f"not a 5-field cron expression: {expression!r}")
    return expression


def backoff_s(spec: TaskSpec, failures: int) -> float:
    return min(3600.0, spec.retry_backoff_s * 2 ** max(0, failures - 1))
