"""The PDQ range index: immutable multi-index-hashing segments, a small brute-force tail, and tombstones.

Adds go to the tail; a full tail becomes a segment, and segments of similar size are merged (log-structured, so
each hash is rebuilt O(log n) times and a single add never rebuilds the whole index). Removals are tombstones
(rows, per segment) until a segment is mostly dead, then it is rebuilt without them.

Readers take one reference to the current `_State` and never lock; writers build a new `_State` under a lock and
publish it with one assignment, so a search sees the index before or after a write, never in between.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from takeback.index import brute, hamming
from takeback.index.mih import Segment

#: Hashes kept in the brute-force tail before they become a segment.
TAIL_MAX = 4096
#: Merge the two newest segments while the older is at most this many times the newer.
MERGE_FACTOR = 4
#: Rebuild a segment when this share of its rows is removed.
DEAD_SHARE = 0.25
#: Batches at least this large, over at least this many hashes, are split across threads. The compiled search
#: holds no GIL, so halves run in parallel already over small indexes (measured, 1,000 queries on 2 cores: 20,000
#: hashes 5.9 -> 3.5 ms, 100,000 hashes 17 -> 12.5 ms); the floor of 16,384 was not measured, only chosen below those.
PARALLEL_MIN = 256
PARALLEL_MIN_STORED = 1 << 14

_EMPTY_I64 = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class _State:
    segments: tuple[Segment, ...] = ()
    #: sorted dead rows of each segment
    dead: tuple[np.ndarray, ...] = ()
    tail_words: np.ndarray = field(default_factory=lambda: np.zeros((0, hamming.WORDS), dtype=np.uint64))
    tail_ids: np.ndarray = field(default_factory=lambda: _EMPTY_I64)
    tail_banks: np.ndarray = field(default_factory=lambda: _EMPTY_I64)

    @property
    def size(self) -> int:
        return sum(len(s) - len(d) for s, d in zip(self.segments, self.dead, strict=True)) + len(self.tail_ids)


def _live(segment: Segment, dead: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keep = np.ones(len(segment), dtype=bool)
    keep[dead] = False
    return segment.words[keep], segment.ids[keep].astype(np.int64), segment.banks[keep].astype(np.int64)


class PdqIndex:
    def __init__(self, threads: int | None = None) -> None:
        self._lock = threading.Lock()
        self._state = _State()
        self._threads = threads if threads is not None else min(4, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return self._state.size

    @property
    def segment_sizes(self) -> list[int]:
        return [len(s) for s in self._state.segments]

    @property
    def nbytes_beyond_hashes(self) -> int:
        state = self._state
        return sum(s.nbytes_beyond_hashes + d.nbytes for s, d in zip(state.segments, state.dead, strict=True)) + (
            state.tail_ids.nbytes + state.tail_banks.nbytes
        )

    # --- writes ------------------------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, words: np.ndarray, banks: np.ndarray) -> None:
        """Add hashes under new ids (an id already present must be removed first)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        words = np.asarray(words, dtype=np.uint64).reshape(-1, hamming.WORDS)
        banks = np.asarray(banks, dtype=np.int64)
        with self._lock:
            state = self._state
            tail_ids = np.concatenate([state.tail_ids, ids])
            tail_words = np.concatenate([state.tail_words, words])
            tail_banks = np.concatenate([state.tail_banks, banks])
            if len(tail_ids) < TAIL_MAX:
                self._state = replace(state, tail_words=tail_words, tail_ids=tail_ids, tail_banks=tail_banks)
                return
            segments = [*state.segments, Segment.build(tail_words, tail_ids, tail_banks)]
            dead = [*state.dead, _EMPTY_I64]
            self._state = _State(tuple(segments), tuple(dead))
            self._merge_small()

    def _merge_small(self) -> None:
        state = self._state
        segments, dead = list(state.segments), list(state.dead)
        changed = False
        while len(segments) >= 2 and len(segments[-2]) - len(dead[-2]) <= MERGE_FACTOR * (
            len(segments[-1]) - len(dead[-1])
        ):
            older, newer = _live(segments[-2], dead[-2]), _live(segments[-1], dead[-1])
            merged = Segment.build(*(np.concatenate([a, b]) for a, b in zip(older, newer, strict=True)))
            segments[-2:] = [merged]
            dead[-2:] = [_EMPTY_I64]
            changed = True
        if changed:
            self._state = replace(state, segments=tuple(segments), dead=tuple(dead))

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids):
            with self._lock:
                self._drop(lambda seg_ids, _banks: np.isin(seg_ids, ids))

    def remove_bank(self, bank: int) -> None:
        with self._lock:
            self._drop(lambda _ids, banks: banks == bank)

    def _drop(self, doomed: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
        """Tombstone the rows `doomed(ids, banks)` selects, in every segment and the tail."""
        state = self._state
        segments, dead = list(state.segments), list(state.dead)
        for i, segment in enumerate(segments):
            rows = np.flatnonzero(doomed(segment.ids, segment.banks))
            if len(rows):
                dead[i] = np.union1d(dead[i], rows)
        for i in range(len(segments) - 1, -1, -1):
            if len(dead[i]) >= DEAD_SHARE * len(segments[i]):
                live = _live(segments[i], dead[i])
                if len(live[0]):
                    segments[i], dead[i] = Segment.build(*live), _EMPTY_I64
                else:
                    del segments[i], dead[i]
        keep = ~doomed(state.tail_ids, state.tail_banks)
        self._state = _State(
            tuple(segments), tuple(dead), state.tail_words[keep], state.tail_ids[keep], state.tail_banks[keep]
        )

    # --- reads -------------------------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, threshold: int, banks: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(query row, id, bank, distance) of every stored hash within threshold (only in `banks` when given),
        sorted by query row then distance then id."""
        state = self._state
        queries = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, hamming.WORDS)
        if len(queries) >= PARALLEL_MIN and self._threads > 1 and state.size >= PARALLEL_MIN_STORED:
            pool = self._executor()
            step = -(-len(queries) // self._threads)
            starts = range(0, len(queries), step)
            parts = list(pool.map(lambda s: self._search(state, queries[s : s + step], threshold, banks), starts))
            for start, part in zip(starts, parts, strict=True):
                part[0] += start
            qrows, ids, bank_of, dist = (np.concatenate([p[k] for p in parts]) for k in range(4))
        else:
            qrows, ids, bank_of, dist = self._search(state, queries, threshold, banks)
        order = np.lexsort((ids, dist, qrows))
        return qrows[order], ids[order], bank_of[order], dist[order]

    @staticmethod
    def _search(state: _State, queries: np.ndarray, threshold: int, banks: np.ndarray | None) -> list[np.ndarray]:
        out_q, out_id, out_bank, out_d = [], [], [], []
        for segment, dead in zip(state.segments, state.dead, strict=True):
            qrows, rows, dist = segment.search(queries, threshold)
            if len(dead) and len(rows):
                alive = ~np.isin(rows, dead)
                qrows, rows, dist = qrows[alive], rows[alive], dist[alive]
            out_q.append(qrows)
            out_id.append(segment.ids[rows].astype(np.int64))
            out_bank.append(segment.banks[rows].astype(np.int64))
            out_d.append(dist)
        qrows, rows, dist = brute.range_search(queries, state.tail_words, threshold)
        out_q.append(qrows)
        out_id.append(state.tail_ids[rows])
        out_bank.append(state.tail_banks[rows])
        out_d.append(dist)
        result = [np.concatenate(out_q), np.concatenate(out_id), np.concatenate(out_bank), np.concatenate(out_d)]
        if banks is not None and len(result[0]):
            keep = np.isin(result[2], banks)
            result = [r[keep] for r in result]
        return result

    def warm(self, threshold: int) -> None:
        """Run one search so the compiled loop exists for this index's array types before the first real query
        (numba compiles it once per machine, about 2 s, and caches it on disk; the compile holds the GIL)."""
        self.search(np.zeros((1, hamming.WORDS), dtype=np.uint64), threshold)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="pdq-search")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    # --- persistence -------------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        state = self._state
        directory.mkdir(parents=True, exist_ok=True)
        for i, (segment, dead) in enumerate(zip(state.segments, state.dead, strict=True)):
            segment.save(directory / f"segment{i}")
            np.save(directory / f"dead{i}.npy", dead, allow_pickle=False)
        np.save(directory / "tail_words.npy", state.tail_words, allow_pickle=False)
        np.save(directory / "tail_ids.npy", state.tail_ids, allow_pickle=False)
        np.save(directory / "tail_banks.npy", state.tail_banks, allow_pickle=False)
        (directory / "segments.json").write_text(json.dumps({"segments": len(state.segments)}))

    @classmethod
    def load(cls, directory: Path, threads: int | None = None) -> PdqIndex:
        count = json.loads((directory / "segments.json").read_text())["segments"]
        index = cls(threads)
        index._state = _State(
            tuple(Segment.load(directory / f"segment{i}") for i in range(count)),
            tuple(np.load(directory / f"dead{i}.npy", allow_pickle=False) for i in range(count)),
            np.load(directory / "tail_words.npy", allow_pickle=False),
            np.load(directory / "tail_ids.npy", allow_pickle=False),
            np.load(directory / "tail_banks.npy", allow_pickle=False),
        )
        return index
