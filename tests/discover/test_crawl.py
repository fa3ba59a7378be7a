"""The crawl end to end against a loopback site, through the real guarded Fetcher (loopback allowed for the test
only): planted copies found through every kind of reference, names found, budgets and robots.txt honoured, every
hostile answer logged while the crawl goes on, findings de-duplicated across scans."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from takeback import store
from takeback.config import Settings
from takeback.discover.crawl import CrawlOptions
from takeback.discover.scan import ScanError, scan_case, start_scan
from tests.discover.crawl_site import Site, bank_case, html, site_routes
from tests.discover.webserver import ALLOW_LOOPBACK, WebServer

OPTIONS = CrawlOptions(max_pages=50, max_depth=2, image_max_bytes=200 * 1024)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def sessions(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine, factory = store.open_store(settings)
    yield factory
    engine.dispose()


def _findings(sessions: sessionmaker[Session], case_id: int) -> dict[str, store.FindingInfo]:
    with sessions.begin() as session:
        return {f.url: f for f in store.list_findings(session, case_id)}


def test_hashing_in_worker_processes_finds_the_same(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """hash_processes moves hashing to worker processes; findings and their hashes are the same as in-process."""
    case_id, _ = bank_case(sessions)
    by_mode: dict[int, dict[str, object]] = {}
    with WebServer(site_routes()) as site:
        origin = site.origin
        for processes in (0, 2):
            options = replace(OPTIONS, hash_processes=processes)
            result = scan_case(
                sessions, settings, case_id, [site.url("/")], options=options, allow_networks=ALLOW_LOOPBACK
            )
            assert result.stats["media_matched"] == len(Site.copies)
            by_mode[processes] = {
                url: (f.evidence["media"], [m["signal_id"] for m in f.evidence["matches"]])
                for url, f in _findings(sessions, case_id).items()
                if f.kind == "media"
            }
    assert by_mode[2] == by_mode[0]
    assert {url.removeprefix(origin) for url in by_mode[2]} == set(Site.copies)


def test_scan_finds_planted_copies_and_names(settings: Settings, sessions: sessionmaker[Session]) -> None:
    case_id, signal_id = bank_case(sessions)
    with WebServer(site_routes()) as site:
        origin = site.origin
        result = scan_case(sessions, settings, case_id, [site.url("/")], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
        findings = _findings(sessions, case_id)
        assert site.hits["/broken"] == 1  # a 500 is an answer, not an error, and the crawl went on
        media = {url.removeprefix(site.origin) for url, f in findings.items() if f.kind == "media"}
        names = {url.removeprefix(site.origin) for url, f in findings.items() if f.kind == "name"}
        assert media == set(Site.copies)
        assert names == set(Site.name_pages)
        # Off-site links are not followed, robots.txt is obeyed, the depth budget holds.
        assert site.hits["/private/secret"] == 0
        assert site.hits["/page4"] == 0 and site.hits["/img/too-deep.jpg"] == 0
        # Each page and each media file fetched once although several pages point to them.
        assert site.hits["/img/other1.jpg"] == 1 and site.hits["/"] == 1
        assert site.hits["/hls/low/seg0.ts"] == 1
    stats = result.stats
    assert stats["media_matched"] == len(Site.copies) and stats["name_hits"] == 1
    codes = {(e["url"].removeprefix(origin), e["code"]) for e in stats["error_log"]}
    assert ("/loop", "too_many_redirects") in codes
    assert ("/img/huge.jpg", "too_large") in codes
    assert ("/private/secret", "robots_disallowed") in codes
    assert ("/img/fake.jpg", "not-media") not in codes  # HTML served as an image: no match, not an error
    assert len(result.new_findings) == len(Site.copies) + 1 and result.seen_findings == ()

    url = origin.__add__
    copy = findings[url("/img/copy.jpg")]
    evidence = copy.evidence
    assert copy.status == "open" and copy.http_status == 200
    assert evidence["matches"][0]["signal_id"] == signal_id and evidence["matches"][0]["distance"] <= 31
    assert evidence["matches"][0]["signal_type"] == "pdq" and evidence["matches"][0]["bank"].startswith("photos")
    assert evidence["server_ip"] == "127.0.0.1" and evidence["final_url"] == url("/img/copy.jpg")
    assert evidence["media"]["width"] == 300 and len(evidence["media"]["sha256"]) == 64 and evidence["media"]["size"]
    assert evidence["page"]["url"] == url("/page1") and len(evidence["page"]["html_sha256"]) == 64
    stream = findings[url("/hls/master.m3u8")].evidence
    assert stream["segment"] == url("/hls/low/seg0.ts") and stream["media"]["kind"] == "video"
    assert stream["variant"] == url("/hls/low/index.m3u8")
    name = findings[url("/mia-khalifa-leaked")].evidence
    assert name["names"][0]["name"] == "Mia Khalifa" and name["names"][0]["where"] == "path"
    assert name["title"] == "Watch now" and len(name["html_sha256"]) == 64
    # Nothing fetched was kept: evidence holds hashes and facts, never bytes.
    assert all(len(str(f.evidence)) < 20_000 for f in findings.values())
    with sessions.begin() as session:
        run = store.get_crawl_run(session, result.run_id)
    assert run is not None and run.status == "done" and run.stats["pages"] == stats["pages"]


def test_second_scan_sees_the_same_findings_again(settings: Settings, sessions: sessionmaker[Session]) -> None:
    case_id, _ = bank_case(sessions)
    with WebServer(site_routes()) as site:
        first = scan_case(sessions, settings, case_id, [site.url("/")], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
        # No seeds: the last scan's are used.
        second = scan_case(sessions, settings, case_id, [], options=OPTIONS, allow_networks=ALLOW_LOOPBACK)
    assert second.new_findings == () and sorted(second.seen_findings) == sorted(first.new_findings)
    with sessions.begin() as session:
        events = store.list_finding_events(session, first.new_findings[0])
    assert [e.event for e in events] == ["found", "seen"]


def test_page_budget(settings: Settings, sessions: sessionmaker[Session]) -> None:
    case_id, _ = bank_case(sessions)
    routes = {f"/p{i}": html(f'<a href="/p{i + 1}">next</a><a href="/p{i + 2}">skip</a>') for i in range(100)}
    routes["/"] = html('<a href="/p0">start</a>')
    with WebServer(routes) as site:
        options = CrawlOptions(max_pages=10, max_depth=1000, use_sitemaps=False)
        result = scan_case(sessions, settings, case_id, [site.url("/")], options=options, allow_networks=ALLOW_LOOPBACK)
        assert result.stats["pages"] == 10
        assert sum(site.hits.values()) - site.hits["/robots.txt"] == 10


def test_guard_stays_on_without_the_test_allowance(settings: Settings, sessions: sessionmaker[Session]) -> None:
    case_id, _ = bank_case(sessions)
    with WebServer(site_routes()) as site:
        result = scan_case(sessions, settings, case_id, [site.url("/")], options=OPTIONS)
        assert sum(site.hits.values()) == 0
    assert result.stats["pages"] == 0 and {e["code"] for e in result.stats["error_log"]} == {"unsafe_url"}


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        (["ftp://example.com/"], "not"),
        (["http://user:pw@example.com/"], "credentials"),
        (["   "], "empty"),
        (["not a url"], "not"),
        ([], "no seed"),
    ],
)
def test_bad_seeds_are_refused(sessions: sessionmaker[Session], seeds: list[str], message: str) -> None:
    case_id, _ = bank_case(sessions)
    with pytest.raises(ScanError) as info:
        start_scan(sessions, case_id, seeds, OPTIONS)
    assert message in info.value.message.lower()
    with pytest.raises(ScanError):
        start_scan(sessions, case_id + 100, ["https://example.com/"], OPTIONS)
