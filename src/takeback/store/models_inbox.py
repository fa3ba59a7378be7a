"""The TAKE IT DOWN inbox of a platform that runs takeback: removal requests it received, with their 48-hour clock."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from takeback.store.models import Base, BigId, UTCDateTime, utcnow


class InboxRequest(Base):
    __tablename__ = "inbox_requests"
    __table_args__ = (Index("ix_inbox_requests_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: received_at + 48 hours: the Act's removal deadline.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requester_name: Mapped[str] = mapped_column(String(200))
    requester_email: Mapped[str] = mapped_column(String(320))
    #: The typed electronic signature (§3(a)(1)(B)(i)).
    signature: Mapped[str] = mapped_column(String(200))
    #: JSON list of the URLs where the depiction is (§3(a)(1)(B)(ii)).
    urls: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    good_faith: Mapped[bool] = mapped_column(Boolean)
    #: received → removed | rejected.
    status: Mapped[str] = mapped_column(String(16), default="received")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    #: Known identical copies the platform also removed (the Act asks for reasonable efforts).
    copies_removed: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str] = mapped_column(String(64), default="")
