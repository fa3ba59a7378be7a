"""Engines, sessions and migrations.

Transactions belong to the caller: repositories flush but never commit.  Use::

    engine, factory = open_store(settings)
    with factory.begin() as session:          # commits on success, rolls back on error
        bank = banks.create_bank(session, "case-17")

SQLite runs in WAL mode with synchronous=FULL (an acknowledged signal survives kill -9 and power loss),
foreign keys on, and a busy timeout.  Transactions start with ``BEGIN IMMEDIATE``: in WAL mode a transaction
that reads first and writes later fails at once with "database is locked" when another writer committed in
between, whatever the busy timeout; taking the write lock up front makes concurrent writers queue instead.  For
sessions that only read, ``session_factory(engine, read_only=True)`` uses a plain ``BEGIN`` so they never wait.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from takeback.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
_READ_ONLY = "takeback_read_only"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL (``postgresql://`` is taken to mean psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)

    memory = parsed.database in (None, "", ":memory:")
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S, **kwargs.pop("connect_args", {})}
    if memory:
        kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (SAVEPOINT and transactional DDL
        # work only this way).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions bound to ``engine``.  ``read_only`` only changes how SQLite begins (see the module doc); it does not
    stop writes, which in such a session may fail with "database is locked" under concurrency."""
    bind = engine.execution_options(**{_READ_ONLY: True}) if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(url: str | Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest), in one transaction."""
    from alembic import command

    engine = make_engine(url) if isinstance(url, str) else url
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
    finally:
        if isinstance(url, str):
            engine.dispose()


def downgrade(url: str | Engine, revision: str = "base") -> None:
    """Migrate back to ``revision`` (default: an empty database).  For tests and emergencies."""
    from alembic import command

    engine = make_engine(url) if isinstance(url, str) else url
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), revision)
    finally:
        if isinstance(url, str):
            engine.dispose()


def current_revision(connection: Connection) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def open_store(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """Engine and session factory for the configured database, migrated to the newest schema.  Without
    ``settings.database_url`` the SQLite file lives in ``settings.data_dir``, created private (0700)."""
    if not settings.database_url:
        data_dir = Path(settings.data_dir)
        if not data_dir.exists():
            data_dir.mkdir(parents=True, mode=0o700)
            os.chmod(data_dir, 0o700)  # mkdir's mode is filtered by the umask
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return engine, session_factory(engine)
