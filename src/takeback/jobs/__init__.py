"""Background work: re-scans, re-checks, notice sending and deadlines, webhook delivery (docs/jobs.md).

Two backends behind one small interface (``spec.JobBackend``): ``local`` runs jobs inside ``takeback serve`` with
nothing else to install; ``procrastinate`` queues them in PostgreSQL for ``takeback worker`` processes on any
number of machines, and re-runs the jobs of a worker that died.  Jobs are idempotent (``effects.claim_effect``).
"""

from takeback.jobs.effects import claim_effect, effect_done
from takeback.jobs.errors import (
    BackendUnavailable,
    InvalidPayload,
    JobError,
    NotRetryable,
    TaskUnavailable,
    UnknownJob,
    UnknownTask,
    UnsupportedBackend,
)
from takeback.jobs.runtime import ServerJobs, load_tasks, open_backend, prepare
from takeback.jobs.spec import JobBackend, JobContext, JobInfo, Schedule, TaskSet, TaskSpec

__all__ = [
    "BackendUnavailable",
    "InvalidPayload",
    "JobBackend",
    "JobContext",
    "JobError",
    "JobInfo",
    "NotRetryable",
    "Schedule",
    "ServerJobs",
    "TaskSet",
    "TaskSpec",
    "TaskUnavailable",
    "UnknownJob",
    "UnknownTask",
    "UnsupportedBackend",
    "claim_effect",
    "effect_done",
    "load_tasks",
    "open_backend",
    "prepare",
]
