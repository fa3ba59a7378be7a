"""Photos per second: takeback's batch hasher against the Pillow + pdqhash reference, same files, one run.

What is compared (every path hashes exactly the same list of files):

* reference, 1 process: ``PIL.Image.open(p).convert("RGB")`` -> ``np.asarray`` -> ``pdqhash.compute``, plus
  MD5 and SHA-256 of the file bytes (takeback computes those too, so the comparison is like for like);
* reference, 2 processes: the same function in a ``multiprocessing.Pool(2)``; the pool is started and warmed
  before its timer starts (start-up excluded).  This is the anchor for the ratio;
* takeback, 2 workers: ``hash_paths(folders, HashOptions(), workers=2, cache=None)``.  ``hash_paths`` starts
  its own process pool inside the call, so its figure INCLUDES worker start-up; the start-up cost is also
  measured on its own (one tiny JPEG) and a start-up-excluded estimate is printed next to it;
* takeback, 1 process (``workers=0``), for information.

The comparison with the reference is like for like: one PDQ (plus MD5/SHA-256) per photo, i.e. ``takeback hash
--modes none`` (``HashOptions(modes="")``).  ``takeback hash``'s default also banks the extra hashes of the matching
modes (mirrored, framed, cropped, smoothed copies: ~86 per photo, docs/robustness.md); that is timed too, with 2
workers, and printed as its own row, so the cost of the modes is measured in the same run.

Before any timer starts there is one untimed warm-up: every file is read once (page cache) and each path
hashes one photo (imports, lazy tables).  The photos are >= 8 MP JPEGs made from scikit-image's bundled
photos by ``takeback.samples.large_photo`` (cached in --folder-out); the set is repeated --repeat times as
byte-identical copies in separate files, so a single ``hash_paths`` call sees a library-sized batch and
nothing is deduplicated.  Extra folders given on the command line are added once.

The reference's own libraries (pdqhash, scikit-image for the photo set) are imported inside the functions that
use them: ``hash_paths`` forks its workers on Linux but spawns them elsewhere (or while another thread runs), and a
spawned worker re-imports this script, so the reference's imports stay out of takeback's start-up either way.

Also printed: how far takeback's PDQ hashes are from the reference hashes (``takeback.signals.pdq.hamming``)
for photos whose reference quality is >= 50.

Run:

    source /work/venv/bin/activate
    python benchmarks/hash_images.py                 # 16 photos x 16 copies = 256 files, 3264x2448 (8.0 MP)
    python benchmarks/hash_images.py --repeat 4 ~/Pictures/sample
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, features

from _common import WORKERS, distance_summary, machine_lines, timed
from takeback.protect.batch import hash_paths
from takeback.protect.hash_file import HashOptions
from takeback.protect.results import FileResult, Status
from takeback.signals.pdq import hamming

PHOTO_SIZE = (3264, 2448)  # (W, H): 7.99 MP, a typical 8 MP phone sensor
JPEG_QUALITY = 90
GRAIN = 6.0
QUALITY_THRESHOLD = 50
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp", ".gif"})


@dataclass(frozen=True, slots=True)
class Reference:
    path: str
    pdq: str | None
    quality: int | None
    md5: str | None
    sha256: str | None
    error: str | None = None


def reference_hash(path: str) -> Reference:
    """The reference path for one file (module level so that pool workers can run it)."""
    import pdqhash  # here, not at the top: a spawned takeback worker re-imports this script (see the docstring)

    try:
        data = Path(path).read_bytes()
        md5 = hashlib.md5(data).hexdigest()
        sha256 = hashlib.sha256(data).hexdigest()
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))
        vector, quality = pdqhash.compute(arr)
        hex_hash = "".join("%02x" % b for b in np.packbits(vector))  # noqa: UP031 - the reference's own spelling
        return Reference(path, hex_hash, int(quality), md5, sha256)
    except Exception as exc:  # a file the reference cannot read is reported, not fatal
        return Reference(path, None, None, None, None, f"{type(exc).__name__}: {exc}")


def build_photo_set(folder: Path, repeat: int) -> tuple[list[Path], list[Path]]:
    """Generate (once) the phone-sized JPEGs into folder/set00 and copy them into set01.. set{repeat-1}.

    Returns (the set folders, the photo paths in walk order)."""
    from takeback import samples

    base = folder / "set00"
    base.mkdir(parents=True, exist_ok=True)
    originals = []
    for i, name in enumerate(samples.PHOTO_NAMES):
        path = base / f"{i:02d}-{name}.jpg"
        if not path.exists():
            print(f"  generating {path}", flush=True)
            tmp = path.with_suffix(".part")
            samples.large_photo(name, size=PHOTO_SIZE, grain=GRAIN, seed=i).save(
                tmp, format="JPEG", quality=JPEG_QUALITY
            )
            tmp.replace(path)
        originals.append(path)
    folders = [base]
    for r in range(1, repeat):
        sub = folder / f"set{r:02d}"
        sub.mkdir(exist_ok=True)
        for src in originals:
            dst = sub / src.name
            if not dst.exists() or dst.stat().st_size != src.stat().st_size:
                shutil.copyfile(src, dst)
        folders.append(sub)
    paths = [f / src.name for f in folders for src in originals]
    return folders, paths


def extra_photos(folders: list[Path]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        if folder.is_file():
            found.append(folder)
            continue
        found.extend(sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
    return found


def tiny_jpeg(folder: Path) -> Path:
    from takeback import samples

    path = folder / "startup" / "tiny.jpg"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        samples.large_photo(samples.PHOTO_NAMES[0], size=(64, 48), grain=0.0).save(path, quality=90)
    return path


def run_reference_pool(paths: list[str]) -> tuple[list[Reference], float, float]:
    """Reference in a Pool of WORKERS processes: (results, seconds warm, seconds pool start-up + warm-up)."""
    pool, startup = timed(lambda: multiprocessing.Pool(WORKERS))
    with pool:
        _, warm = timed(lambda: pool.map(reference_hash, paths[:WORKERS], chunksize=1))
        results, seconds = timed(lambda: pool.map(reference_hash, paths, chunksize=1))
    return results, seconds, startup + warm


def by_path(results: list[FileResult]) -> dict[str, FileResult]:
    return {r.path: r for r in results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="extra folders (or files) of photos to add, once each")
    parser.add_argument(
        "--folder-out",
        type=Path,
        default=Path("/tmp/takeback-bench/photos"),
        help="cache folder for the generated photos (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=16,
        help="copies of the 16-photo set in the timed batch; the default 16 (256 files) keeps takeback's 2-worker "
        "section above ~3 s on 2 cores (default: %(default)s)",
    )
    parser.add_argument("--startup-runs", type=int, default=3, help="runs for the pool start-up estimate")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    from takeback import samples

    for line in machine_lines(["takeback", "pdqhash", "pillow", "numpy", "scikit-image", "vpdq", "av"]):
        print(line)
    print(f"libjpeg: {features.version('jpg')} (turbo: {features.check_feature('libjpeg_turbo')})")
    print(f"multiprocessing start method for the reference pool: {multiprocessing.get_start_method()}")

    folder_out = args.folder_out.resolve()
    print(f"\nphoto set in {folder_out} …", flush=True)
    set_folders, generated = build_photo_set(folder_out, args.repeat)
    extras = extra_photos([f.resolve() for f in args.folders])
    roots = set_folders + [f.resolve() for f in args.folders]
    paths = [str(p) for p in generated + extras]
    n = len(paths)
    megapixels = PHOTO_SIZE[0] * PHOTO_SIZE[1] / 1e6
    sizes = [Path(p).stat().st_size for p in paths]
    print(
        f"{n} files: {len(samples.PHOTO_NAMES)} generated photos {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} ({megapixels:.2f} MP, "
        f"JPEG q{JPEG_QUALITY}, grain {GRAIN}) x {args.repeat} copies + {len(extras)} extra; "
        f"mean file size {statistics.fmean(sizes) / 1e6:.2f} MB"
    )

    # ---- untimed warm-up -------------------------------------------------------------------------------------
    print("\nwarm-up (untimed): reading every file once, then one photo through each path …", flush=True)
    for p in paths:
        Path(p).read_bytes()
    reference_hash(paths[0])
    plain, with_modes = HashOptions(modes=""), HashOptions()
    hash_paths([Path(paths[0])], plain, workers=0, cache=None)
    hash_paths([Path(paths[0])], with_modes, workers=0, cache=None)
    tiny = tiny_jpeg(folder_out)
    hash_paths([tiny], plain, workers=0, cache=None)

    # ---- timed sections --------------------------------------------------------------------------------------
    print("timing reference, 1 process …", flush=True)
    ref_1, ref_1_s = timed(lambda: [reference_hash(p) for p in paths])
    print("timing reference, 2 processes …", flush=True)
    ref_2, ref_2_s, ref_2_startup = run_reference_pool(paths)
    print("timing takeback, 1 process (workers=0) …", flush=True)
    tb_0, tb_0_s = timed(lambda: hash_paths(roots, plain, workers=0, cache=None))
    print(f"timing takeback, {WORKERS} workers …", flush=True)
    tb_2, tb_2_s = timed(lambda: hash_paths(roots, plain, workers=WORKERS, cache=None))
    print(f"timing takeback, {WORKERS} workers, default modes ({with_modes.modes}) …", flush=True)
    tb_m, tb_m_s = timed(lambda: hash_paths(roots, with_modes, workers=WORKERS, cache=None))
    bank_hashes = [1 + len(r.variants) for r in tb_m.results if r.status is Status.HASHED]

    # Worker start-up of hash_paths: the same call on one tiny JPEG, minus the in-process time for it.
    pool_runs = [
        timed(lambda: hash_paths([tiny], plain, workers=WORKERS, cache=None))[1]
        for _ in range(max(1, args.startup_runs))
    ]
    solo_runs = [timed(lambda: hash_paths([tiny], plain, workers=0, cache=None))[1] for _ in range(3)]
    tb_startup = max(0.0, statistics.median(pool_runs) - statistics.median(solo_runs))

    # ---- correctness checks ----------------------------------------------------------------------------------
    problems = 0
    ref_map = {r.path: r for r in ref_1}
    for name, res in (("reference 1 process", ref_1), ("reference 2 processes", ref_2)):
        errors = [r for r in res if r.error]
        for r in errors[:5]:
            print(f"  {name}: {r.path}: {r.error}")
        problems += len(errors)
    if [r.pdq for r in ref_1] != [r.pdq for r in ref_2]:
        print("WARNING: the reference gave different hashes in 1 and 2 processes")
    tb_0_map, tb_2_map = by_path(tb_0.results), by_path(tb_2.results)
    missing = [p for p in paths if p not in tb_2_map or p not in tb_0_map]
    if missing:
        print(f"WARNING: {len(missing)} file(s) not in takeback's results, e.g. {missing[:3]}")
    failed = [tb_2_map[p] for p in paths if p in tb_2_map and tb_2_map[p].status is not Status.HASHED]
    failed += [tb_0_map[p] for p in paths if p in tb_0_map and tb_0_map[p].status is not Status.HASHED]
    for r in failed[:10]:
        print(f"  takeback {r.status.value}: {r.path}: {r.error_code} {r.reason}")
    digest_mismatch = sum(
        1
        for p in paths
        if p in tb_2_map
        and ref_map[p].md5
        and (tb_2_map[p].md5, tb_2_map[p].sha256) != (ref_map[p].md5, ref_map[p].sha256)
    )
    solo_vs_pool = sum(1 for p in paths if p in tb_0_map and p in tb_2_map and tb_0_map[p].pdq != tb_2_map[p].pdq)

    generated_set = {str(p) for p in generated}
    dist_generated: list[int] = []
    dist_extra: list[int] = []
    low_quality = 0
    for p in paths:
        ref, ours = ref_map[p], tb_2_map.get(p)
        if ref.pdq is None or ref.quality is None or ours is None or ours.pdq is None:
            continue
        if ref.quality < QUALITY_THRESHOLD:
            low_quality += 1
            continue
        (dist_generated if p in generated_set else dist_extra).append(hamming(ours.pdq, ref.pdq))
    per_photo = {
        Path(p).stem: (hamming(ours, ref.pdq), ref.quality)
        for p in (str(g) for g in generated[: len(samples.PHOTO_NAMES)])
        if (ours := tb_2_map[p].pdq if p in tb_2_map else None) and (ref := ref_map[p]).pdq
    }

    # ---- report ----------------------------------------------------------------------------------------------
    rate = {
        "ref1": n / ref_1_s,
        "ref2": n / ref_2_s,
        "tb0": n / tb_0_s,
        "tb2": n / tb_2_s,
    }
    tb_2_excl = n / max(1e-9, tb_2_s - tb_startup)
    ref_2_incl = n / (ref_2_s + ref_2_startup)
    print()
    print(f"files per timed section: {n}")
    print("| path | seconds | photos/s |")
    print("|---|---:|---:|")
    print(f"| reference (Pillow + pdqhash + MD5/SHA-256), 1 process | {ref_1_s:.2f} | {rate['ref1']:.2f} |")
    print(
        f"| reference, Pool of {WORKERS} processes (pool warm, start-up excluded) "
        f"| {ref_2_s:.2f} | {rate['ref2']:.2f} |"
    )
    print(f"| takeback hash_paths, workers=0 (1 process) | {tb_0_s:.2f} | {rate['tb0']:.1f} |")
    print(f"| takeback hash_paths, workers={WORKERS} (worker start-up included) | {tb_2_s:.2f} | {rate['tb2']:.1f} |")
    print(
        f"| takeback hash_paths, workers={WORKERS}, default modes "
        f"({statistics.fmean(bank_hashes or [0]):.1f} bank hashes per photo) | {tb_m_s:.2f} | {n / tb_m_s:.1f} |"
    )
    print()
    print(
        f"start-up: reference Pool({WORKERS}) creation + warm-up {ref_2_startup:.2f} s "
        f"(with it: {ref_2_incl:.2f} photos/s); "
        f"takeback {WORKERS}-worker pool start-up + shutdown ≈ {tb_startup:.2f} s "
        f"(median of {len(pool_runs)} runs on one tiny JPEG minus the in-process time; without it: "
        f"{tb_2_excl:.1f} photos/s)"
    )
    print()
    print(
        f"ratio takeback {WORKERS} workers (start-up included) / reference {WORKERS} processes: "
        f"{rate['tb2'] / rate['ref2']:.1f}x   <- anchor; target >= 20x"
    )
    print(
        f"ratio takeback {WORKERS} workers (start-up included) / reference 1 process: {rate['tb2'] / rate['ref1']:.1f}x"
    )
    print(
        f"ratio takeback {WORKERS} workers (start-up excluded, estimate) / reference {WORKERS} processes: "
        f"{tb_2_excl / rate['ref2']:.1f}x"
    )
    print(f"ratio takeback 1 process / reference 1 process: {rate['tb0'] / rate['ref1']:.1f}x")
    print(
        f"ratio takeback {WORKERS} workers with the default modes / reference {WORKERS} processes: "
        f"{n / tb_m_s / rate['ref2']:.1f}x (the modes' cost: {tb_m_s / tb_2_s:.2f}x the plain hashing time)"
    )
    verdict = "MET" if rate["tb2"] / rate["ref2"] >= 20 else f"NOT met (needs {20 * rate['ref2']:.1f} photos/s)"
    print(f"target >= 20x the 2-process reference with 2 cores: {verdict}")
    print()
    print(
        f"PDQ distance takeback vs reference, photos with reference quality >= {QUALITY_THRESHOLD} "
        f"(all {n} files, copies included): {distance_summary(dist_generated + dist_extra)}"
    )
    print(
        "  per distinct generated photo (distance, reference quality): "
        + ", ".join(f"{name} {d} (q{q})" for name, (d, q) in per_photo.items())
    )
    if extras:
        print(f"  extra files only: {distance_summary(dist_extra)}")
    print(f"  files skipped for reference quality < {QUALITY_THRESHOLD}: {low_quality}")
    print(
        f"checks: reference errors {problems}, takeback not hashed {len(failed)}, missing {len(missing)}, "
        f"MD5/SHA-256 mismatches {digest_mismatch}, takeback workers=0 vs workers={WORKERS} PDQ differences "
        f"{solo_vs_pool}"
    )
    return 1 if failed or missing or digest_mismatch else 0


if __name__ == "__main__":
    sys.exit(main())
