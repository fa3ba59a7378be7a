"""The notices API on SQLite and PostgreSQL: draft (incomplete → 422 naming the elements), list, show, send over a
real SMTP server (202 queued when it is down), state changes, escalation, evidence verify and dossier export."""

from __future__ import annotations

import io
import socket
from typing import Any

import pypdf
import pytest

from takeback import store
from tests.discover.webserver import Reply, WebServer
from tests.smtp import SmtpServer
from tests.takedown.loopback import patch_network
from tests.takedown.rdap_server import rdap_server
from tests.web.conftest import Api, Server, error_code

SENDER = {"name": "Jane Doe", "email": "jane@example.org"}
TIDA = {"signature": "/s/ Jane Doe", "sender": SENDER, "good_faith_not_consensual": True}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _seed(server: Server) -> dict[str, Any]:
    with server.state.store.sessions.begin() as session:
        case = store.create_case(session, "jane")
        f1, _ = store.record_finding(session, case.id, "https://bad.example/1.jpg", "media",
                                     evidence={"sha256": "a" * 64})
        f2, _ = store.record_finding(session, case.id, "https://bad.example/2.jpg", "media", evidence={})
        host = store.upsert_party(session, "host", "host:rdap:NET-X", "Shady Hosting", email="abuse@shady.example",
                                  source="rdap")
        registrar = store.upsert_party(session, "registrar", "registrar:iana:1", "Registrar",
                                       email="abuse@registrar.example", source="rdap")
        for finding in (f1, f2):
            store.link_finding_party(session, finding.id, host.id, "host")
            store.link_finding_party(session, finding.id, registrar.id, "registrar")
    return {"case": case.id, "findings": [f1.id, f2.id], "host": host.id, "registrar": registrar.id}


def test_notice_flow_over_the_api(start: Any, smtp_server: SmtpServer) -> None:
    server = start(**smtp_server.settings())
    api: Api = server.client(["manage"], name="advocate")
    ids = _seed(server)

    bases = api.get("/v1/notices/bases").json()
    assert [b["basis"] for b in bases["bases"]] == ["dmca", "takeitdown", "gdpr", "dsa", "delisting", "abuse"]
    assert "legal advice" in bases["disclaimer"]

    incomplete = api.post("/v1/notices", json={"finding_ids": ids["findings"], "basis": "takeitdown",
                                                "details": {"sender": SENDER}, "party_id": ids["host"]})
    assert incomplete.status_code == 422 and error_code(incomplete) == "incomplete_notice"
    assert {d["field"] for d in incomplete.json()["error"]["detail"]} == {"signature", "good_faith_not_consensual"}
    bad_email = api.post("/v1/notices", json={"finding_ids": ids["findings"], "basis": "takeitdown",
                                               "details": {**TIDA, "sender": {"name": "J", "email": "nope"}}})
    assert bad_email.status_code == 422 and error_code(bad_email) == "invalid_notice"
    unknown = api.post("/v1/notices", json={"finding_ids": [999999], "basis": "dsa", "details": {}})
    assert unknown.status_code == 404 and error_code(unknown) == "unknown_finding"

    created = api.post("/v1/notices", json={"finding_ids": ids["findings"], "basis": "takeitdown", "details": TIDA,
                                             "party_id": ids["host"]})
    assert created.status_code == 201, created.text
    notice = created.json()
    assert notice["state"] == "drafted" and notice["recipient"] == "abuse@shady.example"
    assert [u["url"] for u in notice["urls"]] == ["https://bad.example/1.jpg", "https://bad.example/2.jpg"]
    assert "a" * 64 in notice["body"]

    listed = api.get("/v1/notices", params={"case_id": ids["case"]}).json()
    assert [n["id"] for n in listed["notices"]] == [notice["id"]] and listed["next_after_id"] is None

    sent = api.post(f"/v1/notices/{notice['id']}/send")
    assert sent.status_code == 200 and sent.json()["state"] == "sent" and sent.json()["due_at"]
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["abuse@shady.example"]
    again = api.post(f"/v1/notices/{notice['id']}/send")
    assert again.status_code == 409 and error_code(again) == "invalid_transition"

    expired = api.post(f"/v1/notices/{notice['id']}/state", json={"state": "expired"})
    assert expired.status_code == 200 and expired.json()["state"] == "expired"
    proposal = api.get(f"/v1/notices/{notice['id']}/proposal").json()
    assert proposal["party"]["id"] == ids["registrar"] and proposal["basis"] == "abuse"
    escalated = api.post(f"/v1/notices/{notice['id']}/escalate", json={
        "party_id": ids["registrar"], "basis": "abuse",
        "details": {"explanation": "Hosts intimate images of me", "good_faith": True}})
    assert escalated.status_code == 201 and escalated.json()["parent_id"] == notice["id"]
    shown = api.get(f"/v1/notices/{notice['id']}").json()
    assert shown["state"] == "escalated"
    assert [e["kind"] for e in shown["events"]] == ["drafted", "sent", "expired", "escalated"]

    check = api.get(f"/v1/cases/{ids['case']}/evidence/verify").json()
    assert check["ok"] and check["entries"] >= 4
    dossier = api.get(f"/v1/cases/{ids['case']}/evidence").json()
    assert dossier["evidence"]["verified"] and len(dossier["notices"]) == 2 and dossier["stats"]["findings"] == 2
    page = api.get(f"/v1/cases/{ids['case']}/evidence", params={"format": "html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "The log verifies" in page.text
    pdf = api.get(f"/v1/cases/{ids['case']}/evidence", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert "TAKEDOWN DOSSIER" in pypdf.PdfReader(io.BytesIO(pdf.content), strict=True).pages[0].extract_text()
    wrong_head = api.get(f"/v1/cases/{ids['case']}/evidence/verify", params={"head": "0" * 64}).json()
    assert not wrong_head["ok"]


def test_smtp_down_queues_with_202(start: Any) -> None:
    server = start(smtp_host="127.0.0.1", smtp_port=_closed_port(), smtp_timeout_s=2)
    api = server.client(["manage"], name="advocate")
    ids = _seed(server)
    created = api.post("/v1/notices", json={"finding_ids": ids["findings"][:1], "basis": "takeitdown",
                                             "details": TIDA, "recipient": "abuse@host.example"}).json()
    response = api.post(f"/v1/notices/{created['id']}/send")
    assert response.status_code == 202 and response.json()["state"] == "queued"
    assert response.json()["last_error"] and response.json()["attempts"] == 1


def test_refusals(start: Any) -> None:
    server = start()
    ids = _seed(server)
    assert error_code(server.anonymous().get("/v1/notices/bases")) == "missing_key"
    matcher = server.client(["match"], name="platform")
    assert error_code(matcher.get("/v1/notices/bases")) == "forbidden_scope"
    api = server.client(["manage"], name="advocate")
    assert error_code(api.get("/v1/notices/424242")) == "unknown_notice"
    assert error_code(api.get("/v1/notices", params={"case_id": 4242})) == "unknown_case"
    assert api.post("/v1/notices", json={"finding_ids": [], "basis": "dsa"}).status_code == 422
    assert api.post("/v1/notices", json={"finding_ids": [ids["findings"][0]], "basis": "magic"}).status_code == 422
    created = api.post("/v1/notices", json={"finding_ids": ids["findings"][:1], "basis": "dsa", "details": {
        "sender": SENDER, "explanation": "NCII", "bona_fide": True}}).json()
    not_sendable = api.post(f"/v1/notices/{created['id']}/send")  # no recipient, no web form
    assert not_sendable.status_code == 409 and error_code(not_sendable) == "not_sendable"
    bad_state = api.post(f"/v1/notices/{created['id']}/state", json={"state": "removed"})
    assert bad_state.status_code == 409 and error_code(bad_state) == "invalid_transition"
    assert api.post(f"/v1/notices/{created['id']}/escalate", json={"party_id": ids["host"]}).status_code == 409
    assert error_code(api.post(f"/v1/notices/{created['id']}/escalate", json={"party_id": 999})) == "unknown_party"


def test_parties_recheck_and_status_over_the_api(start: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = start()
    api = server.client(["manage"], name="advocate")
    with WebServer({"/p/1": Reply(body=b'<a href="/legal/dmca">DMCA</a>'),
                    "/img/1.jpg": Reply(body=b"\xff\xd8fake", content_type="image/jpeg")}) as site, \
            rdap_server() as rdap:
        patch_network(monkeypatch, rdap.url("/bootstrap/"))
        with server.state.store.sessions.begin() as session:
            case = store.create_case(session, "jane")
            finding, _ = store.record_finding(
                session, case.id, f"http://www.bad-site.com:{site.port}/img/1.jpg", "media",
                evidence={"page": {"url": f"http://www.bad-site.com:{site.port}/p/1"}})
        assert api.get(f"/v1/findings/{finding.id}/parties").json()["parties"] == []
        resolved = api.post(f"/v1/findings/{finding.id}/parties", json={"basis": "takeitdown"})
        assert resolved.status_code == 200, resolved.text
        body = resolved.json()
        by_kind = {p["kind"]: p for p in body["parties"]}
        assert by_kind["site"]["web_form"] == f"http://www.bad-site.com:{site.port}/legal/dmca"
        assert by_kind["site"]["source"] == "page" and by_kind["upstream"]["email"] == "abuse@upstream-transit.example"
        assert {s["step"] for s in body["steps"]} >= {"page-contact", "rdap-ip", "rdap-ip-parent", "rdap-domain"}
        stored = api.get(f"/v1/findings/{finding.id}/parties").json()["parties"]
        assert {p["kind"] for p in stored} >= {"site", "host", "upstream", "registrar"}
        assert stored[0]["resolution"]  # the path is kept with the party
        assert error_code(api.post("/v1/findings/999999/parties")) == "unknown_finding"
        assert error_code(api.get("/v1/findings/999999/parties")) == "unknown_finding"

        host = by_kind["host"]["id"]
        notice = api.post("/v1/notices", json={"finding_ids": [finding.id], "basis": "takeitdown", "details": TIDA,
                                               "party_id": host}).json()
        assert api.post(f"/v1/notices/{notice['id']}/state", json={"state": "sent"}).status_code == 200
        checked = api.post(f"/v1/notices/{notice['id']}/recheck")
        assert checked.status_code == 200, checked.text
        assert [(c["outcome"], c["status"]) for c in checked.json()["checks"]] == [("present", 200)]
        status = api.get(f"/v1/notices/{notice['id']}/status").json()
        assert status["state"] == "sent" and status["urls"][0]["status"] == "present"
        assert 0 < status["seconds_left"] <= 48 * 3600 and not status["overdue"]
        site.routes["/img/1.jpg"] = Reply(status=404, body=b"gone")
        gone = api.post(f"/v1/notices/{notice['id']}/recheck").json()
        assert gone["removed"] and gone["notice"]["state"] == "removed" and gone["follow_up_id"] is None
        site.routes["/img/1.jpg"] = Reply(body=b"\xff\xd8again", content_type="image/jpeg")
        back = api.post(f"/v1/notices/{notice['id']}/recheck").json()
        assert back["follow_up_id"] and api.get(f"/v1/notices/{back['follow_up_id']}").json()["state"] == "drafted"
        assert error_code(api.post("/v1/notices/424242/recheck")) == "unknown_notice"
        assert error_code(api.get("/v1/notices/424242/status")) == "unknown_notice"
        platform = server.client(["match"], name="platform")
        assert error_code(platform.post(f"/v1/findings/{finding.id}/parties")) == "forbidden_scope"


def test_inbound_takeitdown_requests(server: Server) -> None:
    from tests.web.conftest import PDQ_A, flip

    public = server.anonymous()
    incomplete = public.post("/v1/takeitdown/requests", json={"materials": [{"url": "https://site.example/v/1"}]})
    assert incomplete.status_code == 422 and error_code(incomplete) == "incomplete_notice"
    assert {d["field"] for d in incomplete.json()["error"]["detail"]} == {
        "signature", "good_faith_not_consensual", "sender.name", "sender.email"}
    bad_hash = public.post("/v1/takeitdown/requests", json={**_request(), "signals": [
        {"signal_type": "pdq", "value": "xyz"}]})
    assert bad_hash.status_code == 422 and error_code(bad_hash) == "invalid_notice"

    filed = public.post("/v1/takeitdown/requests", json=_request())
    assert filed.status_code == 201, filed.text
    receipt = filed.json()
    assert receipt["status"] == "received" and receipt["request"] is None and receipt["id"] is None
    assert 47 * 3600 < receipt["seconds_left"] <= 48 * 3600 and receipt["signals"] == 1
    status = public.get(f"/v1/takeitdown/requests/{receipt['reference']}").json()
    assert status["status"] == "received" and status["due_at"] == receipt["due_at"]
    assert error_code(public.get("/v1/takeitdown/requests/TID-nope")) == "unknown_request"
    assert error_code(public.get("/v1/takeitdown/requests")) == "missing_key"

    moderator = server.client(["manage", "match"], name="moderator")
    [pending] = moderator.get("/v1/takeitdown/requests").json()["requests"]
    assert pending["reference"] == receipt["reference"] and pending["request"]["sender"]["name"] == "Jane Doe"
    accepted = moderator.post(f"/v1/takeitdown/requests/{pending['id']}/decision", json={"accept": True})
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert accepted.json()["signals_added"] == 1
    again = moderator.post(f"/v1/takeitdown/requests/{pending['id']}/decision", json={"accept": False})
    assert again.status_code == 409
    # the platform's uploads are now caught, near-identical copies included
    hits = moderator.post("/v1/match", json={"signal_type": "pdq", "value": flip(PDQ_A, 5)}).json()["matches"]
    assert [h["bank"] for h in hits] == ["takeitdown"]
    assert public.get(f"/v1/takeitdown/requests/{receipt['reference']}").json()["status"] == "accepted"


def _request() -> dict[str, Any]:
    from tests.web.conftest import PDQ_A

    return {
        "materials": [{"url": "https://site.example/v/1"}], "sender": SENDER, "signature": "/s/ Jane Doe",
        "good_faith_not_consensual": True, "signals": [{"signal_type": "pdq", "value": PDQ_A.upper()}],
    }


def test_an_accept_that_loses_the_race_takes_its_hashes_back(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two moderators at once: the other's rejection is recorded between this accept banking the hashes and
    recording its decision.  The accept is refused (409) and the hashes it banked are removed again, so a rejected
    request never leaves its hashes matching."""
    from takeback.store.models import utcnow
    from tests.web.conftest import PDQ_A

    public = server.anonymous()
    filed = public.post("/v1/takeitdown/requests", json=_request())
    assert filed.status_code == 201, filed.text
    moderator = server.client(["manage", "match"], name="moderator")
    [pending] = moderator.get("/v1/takeitdown/requests").json()["requests"]
    from takeback.web import uploads_sweep

    real_sweep = uploads_sweep.sweep_uploads

    def rejected_meanwhile(*args: Any, **kwargs: Any) -> Any:  # runs after the hashes are banked
        with server.state.store.sessions.begin() as other:
            store.decide_intake(other, pending["id"], "rejected", at=utcnow(), note="the other moderator")
        return real_sweep(*args, **kwargs)

    monkeypatch.setattr(uploads_sweep, "sweep_uploads", rejected_meanwhile)
    lost = moderator.post(f"/v1/takeitdown/requests/{pending['id']}/decision", json={"accept": True})
    assert lost.status_code == 409, lost.text
    assert public.get(f"/v1/takeitdown/requests/{filed.json()['reference']}").json()["status"] == "rejected"
    hits = moderator.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"]
    assert hits == []
