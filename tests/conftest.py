"""Shared fixtures: benign media only (scikit-image photos, generated pixels)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from takeback import samples
from tests import pg
from tests.smtp import smtp_server  # noqa: F401 (a fixture for every test that sends mail)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user cache from a test."""
    monkeypatch.setenv("TAKEBACK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def phone_photos(media_dir: Path) -> list[Path]:
    """Phone-sized JPEGs (3 MP; a few 8 MP) made from the bundled photos."""
    folder = media_dir / "phone"
    folder.mkdir()
    paths = []
    for i, name in enumerate(samples.PHOTO_NAMES):
        size = (3264, 2448) if i < 3 else (2048, 1536)
        path = folder / f"{i:02d}-{name}.jpg"
        samples.large_photo(name, size=size, grain=4.0, seed=i).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def short_video(media_dir: Path) -> Path:
    """8 s, 320x240, 30 fps, keyframe every second."""
    return samples.write_video(media_dir / "short.mp4", seconds=8, fps=30, size=(320, 240), scene_seconds=3)


@pytest.fixture(scope="session")
def long_gop_video(media_dir: Path) -> Path:
    """8 s, 25 fps, a single keyframe: sampling must decode within the GOP."""
    return samples.write_video(
        media_dir / "longgop.mkv", seconds=8, fps=25, size=(320, 240), gop_seconds=None, scene_seconds=3
    )


@pytest.fixture
def rng() -> Iterator[np.random.Generator]:
    yield np.random.default_rng(1234)


# --- databases (store helper): every storage/API test runs on SQLite and on a throwaway PostgreSQL -------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg.PostgresServer]:
    """One PostgreSQL server for the whole run (see tests/pg.py), removed at the end.  Skipped only when the server
    binaries are missing and TAKEBACK_REQUIRE_POSTGRES is unset; CI sets it, so there a missing server fails."""
    bindir = pg.find_bindir()
    if bindir is None:
        message = (
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or PATH; "
            "install the 'postgresql' package (scripts/setup.sh does) to run the PostgreSQL half of the store tests"
        )
        if os.environ.get(pg.REQUIRE_ENV):
            pytest.fail(f"{message} ({pg.REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(message)
    server = pg.PostgresServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: pg.PostgresServer) -> str:
    """A migrated database that each test's database is cloned from (CREATE DATABASE … TEMPLATE)."""
    from takeback.store.db import upgrade

    name = postgres_server.create_database(prefix="template")
    upgrade(postgres_server.url(name))
    return name


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test's database is copied from."""
    from takeback.store.db import upgrade

    path = tmp_path_factory.mktemp("sqlite-template") / "takeback.sqlite3"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty, migrated database for this test: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "db" / "takeback.sqlite3"
        path.parent.mkdir(mode=0o700)
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server: pg.PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database(template=request.getfixturevalue("_postgres_template"))
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)
