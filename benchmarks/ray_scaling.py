"""Files per second of `takeback hash --ray` on a 1-CPU and a 2-CPU Ray cluster, with the local hasher as anchor.

What is compared (every path hashes exactly the same files, with the same options, in one run):

* anchor — the local `takeback hash`: ``hash_paths(folders, options, workers=2, cache=None)``, i.e. takeback's own
  process pool on this machine's two cores (its figure includes starting the pool, as a person's run does);
* Ray, 1 worker CPU — a head node started with ``ray start --head --num-cpus=1`` (a real separate cluster on this
  machine), joined by address; ``hash_paths_on_ray`` with the default chunk (16 files) and window (2 per CPU);
* Ray, 2 worker CPUs — the same with ``--num-cpus=2``.

Cluster start-up and joining are timed separately and excluded; before each Ray timer one untimed warm-up pass
hashes a few files so every worker process has imported the hasher (a long sweep pays that once). The hash lists are
checked equal to the anchor's, file by file.

The photos are 1600x1200 JPEGs made from scikit-image's bundled photos (`takeback.samples.large_photo`), repeated
as byte-identical copies in separate files; a short generated video is added once.

Run:

    source /work/venv/bin/activate
    python benchmarks/ray_scaling.py                  # 16 photos x 8 copies + 1 video = 129 files
    python benchmarks/ray_scaling.py --copies 2       # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _common import machine_lines, timed
from takeback import samples
from takeback.bulk.cluster import connect, start_head
from takeback.bulk.ray_hash import DEFAULT_CHUNK_FILES, hash_paths_on_ray
from takeback.protect.batch import BatchReport, hash_paths
from takeback.protect.hash_file import HashOptions

PHOTO_SIZE = (1600, 1200)


def make_corpus(folder: Path, copies: int) -> Path:
    originals = folder / "originals"
    originals.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(samples.PHOTO_NAMES):
        path = originals / f"{i:02d}-{name}.jpg"
        if not path.exists():
            samples.large_photo(name, size=PHOTO_SIZE, grain=3.0, seed=i).save(path, quality=90)
        paths.append(path)
    corpus = folder / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    for c in range(copies):
        target = corpus / f"copy{c:02d}"
        target.mkdir(parents=True)
        for path in paths:
            shutil.copyfile(path, target / path.name)
    samples.write_video(corpus / "clip.mp4", seconds=10, fps=25, size=(640, 360), scene_seconds=4)
    return corpus


def fingerprint(report: BatchReport) -> list[tuple[str, str | None, str | None, int]]:
    return [(r.path, r.pdq, r.sha256, len(r.frames)) for r in report.results]


def ray_run(corpus: Path, warm: Path, cpus: int, options: HashOptions) -> tuple[BatchReport, float, float]:
    """(report, seconds hashing, seconds to start the head) on a fresh `cpus`-CPU cluster joined by address."""
    head, start_s = timed(lambda: start_head(num_cpus=cpus))
    try:
        with connect(head.address) as got:
            assert got == cpus, f"cluster has {got} CPUs, expected {cpus}"
            hash_paths_on_ray([warm], options, cpus=cpus, chunk_files=1)  # every worker imports the hasher
            report, seconds = timed(lambda: hash_paths_on_ray([corpus], options, cpus=cpus))
    finally:
        head.stop()
    return report, seconds, start_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8, help="copies of the 16 photos (default 8)")
    parser.add_argument("--folder", type=Path, default=None, help="where to write the corpus (default: a temp dir)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    folder = args.folder or Path(tempfile.mkdtemp(prefix="tb-ray-bench-"))
    corpus = make_corpus(folder, args.copies)
    warm = folder / "warm"
    warm.mkdir(exist_ok=True)
    for i, path in enumerate(sorted((folder / "originals").iterdir())[:4]):
        shutil.copyfile(path, warm / f"w{i}.jpg")
    files = sum(1 for p in corpus.rglob("*") if p.is_file())
    options = HashOptions()
    for line in machine_lines(["ray", "numpy", "pillow", "av"]):
        print(line)
    print(f"load average at start: {os.getloadavg()}")
    print(
        f"corpus: {files} files ({args.copies} x 16 photos {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG + 1 video 10 s), "
        f"hash options {options}, Ray chunk {DEFAULT_CHUNK_FILES} files, window 2 x CPUs"
    )

    hash_paths([warm], options, workers=0)  # imports and lazy tables in this process, untimed
    local, local_s = timed(lambda: hash_paths([corpus], options, workers=2, cache=None))
    print(f"anchor  local takeback hash, 2 workers : {files / local_s:7.2f} files/s ({local_s:.1f} s)")
    ray1, ray1_s, start1 = ray_run(corpus, warm, 1, options)
    print(
        f"ray     1 worker CPU                   : {files / ray1_s:7.2f} files/s ({ray1_s:.1f} s; "
        f"head start {start1:.1f} s, excluded)"
    )
    ray2, ray2_s, start2 = ray_run(corpus, warm, 2, options)
    print(
        f"ray     2 worker CPUs                  : {files / ray2_s:7.2f} files/s ({ray2_s:.1f} s; "
        f"head start {start2:.1f} s, excluded)"
    )

    same = fingerprint(ray1) == fingerprint(local) == fingerprint(ray2)
    print(f"hash lists identical to the anchor: {same}")
    print(f"ratio ray 2 CPUs / ray 1 CPU     : {ray1_s / ray2_s:.2f}x (ideal 2.00x on 2 idle cores)")
    print(f"ratio ray 2 CPUs / local 2 workers: {local_s / ray2_s:.2f}x")
    print(f"ratio ray 1 CPU  / local 2 workers: {local_s / ray1_s:.2f}x")
    print(f"load average at end: {os.getloadavg()}")
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
