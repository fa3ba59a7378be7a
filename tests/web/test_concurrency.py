"""Bank updates racing with matches: every answer shows each update whole or not at all.

Writers add and remove signals in groups of GROUP per request (and delete whole banks of GROUP); every signal is a
near-duplicate of one probe hash, so any match answer must count a multiple of GROUP.  A half-applied update would
show up as a count that is not.
"""

from __future__ import annotations

import threading

from tests.web.conftest import PDQ_A, Api, Server, flip

GROUP = 8
ROUNDS = 12
READERS = 3


def _group(g: int) -> list[dict]:
    return [
        {"signal_type": "pdq", "value": flip(flip(PDQ_A, 1, g * GROUP + j), 1, 128 + g * GROUP + j)}
        for j in range(GROUP)
    ]


def test_matches_never_see_half_an_update(server: Server, admin: Api) -> None:
    admin.post("/v1/banks", json={"name": "main"})
    reader = server.client(["match"], banks=[], name="reader")
    stop = threading.Event()
    seen: list[set[int]] = [set() for _ in range(READERS)]
    bad: list[str] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for r in range(ROUNDS):
                ids = admin.post("/v1/banks/main/signals", json={"signals": _group(r % 4)}).json()["ids"]
                assert len(ids) == GROUP
                name = f"tmp-{r}"
                admin.post("/v1/banks", json={"name": name})
                admin.post(f"/v1/banks/{name}/signals", json={"signals": _group(4 + r % 4)})
                admin.post("/v1/banks/main/signals/delete", json={"ids": ids})
                assert admin.delete(f"/v1/banks/{name}").status_code == 204
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    def read(i: int) -> None:
        try:
            while not stop.is_set():
                if i % 2:
                    r = admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A})
                    counts = [len(r.json()["matches"])]
                else:
                    queries = [{"signal_type": "pdq", "value": PDQ_A}] * 3
                    r = admin.post("/v1/match/batch", json={"queries": queries})
                    counts = [len(x["matches"]) for x in r.json()["results"]]
                for n in counts:
                    seen[i].add(n)
                    if n % GROUP:
                        bad.append(f"reader {i} saw {n} matches")
                assert reader.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json() == {"matches": []}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(READERS)]
    threads.append(threading.Thread(target=write))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not bad, bad[:5]
    assert all(s <= {0, GROUP, 2 * GROUP} for s in seen), seen
    assert set().union(*seen) - {0}, "the readers never overlapped a write"
    final = admin.post("/v1/match", json={"signal_type": "pdq", "value": PDQ_A}).json()["matches"]
    assert final == []
    assert server.http.get("/v1/health").json()["signals"] == 0
