"""Re-checks: fetch a case's findings again and record whether the content is still there.

A media finding is gone when its URL answers 404/410/451, or answers with something that no longer matches the
case's banks (a placeholder image, an HTML page): the finding becomes ``removed`` with an event.  When it matches
again later (a re-upload at the same URL) it is ``reopened``.  A name finding is gone when the page is gone or the
name no longer appears in its URL, title or text.  Anything that does not tell (a timeout, a 5xx, robots.txt now
refusing) is recorded as a ``fetch_error`` event and the status is left as it was: a removal is only confirmed by
an answer that says so.  Domain findings (from domain feeds) are not re-fetched here.

There is no scheduler yet: ``recheck_case`` is the function a job (or ``takeback scan --recheck``) runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover import sniff
from takeback.discover.allow import open_fetcher
from takeback.discover.crawl import (
    Crawler,
    CrawlOptions,
    FetcherLike,
    MediaOutcome,
    fetch_evidence,
    hit_evidence,
)
from takeback.discover.extract import DASH, HLS, IMAGE, VIDEO, MediaRef, extract_html, media_kind
from takeback.discover.fetch import FetchResult
from takeback.discover.scan import case_matcher, case_names_matcher

RECHECK_KINDS = ("media", "name")
#: A finding is re-checked by the jobs layer this long after its last check.
RECHECK_EVERY = timedelta(days=1)
_GONE = frozenset({404, 410, 451})


@dataclass(slots=True)
class RecheckSummary:
    checked: int = 0
    still_there: int = 0
    removed: int = 0
    reopened: int = 0
    errors: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "still_there": self.still_there,
            "removed": self.removed,
            "reopened": self.reopened,
            "errors": self.errors,
        }


def _media_ref(finding: store.FindingInfo) -> MediaRef:
    evidence = finding.evidence
    kind = evidence.get("media_kind")
    if kind not in (IMAGE, VIDEO, HLS, DASH):
        content_type = str(evidence.get("content_type", ""))
        if content_type == sniff.HLS or ("variant" in evidence and finding.url.lower().endswith(".m3u8")):
            kind = HLS
        elif content_type == sniff.DASH:
            kind = DASH
        elif "segment" in evidence:
            kind = media_kind(finding.url, HLS)
        else:
            media = evidence.get("media")
            default = VIDEO if isinstance(media, dict) and media.get("kind") == "video" else IMAGE
            kind = media_kind(finding.url, default)
    return MediaRef(finding.url, str(kind), "recheck")


async def _check_name(crawler: Crawler, finding: store.FindingInfo) -> MediaOutcome:
    """A name finding: is the page there and does it still carry a name?"""
    result = await crawler._try_fetch(finding.url, crawler.options.page_max_bytes, "text/html,*/*;q=0.5", "page")
    if not isinstance(result, FetchResult):
        return MediaOutcome(finding.url, "error", None, {"fetch_error": result})
    evidence = fetch_evidence(result)
    if result.status in _GONE:
        return MediaOutcome(finding.url, "gone", result.status, evidence)
    if result.status >= 400 or crawler.names is None:
        return MediaOutcome(finding.url, "error", result.status, evidence)
    page = await asyncio.get_running_loop().run_in_executor(
        None, lambda: extract_html(result.body, result.final_url, content_type=result.headers.get("content-type", ""))
    )
    hits = [*crawler.names.match_url(result.final_url, page.title or None)]
    if page.text:
        hits += crawler.names.match_text(page.text, "text")
    if not hits:
        return MediaOutcome(finding.url, "no_match", result.status, evidence)
    ordered = sorted(hits, key=lambda h: -int(getattr(h, "score", 0)))
    evidence.update(title=page.title[:300], names=[hit_evidence(h) for h in ordered[:20]])
    return MediaOutcome(finding.url, "matched", result.status, evidence)


async def recheck_findings(
    sessions: sessionmaker[Session],
    settings: Settings,
    case_id: int,
    *,
    fetcher: FetcherLike | None = None,
    allow_networks: Sequence[str] = (),
    finding_ids: Sequence[int] | None = None,
    limit: int = 10_000,
    concurrency: int = 8,
    on_checked: Callable[[store.FindingInfo, str], None] | None = None,
) -> RecheckSummary:
    """Re-check a case's media and name findings (or only ``finding_ids`` of it); record each outcome."""
    with sessions.begin() as session:
        if finding_ids is None:
            candidates = store.list_findings(session, case_id, limit=limit)
        else:
            candidates = [f for f in (store.get_finding(session, i) for i in finding_ids) if f is not None]
        findings = [f for f in candidates if f.kind in RECHECK_KINDS and f.case_id == case_id]
        matcher = case_matcher(session, case_id, settings)
        names = case_names_matcher(session, case_id)
    summary = RecheckSummary()
    if not findings:
        return summary

    async def run(active: FetcherLike) -> None:
        crawler = Crawler(active, matcher, names=names, options=CrawlOptions(hash_workers=2))
        semaphore = asyncio.Semaphore(max(1, concurrency))

        async def one(finding: store.FindingInfo) -> None:
            async with semaphore:
                if finding.kind == "media":
                    outcome = await crawler.check_media(_media_ref(finding), finding.evidence.get("page") or {})
                else:
                    outcome = await _check_name(crawler, finding)
            _record(sessions, summary, finding, outcome, on_checked)

        await asyncio.gather(*(one(f) for f in findings))

    if fetcher is None:
        async with open_fetcher(settings, allow_networks=allow_networks) as own:
            await run(own)
    else:
        await run(fetcher)
    return summary


def _record(
    sessions: sessionmaker[Session],
    summary: RecheckSummary,
    finding: store.FindingInfo,
    outcome: MediaOutcome,
    on_checked: Callable[[store.FindingInfo, str], None] | None,
) -> None:
    summary.checked += 1
    if outcome.state == "matched":
        check = "seen"
        evidence = dict(outcome.evidence)
        if finding.kind == "media" and "page" in finding.evidence:
            evidence["page"] = finding.evidence["page"]
    elif outcome.state in ("gone", "no_match", "not_media"):
        check, evidence = "removed", {**outcome.evidence, "reason": outcome.state}
    else:
        check, evidence = "fetch_error", outcome.evidence
    evidence = {k: v for k, v in evidence.items() if k != "page"} if check != "seen" else evidence
    with sessions.begin() as session:
        updated = store.record_check(session, finding.id, check, http_status=outcome.http_status, details=evidence)
        if updated is not None and updated.status != finding.status:  # gone, or back: into the evidence log
            store.log_finding(
                session,
                updated,
                "reopened" if check == "seen" else "removed",
                by="recheck",
                kind="finding_check",
                extra={"from": finding.status, "reason": outcome.state},
            )
    if updated is None:
        return
    if check == "seen":
        if finding.status == "removed":
            summary.reopened += 1
        else:
            summary.still_there += 1
    elif check == "removed":
        summary.removed += finding.status != "removed"
    else:
        summary.errors += 1
    summary.outcomes.append({"finding_id": finding.id, "url": finding.url, "check": check, "state": outcome.state})
    if on_checked is not None:
        on_checked(updated, check)


def due_findings(session: Session, now: datetime, *, every: timedelta = RECHECK_EVERY) -> list[int]:
    """Findings last checked more than ``every`` ago (``findings.recheck_due`` in the jobs layer)."""
    return store.findings_due(session, now - every, kinds=RECHECK_KINDS)


async def recheck_finding(
    sessions: sessionmaker[Session], settings: Settings, finding_id: int, **kwargs: Any
) -> RecheckSummary:
    """Re-check one finding (a job's unit of work); an unknown id does nothing."""
    with sessions.begin() as session:
        finding = store.get_finding(session, finding_id)
    if finding is None:
        return RecheckSummary()
    return await recheck_findings(sessions, settings, finding.case_id, finding_ids=[finding_id], **kwargs)


def recheck_case(
    sessions: sessionmaker[Session],
    settings: Settings,
    case_id: int,
    **kwargs: Any,
) -> RecheckSummary:
    """Blocking wrapper of ``recheck_findings`` (the CLI's path)."""
    return asyncio.run(recheck_findings(sessions, settings, case_id, **kwargs))
