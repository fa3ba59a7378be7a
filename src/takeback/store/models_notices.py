"""Takedown tables (parties, notices, their URLs and events, the evidence log).  Owned by the takedown work.

Parties are shared by every case (one hosting provider, one abuse contact); notices, their events and the evidence
log belong to a case.  The evidence log is append-only and hash-chained (see ``store.evidence``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from takeback.store.models import Base, BigId, UTCDateTime, utcnow


class Party(Base):
    """Whoever can remove a finding, with how we found them (``resolution``: JSON list of steps)."""

    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: site | host | upstream | registrar | platform | search_engine | regulator
    kind: Mapped[str] = mapped_column(String(16))
    #: Stable identity, e.g. "registrar:iana:292", "host:rdap:NET-203-0-113-0-1", "platform:google-search".
    key: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    web_form: Mapped[str | None] = mapped_column(String(2048))
    #: rdap | security.txt | page | directory | manual | unresolved
    source: Mapped[str] = mapped_column(String(32))
    resolution: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FindingParty(Base):
    """Which parties were resolved for a finding (so escalation knows who is next without asking RDAP again)."""

    __tablename__ = "finding_parties"

    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_state_due_at", "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id", ondelete="SET NULL"))
    #: The notice this one follows up or escalates (None for a first notice).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"))
    basis: Mapped[str] = mapped_column(String(16))
    #: drafted → queued/sent → acknowledged → removed | refused | expired → escalated
    state: Mapped[str] = mapped_column(String(16))
    #: email (sent over SMTP) or web_form (exported text pasted by the person into the party's form).
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str | None] = mapped_column(String(254))
    web_form: Mapped[str | None] = mapped_column(String(2048))
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    #: The machine-readable JSON copy.
    data: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NoticeUrl(Base):
    """One URL a notice covers, with what the last re-check saw there."""

    __tablename__ = "notice_urls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("findings.id", ondelete="SET NULL"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    #: listed (not re-checked yet) | present | removed
    status: Mapped[str] = mapped_column(String(16))
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NoticeEvent(Base):
    __tablename__ = "notice_events"
    __table_args__ = (Index("ix_notice_events_notice_id_id", "notice_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="{}")


class EvidenceEntry(Base):
    """One entry of a case's evidence log; ``hash`` = SHA-256 over the entry and ``prev_hash`` (see store.evidence)."""

    __tablename__ = "evidence_log"
    __table_args__ = (UniqueConstraint("case_id", "position", name="uq_evidence_log_case_id_position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    #: 1, 2, 3 … within the case: a gap shows a deleted entry.
    position: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class IntakeRequest(Base):
    """Inbound mode: a TAKE IT DOWN removal request filed with the platform running takeback by the depicted person
    (or someone acting for her).  ``signals`` are hashes computed on her device; the media never arrive."""

    __tablename__ = "intake_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Unguessable reference the requester uses to follow her request.
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    #: received → accepted | rejected
    status: Mapped[str] = mapped_column(String(16))
    #: The validated request (JSON: the TAKE IT DOWN notice's fields and URLs).
    data: Mapped[str] = mapped_column(Text)
    #: JSON list of [signal_type, value].
    signals: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: 48 hours after receipt.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id", ondelete="SET NULL"))
    signals_added: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    #: The platform's own uploads found to be copies on acceptance (JSON list of {upload_ref, signal_id,
    #: signal_type, distance, query}); None while no sweep ran (not accepted yet, rejected, no uploads bank).
    upload_matches: Mapped[str | None] = mapped_column(Text)
    #: Distinct uploads among them (None: no sweep ran).
    uploads_matched: Mapped[int | None] = mapped_column(Integer)
