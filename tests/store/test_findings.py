"""Findings, their events, crawl runs and case names on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from takeback import store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _case(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        return store.create_case(session, "Case of A.").id


def test_record_then_see_again_dedupes_by_url_key(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions)
    evidence = {"http_status": 200, "match": {"signal_id": 7, "distance": 12}, "title": "caf\u00e9 \x00"}
    with sessions.begin() as session:
        first, created = store.record_finding(
            session, case_id, "HTTP://Example.COM:80/a?b=2&a=1#frag", "media", evidence=evidence, seen_at=T0
        )
    assert created and first.status == "open" and first.http_status == 200
    assert first.evidence == evidence and first.first_seen_at == first.last_seen_at == T0
    later = T0 + timedelta(days=1)
    with sessions.begin() as session:
        again, created = store.record_finding(
            session, case_id, "http://example.com/a?a=1&b=2", "name", evidence={"http_status": 301}, seen_at=later
        )
    assert not created and again.id == first.id
    # The first spelling stays; the latest evidence replaces the old one; a media finding stays a media finding.
    assert again.url == "HTTP://Example.COM:80/a?b=2&a=1#frag"
    assert (again.kind, again.http_status, again.evidence) == ("media", 301, {"http_status": 301})
    assert (again.first_seen_at, again.last_seen_at) == (T0, later)
    with sessions.begin() as session:
        assert store.get_finding(session, first.id) == again
        assert store.get_finding_by_url(session, case_id, "http://EXAMPLE.com/a?b=2&a=1") == again
        events = store.list_finding_events(session, first.id)
    assert [(e.event, e.http_status, e.at) for e in events] == [("found", 200, T0), ("seen", 301, later)]
    assert events[0].details == evidence


def test_name_finding_upgrades_to_media(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions)
    with sessions.begin() as session:
        store.record_finding(session, case_id, "https://x.test/p", "name", evidence={})
        finding, _ = store.record_finding(session, case_id, "https://x.test/p", "media", evidence={})
    assert finding.kind == "media"


def test_findings_are_per_case(sessions: sessionmaker[Session]) -> None:
    a, b = _case(sessions), _case(sessions)
    with sessions.begin() as session:
        fa, created_a = store.record_finding(session, a, "https://x.test/", "media", evidence={})
        fb, created_b = store.record_finding(session, b, "https://x.test/", "media", evidence={})
    assert created_a and created_b and fa.id != fb.id
    with sessions.begin() as session:
        assert [f.id for f in store.list_findings(session, a)] == [fa.id]
        assert store.count_findings(session, b) == 1


def test_removed_then_reopened(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions)
    with sessions.begin() as session:
        finding, _ = store.record_finding(session, case_id, "https://x.test/i.jpg", "media", evidence={}, seen_at=T0)
    with sessions.begin() as session:
        gone = store.record_check(session, finding.id, "removed", http_status=404, checked_at=T0 + timedelta(1))
        assert gone is not None and gone.status == "removed" and gone.http_status == 404
        assert gone.last_seen_at == T0 and gone.last_checked_at == T0 + timedelta(1)
        still = store.record_check(session, finding.id, "removed", http_status=410)
        assert still is not None and still.status == "removed"
        err = store.record_check(session, finding.id, "fetch_error", details={"code": "timeout"})
        assert err is not None and err.status == "removed" and err.http_status == 410
        assert store.list_findings(session, case_id, status="removed") == [err]
        assert store.list_findings(session, case_id, status="open") == []
    with sessions.begin() as session:
        back = store.record_check(session, finding.id, "seen", http_status=200, details={"http_status": 200})
        assert back is not None and back.status == "open" and back.evidence == {"http_status": 200}
        store.record_check(session, finding.id, "removed", http_status=404)
        # A crawl seeing it again also reopens it.
        crawled, created = store.record_finding(session, case_id, "https://x.test/i.jpg", "media", evidence={})
        assert not created and crawled.status == "open"
        events = [e.event for e in store.list_finding_events(session, finding.id)]
    assert events == ["found", "removed", "still_removed", "fetch_error", "reopened", "removed", "reopened"]


def test_paging_and_filters(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions)
    with sessions.begin() as session:
        ids = [
            store.record_finding(session, case_id, f"https://x.test/{i}", "media" if i % 2 else "name", evidence={})[
                0
            ].id
            for i in range(7)
        ]
    with sessions.begin() as session:
        page1 = store.list_findings(session, case_id, limit=3)
        page2 = store.list_findings(session, case_id, limit=3, after_id=page1[-1].id)
        assert [f.id for f in page1 + page2] == ids[:6]
        assert len(store.list_findings(session, case_id, kind="media")) == 3
        assert store.list_findings(session, case_id, kind="bogus") == []
        assert store.list_findings(session, case_id, after_id=2**70) == []
        assert store.list_findings(session, 2**40) == []
        assert store.get_finding(session, 2**70) is None
        assert store.list_finding_events(session, -1) == []


@pytest.mark.parametrize(
    ("url", "kind", "evidence"),
    [
        ("", "media", {}),
        ("https://x.test/\x00", "media", {}),
        ("https://x.test/" + "a" * 2100, "media", {}),
        ("https://x.test/", "photo", {}),
        ("https://x.test/", "media", {"x": float("nan")}),
        ("https://x.test/", "media", {"x": object()}),
        ("https://x.test/", "media", {"x": "y" * 70_000}),
    ],
)
def test_bad_input_is_refused(sessions: sessionmaker[Session], url: str, kind: str, evidence: dict) -> None:
    case_id = _case(sessions)
    with sessions.begin() as session:
        with pytest.raises(store.InvalidInput):
            store.record_finding(session, case_id, url, kind, evidence=evidence)
        # The transaction stays usable.
        assert store.record_finding(session, case_id, "https://ok.test/", "media", evidence={})[1]
    with sessions.begin() as session, pytest.raises(store.InvalidInput):
        store.record_finding(session, case_id + 100, "https://x.test/", "media", evidence={})
    with sessions.begin() as session, pytest.raises(store.InvalidInput):
        store.record_check(session, 1, "vanished")


def test_crawl_runs(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions)
    with sessions.begin() as session:
        run = store.start_crawl_run(session, case_id, {"seeds": ["https://x.test/"], "max_pages": 10})
        assert run.status == "running" and run.finished_at is None and run.options["max_pages"] == 10
        store.update_crawl_run(session, run.id, stats={"pages": 3})
        stats = {"pages": 5, "errors": [{"code": "timeout"}]}
        done = store.update_crawl_run(session, run.id, stats=stats, status="done")
        assert done is not None and done.status == "done" and done.finished_at is not None
        assert done.stats == {"pages": 5, "errors": [{"code": "timeout"}]}
        assert store.list_crawl_runs(session, case_id) == [done]
        assert store.get_crawl_run(session, run.id + 1) is None
        with pytest.raises(store.InvalidInput):
            store.start_crawl_run(session, case_id + 1)


def test_case_names(sessions: sessionmaker[Session]) -> None:
    case_id = _case(sessions)
    with sessions.begin() as session:
        name = store.add_case_name(session, case_id, "  Mia Khalifa ")
        alias = store.add_case_name(session, case_id, "mia_k", "username")
        assert store.add_case_name(session, case_id, "Mia Khalifa") == name
        assert (name.value, name.kind, alias.kind) == ("Mia Khalifa", "name", "username")
        # The same text as another kind is a separate entry.
        store.add_case_name(session, case_id, "mia_k", "alias")
    with sessions.begin() as session:
        assert [(n.value, n.kind) for n in store.list_case_names(session, case_id)] == [
            ("Mia Khalifa", "name"),
            ("mia_k", "username"),
            ("mia_k", "alias"),
        ]
        assert store.remove_case_name(session, case_id, alias.id)
        assert not store.remove_case_name(session, case_id, alias.id)
        for value, kind in [("", "name"), ("x", "nickname"), ("a\x00", "name"), ("y" * 201, "name")]:
            with pytest.raises(store.InvalidInput):
                store.add_case_name(session, case_id, value, kind)
        with pytest.raises(store.InvalidInput):
            store.add_case_name(session, case_id + 1, "x")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTPS://Example.com:443/", "https://example.com"),
        ("https://example.com./x#y", "https://example.com/x"),
        ("https://user:pw@example.com/x", "https://example.com/x"),
        ("https://b\u00fccher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://example.com/?b=1&a=2", "https://example.com/?a=2&b=1"),
        ("Example.COM", "example.com"),
    ],
)
def test_url_key_equivalences(a: str, b: str) -> None:
    assert store.url_key(a) == store.url_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.com/x", "http://example.com/x"),
        ("https://example.com:8443/x", "https://example.com/x"),
        ("https://example.com/X", "https://example.com/x"),
        ("https://example.com/x?a=1", "https://example.com/x?a=2"),
    ],
)
def test_url_key_distinctions(a: str, b: str) -> None:
    assert store.url_key(a) != store.url_key(b)


@given(st.text(max_size=300))
def test_url_key_is_idempotent_and_total(text: str) -> None:
    key = store.url_key(text)
    assert store.url_key(key) == key
