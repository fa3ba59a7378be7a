"""Keys, scopes, isolation between clients, rate limits, matching, client administration, the error envelope."""

from __future__ import annotations

import json
from collections.abc import Callable

from takeback.web.errors import ApiError
from tests.web.conftest import PDQ_A, Api, Server, error_code, flip, random_pdq

MD5 = "0123456789abcdef0123456789abcdef"


def _bank(api: Api, name: str, *values: str) -> list[int]:
    assert api.post("/v1/banks", json={"name": name}).status_code == 201
    if not values:
        return []
    r = api.post(f"/v1/banks/{name}/signals", json={"signals": [{"signal_type": "pdq", "value": v} for v in values]})
    assert r.status_code == 201, r.text
    return r.json()["ids"]


def test_missing_invalid_and_revoked_keys(server: Server, admin: Api) -> None:
    anon = server.anonymous()
    r = anon.get("/v1/banks")
    assert r.status_code == 401 and error_code(r) == "missing_key" and r.headers["www-authenticate"] == "Bearer"
    for headers in [
        {"Authorization": "Bearer tbk_nope_nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "x" * 5000},
        {"X-API-Key": "tbk_00000000_xyz"},
    ]:
        r = anon.get("/v1/banks", headers=headers)
        assert r.status_code == 401 and error_code(r) == "invalid_key", headers
    matcher = server.client(["match"], name="m")
    assert server.http.get("/v1/banks", headers={"X-API-Key": matcher.key}).status_code == 200
    client_id = next(c["id"] for c in admin.get("/v1/clients").json()["clients"] if c["name"] == "m")
    assert admin.delete(f"/v1/clients/{client_id}").status_code == 204
    r = matcher.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    assert r.status_code == 401 and error_code(r) == "invalid_key"
    revoked = next(c for c in admin.get("/v1/clients").json()["clients"] if c["name"] == "m")
    assert revoked["revoked_at"] is not None
    assert error_code(admin.delete("/v1/clients/999999")) == "not_found"


def test_scopes(server: Server, admin: Api) -> None:
    _bank(admin, "b", PDQ_A)
    match_only = server.client(["match"], banks=["b"])
    manager = server.client(["manage"])
    assert match_only.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).status_code == 200
    for call in [
        lambda: match_only.post("/v1/banks", json={"name": "x"}),
        lambda: match_only.post("/v1/banks/b/signals", json={"signals": [{"signal_type": "pdq", "value": PDQ_A}]}),
        lambda: match_only.delete("/v1/banks/b"),
        lambda: match_only.get("/v1/banks/b/export"),
        lambda: match_only.get("/v1/clients"),
        lambda: manager.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}),
        lambda: manager.post("/v1/clients", json={"name": "x", "scopes": ["admin"]}),
        lambda: manager.get("/v1/clients"),
    ]:
        r = call()
        assert r.status_code == 403 and error_code(r) == "forbidden_scope", r.text


def test_isolation_between_clients(server: Server, admin: Api) -> None:
    alice = server.client(["match", "manage"], name="alice")
    bob = server.client(["match", "manage"], name="bob")
    [a_id] = _bank(alice, "alice-bank", PDQ_A)
    _bank(bob, "bob-bank", flip(PDQ_A, 3))
    assert [b["name"] for b in alice.get("/v1/banks").json()["banks"]] == ["alice-bank"]
    assert [b["name"] for b in bob.get("/v1/banks").json()["banks"]] == ["bob-bank"]
    assert [b["name"] for b in admin.get("/v1/banks").json()["banks"]] == ["alice-bank", "bob-bank"]

    hits = alice.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"]
    assert [(m["bank"], m["signal_id"], m["distance"]) for m in hits] == [("alice-bank", a_id, 0)]
    hits = admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"]
    assert [(m["bank"], m["distance"]) for m in hits] == [("alice-bank", 0), ("bob-bank", 3)]

    for call in [
        lambda: bob.get("/v1/banks/alice-bank"),
        lambda: bob.get("/v1/banks/alice-bank/signals"),
        lambda: bob.get("/v1/banks/alice-bank/export"),
        lambda: bob.post("/v1/banks/alice-bank/signals", json={"signals": [{"signal_type": "md5", "value": MD5}]}),
        lambda: bob.post("/v1/banks/alice-bank/signals/delete", json={"ids": [a_id]}),
        lambda: bob.delete(f"/v1/banks/alice-bank/signals/{a_id}"),
        lambda: bob.delete("/v1/banks/alice-bank"),
        lambda: bob.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A, "banks": ["alice-bank"]}),
        lambda: bob.post(
            "/v1/match/batch", json={"queries": [{"signal_type": "md5", "value": MD5}], "banks": ["alice-bank"]}
        ),
    ]:
        r = call()
        assert r.status_code == 403 and error_code(r) == "forbidden_bank", r.text
    # bob removing alice's signal id through his own bank removes nothing
    assert bob.post("/v1/banks/bob-bank/signals/delete", json={"ids": [a_id]}).json() == {"removed": 0}
    assert alice.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"] != []

    bob_id = next(c["id"] for c in admin.get("/v1/clients").json()["clients"] if c["name"] == "bob")
    granted = admin.post(f"/v1/clients/{bob_id}/banks", json={"banks": ["alice-bank"]})
    assert granted.status_code == 200 and granted.json()["banks"] == ["alice-bank", "bob-bank"]
    assert bob.get("/v1/banks/alice-bank").status_code == 200
    assert error_code(admin.post(f"/v1/clients/{bob_id}/banks", json={"banks": ["nope"]})) == "unknown_bank"
    assert error_code(admin.post("/v1/clients/999999/banks", json={"banks": ["bob-bank"]})) == "not_found"


def test_rate_limit(server: Server) -> None:
    slow = server.client(["match"], rate=2)
    body = {"signal_type": "pdq", "value": PDQ_A}
    assert slow.post("/v1/match", json=body).status_code == 200
    assert slow.post("/v1/match", json=body).status_code == 200
    r = slow.post("/v1/match", json=body)
    assert r.status_code == 429 and error_code(r) == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    other = server.client(["match"], rate=2)
    assert other.post("/v1/match", json=body).status_code == 200


def test_match_one_and_batch(server: Server, admin: Api) -> None:
    near, far = flip(PDQ_A, 10), flip(PDQ_A, 40, 100)
    ids = _bank(admin, "b", PDQ_A, near, far)
    admin.post("/v1/banks", json={"name": "c"})
    vpdq = json.dumps([{"hash": random_pdq(f"v{i}"), "quality": 90, "timestamp": float(i)} for i in range(5)])
    r = admin.post(
        "/v1/banks/c/signals",
        json={"signals": [{"signal_type": "md5", "value": MD5}, {"signal_type": "vpdq", "value": vpdq}]},
    )
    md5_id, vpdq_id = r.json()["ids"]

    hits = admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"]
    assert [(m["signal_id"], m["distance"]) for m in hits] == [(ids[0], 0), (ids[1], 10)]
    hits = admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A, "threshold": 45}).json()["matches"]
    assert [m["signal_id"] for m in hits] == ids
    hits = admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A, "threshold": 0}).json()["matches"]
    assert [m["signal_id"] for m in hits] == ids[:1]
    assert admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A, "banks": ["c"]}).json()["matches"] == []
    r = admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A, "threshold": 64})
    assert r.status_code == 400 and error_code(r) == "invalid_threshold"
    hits = admin.post("/v1/match", json={"signal_type": "md5", "value": MD5.upper()}).json()["matches"]
    assert hits == [{"bank": "c", "signal_id": md5_id, "signal_type": "md5", "distance": 0}]
    hits = admin.post("/v1/match", json={"signal_type": "vpdq", "value": vpdq}).json()["matches"]
    assert [(m["signal_id"], m["query_match_pct"], m["compared_match_pct"]) for m in hits] == [(vpdq_id, 100.0, 100.0)]

    queries = [
        {"signal_type": "md5", "value": "f" * 32},
        {"signal_type": "pdq", "value": near},
        {"signal_type": "md5", "value": MD5},
    ]
    results = admin.post("/v1/match/batch", json={"queries": queries}).json()["results"]
    assert [[m["signal_id"] for m in r["matches"]] for r in results] == [[], [ids[1], ids[0]], [md5_id]]
    results = admin.post("/v1/match/batch", json={"queries": queries * 20}).json()["results"]  # threaded path
    assert len(results) == 60 and [m["signal_id"] for m in results[59]["matches"]] == [md5_id]


def test_match_errors(start: Callable[..., Server]) -> None:
    server = start(max_match_batch=3)
    admin = server.client(["admin"])
    cases = [
        ({"signal_type": "pdq", "value": "xyz"}, 400, "wrong_length"),
        ({"signal_type": "pdq", "value": "g" * 64}, 400, "invalid_hex"),
        ({"signal_type": "tmk", "value": "00"}, 400, "unknown_signal_type"),
        ({"signal_type": "vpdq", "value": "not frames"}, 400, "invalid_vpdq"),
        ({"signal_type": "pdq", "value": PDQ_A, "banks": ["nope"]}, 404, "unknown_bank"),
        ({"signal_type": "pdq", "value": PDQ_A, "threshold": -1}, 422, "validation_error"),
        ({"signal_type": "pdq"}, 422, "validation_error"),
        ({"signal_type": "pdq", "value": 5}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = admin.post("/v1/match", json=body)
        assert r.status_code == status and error_code(r) == code, (body, r.text)
    ok = {"signal_type": "pdq", "value": PDQ_A}
    r = admin.post("/v1/match/batch", json={"queries": [ok, ok, {"signal_type": "md5", "value": "12"}]})
    assert r.status_code == 400 and error_code(r) == "wrong_length"
    assert r.json()["error"]["detail"] == {"index": 2} and r.json()["error"]["message"].startswith("queries[2]")
    r = admin.post("/v1/match/batch", json={"queries": []})
    assert r.status_code == 400 and error_code(r) == "empty_batch"
    r = admin.post("/v1/match/batch", json={"queries": [ok] * 4})
    assert r.status_code == 413 and error_code(r) == "batch_too_large"
    r = admin.post("/v1/match", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and error_code(r) == "validation_error"


def test_clients_admin(server: Server, admin: Api) -> None:
    _bank(admin, "b", PDQ_A)
    r = admin.post(
        "/v1/clients", json={"name": "platform", "scopes": ["match"], "banks": ["b"], "rate_limit_per_minute": 60}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith("tbk_") and created["scopes"] == ["match"] and created["banks"] == ["b"]
    assert created["rate_limit_per_minute"] == 60 and created["key"].split("_")[1] == created["key_prefix"]
    listed = {c["name"]: c for c in admin.get("/v1/clients").json()["clients"]}
    assert "key" not in listed["platform"] and listed["platform"]["banks"] == ["b"]
    platform = Api(server.http, created["key"])
    assert platform.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"][0]["bank"] == "b"
    default = admin.post("/v1/clients", json={"name": "d", "scopes": ["manage", "match"]}).json()
    assert default["rate_limit_per_minute"] == server.state.settings.default_rate_limit
    assert error_code(admin.post("/v1/clients", json={"name": "x", "scopes": ["root"]})) == "validation_error"
    assert error_code(admin.post("/v1/clients", json={"name": "x", "scopes": []})) == "validation_error"
    assert (
        error_code(admin.post("/v1/clients", json={"name": "x", "scopes": ["match"], "banks": ["zz"]}))
        == "unknown_bank"
    )


def test_bank_creator_is_granted(server: Server) -> None:
    manager = server.client(["manage", "match"])
    _bank(manager, "mine", PDQ_A)
    assert manager.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"][0]["bank"] == "mine"


def test_error_envelope_everywhere(server: Server, admin: Api) -> None:
    r = admin.get("/v1/nothing-here")
    assert r.status_code == 404 and error_code(r) == "not_found"
    r = admin.request("PUT", "/v1/banks")
    assert r.status_code == 405 and error_code(r) == "method_not_allowed"
    r = admin.post("/v1/banks", json=[1, 2])
    assert r.status_code == 422 and error_code(r) == "validation_error" and r.json()["error"]["detail"]

    @server.app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @server.app.get("/v1/api-error")
    def api_error() -> None:
        raise ApiError(418, "teapot", "short and stout", detail={"x": 1})

    r = server.http.get("/v1/boom")
    assert r.status_code == 500 and error_code(r) == "internal_error"
    assert "secret" not in r.text and "Traceback" not in r.text
    r = server.http.get("/v1/api-error")
    assert r.status_code == 418 and r.json() == {
        "error": {"code": "teapot", "message": "short and stout", "detail": {"x": 1}}
    }


def test_openapi_and_docs(server: Server) -> None:
    spec = server.http.get("/openapi.json").json()
    assert {"/v1/health", "/v1/banks", "/v1/match", "/v1/match/batch", "/v1/clients", "/v1/webhooks"} <= set(
        spec["paths"]
    )
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    assert server.http.get("/docs").status_code == 200
