"""Discover tables: a case's names to watch for, and findings (places on the web where protected content or a
name was seen).  Owned by the discover work; the takedown work refers to ``findings.id``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from takeback.store.models import Base, BigId, UTCDateTime, utcnow


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
