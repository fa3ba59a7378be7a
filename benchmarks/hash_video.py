"""Seconds to hash a 5-minute 720p H.264 video: the `vpdq` reference against takeback, one run.

vpdq (Meta's C++ via its Python binding) decodes every frame and hashes one per
second.  takeback decodes only the frames the 1 frame/s sampling needs and, with
2 workers, hashes two halves of the video in parallel.  Prints seconds, the
realtime factor (video length / seconds), the ratio to vpdq, and the per-frame
distance to vpdq at the same timestamps (frames with vpdq quality ≥ 50).

    python benchmarks/hash_video.py [--video FILE] [--long-gop]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine
from takeback import samples
from takeback.protect.batch import hash_paths
from takeback.protect.hash_file import HashOptions
from takeback.signals.pdq import hamming
from takeback.signals.vpdq import hash_video


def generated(folder: Path, gop_seconds: float | None) -> Path:
    name = "video-720p-300s-gop1.mp4" if gop_seconds else "video-720p-300s-gop250.mp4"
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} (about 3 minutes) …", flush=True)
        samples.write_video(path, seconds=300, fps=30, size=(1280, 720), gop_seconds=gop_seconds)
    return path


def bench(path: Path) -> None:
    import vpdq

    t = time.perf_counter()
    reference = vpdq.computeHash(str(path), seconds_per_hash=1.0)
    ref_s = time.perf_counter() - t

    t = time.perf_counter()
    single = hash_video(path)
    one_s = time.perf_counter() - t

    t = time.perf_counter()
    duo = hash_paths([path], HashOptions(), workers=2).results[0]
    two_s = time.perf_counter() - t

    # A library of videos: 4 copies (real files) in one batch amortise the
    # worker start-up, as hashing a phone's video folder does.
    library = path.parent / f"{path.stem}-library"
    library.mkdir(exist_ok=True)
    for i in range(4):
        target = library / f"copy{i}{path.suffix}"
        if not target.exists():
            shutil.copyfile(path, target)
    t = time.perf_counter()
    batch = hash_paths([library], HashOptions(), workers=2).results
    lib_s = (time.perf_counter() - t) / len(batch)

    duration = single.duration
    ref_by_time = {round(f.timestamp, 3): f for f in reference}
    distances = [
        hamming(ref_by_time[round(f.timestamp, 3)].hex, f.pdq)
        for f in duo.frames
        if round(f.timestamp, 3) in ref_by_time and ref_by_time[round(f.timestamp, 3)].quality >= 50
    ]
    print()
    print(
        f"{path.name}: {duration:.0f} s, {single.width}x{single.height} {single.codec}, "
        f"{len(reference)} vpdq frames, {len(duo.frames)} takeback frames"
    )
    print("| path | seconds | × realtime | × vpdq |")
    print("|---|---:|---:|---:|")
    print(f"| vpdq reference | {ref_s:.2f} | {duration / ref_s:.0f} | 1.0 |")
    print(f"| takeback, 1 process | {one_s:.2f} | {duration / one_s:.0f} | {ref_s / one_s:.1f} |")
    print(f"| takeback, 2 workers (start-up included) | {two_s:.2f} | {duration / two_s:.0f} | {ref_s / two_s:.1f} |")
    print(
        f"| takeback, 2 workers, per video in a batch of {len(batch)} | {lib_s:.2f} | {duration / lib_s:.0f} | "
        f"{ref_s / lib_s:.1f} |"
    )
    print(
        f"distance to vpdq per frame (quality >= 50, n={len(distances)}): median {np.median(distances):.0f}, "
        f"mean {np.mean(distances):.2f}, max {max(distances)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, action="append", help="video file(s) to use instead of generating")
    parser.add_argument("--out", type=Path, default=Path("/tmp/takeback-bench"), help="generated video cache")
    parser.add_argument("--long-gop", action="store_true", help="also x264's default 250-frame keyframe interval")
    args = parser.parse_args()
    print(machine())
    videos = args.video or [generated(args.out, 1.0)] + ([generated(args.out, None)] if args.long_gop else [])
    for path in videos:
        bench(path)


if __name__ == "__main__":
    main()
