"""Webhooks end to end: registration refuses SSRF targets; deliveries reach a real loopback receiver, signed, retried
after 5xx, recorded, re-checked at delivery time, and never hold up the match response.

Synchronisation is by queues and events only: the receiver reports each request on a queue, the dispatcher reports
each finished delivery on another.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from takeback.web.webhooks import Outcome, verify
from tests.web.conftest import PDQ_A, Api, Server, error_code

WAIT = 20.0
SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 answering with the queued statuses (then 200)."""

    statuses: list[int] = field(default_factory=list)
    requests: queue.Queue = field(default_factory=queue.Queue)
    #: When set (cleared), each request waits for it before answering.
    gate: threading.Event | None = None
    port: int = 0

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.put((self.path, dict(self.headers.items()), body))
            if state.gate is not None:
                state.gate.wait(WAIT)
            with lock:
                status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    if state.gate is not None:
        state.gate.set()
    httpd.shutdown()
    httpd.server_close()


def _outcomes(server: Server) -> queue.Queue[Outcome]:
    done: queue.Queue[Outcome] = queue.Queue()
    server.state.dispatcher.listeners.append(done.put)
    return done


def _setup(server: Server, url: str, secret: str | None = SECRET) -> tuple[Api, int]:
    admin = server.client(["admin"])
    admin.post("/v1/banks", json={"name": "b"})
    admin.post("/v1/banks/b/signals", json={"signals": [{"signal_type": "pdq", "value": PDQ_A}]})
    platform = server.client(["match"], banks=["b"], name="platform")
    body = {"url": url} if secret is None else {"url": url, "secret": secret}
    r = platform.post("/v1/webhooks", json=body)
    assert r.status_code == 201, r.text
    return platform, r.json()["id"]


def test_registration_refuses_unsafe_urls(start: Callable[..., Server]) -> None:
    dns = {"hooks.example.com": ["93.184.216.34"], "sneaky.example.com": ["93.184.216.34", "127.0.0.1"]}

    def resolver(host: str, port: int) -> list[str]:
        if host not in dns:
            raise OSError("no such host")
        return dns[host]

    server = start({"webhook_resolver": resolver})
    client = server.client(["match"])
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://sneaky.example.com/hook",
        "http://localhost/hook",
        "https://unknown.example.com/hook",
        "ftp://hooks.example.com/",
        "https://user:pw@hooks.example.com/",
        "not a url",
    ]:
        r = client.post("/v1/webhooks", json={"url": url})
        assert r.status_code == 400 and error_code(r) == "unsafe_url", (url, r.text)
    assert client.get("/v1/webhooks").json() == {"webhooks": []}

    r = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/takeback"})
    assert r.status_code == 201
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["url"] == "https://hooks.example.com/takeback"
    listed = client.get("/v1/webhooks").json()["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert client.get(f"/v1/webhooks/{created['id']}/deliveries").json() == {"deliveries": []}

    other = server.client(["match"])
    assert other.get("/v1/webhooks").json() == {"webhooks": []}
    assert error_code(other.delete(f"/v1/webhooks/{created['id']}")) == "not_found"
    assert error_code(other.get(f"/v1/webhooks/{created['id']}/deliveries")) == "not_found"
    assert error_code(client.post("/v1/webhooks", json={"url": "https://hooks.example.com/", "secret": "short"})) == (
        "validation_error"
    )
    assert client.delete(f"/v1/webhooks/{created['id']}").status_code == 204
    assert error_code(client.delete(f"/v1/webhooks/{created['id']}")) == "not_found"


def test_delivery_is_signed_retried_recorded_and_does_not_block(
    start: Callable[..., Server], receiver: Receiver
) -> None:
    server = start(allow_private_webhooks=True, webhook_max_attempts=5)
    done = _outcomes(server)
    platform, hook_id = _setup(server, receiver.url())
    receiver.statuses = [500, 503, 200]
    receiver.gate = threading.Event()

    # nothing matches: no event
    assert platform.post("/v1/match", json={"signal_type": "md5", "value": "0" * 32}).json() == {"matches": []}
    r = platform.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    assert r.status_code == 200 and r.json()["matches"][0]["distance"] == 0
    # The receiver is holding the first attempt open: the match was answered anyway.
    path, headers, body = receiver.requests.get(timeout=WAIT)
    assert done.empty()
    receiver.gate.set()

    outcome = done.get(timeout=WAIT)
    assert (outcome.status, outcome.attempts, outcome.response_status) == ("delivered", 3, 200)
    attempts = [(path, headers, body)] + [receiver.requests.get(timeout=WAIT) for _ in range(2)]
    assert receiver.requests.empty()
    for path, headers, raw in attempts:
        assert path == "/hook"
        assert raw == body
        assert verify(SECRET, raw, headers["X-Takeback-Signature"])
        assert not verify("wrong-secret-wrong", raw, headers["X-Takeback-Signature"])
        assert headers["X-Takeback-Event"] == "match"
        assert headers["X-Takeback-Delivery"] == str(outcome.delivery_id)
        assert int(headers["X-Takeback-Timestamp"]) > 0
        assert headers["Content-Type"] == "application/json"
    event = json.loads(body)
    assert event["type"] == "match" and event["event_id"] == outcome.event_id and event["client"] == "platform"
    assert event["query"] == {"signal_type": "pdq", "value": PDQ_A}
    assert [(m["bank"], m["distance"]) for m in event["matches"]] == [("b", 0)]
    assert event["created_at"].endswith("Z")

    deliveries = platform.get(f"/v1/webhooks/{hook_id}/deliveries").json()["deliveries"]
    assert len(deliveries) == 1
    d = deliveries[0]
    assert (d["status"], d["attempts"], d["response_status"], d["event_id"]) == ("delivered", 3, 200, event["event_id"])
    assert d["delivered_at"] is not None

    # a batch: one event per query that matched
    batch = {"queries": [{"signal_type": "pdq", "value": PDQ_A}, {"signal_type": "md5", "value": "1" * 32}] * 2}
    assert platform.post("/v1/match/batch", json=batch).status_code == 200
    got = {done.get(timeout=WAIT).status for _ in range(2)}
    assert got == {"delivered"}
    assert len(platform.get(f"/v1/webhooks/{hook_id}/deliveries").json()["deliveries"]) == 3


def test_delivery_gives_up(start: Callable[..., Server], receiver: Receiver) -> None:
    server = start(allow_private_webhooks=True, webhook_max_attempts=2)
    done = _outcomes(server)
    platform, hook_id = _setup(server, receiver.url())
    receiver.statuses = [500, 500, 400]
    platform.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    outcome = done.get(timeout=WAIT)
    assert (outcome.status, outcome.attempts, outcome.response_status) == ("failed", 2, 500)
    platform.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    outcome = done.get(timeout=WAIT)
    assert (outcome.status, outcome.attempts, outcome.response_status) == ("failed", 1, 400)  # 4xx: no retry
    recorded = platform.get(f"/v1/webhooks/{hook_id}/deliveries").json()["deliveries"]
    assert [(d["status"], d["attempts"], d["last_error"]) for d in recorded] == [
        ("failed", 1, "HTTP 400"),
        ("failed", 2, "HTTP 500"),
    ]


def test_delivery_connects_to_the_checked_address(start: Callable[..., Server], receiver: Receiver) -> None:
    """The name is resolved once per attempt and the connection goes to that address, Host header kept."""
    server = start({"webhook_resolver": lambda host, port: ["127.0.0.1"]}, allow_private_webhooks=True)
    done = _outcomes(server)
    platform, _ = _setup(server, receiver.url(host="hooks.invalid"))
    platform.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    assert done.get(timeout=WAIT).status == "delivered"
    _, headers, _ = receiver.requests.get(timeout=WAIT)
    assert headers["Host"] == f"hooks.invalid:{receiver.port}"


def test_delivery_rechecks_dns(start: Callable[..., Server], receiver: Receiver) -> None:
    """DNS rebinding: the name was public at registration, points at loopback at delivery time -> refused."""
    answers = {"hooks.example.com": ["93.184.216.34"]}
    server = start({"webhook_resolver": lambda host, port: answers[host]})
    done = _outcomes(server)
    platform, hook_id = _setup(server, f"http://hooks.example.com:{receiver.port}/hook", secret=None)
    answers["hooks.example.com"] = ["127.0.0.1"]
    platform.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    outcome = done.get(timeout=WAIT)
    assert outcome.status == "failed" and outcome.attempts == 1
    assert outcome.last_error is not None and outcome.last_error.startswith("unsafe_url")
    assert receiver.requests.empty()
    [d] = platform.get(f"/v1/webhooks/{hook_id}/deliveries").json()["deliveries"]
    assert d["status"] == "failed" and d["response_status"] is None


def test_network_errors_are_retried(start: Callable[..., Server]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start(allow_private_webhooks=True, webhook_max_attempts=3)
    done = _outcomes(server)
    platform, _ = _setup(server, f"http://127.0.0.1:{port}/hook")
    platform.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    outcome = done.get(timeout=WAIT)
    assert (outcome.status, outcome.attempts, outcome.response_status) == ("failed", 3, None)
    assert outcome.last_error and "ConnectError" in outcome.last_error


def test_pending_deliveries_resume_after_restart(start: Callable[..., Server], receiver: Receiver) -> None:
    server = start(allow_private_webhooks=True)
    _, hook_id = _setup(server, receiver.url())
    recorder = server.state.store.recorder()
    delivery_id = recorder.create(hook_id, "00000000-0000-4000-8000-000000000000", '{"type":"match"}')
    receiver.gate = threading.Event()
    again = start(allow_private_webhooks=True)  # same database: the pending delivery is picked up at start
    _, headers, body = receiver.requests.get(timeout=WAIT)
    assert body == b'{"type":"match"}' and headers["X-Takeback-Delivery"] == str(delivery_id)
    assert verify(SECRET, body, headers["X-Takeback-Signature"])
    done = _outcomes(again)
    receiver.gate.set()
    outcome = done.get(timeout=WAIT)
    assert (outcome.delivery_id, outcome.status) == (delivery_id, "delivered")
    assert recorder.pending() == []
