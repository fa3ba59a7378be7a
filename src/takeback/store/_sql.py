"""Small SQL helpers the repositories share: portable INSERT … ON CONFLICT DO NOTHING, the writer lock, chunking."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from takeback.store.errors import InvalidInput

T = TypeVar("T")

#: Bound parameters per IN (…) list: well under SQLite's oldest limit of 999 variables.
IN_CHUNK = 900
#: pg_advisory_xact_lock key for signal writers ("takeback" in ASCII).
_SIGNAL_WRITE_LOCK = 0x74616B656261636B


def dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def insert_ignore(session: Session, table: Table, conflict_columns: Sequence[str]) -> Any:
    """``INSERT … ON CONFLICT (cols) DO NOTHING`` on SQLite and PostgreSQL: a duplicate is skipped by the database
    itself, so concurrent writers cannot both insert it and the transaction is never left in an error state."""
    module = postgresql if dialect(session) == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))


def serialise_signal_writes(session: Session) -> None:
    """Make signal writers take turns (PostgreSQL; SQLite writers already do), held until the transaction ends.

    Why: ids and removal ``seq`` numbers come from sequences, which hand out numbers at insert time, not commit
    time.  With concurrent writers a smaller id could commit after a bigger one, and a matcher that resumes
    "after id N" or "after seq S" (index snapshot + replay) would miss it.  Taking turns makes commit order equal
    number order.  Signal writes are rare next to matching, so the cost is small.
    """
    if dialect(session) == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SIGNAL_WRITE_LOCK})


def chunked(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def is_id(value: object, bits: int = 32) -> bool:
    """Whether ``value`` can be a row id of an INTEGER (32) / BIGINT (64) key column.  Anything else cannot exist,
    so lookups answer "not found" instead of sending PostgreSQL a value it refuses to cast."""
    return type(value) is int and 0 < value <= (INT32_MAX if bits == 32 else INT64_MAX)


def clamp_after(value: int) -> int:
    """A keyset-paging lower bound that is safe to send to either backend."""
    return max(0, min(int(value), INT64_MAX))


def check_text(field: str, value: object, max_length: int | None = None, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, "must be text")
    if "\x00" in value:
        raise InvalidInput(field, "must not contain NUL characters")
    if max_length is not None and len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    return value


def check_int32(field: str, value: object, *, optional: bool = True) -> int | None:
    if value is None and optional:
        return None
    if type(value) is not int or not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise InvalidInput(field, "must be a 32-bit integer")
    return value
