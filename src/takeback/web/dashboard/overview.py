"""The case page: one calm overview of what was found, what was done and whether it is working.

It gathers, for one case, the charts (findings found vs taken down, median time to removal per party, notices by
state, petition signatures), the protected hashes, the latest scan's state, the findings filtered by stage and
kind, the names watched and the people on the case.  The numbers come from ``store.reports``; every chart has its
numbers in a table too.  The forms on this page post to their own modules (hashes, names, scan, members), which
render this view again on a refusal so the person sees what went wrong where she was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from takeback import store
from takeback.store import reports
from takeback.store.accounts import UiSessionInfo
from takeback.store.models import utcnow
from takeback.store.petitions import list_petitions
from takeback.web.api.scans import API_SCAN_MAX_S
from takeback.web.auth import app_state
from takeback.web.dashboard import charts
from takeback.web.dashboard.render import render

#: The status filter: every stage, plus "open" for everything still online.
STATUS_FILTERS = ("open", *reports.STAGES)
KIND_FILTERS = ("media", "name", "domain")
NAME_KINDS = ("name", "alias", "username")
#: A scan still "running" this long after it started was cut off (a restart): it no longer blocks a new one.
SCAN_STALE_AFTER = timedelta(seconds=API_SCAN_MAX_S + 120)
#: While the latest scan runs, the case page reloads itself this often (seconds): a meta refresh, so the person
#: sees the scan's progress and its findings without JavaScript and without knowing to reload.
SCAN_REFRESH_S = 3


@dataclass(frozen=True, slots=True)
class ScanView:
    """The latest scan as the person reads it."""

    id: int
    #: running | done | failed | stopped (was running when the server stopped)
    state: str
    started_at: datetime
    finished_at: datetime | None
    pages: int
    new_findings: int
    seen_findings: int
    errors: int
    reason: str
    seeds: list[str]


def latest_scan(session: Any, case_id: int, now: datetime | None = None) -> ScanView | None:
    runs = store.list_crawl_runs(session, case_id, limit=1)
    if not runs:
        return None
    run = runs[0]
    state = run.status
    if state == "running" and run.started_at < (now or utcnow()) - SCAN_STALE_AFTER:
        state = "stopped"
    stats = run.stats
    seeds = [s for s in run.options.get("seeds", []) if isinstance(s, str)]

    def number(key: str) -> int:
        value = stats.get(key)
        return value if type(value) is int else 0

    return ScanView(run.id, state, run.started_at, run.finished_at, number("pages"), number("new_findings"),
                    number("seen_findings"), number("errors"), str(stats.get("failure", ""))[:500], seeds)


def _case_banks(session: Any, case_id: int) -> list[tuple[Any, int]]:
    return [(b, store.count_signals(session, b.id)) for b in store.list_banks(session) if b.case_id == case_id]


def _wanted(stage: str, status: str) -> bool:
    if not status:
        return True
    if status == "open":
        return stage != "removed"
    return stage == status


def case_view(request: Request, current: UiSessionInfo, role: str, case_id: int, *, status: str = "",
              kind: str = "", http_status: int = 200, live: bool = False, **extra: Any) -> Response:
    """Render the case page (access already checked by the caller).

    ``live``: the page may reload itself while a scan runs.  Only the plain GET of the page is live: a page that
    answers a form (an error to read, the hashes just loaded) must not replace itself a few seconds later, and the
    person can turn it off (``?paused=1``) when the reloading gets in her way or her screen reader's."""
    with app_state(request).store.sessions() as session:
        case = store.get_case(session, case_id)
        names = store.list_case_names(session, case_id)
        everything = store.list_findings(session, case_id, limit=1000)
        stages = reports.finding_stages(session, case_id)
        members = store.case_members(session, case_id)
        banks = _case_banks(session, case_id)
        timeline = reports.findings_timeline(session, case_id)
        removals = reports.removal_times(session, case_id)
        by_state = reports.notices_by_state(session, case_id)
        petitions = list_petitions(session, case_id)
        signatures = reports.signatures_timeline(session, petitions[-1].id) if petitions else []
        scan = latest_scan(session, case_id)
    by_stage = {stage: 0 for stage in reports.STAGES}
    for stage in stages.values():
        by_stage[stage] += 1
    findings = [
        (f, stages.get(f.id, "new")) for f in everything
        if _wanted(stages.get(f.id, "new"), status) and (not kind or f.kind == kind)
    ]
    context: dict[str, Any] = {"error": None, "imported": None, "scan_error": None, "names_error": None,
                               "seeds_text": "\n".join(scan.seeds) if scan else "", **extra}
    refresh = SCAN_REFRESH_S if live and scan is not None and scan.state == "running" else 0
    query = {k: v for k, v, known in (("status", status, STATUS_FILTERS), ("kind", kind, KIND_FILTERS)) if v in known}
    paused_url = f"/app/cases/{case_id}?{urlencode({**query, 'paused': '1'})}"
    return render(
        request, "case.html", http_status, user=current.user, csrf_token=current.csrf_token, case=case, role=role,
        names=names, name_kinds=NAME_KINDS, findings=findings, total=len(everything), by_stage=by_stage,
        stage_labels=reports.STAGE_LABELS, status_filters=STATUS_FILTERS, kind_filters=KIND_FILTERS, members=members,
        banks=banks, status=status, kind=kind, scan=scan, refresh=refresh, paused_url=paused_url,
        timeline=timeline,
        chart=charts.line_chart(
            "Findings found and taken down", [p.day for p in timeline],
            {"found": [p.found for p in timeline], "taken down": [p.removed for p in timeline]}, ident="found",
        ),
        removals=removals,
        removal_chart=charts.bar_chart(
            "Median time to removal per party", [(r.party, round(r.median_hours, 1)) for r in removals], " h",
            ident="removal",
        ),
        by_state=by_state,
        state_chart=charts.bar_chart("Notices by state", by_state, ident="states"),
        petition=petitions[-1] if petitions else None,
        signatures=signatures,
        signature_chart=charts.line_chart(
            "Petition signatures over time", [d.day for d in signatures],
            {"verified": [d.verified for d in signatures], "pending": [d.pending for d in signatures]},
            ident="signatures",
        ),
        **context,
    )
