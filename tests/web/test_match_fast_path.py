"""The match fast path must answer exactly as the documented routes do, and validate exactly as their models do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from takeback.config import Settings
from takeback.web.api import match_fast
from takeback.web.app import create_app
from takeback.web.schemas import MatchBatchRequest, MatchRequest
from tests.web.conftest import PDQ_A, Api, Server, flip, random_pdq

MD5 = "0123456789abcdef0123456789abcdef"


# --- the validators: same acceptance, same values ------------------------------------------------------------
_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(["pdq", "md5", "PDQ", "", "x" * 33, PDQ_A, "b" * 40, "ok bank", "\x00"]),
)
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=3), max_leaves=6)
_query = st.dictionaries(
    st.sampled_from(["signal_type", "value", "threshold", "banks", "other"]),
    st.one_of(_json, st.lists(st.sampled_from(["b", "", "c" * 200]), max_size=2)),
    max_size=5,
)


def _model_says(model: type[Any], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return None


def _plain_says(schema: Any, raw: bytes) -> Any:
    try:
        return schema.validate_json(raw)
    except ValidationError:
        return None


@settings(max_examples=300, deadline=None)
@given(_query)
def test_single_body_validator_agrees_with_the_model(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    model, plain = _model_says(MatchRequest, raw), _plain_says(match_fast._ONE, raw)
    assert (model is None) == (plain is None), (body, model, plain)
    if model is not None:
        assert (model.signal_type, model.value, model.threshold, model.banks) == (
            plain["signal_type"],
            plain["value"],
            plain.get("threshold"),
            plain.get("banks"),
        )


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["queries", "banks", "other"]), st.one_of(_json, st.lists(_query, max_size=3))))
def test_batch_body_validator_agrees_with_the_model(body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    model, plain = _model_says(MatchBatchRequest, raw), _plain_says(match_fast._BATCH, raw)
    assert (model is None) == (plain is None), (body, model, plain)
    if model is not None:
        assert [(q.signal_type, q.value, q.threshold) for q in model.queries] == [
            (q["signal_type"], q["value"], q.get("threshold")) for q in plain["queries"]
        ]
        assert model.banks == plain.get("banks")


# --- the answers: byte for byte what the routes say ----------------------------------------------------------
@pytest.fixture
def pair(make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Two servers on one database: `fast` as shipped, `routes` with the fast path taken out; `taken` counts the
    requests the fast path answered itself."""
    taken: list[str] = []
    for path, (schema, answer) in list(match_fast._ROUTES.items()):

        async def counted(state: Any, principal: Any, body: Any, _answer: Any = answer, _path: str = path) -> bytes:
            taken.append(_path)
            return await _answer(state, principal, body)

        monkeypatch.setitem(match_fast._ROUTES, path, (schema, counted))
    fast_app = create_app(make_settings(max_match_batch=5))
    fast = TestClient(fast_app, raise_server_exceptions=False)
    fast.__enter__()
    server = Server(fast_app, fast)
    admin = server.client(["admin"], name="admin")
    assert admin.post("/v1/banks", json={"name": "b"}).status_code == 201
    assert admin.post("/v1/banks", json={"name": "other"}).status_code == 201
    signals = [{"signal_type": "pdq", "value": v} for v in (PDQ_A, flip(PDQ_A, 3), random_pdq(1))]
    signals.append({"signal_type": "md5", "value": MD5})
    assert admin.post("/v1/banks/b/signals", json={"signals": signals}).status_code == 201
    assert admin.post("/v1/banks/other/signals", json={"signals": signals[:1]}).status_code == 201
    keys = {
        "match": server.client(["match"], banks=["b"], name="m").key,
        "manage": server.client(["manage"], name="g").key,
        "admin": admin.key,
    }
    routes_app = create_app(make_settings(max_match_batch=5))
    routes_app.user_middleware = [m for m in routes_app.user_middleware if m.cls is not match_fast.MatchFastPath]
    routes = TestClient(routes_app, raise_server_exceptions=False)
    routes.__enter__()
    yield {"fast": fast, "routes": routes, "keys": keys, "taken": taken}
    routes.__exit__(None, None, None)
    fast.__exit__(None, None, None)


def _canonical(value: str) -> str:
    return value.upper()


SINGLE: list[tuple[str, Any]] = [
    ("match", {"signal_type": "pdq", "value": PDQ_A}),
    ("match", {"signal_type": "pdq", "value": PDQ_A, "threshold": 2}),
    ("match", {"signal_type": "PDQ ", "value": _canonical(PDQ_A)}),
    ("match", {"signal_type": "md5", "value": MD5}),
    ("match", {"signal_type": "pdq", "value": PDQ_A, "banks": ["b"]}),
    ("admin", {"signal_type": "pdq", "value": PDQ_A}),
    ("admin", {"signal_type": "pdq", "value": PDQ_A, "banks": ["other", "b", "other"]}),
    ("match", {"signal_type": "pdq", "value": PDQ_A, "banks": ["other"]}),
    ("match", {"signal_type": "pdq", "value": PDQ_A, "banks": ["missing"]}),
    ("match", {"signal_type": "pdq", "value": "zz" * 32}),
    ("match", {"signal_type": "pdq", "value": "ab"}),
    ("match", {"signal_type": "sha1", "value": MD5}),
    ("match", {"signal_type": "pdq", "value": PDQ_A, "threshold": 200}),
    ("match", {"signal_type": "pdq", "value": PDQ_A, "threshold": -1}),
    ("match", {"signal_type": "pdq", "value": PDQ_A, "surprise": 1}),
    ("match", {"signal_type": "pdq"}),
    ("match", []),
    ("manage", {"signal_type": "pdq", "value": PDQ_A}),
    (None, {"signal_type": "pdq", "value": PDQ_A}),
    ("bogus", {"signal_type": "pdq", "value": PDQ_A}),
]
BATCH: list[tuple[str, Any]] = [
    ("match", {"queries": [{"signal_type": "pdq", "value": v} for v in (PDQ_A, random_pdq(1), random_pdq(9))]}),
    ("match", {"queries": [{"signal_type": "pdq", "value": PDQ_A}] * 2, "banks": ["b"]}),
    ("match", {"queries": [{"signal_type": "pdq", "value": _canonical(PDQ_A)}, {"signal_type": "md5", "value": MD5}]}),
    (
        "match",
        {"queries": [{"signal_type": "pdq", "value": PDQ_A, "threshold": 1}, {"signal_type": "pdq", "value": PDQ_A}]},
    ),
    ("admin", {"queries": [{"signal_type": "pdq", "value": PDQ_A}], "banks": ["other"]}),
    ("match", {"queries": []}),
    ("match", {"queries": [{"signal_type": "pdq", "value": PDQ_A}] * 6}),
    ("match", {"queries": [{"signal_type": "pdq", "value": PDQ_A}, {"signal_type": "pdq", "value": "12"}]}),
    ("match", {"queries": [{"signal_type": "pdq", "value": PDQ_A, "threshold": 99}]}),
    ("match", {"queries": [{"signal_type": "pdq", "value": PDQ_A}], "banks": ["other"]}),
    ("match", {"queries": [{"signal_type": "pdq", "value": 5}]}),
    ("match", {"queries": "pdq"}),
    ("manage", {"queries": [{"signal_type": "pdq", "value": PDQ_A}]}),
]
RAW: list[tuple[str, bytes, str | None]] = [
    ("/v1/match", b"{not json", "application/json"),
    ("/v1/match", b"", "application/json"),
    ("/v1/match", json.dumps({"signal_type": "pdq", "value": PDQ_A}).encode(), "text/plain"),
    ("/v1/match", json.dumps({"signal_type": "pdq", "value": PDQ_A}).encode(), None),
    ("/v1/match", json.dumps({"signal_type": "pdq", "value": PDQ_A}).encode(), "application/vnd.api+json"),
    ("/v1/match/batch", b'{"queries": [{"signal_type": "pdq", "value": "\xff"}]}', "application/json"),
]


def _answer(http: TestClient, path: str, key: str | None, content: bytes, content_type: str | None) -> tuple:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = http.post(path, content=content, headers=headers)
    kept = {k: v for k, v in r.headers.items() if k in ("www-authenticate", "retry-after", "content-type")}
    return r.status_code, r.content, kept


def test_fast_path_answers_byte_for_byte_as_the_routes(pair: dict[str, Any]) -> None:
    keys = {**pair["keys"], "bogus": "tbk_bogus_key", None: None}
    cases = [("/v1/match", keys[who], json.dumps(body).encode(), "application/json") for who, body in SINGLE]
    cases += [("/v1/match/batch", keys[who], json.dumps(body).encode(), "application/json") for who, body in BATCH]
    cases += [(path, keys["match"], content, kind) for path, content, kind in RAW]
    statuses = set()
    for path, key, content, kind in cases:
        fast = _answer(pair["fast"], path, key, content, kind)
        routes = _answer(pair["routes"], path, key, content, kind)
        assert fast == routes, (path, content[:120], fast, routes)
        statuses.add(fast[0])
    assert {200, 400, 401, 403, 404, 413, 422} <= statuses  # the cases reach every kind of answer
    # the fast path answered every well-formed JSON request from a client that may match (its answers and the
    # refusals of its queries alike); it refuses bad keys itself too, before `taken` would count them
    allowed = {pair["keys"]["match"], pair["keys"]["admin"]}
    well_formed = [c for c in cases if c[1] in allowed and c[3] not in ("text/plain", None) and _validates(c[0], c[2])]
    assert len(pair["taken"]) == len(well_formed) > 20


def _validates(path: str, content: bytes) -> bool:
    schema = match_fast._ONE if path == "/v1/match" else match_fast._BATCH
    return bool(content) and _plain_says(schema, content) is not None


def test_batch_lane_and_per_query_path_give_the_same_matches(server: Server, admin: Api) -> None:
    """Canonical PDQ batches take the array lane; the same hashes in upper case take the per-query path."""
    stored = [PDQ_A, flip(PDQ_A, 5), flip(PDQ_A, 20), random_pdq(3)]
    assert admin.post("/v1/banks", json={"name": "lane"}).status_code == 201
    r = admin.post("/v1/banks/lane/signals", json={"signals": [{"signal_type": "pdq", "value": v} for v in stored]})
    assert r.status_code == 201
    queries = [PDQ_A, flip(PDQ_A, 9), random_pdq(4), random_pdq(3), PDQ_A]
    lane = admin.post("/v1/match/batch", json={"queries": [{"signal_type": "pdq", "value": v} for v in queries]})
    upper = [{"signal_type": "pdq", "value": v.upper()} for v in queries]
    slow = admin.post("/v1/match/batch", json={"queries": upper})
    assert lane.status_code == slow.status_code == 200
    assert lane.json() == slow.json()
    distances = [[m["distance"] for m in result["matches"]] for result in lane.json()["results"]]
    assert distances == [[0, 5, 20], [4, 9, 11], [], [0], [0, 5, 20]]


def test_rate_limit_counts_a_request_once_on_the_fast_path(server: Server) -> None:
    """Two per minute: a valid lookup and a malformed one (handed on to the routes) take one token each."""
    api = server.client(["match"], rate=2)
    assert api.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).status_code == 200
    assert api.post("/v1/match", json={"signal_type": "pdq"}).status_code == 422
    r = api.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
    assert r.status_code == 429 and "retry-after" in r.headers
