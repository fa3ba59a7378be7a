"""Scans and re-checks of a case through the API.

``POST /v1/cases/{id}/scans`` crawls the seeds within the given budgets.  By default it answers when the scan is
done (201, with its counters); with ``"background": true`` it answers at once (202) and the scan runs on in a
server thread: poll ``GET /v1/cases/{id}/scans/{run}`` for its status and counters.  A scan started through the API
is also bounded in time (``API_SCAN_MAX_S``).  ``POST /v1/cases/{id}/rechecks`` re-fetches the case's findings and
records removals and re-uploads.  Scope: ``manage`` (and the case must be visible to the key, see ``cases``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from takeback import store
from takeback.config import Settings
from takeback.discover.crawl import CrawlOptions
from takeback.discover.recheck import recheck_findings
from takeback.discover.scan import ScanError, run_scan, start_scan
from takeback.web.api.cases import CaseId, Manager, check_case, sessions_of
from takeback.web.errors import ApiError

router = APIRouter(prefix="/v1/cases", tags=["scans"])
RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]

#: Longest a scan started through the API may run; it then stops and keeps what it found.
API_SCAN_MAX_S = 600.0
#: TEST-ONLY: networks the API's fetcher may reach although they are private (tests set loopback here; it is never
#: configurable, so a deployed server's guard cannot be loosened by configuration).
ALLOW_NETWORKS: tuple[str, ...] = ()


class ScanRequest(BaseModel):
    seeds: list[str] = Field(
        default_factory=list, max_length=100, description="Start URLs; empty: the seeds of the case's last scan."
    )
    max_pages: int = Field(default=50, ge=1, le=5000)
    max_depth: int = Field(default=2, ge=0, le=10)
    max_media: int = Field(default=500, ge=0, le=20_000)
    sitemaps: bool = True
    background: bool = False


class ScanOut(BaseModel):
    id: int
    case_id: int
    status: str
    options: dict[str, Any]
    stats: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None


class ScanList(BaseModel):
    scans: list[ScanOut]


class RecheckOut(BaseModel):
    checked: int
    still_there: int
    removed: int
    reopened: int
    errors: int
    outcomes: list[dict[str, Any]]


def crawl_options(body: ScanRequest, settings: Settings | None = None) -> CrawlOptions:
    """The crawl budgets of a scan request (the dashboard's form uses the request's defaults), hashed by the
    server's configured worker processes."""
    return CrawlOptions(
        max_pages=body.max_pages,
        max_depth=body.max_depth,
        max_media=body.max_media,
        use_sitemaps=body.sitemaps,
        hash_processes=settings.scan_hash_processes if settings is not None else 0,
    )


def run_scan_bounded(sessions: Any, settings: Any, run_id: int, options: CrawlOptions) -> None:
    """Run a started scan to its end (at most ``API_SCAN_MAX_S``) through the guarded fetcher.  ``ALLOW_NETWORKS``
    is read at call time, so the tests' loopback allowance is the only way past the guard."""
    asyncio.run(_bounded(run_scan(sessions, settings, run_id, options, allow_networks=ALLOW_NETWORKS)))


def run_in_background(sessions: Any, settings: Any, run_id: int, options: CrawlOptions) -> threading.Thread:
    """Run a started scan in a server thread named ``scan-<run id>``; its failure is recorded on the run."""
    thread = threading.Thread(
        target=_quiet(lambda: run_scan_bounded(sessions, settings, run_id, options)), name=f"scan-{run_id}",
        daemon=True,
    )
    thread.start()
    return thread


def _out(run: store.CrawlRunInfo) -> ScanOut:
    return ScanOut(
        id=run.id,
        case_id=run.case_id,
        status=run.status,
        options=run.options,
        stats=run.stats,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


async def _bounded(coro: Any) -> None:
    # On timeout the run is marked failed, with the reason, by run_scan; what it found is kept.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(coro, timeout=API_SCAN_MAX_S)


@router.post(
    "/{case_id}/scans",
    status_code=201,
    response_model=ScanOut,
    responses={202: {"model": ScanOut, "description": "Started in the background"}},
    summary="Scan seed URLs (and their sites) for the case's media and names",
)
def start(case_id: CaseId, body: ScanRequest, request: Request, response: Response, principal: Manager) -> ScanOut:
    state_settings = request.app.state.takeback.settings
    sessions = sessions_of(request)
    with sessions.begin() as session:
        check_case(session, principal, case_id)
    options = crawl_options(body, state_settings)
    try:
        run_id = start_scan(sessions, case_id, body.seeds, options)
    except ScanError as exc:
        raise ApiError(400, "bad_scan", exc.message) from None
    if body.background:
        run_in_background(sessions, state_settings, run_id, options)
        response.status_code = 202
    else:
        run_scan_bounded(sessions, state_settings, run_id, options)
    with sessions.begin() as session:
        run = store.get_crawl_run(session, run_id)
    assert run is not None
    return _out(run)


def _quiet(fn: Any) -> Any:
    """A background scan's failure is recorded on its run; the thread itself must not die noisily."""

    def run() -> None:
        with contextlib.suppress(Exception):
            fn()

    return run


@router.get("/{case_id}/scans", response_model=ScanList, summary="The case's recent scans")
def list_scans(case_id: CaseId, request: Request, principal: Manager) -> ScanList:
    with sessions_of(request).begin() as session:
        check_case(session, principal, case_id)
        runs = store.list_crawl_runs(session, case_id, limit=50)
    return ScanList(scans=[_out(r) for r in runs])


@router.get("/{case_id}/scans/{run_id}", response_model=ScanOut, summary="One scan: status and counters")
def get_scan(case_id: CaseId, run_id: RunId, request: Request, principal: Manager) -> ScanOut:
    with sessions_of(request).begin() as session:
        check_case(session, principal, case_id)
        run = store.get_crawl_run(session, run_id)
    if run is None or run.case_id != case_id:
        raise ApiError(404, "unknown_scan", f"no scan {run_id} of case {case_id}")
    return _out(run)


@router.post(
    "/{case_id}/rechecks",
    response_model=RecheckOut,
    summary="Re-fetch the case's findings: confirm removals, reopen re-uploads",
)
def recheck(case_id: CaseId, request: Request, principal: Manager) -> RecheckOut:
    settings = request.app.state.takeback.settings
    sessions = sessions_of(request)
    with sessions.begin() as session:
        check_case(session, principal, case_id)
    summary = asyncio.run(recheck_findings(sessions, settings, case_id, allow_networks=ALLOW_NETWORKS))
    return RecheckOut(**summary.as_dict(), outcomes=summary.outcomes[:1000])
