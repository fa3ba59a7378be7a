"""Hostile text on every dashboard page that shows it: a crawled page's title and URL, a matched name variant, a
case name and alias, a party's name, a petition's title, a signer's name and comment, a party's reply to a notice,
a scan's failure reason.  Each is shown, escaped, and never as markup (asserted on the raw HTML)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from takeback import store
from tests.web.conftest import Server
from tests.web.dashboard_data import add_signature, make_flag, make_notice, make_petition
from tests.web.test_dashboard import csrf, make_user, new_case, sign_in

SCRIPT = "<script>alert(1)</script>"
BREAKOUT = '"><img src=x onerror=alert(2)>'
SINGLE = "'><svg onload=alert(3)>"
DAY = datetime(2026, 11, 2, 10, tzinfo=UTC)


def hostile(label: str) -> str:
    return f"{label} {SCRIPT}{BREAKOUT}{SINGLE}"


@pytest.fixture
def http(server: Server) -> TestClient:
    return server.http


def assert_escaped(html: str, *texts: str) -> None:
    for raw in (SCRIPT, BREAKOUT, SINGLE, "<img", "<svg onload", "onerror=alert(2)>"):
        assert raw not in html, raw
    for text in texts:
        assert str(escape(text)) in html, text


def test_hostile_text_is_shown_escaped_everywhere(server: Server, http: TestClient) -> None:
    make_user(server, "p@example.org")
    sign_in(http, "p@example.org")
    case_name = hostile("case")
    case_id = new_case(http, case_name)
    url = f"https://evil.example/{BREAKOUT}{SCRIPT}"
    title, variant, matched = hostile("title"), hostile("variant"), hostile("matched")
    party, alias, reason = hostile("party"), hostile("alias"), hostile("reason")
    with server.state.store.sessions() as session:
        store.add_case_name(session, case_id, alias[:200], "alias")
        finding, _ = store.record_finding(session, case_id, url, "name", seen_at=DAY, evidence={
            "http_status": 200, "final_url": url, "title": title, "server_ip": "203.0.113.9",
            "names": [{"name": "Jane Example", "name_kind": "name", "variant": variant, "matched": matched,
                       "where": "title", "score": 90, "match": "typo"}],
        })
        run = store.start_crawl_run(session, case_id, {"seeds": [url]})
        store.update_crawl_run(session, run.id, stats={"failure": reason}, status="failed")
        session.commit()
    removed = make_notice(server, case_id, finding.id, url, party=party, sent_at=DAY,
                          removed_at=DAY + timedelta(hours=3))
    with server.state.store.sessions() as session:  # still listed on the notices page: a second, open finding
        resolved = store.get_party_by_key(session, f"host:test:{party}")
        assert resolved is not None
        store.link_finding_party(session, finding.id, resolved.id, "host")
        other, _ = store.record_finding(session, case_id, url + "/2", "media", evidence={"title": title})
        session.commit()
    replied = make_notice(server, case_id, other.id, other.url, sent_at=DAY)
    reply = hostile("reply")
    page = http.get(f"/app/cases/{case_id}/notices/{replied}")
    marked = http.post(f"/app/cases/{case_id}/notices/{replied}/mark",
                       data={"state": "acknowledged", "note": reply, "csrf_token": csrf(page)}, follow_redirects=False)
    assert marked.status_code == 303

    petition_title, signer, comment = hostile("petition"), hostile("signer"), hostile("comment")
    petition = make_petition(server, case_id, "hostile", title=petition_title[:200])
    for i in range(3):
        add_signature(server, petition, f"s{i}@example.org", at=DAY + timedelta(minutes=i), name=signer[:200],
                      comment=comment, verify=True)
    make_flag(server, petition, DAY + timedelta(minutes=30))

    pages = {
        "/app/": [case_name],
        f"/app/cases/{case_id}": [case_name, url, alias[:200], party, petition_title[:200], reason],
        f"/app/cases/{case_id}/findings/{finding.id}": [case_name, url, title, variant, matched, party],
        f"/app/cases/{case_id}/findings/{other.id}": [url + "/2"],
        f"/app/cases/{case_id}/notices/": [case_name, url + "/2"],
        f"/app/cases/{case_id}/notices/{removed}": [url],
        f"/app/cases/{case_id}/notices/{replied}": [url + "/2", reply],
        f"/app/cases/{case_id}/petition": [case_name, petition_title[:200], signer[:200], comment],
        f"/app/cases/{case_id}/audit": [case_name],
    }
    for path, shown in pages.items():
        response = http.get(path)
        assert response.status_code == 200, path
        assert "content-security-policy" in response.headers
        assert_escaped(response.text, *shown)
        assert not re.search(r'(href|src|action|data)="[^"]*evil\.example', response.text), path  # never a target
    # The removal chart's bar label (SVG text) is escaped too, and cut to fit.
    chart = http.get(f"/app/cases/{case_id}").text.split('aria-labelledby="removal-t removal-d"')[1].split("</svg>")[0]
    assert "party &lt;script&gt;" in chart and "<script" not in chart
    # A draft about the taken-down finding is refused with its URL in the reason: escaped there too.
    notices = http.get(f"/app/cases/{case_id}/notices/")
    refused = http.post(f"/app/cases/{case_id}/notices/", data={
        "csrf_token": csrf(notices), "basis": "takeitdown", "finding": [str(finding.id), str(other.id)],
        "recipient": "abuse@other.example"})
    assert refused.status_code == 400 and "is taken down already" in refused.text
    assert_escaped(refused.text, url, url + "/2")
    assert not re.search(r'(href|src|action|data)="[^"]*evil\.example', refused.text)
