"""The case page's forms (names, scan), findings by stage and their evidence page, the petition page and the
overview charts, through the real app on SQLite and PostgreSQL.  The scan runs against a loopback test site,
reachable only through the scans router's test-only allowance (the SSRF guard stays on otherwise)."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from takeback import store
from takeback.discover.media_hash import hash_image_bytes
from takeback.petition.export import verify_summary
from takeback.store import petitions, reports
from takeback.web.api import scans
from tests.discover.crawl_site import BANKED, OTHERS, html, jpeg
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, WebServer
from tests.smtp import SmtpServer
from tests.web.conftest import Server
from tests.web.dashboard_data import add_signature, make_flag, make_notice, make_petition
from tests.web.test_dashboard import csrf, make_user, new_case, sign_in

DAY = datetime(2026, 11, 2, 10, tzinfo=UTC)


@pytest.fixture
def http(server: Server) -> TestClient:
    return server.http


@pytest.fixture
def owner(server: Server, http: TestClient) -> int:
    """A signed-in owner's new case (names "Jane Example" and "jane_x"); a stranger with a case of her own."""
    make_user(server, "owner@example.org")
    make_user(server, "stranger@example.org")
    sign_in(http, "stranger@example.org")
    new_case(http, "the stranger's own case")
    sign_in(http, "owner@example.org")
    return new_case(http, "Case of J.")


def _as_stranger(http: TestClient) -> str:
    sign_in(http, "stranger@example.org")
    return csrf(http.get("/app/"))


# --- names -------------------------------------------------------------------------------------------------------


def test_add_names_to_a_case(server: Server, http: TestClient, owner: int) -> None:
    page = http.get(f"/app/cases/{owner}")
    assert f'action="/app/cases/{owner}/names"' in page.text and 'id="name-kind"' in page.text
    token = csrf(page)
    added = http.post(f"/app/cases/{owner}/names", data={"value": "  jane   doe99 ", "kind": "username",
                                                         "csrf_token": token}, follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == f"/app/cases/{owner}"
    again = http.post(f"/app/cases/{owner}/names", data={"value": "jane doe99", "kind": "username",
                                                         "csrf_token": token}, follow_redirects=False)
    assert again.status_code == 303  # already there: harmless
    with server.state.store.sessions() as session:
        names = [(n.value, n.kind) for n in store.list_case_names(session, owner)]
        actions = [e.action for e in store.list_audit(session, case_id=owner)]
    assert names == [("Jane Example", "name"), ("jane_x", "name"), ("jane doe99", "username")]
    assert actions.count("case_name_added") == 2
    assert "jane doe99" in http.get(f"/app/cases/{owner}").text

    for bad in ({"value": "x", "kind": "nickname"}, {"value": "   ", "kind": "alias"}, {"value": "y" * 201}):
        refused = http.post(f"/app/cases/{owner}/names", data={**bad, "csrf_token": token})
        assert refused.status_code == 400 and 'role="alert"' in refused.text
    forged = http.post(f"/app/cases/{owner}/names", data={"value": "forged", "csrf_token": "not-it"})
    assert forged.status_code == 400
    token = _as_stranger(http)
    assert http.post(f"/app/cases/{owner}/names", data={"value": "x", "csrf_token": token}).status_code == 404
    with server.state.store.sessions() as session:
        assert len(store.list_case_names(session, owner)) == 3


# --- scan --------------------------------------------------------------------------------------------------------


def _site() -> WebServer:
    return WebServer({
        "/": html('<a href="/g">gallery</a><img src="/other.jpg">'),
        "/g": html('<img src="/copy.jpg"><a href="/jane-example-tape">x</a>'),
        "/jane-example-tape": html("<p>hi</p>", title="Hot"),
        "/copy.jpg": Reply(body=jpeg(BANKED, (300, 225), 60), content_type="image/jpeg"),
        "/other.jpg": Reply(body=jpeg(OTHERS[0]), content_type="image/jpeg"),
    })


def _bank(server: Server, case_id: int) -> None:
    banked = hash_image_bytes(jpeg(BANKED, (640, 480), 92)).frames[0]
    with server.state.store.sessions() as session:
        bank = store.create_bank(session, f"case-{case_id}", case_id=case_id)
        store.add_signals(session, bank.id, [("pdq", banked.pdq, banked.quality, None)])
        session.commit()


def _finish_scan(server: Server, case_id: int) -> store.CrawlRunInfo:
    with server.state.store.sessions() as session:
        [run] = store.list_crawl_runs(session, case_id, limit=1)
    for thread in threading.enumerate():
        if thread.name == f"scan-{run.id}":
            thread.join(timeout=60)
    with server.state.store.sessions() as session:
        done = store.get_crawl_run(session, run.id)
    assert done is not None and done.status != "running"
    return done


def test_scan_form_scans_the_loopback_site(server: Server, http: TestClient, owner: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scans, "ALLOW_NETWORKS", ALLOW_LOOPBACK)
    _bank(server, owner)
    page = http.get(f"/app/cases/{owner}")
    assert f'<form method="post" action="/app/cases/{owner}/scan"' in page.text
    assert '<textarea id="scan-seeds" name="seeds"' in page.text and ">Scan now</button>" in page.text
    assert "No scan yet." in page.text
    with _site() as site:
        seed = site.url("/")
        started = http.post(f"/app/cases/{owner}/scan", data={"seeds": seed + "\n\n", "csrf_token": csrf(page)},
                            follow_redirects=False)
        assert started.status_code == 303 and started.headers["location"] == f"/app/cases/{owner}"
        run = _finish_scan(server, owner)
        assert site.hits["/copy.jpg"] >= 1
        copy_url, name_url = site.url("/copy.jpg"), site.url("/jane-example-tape")
    assert run.status == "done" and run.options["seeds"] == [seed]
    assert run.stats["pages"] == 3 and run.stats["new_findings"] == 2
    shown = http.get(f"/app/cases/{owner}")
    assert 'data-state="done"' in shown.text and "3 pages looked at, 2 new findings" in shown.text
    assert copy_url in shown.text and name_url in shown.text
    assert seed in shown.text.split('id="scan-seeds"')[1].split("</textarea>")[0]  # the next scan's seeds
    with server.state.store.sessions() as session:
        assert "scan_started" in [e.action for e in store.list_audit(session, case_id=owner)]
        kinds = sorted(f.kind for f in store.list_findings(session, owner))
    assert kinds == ["media", "name"]


def test_scan_form_keeps_the_ssrf_guard(server: Server, http: TestClient, owner: int) -> None:
    """Without the tests' allowance, a scan of a loopback address reaches nothing: the guard refuses it."""
    page = http.get(f"/app/cases/{owner}")
    with _site() as site:
        started = http.post(f"/app/cases/{owner}/scan", data={"seeds": site.url("/"), "csrf_token": csrf(page)},
                            follow_redirects=False)
        assert started.status_code == 303
        run = _finish_scan(server, owner)
        assert sum(site.hits.values()) == 0
    assert run.stats["pages"] == 0 and run.stats["errors"] >= 1


def test_scan_form_refusals(server: Server, http: TestClient, owner: int) -> None:
    token = csrf(http.get(f"/app/cases/{owner}"))
    empty = http.post(f"/app/cases/{owner}/scan", data={"seeds": " \n", "csrf_token": token})
    assert empty.status_code == 400 and "at least one web address" in empty.text
    bad = http.post(f"/app/cases/{owner}/scan", data={"seeds": "ftp://x.test/", "csrf_token": token})
    assert bad.status_code == 400 and "could not start" in bad.text and "ftp://x.test/" in bad.text
    forged = http.post(f"/app/cases/{owner}/scan", data={"seeds": "https://x.test/", "csrf_token": "no"})
    assert forged.status_code == 400
    with server.state.store.sessions() as session:
        assert store.list_crawl_runs(session, owner) == []
        store.start_crawl_run(session, owner, {"seeds": ["https://x.test/"]})  # one running already
        session.commit()
    running = http.get(f"/app/cases/{owner}")
    assert 'data-state="running"' in running.text and "Scan running" in running.text
    twice = http.post(f"/app/cases/{owner}/scan", data={"seeds": "https://x.test/", "csrf_token": token})
    assert twice.status_code == 409 and "already running" in twice.text
    token = _as_stranger(http)
    assert http.post(f"/app/cases/{owner}/scan", data={"seeds": "https://x.test/", "csrf_token": token}
                     ).status_code == 404
    with server.state.store.sessions() as session:
        assert len(store.list_crawl_runs(session, owner)) == 1


def test_failed_scan_shows_its_reason(server: Server, http: TestClient, owner: int) -> None:
    with server.state.store.sessions() as session:
        run = store.start_crawl_run(session, owner, {"seeds": ["https://x.test/"]})
        store.update_crawl_run(session, run.id, stats={"pages": 4, "new_findings": 1, "failure": "TimeoutError: "},
                               status="failed")
        session.commit()
    page = http.get(f"/app/cases/{owner}")
    assert 'data-state="failed"' in page.text and "after 4 pages" in page.text and "TimeoutError" in page.text


# --- findings by stage -------------------------------------------------------------------------------------------


def _findings(server: Server, case_id: int) -> dict[str, int]:
    """One finding per stage (and a second way to each of removed and back): name → id."""
    ids: dict[str, int] = {}
    with server.state.store.sessions() as session:
        for name, kind in [("new", "media"), ("drafted", "name"), ("notified", "media"), ("rechecked", "media"),
                           ("reupload", "media"), ("by-notice", "media"), ("seen-after-notice", "name")]:
            finding, _ = store.record_finding(session, case_id, f"https://{name}.example/x", kind, evidence={},
                                              seen_at=DAY)
            ids[name] = finding.id
        store.record_check(session, ids["rechecked"], "removed", http_status=404, checked_at=DAY + timedelta(days=1))
        store.record_check(session, ids["reupload"], "removed", http_status=404, checked_at=DAY + timedelta(days=1))
        store.record_finding(session, case_id, "https://reupload.example/x", "media", evidence={},
                             seen_at=DAY + timedelta(days=2))
        session.commit()
    make_notice(server, case_id, ids["drafted"], "https://drafted.example/x")
    make_notice(server, case_id, ids["notified"], "https://notified.example/x", sent_at=DAY + timedelta(hours=1))
    for name in ("by-notice", "seen-after-notice"):
        make_notice(server, case_id, ids[name], f"https://{name}.example/x", party="Hosting Ltd",
                    sent_at=DAY + timedelta(hours=1), removed_at=DAY + timedelta(hours=7))
    with server.state.store.sessions() as session:
        store.record_check(session, ids["seen-after-notice"], "seen", http_status=200,
                           checked_at=DAY + timedelta(days=3))
        session.commit()
    return ids


def test_findings_filtered_by_stage_and_kind(server: Server, http: TestClient, owner: int) -> None:
    ids = _findings(server, owner)
    with server.state.store.sessions() as session:
        stages = reports.finding_stages(session, owner)
        timeline = reports.findings_timeline(session, owner)
    assert {name: stages[i] for name, i in ids.items()} == {
        "new": "new", "drafted": "new", "notified": "notified", "rechecked": "removed", "reupload": "back",
        "by-notice": "removed", "seen-after-notice": "back",
    }
    # The chart replays the same rule: the last day's "taken down" equals the removed stage.
    assert [(p.day.isoformat(), p.found, p.removed) for p in timeline] == [
        ("2026-11-02", 7, 2), ("2026-11-03", 7, 4), ("2026-11-04", 7, 3), ("2026-11-05", 7, 2),
    ]

    def listed(**params: str) -> set[str]:
        text = http.get(f"/app/cases/{owner}", params=params).text.split('id="findings"')[1]
        return set(re.findall(r"https://([a-z-]+)\.example/x", text))

    assert listed(status="new") == {"new", "drafted"}
    assert listed(status="notified") == {"notified"}
    assert listed(status="removed") == {"rechecked", "by-notice"}
    assert listed(status="back") == {"reupload", "seen-after-notice"}
    assert listed(status="open") == {"new", "drafted", "notified", "reupload", "seen-after-notice"}
    assert listed(status="back", kind="name") == {"seen-after-notice"}
    assert listed(status="nonsense") == set()
    assert len(listed()) == 7
    page = http.get(f"/app/cases/{owner}")
    assert "<dt>back again</dt><dd>2</dd>" in page.text and "<dt>removed</dt><dd>2</dd>" in page.text
    assert '<a href="https://' not in page.text


def test_finding_page_shows_the_evidence_as_text(server: Server, http: TestClient, owner: int) -> None:
    evidence = {
        "http_status": 200, "final_url": "https://cdn.example/final.jpg", "server_ip": "203.0.113.7",
        "content_type": "image/jpeg", "redirects": ["https://short.example/r"], "found_via": "img",
        "page": {"url": "https://tube.example/page", "title": "Some page", "html_sha256": "c" * 64},
        "media": {"kind": "image", "size": 1234, "md5": "a" * 32, "sha256": "b" * 64, "width": 300, "height": 225,
                  "format": "JPEG", "pdq": [{"hash": "f" * 64, "quality": 88, "t": None}]},
        "matches": [{"bank": f"case-{owner}", "signal_type": "pdq", "distance": 6, "signal_id": 1, "bank_id": 1}],
    }
    with server.state.store.sessions() as session:
        finding, _ = store.record_finding(session, owner, "https://tube.example/copy.jpg", "media", evidence=evidence,
                                          seen_at=DAY)
        store.record_check(session, finding.id, "fetch_error", details={"error": {"code": "timeout",
                                                                                  "message": "took too long"}},
                           checked_at=DAY + timedelta(days=1))
        hit = {"name": "Jane Example", "name_kind": "name", "variant": "jane example", "matched": "Jane-Example",
               "where": "path", "score": 97, "match": "separator"}
        name_hit, _ = store.record_finding(session, owner, "https://names.example/jane", "name", seen_at=DAY,
                                           evidence={"title": "Jane Example tape", "html_sha256": "d" * 64,
                                                     "http_status": 200, "names": [hit]})
        session.commit()
    notice_id = make_notice(server, owner, finding.id, "https://tube.example/copy.jpg", sent_at=DAY)
    page = http.get(f"/app/cases/{owner}/findings/{finding.id}")
    assert page.status_code == 200
    for fact in ("https://tube.example/copy.jpg", "https://cdn.example/final.jpg", "203.0.113.7", "image/jpeg",
                 "https://short.example/r", "Some page", "c" * 64, "a" * 32, "b" * 64, "f" * 64, "1234 bytes",
                 "2026-11-02 10:00:00", "2026-11-03 10:00:00", "fetch_error", "timeout took too long", "found",
                 f"/app/cases/{owner}/notices/{notice_id}", "TB-", "notified"):
        assert fact in page.text, fact
    assert re.search(r"<td>pdq</td><td>6</td>", page.text)
    assert not re.search(r"<(a|img|iframe|video|source|object|embed)\b[^>]*(tube|cdn|short)\.example", page.text)
    named = http.get(f"/app/cases/{owner}/findings/{name_hit.id}")
    for fact in ("Jane Example tape", "Jane-Example", "jane example", "separator", "d" * 64):
        assert fact in named.text, fact

    assert http.get(f"/app/cases/{owner}/findings/999999").status_code == 404
    _as_stranger(http)
    assert http.get(f"/app/cases/{owner}/findings/{finding.id}").status_code == 404


# --- petition ----------------------------------------------------------------------------------------------------


def _petition(server: Server, case_id: int) -> tuple[int, int]:
    petition_id = make_petition(server, case_id, "jane-petition", goal=8)
    for i, country in enumerate(["FR", "FR", "DE"]):
        add_signature(server, petition_id, f"early{i}@example.org", at=DAY + timedelta(hours=i), country=country,
                      network=f"192.0.2.{i}/32", verify=True, comment="I stand with her" if i == 0 else None)
    burst_at = DAY + timedelta(days=1, minutes=5)
    for i in range(4):
        add_signature(server, petition_id, f"burst{i}@bots.example", at=burst_at + timedelta(minutes=i),
                      name=f"Bot {i}", country="US", verify=i < 2)
    return petition_id, make_flag(server, petition_id, burst_at + timedelta(minutes=10))


def test_petition_page_counts_chart_countries_flags(server: Server, http: TestClient, owner: int) -> None:
    petition_id, flag_id = _petition(server, owner)
    page = http.get(f"/app/cases/{owner}/petition")
    assert page.status_code == 200
    assert 'id="count-verified">5<' in page.text and 'id="count-pending">2<' in page.text
    assert '<progress id="goal-progress" max="8" value="5">' in page.text and "62% of the goal" in page.text
    assert "<svg" in page.text and "<td>2026-11-02</td><td>3</td><td>0</td>" in page.text
    assert "<td>2026-11-03</td><td>5</td><td>2</td>" in page.text
    assert "France" in page.text and "Germany" in page.text and "I stand with her" in page.text
    assert "4 signatures from one network" in page.text and "Bot 3" in page.text and "b…@bots.example" in page.text
    assert "burst0@bots.example" not in page.text  # addresses masked
    assert f"/app/cases/{owner}/petition/flags/{flag_id}" in page.text
    # The case overview shows the signatures chart too.
    assert "Petition signatures over time" in http.get(f"/app/cases/{owner}").text

    token = csrf(page)
    no_reason = http.post(f"/app/cases/{owner}/petition/flags/{flag_id}", data={"action": "remove", "note": " ",
                                                                                "csrf_token": token})
    assert no_reason.status_code == 400 and "Say why" in no_reason.text
    assert http.post(f"/app/cases/{owner}/petition/flags/{flag_id}", data={"action": "remove", "note": "bots",
                                                                           "csrf_token": "x"}).status_code == 400
    removed = http.post(f"/app/cases/{owner}/petition/flags/{flag_id}",
                        data={"action": "remove", "note": "one sender, numbered addresses", "csrf_token": token},
                        follow_redirects=False)
    assert removed.status_code == 303 and removed.headers["location"].endswith("?p=jane-petition")
    with server.state.store.sessions() as session:
        log = petitions.list_removals(session, petition_id)
        counts = petitions.get_counts(session, petition_id)
        audit = [(e.action, e.detail) for e in store.list_audit(session, case_id=owner)]
    assert len(log) == 4 and {r.actor for r in log} == {"owner@example.org"} and log[0].flag_id == flag_id
    assert "one sender, numbered addresses" in log[0].reason
    assert (counts.verified, counts.pending) == (3, 0)
    assert any(action == "petition_signatures_removed" for action, _ in audit)
    after = http.get(f"/app/cases/{owner}/petition")
    assert 'id="count-verified">3<' in after.text and "one sender, numbered addresses" in after.text
    assert f"/app/cases/{owner}/petition/flags/{flag_id}" not in after.text  # decided

    _as_stranger(http)
    assert http.get(f"/app/cases/{owner}/petition").status_code == 404
    assert http.get(f"/app/cases/{owner}/petition/export.csv").status_code == 404


def test_petition_flag_dismissed_keeps_the_signatures(server: Server, http: TestClient, owner: int) -> None:
    petition_id, flag_id = _petition(server, owner)
    token = csrf(http.get(f"/app/cases/{owner}/petition"))
    kept = http.post(f"/app/cases/{owner}/petition/flags/{flag_id}", data={"action": "dismiss", "csrf_token": token},
                     follow_redirects=False)
    assert kept.status_code == 303
    with server.state.store.sessions() as session:
        assert petitions.get_flag(session, petition_id, flag_id).status == "dismissed"  # type: ignore[union-attr]
        assert petitions.get_counts(session, petition_id).verified == 5
    assert http.post(f"/app/cases/{owner}/petition/flags/999999", data={"action": "dismiss", "csrf_token": token}
                     ).status_code == 404


def test_petition_export_is_the_signed_csv(server: Server, http: TestClient, owner: int) -> None:
    _petition(server, owner)
    add_signature(server, make_petition(server, owner, "second"), "x@example.org", at=DAY, verify=True)
    exported = http.get(f"/app/cases/{owner}/petition/export.csv", params={"p": "jane-petition"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert 'filename="jane-petition-signatures.csv"' in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["name", "country"] and len(rows) == 1 + 5
    summary = http.get(f"/app/cases/{owner}/petition/export-summary.json", params={"p": "jane-petition"})
    assert summary.status_code == 200
    body = json.loads(summary.text)
    assert body["verified_signatures"] == 5 and verify_summary(body, exported.content)
    assert exported.headers["x-export-sha256"] == body["export_sha256"]
    assert http.get(f"/app/cases/{owner}/petition", params={"p": "no-such"}).status_code == 404
    assert http.get(f"/app/cases/{owner}/petition").status_code == 200  # the newest ("second") by default
    with server.state.store.sessions() as session:
        assert "petition_exported" in [e.action for e in store.list_audit(session, case_id=owner)]


def test_petition_created_from_the_dashboard(server: Server, http: TestClient, owner: int) -> None:
    page = http.get(f"/app/cases/{owner}/petition")
    assert page.status_code == 200 and "no petition yet" in page.text
    form = {"title": "Remove it", "target": "Tube Inc.", "goal": "100", "slug": "remove-it", "text": "Please.",
            "csrf_token": csrf(page)}
    assert http.post(f"/app/cases/{owner}/petition", data={**form, "goal": "many"}).status_code == 400
    assert http.post(f"/app/cases/{owner}/petition", data={**form, "slug": "Not OK"}).status_code == 400
    made = http.post(f"/app/cases/{owner}/petition", data=form, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == f"/app/cases/{owner}/petition?p=remove-it"
    assert http.post(f"/app/cases/{owner}/petition", data=form).status_code == 409
    shown = http.get(made.headers["location"])
    assert "“Remove it”" in shown.text and "/p/remove-it" in shown.text and 'id="count-verified">0<' in shown.text


# --- overview charts ---------------------------------------------------------------------------------------------


def test_overview_charts_removal_time_notices_and_signatures(server: Server, http: TestClient, owner: int) -> None:
    with server.state.store.sessions() as session:
        found = [store.record_finding(session, owner, f"https://h{i}.example/x", "media", evidence={}, seen_at=DAY)[0]
                 for i in range(4)]
        session.commit()
    make_notice(server, owner, found[0].id, found[0].url, party="Fast Host", sent_at=DAY,
                removed_at=DAY + timedelta(hours=2))
    make_notice(server, owner, found[1].id, found[1].url, party="Slow Host", sent_at=DAY,
                removed_at=DAY + timedelta(hours=10))
    make_notice(server, owner, found[2].id, found[2].url, party="Slow Host", sent_at=DAY,
                removed_at=DAY + timedelta(hours=30))
    make_notice(server, owner, found[3].id, found[3].url, sent_at=DAY)
    petition_id = make_petition(server, owner, "chart-petition")
    add_signature(server, petition_id, "a@example.org", at=DAY, verify=True)
    add_signature(server, petition_id, "b@example.org", at=DAY + timedelta(days=2))
    with server.state.store.sessions() as session:
        times = reports.removal_times(session, owner)
        states = reports.notices_by_state(session, owner)
        signed = reports.signatures_timeline(session, petition_id)
    assert [(t.party, t.removed, t.median_hours) for t in times] == [("Slow Host", 2, 20.0), ("Fast Host", 1, 2.0)]
    assert states == [("sent", 1), ("removed", 3)]
    assert [(d.day.isoformat(), d.verified, d.pending) for d in signed] == [("2026-11-02", 1, 0), ("2026-11-04", 1, 1)]
    page = http.get(f"/app/cases/{owner}").text
    for title in ("Findings found and taken down", "Median time to removal per party", "Notices by state",
                  "Petition signatures over time"):
        assert f">{title}</title>" in page, title
    assert "<td>Slow Host</td><td>2</td><td>20.0</td>" in page and "<td>removed</td><td>3</td>" in page
    assert "<td>2026-11-04</td><td>1</td><td>1</td>" in page
    assert len(set(re.findall(r'<title id="([^"]+)"', page))) == 4  # each chart labels itself


# --- the case page follows a running scan ------------------------------------------------------------------------

REFRESH = '<meta http-equiv="refresh" content="3">'


def test_case_page_reloads_itself_while_a_scan_runs(server: Server, http: TestClient, owner: int) -> None:
    """A meta refresh (no script: the CSP allows none inline) only while the latest scan runs, only on the plain
    page (never on an answer to a form, which would vanish), and not when the person paused it."""
    idle = http.get(f"/app/cases/{owner}")
    assert REFRESH not in idle.text and 'id="scan-state"' not in idle.text
    with server.state.store.sessions() as session:
        run = store.start_crawl_run(session, owner, {"seeds": ["https://x.test/"]})
        session.commit()
    running = http.get(f"/app/cases/{owner}", params={"status": "open", "kind": "<media>"})
    assert running.text.count(REFRESH) == 1 and running.text.index(REFRESH) < running.text.index("</head>")
    assert '<p id="scan-state" role="status" data-state="running">' in running.text
    assert "updates itself every few seconds" in running.text
    assert f'href="/app/cases/{owner}?status=open&amp;paused=1">stop updating</a>' in running.text
    assert "<script" not in running.text
    csp = running.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp  # the refresh needs neither
    paused = http.get(f"/app/cases/{owner}", params={"paused": "1"})
    assert REFRESH not in paused.text and 'data-state="running"' in paused.text and "Reload this page" in paused.text
    token = csrf(running)
    refused = http.post(f"/app/cases/{owner}/scan", data={"seeds": "https://x.test/", "csrf_token": token})
    assert refused.status_code == 409 and REFRESH not in refused.text
    named = http.post(f"/app/cases/{owner}/names", data={"value": "x", "kind": "nickname", "csrf_token": token})
    assert named.status_code == 400 and REFRESH not in named.text
    with server.state.store.sessions() as session:
        store.update_crawl_run(session, run.id, stats={"pages": 2, "new_findings": 0}, status="done")
        session.commit()
    done = http.get(f"/app/cases/{owner}")
    assert REFRESH not in done.text and 'data-state="done"' in done.text


def test_a_scan_cut_off_by_a_restart_stops_the_reloading(server: Server, http: TestClient, owner: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from takeback.web.dashboard import overview

    with server.state.store.sessions() as session:
        store.start_crawl_run(session, owner, {"seeds": ["https://x.test/"]})
        session.commit()
    monkeypatch.setattr(overview, "SCAN_STALE_AFTER", timedelta(seconds=-1))
    page = http.get(f"/app/cases/{owner}")
    assert 'data-state="stopped"' in page.text and REFRESH not in page.text


# --- removing a name ---------------------------------------------------------------------------------------------


def test_remove_a_name_from_a_case(server: Server, http: TestClient, owner: int) -> None:
    make_user(server, "advocate@example.org")
    with server.state.store.sessions() as session:
        store.add_member(session, owner, store.get_user_by_email(session, "advocate@example.org").id, "advocate")
        names = {n.value: n.id for n in store.list_case_names(session, owner)}
        finding, _ = store.record_finding(session, owner, "https://names.example/jane_x", "name", evidence={})
        other_case = next(c.id for c in store.list_cases(session) if c.id != owner)
        theirs = store.add_case_name(session, other_case, "Someone Else", "alias").id
        session.commit()
    page = http.get(f"/app/cases/{owner}")
    action = f'action="/app/cases/{owner}/names/{names["jane_x"]}/remove"'
    assert action in page.text and "Remove<span class=\"visually-hidden\"> the name “jane_x”</span>" in page.text
    token = csrf(page)
    forged = http.post(f"/app/cases/{owner}/names/{names['jane_x']}/remove", data={"csrf_token": "not-it"})
    assert forged.status_code == 400
    gone = http.post(f"/app/cases/{owner}/names/{names['jane_x']}/remove", data={"csrf_token": token},
                     follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == f"/app/cases/{owner}"
    again = http.post(f"/app/cases/{owner}/names/{names['jane_x']}/remove", data={"csrf_token": token})
    assert again.status_code == 404 and "no longer" in again.text
    assert http.post(f"/app/cases/{owner}/names/{theirs}/remove", data={"csrf_token": token}).status_code == 404
    assert http.post(f"/app/cases/{owner}/names/99999999/remove", data={"csrf_token": token}).status_code == 404
    sign_in(http, "advocate@example.org")
    by_advocate = http.post(f"/app/cases/{owner}/names/{names['Jane Example']}/remove",
                            data={"csrf_token": csrf(http.get(f"/app/cases/{owner}"))}, follow_redirects=False)
    assert by_advocate.status_code == 303
    with server.state.store.sessions() as session:
        kept = store.add_case_name(session, owner, "kept", "alias").id
        session.commit()
    token = _as_stranger(http)
    assert http.post(f"/app/cases/{owner}/names/{kept}/remove", data={"csrf_token": token}).status_code == 404
    with server.state.store.sessions() as session:
        left = [n.value for n in store.list_case_names(session, owner)]
        audit = [(e.action, e.subject, e.user_email) for e in store.list_audit(session, case_id=owner)]
        assert store.get_finding(session, finding.id) is not None  # what was found stays
        theirs_left = [n.value for n in store.list_case_names(session, other_case)]
    assert theirs_left == ["Jane Example", "jane_x", "Someone Else"]
    assert left == ["kept"]
    removals = [(s, who) for action, s, who in audit if action == "case_name_removed"]
    assert sorted(removals) == sorted([(f"name:{names['jane_x']}", "owner@example.org"),
                                       (f"name:{names['Jane Example']}", "advocate@example.org")])


# --- what a notice may be about ----------------------------------------------------------------------------------

TAKE_IT_DOWN = {"basis": "takeitdown", "sender_name": "Jane Doe", "sender_email": "jane@example.org",
                "signature": "Jane Doe", "good_faith_not_consensual": "yes"}


def _draftable(page: str) -> dict[str, set[str]]:
    """The notices form's checkboxes: the to-do ones and the already notified ones, by the finding's host name."""
    form = page.split('id="draftable"')[1].split("</fieldset>")[0]
    to_do, _, notified = form.partition('id="notified-note"')
    return {"to_do": set(re.findall(r"https://([a-z-]+)\.example/x", to_do)),
            "notified": set(re.findall(r"https://([a-z-]+)\.example/x", notified))}


def test_notices_page_offers_what_the_stages_leave_to_do(server: Server, http: TestClient, owner: int) -> None:
    ids = _findings(server, owner)
    page = http.get(f"/app/cases/{owner}/notices/")
    assert _draftable(page.text) == {"to_do": {"new", "drafted", "reupload", "seen-after-notice"},
                                     "notified": {"notified"}}
    assert "sent to abuse@host.example" in page.text
    assert "2 taken down findings are not listed" in " ".join(page.text.split())
    token = csrf(page)

    def draft(*names: str, recipient: str = "") -> tuple[int, str]:
        data = {**TAKE_IT_DOWN, "csrf_token": token, "recipient": recipient, "finding": [str(ids[n]) for n in names]}
        answer = http.post(f"/app/cases/{owner}/notices/", data=data, follow_redirects=False)
        return answer.status_code, answer.text

    status, text = draft("new", "rechecked", recipient="abuse@other.example")
    assert status == 400 and "https://rechecked.example/x is taken down already" in text
    assert f'value="{ids["new"]}" checked' in text  # what she ticked stays ticked
    assert draft("by-notice", recipient="abuse@other.example")[0] == 400
    status, text = draft("notified")
    assert status == 400 and "Type that party" in text
    status, text = draft("notified", recipient="Abuse@Host.example")
    assert status == 400 and "already sent to Abuse@Host.example" in text
    with server.state.store.sessions() as session:
        assert len(store.list_notices(session, owner)) == 4  # nothing drafted so far
    # a follow-up to another party about a notified finding, and a re-upload's follow-up to the same party
    assert draft("notified", recipient="abuse@upstream.example")[0] == 303
    assert draft("reupload", "seen-after-notice", recipient="abuse@host.example")[0] == 303
    with server.state.store.sessions() as session:
        assert len(store.list_notices(session, owner)) == 6


def test_a_re_upload_goes_round_the_whole_cycle(start: Callable[..., Server], smtp_server: SmtpServer) -> None:
    """new → notified → removed → back again → notified → removed → back again, through the dashboard's own forms,
    the crawler seeing the re-upload, and a re-check: each step shows on the case page, the finding's page and the
    notices form."""
    server = start(**smtp_server.settings(smtp_from="notices@takeback.test"))
    http = server.http
    make_user(server, "p@example.org")
    sign_in(http, "p@example.org")
    case_id = new_case(http, "the cycle")
    url = "https://tube.example/v/1"
    with server.state.store.sessions() as session:
        finding, _ = store.record_finding(session, case_id, url, "media", evidence={})
        session.commit()

    def stage() -> str:
        with server.state.store.sessions() as session:
            mine = reports.finding_stages(session, case_id)[finding.id]
            [point] = reports.findings_timeline(session, case_id)[-1:]
        shown = http.get(f"/app/cases/{case_id}").text.split('id="findings"')[1]
        label = re.search(r'<span class="tag stage-(\w+)">', shown)
        assert label is not None and label.group(1) == mine
        evidence = http.get(f"/app/cases/{case_id}/findings/{finding.id}").text
        assert f'<span class="tag stage-{mine}">{reports.STAGE_LABELS[mine]}</span></h1>' in evidence
        assert point.removed == (mine == "removed")  # the chart agrees
        return mine

    def offered() -> str:
        form = http.get(f"/app/cases/{case_id}/notices/").text
        if url not in form:
            return "no"
        return "to others only" if 'id="notified-note"' in form else "yes"

    def notify_and_send() -> str:
        page = http.get(f"/app/cases/{case_id}/notices/")
        drafted = http.post(f"/app/cases/{case_id}/notices/", follow_redirects=False, data={
            **TAKE_IT_DOWN, "csrf_token": csrf(page), "finding": str(finding.id), "recipient": "abuse@tube.example"})
        assert drafted.status_code == 303, drafted.text
        assert stage() in ("new", "back")  # a draft tells nobody
        notice = drafted.headers["location"]
        sent = http.post(notice + "/send", data={"csrf_token": csrf(http.get(notice))})
        assert sent.status_code == 200 and "Sent." in sent.text
        return notice

    def crawler_sees_it() -> None:
        with server.state.store.sessions() as session:
            store.record_finding(session, case_id, url, "media", evidence={})
            session.commit()

    assert stage() == "new" and offered() == "yes"
    first = notify_and_send()
    assert stage() == "notified" and offered() == "to others only"
    marked = http.post(first + "/mark", data={"csrf_token": csrf(http.get(first)), "state": "removed"},
                       follow_redirects=False)
    assert marked.status_code == 303
    assert stage() == "removed" and offered() == "no"
    crawler_sees_it()  # the re-upload
    assert stage() == "back" and offered() == "yes"
    notify_and_send()  # the follow-up, to the same host
    assert stage() == "notified"
    crawler_sees_it()  # still up while the host has the follow-up: still notified, not back again
    assert stage() == "notified" and offered() == "to others only"
    with server.state.store.sessions() as session:
        store.record_check(session, finding.id, "removed", http_status=404)  # a re-check: gone again
        session.commit()
    assert stage() == "removed" and offered() == "no"
    crawler_sees_it()  # and back once more (a reopened finding this time)
    assert stage() == "back" and offered() == "yes"
    assert len(smtp_server.wait_for(2)) == 2
