"""The case page's "Run a scan" form: start a scan of the case in the background and go back to the case page,
which shows the latest scan's state (running, done with its counts, failed with the reason).

The scan is the API's background scan (``web.api.scans``): ``discover.scan.start_scan`` checks the seeds and
creates the crawl run, and the run goes through the guarded fetcher with the server's fetch settings and time
bound.  Nothing here can widen the fetcher's SSRF guard.  One scan per case at a time: a second press while one is
running would only crawl the same sites twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from takeback.discover.scan import MAX_SEEDS, ScanError, start_scan
from takeback.web.api import scans
from takeback.web.auth import app_state
from takeback.web.dashboard import session as ui
from takeback.web.dashboard.access import EXPIRED, Text, audit_action, case_access, forbidden
from takeback.web.dashboard.overview import case_view, latest_scan

router = APIRouter(prefix="/app/cases/{case_id}", include_in_schema=False)
#: Room for MAX_SEEDS addresses of the longest length a finding keeps.
Seeds = Annotated[str, Form(max_length=MAX_SEEDS * 2100)]


@router.post("/scan")
def start(request: Request, case_id: int, csrf_token: Text, seeds: Seeds = "") -> Response:
    access = case_access(request, case_id)
    if isinstance(access, Response):
        return access
    current, role = access
    if not ui.csrf_ok(current, {"csrf_token": csrf_token}):
        return forbidden(request, current, EXPIRED, 400)
    state = app_state(request)
    sessions = state.store.sessions
    lines = [line.strip() for line in seeds.splitlines() if line.strip()]
    with sessions() as session:
        previous = latest_scan(session, case_id)
    if previous is not None and previous.state == "running":
        return case_view(request, current, role, case_id, http_status=409,
                         scan_error="A scan of this case is already running. Wait for it to finish, then start "
                                    "another.")
    if not lines and (previous is None or not previous.seeds):
        return case_view(request, current, role, case_id, http_status=400,
                         scan_error="Give at least one web address to start from (one per line).")
    options = scans.crawl_options(scans.ScanRequest(), state.settings)
    try:
        run_id = start_scan(sessions, case_id, lines, options)
    except ScanError as exc:
        return case_view(request, current, role, case_id, http_status=400, seeds_text=seeds,
                         scan_error=f"The scan could not start: {exc.message}.")
    scans.run_in_background(sessions, state.settings, run_id, options)
    audit_action(request, "scan_started", user_id=current.user.id, case_id=case_id, subject=f"scan:{run_id}",
                 detail={"seeds": len(lines) or len(previous.seeds if previous else [])})
    return RedirectResponse(f"/app/cases/{case_id}", status_code=303)
