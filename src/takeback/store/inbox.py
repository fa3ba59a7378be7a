"""The TAKE IT DOWN inbox (platform side): requests are stored as received, each with its 48-hour deadline, and
decided once (removed or rejected) by an operator, who is recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from takeback.store._sql import check_text, is_id
from takeback.store.errors import InvalidInput, StoreError
from takeback.store.models import utcnow
from takeback.store.models_inbox import InboxRequest

REMOVAL_DEADLINE = timedelta(hours=48)
DECISIONS = ("removed", "rejected")
MAX_URLS = 50


class UnknownRequest(StoreError):
    """No inbox request with that id."""


class AlreadyDecided(StoreError):
    """The request was already decided; decisions are final (a new request can be filed)."""


@dataclass(frozen=True, slots=True)
class InboxRequestInfo:
    id: int
    received_at: datetime
    due_at: datetime
    requester_name: str
    requester_email: str
    signature: str
    urls: tuple[str, ...]
    description: str
    good_faith: bool
    status: str
    decided_at: datetime | None
    decided_by: int | None
    decision_note: str
    copies_removed: int

    def hours_left(self, now: datetime | None = None) -> float:
        return ((self.due_at - (now or utcnow())).total_seconds()) / 3600


_COLUMNS = (
    InboxRequest.id, InboxRequest.received_at, InboxRequest.due_at, InboxRequest.requester_name,
    InboxRequest.requester_email, InboxRequest.signature, InboxRequest.urls, InboxRequest.description,
    InboxRequest.good_faith, InboxRequest.status, InboxRequest.decided_at, InboxRequest.decided_by,
    InboxRequest.decision_note, InboxRequest.copies_removed,
)


def _info(row: object) -> InboxRequestInfo:
    values = list(row)  # type: ignore[call-overload]
    values[6] = tuple(json.loads(values[6]))
    return InboxRequestInfo(*values)


def file_request(
    session: Session, *, name: str, email: str, signature: str, urls: list[str], description: str,
    good_faith: bool, ip: str = "", received_at: datetime | None = None,
) -> InboxRequestInfo:
    """Store a request exactly as received.  Completeness (the Act's four elements) is the caller's check; here
    only what no backend can store is refused."""
    check_text("name", name, 200)
    check_text("email", email, 320)
    check_text("signature", signature, 200)
    check_text("description", description, 10_000)
    if not urls or len(urls) > MAX_URLS:
        raise InvalidInput("urls", f"give between 1 and {MAX_URLS} URLs")
    for i, url in enumerate(urls):
        check_text(f"urls[{i}]", url, 2048)
    at = received_at or utcnow()
    row = session.execute(
        insert(InboxRequest)
        .values(
            received_at=at, due_at=at + REMOVAL_DEADLINE, requester_name=name, requester_email=email,
            signature=signature, urls=json.dumps(urls), description=description, good_faith=good_faith,
            status="received", decision_note="", copies_removed=0, ip=ip[:64],
        )
        .returning(*_COLUMNS)
    ).one()
    return _info(row)


def get_request(session: Session, request_id: int) -> InboxRequestInfo | None:
    if not is_id(request_id, 64):
        return None
    row = session.execute(select(*_COLUMNS).where(InboxRequest.id == request_id)).first()
    return _info(row) if row else None


def list_requests(session: Session, *, status: str | None = None, limit: int = 200) -> list[InboxRequestInfo]:
    """Open requests first, most urgent first; then decided ones, newest first."""
    stmt = select(*_COLUMNS).limit(max(1, min(limit, 1000)))
    if status is not None:
        stmt = stmt.where(InboxRequest.status == status)
    stmt = stmt.order_by((InboxRequest.status != "received"), InboxRequest.due_at, InboxRequest.id.desc())
    return [_info(r) for r in session.execute(stmt)]


def decide(
    session: Session, request_id: int, decision: str, *, user_id: int | None, note: str = "", copies_removed: int = 0,
    at: datetime | None = None,
) -> InboxRequestInfo:
    if decision not in DECISIONS:
        raise InvalidInput("decision", f"must be one of {', '.join(DECISIONS)}")
    check_text("note", note, 10_000)
    if type(copies_removed) is not int or not 0 <= copies_removed <= 1_000_000:
        raise InvalidInput("copies_removed", "must be a whole number from 0")
    if get_request(session, request_id) is None:
        raise UnknownRequest(request_id)
    row = session.execute(
        update(InboxRequest)
        .where(InboxRequest.id == request_id, InboxRequest.status == "received")
        .values(status=decision, decided_at=at or utcnow(), decided_by=user_id, decision_note=note,
                copies_removed=copies_removed)
        .returning(*_COLUMNS)
    ).first()
    if row is None:
        raise AlreadyDecided(request_id)
    return _info(row)


def count_recent_requests(session: Session, ip: str, since: datetime) -> int:
    return int(session.execute(
        select(func.count()).where(InboxRequest.ip == ip, InboxRequest.received_at >= since)
    ).scalar_one())
