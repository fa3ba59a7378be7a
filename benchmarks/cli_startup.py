"""What `takeback hash` costs on top of the hashing itself: the command line's start-up, timed against the library.

Compared, on the same photos, each run --runs times (median and range printed):

* anchor: ``hash_paths(folders, HashOptions(modes=""), workers=2, cache=None)`` called in this process, whose
  imports are already done (the hashing alone, with its worker pool's start-up);
* ``takeback --version`` through the installed console script (the command line's own start-up);
* ``takeback hash FOLDERS --modes none --no-cache -q -o FILE -j 2`` through the installed console script;
* with ``--src DIR``: the same two commands run from another source tree (say a worktree of an older commit),
  through a launcher script that does what the console script used to do (``from takeback.cli import run; run()``),
  so that both are started the same way.

Run:

    python benchmarks/cli_startup.py                          # the 32 photos of sets 00-01 of benchmarks/hash_images.py
    git worktree add /tmp/old 09b9bc0 && python benchmarks/cli_startup.py --src /tmp/old/src
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import WORKERS, machine_lines, timed
from takeback.protect.batch import hash_paths
from takeback.protect.hash_file import HashOptions

LAUNCHER = """import sys
sys.path.insert(0, {src!r})
from takeback.cli import run
if __name__ == "__main__":
    run()
"""


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def row(label: str, times: list[float]) -> str:
    return f"| {label} | {statistics.median(times):.2f} | {min(times):.2f}–{max(times):.2f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "folders",
        nargs="*",
        type=Path,
        default=[Path("/tmp/takeback-bench/photos/set00"), Path("/tmp/takeback-bench/photos/set01")],
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", type=Path, help="another source tree to time the same way, for comparison")
    args = parser.parse_args()
    for line in machine_lines(["takeback", "typer"]):
        print(line)
    photos = sum(1 for folder in args.folders for p in folder.rglob("*.jpg"))
    print(f"{photos} photos in {', '.join(map(str, args.folders))}; {WORKERS} workers; {args.runs} runs each\n")
    script = Path(sys.executable).with_name("takeback")
    out = Path(tempfile.mkdtemp()) / "hashes.jsonl"
    hash_args = ["hash", *map(str, args.folders), "--modes", "none", "--no-cache", "-q", "-o", str(out)]
    hash_args += ["-j", str(WORKERS)]
    commands = {
        "takeback --version (console script)": [str(script), "--version"],
        "takeback hash (console script)": [str(script), *hash_args],
    }
    if args.src is not None:
        launcher = out.with_name("launcher.py")
        launcher.write_text(LAUNCHER.format(src=str(args.src.resolve())))
        commands[f"--version from {args.src}"] = [sys.executable, str(launcher), "--version"]
        commands[f"hash from {args.src}"] = [sys.executable, str(launcher), *hash_args]
    results: dict[str, list[float]] = {"hash_paths in this process (anchor)": []}
    results.update({label: [] for label in commands})
    for _ in range(args.runs):
        results["hash_paths in this process (anchor)"].append(
            timed(lambda: hash_paths(args.folders, HashOptions(modes=""), workers=WORKERS, cache=None))[1]
        )
        for label, command in commands.items():
            results[label].append(wall(command))
    print("| what | seconds (median) | min–max |")
    print("|---|---:|---:|")
    for label, times in results.items():
        print(row(label, times))
    anchor = statistics.median(results["hash_paths in this process (anchor)"])
    print()
    for label, times in results.items():
        if label.startswith("takeback hash") or label.startswith("hash from"):
            print(f"{label}: {statistics.median(times) - anchor:.2f} s more than the hashing alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
