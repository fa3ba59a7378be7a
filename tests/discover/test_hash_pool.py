"""The hashing worker pool: the same hashes as in-process hashing, batches, and a worker that crashes, hangs or
answers garbage costing one file, not the crawl; the wire format refuses malformed answers."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from takeback.discover import hash_wire
from takeback.discover.crawl_match import MatchBatcher, MediaMatcher
from takeback.discover.hash_pool import HashPool
from takeback.discover.media_hash import HashFailure, MediaHashes, hash_media
from takeback.index import IndexedSignal
from takeback.signals.variants import Mode


def _image(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (160, 120)) -> bytes:
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    small.save(out, format=fmt)
    return out.getvalue()


BODIES = [_image(i) for i in range(12)] + [_image(99, "PNG", (300, 200)), b"<html>not an image</html>", b""]

#: A stand-in worker: hashes like the real one, but dies on b"CRASH", never answers on b"HANG" and sends
#: garbage on b"GARBAGE".  It reads whole batches first, so a bad body spoils its whole batch.
STAND_IN = """
import os, sys, threading
from takeback.discover.hash_wire import encode_answer, unpack_u32
from takeback.discover.media_hash import hash_media
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = inp.read(4)
    if len(head) < 4:
        break
    bodies = [inp.read(unpack_u32(inp.read(4))) for _ in range(unpack_u32(head))]
    if b"CRASH" in bodies:
        os._exit(3)
    if b"HANG" in bodies:
        threading.Event().wait()
    if b"GARBAGE" in bodies:
        out.write(b"\\x05\\x00\\x00\\x00hello")
    else:
        out.write(encode_answer(hash_media(b) for b in bodies))
    out.flush()
"""


def _run(bodies: Sequence[bytes], **kwargs: object) -> tuple[list[MediaHashes | HashFailure], HashPool]:
    async def go() -> tuple[list[MediaHashes | HashFailure], HashPool]:
        async with HashPool(**kwargs) as pool:  # type: ignore[arg-type]
            results = await asyncio.gather(*(pool.hash(b) for b in bodies))
        return list(results), pool

    return asyncio.run(go())


def test_pool_hashes_exactly_like_in_process_hashing() -> None:
    results, pool = _run(BODIES, processes=2, max_batch=4)
    assert results == [hash_media(b) for b in BODIES]
    assert pool.restarts == 0
    assert isinstance(results[-2], HashFailure) and results[-2].code == "not-media"


def test_pool_passes_the_query_modes_to_its_workers() -> None:
    plain, _ = _run(BODIES[:4], processes=1, query_modes=frozenset())
    assert plain == [hash_media(b, query_modes=frozenset()) for b in BODIES[:4]]
    assert all(isinstance(r, MediaHashes) and r.variants == () for r in plain)
    smooth, _ = _run(BODIES[:4], processes=1, query_modes=frozenset({Mode.SMOOTH}))
    assert smooth == [hash_media(b, query_modes=frozenset({Mode.SMOOTH})) for b in BODIES[:4]]
    assert any(isinstance(r, MediaHashes) and r.variants for r in smooth)


@pytest.mark.parametrize("poison", [b"CRASH", b"GARBAGE"])
def test_a_worker_that_dies_or_babbles_costs_only_the_culprit(poison: bytes) -> None:
    bodies = [*BODIES[:6], poison, *BODIES[6:12]]
    results, pool = _run(bodies, processes=1, max_batch=16, worker=("-c", STAND_IN))
    culprit = results[6]
    assert isinstance(culprit, HashFailure) and culprit.code == "internal"
    assert culprit.size == len(poison)
    assert results[:6] + results[7:] == [hash_media(b) for b in BODIES[:12]]
    assert pool.restarts >= 2  # once for the batch, once more when the culprit was retried alone


def test_a_hanging_worker_is_killed_at_the_deadline() -> None:
    bodies = [BODIES[0], b"HANG", BODIES[1]]
    results, pool = _run(bodies, processes=1, batch_timeout_s=1.0, item_timeout_s=0.0, worker=("-c", STAND_IN))
    assert isinstance(results[1], HashFailure) and results[1].code == "internal"
    assert [results[0], results[2]] == [hash_media(BODIES[0]), hash_media(BODIES[1])]
    assert pool.restarts >= 1


def test_out_of_restarts_every_body_fails_cleanly() -> None:
    results, _ = _run([b"CRASH", b"CRASH", BODIES[0]], processes=1, max_restarts=1, worker=("-c", STAND_IN))
    assert all(isinstance(r, HashFailure) and r.code == "internal" for r in results[:2])
    assert isinstance(results[2], MediaHashes | HashFailure)


def test_workers_run_at_a_lower_priority() -> None:
    async def go() -> list[int]:
        async with HashPool(processes=1, niceness=7) as pool:
            await pool.hash(BODIES[0])
            process = pool._workers[0].process
            assert process is not None
            return [os.getpriority(os.PRIO_PROCESS, process.pid), os.getpriority(os.PRIO_PROCESS, 0)]

    child, parent = asyncio.run(go())
    assert child == min(19, parent + 7)


def test_hash_outside_the_context_manager_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        asyncio.run(HashPool().hash(b""))


# --- the wire format ------------------------------------------------------------------------------------------------


def test_wire_round_trip() -> None:
    results = [hash_media(b) for b in BODIES]
    answer = hash_wire.encode_answer(results)
    assert hash_wire.unpack_u32(answer[:4]) == len(answer) - 4
    assert hash_wire.decode_answer(answer[4:], len(results)) == results


def _one(**changes: object) -> bytes:
    item = json.loads(hash_wire.encode_answer([hash_media(BODIES[0])])[4:])[0]
    item.update(changes)
    return json.dumps([item]).encode()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"{}",
        b"[]",  # wrong count
        b'[{"ok": 2}]',
        _one(kind="audio"),
        _one(md5="A" * 32),
        _one(sha256="0" * 63),
        _one(size=-1),
        _one(width=True),
        _one(frames=[["z" * 64, 90, 0.0]]),
        _one(frames=[["0" * 64, "90", 0.0]]),
        _one(frames="0" * 64),
        _one(format=["JPEG"]),
    ],
)
def test_wire_refuses_malformed_answers(payload: bytes) -> None:
    with pytest.raises(hash_wire.WireError):
        hash_wire.decode_answer(payload, 1)


# --- matching a loop turn's hashes together ---------------------------------------------------------------------------


class CountingMatcher(MediaMatcher):
    calls = 0

    def match_many(self, many: Sequence[MediaHashes]) -> list[list]:  # type: ignore[type-arg]
        self.calls += 1
        return super().match_many(many)


def test_match_batcher_answers_one_turn_with_one_lookup() -> None:
    hashed = [h for h in (hash_media(b) for b in BODIES) if isinstance(h, MediaHashes)]
    banked = [IndexedSignal(i, 1, "pdq", h.frames[0].pdq) for i, h in enumerate(hashed[:3], start=1)]
    matcher = CountingMatcher(banked, {1: "bank"})
    expected = [MediaMatcher(banked, {1: "bank"}).match(h) for h in hashed]

    async def go() -> list[list]:  # type: ignore[type-arg]
        batcher = MatchBatcher(matcher)
        return list(await asyncio.gather(*(batcher.match(h) for h in hashed)))

    assert asyncio.run(go()) == expected
    assert matcher.calls == 1
    assert [m[0].signal_id for m in expected[:3]] == [1, 2, 3]
