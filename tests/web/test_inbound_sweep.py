"""Inbound mode: accepting a TAKE IT DOWN request sweeps the platform's own uploads bank for identical and
near-identical copies through the match service's index (same threshold as /v1/match), records the matching
upload references on the request, counts them in the answer and the requester's e-mail, and sends the platform's
webhooks a match event naming the request.  On SQLite and PostgreSQL, with a real SMTP server and webhook receiver.
"""

from __future__ import annotations

import json
from typing import Any

from takeback.web.webhooks import verify
from tests.smtp import SmtpServer
from tests.web.conftest import PDQ_A, flip, random_pdq
from tests.web.test_webhooks import SECRET, WAIT, Receiver, receiver  # noqa: F401 (fixture)

SENDER = {"name": "Jane Doe", "email": "jane@example.org"}


def _request(*hashes: str) -> dict[str, Any]:
    return {
        "materials": [{"url": "https://platform.example/v/1"}], "sender": SENDER, "signature": "/s/ Jane Doe",
        "good_faith_not_consensual": True, "signals": [{"signal_type": "pdq", "value": h} for h in hashes],
    }


def test_acceptance_sweeps_the_uploads_for_copies(start: Any, smtp_server: SmtpServer,
                                                 receiver: Receiver) -> None:  # noqa: F811
    server = start(allow_private_webhooks=True, **smtp_server.settings(), platform_name="Example Videos")
    platform = server.client(["manage", "match"], name="platform-uploads")
    assert platform.post("/v1/banks", json={"name": "uploads"}).status_code == 201
    uploads = [(PDQ_A, "upload:1001"), (flip(PDQ_A, 5), "upload:1002"), (flip(PDQ_A, 6, 100), "upload:1002"),
               (flip(PDQ_A, 40), "upload:1003"), (random_pdq("other"), "upload:1004")]
    added = platform.post("/v1/banks/uploads/signals", json={"signals": [
        {"signal_type": "pdq", "value": value, "note": ref} for value, ref in uploads]})
    assert added.status_code == 201 and added.json()["added"] == 5
    hook = platform.post("/v1/webhooks", json={"url": receiver.url(), "secret": SECRET})
    assert hook.status_code == 201, hook.text

    public = server.anonymous()
    filed = public.post("/v1/takeitdown/requests", json=_request(PDQ_A, random_pdq("nothing-like-it"))).json()
    moderator = server.client(["manage"], name="moderator")
    [pending] = moderator.get("/v1/takeitdown/requests").json()["requests"]
    assert pending["uploads_matched"] is None and pending["upload_matches"] is None  # not swept before acceptance
    accepted = moderator.post(f"/v1/takeitdown/requests/{pending['id']}/decision", json={"accept": True})
    assert accepted.status_code == 200, accepted.text
    decided = accepted.json()
    assert decided["uploads_matched"] == 2 and decided["signals_added"] == 2
    found = sorted((m["upload_ref"], m["distance"], m["query"]) for m in decided["upload_matches"])
    assert found == [("upload:1001", 0, 0), ("upload:1002", 5, 0), ("upload:1002", 6, 0)]  # 40 bits: not a copy
    # the requester sees the count, never the platform's references
    status = public.get(f"/v1/takeitdown/requests/{filed['reference']}").json()
    assert status["uploads_matched"] == 2 and status["upload_matches"] is None
    listed = moderator.get("/v1/takeitdown/requests", params={"status": "accepted"}).json()["requests"]
    assert listed[0]["uploads_matched"] == 2 and len(listed[0]["upload_matches"]) == 3

    # the platform's webhook: one match event for the reported hash that has copies
    _path, headers, body = receiver.requests.get(timeout=WAIT)
    assert verify(SECRET, body, headers["X-Takeback-Signature"])
    event = json.loads(body)
    assert event["type"] == "match" and event["client"] == "platform-uploads"
    assert event["reason"] == {"type": "takeitdown_request", "reference": filed["reference"],
                               "remove_by": filed["due_at"].replace("Z", "+00:00")}
    assert event["query"]["value"] == PDQ_A
    assert sorted(m["upload_ref"] for m in event["matches"]) == ["upload:1001", "upload:1002", "upload:1002"]
    assert receiver.requests.empty()

    # the requester's e-mail says what was done, with the count
    mail = smtp_server.wait_for(1)[0]
    assert mail.rcpt_tos == ["jane@example.org"]
    text = mail.message.get_body(("plain",)).get_content()
    assert "Example Videos accepted" in text and "2 existing upload(s)" in text and filed["reference"] in text
    assert "upload:100" not in text


def test_no_uploads_bank_and_rejections_sweep_nothing(start: Any, smtp_server: SmtpServer) -> None:
    server = start(**smtp_server.settings())
    public = server.anonymous()
    moderator = server.client(["manage"], name="moderator")
    public.post("/v1/takeitdown/requests", json=_request(PDQ_A))
    public.post("/v1/takeitdown/requests", json=_request(flip(PDQ_A, 3)))
    first, second = moderator.get("/v1/takeitdown/requests").json()["requests"]
    accepted = moderator.post(f"/v1/takeitdown/requests/{first['id']}/decision", json={"accept": True}).json()
    assert accepted["status"] == "accepted" and accepted["uploads_matched"] is None  # the platform has no uploads bank
    rejected = moderator.post(f"/v1/takeitdown/requests/{second['id']}/decision",
                              json={"accept": False, "note": "not on our platform"}).json()
    assert rejected["status"] == "rejected" and rejected["uploads_matched"] is None
    texts = [m.message.get_body(("plain",)).get_content() for m in smtp_server.wait_for(2)]
    assert "accepted" in texts[0] and "No existing upload" not in texts[0]
    assert "did not accept" in texts[1] and "not on our platform" in texts[1]


def test_a_configured_uploads_bank_and_no_copies(start: Any, smtp_server: SmtpServer) -> None:
    server = start(**smtp_server.settings(), takedown_uploads_bank="platform-media")
    platform = server.client(["manage", "match"], name="platform")
    platform.post("/v1/banks", json={"name": "platform-media"})
    platform.post("/v1/banks/platform-media/signals", json={"signals": [
        {"signal_type": "pdq", "value": random_pdq(1), "note": "video/77"}]})
    server.anonymous().post("/v1/takeitdown/requests", json=_request(PDQ_A))
    moderator = server.client(["manage"], name="moderator")
    [pending] = moderator.get("/v1/takeitdown/requests").json()["requests"]
    decided = moderator.post(f"/v1/takeitdown/requests/{pending['id']}/decision", json={"accept": True}).json()
    assert decided["uploads_matched"] == 0 and decided["upload_matches"] == []
    assert "No existing upload matched" in smtp_server.wait_for(1)[0].message.get_body(("plain",)).get_content()
