"""The PDQ index must return exactly what brute force returns: every pair within the threshold, nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from takeback.index import brute, hamming, mih, pdq_index
from takeback.index.pdq_index import PdqIndex


def flip(words: np.ndarray, bits: np.ndarray) -> np.ndarray:
    out = words.copy()
    for b in bits:
        out[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return out


def near(rng: np.random.Generator, words: np.ndarray, count: int, max_distance: int) -> np.ndarray:
    picks = rng.integers(0, len(words), size=count)
    return np.array(
        [flip(words[i], rng.choice(256, size=int(rng.integers(0, max_distance + 1)), replace=False)) for i in picks],
        dtype=np.uint64,
    ).reshape(-1, 4)


def expected(queries: np.ndarray, words: np.ndarray, ids: np.ndarray, threshold: int) -> set[tuple[int, int, int]]:
    qi, si, d = brute.range_search(queries, words, threshold)
    return set(zip(qi.tolist(), ids[si].tolist(), d.tolist(), strict=True))


def got(index: PdqIndex, queries: np.ndarray, threshold: int) -> set[tuple[int, int, int]]:
    qi, ids, _banks, d = index.search(queries, threshold)
    result = list(zip(qi.tolist(), ids.tolist(), d.tolist(), strict=True))
    assert len(result) == len(set(result)), "a pair was reported twice"
    return set(result)


@pytest.fixture
def small_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny tails so that a few hundred hashes already form and merge several segments."""
    monkeypatch.setattr(pdq_index, "TAIL_MAX", 32)


# --- generators of stored sets: uniform, clustered near-duplicates, low-entropy, many identical ---------------
def dataset(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    if kind == "clustered":
        centres = rng.integers(0, 2**64, size=(max(1, n // 50), 4), dtype=np.uint64)
        return near(rng, centres, n, 40)
    if kind == "low_entropy":
        # mostly-zero hashes with a few bits set: every substring bucket is crowded
        bits = rng.random((n, 256)) < 0.03
        return np.packbits(bits, axis=1).view(">u8").astype(np.uint64)
    if kind == "identical":
        one = rng.integers(0, 2**64, size=(1, 4), dtype=np.uint64)
        return np.concatenate([np.repeat(one, n - n // 4, axis=0), near(rng, one, n // 4, 8)])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["uniform", "clustered", "low_entropy", "identical"])
@pytest.mark.parametrize("threshold", [0, 8, 31, 63])
def test_matches_brute_force(kind: str, threshold: int, small_tail: None) -> None:
    rng = np.random.default_rng(threshold)
    words = dataset(kind, 600, seed=len(kind))
    ids = rng.permutation(10_000)[: len(words)].astype(np.int64)
    index = PdqIndex(threads=2)
    for chunk in np.array_split(np.arange(len(words)), 7):  # several adds: tail + segments + merges
        index.add(ids[chunk], words[chunk], np.zeros(len(chunk)))
    assert len(index.segment_sizes) >= 1
    queries = np.concatenate([near(rng, words, 80, threshold + 3), dataset("uniform", 20, 99)])
    assert got(index, queries, threshold) == expected(queries, words, ids, threshold)


def test_large_batch_uses_threads_and_agrees(small_tail: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdq_index, "PARALLEL_MIN_STORED", 1000)
    rng = np.random.default_rng(5)
    words = dataset("uniform", 3000, 1)
    ids = np.arange(len(words), dtype=np.int64) + 7
    index = PdqIndex(threads=2)
    index.add(ids, words, np.zeros(len(ids)))
    queries = near(rng, words, pdq_index.PARALLEL_MIN * 2 + 3, 31)
    assert got(index, queries, 31) == expected(queries, words, ids, 31)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    n=st.integers(1, 300),
    threshold=st.integers(0, 48),
    low_entropy=st.booleans(),
)
def test_random_operations_match_brute_force(
    data: st.DataObject, n: int, threshold: int, low_entropy: bool, small_tail: None
) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    words = dataset("low_entropy" if low_entropy else "clustered", n, seed)
    ids = np.arange(n, dtype=np.int64) * 3 + 1
    index = PdqIndex(threads=1)
    live = np.zeros(n, dtype=bool)
    for step in range(data.draw(st.integers(1, 6))):
        lo, hi = sorted(data.draw(st.tuples(st.integers(0, n), st.integers(0, n))))
        fresh = np.arange(lo, hi)[~live[lo:hi]]
        index.add(ids[fresh], words[fresh], fresh % 3)
        live[fresh] = True
        if data.draw(st.booleans(), label=f"remove at step {step}"):
            doomed = np.flatnonzero(live & (rng.random(n) < 0.4))
            index.remove(ids[doomed])
            live[doomed] = False
    queries = np.concatenate([near(rng, words, 12, threshold + 2), dataset("uniform", 3, seed + 1)])
    assert got(index, queries, threshold) == expected(queries, words[live], ids[live], threshold)
    for row in range(3):  # one query at a time takes the all-substrings-in-one-pass path
        one = queries[row : row + 1]
        assert got(index, one, threshold) == expected(one, words[live], ids[live], threshold)
    assert len(index) == int(live.sum())


def test_bank_filter_and_remove_bank(small_tail: None) -> None:
    words = dataset("uniform", 200, 3)
    ids = np.arange(200, dtype=np.int64)
    banks = ids % 4
    index = PdqIndex()
    index.add(ids, words, banks)
    _qi, found, found_banks, _d = index.search(words[:50], 0, banks=np.array([1, 2]))
    assert set(found.tolist()) == {i for i in range(50) if i % 4 in (1, 2)}
    assert set(found_banks.tolist()) <= {1, 2}
    index.remove_bank(1)
    _, found, _, _ = index.search(words[:50], 0)
    assert set(found.tolist()) == {i for i in range(50) if i % 4 != 1}
    assert len(index) == 150


def test_removed_then_readded_id_is_found_again(small_tail: None) -> None:
    words = dataset("uniform", 100, 4)
    ids = np.arange(100, dtype=np.int64)
    index = PdqIndex()
    index.add(ids, words, np.zeros(100))
    index.remove(ids[:10])
    assert got(index, words[:10], 0) == set()
    index.add(ids[:10], words[:10], np.zeros(10))
    assert got(index, words[:10], 0) == {(i, i, 0) for i in range(10)}


def test_snapshot_round_trip(tmp_path: Path, small_tail: None) -> None:
    rng = np.random.default_rng(9)
    words = dataset("clustered", 500, 9)
    ids = np.arange(500, dtype=np.int64) + 2**40  # ids beyond uint32 keep working
    index = PdqIndex()
    index.add(ids, words, np.ones(500))
    index.remove(ids[::7])
    index.save(tmp_path / "pdq")
    restored = PdqIndex.load(tmp_path / "pdq")
    queries = near(rng, words, 40, 31)
    assert got(restored, queries, 31) == got(index, queries, 31)
    assert len(restored) == len(index)


def test_search_is_consistent_during_concurrent_writes(small_tail: None) -> None:
    """A search sees either all or none of one add: never a half-applied batch."""
    import threading

    words = dataset("uniform", 2000, 11)
    index = PdqIndex()
    probe = words[:1]
    stop = threading.Event()
    seen: set[int] = set()

    def reader() -> None:
        while not stop.is_set():
            _qi, found, _, _ = index.search(np.repeat(probe, 1, axis=0), 0)
            seen.add(len(found))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for batch in range(20):
            # each batch adds 5 copies of the probe hash under new ids
            ids = np.arange(batch * 5, batch * 5 + 5, dtype=np.int64)
            index.add(ids, np.repeat(probe, 5, axis=0), np.zeros(5))
    finally:
        stop.set()
        thread.join()
    assert seen <= {5 * k for k in range(21)}
    assert got(index, probe, 0) == {(0, i, 0) for i in range(100)}


def test_layout_is_disjoint_and_allocation_is_a_valid_pigeonhole() -> None:
    for n in (1, 100, 5000, 10**6, 10**7, 10**9):
        parts = mih.layout_for(n)
        covered = [b for p in parts for b in range(p.offset, p.offset + p.length)]
        # disjoint substrings inside the hash; a few bits may stay uncovered (verified, not filtered)
        assert len(covered) == len(set(covered)) and set(covered) <= set(range(256)) and len(covered) >= 240
        for threshold in (0, 1, 15, 31, 47):
            radii, _ = mih.allocate(parts, n, threshold)
            assert sum(r + 1 for r in radii) >= threshold + 1


def test_substring_keys_match_bit_slices() -> None:
    words = dataset("uniform", 50, 12)
    bits = np.unpackbits(words.astype(">u8").view(np.uint8).reshape(-1, 32), axis=1)
    for part in mih.layout_for(10**7):
        keys = mih.substring(words, part)
        chunk = bits[:, part.offset : part.offset + part.length]
        assert (keys == chunk.dot(1 << np.arange(part.length - 1, -1, -1, dtype=np.int64))).all()


def test_hex_round_trip() -> None:
    words = dataset("uniform", 5, 13)
    assert (hamming.from_hex(hamming.to_hex(words)) == words).all()


def test_warm_compiles_the_search_and_changes_nothing() -> None:
    """warm() runs the real search path (segments and tail) once; answers afterwards are the same."""
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**63, size=(pdq_index.TAIL_MAX + 100, hamming.WORDS), dtype=np.int64).astype(np.uint64)
    ids = np.arange(len(words), dtype=np.int64)
    index = PdqIndex(threads=1)
    index.warm(31)  # empty: nothing to search, must not fail
    banks = np.zeros(len(words), dtype=np.int64)
    index.add(ids[:-100], words[:-100], banks[:-100])  # a full tail's worth becomes a segment
    index.add(ids[-100:], words[-100:], banks[-100:])  # these stay in the tail
    assert index._state.segments and len(index._state.tail_ids)  # both paths exist
    queries = near(rng, words, 20, 31)
    before = got(index, queries, 31)
    index.warm(31)
    assert got(index, queries, 31) == before == expected(queries, words, ids, 31)


@pytest.mark.parametrize("kind", ["uniform", "identical", "low_entropy"])
def test_segment_reports_each_pair_once_even_when_its_buffers_overflow(kind: str) -> None:
    """The compiled search reports a pair from the first table whose probes reach it. Near-identical sets hit
    in every table and overflow the first hit and candidate buffers, which forces the re-run with more room."""
    rng = np.random.default_rng(3)
    words = dataset(kind, 2000, seed=5)
    segment = mih.Segment.build(words, np.arange(len(words)), np.zeros(len(words)))
    queries = np.concatenate([near(rng, words, 40, 10), dataset("uniform", 10, 6)])
    qrows, rows, dist = segment.search(queries, 31)
    pairs = list(zip(qrows.tolist(), rows.tolist(), dist.tolist(), strict=True))
    assert len(pairs) == len(set(pairs))
    want = brute.range_search(queries, words, 31)
    assert set(pairs) == set(zip(*(a.tolist() for a in want), strict=True))
    if kind == "identical":
        assert len(pairs) > 4 * len(queries) + 64  # more than the first hit buffer holds


def test_stored_hashes_start_on_a_cache_line(tmp_path: Path) -> None:
    """A 32-byte hash must not straddle two cache lines: built from a view at an odd offset and loaded from disk,
    the stored rows start on a 64-byte boundary and hold the same values."""
    words = dataset("uniform", 300, seed=8)
    raw = np.zeros(words.size + 8, dtype=np.uint64)
    skew = ((16 - raw.ctypes.data % 64) % 64) // 8
    odd = raw[skew : skew + words.size].reshape(words.shape)
    odd[...] = words
    assert odd.ctypes.data % 64 == 16
    segment = mih.Segment.build(odd, np.arange(len(words)), np.zeros(len(words)))
    assert segment.words.ctypes.data % 64 == 0 and (segment.words == words).all()
    segment.save(tmp_path / "s")
    loaded = mih.Segment.load(tmp_path / "s")
    assert loaded.words.ctypes.data % 64 == 0 and (loaded.words == words).all()
    aligned = mih.aligned_rows(loaded.words)
    assert aligned is loaded.words  # already aligned: no copy


def test_candidate_buffer_filled_to_its_last_place_is_still_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """First candidate buffers of every size from far too small to ample: each answer equals brute force (the copy
    that writes two rows at a time must not skip a bucket that fits exactly)."""
    rng = np.random.default_rng(11)
    words = dataset("clustered", 800, seed=2)
    segment = mih.Segment.build(words, np.arange(len(words)), np.zeros(len(words)))
    queries = near(rng, words, 30, 20)
    want = set(zip(*(a.tolist() for a in brute.range_search(queries, words, 31)), strict=True))
    monkeypatch.setattr(segment._plan(31), "table_candidates", 0.0)
    for room in range(1, 400, 3):
        monkeypatch.setattr(mih, "CANDIDATE_SLACK", room)
        qrows, rows, dist = segment.search(queries, 31)
        assert set(zip(qrows.tolist(), rows.tolist(), dist.tolist(), strict=True)) == want, room


def test_crowded_blocks_keep_the_directory_at_one_byte_per_bucket(tmp_path: Path) -> None:
    """Low-entropy hashes pile into a few buckets (all-zero substrings): those blocks move to `wide` instead of
    widening every bucket's entry, answers stay exact, and a snapshot keeps them."""
    rng = np.random.default_rng(21)
    words = np.concatenate([dataset("low_entropy", 3000, seed=4), dataset("uniform", 3000, seed=5)])
    segment = mih.Segment.build(words, np.arange(len(words)), np.zeros(len(words)))
    assert segment.rel.dtype == np.uint8
    crowded = segment.base & mih.wide_flag(segment.base) != 0
    assert crowded.any() and len(segment.wide) == crowded.sum() * ((1 << mih._BLOCK_SHIFT) + 1)
    queries = np.concatenate([near(rng, words, 60, 31), dataset("low_entropy", 20, seed=6)])
    want = set(zip(*(a.tolist() for a in brute.range_search(queries, words, 31)), strict=True))
    for index in (segment, _saved_and_loaded(segment, tmp_path)):
        qrows, rows, dist = index.search(queries, 31)
        assert set(zip(qrows.tolist(), rows.tolist(), dist.tolist(), strict=True)) == want
        assert len(qrows) == len(want)


def _saved_and_loaded(segment: mih.Segment, directory: Path) -> mih.Segment:
    segment.save(directory / "crowded")
    return mih.Segment.load(directory / "crowded")


def test_snapshot_from_before_the_wide_blocks_still_loads(tmp_path: Path) -> None:
    """A segment saved without `wide.npy` and with a narrow base (the earlier format) loads and answers exactly."""
    rng = np.random.default_rng(22)
    words = dataset("uniform", 900, seed=7)
    segment = mih.Segment.build(words, np.arange(len(words)), np.zeros(len(words)))
    assert not (segment.base & mih.wide_flag(segment.base)).any()
    segment.save(tmp_path / "old")
    (tmp_path / "old" / "wide.npy").unlink()
    np.save(tmp_path / "old" / "base.npy", segment.base.astype(np.uint16), allow_pickle=False)
    loaded = mih.Segment.load(tmp_path / "old")
    queries = near(rng, words, 40, 31)
    want = set(zip(*(a.tolist() for a in brute.range_search(queries, words, 31)), strict=True))
    qrows, rows, dist = loaded.search(queries, 31)
    assert set(zip(qrows.tolist(), rows.tolist(), dist.tolist(), strict=True)) == want
