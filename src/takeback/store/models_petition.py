"""Petition tables (petitions, updates, signatures, counters, review flags, removal log, secrets).

Counts are read from ``petition_counts``, never by counting signature rows: every statement that adds, verifies,
removes or erases a signature adjusts the counter rows in the same transaction, so the counters equal the rows at
every commit (``store.petitions.recount`` recomputes them from the rows; the tests compare the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from takeback.store.models import Base, BigId, UTCDateTime, utcnow


class Petition(Base):
    __tablename__ = "petitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    #: The petition's address: /p/<slug>.
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    #: Who the petition is addressed to.
    target: Mapped[str] = mapped_column(String(200))
    goal: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PetitionUpdate(Base):
    __tablename__ = "petition_updates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Signature(Base):
    """One signer of one petition.  ``email_key`` (sha256 of the normalised address) is unique per petition: the
    database itself refuses a second signature from the same mailbox, whatever the spelling."""

    __tablename__ = "signatures"
    __table_args__ = (
        Index("ix_signatures_petition_id_email_key", "petition_id", "email_key", unique=True),
        Index("ix_signatures_petition_id_idempotency_key", "petition_id", "idempotency_key", unique=True),
        Index("ix_signatures_petition_id_created_at", "petition_id", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    #: As typed (trimmed): where the verification mail goes.
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    #: ISO 3166-1 alpha-2, upper case.
    country: Mapped[str] = mapped_column(String(2))
    postcode: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    #: Consents: e-mail updates about this petition; the name in the delivered export.
    consent_updates: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_public: Mapped[bool] = mapped_column(Boolean, default=False)
    #: pending → verified; either → removed (by an operator, logged in petition_removals).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: The client's retry key: a retried request finds this row instead of making a second one.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    #: The signer's network (/24 IPv4, /48 IPv6), never the full address: enough for burst flags.
    network: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PetitionCount(Base):
    """Counter rows: kind "total" (key ""), "country" (key "FR"), "hour" (key "2026-11-25T11", signing hour UTC)."""

    __tablename__ = "petition_counts"

    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    verified: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)


class PetitionFlag(Base):
    """A burst an operator should look at: too many signatures from one network or postcode within one hour."""

    __tablename__ = "petition_flags"
    __table_args__ = (Index("ix_petition_flags_window", "petition_id", "kind", "key", "window_start", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"))
    #: "network" or "postcode".
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    signatures: Mapped[int] = mapped_column(Integer)
    #: open → dismissed | removed.
    status: Mapped[str] = mapped_column(String(16), default="open")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PetitionRemoval(Base):
    """The removal log: every signature an operator removed and every erasure, with who, why and when."""

    __tablename__ = "petition_removals"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id", ondelete="CASCADE"), index=True)
    #: No foreign key: an erased signature's row is gone, its log entry stays.
    signature_id: Mapped[int] = mapped_column(BigInteger)
    #: "removed" (operator) or "erased" (the signer's own request).
    action: Mapped[str] = mapped_column(String(16))
    previous_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    flag_id: Mapped[int | None] = mapped_column(Integer)
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PetitionSecret(Base):
    """Server secrets generated on first use when the configuration gives none (shared by every process)."""

    __tablename__ = "petition_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
