"""Notice text: a Jinja2 template per basis renders the plain-text e-mail, and the same data becomes the JSON copy.

Templates are package files, never user input: everything the person typed reaches them as variables, in a sandboxed
environment with undefined names as errors, so ``{{ ... }}`` in a name or an explanation stays literal text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from takeback.takedown.notices import NoticeBase

#: Version of the JSON copy's shape; bump when fields change meaning.
JSON_SCHEMA = "takeback.notice/1"
REMINDER_SCHEMA = "takeback.reminder/1"

GDPR_GROUND_TEXT = {
    "a": "the personal data are no longer necessary in relation to the purposes for which they were collected or "
    "otherwise processed;",
    "b": "I withdraw (or never gave) the consent on which the processing is based (Article 6(1)(a), Article 9(2)(a)), "
    "and there is no other legal ground for the processing;",
    "c": "I object to the processing under Article 21(1) and there are no overriding legitimate grounds, or I object "
    "under Article 21(2);",
    "d": "the personal data have been unlawfully processed;",
    "e": "the personal data have to be erased for compliance with a legal obligation in Union or Member State law to "
    "which you are subject;",
    "f": "the personal data have been collected in relation to the offer of information society services referred "
    "to in Article 8(1).",
}

_env = SandboxedEnvironment(
    loader=PackageLoader("takeback.takedown", "templates"),
    undefined=StrictUndefined,
    autoescape=False,  # plain text e-mail; nothing here is HTML
    trim_blocks=True,
    keep_trailing_newline=True,
)


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    subject: str
    text: str
    #: The machine-readable copy (what notice.json holds).
    data: dict[str, Any]

    @property
    def json_text(self) -> str:
        return json.dumps(self.data, indent=2, sort_keys=True, ensure_ascii=False)


def subject_for(notice: NoticeBase, reference: str) -> str:
    count = len(notice.materials)
    where = f"{count} URL" + ("s" if count != 1 else "")
    return f"{type(notice).TITLE} ({where}) [{reference}]"


def render_notice(
    notice: NoticeBase, *, reference: str, now: datetime, deadline: datetime | None = None
) -> RenderedNotice:
    """The e-mail text and JSON copy.  ``reference`` identifies the notice in replies (e.g. "takeback-notice-17")."""
    kind = type(notice)
    today = (notice.date or now.date()).isoformat()
    deadline_text = deadline.strftime("%Y-%m-%d %H:%M UTC") if deadline else ""
    text = _env.get_template(f"{notice.basis}.txt.j2").render(
        notice=notice,
        title=kind.TITLE,
        citation=kind.CITATION,
        recipient_name=notice.recipient_name,
        reference=reference,
        today=today,
        deadline=deadline_text,
        gdpr_grounds=GDPR_GROUND_TEXT,
    )
    data: dict[str, Any] = {
        "schema": JSON_SCHEMA,
        "reference": reference,
        "basis": notice.basis,
        "title": kind.TITLE,
        "legal_basis": kind.CITATION,
        "date": today,
        "deadline": deadline.isoformat() if deadline else None,
        "recipient": notice.recipient_name or None,
        "elements": [{"field": e.field, "label": e.label, "citation": e.citation} for e in kind.ELEMENTS],
        "notice": notice.model_dump(mode="json"),
        "media_attached": False,
    }
    return RenderedNotice(subject=subject_for(notice, reference), text=_tidy(text), data=data)


@dataclass(frozen=True, slots=True)
class ReminderUrl:
    url: str
    checked: str = ""


def render_reminder(
    original: dict[str, Any], *, subject: str, body: str, sent_at: datetime, deadline: datetime,
    grace_until: datetime, urls: list[ReminderUrl], now: datetime,
) -> RenderedNotice:
    """The reminder to the same party after a missed deadline: it cites the original notice (reference, date,
    deadline), lists the locations still online, repeats the original text and attaches its JSON copy.  It states
    nothing new, which is why the jobs layer may send it without asking the person again."""
    notice = original.get("notice") or {}
    sender = notice.get("sender") or {}
    reference = str(original.get("reference") or "")
    stamp = "%Y-%m-%d %H:%M UTC"
    text = _env.get_template("reminder.txt.j2").render(
        recipient_name=str(notice.get("recipient_name") or ""),
        title=str(original.get("title") or "removal request"),
        reference=reference,
        basis=str(original.get("basis") or ""),
        sent=sent_at.strftime(stamp),
        deadline=deadline.strftime(stamp),
        grace=grace_until.strftime(stamp),
        urls=urls,
        sender_name=str(sender.get("name") or ""),
        sender_email=str(sender.get("email") or ""),
        original=body,
    )
    data = {
        "schema": REMINDER_SCHEMA,
        "reminder_of": reference,
        "date": now.date().isoformat(),
        "original_sent_at": sent_at.isoformat(),
        "original_deadline": deadline.isoformat(),
        "respond_by": grace_until.isoformat(),
        "still_online": [u.url for u in urls],
        "original": original,
        "media_attached": False,
    }
    return RenderedNotice(subject=" ".join(f"Reminder: {subject}".split())[:500], text=_tidy(text), data=data)


def _tidy(text: str) -> str:
    """At most one blank line in a row (optional sections leave gaps), one trailing newline."""
    lines: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line and lines and not lines[-1]:
            continue
        lines.append(line)
    return "\n".join(lines).strip() + "\n"
