"""API clients, their keys, scopes and bank grants.

A key looks like ``tbk_<prefix>_<secret>``: the prefix (12 hex digits) finds the row, the secret is 256 random
bits.  Only sha256(key) is stored — a random 256-bit secret needs no slow password hash — and it is compared
in constant time.  The plaintext key exists only in ``create_client``'s return value.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Iterable

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from takeback.store._sql import check_int32, check_text, insert_ignore, is_id
from takeback.store.errors import InvalidInput, UnknownBank, UnknownClient
from takeback.store.models import ApiClient, Bank, ClientBank, utcnow
from takeback.store.records import ClientInfo

SCOPES = frozenset({"match", "manage", "admin"})
KEY_PREFIX_LENGTH = 12
_MAX_KEY_LENGTH = 200
_HEX = frozenset(string.hexdigits.lower())

_COLUMNS = (
    ApiClient.id,
    ApiClient.name,
    ApiClient.key_prefix,
    ApiClient.scopes,
    ApiClient.rate_limit_per_minute,
    ApiClient.created_at,
    ApiClient.revoked_at,
)


def _client(row: object) -> ClientInfo:
    id_, name, prefix, scopes, rate, created_at, revoked_at = row  # type: ignore[misc]
    return ClientInfo(
        id=id_,
        name=name,
        key_prefix=prefix,
        scopes=frozenset(scopes.split()),
        rate_limit_per_minute=rate,
        created_at=created_at,
        revoked_at=revoked_at,
    )


def normalise_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """Scopes from a list or a space-separated string; InvalidInput (a ValueError) on an unknown or empty set."""
    items = scopes.split() if isinstance(scopes, str) else [str(s).strip() for s in scopes]
    result = frozenset(s for s in items if s)
    unknown = result - SCOPES
    if unknown:
        known = ", ".join(sorted(SCOPES))
        raise InvalidInput("scopes", f"unknown scope(s): {', '.join(sorted(unknown))}; known: {known}")
    if not result:
        raise InvalidInput("scopes", "at least one scope is required")
    return result


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None (so junk never reaches the database)."""
    if not isinstance(key, str) or len(key) > _MAX_KEY_LENGTH:
        return None
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "tbk" or not parts[2]:
        return None
    prefix = parts[1]
    if len(prefix) != KEY_PREFIX_LENGTH or not set(prefix) <= _HEX:
        return None
    return prefix


def create_client(
    session: Session,
    name: str,
    scopes: str | Iterable[str],
    *,
    rate_limit_per_minute: int | None = None,
    bank_ids: Iterable[int] = (),
) -> tuple[ClientInfo, str]:
    """Create a client; returns its info and the plaintext key (shown once, never stored)."""
    check_text("name", name, 200)
    scope_set = normalise_scopes(scopes)
    check_int32("rate_limit_per_minute", rate_limit_per_minute)
    if rate_limit_per_minute is not None and rate_limit_per_minute <= 0:
        raise InvalidInput("rate_limit_per_minute", "must be positive")
    prefix = secrets.token_hex(KEY_PREFIX_LENGTH // 2)
    key = f"tbk_{prefix}_{secrets.token_urlsafe(32)}"
    row = session.execute(
        insert(ApiClient)
        .values(
            name=name,
            key_prefix=prefix,
            key_hash=hash_key(key),
            scopes=" ".join(sorted(scope_set)),
            rate_limit_per_minute=rate_limit_per_minute,
            created_at=utcnow(),
        )
        .returning(*_COLUMNS)
    ).one()
    client = _client(row)
    for bank_id in bank_ids:
        grant_bank(session, client.id, bank_id)
    return client, key


def authenticate(session: Session, key: str) -> ClientInfo | None:
    """The client a key belongs to; None when malformed, unknown, wrong or revoked."""
    prefix = key_prefix(key)
    if prefix is None:
        return None
    row = session.execute(select(ApiClient.key_hash, *_COLUMNS).where(ApiClient.key_prefix == prefix)).first()
    if row is None:
        return None
    if not hmac.compare_digest(hash_key(key), row[0]):
        return None
    client = _client(row[1:])
    return None if client.revoked else client


def get_client(session: Session, client_id: int) -> ClientInfo | None:
    if not is_id(client_id):
        return None
    row = session.execute(select(*_COLUMNS).where(ApiClient.id == client_id)).first()
    return _client(row) if row else None


def list_clients(session: Session, *, include_revoked: bool = True) -> list[ClientInfo]:
    stmt = select(*_COLUMNS).order_by(ApiClient.id)
    if not include_revoked:
        stmt = stmt.where(ApiClient.revoked_at.is_(None))
    return [_client(row) for row in session.execute(stmt)]


def count_clients(session: Session, *, scope: str | None = None, include_revoked: bool = False) -> int:
    """How many clients (with ``scope``, if given): e.g. "is there an admin yet?" at first start."""
    stmt = select(ApiClient.scopes)
    if not include_revoked:
        stmt = stmt.where(ApiClient.revoked_at.is_(None))
    if scope is None:
        return int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    return sum(1 for (scopes,) in session.execute(stmt) if scope in scopes.split())


def revoke_client(session: Session, client_id: int) -> bool:
    """Revoke a client's key for good.  False when unknown or already revoked."""
    if not is_id(client_id):
        return False
    result = session.execute(
        update(ApiClient)
        .where(ApiClient.id == client_id, ApiClient.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(ApiClient.id)
    ).first()
    return result is not None


def grant_bank(session: Session, client_id: int, bank_id: int) -> bool:
    """Give a client access to a bank; True if newly granted.  Raises UnknownClient / UnknownBank."""
    if not is_id(client_id) or session.execute(select(ApiClient.id).where(ApiClient.id == client_id)).first() is None:
        raise UnknownClient(client_id)
    if not is_id(bank_id) or session.execute(select(Bank.id).where(Bank.id == bank_id)).first() is None:
        raise UnknownBank(bank_id)
    stmt = (
        insert_ignore(session, ClientBank.__table__, ["client_id", "bank_id"])
        .values(client_id=client_id, bank_id=bank_id)
        .returning(ClientBank.__table__.c.bank_id)
    )
    return session.execute(stmt).first() is not None


def ungrant_bank(session: Session, client_id: int, bank_id: int) -> bool:
    """Take a grant away; True if there was one."""
    if not (is_id(client_id) and is_id(bank_id)):
        return False
    table = ClientBank.__table__
    stmt = delete(table).where(table.c.client_id == client_id, table.c.bank_id == bank_id).returning(table.c.bank_id)
    return session.execute(stmt).first() is not None


def client_bank_ids(session: Session, client_id: int) -> frozenset[int]:
    if not is_id(client_id):
        return frozenset()
    table = ClientBank.__table__
    return frozenset(session.execute(select(table.c.bank_id).where(table.c.client_id == client_id)).scalars())
