"""The index over a bank of takeback's own default-mode hashes, side by side with the same index over uniform random
hashes of the same size and with FAISS IndexBinaryFlat over the mode bank, in one run.

Why (issue 9's last condition): the matching modes bank about 86 hashes per photo. Flips, crops and grid crops of
one picture are related to each other, and crops of plain regions carry little entropy, so such a bank is not
uniform random, and a multi-index's cost is its candidates per query, which crowded buckets raise. This measures
whether mode hashes crowd the index.

Bank: --images generated "dead leaves" pictures (`robustness_corpus.dead_leaves`, seeded, 256 px, the natural-image
model the robustness suite uses for distractors), each hashed with Meta's `pdqhash` plus
`bank_variants(DEFAULT_MODES)`, in 2 processes. The uniform bank has as many random hashes.
Queries, the same for every index: half are the plain PDQ of a transformed copy of a banked picture (JPEG quality
50, horizontal flip, a 10% centre crop, or half size, chosen at random: what a platform sends for an upload), half
uniform random.
Reported per index: queries/s in batches of --batch with 2 threads, the true pairs found, and for the mode bank
whether takeback's result sets equal FAISS flat's (exhaustive) on the queries FAISS answers.

    python benchmarks/match_modes.py [--images 4000] [--queries 8000] [--faiss-queries 400]
"""

# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported, below)
from __future__ import annotations

import os

# One BLAS thread per hashing process, as `takeback hash`'s workers have: otherwise the two processes' BLAS threads
# oversubscribe the two cores, and spinning BLAS threads take CPU from the other process.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import io
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORKERS, machine_lines
from robustness_corpus import dead_leaves, rng_for

THRESHOLD = 31
SIZE = 256


def _picture(k: int) -> np.ndarray:
    return dead_leaves(rng_for("match-modes", str(k)), SIZE)


def _pdq_hex(rgb: np.ndarray) -> tuple[str, int]:
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def _copy(rgb: np.ndarray, kind: int) -> str:
    """The plain PDQ of one transformed copy: JPEG quality 50, a mirror image, a 10% centre crop or half size."""
    img = Image.fromarray(rgb)
    if kind == 0:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=50)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    elif kind == 1:
        img = ImageOps.mirror(img)
    elif kind == 2:
        cut = SIZE // 20
        img = img.crop((cut, cut, SIZE - cut, SIZE - cut))
    else:
        img = img.resize((SIZE // 2, SIZE // 2), Image.Resampling.LANCZOS)
    return _pdq_hex(np.asarray(img))[0]


def _hash_picture(job: tuple[int, list[int]]) -> tuple[list[str], list[str]]:
    """Picture k's bank hashes (its PDQ when of usable quality, and its default-mode variants) and the plain PDQ of
    the copies asked for."""
    from takeback.signals.variants import DEFAULT_MODES, bank_variants, plane_of_rgb

    k, copies = job
    rgb = _picture(k)
    main, quality = _pdq_hex(rgb)
    variants = [v.hex for v in bank_variants(plane_of_rgb(rgb), DEFAULT_MODES, original=main)]
    return ([main] if quality >= 50 else []) + variants, [_copy(rgb, kind) for kind in copies]


def words_of(values: list[str]) -> np.ndarray:
    from takeback.index import hamming

    return hamming.from_hex(values)


def search_all(index: object, queries: np.ndarray, batch: int) -> tuple[float, set[tuple[int, int]]]:
    index.search(queries[:200], THRESHOLD)  # type: ignore[attr-defined]  # warm-up
    pairs: set[tuple[int, int]] = set()
    start = time.perf_counter()
    for q0 in range(0, len(queries), batch):
        qrows, ids, _banks, _d = index.search(queries[q0 : q0 + batch], THRESHOLD)  # type: ignore[attr-defined]
        pairs.update(zip((qrows + q0).tolist(), ids.tolist(), strict=True))
    return len(queries) / (time.perf_counter() - start), pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4_000)
    parser.add_argument("--queries", type=int, default=8_000)
    parser.add_argument("--faiss-queries", type=int, default=400)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=WORKERS)
    args = parser.parse_args()
    import faiss

    from takeback.index.pdq_index import PdqIndex

    for line in machine_lines(["numpy", "numba", "faiss-cpu", "pdqhash", "Pillow"]):
        print(line)
    faiss.omp_set_num_threads(args.threads)

    planted = args.queries // 2
    sources = np.random.default_rng(5).integers(0, args.images, size=planted)
    kinds = np.random.default_rng(7).integers(0, 4, size=planted)
    wanted: list[list[int]] = [[] for _ in range(args.images)]
    for source, kind in zip(sources.tolist(), kinds.tolist(), strict=True):
        wanted[source].append(kind)
    start = time.perf_counter()
    with ProcessPoolExecutor(WORKERS) as pool:
        hashed = list(pool.map(_hash_picture, enumerate(wanted), chunksize=32))
    hashing = time.perf_counter() - start
    banks = [bank for bank, _ in hashed]
    copy_of = {k: iter(copies) for k, (_, copies) in enumerate(hashed)}
    copies = [next(copy_of[source]) for source in sources.tolist()]
    values = [v for bank in banks for v in bank]
    owner = np.repeat(np.arange(args.images), [len(b) for b in banks])
    unique = len(set(values))
    print(
        f"\nbank: {args.images:,} pictures, {len(values):,} hashes ({len(values) / args.images:.1f} per picture, "
        f"{unique:,} distinct), hashed with their copies' queries in {hashing:.0f} s on {WORKERS} processes"
    )
    mode_bank = words_of(values)
    rng = np.random.default_rng(6)
    uniform_bank = rng.integers(0, 2**64, size=mode_bank.shape, dtype=np.uint64)
    queries = np.concatenate(
        [words_of(copies), rng.integers(0, 2**64, size=(args.queries - planted, 4), dtype=np.uint64)]
    )
    print(f"queries: {len(queries):,} (half plain PDQ of transformed copies, half random), threshold {THRESHOLD}\n")

    rows: list[tuple[str, float, set[tuple[int, int]]]] = []
    for label, bank in (("takeback, mode bank", mode_bank), ("takeback, uniform bank", uniform_bank)):
        index = PdqIndex(threads=args.threads)
        start = time.perf_counter()
        index.add(np.arange(len(bank), dtype=np.int64), bank, np.zeros(len(bank), dtype=np.int64))
        build = time.perf_counter() - start
        qps, pairs = search_all(index, queries, args.batch)
        rows.append((label, qps, pairs))
        print(f"{label}: build {build:.1f} s, {qps:,.0f} queries/s in batches of {args.batch}, {len(pairs):,} pairs")
        if label.endswith("mode bank"):
            found = {q for q, i in pairs if q < planted and owner[i] == sources[q]}
            print(f"  copies matched to their own picture's hashes: {len(found):,} of {planted:,}")
            mode_pairs = pairs
        del index

    flat = faiss.IndexBinaryFlat(256)
    flat.add(np.ascontiguousarray(mode_bank.astype(">u8")).view(np.uint8).reshape(-1, 32))
    subset = np.concatenate([queries[: args.faiss_queries // 2], queries[planted : planted + args.faiss_queries // 2]])
    rows_of_subset = list(range(args.faiss_queries // 2)) + list(range(planted, planted + args.faiss_queries // 2))
    start = time.perf_counter()
    lims, _dist, ids = flat.range_search(
        np.ascontiguousarray(subset.astype(">u8")).view(np.uint8).reshape(-1, 32), THRESHOLD + 1
    )
    flat_qps = len(subset) / (time.perf_counter() - start)
    flat_pairs = {(rows_of_subset[q], int(i)) for q in range(len(subset)) for i in ids[lims[q] : lims[q + 1]]}
    chosen = set(rows_of_subset)
    ours = {(q, i) for q, i in mode_pairs if q in chosen}
    print(
        f"FAISS IndexBinaryFlat, mode bank: {flat_qps:,.1f} queries/s ({len(subset)} queries); "
        f"takeback's result sets identical on them: {ours == flat_pairs} ({len(ours)} vs {len(flat_pairs)} pairs)"
    )
    mode_qps, uniform_qps = rows[0][1], rows[1][1]
    print(
        f"ratio: takeback over the mode bank = {mode_qps / uniform_qps:.2f}x its speed over the uniform bank, "
        f"{mode_qps / flat_qps:.1f}x FAISS flat over the mode bank"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
