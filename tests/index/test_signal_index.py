"""SignalIndex: every signal type through one API, bank isolation, the vPDQ rule, snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from takeback.index import IndexedSignal, Query, SignalIndex
from takeback.index.video import VideoRule
from takeback.signals.validate import InvalidSignal


def rand_hex(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, size=32, dtype=np.uint8).tobytes().hex()


def flip_bits(hex_value: str, count: int) -> str:
    value = int(hex_value, 16) ^ ((1 << count) - 1)
    return f"{value:064x}"


def video(hashes: list[str], quality: int = 100) -> str:
    return json.dumps([{"hash": h, "quality": quality, "timestamp": float(i)} for i, h in enumerate(hashes)])


def test_pdq_threshold_default_and_per_query() -> None:
    base = "ab" * 32
    index = SignalIndex(pdq_threshold=31)
    index.add([IndexedSignal(1, 10, "pdq", base), IndexedSignal(2, 10, "pdq", flip_bits(base, 20))])
    [default, tight, upper] = index.match(
        [Query("pdq", base), Query("pdq", base, threshold=10), Query("PDQ", base.upper())]
    )
    assert [(m.signal_id, m.distance) for m in default] == [(1, 0), (2, 20)]
    assert [m.signal_id for m in tight] == [1]
    assert upper == default


def test_bank_isolation() -> None:
    h = "cd" * 32
    index = SignalIndex()
    index.add([IndexedSignal(1, 1, "pdq", h), IndexedSignal(2, 2, "pdq", h), IndexedSignal(3, 2, "md5", "a" * 32)])
    assert [m.signal_id for m in index.match([Query("pdq", h)], bank_ids=[2])[0]] == [2]
    assert index.match([Query("md5", "a" * 32)], bank_ids=[1]) == [[]]
    assert index.match([Query("pdq", h)], bank_ids=[]) == [[]]


def test_exact_types_and_removal() -> None:
    index = SignalIndex()
    index.add(
        [
            IndexedSignal(1, 1, "md5", "0" * 32),
            IndexedSignal(2, 1, "sha256", "1" * 64),
            IndexedSignal(3, 2, "md5", "0" * 32),
        ]
    )
    assert [m.signal_id for m in index.match([Query("md5", "0" * 32)])[0]] == [1, 3]
    assert index.match([Query("sha256", "1" * 64), Query("md5", "f" * 32)]) == [
        [index.match([Query("sha256", "1" * 64)])[0][0]],
        [],
    ]
    index.remove([1])
    assert [m.signal_id for m in index.match([Query("md5", "0" * 32)])[0]] == [3]
    index.remove_bank(2)
    assert index.match([Query("md5", "0" * 32)]) == [[]]
    assert len(index) == 1


def test_invalid_values_are_named() -> None:
    index = SignalIndex()
    with pytest.raises(InvalidSignal) as bad:
        index.match([Query("pdq", "xyz")])
    assert bad.value.code == "wrong_length"
    with pytest.raises(InvalidSignal) as unknown:
        index.add([IndexedSignal(1, 1, "tmk", "00")])
    assert unknown.value.code == "unknown_signal_type"


def test_vpdq_rule_shares_and_quality() -> None:
    rng = np.random.default_rng(1)
    frames = [rand_hex(rng) for _ in range(10)]
    index = SignalIndex(vpdq_rule=VideoRule(query_match_pct=80.0))
    index.add([IndexedSignal(7, 1, "vpdq", video(frames))])
    # a clip of 5 of the 10 frames, slightly altered: all query frames match, half the bank video's frames match
    clip = [flip_bits(h, 5) for h in frames[:5]]
    [[match]] = index.match([Query("vpdq", video(clip))])
    assert (match.signal_id, match.query_match_pct, match.compared_match_pct, match.distance) == (7, 100.0, 50.0, 5)
    # 3 of 5 query frames matching is 60% < 80%: no match
    mixed = [*frames[:3], rand_hex(rng), rand_hex(rng)]
    assert index.match([Query("vpdq", video(mixed))]) == [[]]
    # low-quality query frames are ignored entirely
    assert index.match([Query("vpdq", video(frames, quality=10))]) == [[]]
    # duplicate frames count once
    [[dup]] = index.match([Query("vpdq", video([frames[0]] * 4))])
    assert dup.query_match_pct == 100.0 and dup.compared_match_pct == 10.0
    index.remove([7])
    assert index.match([Query("vpdq", video(frames))]) == [[]]


def test_snapshot_restores_everything(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    pdq = [rand_hex(rng) for _ in range(50)]
    frames = [rand_hex(rng) for _ in range(6)]
    index = SignalIndex()
    index.add([IndexedSignal(i, i % 3, "pdq", h) for i, h in enumerate(pdq)])
    index.add([IndexedSignal(100, 1, "vpdq", video(frames)), IndexedSignal(101, 2, "video_md5", "e" * 32)])
    queries = [Query("pdq", h) for h in pdq] + [Query("vpdq", video(frames)), Query("video_md5", "e" * 32)]
    index.save(tmp_path / "snap", sequence=42)
    restored, sequence = SignalIndex.load(tmp_path / "snap")
    assert sequence == 42
    assert restored.match(queries) == index.match(queries)
    assert SignalIndex.load(tmp_path / "nothing-here") is None


def test_concurrent_snapshots_into_one_directory_leave_a_loadable_one(tmp_path: Path) -> None:
    """Several server processes share a data directory: their snapshots may be written at the same moment."""
    import threading

    index = SignalIndex()
    index.add([IndexedSignal(i + 1, 1, "pdq", f"{i:064x}") for i in range(50)])
    target = tmp_path / "index"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def save(marker: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                index.save(target, {"signal_id": marker})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = SignalIndex.load(target)
    assert loaded is not None and len(loaded[0]) == 50 and loaded[1]["signal_id"] in range(4)  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no scratch directories left behind
