"""A scan of the hostile loopback site: every hostile answer the crawl meets is bounded, logged on the crawl run
with the fetcher's code, and the crawl goes on to the end (the fetch-level classification of each case is in
test_fetch_hostile.py; here the crawl as a whole)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover.crawl import CrawlOptions
from takeback.discover.scan import scan_case
from tests.discover.crawl_site import bank_case
from tests.discover.hostile_site import CASES, HostileSite
from tests.discover.webserver import ALLOW_LOOPBACK

#: What the fetcher's page path reports for an answer it refuses; everything else must be a crawled page or image.
PAGE_FAILURES = {case.path: case.codes for case in CASES if case.expect != "ok"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The hostile site's cases are sized for a 1 MiB cap; 3 s per request leaves a redirect chain time to hit the
    # hop limit while the slow cases hold their connections.
    return Settings(
        data_dir=tmp_path / "data",
        fetch_max_bytes=1024 * 1024,
        fetch_timeout_s=3.0,
        fetch_connect_timeout_s=1.0,
        fetch_per_host_concurrency=4,  # the test server (ThreadingHTTPServer) listens with a backlog of 5
    )


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine, factory = store.open_store(settings)
    yield factory
    engine.dispose()


def test_the_crawl_logs_every_hostile_answer_and_goes_on(settings: Settings, sessions: sessionmaker[Session]) -> None:
    case_id, _ = bank_case(sessions)
    options = CrawlOptions(max_pages=200, max_depth=1, image_max_bytes=1024 * 1024, page_workers=4)
    with HostileSite() as site:
        port = site.port
        started = time.monotonic()
        result = scan_case(
            sessions, settings, case_id, [site.url("/index.html")], options=options, allow_networks=ALLOW_LOOPBACK
        )
        elapsed = time.monotonic() - started
        # The server is still answering: nothing hostile took it, or the crawler, down.
        assert site.url("/ok.html")
    with sessions.begin() as session:
        run = store.get_crawl_run(session, result.run_id)
    assert run is not None and run.status == "done", run
    logged: dict[str, set[str]] = {}
    for entry in result.stats["error_log"]:
        parts = urlsplit(entry["url"])
        if parts.port == port and parts.hostname == "127.0.0.1":
            logged.setdefault(parts.path, set()).add(entry["code"])
    for path, codes in PAGE_FAILURES.items():
        assert codes & logged.get(path, set()), (path, codes, logged.get(path))
    # The plain pages among them were crawled, and the broken images were fetched and reported, not hashed as
    # pictures: the crawl reached the end of its queue.
    assert result.stats["pages"] >= 1 + sum(1 for c in CASES if c.expect == "ok" and c.path.endswith(".html"))
    assert result.stats["media_matched"] == 0
    # Bounded: every slow case is cut at the 3 s deadline, in parallel, never a hang.
    assert elapsed < 30, elapsed
