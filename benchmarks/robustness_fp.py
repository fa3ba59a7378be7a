"""The robustness suite's false-positive measurement: every bank of one picture against every query of another.

A pair of different pictures is a false positive when some bank hash of one is within the threshold of some query
hash of the other.  With one or two query hashes per picture, all pairs' best distances are computed outright
(numpy, all-pairs Hamming).  The `grid` query side has ~1,150 hashes per picture, so a pool of 2,000 pictures means
~2.4 million query hashes against ~190,000 bank hashes: there takeback's own index (`takeback.index.pdq_index`, exact
range search) finds every pair within the threshold (31) among the pairs whose pictures fall in different groups
(15/16 of them, see `GROUPS`), and the distance distribution is computed outright on a random sample of pairs
(said so in the table).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Columns whose query side has more hashes per picture than this go through the index.
_DIRECT_MAX_QUERIES = 4
#: Pairs per query picture in the exactly computed sample (index columns).
_SAMPLE_PER_PICTURE = 8


@dataclass(frozen=True)
class PoolHashes:
    """One column's hashes over the pool: flat lists with the owning picture of each hash (grouped by owner)."""

    bank: npt.NDArray[np.uint64]  # (n_bank, 4)
    bank_owner: npt.NDArray[np.int64]
    query: npt.NDArray[np.uint64]
    query_owner: npt.NDArray[np.int64]


def words(hexes: Sequence[str]) -> npt.NDArray[np.uint64]:
    raw = b"".join(bytes.fromhex(h) for h in hexes)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hexes), 4)


def distances(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.int32]:
    """All-pairs Hamming distances (len(a), len(b))."""
    out = np.zeros((len(a), len(b)), dtype=np.int32)
    for k in range(4):
        out += np.bitwise_count(a[:, None, k] ^ b[None, :, k]).astype(np.int32)
    return out


def best_per_pair(h: PoolHashes, n: int) -> npt.NDArray[np.int32]:
    """(n, n) best distance of every (bank picture, query picture) pair, all pairs computed."""
    q_starts = np.flatnonzero(np.r_[True, np.diff(h.query_owner) != 0])
    per_bank_hash = np.empty((len(h.bank), n), dtype=np.int32)
    for start in range(0, len(h.bank), 4096):
        d = distances(h.bank[start : start + 4096], h.query)
        per_bank_hash[start : start + 4096] = np.minimum.reduceat(d, q_starts, axis=1)
    b_starts = np.flatnonzero(np.r_[True, np.diff(h.bank_owner) != 0])
    return np.minimum.reduceat(per_bank_hash, b_starts, axis=0)


#: Index searches of the run, for the report: (column, threshold, stored hashes, queries, seconds).
SEARCHES: list[tuple[str, int, int, int, float]] = []


#: Pictures are dealt into this many groups by source; each group's queries search an index of the other groups'
#: banks (a picture's queries would otherwise find hundreds of its own bank hashes, and its tiles', and the search
#: would be spent on pairs that are not counted).  Pairs of two sources in the same group are left out: 1/GROUPS.
GROUPS = 16


def pairs_within(
    h: PoolHashes, threshold: int, source: npt.NDArray[np.int64], column: str = ""
) -> tuple[set[tuple[int, int]], npt.NDArray[np.bool_]]:
    """(bank picture, query picture) pairs with some hash pair within `threshold`, by takeback's exact index, and
    the (n, n) mask of the pairs that were searched (different groups)."""
    from takeback.index.pdq_index import PdqIndex

    group = source % GROUPS
    found: set[tuple[int, int]] = set()
    started = time.perf_counter()
    bank_group, query_group = group[h.bank_owner], group[h.query_owner]
    for g in range(GROUPS):
        stored = np.flatnonzero(bank_group != g)
        asked = np.flatnonzero(query_group == g)
        if not len(stored) or not len(asked):
            continue
        index = PdqIndex(threads=2)
        index.add(stored.astype(np.int64), h.bank[stored], np.zeros(len(stored), dtype=np.int64))
        for start in range(0, len(asked), 65536):
            rows = asked[start : start + 65536]
            qi, ids, _banks, _dist = index.search(h.query[rows], threshold, None)
            found |= set(zip(h.bank_owner[ids].tolist(), h.query_owner[rows[qi]].tolist(), strict=True))
        index.close()
    SEARCHES.append((column, threshold, len(h.bank), len(h.query), time.perf_counter() - started))
    searched = group[:, None] != group[None, :]
    return found, searched


def search_lines() -> list[str]:
    """How fast the index answered the pool's query hashes (a case-sized index of clustered variant hashes)."""
    return [
        f"- {column}: {queries:,} query hashes against {stored:,} bank hashes at threshold {t}: {seconds:.1f} s, "
        f"{queries / max(seconds, 1e-9):,.0f} queries/s (2 threads)"
        for column, t, stored, queries, seconds in SEARCHES
    ]


def sampled_best(h: PoolHashes, n: int, different: npt.NDArray[np.bool_], seed: int) -> npt.NDArray[np.int32]:
    """Best distances of a random sample of counted pairs, each computed outright."""
    rng = np.random.default_rng(seed)
    b_bounds = np.searchsorted(h.bank_owner, np.arange(n + 1))
    q_bounds = np.searchsorted(h.query_owner, np.arange(n + 1))
    out = []
    for q in range(n):
        candidates = np.flatnonzero(different[:, q])
        if not len(candidates):
            continue
        qw = h.query[q_bounds[q] : q_bounds[q + 1]]
        for b in rng.choice(candidates, size=min(_SAMPLE_PER_PICTURE, len(candidates)), replace=False):
            out.append(int(distances(h.bank[b_bounds[b] : b_bounds[b + 1]], qw).min()))
    return np.array(out, dtype=np.int32)


def column_row(
    column: str, h: PoolHashes, n: int, source: npt.NDArray[np.int64], threshold: int
) -> str:
    """One row of the false-positive table (`source`: each picture's source; pairs of one source are not counted)."""
    different = source[:, None] != source[None, :]
    pairs = int(different.sum())
    per_bank = len(h.bank) / n
    per_query = len(h.query) / n
    if per_query <= _DIRECT_MAX_QUERIES:
        values = best_per_pair(h, n)[different]
        fp = int((values <= threshold).sum())
        within = {40: int((values <= 40).sum()), 50: int((values <= 50).sum()), 63: int((values <= 63).sum())}
        note = ""
    else:
        hits, searched = pairs_within(h, threshold, source, column)
        fp = sum(1 for b, q in hits if different[b, q])
        pairs = int((different & searched).sum())
        within = {}
        values = sampled_best(h, n, different, seed=len(h.query))
        note = f" (sample of {len(values):,} pairs)"
    q = np.quantile(values, [1e-4, 1e-3, 1e-2])
    smallest = ", ".join(str(int(v)) for v in np.sort(values)[:5])
    cells = " | ".join(str(within[t]) if t in within else "—" for t in (40, 50, 63))
    searched_note = f" of {pairs:,} pairs searched" if per_query > _DIRECT_MAX_QUERIES else ""
    return (
        f"| {column} | {per_bank:.1f} | {per_query:.2f} | {fp}{searched_note} | {fp / pairs:.1e} | {cells} | "
        f"{smallest}{note} | {q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f}{note} |"
    )
