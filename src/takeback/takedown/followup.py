"""Follow-through after a deadline: one reminder to the same party, then escalation down the list of parties.

The jobs layer (``notices.check_deadlines``) runs this; the person can also see every step in ``takeback notices
status``.  What a careful person would want, and so the defaults (settings ``takedown_*``):

* **Reminder: automatic** (``takedown_auto_reminders``).  When a notice expires, the same party — who already has
  the notice — gets one reminder citing it (reference, date, deadline), listing the URLs still online and repeating
  the original text.  It asserts nothing new, so it needs no new statement from her.
* **Escalation: proposed, not carried out** (``takedown_auto_escalate`` off).  After the reminder's grace period
  (``takedown_reminder_grace_days``), or at once when the party refused or a reminder is impossible (web form), the
  next party (host → upstream provider → registrar → search engine) and the regulators are proposed, once, in the
  notice history and the evidence log.  Escalating tells someone new about her, often under another basis, so it
  is her decision.  With automatic escalation on, the next notice is drafted from her earlier statements (an abuse
  report or delisting request states what the earlier notice said and that its deadline passed) and sent when the
  party takes e-mail; if the new basis needs something she never said, nothing is sent and the missing elements are
  named in the proposal.

Every step is guarded by the notice's state and history (locked row), so running a step twice does nothing the
second time.  The one exception is SMTP itself: a crash after the mail server accepted a reminder but before it was
recorded sends it again on retry, with the same Message-ID (see docs/jobs.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from takeback import store
from takeback.config import Settings
from takeback.mail import Mail, MailError, send_mail
from takeback.store.models import utcnow
from takeback.store.notices import NoticeInfo
from takeback.takedown import service
from takeback.takedown.directory import Directory
from takeback.takedown.notices import IncompleteNotice, InvalidNotice
from takeback.takedown.render import ReminderUrl, render_reminder

#: A reminder the mail server keeps refusing is given up after this many attempts (the chain goes on to escalation).
MAX_REMINDER_FAILURES = 5
#: Statements that, once made in the original notice, back the "report is accurate" of an automatic escalation.
AFFIRMATIONS = ("good_faith", "good_faith_not_consensual", "bona_fide", "accuracy_under_penalty_of_perjury")
WHAT = {
    "takeitdown": "intimate images of me published without my consent",
    "dmca": "copies of my copyrighted work published without my authorisation",
    "gdpr": "my personal data, whose erasure I requested under Article 17 GDPR",
    "dsa": "illegal content concerning me",
}


@dataclass(frozen=True, slots=True)
class ReminderOutcome:
    notice_id: int
    sent: bool
    message_id: str | None = None
    error: str | None = None
    #: Why nothing was done (already reminded, not expired, no e-mail channel ...).
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class EscalationStep:
    notice_id: int
    #: "proposed" (shown to the person), "escalated" (carried out), "needs_input" (automatic escalation wanted
    #: elements she never gave), "skipped" (done before, or the notice moved on).
    action: str
    proposal: service.Escalation | None = None
    new_notice: NoticeInfo | None = None
    missing: tuple[str, ...] = field(default=())


def _kinds(session: Session, notice_id: int) -> dict[str, list[store.NoticeEventInfo]]:
    out: dict[str, list[store.NoticeEventInfo]] = {}
    for event in store.list_notice_events(session, notice_id):
        out.setdefault(event.kind, []).append(event)
    return out


def remindable(notice: NoticeInfo, settings: Settings) -> bool:
    return bool(settings.takedown_auto_reminders and notice.channel == "email" and notice.recipient
                and notice.sent_at is not None)


def _retry_wait(failures: int) -> timedelta:
    return timedelta(minutes=min(24 * 60, 2 ** min(failures, 20)))


# --- reminders -----------------------------------------------------------------------------------------------------


def reminders_due(session: Session, settings: Settings, now: datetime, *, limit: int = 1000) -> list[int]:
    """Expired notices that get a reminder now (failed attempts wait 2**n minutes)."""
    if not settings.takedown_auto_reminders:
        return []
    due = []
    for notice in store.notices_lacking_events(session, ("expired",), ("reminder_sent", "reminder_abandoned"),
                                               limit=limit):
        if not remindable(notice, settings):
            continue
        failures = _kinds(session, notice.id).get("reminder_failed", [])
        if failures and failures[-1].at > now - _retry_wait(len(failures)):
            continue
        due.append(notice.id)
    return due


def send_reminder(
    session: Session, settings: Settings, notice_id: int, *, now: datetime | None = None,
    mailer: Callable[[Settings, Mail], str] | None = None,
) -> ReminderOutcome:
    """Send the one reminder of an expired notice, if it has none yet.  The notice row stays locked until the
    caller commits, so two runs take turns and the second finds the reminder recorded."""
    now = now or utcnow()
    notice = store.get_notice(session, notice_id, for_update=True)
    if notice is None:
        raise store.UnknownNotice(notice_id)
    if notice.state != "expired":
        return ReminderOutcome(notice_id, False, skipped=f"the notice is {notice.state}")
    if not remindable(notice, settings):
        return ReminderOutcome(notice_id, False, skipped="no e-mail channel (or reminders are off)")
    kinds = _kinds(session, notice_id)
    if "reminder_sent" in kinds or "reminder_abandoned" in kinds:
        return ReminderOutcome(notice_id, False, skipped="already reminded")
    online = [u for u in store.notice_urls(session, notice_id) if u.status != "removed"]
    if not online:
        return ReminderOutcome(notice_id, False, skipped="every URL is gone")
    assert notice.sent_at is not None and notice.recipient
    deadline = notice.due_at or notice.sent_at
    grace_until = now + timedelta(days=settings.takedown_reminder_grace_days)
    rendered = render_reminder(
        notice.data, subject=notice.subject, body=notice.body, sent_at=notice.sent_at, deadline=deadline,
        grace_until=grace_until, now=now,
        urls=[ReminderUrl(u.url, f"{u.checked_at:%Y-%m-%d %H:%M} UTC" if u.checked_at else "") for u in online],
    )
    sender = (notice.data.get("notice") or {}).get("sender") or {}
    reference = str(notice.data.get("reference") or notice.id)
    message_id = service.message_id(notice, settings, "r1")
    threading = {"In-Reply-To": notice.message_id, "References": notice.message_id} if notice.message_id else {}
    mail = Mail(
        to=(notice.recipient,), subject=rendered.subject, text=rendered.text, reply_to=sender.get("email") or None,
        headers={"X-Takeback-Notice": reference, "X-Takeback-Reminder": "1", **threading},
        attachments=(("notice.json", "application/json", service.store_json(rendered.data).encode()),),
        message_id=message_id,
    )
    try:
        (mailer or send_mail)(settings, mail)
    except MailError as exc:
        failures = len(kinds.get("reminder_failed", [])) + 1
        error = str(exc)[:500]
        store.add_notice_event(session, notice_id, "reminder_failed", {"error": error, "attempt": failures}, at=now)
        store.append_evidence(session, notice.case_id, "reminder_failed",
                              {"notice_id": notice_id, "recipient": notice.recipient, "error": error}, at=now)
        if failures >= MAX_REMINDER_FAILURES:
            store.add_notice_event(session, notice_id, "reminder_abandoned", {"attempts": failures}, at=now)
        return ReminderOutcome(notice_id, False, error=error)
    body_sha256 = hashlib.sha256(rendered.text.encode()).hexdigest()
    store.add_notice_event(session, notice_id, "reminder_sent", {
        "message_id": message_id, "respond_by": grace_until.isoformat(), "body_sha256": body_sha256}, at=now)
    store.append_evidence(session, notice.case_id, "reminder_sent", {
        "notice_id": notice_id, "reference": reference, "recipient": notice.recipient, "message_id": message_id,
        "body_sha256": body_sha256, "original_due_at": deadline.isoformat(), "respond_by": grace_until.isoformat(),
        "still_online": [u.url for u in online],
    }, at=now)
    return ReminderOutcome(notice_id, True, message_id=message_id)


# --- escalation ----------------------------------------------------------------------------------------------------


def escalations_due(session: Session, settings: Settings, now: datetime, *, limit: int = 1000) -> list[int]:
    """Refused notices, and expired ones whose reminder's grace period ended (or that get no reminder), whose next
    step was not taken yet."""
    grace = timedelta(days=settings.takedown_reminder_grace_days)
    due = []
    for notice in store.notices_lacking_events(session, ("expired", "refused"), ("escalation_due",), limit=limit):
        if notice.state == "refused":
            due.append(notice.id)
            continue
        kinds = _kinds(session, notice.id)
        if "reminder_sent" in kinds:
            if kinds["reminder_sent"][-1].at <= now - grace:
                due.append(notice.id)
        elif "reminder_abandoned" in kinds or not remindable(notice, settings):
            due.append(notice.id)
    return due


def escalation_details(notice: NoticeInfo, basis: str) -> dict[str, Any]:
    """What an automatic escalation to another basis says, built only from the original notice: what the material
    is (as she stated it there), that the notice was sent and its deadline passed, and — when she made a good-faith
    or accuracy statement there — that the report is accurate."""
    if basis == notice.basis or basis not in ("abuse", "delisting"):
        return {}
    old = notice.data.get("notice") or {}
    details: dict[str, Any] = {}
    if not old.get("explanation"):
        what = WHAT.get(notice.basis, "material I asked to have removed")
        sent = f"{notice.sent_at:%Y-%m-%d}" if notice.sent_at else "an earlier date"
        due = f"{notice.due_at:%Y-%m-%d %H:%M} UTC" if notice.due_at else "its deadline"
        details["explanation"] = (
            f"The locations listed carry {what}. On {sent} I sent a {notice.data.get('title') or 'removal request'}"
            f" (reference {notice.data.get('reference') or notice.id}) to "
            f"{old.get('recipient_name') or 'the provider'}, asking for removal; the deadline ({due}) passed "
            "without the material being removed."
        )
    if any(old.get(key) is True for key in AFFIRMATIONS):
        details["good_faith"] = True
    return details


def escalation_step(
    session: Session, settings: Settings, notice_id: int, *, now: datetime | None = None,
    directory: Directory | None = None,
) -> EscalationStep:
    """The next step for an expired or refused notice: proposed to the person (recorded once), or carried out when
    automatic escalation is on and the next notice can be complete."""
    now = now or utcnow()
    notice = store.get_notice(session, notice_id, for_update=True)
    if notice is None:
        raise store.UnknownNotice(notice_id)
    if notice.state not in ("expired", "refused") or "escalation_due" in _kinds(session, notice_id):
        return EscalationStep(notice_id, "skipped")
    proposal = service.propose_escalation(session, notice, directory)
    missing: tuple[str, ...] = ()
    if settings.takedown_auto_escalate and proposal.party is not None:
        try:
            new = service.escalate(session, notice_id, party_id=proposal.party.id, basis=proposal.basis,
                                   details=escalation_details(notice, proposal.basis), now=now, by="auto")
        except IncompleteNotice as exc:
            missing = tuple(exc.fields)
        except InvalidNotice as exc:
            missing = tuple(exc.problems)
        else:
            store.add_notice_event(session, new.id, "auto_escalation", {"from_notice": notice_id}, at=now)
            return EscalationStep(notice_id, "escalated", proposal, new)
    after = "refused" if notice.state == "refused" else "reminder" if remindable(notice, settings) else "deadline"
    payload: dict[str, Any] = {
        "notice_id": notice_id, "after": after, "next_party_id": proposal.party.id if proposal.party else None,
        "basis": proposal.basis, "reason": proposal.reason, "regulators": [r["name"] for r in proposal.regulators],
        "auto": False, "missing": list(missing),
    }
    store.add_notice_event(session, notice_id, "escalation_due", payload, at=now)
    store.append_evidence(session, notice.case_id, "escalation_proposed", payload, at=now)
    return EscalationStep(notice_id, "needs_input" if missing else "proposed", proposal, missing=missing)


def auto_escalated_drafts(session: Session, notice_id: int) -> list[NoticeInfo]:
    """The notices an automatic escalation of ``notice_id`` drafted and that still wait to be sent by e-mail."""
    return [
        child for child in store.child_notices(session, notice_id)
        if child.state == "drafted" and child.channel == "email" and child.recipient
        and any(e.kind == "auto_escalation" for e in store.list_notice_events(session, child.id))
    ]
