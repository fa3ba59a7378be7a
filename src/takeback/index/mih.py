"""Multi-index hashing: exact Hamming range search over one immutable set of 256-bit hashes.

The 256 bits are cut into m substrings of b ≈ log2(n) bits and every stored hash is filed under each substring in a
bucket table. Pigeonhole (the generalised form): if two hashes are within r bits and each substring i is given a
radius τ_i with Σ(τ_i + 1) ≥ r + 1, then at least one substring i differs in at most τ_i bits, because otherwise the
total would be at least Σ(τ_i + 1) > r. So probing every bucket within τ_i of the query's substring i, for every i,
finds every true neighbour: 100% recall by construction, and each candidate is then checked on all 256 bits.

The radii are chosen per query threshold by a cost model (probes are cheap, candidates dearer), and when no
allocation beats scanning everything (very large thresholds) the segment is scanned instead.

Memory per stored hash, beyond the 32-byte hash: one uint32 position per table except the first (the rows are kept
sorted by the first substring, so its positions are implicit), a compressed bucket directory (about one byte per
bucket, with b chosen so buckets ≈ hashes), a uint32 (or int64 when needed) id and an int32 bank.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from pathlib import Path

import numpy as np

from takeback.index import brute, hamming

#: Relative cost of checking one candidate vs probing one bucket (measured: a candidate costs a row gather, a
#: query gather, xor, popcount and a sum; a probe costs two directory gathers and a subtraction).
_CANDIDATE_COST = 2.0
#: Relative cost of comparing one stored hash in a linear scan (vectorised, sequential memory).
_SCAN_COST = 0.35
#: The bucket directory stores absolute offsets once per block of this many buckets, and small relative ones
#: for each bucket, which is what keeps it near one byte per bucket.
_BLOCK_SHIFT = 5
#: Segments at least this large build their tables in parallel threads.
_PARALLEL_BUILD = 1 << 18
#: Queries handled together per substring (see Segment.search).
_QUERY_BLOCK = 128
MIN_BITS = 8
MAX_BITS = 24
#: Bytes per stored hash (beyond the hash) the layout may use, and the threshold it is tuned for.
MEMORY_BUDGET = 60.0
DEFAULT_THRESHOLD = 31


@dataclass(frozen=True, slots=True)
class Part:
    offset: int
    length: int


def _layout(bits: int, longer: int) -> tuple[Part, ...]:
    m = hamming.BITS // bits
    parts, offset = [], 0
    for i in range(m):
        length = bits + (1 if i < longer else 0)
        parts.append(Part(offset, length))
        offset += length
    return tuple(parts)


def memory_per_hash(parts: tuple[Part, ...], n: int) -> float:
    """Modelled bytes per stored hash beyond the hash: positions for all but the first table, ~1 byte per bucket
    (plus the block bases), a uint32 id and an int32 bank."""
    buckets = sum(1 << p.length for p in parts)
    return 4 * (len(parts) - 1) + buckets * (1 + 4 / (1 << _BLOCK_SHIFT) + 1 / (1 << _BLOCK_SHIFT)) / n + 8


@cache
def layout_for(n: int, budget: float = MEMORY_BUDGET) -> tuple[Part, ...]:
    """The substring layout with the least modelled cost at the PDQ threshold whose memory fits the budget.

    Substrings of b bits, m = 256 // b of them; the bits left over either lengthen some substrings by one or stay
    uncovered. Uncovered bits keep the pigeonhole bound valid (a difference there only makes the covered
    distance smaller) and are still checked when a candidate is verified; they just do not filter.
    """
    n = max(2, n)
    best: tuple[float, float, tuple[Part, ...]] | None = None
    for bits in range(MIN_BITS, MAX_BITS + 1):
        extra = hamming.BITS - (hamming.BITS // bits) * bits
        for longer in sorted({0, min(extra, hamming.BITS // bits)}):
            parts = _layout(bits, longer)
            memory = memory_per_hash(parts, n)
            _, cost = allocate(parts, n, DEFAULT_THRESHOLD)
            over = max(0.0, memory - budget) if n >= 1 << 16 else 0.0
            key = (over, cost if n >= 1 << 16 else cost + memory * n * 1e-3, parts)
            if best is None or key[:2] < best[:2]:
                best = key
    assert best is not None
    return best[2]


def substring(words: np.ndarray, part: Part) -> np.ndarray:
    """The part's bits of each hash as uint32 keys (bit 0 = most significant bit of word 0)."""
    wi, bo, length = part.offset // 64, part.offset % 64, part.length
    mask = np.uint64((1 << length) - 1)
    if bo + length <= 64:
        keys = (words[:, wi] >> np.uint64(64 - bo - length)) & mask
    else:
        hi_bits = 64 - bo
        lo_bits = length - hi_bits
        keys = ((words[:, wi] & np.uint64((1 << hi_bits) - 1)) << np.uint64(lo_bits)) | (
            words[:, wi + 1] >> np.uint64(64 - lo_bits)
        )
    return keys.astype(np.uint32)


@cache
def flip_masks(bits: int, radius: int) -> np.ndarray:
    """Every b-bit mask with at most `radius` bits set (the probe pattern for one substring)."""
    masks = [0]
    for k in range(1, radius + 1):
        masks.extend(sum(1 << i for i in combo) for combo in combinations(range(bits), k))
    return np.array(masks, dtype=np.uint32)


def _volume(bits: int, radius: int) -> int:
    return sum(math.comb(bits, k) for k in range(radius + 1)) if radius >= 0 else 0


def allocate(parts: tuple[Part, ...], n: int, threshold: int) -> tuple[tuple[int, ...], float]:
    """Per-substring radii (−1 = skip) with Σ(τ+1) ≥ threshold+1 and the least modelled cost, and that cost."""
    radii = [-1] * len(parts)
    per_bucket = [n / (1 << p.length) for p in parts]

    def cost(i: int, radius: int) -> float:
        return _volume(parts[i].length, radius) * (1.0 + _CANDIDATE_COST * per_bucket[i])

    total = 0.0
    for _ in range(threshold + 1):
        best, best_step = -1, math.inf
        for i, radius in enumerate(radii):
            if radius + 1 > parts[i].length:
                continue
            step = cost(i, radius + 1) - cost(i, radius)
            if step < best_step:
                best, best_step = i, step
        if best < 0:  # every substring fully enumerated: the threshold covers all 256 bits
            return tuple(radii), math.inf
        radii[best] += 1
        total += best_step
    return tuple(radii), total


class _Directory:
    """Where each bucket's rows start and how many there are, in about one byte per bucket.

    Buckets are grouped in blocks of 2^s. `base` holds each block's absolute start; `rel` holds, per block, the 2^s
    bucket starts relative to the block plus one closing entry, so a bucket's count is the difference of two
    neighbouring bytes (one cache line) and only its start needs the block base. `rel` is uint8 unless a block holds
    more than 255 rows (skewed data), then wider.
    """

    __slots__ = ("base", "rel")

    def __init__(self, base: np.ndarray, rel: np.ndarray) -> None:
        self.base = base
        self.rel = rel

    @classmethod
    def build(cls, keys: np.ndarray, bits: int) -> _Directory:
        width = 1 << _BLOCK_SHIFT
        blocks = max(1, (1 << bits) >> _BLOCK_SHIFT)
        counts = np.bincount(keys, minlength=blocks * width).reshape(blocks, width)
        rel = np.zeros((blocks, width + 1), dtype=np.int64)
        np.cumsum(counts, axis=1, out=rel[:, 1:])
        base = np.zeros(blocks, dtype=np.int64)
        np.cumsum(rel[:-1, -1], out=base[1:])
        peak = int(rel[:, -1].max())
        dtype = np.uint8 if peak < 1 << 8 else np.uint16 if peak < 1 << 16 else np.uint32
        total = int(base[-1] + rel[-1, -1])
        return cls(base.astype(np.uint32 if total < 1 << 32 else np.int64), rel.ravel().astype(dtype))

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, count) of each bucket; `keys` are int64 (numpy indexes with intp, so this avoids conversions)."""
        block = keys >> _BLOCK_SHIFT
        slot = keys + block  # (k >> s) * (2^s + 1) + (k & (2^s - 1))
        first = self.rel[slot]
        slot += 1
        count = self.rel[slot].astype(np.int64)
        count -= first
        start = self.base[block].astype(np.int64)
        start += first
        return start, count

    @property
    def nbytes(self) -> int:
        return self.base.nbytes + self.rel.nbytes


class Segment:
    """An immutable MIH over n hashes. Rows are sorted by the first substring."""

    def __init__(
        self,
        words: np.ndarray,
        ids: np.ndarray,
        banks: np.ndarray,
        parts: tuple[Part, ...],
        perms: list[np.ndarray | None],
        directories: list[_Directory],
    ) -> None:
        self.words = words
        self.ids = ids
        self.banks = banks
        self.parts = parts
        self.perms = perms
        self.directories = directories
        self._plans: dict[int, tuple[tuple[int, ...], bool]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, words: np.ndarray, ids: np.ndarray, banks: np.ndarray) -> Segment:
        n = len(ids)
        parts = layout_for(n)
        first = substring(words, parts[0])
        order = np.argsort(first, kind="stable")
        words = np.ascontiguousarray(words[order])
        ids = np.asarray(ids)[order]
        id_dtype = np.uint32 if n == 0 or (ids.min() >= 0 and ids.max() < 1 << 32) else np.int64
        ids = ids.astype(id_dtype)
        banks = np.asarray(banks)[order].astype(np.int32)
        pos_dtype = np.uint32 if n < 1 << 32 else np.int64

        def table(part: Part) -> tuple[np.ndarray, _Directory]:
            keys = substring(words, part)
            return np.argsort(keys).astype(pos_dtype), _Directory.build(keys, part.length)

        # numpy's sort releases the GIL, so large segments build their tables on every core
        threads = min(len(parts) - 1, os.cpu_count() or 1) if n >= _PARALLEL_BUILD else 1
        if threads > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="mih-build") as pool:
                tables = list(pool.map(table, parts[1:]))
        else:
            tables = [table(part) for part in parts[1:]]
        perms: list[np.ndarray | None] = [None, *(t[0] for t in tables)]
        directories = [_Directory.build(first[order], parts[0].length), *(t[1] for t in tables)]
        return cls(words, ids, banks, parts, perms, directories)

    @property
    def nbytes_beyond_hashes(self) -> int:
        tables = sum(p.nbytes for p in self.perms if p is not None) + sum(d.nbytes for d in self.directories)
        return tables + self.ids.nbytes + self.banks.nbytes

    def _plan(self, threshold: int) -> tuple[tuple[int, ...], bool]:
        plan = self._plans.get(threshold)
        if plan is None:
            radii, cost = allocate(self.parts, len(self), threshold)
            plan = (radii, cost >= _SCAN_COST * len(self))
            self._plans[threshold] = plan
        return plan

    def search(self, queries: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query row, row in this segment, distance) for every pair within threshold, each pair once."""
        empty = np.zeros(0, dtype=np.int64)
        if len(self) == 0 or len(queries) == 0:
            return empty, empty.copy(), np.zeros(0, dtype=np.int32)
        radii, scan = self._plan(threshold)
        if scan:
            return brute.range_search(queries, self.words, threshold)
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        # Small query blocks keep every temporary array in cache; larger ones only add memory traffic.
        for q0 in range(0, len(queries), _QUERY_BLOCK):
            block = queries[q0 : q0 + _QUERY_BLOCK]
            for i, radius in enumerate(radii):
                if radius >= 0:
                    qrows, rows, dist = self._probe(block, i, radius, threshold)
                    if len(rows):
                        found.append((qrows + q0, rows, dist))
        if not found:
            return empty, empty.copy(), np.zeros(0, dtype=np.int32)
        qrows = np.concatenate([f[0] for f in found])
        rows = np.concatenate([f[1] for f in found])
        dist = np.concatenate([f[2] for f in found])
        # A pair near in several substrings is found once per substring: keep one.
        _, first = np.unique(qrows * len(self) + rows, return_index=True)
        return qrows[first], rows[first], dist[first]

    def _probe(
        self, queries: np.ndarray, table: int, radius: int, threshold: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        part, perm = self.parts[table], self.perms[table]
        masks = flip_masks(part.length, radius).astype(np.int64)
        # Probes are laid out query by query, so candidates come out grouped by query too.
        probes = (substring(queries, part).astype(np.int64)[:, None] ^ masks[None, :]).ravel()
        starts, counts = self.directories[table].lookup(probes)
        ends = np.cumsum(counts)
        total = int(ends[-1])
        if total == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy(), np.zeros(0, dtype=np.int32)
        slots = np.repeat(starts - (ends - counts), counts)
        slots += np.arange(total, dtype=np.int64)
        rows = slots if perm is None else perm[slots].astype(np.int64)
        per_query = counts.reshape(len(queries), len(masks)).sum(axis=1)
        candidates = np.take(self.words, rows, axis=0)
        candidates ^= np.repeat(queries, per_query, axis=0)
        dist = hamming.popcount_rows(candidates)
        ok = np.flatnonzero(dist <= threshold)
        qrows = np.searchsorted(np.cumsum(per_query), ok, side="right")
        return qrows, rows[ok], dist[ok]

    # --- persistence -------------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"words": self.words, "ids": self.ids, "banks": self.banks}
        arrays["parts"] = np.array([[p.offset, p.length] for p in self.parts], dtype=np.int64)
        for i, (perm, table) in enumerate(zip(self.perms, self.directories, strict=True)):
            if perm is not None:
                arrays[f"perm{i}"] = perm
            arrays[f"base{i}"] = table.base
            arrays[f"rel{i}"] = table.rel
        for name, array in arrays.items():
            np.save(directory / f"{name}.npy", array, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> Segment:
        def get(name: str) -> np.ndarray:
            return np.load(directory / f"{name}.npy", allow_pickle=False)

        parts = tuple(Part(int(o), int(ln)) for o, ln in get("parts"))
        perms: list[np.ndarray | None] = [None] + [get(f"perm{i}") for i in range(1, len(parts))]
        directories = [_Directory(get(f"base{i}"), get(f"rel{i}")) for i in range(len(parts))]
        return cls(get("words"), get("ids"), get("banks"), parts, perms, directories)
