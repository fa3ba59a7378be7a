"""PDQ range search at threshold 31: takeback's index against FAISS IndexBinaryFlat and IndexBinaryMultiHash.

Stored sets (default 10 million hashes each):
  uniform  - independent random 256-bit hashes;
  skewed   - clusters of 5 near-duplicates (about 16 bits from a centre) plus 5% low-entropy hashes (a quarter
             of the bits set), which crowd MIH buckets: the adversarial case for substring indexes.
Queries: half planted (a stored hash with 0-31 random bits flipped, so at least one true neighbour exists), half
random misses. Reported per index: build seconds, resident memory added, queries/s, recall of the planted pairs,
and an exact comparison of full result sets against FAISS flat (exhaustive) on a shared subset of queries.

    python benchmarks/match.py [--n 10000000] [--queries 20000] [--faiss-queries 200] [--threads 2]

FAISS is slow enough here that it answers only --faiss-queries queries; queries/s are rates, so the ratios hold.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_lines

THRESHOLD = 31


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def random_words(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)


def sparse_mask(rng: np.random.Generator, n: int, ands: int) -> np.ndarray:
    """Random words with each bit set with probability 2**-ands (AND of `ands` random words)."""
    mask = random_words(rng, n)
    for _ in range(ands - 1):
        mask &= random_words(rng, n)
    return mask


def make_dataset(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return random_words(rng, n)
    low = n // 20
    per_cluster = 5
    centres = random_words(rng, (n - low) // per_cluster + 1)
    members = np.repeat(centres, per_cluster, axis=0)[: n - low]
    members ^= sparse_mask(rng, len(members), 4)  # ~16 bits from the centre
    low_entropy = sparse_mask(rng, low, 2)  # each bit set with p=1/4: crowded substring buckets
    data = np.concatenate([members, low_entropy])
    return data[rng.permutation(len(data))]


def plant_queries(rng: np.random.Generator, data: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(queries, source row or -1): half within 0..31 bits of a stored hash, half random."""
    planted = count // 2
    sources = rng.integers(0, len(data), size=planted)
    queries = data[sources].copy()
    bits = np.unpackbits(queries.astype(">u8").view(np.uint8).reshape(-1, 32), axis=1)
    for row in range(planted):
        flips = rng.choice(256, size=int(rng.integers(0, THRESHOLD + 1)), replace=False)
        bits[row, flips] ^= 1
    queries = np.packbits(bits, axis=1).view(">u8").astype(np.uint64)
    misses = random_words(rng, count - planted)
    return np.concatenate([queries, misses]), np.concatenate([sources, np.full(count - planted, -1)])


def as_bytes(words: np.ndarray) -> np.ndarray:
    """FAISS wants (n, 32) uint8 in the hash's byte order."""
    return np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(-1, 32)


def pairs_from_lims(lims: np.ndarray, ids: np.ndarray) -> set[tuple[int, int]]:
    return {(q, int(i)) for q in range(len(lims) - 1) for i in ids[lims[q] : lims[q + 1]]}


def recall(pairs: set[tuple[int, int]], sources: np.ndarray, rows: range) -> float:
    planted = [(q - rows.start, int(sources[q])) for q in rows if sources[q] >= 0]
    return sum(p in pairs for p in planted) / max(1, len(planted))


def run(kind: str, args: argparse.Namespace) -> list[str]:
    import faiss

    from takeback.index.pdq_index import PdqIndex

    faiss.omp_set_num_threads(args.threads)
    data = make_dataset(kind, args.n, seed=1 if kind == "uniform" else 2)
    rng = np.random.default_rng(3)
    queries, sources = plant_queries(rng, data, args.queries)
    ids = np.arange(len(data), dtype=np.int64)
    lines = [f"## {kind}: {len(data):,} stored hashes, {len(queries):,} queries (half planted at 0-31 bits)"]

    # --- takeback ---------------------------------------------------------------------------------------------
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    index = PdqIndex(threads=args.threads)
    index.add(ids, data, np.zeros(len(data), dtype=np.int64))
    build = time.perf_counter() - start
    added = rss_bytes() - before
    index.search(queries[:200], THRESHOLD)  # warm-up
    results: list[tuple[np.ndarray, np.ndarray]] = []
    start = time.perf_counter()
    for q0 in range(0, len(queries), args.batch):
        qrows, found, _banks, _d = index.search(queries[q0 : q0 + args.batch], THRESHOLD)
        results.append((qrows + q0, found))
    elapsed = time.perf_counter() - start
    tb_qps = len(queries) / elapsed
    tb_pairs = {(int(q), int(i)) for qr, fd in results for q, i in zip(qr, fd, strict=True)}
    tb_recall = recall(tb_pairs, sources, range(len(queries)))
    single = queries[: min(2000, len(queries))]
    start = time.perf_counter()
    for row in single:
        index.search(row[None, :], THRESHOLD)
    single_qps = len(single) / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory(prefix="takeback-snapshot-") as tmp:
        start = time.perf_counter()
        index.save(Path(tmp) / "pdq")
        saved = time.perf_counter() - start
        start = time.perf_counter()
        restored = PdqIndex.load(Path(tmp) / "pdq", threads=args.threads)
        loaded = time.perf_counter() - start
        same = len(restored) == len(index)
        check = queries[:500]
        answers = zip(restored.search(check, THRESHOLD), index.search(check, THRESHOLD), strict=True)
        same = same and all((a == b).all() for a, b in answers)
        del restored
    lines.append(
        f"takeback snapshot: save {saved:.1f} s, load {loaded:.1f} s (answers identical after load: {same})"
    )
    lines.append(
        f"takeback MIH: build {build:.1f} s, memory +{added / 2**20:,.0f} MiB "
        f"({index.nbytes_beyond_hashes / len(data):.1f} B/hash beyond the 32-byte hash, segments "
        f"{index.segment_sizes}), {tb_qps:,.0f} queries/s in batches of {args.batch} "
        f"({single_qps:,.0f}/s one at a time), planted recall {tb_recall:.4%}, "
        f"{len(tb_pairs):,} pairs found"
    )

    # --- FAISS flat (exhaustive: also the exact reference for the subset) -------------------------------------
    half = args.faiss_queries // 2
    subset = np.concatenate([np.arange(half), len(queries) // 2 + np.arange(args.faiss_queries - half)])
    fq = as_bytes(queries[subset])
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    flat = faiss.IndexBinaryFlat(256)
    flat.add(as_bytes(data))
    flat_build = time.perf_counter() - start
    flat_mem = rss_bytes() - before
    start = time.perf_counter()
    lims, _dist, found = flat.range_search(fq, THRESHOLD + 1)  # FAISS's radius is exclusive
    flat_qps = len(fq) / (time.perf_counter() - start)
    truth = pairs_from_lims(lims, found)
    flat_recall = recall(truth, sources[subset], range(len(subset)))
    del flat
    tb_subset = {(int(np.searchsorted(subset, q)), i) for q, i in tb_pairs if q in set(subset.tolist())}
    exact_agree = tb_subset == truth
    lines.append(
        f"FAISS IndexBinaryFlat: build {flat_build:.1f} s, memory +{flat_mem / 2**20:,.0f} MiB, "
        f"{flat_qps:,.1f} queries/s ({len(fq)} queries), planted recall {flat_recall:.4%}"
    )
    lines.append(
        f"takeback vs FAISS flat on those {len(fq)} queries: identical result sets: {exact_agree} "
        f"({len(tb_subset)} vs {len(truth)} pairs)"
    )

    # --- FAISS multi-index hashing (HMA's layout: 16 substrings of 16 bits, 1 flip so radius 31 is exact) ------
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    multi = faiss.IndexBinaryMultiHash(256, 16, 16)
    multi.nflip = THRESHOLD // 16
    multi.add(as_bytes(data))
    multi_build = time.perf_counter() - start
    multi_mem = rss_bytes() - before
    start = time.perf_counter()
    lims, _dist, found = multi.range_search(fq, THRESHOLD + 1)
    multi_qps = len(fq) / (time.perf_counter() - start)
    multi_pairs = pairs_from_lims(lims, found)
    del multi
    lines.append(
        f"FAISS IndexBinaryMultiHash(16x16, nflip=1): build {multi_build:.1f} s, memory +{multi_mem / 2**20:,.0f} MiB, "
        f"{multi_qps:,.1f} queries/s ({len(fq)} queries), planted recall "
        f"{recall(multi_pairs, sources[subset], range(len(subset))):.4%}, identical to flat: {multi_pairs == truth}"
    )
    lines.append(
        f"ratio: takeback {tb_qps / flat_qps:,.1f}x FAISS flat, {tb_qps / multi_qps:,.1f}x FAISS multi-hash "
        f"(queries/s, {args.threads} threads each)"
    )
    index.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--faiss-queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sets", default="uniform,skewed")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    print("\n".join(machine_lines(["numpy", "numba", "faiss-cpu"])))
    for kind in args.sets.split(","):
        for line in run(kind, args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
