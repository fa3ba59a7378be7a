"""kill -9 durability: every signal the server acknowledged is there after a hard kill and a restart.

A real server process (tests/web/server_process.py), killed with SIGKILL mid-write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import random_pdq
from tests.web.server_process import Uvicorn, admin_key

BATCH = 50


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    values = dict(os.environ)
    values.update({"TAKEBACK_DATA_DIR": str(tmp_path / "data"), "TAKEBACK_DATABASE_URL": database_url})
    yield values


def test_acknowledged_signals_survive_kill_9(env: dict[str, str]) -> None:
    key = admin_key(env)
    headers = {"Authorization": f"Bearer {key}"}
    server = Uvicorn(env)
    acknowledged: dict[str, int] = {}
    removed: set[str] = set()
    enough = threading.Event()
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            assert http.post("/v1/banks", json={"name": "b"}).status_code == 201
            first = [random_pdq(f"gone-{i}") for i in range(BATCH)]
            ids = http.post(
                "/v1/banks/b/signals", json={"signals": [{"signal_type": "pdq", "value": v} for v in first]}
            )
            assert http.post("/v1/banks/b/signals/delete", json={"ids": ids.json()["ids"]}).json() == {"removed": BATCH}
            removed.update(first)

        def add_forever() -> None:
            """Keep adding until the server dies; remember only what it acknowledged."""
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                n = 0
                while True:
                    values = [random_pdq(f"kept-{n}-{i}") for i in range(BATCH)]
                    n += 1
                    try:
                        r = http.post(
                            "/v1/banks/b/signals",
                            json={"signals": [{"signal_type": "pdq", "value": v} for v in values]},
                        )
                    except httpx.HTTPError:
                        return
                    if r.status_code != 201:
                        return
                    acknowledged.update(zip(values, r.json()["ids"], strict=True))
                    if n >= 10:
                        enough.set()

        writer = threading.Thread(target=add_forever, daemon=True)
        writer.start()
        assert enough.wait(timeout=120), "the server acknowledged too little"
    finally:
        server.kill()
    writer.join(timeout=60)
    assert len(acknowledged) >= 10 * BATCH

    again = Uvicorn(env)
    try:
        with httpx.Client(base_url=again.url, headers=headers, timeout=60) as http:
            values = sorted(acknowledged)
            for start in range(0, len(values), 1000):
                part = values[start : start + 1000]
                queries = [{"signal_type": "pdq", "value": v, "threshold": 0} for v in part]
                results = http.post("/v1/match/batch", json={"queries": queries}).json()["results"]
                for value, result in zip(part, results, strict=True):
                    assert [m["signal_id"] for m in result["matches"]] == [acknowledged[value]], value
            queries = [{"signal_type": "pdq", "value": v, "threshold": 0} for v in sorted(removed)]
            results = http.post("/v1/match/batch", json={"queries": queries}).json()["results"]
            assert all(r["matches"] == [] for r in results)
            assert http.get("/v1/health").json()["signals"] >= len(acknowledged)
    finally:
        again.kill()
