"""The evidence log: per case, append-only, hash-chained.

Each entry's ``hash`` is the SHA-256 of a canonical JSON document holding the case, the entry's position, time,
kind, payload and the previous entry's hash (the first entry's previous hash is 64 zeros).  Editing any entry
changes its hash and breaks the link from the next one; deleting an entry leaves a gap in the positions and a broken
link.  Deleting the newest entries is only detectable against a head hash kept elsewhere (an export, a sent e-mail):
``verify_evidence(..., expected_head=...)`` checks it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from takeback.store._sql import check_text, is_id
from takeback.store.errors import StoreError
from takeback.store.models import Case, utcnow
from takeback.store.models_notices import EvidenceEntry

if TYPE_CHECKING:
    from takeback.store.findings import FindingInfo

GENESIS = "0" * 64
EVIDENCE_KINDS = (
    "finding", "fetch", "party_resolved", "notice_drafted", "notice_sent", "send_failed", "reply", "state",
    "removal_confirmed", "reappeared", "escalation_proposed", "note",
    # follow-through (reminders, escalations carried out) and the discover re-checks' status changes
    "reminder_sent", "reminder_failed", "escalated", "finding_check",
)


class UnknownCase(StoreError):
    """No case with that id."""


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    id: int
    case_id: int
    position: int
    at: datetime
    kind: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class EvidenceCheck:
    ok: bool
    entries: int
    #: The newest entry's hash (keep it somewhere else to detect truncation later).
    head: str
    #: Position of the first entry that does not verify (None when ok).
    first_bad_position: int | None = None
    reason: str = ""


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(case_id: int, position: int, at: datetime, kind: str, payload_json: str, prev_hash: str) -> str:
    document = _canonical(
        {"case_id": case_id, "position": position, "at": at.isoformat(timespec="microseconds"), "kind": kind,
         "payload": payload_json, "prev": prev_hash}
    )
    return hashlib.sha256(document.encode()).hexdigest()


_COLUMNS = (
    EvidenceEntry.id, EvidenceEntry.case_id, EvidenceEntry.position, EvidenceEntry.at, EvidenceEntry.kind,
    EvidenceEntry.payload, EvidenceEntry.prev_hash, EvidenceEntry.hash,
)


def _record(row: Any) -> EvidenceRecord:
    values = list(row)
    values[5] = json.loads(values[5])
    return EvidenceRecord(*values)


def append_evidence(
    session: Session, case_id: int, kind: str, payload: dict[str, Any], *, at: datetime | None = None
) -> EvidenceRecord:
    """Append one entry to the case's log.  Writers to one case take turns (the case row is locked on PostgreSQL;
    SQLite transactions already hold the write lock), so positions never collide."""
    if kind not in EVIDENCE_KINDS:
        raise StoreError(f"unknown evidence kind {kind!r}")
    if not is_id(case_id) or session.execute(
        select(Case.id).where(Case.id == case_id).with_for_update()
    ).first() is None:
        raise UnknownCase(case_id)
    payload_json = _canonical(payload)
    check_text("payload", payload_json)
    # Stored as UTC to the microsecond on both backends: hash exactly what will be read back.
    at = (at or utcnow()).astimezone(UTC)
    last = session.execute(
        select(EvidenceEntry.position, EvidenceEntry.hash)
        .where(EvidenceEntry.case_id == case_id)
        .order_by(EvidenceEntry.position.desc())
        .limit(1)
    ).first()
    position, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    digest = entry_hash(case_id, position, at, kind, payload_json, prev)
    entry = EvidenceEntry(
        case_id=case_id, position=position, at=at, kind=kind, payload=payload_json, prev_hash=prev, hash=digest
    )
    session.add(entry)
    session.flush()
    return EvidenceRecord(entry.id, case_id, position, at, kind, json.loads(payload_json), prev, digest)


def evidence_digest(value: Any) -> str:
    """SHA-256 of a value's canonical JSON: what the log keeps of bulky evidence (the finding row holds the rest)."""
    return hashlib.sha256(_canonical(value).encode()).hexdigest()


def log_finding(session: Session, finding: FindingInfo, event: str, *, by: str, kind: str = "finding",
                at: datetime | None = None, extra: dict[str, Any] | None = None) -> EvidenceRecord:
    """One evidence entry for what a scan or re-check saw of a finding (``event``: found, seen, removed,
    reopened ...), in the caller's transaction.  The log keeps the URL, status, the content hashes and the SHA-256
    of the full evidence (which the finding row holds), so the chain proves what was seen without growing by the
    size of every page's metadata."""
    evidence = finding.evidence or {}
    payload: dict[str, Any] = {
        "event": event, "by": by, "finding_id": finding.id, "url": finding.url, "kind": finding.kind,
        "status": finding.status, "http_status": finding.http_status, "evidence_sha256": evidence_digest(evidence),
    }
    for name in ("sha256", "pdq"):
        value = evidence.get(name)
        if isinstance(value, str) and len(value) == 64:
            payload[name] = value
    payload.update(extra or {})
    return append_evidence(session, finding.case_id, kind, payload, at=at)


def list_evidence(session: Session, case_id: int, *, after_position: int = 0, limit: int | None = None
                  ) -> list[EvidenceRecord]:
    if not is_id(case_id):
        return []
    stmt = (
        select(*_COLUMNS)
        .where(EvidenceEntry.case_id == case_id, EvidenceEntry.position > max(0, int(after_position)))
        .order_by(EvidenceEntry.position)
    )
    if limit is not None:
        stmt = stmt.limit(max(0, int(limit)))
    return [_record(row) for row in session.execute(stmt)]


def evidence_head(session: Session, case_id: int) -> str:
    if not is_id(case_id):
        return GENESIS
    row = session.execute(
        select(EvidenceEntry.hash).where(EvidenceEntry.case_id == case_id).order_by(EvidenceEntry.position.desc())
        .limit(1)
    ).first()
    return row[0] if row else GENESIS


def count_evidence(session: Session, case_id: int) -> int:
    if not is_id(case_id):
        return 0
    return int(session.execute(select(func.count()).where(EvidenceEntry.case_id == case_id)).scalar_one())


def verify_evidence(session: Session, case_id: int, *, expected_head: str | None = None) -> EvidenceCheck:
    """Walk the case's log from the start and report the first entry that breaks the chain."""
    prev = GENESIS
    count = 0
    if not is_id(case_id):
        return EvidenceCheck(True, 0, GENESIS)
    stmt = select(*_COLUMNS).where(EvidenceEntry.case_id == case_id).order_by(EvidenceEntry.position)
    for row in session.execute(stmt):
        _, _, position, at, kind, payload_json, prev_hash, digest = row
        expected_position = count + 1
        if position != expected_position:
            return EvidenceCheck(False, count, prev, expected_position,
                                 f"entry {expected_position} is missing (next stored entry is {position})")
        if prev_hash != prev:
            return EvidenceCheck(False, count, prev, position,
                                 f"entry {position} does not link to entry {position - 1} (edited or replaced)")
        if entry_hash(case_id, position, at, kind, payload_json, prev_hash) != digest:
            return EvidenceCheck(False, count, prev, position, f"entry {position} was changed after it was written")
        prev = digest
        count += 1
    if expected_head is not None and expected_head != prev:
        return EvidenceCheck(False, count, prev, count + 1,
                             "the newest entries differ from the expected head (entries removed from the end?)")
    return EvidenceCheck(True, count, prev)
