"""Cases, scans, findings and re-checks through the API, with the real app and a loopback site (reachable through
the scans router's test-only allowance; the guard stays on for everything else)."""

from __future__ import annotations

import threading

import pytest

from takeback import store
from takeback.discover.media_hash import hash_image_bytes
from takeback.web.api import scans
from tests.discover.crawl_site import BANKED, OTHERS, html, jpeg
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, WebServer
from tests.web.conftest import Api, Server, error_code


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scans, "ALLOW_NETWORKS", ALLOW_LOOPBACK)


def _site() -> WebServer:
    return WebServer(
        {
            "/": html('<a href="/g">gallery</a><img src="/other.jpg">'),
            "/g": html('<img src="/copy.jpg"><a href="/jane-doe-tape">x</a>'),
            "/jane-doe-tape": html("<p>hi</p>", title="Hot"),
            "/copy.jpg": Reply(body=jpeg(BANKED, (300, 225), 60), content_type="image/jpeg"),
            "/other.jpg": Reply(body=jpeg(OTHERS[0]), content_type="image/jpeg"),
        }
    )


def _case_with_bank(server: Server, admin: Api) -> int:
    created = admin.post("/v1/cases", json={"name": "Case of J.", "names": [{"value": "Jane Doe"}]})
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    banked = hash_image_bytes(jpeg(BANKED, (640, 480), 92)).frames[0]
    with server.state.store.sessions.begin() as session:
        bank = store.create_bank(session, "jane", case_id=case_id)
        store.add_signals(session, bank.id, [("pdq", banked.pdq, banked.quality, None)])
    return case_id


@pytest.mark.usefixtures("loopback")
def test_case_scan_findings_recheck(server: Server, admin: Api) -> None:
    case_id = _case_with_bank(server, admin)
    added = admin.post(f"/v1/cases/{case_id}/names", json={"value": "jdoe", "kind": "username"})
    assert added.status_code == 201 and added.json()["kind"] == "username"
    case = admin.get(f"/v1/cases/{case_id}").json()
    assert [(n["value"], n["kind"]) for n in case["names"]] == [("Jane Doe", "name"), ("jdoe", "username")]

    with _site() as site:
        scan = admin.post(f"/v1/cases/{case_id}/scans", json={"seeds": [site.url("/")], "sitemaps": False})
        assert scan.status_code == 201, scan.text
        body = scan.json()
        assert body["status"] == "done" and body["stats"]["pages"] == 3 and body["stats"]["new_findings"] == 2
        assert admin.get(f"/v1/cases/{case_id}/scans/{body['id']}").json() == body
        assert [s["id"] for s in admin.get(f"/v1/cases/{case_id}/scans").json()["scans"]] == [body["id"]]

        page = admin.get(f"/v1/cases/{case_id}/findings").json()
        by_kind = {f["kind"]: f for f in page["findings"]}
        assert page["next_after_id"] is None
        assert by_kind["media"]["url"] == site.url("/copy.jpg") and by_kind["media"]["evidence"]["matches"]
        assert by_kind["name"]["url"] == site.url("/jane-doe-tape")
        assert by_kind["name"]["evidence"]["names"][0]["name"] == "Jane Doe"
        only_media = admin.get(f"/v1/cases/{case_id}/findings", params={"kind": "media", "limit": 1}).json()
        assert [f["id"] for f in only_media["findings"]] == [by_kind["media"]["id"]]
        assert only_media["next_after_id"] == by_kind["media"]["id"]

        site.routes["/copy.jpg"] = Reply(status=404, body=b"", content_type="text/plain")
        recheck = admin.post(f"/v1/cases/{case_id}/rechecks")
        assert recheck.status_code == 200 and recheck.json()["removed"] == 1 and recheck.json()["still_there"] == 1
        detail = admin.get(f"/v1/cases/{case_id}/findings/{by_kind['media']['id']}").json()
        assert detail["status"] == "removed" and [e["event"] for e in detail["events"]] == ["found", "removed"]
        assert admin.get(f"/v1/cases/{case_id}").json()["removed_findings"] == 1


@pytest.mark.usefixtures("loopback")
def test_background_scan(server: Server, admin: Api) -> None:
    case_id = _case_with_bank(server, admin)
    with _site() as site:
        started = admin.post(
            f"/v1/cases/{case_id}/scans", json={"seeds": [site.url("/")], "background": True, "sitemaps": False}
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        for thread in threading.enumerate():
            if thread.name == f"scan-{run_id}":
                thread.join(timeout=30)
        done = admin.get(f"/v1/cases/{case_id}/scans/{run_id}").json()
    assert done["status"] == "done" and done["stats"]["new_findings"] == 2 and done["finished_at"]
    # No seeds: the last scan's.
    with _site():
        again = admin.post(f"/v1/cases/{case_id}/scans", json={})
    assert again.status_code == 201 and again.json()["options"]["seeds"] == started.json()["options"]["seeds"]


def test_bad_requests(server: Server, admin: Api) -> None:
    case_id = _case_with_bank(server, admin)
    for body, code in [
        ({"seeds": ["ftp://x.test/"]}, "bad_scan"),
        ({"seeds": ["http://u:p@x.test/"]}, "bad_scan"),
        ({}, "bad_scan"),  # no seeds and no earlier scan
        ({"seeds": ["https://x.test/"], "max_pages": 0}, "validation_error"),
    ]:
        response = admin.post(f"/v1/cases/{case_id}/scans", json=body)
        assert response.status_code in (400, 422) and error_code(response) == code, response.text
    assert error_code(admin.post("/v1/cases/999/scans", json={"seeds": ["https://x.test/"]})) == "unknown_case"
    assert admin.get("/v1/cases/999").status_code == 404
    assert admin.get(f"/v1/cases/{case_id}/findings/12345").status_code == 404
    assert admin.get(f"/v1/cases/{case_id}/scans/12345").status_code == 404
    assert admin.post("/v1/cases", json={"name": ""}).status_code == 422
    bad_name = admin.post(f"/v1/cases/{case_id}/names", json={"value": "   "})
    assert bad_name.status_code == 400 and error_code(bad_name) == "invalid_input"
    assert admin.post(f"/v1/cases/{case_id}/names", json={"value": "x", "kind": "nick"}).status_code == 422


def test_scopes_and_visibility(server: Server, admin: Api) -> None:
    case_id = _case_with_bank(server, admin)
    assert error_code(server.anonymous().get("/v1/cases")) == "missing_key"
    matcher = server.client(["match"], name="m")
    assert error_code(matcher.get("/v1/cases")) == "forbidden_scope"
    granted = server.client(["manage"], banks=["jane"], name="granted")
    stranger = server.client(["manage"], name="stranger")
    assert granted.get(f"/v1/cases/{case_id}").status_code == 200
    assert stranger.get(f"/v1/cases/{case_id}").status_code == 404
    assert stranger.get(f"/v1/cases/{case_id}/findings").status_code == 404
    assert [c["id"] for c in stranger.get("/v1/cases").json()["cases"]] == []
    # A case without banks yet is open to whoever manages, so its creator can set it up.
    fresh = stranger.post("/v1/cases", json={"name": "new"}).json()["id"]
    assert stranger.post(f"/v1/cases/{fresh}/names", json={"value": "Someone"}).status_code == 201
