"""Fixtures for the job tests: a PostgreSQL database (only), settings for it, and the probe tasks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from takeback.config import Settings
from tests import pg
from tests.jobs.probe_tasks import PROBE_TABLE


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh migrated PostgreSQL database (the procrastinate backend needs PostgreSQL)."""
    server: pg.PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(template=request.getfixturevalue("_postgres_template"))
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


def job_settings(url: str, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "data_dir": data_dir,
        "jobs_task_modules": ["tests.jobs.probe_tasks"],
        "jobs_heartbeat_s": 0.5,
        "jobs_stalled_after_s": 2.0,
        "jobs_stalled_check_s": 0.5,
        "jobs_shutdown_timeout_s": 5.0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def create_probe_table(engine: object) -> None:
    with engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(text(PROBE_TABLE))


@pytest.fixture
def anyio_backend() -> str:
    """Async tests here run on asyncio (anyio's pytest plugin; procrastinate is asyncio-only)."""
    return "asyncio"
