"""Takedown work as plain functions: draft a notice for findings, send it, record replies, find overdue notices and
propose escalation, re-check URLs until they are gone, and keep the evidence log of all of it.

Every function takes a ``Session`` (the caller commits, like the store's repositories) and a ``now`` so tests and
the future jobs layer control the clock.  Each step that matters as proof appends to the case's hash-chained
evidence log.  Re-checks are async (they fetch through the discover fetcher) and take a session factory, because
fetching must not hold a database transaction open.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.mail import Mail, MailError, send_mail
from takeback.store.models import utcnow
from takeback.store.notices import UNSET, NoticeInfo
from takeback.store.parties import PartyInfo
from takeback.takedown.deadlines import deadline_for
from takeback.takedown.directory import Directory
from takeback.takedown.notices import NOTICE_TYPES, InvalidNotice, build_notice, check_email
from takeback.takedown.parties import DEFAULT_BASIS_FOR, ESCALATION_ORDER, FetcherLike, PartyResolution
from takeback.takedown.render import render_notice

#: Re-checks: statuses that mean the content is gone.
GONE_STATUSES = frozenset({404, 410, 451})
#: States a notice can be in when a re-check confirms removal.
REMOVABLE_STATES = frozenset({"sent", "acknowledged", "expired", "refused", "escalated"})
MANUAL_STATES = ("sent", "acknowledged", "removed", "refused", "expired")


class TakedownError(Exception):
    """Base class; ``code`` is machine-readable."""

    code = "takedown_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownFinding(TakedownError):
    code = "unknown_finding"


class NotSendable(TakedownError):
    code = "not_sendable"


class NotEscalatable(TakedownError):
    code = "not_escalatable"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _material(finding: store.FindingInfo) -> dict[str, Any]:
    """URL and hashes of what was found there: the evidence's sha256 / pdq when the crawler recorded them."""
    evidence = finding.evidence or {}
    material: dict[str, Any] = {"url": finding.url, "finding_id": finding.id}
    for name in ("sha256", "pdq"):
        value = evidence.get(name)
        if value is None and isinstance(evidence.get("media"), dict):
            value = evidence["media"].get(name)
        if isinstance(value, str) and len(value) == 64:
            material[name] = value.lower()
    return material


# --- parties -----------------------------------------------------------------------------------------------------


def save_resolution(session: Session, case_id: int, finding_id: int, resolution: PartyResolution,
                    *, now: datetime | None = None) -> list[PartyInfo]:
    """Store the resolved parties, link them to the finding, and log the resolution path as evidence."""
    now = now or utcnow()
    saved = []
    for candidate in resolution.parties:
        party = store.upsert_party(
            session, candidate.kind, candidate.key, candidate.name[:200], email=candidate.email,
            web_form=candidate.web_form, source=candidate.source,
            resolution=[*candidate.resolution, *([{"note": candidate.note}] if candidate.note else [])],
        )
        store.link_finding_party(session, finding_id, party.id, candidate.kind, at=now)
        saved.append(party)
    store.append_evidence(session, case_id, "party_resolved", {
        "finding_id": finding_id, "url": resolution.url,
        "parties": [{"id": p.id, "kind": p.kind, "name": p.name, "email": p.email, "web_form": p.web_form,
                     "source": p.source} for p in saved],
        "steps": list(resolution.steps),
    }, at=now)
    return saved


# --- drafting ----------------------------------------------------------------------------------------------------


def draft_notice(
    session: Session,
    case_id: int,
    finding_ids: Iterable[int],
    basis: str,
    details: dict[str, Any],
    *,
    party_id: int | None = None,
    recipient: str | None = None,
    parent_id: int | None = None,
    now: datetime | None = None,
) -> NoticeInfo:
    """A complete, rendered notice for one party covering the given findings, stored as drafted.

    ``details`` holds what the person provides (sender, signature, statements, the work, grounds, explanation ...);
    the URLs and hashes come from the findings.  Raises ``IncompleteNotice`` naming the missing elements,
    ``InvalidNotice``, ``UnknownFinding``."""
    now = now or utcnow()
    ids = list(dict.fromkeys(finding_ids))
    if not ids:
        raise UnknownFinding("choose at least one finding")
    findings = []
    for finding_id in ids:
        finding = store.get_finding(session, finding_id) if isinstance(finding_id, int) else None
        if finding is None or finding.case_id != case_id:
            raise UnknownFinding(f"case {case_id} has no finding {finding_id}")
        findings.append(finding)
    party = store.get_party(session, party_id) if party_id is not None else None
    if party_id is not None and party is None:
        raise TakedownError(f"no party {party_id}")
    if recipient:
        try:
            recipient = check_email(recipient.strip())
        except ValueError as exc:
            raise InvalidNotice([f"recipient: {exc}"]) from None
    else:
        recipient = party.email if party else None
    web_form = party.web_form if party else None
    data = {k: v for k, v in details.items() if k not in ("basis", "materials")}
    data["materials"] = [_material(f) for f in findings]
    if party and not data.get("recipient_name"):
        data["recipient_name"] = party.name
    notice = build_notice(basis, data)
    reference = f"TB-{case_id}-{secrets.token_hex(4).upper()}"
    rendered = render_notice(notice, reference=reference, now=now)
    channel = "email" if recipient or not web_form else "web_form"
    info = store.create_notice(
        session, case_id, basis, subject=rendered.subject, body=rendered.text, data=rendered.data,
        urls=[(f.url, f.id) for f in findings], party_id=party.id if party else None, parent_id=parent_id,
        channel=channel, recipient=recipient, web_form=web_form, now=now,
    )
    for finding in findings:
        store.append_evidence(session, case_id, "finding", {
            "finding_id": finding.id, "url": finding.url, "kind": finding.kind, "status": finding.status,
            "first_seen_at": finding.first_seen_at.isoformat(), "last_seen_at": finding.last_seen_at.isoformat(),
            "http_status": finding.http_status, "evidence": finding.evidence,
        }, at=now)
    store.append_evidence(session, case_id, "notice_drafted", {
        "notice_id": info.id, "reference": reference, "basis": basis, "party_id": info.party_id,
        "recipient": recipient, "channel": channel, "urls": [f.url for f in findings],
        "body_sha256": _sha256(rendered.text), "parent_id": parent_id,
    }, at=now)
    return info


# --- sending -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendOutcome:
    notice: NoticeInfo
    sent: bool
    error: str | None = None


_SAFE_ID = re.compile(r"[^A-Za-z0-9-]")


def message_id(notice: NoticeInfo, settings: Settings, part: str) -> str:
    """A Message-ID fixed by the notice and ``part`` (an attempt "a1", a reminder "r1"): a job retried after the
    mail server accepted the message but before we recorded it sends the very same Message-ID again, which lets
    the recipient's systems (and the person reading the evidence) see it is one message, not two."""
    reference = _SAFE_ID.sub("", str(notice.data.get("reference") or ""))[:40] or "notice"
    domain = re.sub(r"[^A-Za-z0-9.-]", "", settings.smtp_from.rpartition("@")[2]).strip(".") or "localhost"
    return f"<{reference}.n{notice.id}.{_SAFE_ID.sub('', part)}@{domain}>"


def _mail_for(notice: NoticeInfo, settings: Settings) -> Mail:
    sender = (notice.data.get("notice") or {}).get("sender") or {}
    reference = str(notice.data.get("reference") or notice.id)
    return Mail(
        to=(notice.recipient or "",),
        subject=" ".join(notice.subject.split()),
        text=notice.body,
        reply_to=sender.get("email") or None,
        headers={"X-Takeback-Notice": reference},
        attachments=(("notice.json", "application/json",
                      store_json(notice.data).encode()),),
        message_id=message_id(notice, settings, f"a{notice.attempts + 1}"),
    )


def store_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def send_notice(
    session: Session,
    settings: Settings,
    notice_id: int,
    *,
    now: datetime | None = None,
    mailer: Callable[[Settings, Mail], str] = send_mail,
) -> SendOutcome:
    """Send a drafted or queued notice by e-mail.  A refused or unreachable server leaves it ``queued`` with the
    error (retry with ``retry_queued`` or send again); success makes it ``sent`` with its deadline."""
    now = now or utcnow()
    notice = store.get_notice(session, notice_id)
    if notice is None:
        raise store.UnknownNotice(notice_id)
    if notice.state not in ("drafted", "queued"):
        raise store.InvalidTransition(notice.id, notice.state, "sent")
    if notice.channel == "web_form" or not notice.recipient:
        where = f" ({notice.web_form})" if notice.web_form else ""
        raise NotSendable(
            f"notice {notice.id} has no e-mail recipient: export its text, submit it through the party's web "
            f"form{where}, then mark it sent"
        )
    try:
        message_id = mailer(settings, _mail_for(notice, settings))
    except MailError as exc:
        queued = store.transition(session, notice.id, "queued", error=str(exc), now=now)
        store.append_evidence(session, notice.case_id, "send_failed",
                              {"notice_id": notice.id, "recipient": notice.recipient, "error": str(exc)[:500]}, at=now)
        return SendOutcome(queued, False, str(exc))
    due = deadline_for(notice.basis, now, settings)
    sent = store.transition(session, notice.id, "sent", now=now, due_at=due, message_id=message_id,
                            detail={"recipient": notice.recipient})
    store.append_evidence(session, notice.case_id, "notice_sent", {
        "notice_id": notice.id, "reference": notice.data.get("reference"), "recipient": notice.recipient,
        "message_id": message_id, "body_sha256": _sha256(notice.body), "due_at": due.isoformat(),
    }, at=now)
    return SendOutcome(sent, True)


def retry_queued(session: Session, settings: Settings, *, now: datetime | None = None,
                 mailer: Callable[[Settings, Mail], str] = send_mail) -> list[SendOutcome]:
    return [send_notice(session, settings, n.id, now=now, mailer=mailer) for n in store.queued_notices(session)]


# --- replies and states -------------------------------------------------------------------------------------------


def mark_notice(
    session: Session, settings: Settings, notice_id: int, state: str, *, note: str = "", now: datetime | None = None
) -> NoticeInfo:
    """Record what the party did (acknowledged, removed, refused), that a web-form notice was submitted (sent), or
    that a deadline passed (expired).  ``note`` keeps the reply's gist (or its text) in the evidence log."""
    if state not in MANUAL_STATES:
        raise TakedownError(f"state must be one of {', '.join(MANUAL_STATES)} (use escalate for escalated)")
    now = now or utcnow()
    notice = store.get_notice(session, notice_id)
    if notice is None:
        raise store.UnknownNotice(notice_id)
    note = note.replace("\x00", "")[:5000]
    # A reply after the deadline (acknowledged once expired) opens a new window from the reply, as sending does:
    # otherwise the next deadline sweep would expire the notice again at once.
    late_reply = state == "acknowledged" and notice.state == "expired"
    due = deadline_for(notice.basis, now, settings) if state == "sent" or late_reply else UNSET
    updated = store.transition(session, notice.id, state, now=now, due_at=due, detail={"note": note} if note else None)
    if state == "removed":
        kind = "removal_confirmed"
    elif state in ("acknowledged", "refused"):
        kind = "reply"
    elif state == "sent":
        kind = "notice_sent"
    else:
        kind = "state"
    payload: dict[str, Any] = {"notice_id": notice.id, "state": state, "from": notice.state, "note": note,
                               "reported_by": "person"}
    if state == "removed" and notice.sent_at:
        payload["time_to_removal_s"] = (now - notice.sent_at).total_seconds()
    if state == "sent":
        payload.update(channel=notice.channel, web_form=notice.web_form, body_sha256=_sha256(notice.body),
                       due_at=updated.due_at.isoformat() if updated.due_at else None)
    store.append_evidence(session, notice.case_id, kind, payload, at=now)
    return updated


# --- deadlines and escalation --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Escalation:
    """Who to turn to next when a notice expired or was refused."""

    notice_id: int
    #: The next party resolved for the notice's findings, if any.
    party: PartyInfo | None
    basis: str
    #: Regulators for the notice's basis (complaint path), from the directory.
    regulators: tuple[dict[str, str], ...] = ()
    reason: str = ""


def propose_escalation(session: Session, notice: NoticeInfo, directory: Directory | None = None) -> Escalation:
    current = store.get_party(session, notice.party_id) if notice.party_id else None
    after = ESCALATION_ORDER.index(current.kind) if current and current.kind in ESCALATION_ORDER else -1
    candidates: dict[int, PartyInfo] = {}
    for url in store.notice_urls(session, notice.id):
        if url.finding_id is not None:
            for party in store.finding_parties(session, url.finding_id):
                candidates.setdefault(party.id, party)
    ranked = sorted(
        (p for p in candidates.values()
         if p.kind in ESCALATION_ORDER and ESCALATION_ORDER.index(p.kind) > after and (p.email or p.web_form)),
        key=lambda p: ESCALATION_ORDER.index(p.kind),
    )
    party = ranked[0] if ranked else None
    basis = DEFAULT_BASIS_FOR.get(party.kind, notice.basis) if party else notice.basis
    regulators = tuple(
        {"name": r.name, "url": r.url, "note": r.note} for r in (directory.regulators_for(notice.basis) if directory
                                                                 else ())
    )
    reason = (f"next: {party.kind} {party.name}" if party else "no further party known: complain to a regulator or "
              "resolve parties again")
    return Escalation(notice.id, party, basis, regulators, reason)


@dataclass(frozen=True, slots=True)
class DueReport:
    expired: list[NoticeInfo] = field(default_factory=list)
    proposals: list[Escalation] = field(default_factory=list)


def check_due(session: Session, *, now: datetime | None = None, directory: Directory | None = None) -> DueReport:
    """Mark every open notice whose deadline passed as expired, and propose the next step for each."""
    now = now or utcnow()
    report = DueReport()
    for notice in store.due_notices(session, now):
        expired = store.transition(session, notice.id, "expired", now=now,
                                   detail={"due_at": notice.due_at.isoformat() if notice.due_at else None})
        proposal = propose_escalation(session, expired, directory)
        store.append_evidence(session, notice.case_id, "escalation_proposed", {
            "notice_id": notice.id, "due_at": notice.due_at.isoformat() if notice.due_at else None,
            "next_party_id": proposal.party.id if proposal.party else None, "basis": proposal.basis,
            "reason": proposal.reason, "regulators": [r["name"] for r in proposal.regulators],
        }, at=now)
        report.expired.append(expired)
        report.proposals.append(proposal)
    return report


def _carry_over(data: dict[str, Any], basis: str) -> dict[str, Any]:
    """The previous notice's fields that the new basis also has (sender, signature, statements ...)."""
    previous = dict(data.get("notice") or {})
    allowed = set(NOTICE_TYPES[basis].model_fields) - {"basis", "materials", "recipient_name", "date"}
    return {k: v for k, v in previous.items() if k in allowed}


def escalate(
    session: Session,
    notice_id: int,
    *,
    party_id: int,
    basis: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
    by: str = "person",
) -> NoticeInfo:
    """Close an expired or refused notice as escalated and draft the follow-up to ``party_id`` (same findings).
    The new notice reuses what the old one said unless ``details`` replaces it.  ``by`` records who decided:
    "person", or "auto" (the jobs layer, when automatic escalation is on)."""
    now = now or utcnow()
    old = store.get_notice(session, notice_id)
    if old is None:
        raise store.UnknownNotice(notice_id)
    if old.state not in ("expired", "refused"):
        raise NotEscalatable(f"notice {old.id} is {old.state}; only expired or refused notices are escalated")
    basis = basis or old.basis
    if basis not in NOTICE_TYPES:
        raise InvalidNotice([f"basis: unknown basis {basis!r}"])
    findings = [u.finding_id for u in store.notice_urls(session, old.id) if u.finding_id is not None]
    merged = {**_carry_over(old.data, basis), **(details or {})}
    new = draft_notice(session, old.case_id, findings, basis, merged, party_id=party_id, parent_id=old.id, now=now)
    store.transition(session, old.id, "escalated", now=now,
                     detail={"to_notice": new.id, "party_id": party_id, "by": by})
    store.append_evidence(session, old.case_id, "escalated", {
        "notice_id": old.id, "to_notice_id": new.id, "party_id": party_id, "basis": basis, "by": by,
    }, at=now)
    return new


# --- re-checks -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UrlCheck:
    url: str
    outcome: str  # removed | present | unknown
    status: int | None = None
    error: str | None = None
    sha256: str | None = None
    final_url: str | None = None
    server_ip: str | None = None


@dataclass(frozen=True, slots=True)
class RecheckReport:
    notice: NoticeInfo
    checks: tuple[UrlCheck, ...]
    #: The notice was confirmed removed by this re-check.
    removed: bool = False
    #: A removed URL came back: the finding was reopened and this follow-up notice drafted.
    follow_up: NoticeInfo | None = None


async def _check(fetcher: FetcherLike, url: str) -> UrlCheck:
    try:
        result = await fetcher.fetch(url)
    except Exception as exc:  # FetchError and anything else: unknown, recorded
        return UrlCheck(url, "unknown", error=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:300])
    status = int(result.status)
    body = bytes(result.body or b"")
    outcome = "removed" if status in GONE_STATUSES else "present" if 200 <= status < 300 else "unknown"
    return UrlCheck(url, outcome, status, sha256=hashlib.sha256(body).hexdigest() if body else None,
                    final_url=getattr(result, "final_url", None), server_ip=getattr(result, "server_ip", None))


async def recheck_notice(
    sessions: sessionmaker[Session], notice_id: int, fetcher: FetcherLike, *, now: datetime | None = None
) -> RecheckReport:
    """Fetch every URL of the notice, record what was seen (notice URLs, findings, evidence), confirm removal when
    all are gone, and reopen the chain when a removed URL is back (finding reopened, follow-up notice drafted)."""
    with sessions() as session:
        notice = store.get_notice(session, notice_id)
        if notice is None:
            raise store.UnknownNotice(notice_id)
        urls = store.notice_urls(session, notice_id)
    checks = tuple(await asyncio.gather(*(_check(fetcher, u.url) for u in urls)))
    now = now or utcnow()
    with sessions.begin() as session:
        notice = store.get_notice(session, notice_id, for_update=True)  # concurrent re-checks take turns
        assert notice is not None
        for url, check in zip(urls, checks, strict=True):
            store.append_evidence(session, notice.case_id, "fetch", {
                "notice_id": notice.id, "url": check.url, "outcome": check.outcome, "status": check.status,
                "error": check.error, "sha256": check.sha256, "final_url": check.final_url,
                "server_ip": check.server_ip,
            }, at=now)
            if check.outcome != "unknown":
                store.set_url_status(session, notice.id, url.url, check.outcome, checked_at=now)
            if url.finding_id is not None:
                outcome = {"removed": "removed", "present": "seen"}.get(check.outcome, "fetch_error")
                store.record_check(session, url.finding_id, outcome, http_status=check.status, checked_at=now,
                                   details={"notice_id": notice.id, "sha256": check.sha256} if check.sha256 else None)
        removed = False
        follow_up = None
        outcomes = {c.outcome for c in checks}
        if notice.state in REMOVABLE_STATES and outcomes == {"removed"}:
            transition_to = "removed"
            notice = store.transition(session, notice.id, transition_to, now=now, detail={"by": "recheck"})
            payload: dict[str, Any] = {"notice_id": notice.id, "urls": [c.url for c in checks], "by": "recheck"}
            if notice.sent_at:
                payload["time_to_removal_s"] = (now - notice.sent_at).total_seconds()
            store.append_evidence(session, notice.case_id, "removal_confirmed", payload, at=now)
            removed = True
        elif notice.state == "removed" and "present" in outcomes and not _has_follow_up(session, notice.id):
            back = [c.url for c in checks if c.outcome == "present"]
            store.add_notice_event(session, notice.id, "reappeared", {"urls": back}, at=now)
            follow_up = store.create_notice(
                session, notice.case_id, notice.basis, subject=notice.subject, body=notice.body, data=notice.data,
                urls=[(u.url, u.finding_id) for u in urls if u.url in back], party_id=notice.party_id,
                parent_id=notice.id, channel=notice.channel, recipient=notice.recipient, web_form=notice.web_form,
                now=now,
            )
            store.append_evidence(session, notice.case_id, "reappeared", {
                "notice_id": notice.id, "urls": back, "follow_up_notice_id": follow_up.id,
            }, at=now)
        return RecheckReport(notice, checks, removed, follow_up)


def _has_follow_up(session: Session, notice_id: int) -> bool:
    """A reopened chain continues on its follow-up: a second re-check seeing the content again drafts nothing new."""
    return bool(store.child_notices(session, notice_id))


def reopen_reappeared(session: Session, *, now: datetime | None = None) -> list[NoticeInfo]:
    """A removed URL that came back (its finding was reopened by any re-check, ours or the crawler's) reopens its
    notice chain: a follow-up notice to the same party, drafted for the person to review and send."""
    now = now or utcnow()
    drafted = []
    for notice, urls in store.reappeared_notices(session):
        back = [u.url for u in urls]
        store.add_notice_event(session, notice.id, "reappeared", {"urls": back}, at=now)
        follow_up = store.create_notice(
            session, notice.case_id, notice.basis, subject=notice.subject, body=notice.body, data=notice.data,
            urls=[(u.url, u.finding_id) for u in urls], party_id=notice.party_id, parent_id=notice.id,
            channel=notice.channel, recipient=notice.recipient, web_form=notice.web_form, now=now,
        )
        store.append_evidence(session, notice.case_id, "reappeared", {
            "notice_id": notice.id, "urls": back, "follow_up_notice_id": follow_up.id, "by": "finding reopened",
        }, at=now)
        drafted.append(follow_up)
    return drafted


async def recheck_open(
    sessions: sessionmaker[Session], fetcher: FetcherLike, *, now: datetime | None = None,
    every: timedelta = timedelta(hours=6), limit: int = 100,
) -> list[RecheckReport]:
    """Re-check every notice still waiting for removal whose URLs were not checked within ``every``."""
    now = now or utcnow()
    with sessions() as session:
        due = store.notices_to_recheck(session, checked_before=now - every, limit=limit)
    return [await recheck_notice(sessions, n.id, fetcher, now=now) for n in due]
