"""One finding's evidence: what was seen where and when, what matched, the HTTP facts, content hashes, its history,
and the notices that name it — what a notice, a dispute or a lawyer needs, on one page.

The finding's URL and everything fetched from it (final URL, page title, redirect targets) came from a hostile
site: they are shown as text only (autoescaped), never as a link, an image, a frame or a preview, and the page
loads nothing from anywhere else (see ``render.SECURITY_HEADERS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from takeback import store
from takeback.store import reports
from takeback.web.auth import app_state
from takeback.web.dashboard.access import case_access, not_found
from takeback.web.dashboard.render import render

router = APIRouter(prefix="/app/cases/{case_id}/findings", include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Facts:
    """The latest evidence, flattened into what the page lists (every value is text or a number)."""

    final_url: str
    redirects: list[str]
    server_ip: str
    content_type: str
    fetched_at: str
    title: str
    found_via: str
    page_url: str
    page_title: str
    html_sha256: str
    media: dict[str, Any]
    matches: list[dict[str, Any]]
    names: list[dict[str, Any]]
    error: str


def _text(value: Any, limit: int = 2048) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _dicts(value: Any, limit: int = 20) -> list[dict[str, Any]]:
    return [v for v in value[:limit] if isinstance(v, dict)] if isinstance(value, list) else []


def facts(evidence: dict[str, Any]) -> Facts:
    """Evidence comes from the crawler's JSON (and, for old findings, whatever was recorded then): read each field
    defensively, so an unexpected shape shows as missing rather than breaking the page."""
    page = evidence.get("page") if isinstance(evidence.get("page"), dict) else {}
    media = evidence.get("media") if isinstance(evidence.get("media"), dict) else {}
    if not media and any(k in evidence for k in ("md5", "sha256")):
        media = {k: evidence[k] for k in ("md5", "sha256", "size") if k in evidence}
    media = {**media, "pdq": _dicts(media.get("pdq"), 8)}
    error = evidence.get("fetch_error") or evidence.get("hash_error") or evidence.get("error") or ""
    if isinstance(error, dict):
        error = "; ".join(f"{k}: {v}" for k, v in error.items() if isinstance(v, str | int))
    return Facts(
        final_url=_text(evidence.get("final_url")),
        redirects=[_text(r) for r in evidence.get("redirects", [])[:10]] if isinstance(evidence.get("redirects"), list)
        else [],
        server_ip=_text(evidence.get("server_ip"), 64),
        content_type=_text(evidence.get("content_type"), 100),
        fetched_at=_text(evidence.get("fetched_at"), 40),
        title=_text(evidence.get("title"), 300),
        found_via=_text(evidence.get("found_via"), 40),
        page_url=_text(page.get("url")),
        page_title=_text(page.get("title"), 300),
        html_sha256=_text(evidence.get("html_sha256") or page.get("html_sha256"), 64),
        media=media,
        matches=_dicts(evidence.get("matches")),
        names=_dicts(evidence.get("names")),
        error=str(error)[:500],
    )


@router.get("/{finding_id}")
def finding_page(request: Request, case_id: int, finding_id: int) -> Response:
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, _role = access
    with app_state(request).store.sessions() as session:
        finding = store.get_finding(session, finding_id)
        if finding is None or finding.case_id != case_id:
            return not_found(request, current, "There is no such finding in this case.")
        case = store.get_case(session, case_id)
        events = store.list_finding_events(session, finding_id, limit=500)
        notices = reports.notices_for_finding(session, finding_id)
        parties = store.finding_parties(session, finding_id)
        stage = reports.finding_stages(session, case_id).get(finding_id, "new")
    return render(request, "finding.html", user=current.user, csrf_token=current.csrf_token, case=case,
                  finding=finding, facts=facts(finding.evidence), events=events, notices=notices, parties=parties,
                  stage=stage, stage_label=reports.STAGE_LABELS[stage])
