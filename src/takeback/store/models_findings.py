"""Discover tables: a case's names to watch for, findings (places on the web where protected content or a name was
seen), the history of each finding, and crawl runs.  Owned by the discover work; the takedown work refers to
``findings.id``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from takeback.store.models import Base, BigId, UTCDateTime, utcnow


class CaseName(Base):
    """A name, alias or username of the person a case protects; the scanner looks for it and its variants."""

    __tablename__ = "case_names"
    __table_args__ = (UniqueConstraint("case_id", "kind", "value", name="uq_case_names_case_id_kind_value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    value: Mapped[str] = mapped_column(String(200))
    #: "name", "alias" or "username".
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Finding(Base):
    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_case_id_url_key", "case_id", "url_key", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    #: The URL normalised for de-duplication (one finding per URL per case).
    url_key: Mapped[str] = mapped_column(String(2048))
    #: "media" (a protected signal matched), "name" (a name variant on a page/URL), "domain" (a domain feed hit).
    kind: Mapped[str] = mapped_column(String(16))
    #: open → removed (a re-check saw it gone) → open again (re-upload); see the discover docs.
    status: Mapped[str] = mapped_column(String(16), default="open")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    http_status: Mapped[int | None] = mapped_column(Integer)
    #: The latest evidence as JSON (what matched, final URL, server IP, title, hashes and sizes); earlier
    #: observations stay in ``finding_events``.
    evidence: Mapped[str] = mapped_column(Text, default="{}")


class FindingEvent(Base):
    """One observation or status change of a finding (found, seen, removed, reopened, fetch_error, ...): the
    history a notice or a later dispute can point to."""

    __tablename__ = "finding_events"
    __table_args__ = (
        Index("ix_finding_events_finding_id_id", "finding_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    finding_id: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    #: JSON: the evidence of that observation, or the error.
    details: Mapped[str] = mapped_column(Text, default="{}")


class CrawlRun(Base):
    """One scan of a case: what it was asked to do, how far it got, and its fetch-error log."""

    __tablename__ = "crawl_runs"
    __table_args__ = (Index("ix_crawl_runs_case_id_id", "case_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    #: "running", "done", "failed".
    status: Mapped[str] = mapped_column(String(16), default="running")
    #: JSON: seeds and budgets.
    options: Mapped[str] = mapped_column(Text, default="{}")
    #: JSON: counters (pages, media, hashed, findings, errors) and the (capped) fetch-error log.
    stats: Mapped[str] = mapped_column(Text, default="{}")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
