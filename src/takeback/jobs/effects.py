"""Effects that happen once, however often a job runs: a unique key recorded in the effect's own transaction.

A job can run twice: its worker was killed after the effect committed but before the job was marked done, and the
job was retried.  Every effect that must not repeat is therefore written as::

    with sessions.begin() as session:
        if claim_effect(session, f"notice-sent:{notice_id}", task=ctx.task):
            ...  # the effect, in the same transaction

If the transaction commits, the key is there and every later run skips the effect; if it rolls back (or the process
dies first), neither the key nor the effect exists and the next run does both.  Concurrent runs of the same key
serialise on the key's row: PostgreSQL's ``ON CONFLICT DO NOTHING`` waits for the first transaction to finish, and
SQLite takes the write lock at BEGIN.

Effects outside the database (an e-mail, a webhook POST) cannot share a transaction with it; those carry a stable
identifier the receiver can deduplicate on (Message-ID, ``X-Takeback-Delivery``) — see docs/jobs.md.

The table lives beside the job library's own tables, created by ``ensure_tables`` when a worker or server starts
(not an Alembic revision: it belongs to the job layer like procrastinate's tables do).
"""

from __future__ import annotations

from sqlalchemy import Column, Engine, MetaData, String, Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from takeback.jobs.errors import InvalidPayload
from takeback.store.models import UTCDateTime, utcnow

KEY_MAX = 200

metadata = MetaData()

job_effects = Table(
    "job_effects",
    metadata,
    Column("key", String(KEY_MAX), primary_key=True),
    Column("task", String(100), nullable=False, default=""),
    Column("done_at", UTCDateTime, nullable=False),
)


def ensure_tables(engine: Engine) -> None:
    """Create the job layer's tables when missing (safe to call from every process at start-up)."""
    metadata.create_all(engine, checkfirst=True)


def claim_effect(session: Session, key: str, *, task: str = "") -> bool:
    """Record the effect ``key`` in this transaction: True if this is its first time (do the effect now), False if
    it already happened (skip it)."""
    if not isinstance(key, str) or not key or len(key) > KEY_MAX or "\x00" in key:
        raise InvalidPayload(f"effect key must be 1-{KEY_MAX} characters without NUL")
    dialect = session.get_bind().dialect.name
    values = {"key": key, "task": task[:100], "done_at": utcnow()}
    if dialect == "postgresql":
        stmt = postgresql.insert(job_effects).values(**values).on_conflict_do_nothing(index_elements=["key"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(job_effects).values(**values).on_conflict_do_nothing(index_elements=["key"])
    else:  # pragma: no cover - only the two supported databases
        stmt = insert(job_effects).values(**values)
    return session.execute(stmt.returning(job_effects.c.key)).first() is not None


def effect_done(session: Session, key: str) -> bool:
    return session.execute(select(job_effects.c.key).where(job_effects.c.key == key)).first() is not None
