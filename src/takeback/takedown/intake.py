"""Inbound mode: a platform running takeback receives TAKE IT DOWN removal requests from depicted people.

The request carries the Act's four elements (checked by the same ``TakeItDownNotice`` model that outgoing notices
use, so a missing element is named the same way) and, optionally, hashes of the reported images or videos computed
on the requester's device (``takeback hash``) — never the media.  The platform must act within 48 hours of receipt;
the clock is stored and shown.  Accepting a request puts its hashes into a bank, so every later upload (and every
upload the platform re-checks through ``/v1/match``) that is identical or near-identical is caught, and sweeps the
platform's existing uploads for copies (``web.uploads_sweep``).  The requester is told the decision by e-mail,
with how many copies were found among the uploads.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from takeback import store
from takeback.mail import Mail
from takeback.signals.validate import InvalidSignal, canonical_value
from takeback.store.models import utcnow
from takeback.takedown.deadlines import TAKE_IT_DOWN_HOURS
from takeback.takedown.notices import InvalidNotice, build_notice

MAX_SIGNALS = 1000


@dataclass(frozen=True, slots=True)
class Clock:
    """What the requester and the moderators see: the deadline and the time left (negative: overdue)."""

    due_at: datetime
    seconds_left: float
    overdue: bool


def clock(info: store.IntakeInfo, now: datetime | None = None) -> Clock:
    left = (info.due_at - (now or utcnow())).total_seconds()
    return Clock(info.due_at, left, left < 0 and info.status == "received")


def check_signals(raw: Any) -> list[tuple[str, str]]:
    """[(type, canonical value)] from [{"signal_type", "value"}]; every bad one is named (InvalidNotice)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_SIGNALS:
        raise InvalidNotice([f"signals: must be a list of at most {MAX_SIGNALS} hashes"])
    out: list[tuple[str, str]] = []
    problems = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("signal_type"), str) or not isinstance(
                item.get("value"), str):
            problems.append(f"signals.{i}: must be {{signal_type, value}}")
            continue
        try:
            stype, value = canonical_value(item["signal_type"], item["value"])
        except InvalidSignal as exc:
            problems.append(f"signals.{i}: {exc.message}")
            continue
        if (stype.value, value) not in out:
            out.append((stype.value, value))
    if problems:
        raise InvalidNotice(problems)
    return out


def submit(session: Session, data: dict[str, Any], *, now: datetime | None = None) -> store.IntakeInfo:
    """Record a request if it is valid (raises IncompleteNotice / InvalidNotice otherwise); the clock starts now."""
    now = now or utcnow()
    fields = {k: v for k, v in data.items() if k != "signals"}
    signals = check_signals(data.get("signals"))
    notice = build_notice("takeitdown", fields)
    reference = "TID-" + secrets.token_urlsafe(15)
    return store.create_intake(session, reference, notice.model_dump(mode="json"), signals, received_at=now,
                               due_at=now + timedelta(hours=TAKE_IT_DOWN_HOURS))


def decision_mail(info: store.IntakeInfo, *, platform: str) -> Mail | None:
    """The e-mail telling the requester what was decided (and, on acceptance, how many copies among the platform's
    uploads were found and sent to removal); None when the request holds no usable address."""
    sender = (info.data or {}).get("sender") or {}
    email = sender.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    name = str(sender.get("name") or "").strip()
    lines = [f"Hello {name}," if name else "Hello,", ""]
    if info.status == "accepted":
        lines += [f"{platform} accepted your TAKE IT DOWN request {info.reference}."]
        if info.signals_added:
            lines += [f"The {info.signals_added} hash(es) you gave are now blocked: identical and near-identical "
                      "uploads are caught."]
        if info.uploads_matched:
            lines += [f"{info.uploads_matched} existing upload(s) matching them were found and sent to removal."]
        elif info.uploads_matched == 0:
            lines += ["No existing upload matched them."]
    else:
        lines += [f"{platform} did not accept your TAKE IT DOWN request {info.reference}."]
    if info.note:
        lines += ["", "Note from the moderator:", info.note]
    lines += ["", "This message was sent automatically; the reference above identifies your request."]
    return Mail(to=(email,), subject=f"Your TAKE IT DOWN request {info.reference}: {info.status}",
                text="\n".join(lines) + "\n")
