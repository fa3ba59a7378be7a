"""Re-checks against a loopback site whose answers change: removals confirmed (404/410, replaced content, a page
that lost the name), re-uploads reopen, answers that do not tell leave the status alone; the jobs hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover.crawl import CrawlOptions
from takeback.discover.recheck import due_findings, recheck_case, recheck_finding
from takeback.discover.scan import ABANDONED_AFTER, close_abandoned_runs, due_cases, scan_case
from takeback.store.models import utcnow
from tests.discover.crawl_site import BANKED, OTHERS, clip, html, jpeg
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, WebServer

OPTIONS = CrawlOptions(max_pages=20, max_depth=2, use_sitemaps=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine, factory = store.open_store(settings)
    yield factory
    engine.dispose()


def _routes() -> dict[str, Reply]:
    return {
        "/": html('<img src="/a.jpg"><img src="/b.jpg"><video src="/c.mp4"></video><a href="/watch-now">x</a>'),
        "/a.jpg": Reply(body=jpeg(BANKED), content_type="image/jpeg"),
        "/b.jpg": Reply(body=jpeg(BANKED, (200, 150)), content_type="image/jpeg"),
        "/c.mp4": Reply(body=clip(BANKED), content_type="video/mp4"),
        "/watch-now": html("<p>hello</p>", title="Mia Khalifa videos"),
    }


def _by_path(sessions: sessionmaker[Session], case_id: int, origin: str) -> dict[str, store.FindingInfo]:
    with sessions.begin() as session:
        return {f.url.removeprefix(origin): f for f in store.list_findings(session, case_id)}


def test_removed_then_reuploaded(settings: Settings, sessions: sessionmaker[Session]) -> None:
    from tests.discover.crawl_site import bank_case

    case_id, _ = bank_case(sessions)
    with WebServer(_routes()) as site:
        scan_case(sessions, settings, case_id, [site.url("/")], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
        found = _by_path(sessions, case_id, site.origin)
        assert set(found) == {"/a.jpg", "/b.jpg", "/c.mp4", "/watch-now"}

        # Everything still there.
        summary = recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)
        assert (summary.checked, summary.still_there, summary.removed, summary.errors) == (4, 4, 0, 0)
        before = _by_path(sessions, case_id, site.origin)

        # a: gone (404); b: replaced by another picture; c: 410; the page no longer carries the name.
        site.routes["/a.jpg"] = Reply(status=404, body=b"gone", content_type="text/plain")
        site.routes["/b.jpg"] = Reply(body=jpeg(OTHERS[0], (200, 150)), content_type="image/jpeg")
        site.routes["/c.mp4"] = Reply(status=410, body=b"", content_type="text/plain")
        site.routes["/watch-now"] = html("<p>nothing here</p>", title="Removed")
        summary = recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)
        assert (summary.removed, summary.still_there) == (4, 0)
        now = _by_path(sessions, case_id, site.origin)
        assert {p: f.status for p, f in now.items()} == dict.fromkeys(found, "removed")
        assert now["/a.jpg"].http_status == 404 and now["/c.mp4"].http_status == 410
        # The last evidence of presence stays on the finding; the removal is in the history.
        assert now["/a.jpg"].evidence["matches"] and now["/a.jpg"].last_seen_at == before["/a.jpg"].last_seen_at

        # A server error does not tell: status stays removed, the error is recorded.
        site.routes["/a.jpg"] = Reply(status=503, body=b"busy", content_type="text/plain")
        summary = recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)
        assert summary.errors == 1 and summary.reopened == 0

        # Re-uploaded at the same URL: reopened.
        site.routes["/a.jpg"] = Reply(body=jpeg(BANKED, (280, 210), 70), content_type="image/jpeg")
        summary = recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)
        assert summary.reopened == 1
        final = _by_path(sessions, case_id, site.origin)
        assert final["/a.jpg"].status == "open" and final["/a.jpg"].evidence["media"]["width"] == 280
        with sessions.begin() as session:
            events = [e.event for e in store.list_finding_events(session, final["/a.jpg"].id)]
            page_events = store.list_finding_events(session, final["/b.jpg"].id)
    assert events == ["found", "seen", "removed", "fetch_error", "reopened"]
    assert page_events[2].event == "removed" and page_events[2].details["reason"] == "no_match"


def test_unreachable_is_a_fetch_error(settings: Settings, sessions: sessionmaker[Session]) -> None:
    from tests.discover.crawl_site import bank_case

    case_id, _ = bank_case(sessions)
    with WebServer(_routes()) as site:
        scan_case(sessions, settings, case_id, [site.url("/")], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
    # The server is gone: connection refused is not proof of removal.
    summary = recheck_case(sessions, settings, case_id, allow_networks=ALLOW_LOOPBACK)
    assert summary.errors == 4 and summary.removed == 0
    with sessions.begin() as session:
        assert all(f.status == "open" for f in store.list_findings(session, case_id))


def test_jobs_hooks(settings: Settings, sessions: sessionmaker[Session]) -> None:
    from tests.discover.crawl_site import bank_case

    case_id, _ = bank_case(sessions)
    with WebServer(_routes()) as site:
        result = scan_case(sessions, settings, case_id, [site.url("/")], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
        now = utcnow()
        with sessions.begin() as session:
            assert due_findings(session, now) == []
            later = sorted(due_findings(session, now + timedelta(days=2)))
            assert later == sorted(result.new_findings)
            assert due_cases(session, now) == []
            assert due_cases(session, now + timedelta(days=8)) == [case_id]
        summary = asyncio.run(
            recheck_finding(sessions, settings, result.new_findings[0], allow_networks=ALLOW_LOOPBACK)
        )
        assert summary.checked == 1 and summary.still_there == 1
        assert asyncio.run(recheck_finding(sessions, settings, 10**9)).checked == 0
    with sessions.begin() as session:
        assert result.new_findings[0] not in due_findings(session, now + timedelta(hours=1))
    # A run left "running" by a killed process holds the case only until it is taken for abandoned.
    with sessions.begin() as session:
        running = store.start_crawl_run(session, case_id, {"seeds": ["http://127.0.0.1:9/"]})
    with sessions.begin() as session:
        started = running.started_at
        assert due_cases(session, started + ABANDONED_AFTER - timedelta(minutes=1), every=timedelta(0)) == []
        assert due_cases(session, started + ABANDONED_AFTER, every=timedelta(0)) == [case_id]
        assert close_abandoned_runs(session, case_id, started + ABANDONED_AFTER) == [running.id]
        closed = store.get_crawl_run(session, running.id)
        assert closed is not None and closed.status == "failed" and "abandoned" in closed.stats["error"]
