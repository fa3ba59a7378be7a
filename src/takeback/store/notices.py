"""Notices: drafted, sent, tracked through their states, with the URLs they cover and an event history.

States::

    drafted ─► sent ─► acknowledged ─► removed | refused | expired ─► escalated
       └──► queued (sending failed; retried) ─► sent

``sent``/``acknowledged`` notices carry a ``due_at`` deadline; ``expired`` means it passed without removal.
Every transition is checked against ``TRANSITIONS`` and recorded as a notice event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from takeback.store._sql import check_text, clamp_after, is_id
from takeback.store.errors import InvalidInput, StoreError
from takeback.store.models import Case, utcnow
from takeback.store.models_findings import Finding
from takeback.store.models_notices import IntakeRequest, Notice, NoticeEvent, NoticeUrl, Party

STATES = ("drafted", "queued", "sent", "acknowledged", "removed", "refused", "expired", "escalated")
TRANSITIONS: dict[str, frozenset[str]] = {
    "drafted": frozenset({"sent", "queued"}),
    "queued": frozenset({"sent", "queued"}),
    "sent": frozenset({"acknowledged", "removed", "refused", "expired"}),
    "acknowledged": frozenset({"removed", "refused", "expired"}),
    # A late removal still counts; an expired or refused notice is escalated to the next party.
    "expired": frozenset({"removed", "escalated", "acknowledged"}),
    "refused": frozenset({"escalated", "removed"}),
    "removed": frozenset(),
    "escalated": frozenset({"removed"}),
}
#: States in which the party still owes an answer (the deadline runs).
OPEN_STATES = ("sent", "acknowledged")
CLOSED_STATES = ("removed", "refused", "escalated")
URL_STATUSES = ("listed", "present", "removed")
CHANNELS = ("email", "web_form")
BASES = ("dmca", "takeitdown", "gdpr", "dsa", "delisting", "abuse")


class UnknownNotice(StoreError):
    """No notice with that id."""


class InvalidTransition(StoreError):
    """The notice cannot move from its state to the one asked for."""

    def __init__(self, notice_id: int, current: str, wanted: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none"
        super().__init__(f"notice {notice_id} is {current}; it cannot become {wanted} (allowed: {allowed})")
        self.notice_id = notice_id
        self.current = current
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class NoticeInfo:
    id: int
    case_id: int
    party_id: int | None
    parent_id: int | None
    basis: str
    state: str
    channel: str
    recipient: str | None
    web_form: str | None
    subject: str
    body: str
    data: dict[str, Any]
    message_id: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    due_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class NoticeUrlInfo:
    id: int
    notice_id: int
    finding_id: int | None
    url: str
    status: str
    checked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NoticeEventInfo:
    id: int
    notice_id: int
    at: datetime
    kind: str
    detail: dict[str, Any]


_N = (
    Notice.id, Notice.case_id, Notice.party_id, Notice.parent_id, Notice.basis, Notice.state, Notice.channel,
    Notice.recipient, Notice.web_form, Notice.subject, Notice.body, Notice.data, Notice.message_id, Notice.attempts,
    Notice.last_error, Notice.created_at, Notice.updated_at, Notice.sent_at, Notice.due_at, Notice.closed_at,
)
_U = (NoticeUrl.id, NoticeUrl.notice_id, NoticeUrl.finding_id, NoticeUrl.url, NoticeUrl.status, NoticeUrl.checked_at)
_E = (NoticeEvent.id, NoticeEvent.notice_id, NoticeEvent.at, NoticeEvent.kind, NoticeEvent.detail)


def _notice(row: Any) -> NoticeInfo:
    values = list(row)
    values[11] = json.loads(values[11] or "{}")
    return NoticeInfo(*values)


def _event(row: Any) -> NoticeEventInfo:
    values = list(row)
    values[4] = json.loads(values[4] or "{}")
    return NoticeEventInfo(*values)


def _json(field: str, value: dict[str, Any]) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    check_text(field, text)
    return text


def create_notice(
    session: Session,
    case_id: int,
    basis: str,
    *,
    subject: str,
    body: str,
    data: dict[str, Any],
    urls: Sequence[tuple[str, int | None]],
    party_id: int | None = None,
    parent_id: int | None = None,
    channel: str = "email",
    recipient: str | None = None,
    web_form: str | None = None,
    now: datetime | None = None,
) -> NoticeInfo:
    """A drafted notice covering ``urls`` (url, finding id or None); records the "drafted" event."""
    if basis not in BASES:
        raise InvalidInput("basis", f"unknown basis {basis!r}")
    if channel not in CHANNELS:
        raise InvalidInput("channel", f"unknown channel {channel!r}")
    if not urls:
        raise InvalidInput("urls", "a notice needs at least one URL")
    check_text("subject", subject, 500)
    check_text("body", body)
    check_text("recipient", recipient, 254, optional=True)
    check_text("web_form", web_form, 2048, optional=True)
    if not is_id(case_id) or session.execute(select(Case.id).where(Case.id == case_id)).first() is None:
        raise InvalidInput("case_id", f"no case {case_id}")
    if party_id is not None and (not is_id(party_id) or session.get(Party, party_id) is None):
        raise InvalidInput("party_id", f"no party {party_id}")
    if parent_id is not None and (not is_id(parent_id, 64) or session.get(Notice, parent_id) is None):
        raise InvalidInput("parent_id", f"no notice {parent_id}")
    now = now or utcnow()
    notice = Notice(
        case_id=case_id, party_id=party_id, parent_id=parent_id, basis=basis, state="drafted", channel=channel,
        recipient=recipient, web_form=web_form, subject=subject, body=body, data=_json("data", data), attempts=0,
        created_at=now, updated_at=now,
    )
    session.add(notice)
    session.flush()
    seen: set[str] = set()
    for url, finding_id in urls:
        check_text("url", url, 2048)
        if url in seen:
            continue
        seen.add(url)
        if finding_id is not None and (not is_id(finding_id, 64) or session.get(Finding, finding_id) is None):
            raise InvalidInput("finding_id", f"no finding {finding_id}")
        session.add(NoticeUrl(notice_id=notice.id, finding_id=finding_id, url=url, status="listed"))
    add_notice_event(session, notice.id, "drafted", {"basis": basis, "urls": len(seen)}, at=now)
    return get_notice(session, notice.id)  # type: ignore[return-value]


def get_notice(session: Session, notice_id: int, *, for_update: bool = False) -> NoticeInfo | None:
    """The notice; ``for_update`` locks its row until the transaction ends (one writer acts on it at a time)."""
    if not is_id(notice_id, 64):
        return None
    stmt = select(*_N).where(Notice.id == notice_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).first()
    return _notice(row) if row else None


def child_notices(session: Session, parent_id: int) -> list[NoticeInfo]:
    """Notices that follow up or escalate ``parent_id`` (oldest first)."""
    if not is_id(parent_id, 64):
        return []
    return [_notice(row) for row in session.execute(select(*_N).where(Notice.parent_id == parent_id)
                                                    .order_by(Notice.id))]


def notices_lacking_events(session: Session, states: Sequence[str], kinds: Sequence[str], *, limit: int = 1000
                           ) -> list[NoticeInfo]:
    """Notices in ``states`` with no event of any of ``kinds`` (oldest first): what a follow-through step has not
    done yet for them."""
    done = exists().where(NoticeEvent.notice_id == Notice.id, NoticeEvent.kind.in_(list(kinds)))
    stmt = select(*_N).where(Notice.state.in_(list(states)), ~done).order_by(Notice.id).limit(int(limit))
    return [_notice(row) for row in session.execute(stmt)]


def list_notices(
    session: Session,
    case_id: int | None = None,
    *,
    state: str | None = None,
    limit: int = 100,
    after_id: int = 0,
) -> list[NoticeInfo]:
    limit = max(0, min(int(limit), 10_000))
    stmt = select(*_N).where(Notice.id > clamp_after(after_id)).order_by(Notice.id).limit(limit)
    if case_id is not None:
        if not is_id(case_id):
            return []
        stmt = stmt.where(Notice.case_id == case_id)
    if state is not None:
        stmt = stmt.where(Notice.state == state)
    return [_notice(row) for row in session.execute(stmt)]


def notice_urls(session: Session, notice_id: int) -> list[NoticeUrlInfo]:
    if not is_id(notice_id, 64):
        return []
    return [NoticeUrlInfo(*row) for row in session.execute(select(*_U).where(NoticeUrl.notice_id == notice_id)
                                                           .order_by(NoticeUrl.id))]


def notices_for_url(session: Session, case_id: int, url: str) -> list[NoticeInfo]:
    """Every notice of the case that covers ``url`` (oldest first), to reopen a chain when the URL comes back."""
    if not is_id(case_id) or not isinstance(url, str):
        return []
    stmt = (
        select(*_N).join(NoticeUrl, NoticeUrl.notice_id == Notice.id)
        .where(Notice.case_id == case_id, NoticeUrl.url == url).order_by(Notice.id)
    )
    return [_notice(row) for row in session.execute(stmt)]


def set_url_status(session: Session, notice_id: int, url: str, status: str, *, checked_at: datetime | None = None
                   ) -> bool:
    if status not in URL_STATUSES:
        raise InvalidInput("status", f"unknown URL status {status!r}")
    if not is_id(notice_id, 64):
        return False
    row = session.execute(
        update(NoticeUrl).where(NoticeUrl.notice_id == notice_id, NoticeUrl.url == url)
        .values(status=status, checked_at=checked_at or utcnow()).returning(NoticeUrl.id)
    ).first()
    return row is not None


def add_notice_event(session: Session, notice_id: int, kind: str, detail: dict[str, Any] | None = None, *,
                     at: datetime | None = None) -> NoticeEventInfo:
    check_text("kind", kind, 32)
    if not is_id(notice_id, 64):
        raise UnknownNotice(notice_id)
    event = NoticeEvent(notice_id=notice_id, at=at or utcnow(), kind=kind, detail=_json("detail", detail or {}))
    session.add(event)
    session.flush()
    return NoticeEventInfo(event.id, notice_id, event.at, kind, detail or {})


def list_notice_events(session: Session, notice_id: int) -> list[NoticeEventInfo]:
    if not is_id(notice_id, 64):
        return []
    stmt = select(*_E).where(NoticeEvent.notice_id == notice_id).order_by(NoticeEvent.id)
    return [_event(row) for row in session.execute(stmt)]


class _Unset:
    pass


UNSET: Any = _Unset()


def transition(
    session: Session,
    notice_id: int,
    state: str,
    *,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
    due_at: datetime | _Unset | None = UNSET,
    message_id: str | None = None,
    error: str | None = None,
) -> NoticeInfo:
    """Move a notice to ``state`` (checked against ``TRANSITIONS``) and record the event.  ``sent`` stamps sent_at
    and counts an attempt; ``queued`` counts a failed attempt and keeps ``error``; closed states stamp closed_at.
    The row is locked first, so two concurrent transitions cannot both succeed from the same state."""
    if state not in STATES:
        raise InvalidInput("state", f"unknown state {state!r}; one of {', '.join(STATES)}")
    if not is_id(notice_id, 64):
        raise UnknownNotice(notice_id)
    row = session.execute(
        select(Notice.state, Notice.attempts).where(Notice.id == notice_id).with_for_update()
    ).first()
    if row is None:
        raise UnknownNotice(notice_id)
    current, attempts = row
    if state not in TRANSITIONS[current]:
        raise InvalidTransition(notice_id, current, state)
    now = now or utcnow()
    values: dict[str, Any] = {"state": state, "updated_at": now}
    if state == "sent":
        values.update(sent_at=now, attempts=attempts + 1, last_error=None)
        if message_id is not None:
            check_text("message_id", message_id, 255)
            values["message_id"] = message_id
    if state == "queued":
        values.update(attempts=attempts + 1, last_error=(error or "")[:2000].replace("\x00", ""))
    if state in CLOSED_STATES:
        values["closed_at"] = now
    if not isinstance(due_at, _Unset):
        values["due_at"] = due_at
    session.execute(update(Notice).where(Notice.id == notice_id).values(**values))
    event_detail = {"from": current, **(detail or {})}
    if error:
        event_detail["error"] = error[:2000]
    add_notice_event(session, notice_id, state, event_detail, at=now)
    return get_notice(session, notice_id)  # type: ignore[return-value]


def due_notices(session: Session, now: datetime, *, limit: int = 1000) -> list[NoticeInfo]:
    """Open notices whose deadline has passed (oldest deadline first)."""
    stmt = (
        select(*_N).where(Notice.state.in_(OPEN_STATES), Notice.due_at.is_not(None), Notice.due_at <= now)
        .order_by(Notice.due_at, Notice.id).limit(int(limit))
    )
    return [_notice(row) for row in session.execute(stmt)]


def queued_notices(session: Session, *, limit: int = 1000) -> list[NoticeInfo]:
    stmt = select(*_N).where(Notice.state == "queued").order_by(Notice.id).limit(int(limit))
    return [_notice(row) for row in session.execute(stmt)]


def count_notices(session: Session, case_id: int) -> dict[str, int]:
    if not is_id(case_id):
        return {}
    stmt = select(Notice.state, func.count()).where(Notice.case_id == case_id).group_by(Notice.state)
    return {state: int(n) for state, n in session.execute(stmt)}


def reappeared_notices(session: Session, *, limit: int = 1000) -> list[tuple[NoticeInfo, list[NoticeUrlInfo]]]:
    """Removed notices whose findings were seen again after the removal (a re-upload), and that have no follow-up
    notice yet, with the URLs that came back (oldest notice first)."""
    child = aliased(Notice)
    stmt = (
        select(*_N, *_U)
        .join(NoticeUrl, NoticeUrl.notice_id == Notice.id)
        .join(Finding, Finding.id == NoticeUrl.finding_id)
        .where(
            Notice.state == "removed",
            Finding.status == "open",
            Notice.closed_at.is_not(None),
            Finding.last_seen_at > Notice.closed_at,
            ~exists().where(child.parent_id == Notice.id),
        )
        .order_by(Notice.id, NoticeUrl.id)
        .limit(int(limit))
    )
    found: dict[int, tuple[NoticeInfo, list[NoticeUrlInfo]]] = {}
    width = len(_N)
    for row in session.execute(stmt):
        notice = _notice(row[:width])
        found.setdefault(notice.id, (notice, []))[1].append(NoticeUrlInfo(*row[width:]))
    return list(found.values())


#: Notices still waiting for removal.
AWAITING_REMOVAL = ("sent", "acknowledged", "expired", "refused")


def notices_to_recheck(session: Session, *, checked_before: datetime, limit: int = 1000,
                       states: Sequence[str] = AWAITING_REMOVAL) -> list[NoticeInfo]:
    """Notices in ``states`` (by default: still waiting for removal) whose URLs were not all re-checked since
    ``checked_before``.  Removed notices are only returned while no follow-up continues their chain (a follow-up
    is re-checked itself)."""
    stale = exists().where(
        NoticeUrl.notice_id == Notice.id,
        (NoticeUrl.checked_at.is_(None)) | (NoticeUrl.checked_at < checked_before),
    )
    stmt = select(*_N).where(Notice.state.in_(list(states)), stale)
    if "removed" in states:
        child = aliased(Notice)
        stmt = stmt.where((Notice.state != "removed") | ~exists().where(child.parent_id == Notice.id))
    stmt = stmt.order_by(Notice.id).limit(int(limit))
    return [_notice(row) for row in session.execute(stmt)]


# --- inbound TAKE IT DOWN requests (a platform running takeback receives them) ---------------------------------------

INTAKE_STATUSES = ("received", "accepted", "rejected")


@dataclass(frozen=True, slots=True)
class IntakeInfo:
    id: int
    reference: str
    status: str
    data: dict[str, Any]
    signals: list[tuple[str, str]]
    received_at: datetime
    due_at: datetime
    decided_at: datetime | None
    bank_id: int | None
    signals_added: int
    note: str | None
    #: The platform's uploads found to be copies when it was accepted (None: no sweep ran).
    upload_matches: list[dict[str, Any]] | None = None
    uploads_matched: int | None = None


_I = (
    IntakeRequest.id, IntakeRequest.reference, IntakeRequest.status, IntakeRequest.data, IntakeRequest.signals,
    IntakeRequest.received_at, IntakeRequest.due_at, IntakeRequest.decided_at, IntakeRequest.bank_id,
    IntakeRequest.signals_added, IntakeRequest.note, IntakeRequest.upload_matches, IntakeRequest.uploads_matched,
)


def _intake(row: Any) -> IntakeInfo:
    values = list(row)
    values[3] = json.loads(values[3])
    values[4] = [tuple(pair) for pair in json.loads(values[4])]
    values[11] = json.loads(values[11]) if values[11] is not None else None
    return IntakeInfo(*values)


def create_intake(session: Session, reference: str, data: dict[str, Any], signals: Sequence[tuple[str, str]], *,
                  received_at: datetime, due_at: datetime) -> IntakeInfo:
    check_text("reference", reference, 32)
    request = IntakeRequest(
        reference=reference, status="received", data=_json("data", data),
        signals=json.dumps([list(s) for s in signals]), received_at=received_at, due_at=due_at, signals_added=0,
    )
    session.add(request)
    session.flush()
    return get_intake(session, request.id)  # type: ignore[return-value]


def get_intake(session: Session, intake_id: int) -> IntakeInfo | None:
    if not is_id(intake_id, 64):
        return None
    row = session.execute(select(*_I).where(IntakeRequest.id == intake_id)).first()
    return _intake(row) if row else None


def get_intake_by_reference(session: Session, reference: str) -> IntakeInfo | None:
    if not isinstance(reference, str) or len(reference) > 32:
        return None
    row = session.execute(select(*_I).where(IntakeRequest.reference == reference)).first()
    return _intake(row) if row else None


def list_intake(session: Session, *, status: str | None = None, limit: int = 100, after_id: int = 0
                ) -> list[IntakeInfo]:
    """Requests oldest deadline first (the order a moderator must work in)."""
    stmt = select(*_I).where(IntakeRequest.id > clamp_after(after_id))
    if status is not None:
        stmt = stmt.where(IntakeRequest.status == status)
    stmt = stmt.order_by(IntakeRequest.due_at, IntakeRequest.id).limit(max(0, min(int(limit), 10_000)))
    return [_intake(row) for row in session.execute(stmt)]


def decide_intake(session: Session, intake_id: int, status: str, *, at: datetime, note: str | None = None,
                  bank_id: int | None = None, signals_added: int = 0,
                  upload_matches: Sequence[dict[str, Any]] | None = None) -> IntakeInfo:
    """Accept or reject a received request (once: a decided request raises InvalidTransition).
    ``upload_matches``: the platform's uploads the acceptance found to be copies (``uploads_matched`` counts the
    distinct ``upload_ref`` among them)."""
    if status not in ("accepted", "rejected"):
        raise InvalidInput("status", "must be accepted or rejected")
    check_text("note", note, 5000, optional=True)
    if not is_id(intake_id, 64):
        raise UnknownNotice(intake_id)
    row = session.execute(
        select(IntakeRequest.status).where(IntakeRequest.id == intake_id).with_for_update()
    ).first()
    if row is None:
        raise UnknownNotice(intake_id)
    if row[0] != "received":
        raise InvalidTransition(intake_id, row[0], status)
    values: dict[str, Any] = {"status": status, "decided_at": at, "note": note, "bank_id": bank_id,
                              "signals_added": signals_added}
    if upload_matches is not None:
        values["upload_matches"] = json.dumps(list(upload_matches), sort_keys=True, default=str)
        check_text("upload_matches", values["upload_matches"])
        values["uploads_matched"] = len({str(m.get("upload_ref")) for m in upload_matches})
    session.execute(update(IntakeRequest).where(IntakeRequest.id == intake_id).values(**values))
    return get_intake(session, intake_id)  # type: ignore[return-value]
