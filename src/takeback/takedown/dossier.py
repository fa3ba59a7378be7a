"""The case dossier: everything that happened, for the person, a lawyer, a regulator or a court.

JSON (complete, machine-readable), a self-contained HTML page and a plain-text PDF rendered from the same data: the
evidence log with its verification result and head hash, the findings, every notice with its full text, events and
outcome, and time-to-removal statistics.  User text is HTML-escaped (autoescape) in the page.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from datetime import datetime
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.orm import Session

from takeback import store
from takeback.store.models import utcnow

SCHEMA = "takeback.dossier/1"

_env = SandboxedEnvironment(
    loader=PackageLoader("takeback.takedown", "templates"),
    undefined=StrictUndefined,
    autoescape=select_autoescape(["html", "j2"], default=True),
)


class UnknownCaseError(Exception):
    """No case with that id."""


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _hours(seconds: list[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    hours = [s / 3600 for s in seconds]
    return {"count": len(hours), "median": round(statistics.median(hours), 2), "min": round(min(hours), 2),
            "max": round(max(hours), 2)}


def export_case(session: Session, case_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    case = store.get_case(session, case_id)
    if case is None:
        raise UnknownCaseError(f"no case {case_id}")
    findings: list[store.FindingInfo] = []
    after = 0
    while batch := store.list_findings(session, case_id, limit=1000, after_id=after):
        findings.extend(batch)
        after = batch[-1].id
    notices = []
    after = 0
    while batch := store.list_notices(session, case_id, limit=1000, after_id=after):
        notices.extend(batch)
        after = batch[-1].id
    removal_seconds = [
        (n.closed_at - n.sent_at).total_seconds() for n in notices
        if n.state == "removed" and n.sent_at and n.closed_at
    ]
    by_basis: dict[str, dict[str, int]] = {}
    for n in notices:
        by_basis.setdefault(n.basis, {}).setdefault(n.state, 0)
        by_basis[n.basis][n.state] += 1
    parties = {p.id: p for p in (store.get_party(session, n.party_id) for n in notices if n.party_id) if p}
    check = store.verify_evidence(session, case_id)
    return _plain({
        "schema": SCHEMA,
        "generated_at": now or utcnow(),
        "case": {"id": case.id, "name": case.name, "created_at": case.created_at},
        "evidence": {
            "verified": check.ok, "entries": check.entries, "head": check.head,
            "first_bad_position": check.first_bad_position, "reason": check.reason,
            "log": [asdict(e) for e in store.list_evidence(session, case_id)],
        },
        "findings": [asdict(f) for f in findings],
        "parties": [asdict(p) for p in parties.values()],
        "notices": [
            {**asdict(n), "urls": [asdict(u) for u in store.notice_urls(session, n.id)],
             "events": [asdict(e) for e in store.list_notice_events(session, n.id)]}
            for n in notices
        ],
        "stats": {
            "findings": len(findings),
            "findings_removed": sum(1 for f in findings if f.status == "removed"),
            "notices": len(notices),
            "notices_by_basis_and_state": by_basis,
            "time_to_removal_hours": _hours(removal_seconds),
        },
    })


def render_html(dossier: dict[str, Any]) -> str:
    return _env.get_template("dossier.html.j2").render(d=dossier)


def render_text(dossier: dict[str, Any]) -> str:
    """The dossier as plain text (what the PDF shows)."""
    ev, stats = dossier["evidence"], dossier["stats"]
    lines = [
        f"TAKEDOWN DOSSIER: {dossier['case']['name']} (case {dossier['case']['id']})",
        f"Generated {dossier['generated_at']}. No media are included, only URLs and hashes.",
        "",
        "EVIDENCE LOG: " + (f"verifies ({ev['entries']} entries, SHA-256 chained)" if ev["verified"] else
                            f"DOES NOT VERIFY: entry {ev['first_bad_position']}: {ev['reason']}"),
        f"Head hash: {ev['head']}",
        "",
        f"Findings: {stats['findings']} ({stats['findings_removed']} removed). Notices: {stats['notices']}.",
    ]
    ttr = stats.get("time_to_removal_hours")
    if ttr:
        lines.append(f"Time to removal: median {ttr['median']} h, fastest {ttr['min']} h, slowest {ttr['max']} h "
                     f"({ttr['count']} notices)")
    lines += ["", "FINDINGS"]
    for f in dossier["findings"]:
        lines.append(f"  #{f['id']} {f['status']:<8} {f['kind']:<6} {f['url']}  first seen {f['first_seen_at']}")
    lines += ["", "NOTICES"]
    for n in dossier["notices"]:
        lines += ["", f"Notice {n['id']} - {n['basis']} - {n['state']} - to {n['recipient'] or n['web_form'] or '-'}",
                  f"  sent {n['sent_at'] or '-'}, due {n['due_at'] or '-'}, closed {n['closed_at'] or '-'}"]
        lines += [f"  {e['at']}  {e['kind']}  {json.dumps(e['detail'], sort_keys=True)}" for e in n["events"]]
        lines += ["", "  " + n["subject"], "", *("  | " + line for line in n["body"].splitlines())]
    lines += ["", "TIMELINE (evidence log)"]
    for e in ev["log"]:
        lines += [f"  {e['position']:>4}  {e['at']}  {e['kind']}  sha256 {e['hash']}",
                  f"        {json.dumps(e['payload'], sort_keys=True, ensure_ascii=False)}"]
    return "\n".join(lines) + "\n"


def render_pdf(dossier: dict[str, Any]) -> bytes:
    from takeback.takedown.pdf import text_to_pdf

    return text_to_pdf(render_text(dossier), title=f"takeback dossier - case {dossier['case']['id']}")
