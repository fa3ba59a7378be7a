"""Engine settings: SQLite durability pragmas, transaction start, URL handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from takeback import store
from takeback.store.db import make_engine, session_factory


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    finally:
        engine.dispose()


def test_in_memory_sqlite_works(tmp_path: Path) -> None:
    engine = make_engine("sqlite://")
    try:
        store.upgrade(engine)
        with session_factory(engine).begin() as session:
            bank = store.create_bank(session, "m")
            assert store.add_signals(session, bank.id, [("md5", "0" * 32, None, None)]).duplicates == 0
        with session_factory(engine).begin() as session:
            assert store.count_signals(session) == 1
    finally:
        engine.dispose()


def test_postgresql_url_means_psycopg3() -> None:
    engine = make_engine("postgresql://user@localhost/db")
    assert engine.dialect.driver == "psycopg"
    engine = make_engine("postgresql+psycopg://user@localhost/db")
    assert engine.dialect.driver == "psycopg"


def test_read_only_sessions_see_committed_state(engine: Engine, backend: str) -> None:
    writer = session_factory(engine)
    reader = session_factory(engine, read_only=True)
    with writer.begin() as session:
        store.create_bank(session, "a")
    with reader() as session:
        assert [b.name for b in store.list_banks(session)] == ["a"]


def test_writes_take_the_sqlite_write_lock_up_front(tmp_path: Path) -> None:
    """In WAL mode a transaction that reads first and writes later fails at once ("database is locked") if another
    writer committed in between.  So sessions begin IMMEDIATE (holding the write lock from the start, other writers
    wait their turn), and read-only sessions begin DEFERRED (never blocking writers)."""
    import sqlite3

    path = tmp_path / "lock.sqlite3"
    store.upgrade(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)

    def probe_can_write() -> bool:
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return False
        probe.execute("ROLLBACK")
        return True

    try:
        with session_factory(engine).begin() as session:
            session.execute(text("SELECT 1"))
            assert not probe_can_write()
        assert probe_can_write()
        with session_factory(engine, read_only=True).begin() as session:
            session.execute(text("SELECT 1"))
            assert probe_can_write()
    finally:
        probe.close()
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite:///relative.sqlite3"])
def test_upgrade_accepts_url_or_engine(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store.upgrade(url)
    engine = make_engine(url)
    try:
        store.upgrade(engine)
        with session_factory(engine).begin() as session:
            assert store.list_banks(session) == []
    finally:
        engine.dispose()
