"""Where a notice stands, in one view: state, deadline and the time left (or overdue), the last thing that happened,
what the last re-check saw at each URL, and the next step — the person's or the jobs layer's.

Read-only; used by ``takeback notices status`` (and usable by any other front end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from takeback import store
from takeback.config import Settings
from takeback.store.models import utcnow
from takeback.store.notices import NoticeInfo


@dataclass(frozen=True, slots=True)
class UrlStatus:
    url: str
    #: listed (not re-checked yet) | present | removed
    status: str
    checked_at: datetime | None
    finding_status: str | None


@dataclass(frozen=True, slots=True)
class NoticeStatus:
    notice: NoticeInfo
    party: str | None
    due_at: datetime | None
    #: Seconds until the deadline (negative: overdue); None without a running deadline.
    seconds_left: float | None
    overdue: bool
    last_event: store.NoticeEventInfo | None
    urls: tuple[UrlStatus, ...]
    next_step: str

    def as_dict(self) -> dict[str, Any]:
        n = self.notice
        last = self.last_event
        return {
            "notice_id": n.id, "case_id": n.case_id, "basis": n.basis, "state": n.state, "party": self.party,
            "recipient": n.recipient or n.web_form, "sent_at": _iso(n.sent_at), "due_at": _iso(self.due_at),
            "seconds_left": self.seconds_left, "overdue": self.overdue,
            "last_event": None if last is None else {"at": _iso(last.at), "kind": last.kind, "detail": last.detail},
            "urls": [{"url": u.url, "status": u.status, "checked_at": _iso(u.checked_at),
                      "finding_status": u.finding_status} for u in self.urls],
            "next_step": self.next_step,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def human(seconds: float) -> str:
    """"2 d 4 h", "5 h 12 min", "40 min"."""
    left = timedelta(seconds=abs(int(seconds)))
    days, hours, minutes = left.days, left.seconds // 3600, left.seconds % 3600 // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _next_step(session: Session, settings: Settings, notice: NoticeInfo, events: list[store.NoticeEventInfo],
               now: datetime) -> str:
    kinds = {e.kind: e for e in events}
    children = store.child_notices(session, notice.id)
    if notice.state == "drafted":
        if notice.channel == "web_form":
            return (f"submit it through {notice.web_form or 'the web form'} (takeback notices export {notice.id}), "
                    f"then: takeback notices mark {notice.id} sent")
        return f"review it (takeback notices show {notice.id}), then: takeback notices send {notice.id}"
    if notice.state == "queued":
        return f"the mail server refused it ({notice.last_error or 'no detail'}); it is retried automatically"
    if notice.state in ("sent", "acknowledged"):
        return "waiting for removal; its URLs are re-checked automatically"
    if notice.state == "removed":
        if children:
            return f"the content came back: follow-up notice {children[-1].id} ({children[-1].state})"
        return "removed; re-checked now and then in case it comes back"
    if notice.state == "escalated":
        return f"escalated to notice {children[-1].id} ({children[-1].state})" if children else "escalated"
    due = kinds.get("escalation_due")
    if due is not None:
        party = due.detail.get("next_party_id")
        missing = due.detail.get("missing") or []
        if party:
            basis = due.detail.get("basis") or notice.basis
            text = f"escalate: takeback notices escalate {notice.id} --party {party} --basis {basis}"
            return text + (f" (automatic escalation needs: {', '.join(missing)})" if missing else "")
        return "no further party is known: complain to a regulator (takeback notices due) or resolve parties again"
    if "reminder_sent" in kinds:
        after = kinds["reminder_sent"].at + timedelta(days=settings.takedown_reminder_grace_days)
        return f"reminded on {kinds['reminder_sent'].at:%Y-%m-%d %H:%M} UTC; next step after {after:%Y-%m-%d %H:%M} UTC"
    if notice.state == "expired" and settings.takedown_auto_reminders and notice.channel == "email":
        return "a reminder to the same party is on its way"
    return "the next step is being prepared"


def notice_status(session: Session, settings: Settings, notice: NoticeInfo, *, now: datetime | None = None
                  ) -> NoticeStatus:
    now = now or utcnow()
    events = store.list_notice_events(session, notice.id)
    party = store.get_party(session, notice.party_id) if notice.party_id else None
    urls = []
    for url in store.notice_urls(session, notice.id):
        finding = store.get_finding(session, url.finding_id) if url.finding_id else None
        urls.append(UrlStatus(url.url, url.status, url.checked_at, finding.status if finding else None))
    running = notice.state in ("sent", "acknowledged", "expired")
    left = (notice.due_at - now).total_seconds() if notice.due_at and running else None
    return NoticeStatus(
        notice=notice, party=f"{party.kind} {party.name}" if party else None, due_at=notice.due_at,
        seconds_left=left, overdue=left is not None and left < 0, last_event=events[-1] if events else None,
        urls=tuple(urls), next_step=_next_step(session, settings, notice, events, now),
    )
