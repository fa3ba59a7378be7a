"""Petitions, their updates, counters, review flags, the removal log and generated secrets.

Counters (``petition_counts``) are the only place counts are read from.  ``apply_count_deltas`` is called by every
repository function that changes a signature's existence or status, in the same transaction, so the counters are
equal to the rows at every commit; ``recount`` recomputes them from the rows to prove it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from takeback.store._sql import check_int32, check_text, dialect, insert_ignore, is_id
from takeback.store.errors import InvalidInput, StoreError
from takeback.store.models import Case, utcnow
from takeback.store.models_petition import (
    Petition,
    PetitionCount,
    PetitionFlag,
    PetitionRemoval,
    PetitionSecret,
    PetitionUpdate,
    Signature,
)

#: Counter kinds and the key each signature contributes to.
TOTAL, COUNTRY, HOUR = "total", "country", "hour"
FLAG_KINDS = ("network", "postcode")
FLAG_WINDOW = timedelta(hours=1)


class PetitionExists(StoreError):
    """A petition with that slug already exists (slugs are the public address)."""


class UnknownPetition(StoreError):
    """No such petition."""


class UnknownCase(StoreError):
    """A petition must belong to an existing case."""


class UnknownFlag(StoreError):
    """No such review flag on that petition."""


@dataclass(frozen=True, slots=True)
class PetitionInfo:
    id: int
    case_id: int
    slug: str
    title: str
    text: str
    target: str
    goal: int
    starts_at: datetime
    closes_at: datetime | None
    created_at: datetime

    def is_open(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.closes_at is None or now < self.closes_at)


@dataclass(frozen=True, slots=True)
class UpdateInfo:
    id: int
    petition_id: int
    title: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Counts:
    verified: int
    pending: int


@dataclass(frozen=True, slots=True)
class FlagInfo:
    id: int
    petition_id: int
    kind: str
    key: str
    window_start: datetime
    signatures: int
    status: str
    note: str | None
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class RemovalInfo:
    id: int
    petition_id: int
    signature_id: int
    action: str
    previous_status: str
    reason: str
    actor: str
    flag_id: int | None
    removed_at: datetime


_PETITION = (
    Petition.id,
    Petition.case_id,
    Petition.slug,
    Petition.title,
    Petition.text,
    Petition.target,
    Petition.goal,
    Petition.starts_at,
    Petition.closes_at,
    Petition.created_at,
)
_FLAG = (
    PetitionFlag.id,
    PetitionFlag.petition_id,
    PetitionFlag.kind,
    PetitionFlag.key,
    PetitionFlag.window_start,
    PetitionFlag.signatures,
    PetitionFlag.status,
    PetitionFlag.note,
    PetitionFlag.created_at,
    PetitionFlag.resolved_at,
)
_SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def hour_key(when: datetime) -> str:
    """The "hour" counter key of a signing time (UTC)."""
    return when.strftime("%Y-%m-%dT%H")


def check_slug(slug: object) -> str:
    if not isinstance(slug, str) or not 1 <= len(slug) <= 100 or not set(slug) <= _SLUG_CHARS:
        raise InvalidInput("slug", "1-100 characters from a-z, 0-9 and '-'")
    return slug


# --- petitions ---------------------------------------------------------------------------------------------------


def create_petition(
    session: Session,
    case_id: int,
    slug: str,
    title: str,
    text: str,
    target: str,
    goal: int,
    *,
    starts_at: datetime | None = None,
    closes_at: datetime | None = None,
) -> PetitionInfo:
    check_slug(slug)
    check_text("title", title, 200)
    check_text("text", text, 100_000)
    check_text("target", target, 200)
    check_int32("goal", goal, optional=False)
    if goal <= 0:
        raise InvalidInput("goal", "must be positive")
    if not is_id(case_id) or session.get(Case, case_id) is None:
        raise UnknownCase(f"no case {case_id}")
    if session.execute(select(Petition.id).where(Petition.slug == slug)).first() is not None:
        raise PetitionExists(slug)
    now = utcnow()
    petition = Petition(
        case_id=case_id,
        slug=slug,
        title=title,
        text=text,
        target=target,
        goal=goal,
        starts_at=starts_at or now,
        closes_at=closes_at,
        created_at=now,
    )
    session.add(petition)
    session.flush()
    return get_petition(session, petition.id)  # type: ignore[return-value]


def _petition(row: object) -> PetitionInfo:
    return PetitionInfo(*row)  # type: ignore[misc]


def get_petition(session: Session, petition_id: int) -> PetitionInfo | None:
    if not is_id(petition_id):
        return None
    row = session.execute(select(*_PETITION).where(Petition.id == petition_id)).first()
    return _petition(row) if row else None


def get_petition_by_slug(session: Session, slug: str) -> PetitionInfo | None:
    if not isinstance(slug, str) or len(slug) > 100:
        return None
    row = session.execute(select(*_PETITION).where(Petition.slug == slug)).first()
    return _petition(row) if row else None


def list_petitions(session: Session, case_id: int | None = None) -> list[PetitionInfo]:
    query = select(*_PETITION).order_by(Petition.id)
    if case_id is not None:
        query = query.where(Petition.case_id == case_id)
    return [_petition(r) for r in session.execute(query)]


def set_closes_at(session: Session, petition_id: int, closes_at: datetime | None) -> bool:
    result = session.execute(update(Petition).where(Petition.id == petition_id).values(closes_at=closes_at))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_update(session: Session, petition_id: int, title: str, text: str) -> UpdateInfo:
    check_text("title", title, 200)
    check_text("text", text, 100_000)
    if get_petition(session, petition_id) is None:
        raise UnknownPetition(str(petition_id))
    row = PetitionUpdate(petition_id=petition_id, title=title, text=text, created_at=utcnow())
    session.add(row)
    session.flush()
    return UpdateInfo(row.id, petition_id, title, text, row.created_at)


def list_updates(session: Session, petition_id: int) -> list[UpdateInfo]:
    rows = session.execute(
        select(
            PetitionUpdate.id,
            PetitionUpdate.petition_id,
            PetitionUpdate.title,
            PetitionUpdate.text,
            PetitionUpdate.created_at,
        )
        .where(PetitionUpdate.petition_id == petition_id)
        .order_by(PetitionUpdate.id.desc())
    )
    return [UpdateInfo(*r) for r in rows]


# --- counters ----------------------------------------------------------------------------------------------------

#: (petition_id, kind, key) -> (verified delta, pending delta)
Deltas = Mapping[tuple[int, str, str], tuple[int, int]]


def signature_deltas(
    into: dict[tuple[int, str, str], tuple[int, int]],
    petition_id: int,
    country: str,
    created_at: datetime,
    verified: int,
    pending: int,
) -> None:
    """Add one signature's change (+1/-1 verified, +1/-1 pending) to the three counter rows it belongs to."""
    for kind, key in ((TOTAL, ""), (COUNTRY, country), (HOUR, hour_key(created_at))):
        v, p = into.get((petition_id, kind, key), (0, 0))
        into[(petition_id, kind, key)] = (v + verified, p + pending)


#: One statement for every counter row of a batch (executemany): building a SQLAlchemy upsert per row cost more CPU
#: than the rest of the batch's writes together at thousands of signatures per second.
_UPSERT_COUNTS = (
    'INSERT INTO petition_counts (petition_id, kind, "key", verified, pending) VALUES ({p}, {p}, {p}, {p}, {p}) '
    'ON CONFLICT (petition_id, kind, "key") DO UPDATE SET verified = petition_counts.verified + excluded.verified, '
    "pending = petition_counts.pending + excluded.pending"
)
_UPSERT_COUNTS_SQLITE = _UPSERT_COUNTS.format(p="?")
_UPSERT_COUNTS_TEXT = text(
    _UPSERT_COUNTS.replace("{p}, {p}, {p}, {p}, {p}", ":petition_id, :kind, :key, :verified, :pending")
)


def apply_count_deltas(session: Session, deltas: Deltas) -> None:
    """Add the deltas to the counter rows (creating missing rows) in one executemany upsert, rows in key order (so
    concurrent writers on PostgreSQL lock them in the same order): cheap under group commit, where a whole batch of
    signatures touches only a handful of rows."""
    items = [(k, d) for k, d in sorted(deltas.items()) if d != (0, 0)]
    if not items:
        return
    if dialect(session) == "sqlite":
        rows = [(int(p), kind, key, int(dv), int(dp)) for (p, kind, key), (dv, dp) in items]
        session.connection().exec_driver_sql(_UPSERT_COUNTS_SQLITE, rows)  # type: ignore[arg-type]
        return
    session.execute(
        _UPSERT_COUNTS_TEXT,
        [
            {"petition_id": int(p), "kind": kind, "key": key, "verified": int(dv), "pending": int(dp)}
            for (p, kind, key), (dv, dp) in items
        ],
    )


_TOTAL_COUNTS = text(
    f"SELECT verified, pending FROM petition_counts WHERE petition_id = :petition_id AND kind = '{TOTAL}' "
    "AND \"key\" = ''"
)


def get_counts(session: Session, petition_id: int) -> Counts:
    """The total counter row (one prepared statement: read after every group commit and on every page view)."""
    row = session.execute(_TOTAL_COUNTS, {"petition_id": int(petition_id)}).first()
    return Counts(int(row[0]), int(row[1])) if row else Counts(0, 0)


def breakdown(session: Session, petition_id: int, kind: str) -> list[tuple[str, Counts]]:
    """Counter rows of one kind ("country" or "hour"), by key; rows whose counts fell to zero are left out."""
    rows = session.execute(
        select(PetitionCount.key, PetitionCount.verified, PetitionCount.pending)
        .where(PetitionCount.petition_id == petition_id, PetitionCount.kind == kind)
        .order_by(PetitionCount.key)
    )
    return [(key, Counts(int(v), int(p))) for key, v, p in rows if v or p]


def counter_table(session: Session, petition_id: int) -> dict[tuple[str, str], Counts]:
    """Every non-zero counter row of a petition, as {(kind, key): Counts}."""
    rows = session.execute(
        select(PetitionCount.kind, PetitionCount.key, PetitionCount.verified, PetitionCount.pending).where(
            PetitionCount.petition_id == petition_id
        )
    )
    return {(kind, key): Counts(int(v), int(p)) for kind, key, v, p in rows if v or p}


def recount(session: Session, petition_id: int) -> dict[tuple[str, str], Counts]:
    """The counters recomputed from the signature rows (same shape as ``counter_table``): the proof that the
    maintained counters are exact.  Reads every row of the petition; for checks, not for pages."""
    deltas: dict[tuple[int, str, str], tuple[int, int]] = {}
    rows = session.execute(
        select(Signature.status, Signature.country, Signature.created_at).where(
            Signature.petition_id == petition_id, Signature.status.in_(("pending", "verified"))
        )
    )
    for status, country, created_at in rows:
        verified = status == "verified"
        signature_deltas(deltas, petition_id, country, created_at, int(verified), int(not verified))
    return {(kind, key): Counts(v, p) for (_, kind, key), (v, p) in deltas.items() if v or p}


# --- review flags ------------------------------------------------------------------------------------------------


def _flag(row: object) -> FlagInfo:
    return FlagInfo(*row)  # type: ignore[misc]


def detect_bursts(
    session: Session,
    petition_id: int,
    *,
    network_threshold: int,
    postcode_threshold: int,
    now: datetime | None = None,
) -> list[FlagInfo]:
    """Raise (or refresh) flags for the current hour: networks and postcodes with more than their threshold of
    signatures since the hour began.  Returns the flags created or updated by this call."""
    now = now or utcnow()
    window_start = now.replace(minute=0, second=0, microsecond=0)
    touched: list[int] = []
    for kind, column, threshold in (
        ("network", Signature.network, network_threshold),
        ("postcode", Signature.postcode, postcode_threshold),
    ):
        rows = session.execute(
            select(column, func.count())
            .where(
                Signature.petition_id == petition_id,
                Signature.created_at >= window_start,
                Signature.status != "removed",
                column.is_not(None),
            )
            .group_by(column)
            .having(func.count() > threshold)
        ).all()
        for key, count in rows:
            session.execute(
                insert_ignore(session, PetitionFlag.__table__, ["petition_id", "kind", "key", "window_start"]).values(
                    petition_id=petition_id,
                    kind=kind,
                    key=key,
                    window_start=window_start,
                    signatures=count,
                    status="open",
                    created_at=now,
                )
            )
            flag_id = session.execute(
                update(PetitionFlag)
                .where(
                    PetitionFlag.petition_id == petition_id,
                    PetitionFlag.kind == kind,
                    PetitionFlag.key == key,
                    PetitionFlag.window_start == window_start,
                )
                .values(signatures=count)
                .returning(PetitionFlag.id)
            ).scalar_one()
            touched.append(flag_id)
    if not touched:
        return []
    return [_flag(r) for r in session.execute(select(*_FLAG).where(PetitionFlag.id.in_(touched)))]


def list_flags(session: Session, petition_id: int, *, status: str | None = None) -> list[FlagInfo]:
    query = select(*_FLAG).where(PetitionFlag.petition_id == petition_id).order_by(PetitionFlag.id.desc())
    if status is not None:
        query = query.where(PetitionFlag.status == status)
    return [_flag(r) for r in session.execute(query)]


def get_flag(session: Session, petition_id: int, flag_id: int) -> FlagInfo | None:
    if not is_id(flag_id):
        return None
    row = session.execute(
        select(*_FLAG).where(PetitionFlag.id == flag_id, PetitionFlag.petition_id == petition_id)
    ).first()
    return _flag(row) if row else None


def flag_condition(petition_id: int, flag: FlagInfo) -> tuple[Any, ...]:
    """The signatures a flag is about (its network or postcode, within its hour): what a reviewer inspects and
    what "remove" removes, so the two can never differ."""
    column = Signature.network if flag.kind == "network" else Signature.postcode
    return (
        Signature.petition_id == petition_id,
        column == flag.key,
        Signature.created_at >= flag.window_start,
        Signature.created_at < flag.window_start + FLAG_WINDOW,
    )


def resolve_flag(
    session: Session, petition_id: int, flag_id: int, action: str, *, actor: str, note: str = ""
) -> tuple[FlagInfo, int]:
    """An operator's decision on a flag: "dismiss" (the burst is genuine) or "remove" (every pending or verified
    signature of that network/postcode in that hour is removed and logged with the flag's id).  Returns the flag
    and how many signatures were removed."""
    from takeback.store import signatures  # the signature repository builds on this module

    if action not in ("dismiss", "remove"):
        raise InvalidInput("action", "must be 'dismiss' or 'remove'")
    check_text("note", note, 2000)
    check_text("actor", actor, 200)
    flag = get_flag(session, petition_id, flag_id)
    if flag is None:
        raise UnknownFlag(str(flag_id))
    removed = 0
    if action == "remove":
        ids = list(session.execute(select(Signature.id).where(*flag_condition(petition_id, flag))).scalars())
        reason = f"review flag {flag.id} ({flag.kind} {flag.key})" + (f": {note}" if note else "")
        removed = len(
            signatures.remove_signatures(session, petition_id, ids, reason=reason, actor=actor, flag_id=flag.id)
        )
    session.execute(
        update(PetitionFlag)
        .where(PetitionFlag.id == flag.id)
        .values(status="removed" if action == "remove" else "dismissed", note=note or None, resolved_at=utcnow())
    )
    return get_flag(session, petition_id, flag.id), removed  # type: ignore[return-value]


# --- removal log -------------------------------------------------------------------------------------------------


def log_removal(
    session: Session,
    petition_id: int,
    signature_id: int,
    action: str,
    previous_status: str,
    reason: str,
    actor: str,
    flag_id: int | None = None,
) -> None:
    session.add(
        PetitionRemoval(
            petition_id=petition_id,
            signature_id=signature_id,
            action=action,
            previous_status=previous_status,
            reason=reason,
            actor=actor,
            flag_id=flag_id,
            removed_at=utcnow(),
        )
    )


def list_removals(session: Session, petition_id: int, *, limit: int = 1000, after_id: int = 0) -> list[RemovalInfo]:
    rows = session.execute(
        select(
            PetitionRemoval.id,
            PetitionRemoval.petition_id,
            PetitionRemoval.signature_id,
            PetitionRemoval.action,
            PetitionRemoval.previous_status,
            PetitionRemoval.reason,
            PetitionRemoval.actor,
            PetitionRemoval.flag_id,
            PetitionRemoval.removed_at,
        )
        .where(PetitionRemoval.petition_id == petition_id, PetitionRemoval.id > max(0, min(after_id, 2**62)))
        .order_by(PetitionRemoval.id)
        .limit(max(1, min(limit, 10_000)))
    )
    return [RemovalInfo(*r) for r in rows]


# --- secrets -----------------------------------------------------------------------------------------------------


def get_or_create_secret(session: Session, name: str) -> str:
    """A random 256-bit secret (hex) by name, created on first use; concurrent first uses agree on one value."""
    session.execute(
        insert_ignore(session, PetitionSecret.__table__, ["name"]).values(
            name=name, value=secrets.token_hex(32), created_at=utcnow()
        )
    )
    return session.execute(select(PetitionSecret.value).where(PetitionSecret.name == name)).scalar_one()


def delete_petition(session: Session, petition_id: int) -> bool:
    return bool(session.execute(delete(Petition).where(Petition.id == petition_id)).rowcount)  # type: ignore[attr-defined]
