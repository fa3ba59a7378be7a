"""Named errors of the job layer (all ``JobError``), so callers and the CLI can tell a bad request from an outage."""

from __future__ import annotations


class JobError(Exception):
    """Base class: something about a background job could not be done."""


class UnsupportedBackend(JobError):
    """The configured backend is unknown, or cannot run on the configured database (procrastinate needs
    PostgreSQL)."""


class BackendUnavailable(JobError):
    """The job backend's database could not be reached or prepared."""


class UnknownTask(JobError):
    """No task of that name is registered."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no task named {name!r}")
        self.name = name


class InvalidPayload(JobError, ValueError):
    """A payload, key or queue name that cannot be stored: not a JSON object, too large, bad characters."""


class UnknownJob(JobError):
    """No job with that id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job with id {job_id}")
        self.job_id = job_id


class NotRetryable(JobError):
    """Only failed jobs can be retried by hand (a waiting or running one is already on its way)."""

    def __init__(self, job_id: int, status: str) -> None:
        super().__init__(f"job {job_id} is {status}; only failed jobs can be retried")
        self.job_id = job_id
        self.status = status


class TaskUnavailable(JobError):
    """The task is registered but the module doing its work is not installed (yet); the job fails, not retried."""
