"""Alembic environment: runs on the connection ``takeback.store.db.upgrade`` passes in (no alembic.ini, no
logging setup), or on ``sqlalchemy.url`` when run from the alembic command line for authoring new revisions."""

from __future__ import annotations

from alembic import context

from takeback.store.db import make_engine
from takeback.store.models import Base


def _run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table instead
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url set")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) mode is not supported; run takeback.store.db.upgrade(url)")
main()
