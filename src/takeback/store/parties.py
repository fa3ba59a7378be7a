"""Parties who can remove a finding (site, host, registrar, platform, search engine, regulator).

A party is identified by a stable ``key`` and shared across cases; resolving it again updates the contact and the
recorded resolution path instead of creating a duplicate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from takeback.store._sql import check_text, is_id
from takeback.store.errors import InvalidInput
from takeback.store.models import utcnow
from takeback.store.models_findings import Finding
from takeback.store.models_notices import FindingParty, Party

PARTY_KINDS = ("site", "host", "upstream", "registrar", "platform", "search_engine", "regulator")


@dataclass(frozen=True, slots=True)
class PartyInfo:
    id: int
    kind: str
    key: str
    name: str
    email: str | None
    web_form: str | None
    source: str
    #: How the party was found: a list of steps, each a dict (e.g. {"step": "rdap", "url": ..., "status": 200}).
    resolution: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    Party.id, Party.kind, Party.key, Party.name, Party.email, Party.web_form, Party.source, Party.resolution,
    Party.created_at, Party.updated_at,
)


def _info(row: Any) -> PartyInfo:
    values = list(row)
    values[7] = json.loads(values[7] or "[]")
    return PartyInfo(*values)


def upsert_party(
    session: Session,
    kind: str,
    key: str,
    name: str,
    *,
    email: str | None = None,
    web_form: str | None = None,
    source: str = "manual",
    resolution: list[dict[str, Any]] | None = None,
) -> PartyInfo:
    """Create the party with this ``key``, or update its contact and resolution path."""
    if kind not in PARTY_KINDS:
        raise InvalidInput("kind", f"unknown party kind {kind!r}")
    check_text("key", key, 255)
    check_text("name", name, 200)
    check_text("email", email, 254, optional=True)
    check_text("web_form", web_form, 2048, optional=True)
    check_text("source", source, 32)
    path = json.dumps(resolution or [], sort_keys=True, default=str)
    check_text("resolution", path)
    now = utcnow()
    values = {"kind": kind, "name": name, "email": email, "web_form": web_form, "source": source,
              "resolution": path, "updated_at": now}
    row = session.execute(update(Party).where(Party.key == key).values(**values).returning(*_COLUMNS)).first()
    if row is None:
        party = Party(key=key, created_at=now, **values)
        session.add(party)
        session.flush()
        row = session.execute(select(*_COLUMNS).where(Party.id == party.id)).one()
    return _info(row)


def get_party(session: Session, party_id: int) -> PartyInfo | None:
    if not is_id(party_id):
        return None
    row = session.execute(select(*_COLUMNS).where(Party.id == party_id)).first()
    return _info(row) if row else None


def get_party_by_key(session: Session, key: str) -> PartyInfo | None:
    if not isinstance(key, str) or len(key) > 255:
        return None
    row = session.execute(select(*_COLUMNS).where(Party.key == key)).first()
    return _info(row) if row else None


def list_parties(session: Session, *, kind: str | None = None) -> list[PartyInfo]:
    stmt = select(*_COLUMNS).order_by(Party.id)
    if kind is not None:
        stmt = stmt.where(Party.kind == kind)
    return [_info(row) for row in session.execute(stmt)]


def link_finding_party(session: Session, finding_id: int, party_id: int, kind: str, *, at: datetime | None = None
                       ) -> None:
    """Remember that ``party_id`` can remove ``finding_id`` (in the role ``kind``); re-linking refreshes the time."""
    if kind not in PARTY_KINDS:
        raise InvalidInput("kind", f"unknown party kind {kind!r}")
    if not is_id(finding_id, 64) or session.get(Finding, finding_id) is None:
        raise InvalidInput("finding_id", f"no finding {finding_id}")
    if not is_id(party_id) or session.get(Party, party_id) is None:
        raise InvalidInput("party_id", f"no party {party_id}")
    link = session.get(FindingParty, (finding_id, party_id))
    if link is None:
        session.add(FindingParty(finding_id=finding_id, party_id=party_id, kind=kind, resolved_at=at or utcnow()))
    else:
        link.kind = kind
        link.resolved_at = at or utcnow()
    session.flush()


def finding_parties(session: Session, finding_id: int) -> list[PartyInfo]:
    """The parties resolved for a finding, in the order they were linked."""
    if not is_id(finding_id, 64):
        return []
    stmt = (
        select(*_COLUMNS).join(FindingParty, FindingParty.party_id == Party.id)
        .where(FindingParty.finding_id == finding_id).order_by(FindingParty.resolved_at, Party.id)
    )
    return [_info(row) for row in session.execute(stmt)]
