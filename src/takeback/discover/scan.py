"""A scan of one case: crawl its seeds and record what was found as findings with evidence.

Ties the crawler to the store: the case's banks become a ``MediaMatcher`` (the same index the match service uses,
at ``Settings.pdq_threshold``), its names a ``NameMatcher``, every observation a finding (de-duplicated per URL,
with a history event), and the run itself a ``crawl_runs`` row with counters and the fetch-error log.  The CLI
(``takeback scan``) and the API (``POST /v1/cases/{id}/scans``) both call ``scan_case``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover.allow import open_fetcher
from takeback.discover.crawl import CrawlOptions, CrawlStats, FetcherLike, NameMatching, Observation, crawl
from takeback.discover.crawl_match import MediaMatcher
from takeback.discover.urlguard import UnsafeURL, check_url
from takeback.index import IndexedSignal
from takeback.index.video import VideoRule
from takeback.store.findings import EVIDENCE_MAX
from takeback.store.models import utcnow

log = logging.getLogger(__name__)

MAX_SEEDS = 100
#: A case is re-scanned (from its last seeds) by the jobs layer this long after its last scan started.
RESCAN_EVERY = timedelta(days=7)
#: Longest a scheduled re-scan runs (``cases.rescan`` stops it there and records why).
RESCAN_MAX_S = 3600.0
#: A run still "running" this long after it started has lost its process (a killed worker or server: every scan
#: path is bounded well below this); it counts as failed, so the case is due again and a new scan can start.
ABANDONED_AFTER = timedelta(hours=3)
#: Progress is written to the crawl run at most this often (the API's status endpoint reads it).
PROGRESS_EVERY_S = 1.0


class ScanError(ValueError):
    """A scan that cannot start: unknown case, no or bad seeds.  ``.message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ScanResult:
    run_id: int
    case_id: int
    stats: dict[str, Any]
    #: Findings created by this scan, and existing ones seen again.
    new_findings: tuple[int, ...]
    seen_findings: tuple[int, ...]


def check_seeds(seeds: Sequence[str]) -> list[str]:
    """The seeds, stripped and de-duplicated; ``ScanError`` naming the first bad one (shape only: addresses are
    checked by the fetcher on every request)."""
    out: dict[str, None] = {}
    for seed in seeds:
        if not isinstance(seed, str) or not seed.strip():
            raise ScanError("a seed URL is empty")
        text = seed.strip()
        try:
            checked = check_url(text, allow_private=True, resolver=None)
        except UnsafeURL as exc:
            raise ScanError(f"seed {text[:200]!r} is not usable: {exc.message}") from None
        if checked.scheme not in ("http", "https"):
            raise ScanError(f"seed {text[:200]!r} is not an http(s) URL")
        out[text] = None
    if len(out) > MAX_SEEDS:
        raise ScanError(f"at most {MAX_SEEDS} seeds per scan")
    return list(out)


def case_matcher(session: Session, case_id: int, settings: Settings) -> MediaMatcher:
    """The case's banks, indexed for matching fetched media."""
    banks = {b.id: b.name for b in store.list_banks(session) if b.case_id == case_id}
    rows: list[IndexedSignal] = []
    for bank_id in banks:
        for chunk in store.iter_signals(session, bank_id=bank_id):
            rows.extend(IndexedSignal(s.id, s.bank_id, s.signal_type, s.value) for s in chunk)
    rule = VideoRule(
        threshold=settings.vpdq_threshold,
        quality=settings.vpdq_quality,
        query_match_pct=settings.vpdq_query_match_pct,
        compared_match_pct=settings.vpdq_compared_match_pct,
    )
    return MediaMatcher(rows, banks, pdq_threshold=settings.pdq_threshold, vpdq_rule=rule)


def case_names_matcher(session: Session, case_id: int) -> NameMatching | None:
    """The case's names as a matcher, or None when it has none."""
    names = store.list_case_names(session, case_id)
    if not names:
        return None
    from takeback.discover.names import NameMatcher

    return NameMatcher(names)


def previous_seeds(session: Session, case_id: int) -> list[str]:
    for run in store.list_crawl_runs(session, case_id, limit=20):
        seeds = run.options.get("seeds")
        if isinstance(seeds, list) and seeds:
            return [s for s in seeds if isinstance(s, str)]
    return []


def crawl_options(settings: Settings) -> CrawlOptions:
    """Budgets of a scheduled re-scan (the CLI and API choose their own per scan) and the deployment's hashing
    processes."""
    return CrawlOptions(hash_processes=settings.scan_hash_processes)


def due_cases(session: Session, now: datetime, *, every: timedelta = RESCAN_EVERY) -> list[int]:
    """Cases whose latest scan (with seeds) started more than ``every`` ago and is not still running (a run
    abandoned by a killed process does not count as running): what the jobs layer re-scans (``cases.rescan_due``)."""
    due: list[int] = []
    for case in store.list_cases(session):
        runs = store.list_crawl_runs(session, case.id, limit=1)
        if not runs or not runs[0].options.get("seeds"):
            continue
        if runs[0].status == "running" and runs[0].started_at > now - ABANDONED_AFTER:
            continue  # still running somewhere
        if runs[0].started_at <= now - every:
            due.append(case.id)
    return due


def close_abandoned_runs(session: Session, case_id: int, now: datetime) -> list[int]:
    """Mark the case's runs that lost their process (still "running" after ``ABANDONED_AFTER``) failed, with the
    reason, so the scan history tells the truth; returns their ids."""
    closed = []
    for run in store.list_crawl_runs(session, case_id, limit=20):
        if run.status == "running" and run.started_at <= now - ABANDONED_AFTER:
            stats = dict(run.stats)
            stats["error"] = "abandoned: the process running this scan stopped before it finished"
            store.update_crawl_run(session, run.id, stats=stats, status="failed")
            closed.append(run.id)
    return closed


def start_scan(sessions: sessionmaker[Session], case_id: int, seeds: Sequence[str], options: CrawlOptions) -> int:
    """Check the case and seeds and create the crawl run (status "running"); returns its id."""
    with sessions.begin() as session:
        if store.get_case(session, case_id) is None:
            raise ScanError(f"no case {case_id}")
        chosen = check_seeds(seeds) if seeds else previous_seeds(session, case_id)
        if not chosen:
            raise ScanError("no seed URLs given and none from an earlier scan of this case")
        close_abandoned_runs(session, case_id, utcnow())
        run = store.start_crawl_run(
            session,
            case_id,
            {"seeds": chosen, "max_pages": options.max_pages, "max_depth": options.max_depth},
        )
        return run.id


async def run_scan(
    sessions: sessionmaker[Session],
    settings: Settings,
    run_id: int,
    options: CrawlOptions,
    *,
    fetcher: FetcherLike | None = None,
    allow_networks: Sequence[str] = (),
    on_progress: Callable[[CrawlStats], None] | None = None,
    on_finding: Callable[[store.FindingInfo, bool], None] | None = None,
    executor: Executor | None = None,
) -> ScanResult:
    """Run a crawl run created by ``start_scan`` to its end; the run is marked done (or failed, with the error)."""
    with sessions.begin() as session:
        run = store.get_crawl_run(session, run_id)
        if run is None:
            raise ScanError(f"no crawl run {run_id}")
        case_id = run.case_id
        seeds = [s for s in run.options.get("seeds", []) if isinstance(s, str)]
        matcher = case_matcher(session, case_id, settings)
        names = case_names_matcher(session, case_id)
    new: list[int] = []
    seen: list[int] = []
    last_write = time.monotonic()

    def observe(observation: Observation) -> None:
        with sessions.begin() as session:
            finding, created = store.record_finding(
                session, case_id, observation.url[:2048], observation.kind, evidence=_fit(observation.evidence)
            )
            # the case's hash-chained evidence log, in the same transaction: what this scan saw, when
            store.log_finding(session, finding, "found" if created else "seen", by="scan", extra={"run_id": run_id})
        (new if created else seen).append(finding.id)
        if on_finding is not None:
            on_finding(finding, created)

    def progress(stats: CrawlStats) -> None:
        nonlocal last_write
        if on_progress is not None:
            on_progress(stats)
        if time.monotonic() - last_write >= PROGRESS_EVERY_S:
            last_write = time.monotonic()
            with sessions.begin() as session:
                store.update_crawl_run(session, run_id, stats=_run_stats(stats, new, seen))

    stats = CrawlStats()
    try:
        if fetcher is None:
            async with open_fetcher(settings, allow_networks=allow_networks) as own:
                stats = await crawl(
                    own, seeds, matcher, names=names, options=options, on_observation=observe,
                    on_progress=progress, executor=executor,
                )  # fmt: skip
        else:
            stats = await crawl(
                fetcher, seeds, matcher, names=names, options=options, on_observation=observe,
                on_progress=progress, executor=executor,
            )  # fmt: skip
    except BaseException as exc:
        with sessions.begin() as session:
            final = {**_run_stats(stats, new, seen), "failure": f"{type(exc).__name__}: {exc}"[:500]}
            store.update_crawl_run(session, run_id, stats=final, status="failed")
        raise
    with sessions.begin() as session:
        store.update_crawl_run(session, run_id, stats=_run_stats(stats, new, seen), status="done")
    return ScanResult(run_id, case_id, _run_stats(stats, new, seen), tuple(new), tuple(seen))


def scan_case(
    sessions: sessionmaker[Session],
    settings: Settings,
    case_id: int,
    seeds: Sequence[str] = (),
    *,
    options: CrawlOptions | None = None,
    allow_networks: Sequence[str] = (),
    fetcher: FetcherLike | None = None,
    on_progress: Callable[[CrawlStats], None] | None = None,
    on_finding: Callable[[store.FindingInfo, bool], None] | None = None,
) -> ScanResult:
    """Start and run a scan to its end (blocking; the CLI's path).  ``ScanError`` when it cannot start."""
    options = options or CrawlOptions()
    run_id = start_scan(sessions, case_id, seeds, options)
    return asyncio.run(
        run_scan(
            sessions, settings, run_id, options, fetcher=fetcher, allow_networks=allow_networks,
            on_progress=on_progress, on_finding=on_finding,
        )
    )  # fmt: skip


def _run_stats(stats: CrawlStats, new: list[int], seen: list[int]) -> dict[str, Any]:
    return {**stats.as_dict(), "new_findings": len(new), "seen_findings": len(seen)}


def _fit(evidence: dict[str, Any]) -> dict[str, Any]:
    """Evidence comes from the web: keep it within the store's size limit by dropping the bulkiest parts."""
    if len(json.dumps(evidence, default=str)) <= EVIDENCE_MAX:
        return evidence
    slim = {k: v for k, v in evidence.items() if k not in ("names", "matches", "redirects", "page")}
    for key in ("matches", "names"):
        if key in evidence:
            slim[key] = evidence[key][:3]
    page = evidence.get("page")
    if isinstance(page, dict):
        slim["page"] = {k: (v[:500] if isinstance(v, str) else v) for k, v in page.items()}
    return slim
