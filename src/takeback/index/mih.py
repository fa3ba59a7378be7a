"""Multi-index hashing: exact Hamming range search over one immutable set of 256-bit hashes.

The 256 bits are cut into m substrings of b ≈ log2(n) bits and every stored hash is filed under each substring in a
bucket table. Pigeonhole (the generalised form): if two hashes are within r bits and each substring i is given a
radius τ_i with Σ(τ_i + 1) ≥ r + 1, then at least one substring i differs in at most τ_i bits, because otherwise the
total would be at least Σ(τ_i + 1) > r. So probing every bucket within τ_i of the query's substring i, for every i,
finds every true neighbour: 100% recall by construction, and each candidate is then checked on all 256 bits.

The radii are chosen per query threshold by a cost model (probes are cheap, candidates dearer), and when no
allocation beats scanning everything (very large thresholds) the segment is scanned instead.

Memory per stored hash, beyond the 32-byte hash: one uint32 position per table (its rows in bucket order), a
compressed bucket directory (about one byte per bucket, with b chosen so buckets ≈ hashes), a uint32 (or int64 when
needed) id and an int32 bank: about 63 bytes at 10 million hashes.
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

from takeback.index import brute, hamming, kernels

#: Relative cost of checking one candidate vs probing one bucket (measured: a candidate costs a row gather, a
#: query gather, xor, popcount and a sum; a probe costs two directory gathers and a subtraction).
_CANDIDATE_COST = 2.0
#: Relative cost of comparing one stored hash in a linear scan (vectorised, sequential memory).
_SCAN_COST = 0.35
#: The bucket directory stores absolute offsets once per block of this many buckets, and small relative ones
#: for each bucket, which is what keeps it near one byte per bucket.
_BLOCK_SHIFT = 5
#: Candidate buffer places beyond 1.5x the expected count of one table (a crowded table needs a re-run).
CANDIDATE_SLACK = 4096
#: Segments at least this large build their tables in parallel threads.
_PARALLEL_BUILD = 1 << 18
_CACHE_LINE = 64
MIN_BITS = 8
MAX_BITS = 24
#: Bytes per stored hash (beyond the hash) the layout may use, and the threshold it is tuned for.
MEMORY_BUDGET = 63.0
BUDGET_FROM = 1 << 18
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
    """Modelled bytes per stored hash beyond the hash: a uint32 position per table, ~1 byte per bucket
    (plus the block bases), a uint32 id and an int32 bank."""
    buckets = sum(1 << p.length for p in parts)
    return 4 * len(parts) + buckets * (1 + 4 / (1 << _BLOCK_SHIFT) + 1 / (1 << _BLOCK_SHIFT)) / n + 8


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
            # Below 262,144 hashes the whole index is at most a few tens of MB: speed decides alone.
            over = max(0.0, memory - budget) if n >= BUDGET_FROM else 0.0
            key = (over, cost, parts)
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


def _directory(keys: np.ndarray, bits: int, first_position: int) -> tuple[np.ndarray, np.ndarray]:
    """(base, rel) for one table: where each bucket's entries start and how many there are, in about one byte per
    bucket.

    Buckets are grouped in blocks of 2^s. `base` holds each block's absolute start (already offset by the table's
    place in the shared permutation array); `rel` holds, per block, the 2^s bucket starts relative to the block
    plus one closing entry, so a bucket's count is the difference of two neighbouring entries (one cache line) and
    only its start needs the block base.
    """
    width = 1 << _BLOCK_SHIFT
    blocks = max(1, (1 << bits) >> _BLOCK_SHIFT)
    counts = np.bincount(keys, minlength=blocks * width).reshape(blocks, width)
    rel = np.zeros((blocks, width + 1), dtype=np.int64)
    np.cumsum(counts, axis=1, out=rel[:, 1:])
    base = np.full(blocks, first_position, dtype=np.int64)
    base[1:] += np.cumsum(rel[:-1, -1])
    return base, rel.ravel()


def aligned_rows(words: np.ndarray) -> np.ndarray:
    """`words` as C-contiguous uint64 rows starting on a cache-line boundary (a copy only when needed).

    Why: a 32-byte hash at an address that is 16 or 48 modulo 64 straddles two cache lines, and numpy's allocator
    (and np.load) give 16-byte alignment, so every other stored hash cost the verify loop two memory reads instead
    of one.
    """
    words = np.ascontiguousarray(words, dtype=np.uint64)
    if words.ctypes.data % _CACHE_LINE == 0:
        return words
    raw = np.empty(words.nbytes + _CACHE_LINE, dtype=np.uint8)
    skip = -raw.ctypes.data % _CACHE_LINE
    out = raw[skip : skip + words.nbytes].view(np.uint64).reshape(words.shape)
    out[...] = words
    return out


def part_bits(parts: tuple[Part, ...]) -> np.ndarray:
    """(tables, 4) uint64: each substring's bits as a mask over a hash's four words (bit 0 = MSB of word 0)."""
    out = np.zeros((len(parts), hamming.WORDS), dtype=np.uint64)
    for t, part in enumerate(parts):
        value = ((1 << part.length) - 1) << (hamming.BITS - part.offset - part.length)
        for w in range(hamming.WORDS):
            out[t, w] = (value >> (64 * (hamming.WORDS - 1 - w))) & ((1 << 64) - 1)
    return out


def wide_flag(base: np.ndarray) -> int:
    """The bit of a block base that marks a crowded block (whose bucket starts live in `wide`): the top bit of the
    base's type, which no position reaches (bases are uint32 only while positions stay below 2^31)."""
    return 1 << 31 if base.dtype == np.uint32 else 1 << 62


def _base_type(positions: int, wide_entries: int = 0) -> type[np.unsignedinteger] | type[np.signedinteger]:
    """uint32 while every position and every offset into `wide` stays below the flag bit 2^31, else int64."""
    return np.uint32 if positions < 1 << 31 and wide_entries < 1 << 31 else np.int64


def _spill_crowded(base: np.ndarray, rel: np.ndarray, positions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base, rel, wide): blocks holding more than 255 entries moved out of the one-byte `rel` into `wide`.

    Why: a single crowded block (low-entropy hashes all share a few substring values, e.g. all-zero) would
    otherwise widen `rel` to two bytes for every bucket of every table: measured 72 instead of 63 bytes per hash on
    the benchmark's skewed set. A crowded block's base holds `wide_flag | offset`, and its 2^s + 1 absolute bucket
    starts sit at `wide[offset:]`; its `rel` entries are zero and unused.
    """
    width = (1 << _BLOCK_SHIFT) + 1
    blocks = rel.reshape(-1, width)
    crowded = np.flatnonzero(blocks[:, -1] > np.iinfo(np.uint8).max)
    base = base.astype(_base_type(positions, len(crowded) * width))
    wide = (base[crowded, None].astype(np.int64) + blocks[crowded]).ravel()
    base[crowded] = wide_flag(base) | (np.arange(len(crowded), dtype=np.int64) * width)
    blocks[crowded] = 0
    return base, _narrow(blocks.ravel()), wide.astype(np.uint32 if positions < 1 << 32 else np.int64)


def _narrow(values: np.ndarray) -> np.ndarray:
    peak = int(values.max()) if len(values) else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if peak <= np.iinfo(dtype).max:
            return values.astype(dtype)
    return values.astype(np.int64)


@dataclass(slots=True)
class _Plan:
    """How one threshold is searched: a full scan when that is cheaper, else every table's flip masks back to back
    (`masks[mask_starts[t]:mask_starts[t + 1]]` for table t, empty for a table the radii skip)."""

    scan: bool
    masks: np.ndarray
    mask_starts: np.ndarray
    #: each table's probe radius (-1 when skipped): the kernel reports a pair from the first table that reaches it
    radii: np.ndarray
    #: expected candidates of one query in its widest table: sizes the kernel's candidate buffer
    table_candidates: float


class Segment:
    """An immutable MIH over n hashes.

    All tables share three flat arrays, so one call of the compiled search (`kernels.mih_search`) serves every
    table: `perm` holds each table's rows in bucket order, back to back; `rel` and `base` hold the bucket
    directories, back to back, addressed through per-table offsets.
    """

    def __init__(
        self,
        words: np.ndarray,
        ids: np.ndarray,
        banks: np.ndarray,
        parts: tuple[Part, ...],
        perm: np.ndarray,
        rel: np.ndarray,
        base: np.ndarray,
        rel_offsets: np.ndarray,
        base_offsets: np.ndarray,
        wide: np.ndarray | None = None,
    ) -> None:
        self.words = words
        self.ids = ids
        self.banks = banks
        self.parts = parts
        self.perm = perm
        self.rel = rel
        self.rel_offsets = rel_offsets
        self.base_offsets = base_offsets
        # Snapshots from before crowded blocks were spilled may hold narrower bases, or uint32 ones whose values
        # reach the flag bit: give them the type `wide_flag` expects.
        kind = _base_type(len(perm), 0 if wide is None else len(wide))
        if base.dtype != np.int64 and base.dtype != kind:
            base = base.astype(kind)
        self.base = base
        self.wide = np.zeros(1, dtype=np.uint32) if wide is None or len(wide) == 0 else wide
        self._plans: dict[int, _Plan] = {}
        self._part_bits = part_bits(parts)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, words: np.ndarray, ids: np.ndarray, banks: np.ndarray) -> Segment:
        n = len(ids)
        parts = layout_for(n)
        words = aligned_rows(words)
        ids = np.asarray(ids)
        ids = ids.astype(np.uint32 if n == 0 or (ids.min() >= 0 and ids.max() < 1 << 32) else np.int64)
        banks = np.asarray(banks).astype(np.int32)
        perm = np.empty(len(parts) * n, dtype=np.uint32 if n < 1 << 32 else np.int64)

        def table(t: int) -> tuple[np.ndarray, np.ndarray]:
            keys = substring(words, parts[t])
            perm[t * n : (t + 1) * n] = np.argsort(keys)
            return _directory(keys, parts[t].length, t * n)

        # numpy's sort releases the GIL, so large segments build their tables on every core
        threads = min(len(parts), os.cpu_count() or 1) if n >= _PARALLEL_BUILD else 1
        if threads > 1:
            with ThreadPoolExecutor(threads, thread_name_prefix="mih-build") as pool:
                directories = list(pool.map(table, range(len(parts))))
        else:
            directories = [table(t) for t in range(len(parts))]
        bases, rels = zip(*directories, strict=True)
        rel_offsets = np.cumsum([0, *(len(r) for r in rels[:-1])]).astype(np.int64)
        base_offsets = np.cumsum([0, *(len(b) for b in bases[:-1])]).astype(np.int64)
        assert (rel_offsets == base_offsets * ((1 << _BLOCK_SHIFT) + 1)).all()  # block g's rel starts at g * 33
        base, rel, wide = _spill_crowded(np.concatenate(bases), np.concatenate(rels), len(perm))
        return cls(words, ids, banks, parts, perm, rel, base, rel_offsets, base_offsets, wide)

    @property
    def nbytes_beyond_hashes(self) -> int:
        arrays = (self.perm, self.rel, self.base, self.wide, self.ids, self.banks)
        return sum(a.nbytes for a in arrays)

    def _plan(self, threshold: int) -> _Plan:
        plan = self._plans.get(threshold)
        if plan is None:
            radii, cost = allocate(self.parts, len(self), threshold)
            per_table = [
                flip_masks(part.length, radius) if radius >= 0 else np.zeros(0, dtype=np.uint32)
                for part, radius in zip(self.parts, radii, strict=True)
            ]
            plan = _Plan(
                scan=cost >= _SCAN_COST * len(self),
                masks=np.concatenate(per_table).astype(np.int64),
                mask_starts=np.cumsum([0, *(len(m) for m in per_table)]).astype(np.int64),
                radii=np.array(radii, dtype=np.int64),
                table_candidates=max(
                    len(m) * max(1.0, len(self) / (1 << p.length)) for m, p in zip(per_table, self.parts, strict=True)
                ),
            )
            self._plans[threshold] = plan
        return plan

    def _keys(self, queries: np.ndarray) -> np.ndarray:
        """(q, m) substring keys, int64."""
        if len(queries) <= 4:  # plain integers beat a dozen tiny numpy calls
            out = np.empty((len(queries), len(self.parts)), dtype=np.int64)
            raw = queries.astype(">u8").tobytes()
            for row in range(len(queries)):
                value = int.from_bytes(raw[row * 32 : row * 32 + 32], "big")
                for t, part in enumerate(self.parts):
                    out[row, t] = (value >> (hamming.BITS - part.offset - part.length)) & ((1 << part.length) - 1)
            return out
        return np.stack([substring(queries, part) for part in self.parts], axis=1).astype(np.int64)

    def search(self, queries: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query row, row in this segment, distance) for every pair within threshold, each pair once."""
        empty = np.zeros(0, dtype=np.int64)
        if len(self) == 0 or len(queries) == 0:
            return empty, empty.copy(), np.zeros(0, dtype=np.int32)
        plan = self._plan(threshold)
        if plan.scan:
            return brute.range_search(queries, self.words, threshold)
        queries = np.ascontiguousarray(queries, dtype=np.uint64)
        keys = self._keys(queries)
        # Room for the expected candidates of one table (with slack) and for a few hits per query; a crowded
        # bucket or many near-duplicates can need more, and then the kernel says how much and runs again.
        cand_room = int(len(queries) * plan.table_candidates * 1.5) + CANDIDATE_SLACK
        hit_room = 4 * len(queries) + 64
        while True:
            cand_rows = np.empty(cand_room, dtype=self.perm.dtype)
            qrows = np.empty(hit_room, dtype=np.int64)
            rows = np.empty(hit_room, dtype=np.int64)
            dist = np.empty(hit_room, dtype=np.int32)
            hits, most = kernels.mih_search(
                self.words,
                queries,
                keys,
                self.perm,
                self.rel,
                self.base,
                self.rel_offsets,
                self.base_offsets,
                self.wide,
                wide_flag(self.base),
                plan.masks,
                plan.mask_starts,
                self._part_bits,
                plan.radii,
                _BLOCK_SHIFT,
                threshold,
                cand_rows,
                qrows,
                rows,
                dist,
            )
            if most <= cand_room and hits <= hit_room:
                break
            cand_room, hit_room = max(cand_room, most), max(hit_room, hits)
        return qrows[:hits], rows[:hits], dist[:hits]

    # --- persistence -------------------------------------------------------------------------------------------
    _ARRAYS = ("words", "ids", "banks", "perm", "rel", "base", "rel_offsets", "base_offsets", "wide")

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in self._ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self, name), allow_pickle=False)
        parts = np.array([[p.offset, p.length] for p in self.parts], dtype=np.int64)
        np.save(directory / "parts.npy", parts, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> Segment:
        def get(name: str) -> np.ndarray:
            return np.load(directory / f"{name}.npy", allow_pickle=False)

        parts = tuple(Part(int(o), int(ln)) for o, ln in get("parts"))
        words, ids, banks, perm, rel, base, rel_offsets, base_offsets = (get(name) for name in cls._ARRAYS[:-1])
        wide = get("wide") if (directory / "wide.npy").exists() else None  # older snapshots have none
        return cls(aligned_rows(words), ids, banks, parts, perm, rel, base, rel_offsets, base_offsets, wide)
