"""Banks and signals over HTTP: happy paths, all-or-nothing adds, paging, removal, import and export."""

from __future__ import annotations

import json
from collections.abc import Callable

from takeback.protect.report import to_hash_list
from takeback.protect.results import FileResult, Frame, Status
from takeback.signals import hashlist
from tests.web.conftest import PDQ_A, Api, Server, error_code, flip, random_pdq

MD5 = "0123456789abcdef0123456789abcdef"


def _add(api: Api, bank: str, *signals: dict) -> dict:
    r = api.post(f"/v1/banks/{bank}/signals", json={"signals": list(signals)})
    assert r.status_code == 201, r.text
    return r.json()


def test_bank_lifecycle(server: Server, admin: Api) -> None:
    r = admin.post("/v1/banks", json={"name": "case-1", "description": "first case"})
    assert r.status_code == 201
    bank = r.json()
    assert bank["name"] == "case-1" and bank["description"] == "first case" and bank["signals"] == 0
    assert error_code(admin.post("/v1/banks", json={"name": "case-1"})) == "bank_exists"
    assert admin.post("/v1/banks", json={"name": "case-1"}).status_code == 409
    assert [b["name"] for b in admin.get("/v1/banks").json()["banks"]] == ["case-1"]
    _add(admin, "case-1", {"signal_type": "pdq", "value": PDQ_A})
    assert admin.get("/v1/banks/case-1").json()["signals"] == 1
    assert server.http.get("/v1/health").json() == {"status": "ok", "signals": 1, "version": "0.1.0"}
    r = admin.delete("/v1/banks/case-1")
    assert r.status_code == 204 and r.content == b""
    assert error_code(admin.get("/v1/banks/case-1")) == "unknown_bank"
    assert admin.get("/v1/banks/case-1").status_code == 404
    assert error_code(admin.delete("/v1/banks/case-1")) == "unknown_bank"
    assert admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json() == {"matches": []}
    assert server.http.get("/v1/health").json()["signals"] == 0


def test_bad_bank_names(admin: Api) -> None:
    for name in ["", "-x", "a b", "x" * 101, "ü", "a/b"]:
        r = admin.post("/v1/banks", json={"name": name})
        assert r.status_code == 422 and error_code(r) == "validation_error", name
    assert error_code(admin.get("/v1/banks/%00x")) == "unknown_bank"
    assert error_code(admin.post("/v1/banks", json={"name": "ok", "description": "a\x00b"})) == "validation_error"
    assert error_code(admin.post("/v1/banks", json={"name": "ok", "extra": 1})) == "validation_error"


def test_add_signals_all_types_dedup_and_ids(admin: Api) -> None:
    admin.post("/v1/banks", json={"name": "b"})
    vpdq = json.dumps([{"hash": PDQ_A, "quality": 90, "timestamp": 0.0}])
    body = _add(
        admin,
        "b",
        {"signal_type": "pdq", "value": PDQ_A.upper(), "quality": 88, "note": "front"},
        {"signal_type": "md5", "value": MD5},
        {"signal_type": "sha256", "value": PDQ_A},
        {"signal_type": "vpdq", "value": vpdq},
        {"signal_type": "video_md5", "value": MD5},
        {"signal_type": "pdq", "value": PDQ_A},
    )
    assert body["added"] == 5 and body["duplicates"] == 1 and len(body["ids"]) == 5
    again = _add(admin, "b", {"signal_type": "pdq", "value": PDQ_A})
    assert again == {"added": 0, "duplicates": 1, "ids": []}
    listed = admin.get("/v1/banks/b/signals").json()
    assert [s["id"] for s in listed["signals"]] == body["ids"]
    first = listed["signals"][0]
    assert first["signal_type"] == "pdq" and first["value"] == PDQ_A and first["quality"] == 88
    assert first["note"] == "front"
    assert listed["next_after_id"] is None


def test_add_is_all_or_nothing(admin: Api) -> None:
    admin.post("/v1/banks", json={"name": "b"})
    cases = [
        ({"signal_type": "pdq", "value": "zz" * 32}, "invalid_hex"),
        ({"signal_type": "pdq", "value": "ab"}, "wrong_length"),
        ({"signal_type": "phash", "value": PDQ_A}, "unknown_signal_type"),
        ({"signal_type": "vpdq", "value": "[1, 2]"}, "invalid_vpdq"),
    ]
    for bad, code in cases:
        r = admin.post("/v1/banks/b/signals", json={"signals": [{"signal_type": "pdq", "value": PDQ_A}, bad]})
        assert r.status_code == 400 and error_code(r) == code, r.text
        assert r.json()["error"]["message"].startswith("signals[1]: ")
        assert r.json()["error"]["detail"][0]["index"] == 1
    assert admin.get("/v1/banks/b/signals").json()["signals"] == []
    assert error_code(admin.post("/v1/banks/b/signals", json={"signals": []})) == "empty_batch"
    assert error_code(admin.post("/v1/banks/nope/signals", json={"signals": []})) == "unknown_bank"
    bad_quality = {"signals": [{"signal_type": "pdq", "value": PDQ_A, "quality": 101}]}
    assert error_code(admin.post("/v1/banks/b/signals", json=bad_quality)) == "validation_error"


def test_batch_and_upload_limits(start: Callable[..., Server]) -> None:
    server = start(max_upload_signals=3, max_upload_bytes=4096)
    admin = server.client(["admin"])
    admin.post("/v1/banks", json={"name": "b"})
    many = [{"signal_type": "pdq", "value": flip(PDQ_A, 1, i)} for i in range(4)]
    r = admin.post("/v1/banks/b/signals", json={"signals": many})
    assert r.status_code == 413 and error_code(r) == "batch_too_large"
    r = admin.post("/v1/banks/b/signals/delete", json={"ids": [1, 2, 3, 4]})
    assert r.status_code == 413 and error_code(r) == "batch_too_large"
    huge = {"signals": [{"signal_type": "pdq", "value": PDQ_A, "note": "x" * 1000}] * 5}
    r = admin.post("/v1/banks/b/signals", json=huge)
    assert r.status_code == 413 and error_code(r) == "upload_too_large"
    r = admin.post("/v1/banks/b/import", files={"file": ("l.txt", b"pdq " + PDQ_A.encode() + b"\n" * 5000)})
    assert r.status_code == 413 and error_code(r) == "upload_too_large"
    lines = "\n".join(f"pdq {flip(PDQ_A, 1, i)}" for i in range(4))
    r = admin.post("/v1/banks/b/import", files={"file": ("l.txt", lines.encode())})
    assert r.status_code == 413 and error_code(r) == "batch_too_large"


def test_paging_and_removal(server: Server, admin: Api) -> None:
    admin.post("/v1/banks", json={"name": "b"})
    ids = _add(admin, "b", *({"signal_type": "pdq", "value": random_pdq(i)} for i in range(5)))["ids"]
    page = admin.get("/v1/banks/b/signals", params={"limit": 2}).json()
    assert [s["id"] for s in page["signals"]] == ids[:2] and page["next_after_id"] == ids[1]
    page = admin.get("/v1/banks/b/signals", params={"limit": 2, "after_id": ids[1]}).json()
    assert [s["id"] for s in page["signals"]] == ids[2:4]
    assert error_code(admin.get("/v1/banks/b/signals", params={"limit": 0})) == "validation_error"
    assert error_code(admin.get("/v1/banks/b/signals", params={"after_id": 2**64})) == "validation_error"

    r = admin.post("/v1/banks/b/signals/delete", json={"ids": [ids[0], ids[1], 999_999]})
    assert r.json() == {"removed": 2}
    assert error_code(admin.post("/v1/banks/b/signals/delete", json={"ids": []})) == "empty_batch"
    assert admin.delete(f"/v1/banks/b/signals/{ids[2]}").status_code == 204
    r = admin.delete(f"/v1/banks/b/signals/{ids[2]}")
    assert r.status_code == 404 and error_code(r) == "not_found"
    assert error_code(admin.delete("/v1/banks/b/signals/0")) == "validation_error"
    assert [s["id"] for s in admin.get("/v1/banks/b/signals").json()["signals"]] == ids[3:]
    hits = admin.post("/v1/match", json={"signal_type": "pdq", "value": random_pdq(0)}).json()["matches"]
    assert hits == []
    assert server.http.get("/v1/health").json()["signals"] == 2


def _hash_list() -> bytes:
    image = FileResult(
        path="a", status=Status.HASHED, kind="image", md5=MD5, sha256="b" * 64, size=1, pdq=PDQ_A, quality=90
    )
    video = FileResult(
        path="v",
        status=Status.HASHED,
        kind="video",
        md5="c" * 32,
        sha256="d" * 64,
        size=2,
        duration=1.0,
        fps=25.0,
        frames=[Frame(0, 0.0, 90, flip(PDQ_A, 100))],
    )
    return ("\n".join(hashlist.to_jsonl(to_hash_list([image, video]))) + "\n").encode()


def test_import_hash_list_and_export_round_trip(admin: Api) -> None:
    admin.post("/v1/banks", json={"name": "b"})
    r = admin.post("/v1/banks/b/import", files={"file": ("photos.jsonl", _hash_list())})
    assert r.status_code == 200, r.text
    assert r.json() == {"format": "takeback", "added": 6, "duplicates": 0, "rejected": []}
    hit = admin.post("/v1/match", json={"signal_type": "pdq", "value": flip(PDQ_A, 5)}).json()["matches"]
    assert [(m["bank"], m["distance"]) for m in hit] == [("b", 5)]

    r = admin.get("/v1/banks/b/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="b.takeback.jsonl"' in r.headers["content-disposition"]
    exported = r.content
    admin.post("/v1/banks", json={"name": "copy"})
    r = admin.post("/v1/banks/copy/import", files={"file": ("b.jsonl", exported)}, data={"format": "takeback"})
    assert r.json()["added"] == 6 and r.json()["rejected"] == []

    r = admin.get("/v1/banks/b/export", params={"format": "hma"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = r.text.splitlines()
    assert rows[0] == "signal_type,signal_str,collab,category,tags" and len(rows) == 7
    admin.post("/v1/banks", json={"name": "hma"})
    r = admin.post("/v1/banks/hma/import", files={"file": ("b.csv", r.content)}, data={"format": "hma"})
    assert r.json() == {"format": "hma", "added": 6, "duplicates": 0, "rejected": []}
    a = {(s["signal_type"], s["value"]) for s in admin.get("/v1/banks/b/signals").json()["signals"]}
    b = {(s["signal_type"], s["value"]) for s in admin.get("/v1/banks/hma/signals").json()["signals"]}
    assert a == b
    assert error_code(admin.get("/v1/banks/b/export", params={"format": "xml"})) == "validation_error"


def test_import_reports_bad_lines_keeps_good(admin: Api) -> None:
    admin.post("/v1/banks", json={"name": "b"})
    text = f"signal_type,signal_str\npdq,{PDQ_A}\npdq,xyz\nmd5,{MD5}\nfoo,{MD5}\n"
    r = admin.post("/v1/banks/b/import", files={"file": ("l.csv", text.encode())})
    body = r.json()
    assert body["added"] == 2 and body["format"] == "hma"
    assert [(x["line"], x["code"]) for x in body["rejected"]] == [(3, "wrong_length"), (5, "unknown_signal_type")]
    r = admin.post("/v1/banks/b/import", files={"file": ("l.bin", b"\xff\xfe\x00")})
    assert r.status_code == 400 and error_code(r) == "invalid_encoding"
    r = admin.post("/v1/banks/b/import", files={"file": ("l", b"x")}, data={"format": "zip"})
    assert error_code(r) == "validation_error"
    assert error_code(admin.post("/v1/banks/b/import")) == "validation_error"
