"""The 1/8-scale luma of large JPEGs: takeback's DC-only decoder against libjpeg-turbo's scaled decode, one run.

What is compared, on the same bytes already in memory, one thread:

* anchor: Pillow's ``draft("L", (W // 8, H // 8))`` + ``load()``, i.e. libjpeg-turbo decoding straight to 1/8 scale
  in grey (what ``takeback hash`` used for these photos before, and still uses for every JPEG the DC decoder refuses);
* takeback: ``takeback.media.jpeg_dc.luma_eighth`` (the ``_jpeg_dc`` C extension: markers read in Python, the scan
  parsed only to skip its AC coefficients).

Both must give the same pixels; the script checks every file and fails otherwise.  Each path decodes the whole set
--rounds times, the rounds interleaved, and the best and median rounds are printed with the ratio.  For scale: MD5 +
SHA-256 of the same bytes, which ``takeback hash`` computes for every file too.

The photos are the ones ``benchmarks/hash_images.py`` generates (run it first, or pass folders of JPEGs).

Run:

    python benchmarks/jpeg_dc.py                       # /tmp/takeback-bench/photos/set00 (16 photos, 8 MP)
    python benchmarks/jpeg_dc.py ~/Pictures/phone --rounds 9
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, features

from _common import machine_lines
from takeback.media import jpeg_dc


def pillow_eighth(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.draft("L", (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()
        return np.asarray(img)


def digests(data: bytes) -> None:
    hashlib.md5(data).digest()
    hashlib.sha256(data).digest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="*", type=Path, default=[Path("/tmp/takeback-bench/photos/set00")])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for line in machine_lines(["takeback", "pillow", "numpy"]):
        print(line)
    print(f"libjpeg: {features.version('jpg')} (turbo: {features.check_feature('libjpeg_turbo')})")
    if not jpeg_dc.available():
        print("the _jpeg_dc extension is not built (pip install -e . with a C compiler)")
        return 1
    files = sorted(p for folder in args.folders for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    datas = [p.read_bytes() for p in files]
    if not datas:
        print("no JPEGs found: run benchmarks/hash_images.py first, or name a folder")
        return 1
    taken = [d for d in datas if jpeg_dc.parse(d) is not None]
    print(
        f"{len(datas)} JPEGs, mean {statistics.fmean(len(d) for d in datas) / 1e6:.2f} MB; "
        f"the DC decoder takes {len(taken)} of them (the others go to Pillow in takeback and are left out here)"
    )
    mismatches = 0
    for data in taken:
        ours = jpeg_dc.luma_eighth(data)
        if ours is None or not np.array_equal(ours, pillow_eighth(data)):
            mismatches += 1
    paths: dict[str, Callable[[bytes], object]] = {
        "libjpeg-turbo 1/8 grey (Pillow draft)": pillow_eighth,
        "takeback jpeg_dc.luma_eighth": jpeg_dc.luma_eighth,
        "MD5 + SHA-256 of the bytes (for scale)": digests,
    }
    rounds: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, fn in paths.items():
            start = time.perf_counter()
            for data in taken:
                fn(data)
            rounds[name].append((time.perf_counter() - start) / len(taken) * 1000)
    print()
    print("| path | best ms/photo | median ms/photo |")
    print("|---|---:|---:|")
    for name, times in rounds.items():
        print(f"| {name} | {min(times):.2f} | {statistics.median(times):.2f} |")
    anchor, ours = rounds["libjpeg-turbo 1/8 grey (Pillow draft)"], rounds["takeback jpeg_dc.luma_eighth"]
    print()
    print(
        f"ratio libjpeg-turbo / takeback: best {min(anchor) / min(ours):.2f}x, "
        f"median {statistics.median(anchor) / statistics.median(ours):.2f}x"
    )
    print(f"pixel mismatches against libjpeg-turbo: {mismatches} of {len(taken)} files")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
