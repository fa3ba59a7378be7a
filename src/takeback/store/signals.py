"""Signals in banks, and the removal journal.

Values are stored canonical (``takeback.signals.validate.canonical_value`` is the caller's job) and de-duplicated
within a bank by ``value_digest``.  Every removal is journalled in the same transaction, so a matcher that loads an
index snapshot taken at (max signal id, removal seq) catches up with ``iter_signals(after_id=…)`` and
``removals_since(seq)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from takeback.store._sql import (
    INT64_MAX,
    check_int32,
    check_text,
    chunked,
    clamp_after,
    insert_ignore,
    is_id,
    serialise_signal_writes,
)
from takeback.store.errors import UnknownBank
from takeback.store.models import Bank, Signal, SignalRemoval, utcnow
from takeback.store.records import AddResult, StoredSignal

#: (signal_type, canonical value, quality or None, note or None)
SignalInput = tuple[str, str, int | None, str | None]
#: (id, bank_id, signal_type, value): the lean row the index needs.
IndexRow = tuple[int, int, str, str]

_COLUMNS = (
    Signal.id,
    Signal.bank_id,
    Signal.signal_type,
    Signal.value,
    Signal.quality,
    Signal.note,
    Signal.created_at,
)
_table = Signal.__table__


def value_digest(signal_type: str, value: str) -> str:
    """The de-duplication key: sha256 of type, NUL, canonical value (hex)."""
    return hashlib.sha256(f"{signal_type}\x00{value}".encode()).hexdigest()


def _stored(row: object) -> StoredSignal:
    return StoredSignal(*row)  # type: ignore[misc]


def add_signals(session: Session, bank_id: int, signals: Iterable[SignalInput]) -> AddResult:
    """Add signals to a bank, skipping those already in it (and repeats within ``signals``).

    Raises ``UnknownBank``, and ``InvalidInput`` (nothing stored) for text no backend should store (NUL characters,
    a type name over 32 characters) or a quality outside 32 bits.  Safe against concurrent adders: the database
    skips duplicates (ON CONFLICT DO NOTHING).
    """
    if not is_id(bank_id):
        raise UnknownBank(bank_id)
    serialise_signal_writes(session)
    if session.execute(select(Bank.id).where(Bank.id == bank_id)).first() is None:
        raise UnknownBank(bank_id)
    now = utcnow()
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    total = 0
    for index, (signal_type, value, quality, note) in enumerate(signals):
        total += 1
        kind = str(signal_type)
        check_text(f"signals[{index}].signal_type", kind, 32)
        check_text(f"signals[{index}].value", value)
        check_int32(f"signals[{index}].quality", quality)
        check_text(f"signals[{index}].note", note, optional=True)
        digest = value_digest(kind, value)
        if digest in seen:
            continue
        seen.add(digest)
        rows.append(
            {
                "bank_id": bank_id,
                "signal_type": kind,
                "value": value,
                "value_digest": digest,
                "quality": quality,
                "note": note,
                "created_at": now,
            }
        )
    if not rows:
        return AddResult(added=[], duplicates=total)
    stmt = insert_ignore(session, _table, ["bank_id", "value_digest"]).returning(*(_table.c[c.key] for c in _COLUMNS))
    added = sorted((_stored(row) for row in session.execute(stmt, rows)), key=lambda s: s.id)
    return AddResult(added=added, duplicates=total - len(added))


def remove_signals(session: Session, bank_id: int, ids: Iterable[int]) -> list[int]:
    """Remove these signals from the bank (ids of other banks, or unknown ids, are ignored); returns the ids
    removed, ascending, each journalled in ``signal_removals``."""
    if not is_id(bank_id):
        return []
    serialise_signal_writes(session)
    wanted = sorted({i for i in ids if is_id(i, 64)})
    removed: list[int] = []
    for part in chunked(wanted):
        stmt = delete(_table).where(_table.c.bank_id == bank_id, _table.c.id.in_(part)).returning(_table.c.id)
        removed.extend(session.execute(stmt).scalars())
    removed.sort()
    if removed:
        now = utcnow()
        session.execute(
            insert(SignalRemoval.__table__),
            [{"signal_id": i, "bank_id": bank_id, "removed_at": now} for i in removed],
        )
    return removed


def get_signals(session: Session, ids: Collection[int]) -> dict[int, StoredSignal]:
    """The signals that exist among ``ids``, by id."""
    found: dict[int, StoredSignal] = {}
    for part in chunked(sorted({i for i in ids if is_id(i, 64)})):
        for row in session.execute(select(*_COLUMNS).where(Signal.id.in_(part))):
            found[row[0]] = _stored(row)
    return found


def list_signals(session: Session, bank_id: int, after_id: int = 0, limit: int = 1000) -> list[StoredSignal]:
    """One page of a bank's signals by id: those with id > ``after_id`` (keyset paging, stable under inserts)."""
    if not is_id(bank_id) or after_id >= INT64_MAX:
        return []
    after_id = clamp_after(after_id)
    stmt = (
        select(*_COLUMNS)
        .where(Signal.bank_id == bank_id, Signal.id > after_id)
        .order_by(Signal.id)
        .limit(max(0, int(limit)))
    )
    return [_stored(row) for row in session.execute(stmt)]


def iter_signals(
    session: Session, after_id: int = 0, chunk: int = 50_000, *, bank_id: int | None = None
) -> Iterator[list[StoredSignal]]:
    """All signals (or one bank's) with id > ``after_id``, by id, in lists of up to ``chunk``."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    if after_id >= INT64_MAX or (bank_id is not None and not is_id(bank_id)):
        return
    last = clamp_after(after_id)
    while True:
        stmt = select(*_COLUMNS).where(Signal.id > last)
        if bank_id is not None:
            stmt = stmt.where(Signal.bank_id == bank_id)
        batch = [_stored(row) for row in session.execute(stmt.order_by(Signal.id).limit(chunk))]
        if not batch:
            return
        yield batch
        last = batch[-1].id
        if len(batch) < chunk:
            return


def iter_signal_rows(session: Session, after_id: int = 0, chunk: int = 50_000) -> Iterator[list[IndexRow]]:
    """Like ``iter_signals`` but lean tuples (id, bank_id, signal_type, value): for loading an index of millions."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    if after_id >= INT64_MAX:
        return
    last = clamp_after(after_id)
    columns = (_table.c.id, _table.c.bank_id, _table.c.signal_type, _table.c.value)
    while True:
        stmt = select(*columns).where(_table.c.id > last).order_by(_table.c.id).limit(chunk)
        batch: list[IndexRow] = [tuple(row) for row in session.execute(stmt)]  # type: ignore[misc]
        if not batch:
            return
        yield batch
        last = batch[-1][0]
        if len(batch) < chunk:
            return


def count_signals(session: Session, bank_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(_table)
    if bank_id is not None:
        if not is_id(bank_id):
            return 0
        stmt = stmt.where(_table.c.bank_id == bank_id)
    return int(session.execute(stmt).scalar_one())


def max_signal_id(session: Session) -> int:
    """The largest signal id ever committed and still present (0 when empty): an index snapshot's "after_id"."""
    return int(session.execute(select(func.coalesce(func.max(_table.c.id), 0))).scalar_one())


def removals_since(session: Session, seq: int, limit: int | None = None) -> tuple[list[tuple[int | None, int]], int]:
    """Removals journalled after ``seq``, oldest first, as (signal_id or None for a whole bank, bank_id), and the
    last seq returned (``seq`` itself when there are none)."""
    if seq >= INT64_MAX:
        return [], seq
    table = SignalRemoval.__table__
    stmt = (
        select(table.c.seq, table.c.signal_id, table.c.bank_id)
        .where(table.c.seq > clamp_after(seq))
        .order_by(table.c.seq)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    last = seq
    out: list[tuple[int | None, int]] = []
    for row_seq, signal_id, bank_id in session.execute(stmt):
        out.append((signal_id, bank_id))
        last = row_seq
    return out, last


def last_removal_seq(session: Session) -> int:
    table = SignalRemoval.__table__
    return int(session.execute(select(func.coalesce(func.max(table.c.seq), 0))).scalar_one())
