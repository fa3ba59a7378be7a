"""Two `takeback` server processes on one database: bank changes made through either reach the other's index.

Each process keeps its own index and follows the store (web/matcher.py).  The test waits for conditions with a
deadline (the other process syncs every 20 ms here), never for a fixed time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import random_pdq
from tests.web.server_process import Uvicorn, admin_key

DEADLINE_S = 30.0


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[tuple[Uvicorn, Uvicorn, dict[str, str]]]:
    started: list[Uvicorn] = []
    base = dict(os.environ)
    base.update({"TAKEBACK_DATABASE_URL": database_url, "TAKEBACK_INDEX_SYNC_INTERVAL_S": "0.02"})
    key = admin_key({**base, "TAKEBACK_DATA_DIR": str(tmp_path / "a")})
    try:
        for name in ("a", "b"):  # separate data dirs: each process has its own index snapshots
            started.append(Uvicorn({**base, "TAKEBACK_DATA_DIR": str(tmp_path / name)}))
        yield started[0], started[1], {"Authorization": f"Bearer {key}"}
    finally:
        for server in started:
            server.kill()


def _eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, "the other server never caught up"


def _matched_ids(http: httpx.Client, values: list[str]) -> list[list[int]]:
    queries = [{"signal_type": "pdq", "value": v, "threshold": 0} for v in values]
    response = http.post("/v1/match/batch", json={"queries": queries})
    assert response.status_code == 200, response.text
    return [[m["signal_id"] for m in r["matches"]] for r in response.json()["results"]]


def test_changes_through_one_server_reach_the_other(servers: tuple[Uvicorn, Uvicorn, dict[str, str]]) -> None:
    a, b, headers = servers
    with (
        httpx.Client(base_url=a.url, headers=headers, timeout=30) as http_a,
        httpx.Client(base_url=b.url, headers=headers, timeout=30) as http_b,
    ):
        assert http_a.post("/v1/banks", json={"name": "case-1"}).status_code == 201
        values = [random_pdq(f"two-servers-{i}") for i in range(20)]
        added = http_a.post("/v1/banks/case-1/signals", json={"signals": [{"signal_type": "pdq", "value": v}
                                                                           for v in values[:10]]})
        assert added.status_code == 201, added.text
        ids = added.json()["ids"]
        assert _matched_ids(http_a, values[:10]) == [[i] for i in ids]  # the writer reads its own write at once
        _eventually(lambda: _matched_ids(http_b, values[:10]) == [[i] for i in ids])

        # a removal through b reaches a; an addition through b too
        removed = http_b.post("/v1/banks/case-1/signals/delete", json={"ids": ids[:3]})
        assert removed.json() == {"removed": 3}
        more = http_b.post("/v1/banks/case-1/signals", json={"signals": [{"signal_type": "pdq", "value": v}
                                                                          for v in values[10:]]}).json()["ids"]
        expected = [[], [], []] + [[i] for i in ids[3:]] + [[i] for i in more]
        _eventually(lambda: _matched_ids(http_a, values) == expected)

        # deleting the whole bank through a empties b's answers
        assert http_a.delete("/v1/banks/case-1").status_code == 204
        assert http_b.get("/v1/banks/case-1").status_code == 404
        assert http_a.post("/v1/banks", json={"name": "case-2"}).status_code == 201
        fresh = http_a.post("/v1/banks/case-2/signals", json={"signals": [{"signal_type": "pdq", "value": values[0]}]})
        [fresh_id] = fresh.json()["ids"]
        _eventually(lambda: _matched_ids(http_b, values) == [[fresh_id]] + [[]] * 19)
