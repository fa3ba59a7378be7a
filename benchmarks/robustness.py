"""Robustness suite: which transformed copies plain PDQ / vPDQ catch, and which takeback's matching modes add.

Photos: every suitable bundled scikit-image photo (plus `--photos DIR`), each transformed by a fixed, seeded list
(recompression, resizing, crops, flips, rotations, borders, watermarks, colour, blur, noise, a screenshot-like
re-render, combinations).  A copy is *found* when some bank hash of its original is within 31 bits of some query
hash of the copy.  The bank side is what `takeback hash` computes on the device; the query side is what a platform
computes on an upload (plain PDQ, the reference `pdqhash`), plus, for the modes that hash at query time, what
takeback's own matcher adds.  False positives: every bank of one picture against every query of a *different*
picture, over a pool of the bundled photos, non-overlapping tiles of them, and generated natural-looking images.

Photos whose PDQ quality is below 50 (the floor below which ThreatExchange, HMA and takeback's matchers ignore a
hash) stay in the tables but are counted apart from the target groups, and listed.

Video: short clips made from the bundled photos (Ken-Burns pans, PyAV), transformed (re-encode, trim, resize, flip,
letterbox, speed change), matched with takeback's vPDQ rule (`takeback.index`, the anchor) and with the modes.

The pieces: `robustness_corpus.py` (photos, transformations), `robustness_fp.py` (false positives),
`robustness_video.py` (video); this file hashes, tabulates and prints.

    python benchmarks/robustness.py                # default corpus, ~1M distractor pairs, a few minutes on 2 cores
    python benchmarks/robustness.py --full         # bigger distractor pool and more clips
    python benchmarks/robustness.py --photos DIR   # add your own (benign!) photos to the corpus
    python benchmarks/robustness.py --smoke        # a few photos, tiny pool: checks the script runs
"""

# ruff: noqa: E402  (the BLAS thread count must be set before numpy is imported, below)
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# One BLAS thread, as each of `takeback hash`'s worker processes has (protect.batch): the per-photo costs below are
# then what a worker pays, and a busy machine's cores are not oversubscribed (BLAS threads spin when they are).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from PIL import Image

import robustness_fp as fp
from _common import machine_lines
from robustness_corpus import (
    PHOTO_NAMES,
    Rgb,
    bundled_photo,
    dead_leaves,
    folder_photos,
    rng_for,
    tiles,
    transformations,
)
from robustness_video import run_video
from takeback.signals.dihedral import NAMES as DIHEDRAL_NAMES
from takeback.signals.variants import (
    DEFAULT_MODES,
    DEFAULT_QUERY_MODES,
    MIN_VARIANT_QUALITY,
    Mode,
    bank_variants,
    plane_of_rgb,
    query_variants,
)

__all__ = ["min_distance", "rng_for", "transformations"]

THRESHOLD = 31
#: Photos below this PDQ quality are counted apart from the targets (ThreatExchange's and HMA's floor).
LOW_QUALITY = MIN_VARIANT_QUALITY


# --- hashing both sides ---------------------------------------------------------------------------------------------
def reference_pdq(rgb: Rgb) -> tuple[str, int]:
    """The platform's hash: Meta's reference (pdqhash)."""
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def reference_dihedral(rgb: Rgb) -> list[str]:
    import pdqhash

    hashes, _q = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [np.packbits(np.asarray(b, dtype=np.uint8)).tobytes().hex() for b in hashes]


#: "platform" is the default bank queried with plain PDQ only: what a platform (or HMA) matching an upload gets.
COLUMNS: tuple[str, ...] = (
    "pdq",
    "dihedral (pdqhash trick)",
    "dihedral",
    "borders",
    "crops",
    "grid",
    "smooth",
    "default",
    "platform",
)
MODE_COLUMNS: tuple[str, ...] = ("dihedral", "borders", "crops", "grid", "smooth", "default")
BANK_MODES: dict[str, frozenset[Mode]] = {
    "dihedral": frozenset({Mode.DIHEDRAL}),
    "borders": frozenset({Mode.BORDERS}),
    "crops": frozenset({Mode.CROPS}),
    "grid": frozenset({Mode.GRID}),
    "smooth": frozenset({Mode.SMOOTH}),
    "default": DEFAULT_MODES,
    "platform": DEFAULT_MODES,
}
QUERY_MODES: dict[str, frozenset[Mode]] = {
    "borders": frozenset({Mode.BORDERS}),
    "grid": frozenset({Mode.GRID}),
    "smooth": frozenset({Mode.SMOOTH}),
    "default": DEFAULT_QUERY_MODES,
}
_DIHEDRAL_SET = frozenset(DIHEDRAL_NAMES)


@dataclass
class Hashed:
    """Bank and query hash lists of one picture, per column."""

    bank: dict[str, list[str]] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    quality: int = 0


def _mode_of(variant_name: str) -> Mode:
    if variant_name in _DIHEDRAL_SET:
        return Mode.DIHEDRAL
    if variant_name in ("border", "smooth"):
        return Mode(variant_name.replace("border", "borders"))
    return Mode.GRID if variant_name.startswith("grid_") else Mode.CROPS


def bank_side(rgb: Rgb, timings: dict[str, list[float]] | None = None) -> Hashed:
    """Bank hashes per column.  With `timings`, each mode is computed on its own (to time it); without, once for
    all modes and split by variant name (the same hashes, less work for the distractor pool)."""
    main, quality = reference_pdq(rgb)
    out = Hashed(quality=quality)
    out.bank["pdq"] = [main]
    out.bank["dihedral (pdqhash trick)"] = reference_dihedral(rgb)
    plane = plane_of_rgb(rgb)
    if timings is None:
        every = bank_variants(plane, frozenset(Mode), original=main)
        for column, modes in BANK_MODES.items():
            out.bank[column] = [main] + [v.hex for v in every if _mode_of(v.name) in modes]
        return out
    for column in MODE_COLUMNS:
        start = time.perf_counter()
        extra = bank_variants(plane, BANK_MODES[column], original=main)
        timings.setdefault(column, []).append(time.perf_counter() - start)
        out.bank[column] = [main] + [v.hex for v in extra]
    out.bank["platform"] = out.bank["default"]
    return out


def query_side(rgb: Rgb, timings: dict[str, list[float]] | None = None) -> Hashed:
    """Query hashes per column: the platform's plain PDQ, plus takeback's own query variants for the modes that
    have any (each mode timed on its own)."""
    main, quality = reference_pdq(rgb)
    out = Hashed(quality=quality)
    plane = plane_of_rgb(rgb)
    if timings is None:
        # Without a border every mode's query hashes are a part of the default's: compute those once (the pool).
        every = query_variants(plane, DEFAULT_QUERY_MODES)
        if not any(v.name == "border" for v in every):
            for column in COLUMNS:
                modes = QUERY_MODES.get(column, frozenset())
                out.query[column] = [main, *(v.hex for v in every if _mode_of(v.name) in modes)]
            return out
    for column in COLUMNS:
        modes = QUERY_MODES.get(column)
        if modes is None:
            out.query[column] = [main]
            continue
        start = time.perf_counter()
        extra = query_variants(plane, modes)
        if timings is not None:
            timings.setdefault(column, []).append(time.perf_counter() - start)
        out.query[column] = [main, *(v.hex for v in extra)]
    return out


def min_distance(bank: list[str], query: list[str]) -> int:
    return int(fp.distances(fp.words(bank), fp.words(query)).min())


# --- photo tables ---------------------------------------------------------------------------------------------------
TARGETS = {
    "recompression": 0.99,
    "resize": 0.99,
    "colour": 0.99,
    "blur": 0.99,
    "noise": 0.99,
    "border": 0.99,
    "watermark": 0.99,
    "flip": 1.0,
    "rotate 90": 1.0,
    "crop <=20%": 0.90,
}


def run_photos(corpus: list[tuple[str, Rgb]]) -> tuple[list[str], dict[str, Hashed], dict[str, list[float]]]:
    specs = transformations()
    timings: dict[str, list[float]] = {}
    banks = {name: bank_side(rgb, timings) for name, rgb in corpus}
    low = sorted(name for name, _ in corpus if banks[name].quality < LOW_QUALITY)
    counted = [name for name, _ in corpus if name not in low]
    found: dict[tuple[str, str], dict[str, int]] = {}  # (spec, photo) -> column -> min distance
    query_timings: dict[str, list[float]] = {}
    query_counts: dict[str, list[int]] = {}
    for name, rgb in corpus:
        img = Image.fromarray(rgb)
        for spec in specs:
            copy = np.asarray(spec.apply(img, rng_for(name, spec.name)).convert("RGB"))
            q = query_side(copy, query_timings)
            for column in QUERY_MODES:
                query_counts.setdefault(column, []).append(len(q.query[column]))
            found[(spec.name, name)] = {c: min_distance(banks[name].bank[c], q.query[c]) for c in COLUMNS}
    low_text = ", ".join(f"{n} (quality {banks[n].quality})" for n in low) or "none"
    lines = [
        f"Photos: {len(corpus)}; transformations: {len(specs)}; copies: {len(corpus) * len(specs)}. "
        f"**Rule: photos whose own PDQ quality is below {LOW_QUALITY}** (a hash ThreatExchange, HMA and takeback's "
        f"matchers ignore) **are counted apart from the targets: {low_text}.** Cells: recall at distance ≤ "
        f"{THRESHOLD} over the {len(counted)} other photos (found/{len(counted)}), and in brackets the median "
        "distance of the best bank/query pair. Columns: plain PDQ (the anchor); each mode alone (its bank hashes "
        "against the copy's plain PDQ plus the mode's query hashes, if it has any); `default` (every default mode, "
        "as `takeback hash` banks and takeback's own matchers query); `platform` (the default bank against the "
        "copy's plain PDQ only: what a platform or HMA gets).",
        "",
        "| transformation | group | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    group_hits: dict[str, dict[str, list[bool]]] = {}
    low_hits: dict[str, dict[str, list[bool]]] = {}
    for spec in specs:
        cells = []
        for column in COLUMNS:
            d = [found[(spec.name, name)][column] for name in counted]
            hits = [x <= THRESHOLD for x in d]
            group_hits.setdefault(spec.group, {}).setdefault(column, []).extend(hits)
            for name in low:
                low_hits.setdefault(spec.group, {}).setdefault(column, []).append(
                    found[(spec.name, name)][column] <= THRESHOLD
                )
            cells.append(f"{sum(hits)}/{len(hits)} ({int(np.median(d))})")
        lines.append(f"| {spec.name} | {spec.group} | " + " | ".join(cells) + " |")
    lines += ["", f"Recall per group (the issue's targets), over the {len(counted)} photos of quality ≥ {LOW_QUALITY}:"]
    lines += [
        "",
        "| group | target | " + " | ".join(COLUMNS) + " | met by default |",
        "|---|---:|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for group, cols in group_hits.items():
        target = TARGETS.get(group)
        rates = {c: sum(v) / len(v) for c, v in cols.items()}
        met = "—" if target is None else ("yes" if rates["default"] >= target else "**no**")
        lines.append(
            f"| {group} | {'—' if target is None else f'{target:.0%}'} | "
            + " | ".join(f"{rates[c]:.1%}" for c in COLUMNS)
            + f" | {met} |"
        )
    misses: dict[str, set[str]] = {}
    for spec in specs:
        if spec.group in TARGETS:
            for name in counted:
                if found[(spec.name, name)]["default"] > THRESHOLD:
                    misses.setdefault(spec.group, set()).add(f"{name} ({spec.name})")
    lines += ["", "Copies missed by the default modes, per target group:", ""]
    lines += [f"- {group}: {', '.join(sorted(names))}" for group, names in misses.items()] or ["- none"]
    if low:
        heading = f"Photos below quality {LOW_QUALITY} ({', '.join(low)}), recall per target group (pdq / default):"
        lines += ["", heading, ""]
        lines += [
            f"- {group}: {sum(cols['pdq'])}/{len(cols['pdq'])} / {sum(cols['default'])}/{len(cols['default'])}"
            for group, cols in low_hits.items()
            if group in TARGETS
        ]
    for column, values in query_timings.items():
        timings["query " + column] = values
    for column, counts in query_counts.items():
        timings["query hashes " + column] = [float(c) for c in counts]
    return lines, banks, timings


# --- false positives ------------------------------------------------------------------------------------------------
def distractor_pool(corpus: list[tuple[str, Rgb]], generated: int, tile: int) -> list[tuple[str, str, Rgb]]:
    """(source, name, pixels): pairs from the same source are not counted (a tile is part of its photo)."""
    pool: list[tuple[str, str, Rgb]] = [(name, name, rgb) for name, rgb in corpus]
    for name, rgb in corpus:
        for k, t in enumerate(tiles(rgb, tile)):
            pool.append((name, f"{name}/tile{k}", t))
    for k in range(generated):
        pool.append((f"gen{k}", f"gen{k}", dead_leaves(rng_for("dead-leaves", str(k)))))
    return pool


def run_false_positives(corpus: list[tuple[str, Rgb]], generated: int, tile: int, min_quality: int) -> list[str]:
    pool = distractor_pool(corpus, generated, tile)
    hashed: list[tuple[str, Hashed, Hashed]] = []
    dropped = 0
    for source, _name, rgb in pool:
        b = bank_side(rgb)
        if b.quality < min_quality:
            dropped += 1
            continue
        hashed.append((source, b, query_side(rgb)))
    n = len(hashed)
    sources = np.unique([s for s, _, _ in hashed], return_inverse=True)[1].astype(np.int64)
    different = sources[:, None] != sources[None, :]
    pairs = int(different.sum())
    lines = [
        f"Distractor pool: {n} pictures ({len(corpus)} photos, their non-overlapping {tile}px tiles, {generated} "
        f"generated dead-leaves images; {dropped} with PDQ quality < {min_quality} left out), every bank against "
        f"every query of a different picture (tiles of the same photo excepted): **{pairs:,} ordered pairs**. "
        f"A false-positive rate of 1e-6 would need ~3,000,000 pairs with none found to claim at 95% confidence; "
        f"with 0 found among {pairs:,}, the 95% upper bound is {3 / max(pairs, 1):.1e} (rule of three). Columns "
        "with many query hashes per picture are searched with takeback's exact index at 31 bits (every pair within "
        f"the threshold is found, over the pairs whose sources fall in different groups of {fp.GROUPS}: the table "
        "says how many); their smallest distances and quantiles come from a random sample of pairs, computed "
        "outright.",
        "",
        "| mode | bank hashes / picture | query hashes / picture | pairs ≤ 31 (FP) | FPR | ≤ 40 | ≤ 50 | ≤ 63 | "
        "smallest distances | 0.01% / 0.1% / 1% quantile |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for column in COLUMNS:
        bank_hex: list[str] = []
        bank_owner: list[int] = []
        query_hex: list[str] = []
        query_owner: list[int] = []
        for i, (_s, b, q) in enumerate(hashed):
            bank_hex += b.bank[column]
            bank_owner += [i] * len(b.bank[column])
            query_hex += q.query[column]
            query_owner += [i] * len(q.query[column])
        h = fp.PoolHashes(fp.words(bank_hex), np.array(bank_owner), fp.words(query_hex), np.array(query_owner))
        lines.append(fp.column_row(column, h, n, sources, THRESHOLD))
    return lines


# --- main -----------------------------------------------------------------------------------------------------------
def cost_lines(banks: dict[str, Hashed], timings: dict[str, list[float]]) -> list[str]:
    lines = [
        "| mode | bank hashes / photo (mean, max) | device ms / photo (extra) | query hashes / copy (mean) | "
        "query ms / copy (extra) |",
        "|---|---:|---:|---:|---:|",
    ]
    for column in MODE_COLUMNS:
        sizes = [len(b.bank[column]) for b in banks.values()]
        bank_ms = 1000 * float(np.mean(timings.get(column, [0.0])))
        q = timings.get("query " + column)
        counts = timings.get("query hashes " + column, [1.0])
        lines.append(
            f"| {column} | {np.mean(sizes):.1f}, {max(sizes)} | {bank_ms:.1f} | {np.mean(counts):.1f} | "
            f"{1000 * float(np.mean(q)) if q else 0.0:.1f} |"
        )
    return lines


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, help="a folder of extra (benign) photos for the corpus")
    parser.add_argument("--full", action="store_true", help="bigger distractor pool (~4M pairs) and more clips")
    parser.add_argument("--smoke", action="store_true", help="three photos, a tiny pool, two clips")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--no-photos", action="store_true", help="skip the photo tables (the pool still runs)")
    parser.add_argument("--no-fp", action="store_true", help="skip the false-positive pool")
    parser.add_argument("--min-quality", type=int, default=50, help="distractors below this PDQ quality are dropped")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    names = PHOTO_NAMES[:3] if args.smoke else PHOTO_NAMES
    corpus = [(n, bundled_photo(n)) for n in names]
    if args.photos:
        corpus += folder_photos(args.photos)
    generated, tile, clips, distractors = (
        (20, 256, 2, 2) if args.smoke else ((1700, 96, 8, 24) if args.full else (700, 128, 6, 12))
    )
    print("# takeback robustness suite\n")
    machine = machine_lines(["numpy", "Pillow", "pdqhash", "av", "scikit-image"])
    blas = f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS')} (as in takeback hash's workers)"
    print("\n".join("    " + line for line in [*machine, blas, f"{_load()} (at the start)"]))
    print(f"\ncommand: python benchmarks/robustness.py {' '.join(argv if argv is not None else sys.argv[1:])}\n")
    if not args.no_photos:
        photo_lines, banks, timings = run_photos(corpus)
        print("## Photos: recall per transformation\n")
        print("\n".join(photo_lines))
        print("\n## Cost of the modes\n")
        print("\n".join(cost_lines(banks, timings)))
        sys.stdout.flush()
    if not args.no_fp:
        print("\n## False positives\n")
        print("\n".join(run_false_positives(corpus, generated, tile, args.min_quality)))
        if fp.SEARCHES:
            print("\nIndex searches behind the many-query columns (takeback.index.pdq_index, exact):\n")
            print("\n".join(fp.search_lines()))
        sys.stdout.flush()
    if not args.no_video:
        print("\n## Video\n")
        with tempfile.TemporaryDirectory(prefix="takeback-robustness-") as tmp:
            table, cost = run_video(clips, distractors, Path(tmp))
        print("\n".join(table))
        print(
            "\nCost of the video modes (bank side; the query side is one frame a second, plus a border and a "
            "smooth list in `default`):\n"
        )
        print("\n".join(cost))
    print(f"\n(total {time.perf_counter() - started:.0f} s; {_load()} at the end)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
