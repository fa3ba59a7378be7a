"""Photos/s of takeback's fast PDQ path against the reference path, same photos, one run.

Reference: Pillow full decode → `pdqhash.compute` (+ MD5/SHA-256), in 1 process and
in a pool of 2 processes (the fair anchor on 2 cores).  takeback: `hash_paths` with
2 worker processes, start-up included, over one library-sized batch (and
in-process, for information).  Also prints how far takeback's hashes
are from the reference's (photos with reference quality ≥ 50).

    python benchmarks/hash_images.py [--copies N] [EXTRA_FOLDER ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, reference_photo
from takeback import samples
from takeback.protect.batch import hash_paths
from takeback.protect.hash_file import HashOptions
from takeback.signals.pdq import hamming

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".tif", ".tiff", ".bmp", ".gif"}


def make_photos(folder: Path, size: tuple[int, int], copies: int) -> list[Path]:
    """The bundled photos at phone size, each also as `copies - 1` byte-identical
    copies in separate files (a library-sized batch; copies are real files, so
    nothing is served from a cache or deduplicated)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(samples.PHOTO_NAMES):
        path = folder / f"{i:02d}-{name}-{size[0]}x{size[1]}.jpg"
        if not path.exists():
            samples.large_photo(name, size=size, grain=6.0, seed=i).save(path, quality=90)
        paths.append(path)
    originals = list(paths)
    for c in range(1, copies):
        sub = folder / f"copy{c}"
        sub.mkdir(exist_ok=True)
        for path in originals:
            target = sub / path.name
            if not target.exists():
                shutil.copyfile(path, target)
            paths.append(target)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, help="extra folders of photos to include")
    parser.add_argument("--out", type=Path, default=Path("/tmp/takeback-bench/photos"), help="generated photo cache")
    parser.add_argument("--width", type=int, default=3264)
    parser.add_argument("--height", type=int, default=2448)
    parser.add_argument("--copies", type=int, default=8, help="files per generated photo (batch size = 16 x copies)")
    args = parser.parse_args()

    photos = make_photos(args.out, (args.width, args.height), args.copies)
    for folder in args.folders:
        photos += sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    names = [str(p) for p in photos]
    print(machine())
    print(f"{len(photos)} photos, generated ones {args.width}x{args.height} ({args.width * args.height / 1e6:.1f} MP)")

    t = time.perf_counter()
    reference = {p: reference_photo(p) for p in names}
    ref_1 = len(names) / (time.perf_counter() - t)

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        list(pool.map(reference_photo, names[:2]))  # warm up
        t = time.perf_counter()
        list(pool.map(reference_photo, names))
        ref_2 = len(names) / (time.perf_counter() - t)

    options = HashOptions()
    # One batch over the whole set, as `takeback hash FOLDER` runs: the 2-worker
    # figure includes starting the worker processes.
    t = time.perf_counter()
    solo = hash_paths(photos, options, workers=0)
    tb_1 = len(names) / (time.perf_counter() - t)
    t = time.perf_counter()
    duo = hash_paths(photos, options, workers=2)
    tb_2 = len(names) / (time.perf_counter() - t)

    distances = []
    for result in duo.results:
        ref_hex, ref_quality = reference[result.path]
        if ref_quality >= 50 and result.pdq:
            distances.append(hamming(ref_hex, result.pdq))
    assert [r.pdq for r in solo.results] == [r.pdq for r in duo.results]

    print()
    print("| path | photos/s |")
    print("|---|---:|")
    print(f"| reference (Pillow + pdqhash), 1 process | {ref_1:.2f} |")
    print(f"| reference, 2 processes | {ref_2:.2f} |")
    print(f"| takeback, 1 process | {tb_1:.1f} |")
    print(f"| takeback, 2 worker processes (start-up included) | {tb_2:.1f} |")
    print()
    print(f"ratio takeback 2 workers / reference 2 processes: {tb_2 / ref_2:.1f}x")
    print(f"ratio takeback 2 workers / reference 1 process: {tb_2 / ref_1:.1f}x")
    print(
        f"distance to reference (quality >= 50, n={len(distances)}): median {np.median(distances):.0f}, "
        f"mean {np.mean(distances):.2f}, max {max(distances)}"
    )


if __name__ == "__main__":
    main()
