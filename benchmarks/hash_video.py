"""Seconds to hash a 5-minute 720p H.264 video: the vpdq reference against takeback, same file, one run.

What is compared, on the same file, each timed --runs times (median reported, the runs interleaved):

* vpdq reference: ``vpdq.computeHash(str(path), seconds_per_hash=1.0)`` (Meta's C++ through its Python
  binding; its default ``thread_count=0`` lets it pick its own thread count, so it may already use both cores;
  the CPU seconds column shows how much it used);
* takeback, one segment in this process: ``takeback.signals.vpdq.hash_video(path)``;
* takeback on 2 cores: ``hash_paths([path], HashOptions(modes=""), workers=2, cache=None)``, which splits a long
  video into time segments across the workers.  This figure INCLUDES starting the worker processes and the file's
  MD5/SHA-256 (which the reference does not compute); a start-up estimate is printed separately.

Like for like, the takeback rows above hash one frame per second and nothing else, as vpdq does (``takeback hash
--modes none``).  ``takeback hash``'s default also banks the matching modes' extra frame lists (frames every
0.25 s, mirrored, letterbox-trimmed and smoothed lists: docs/robustness.md); one more row times that default on
2 workers, so the modes' cost is measured in the same run.

vpdq, PyAV's version query and scikit-image (for the sample media) are imported inside the functions that use them:
``hash_paths`` forks its workers on Linux but spawns them elsewhere (or while another thread runs), and a spawned
worker re-imports this script, so the reference's libraries stay out of takeback's start-up either way (a forked
worker inherits the PyAV the parent loaded to probe the video; a spawned one imports it when it opens the video).

Untimed warm-up before any timer: the file is read once (page cache), the modules are imported and takeback
hashes the first 2 seconds in-process.  Printed: seconds, realtime factor (video duration / seconds), ratio to
vpdq, CPU seconds, and the per-frame PDQ distance to vpdq at the same timestamps (matched by
``round(timestamp, 3)``, frames where vpdq's quality >= 50): median, mean, max, count.

The videos are made by ``takeback.samples.write_video(path, seconds=300, fps=30, size=(1280, 720),
gop_seconds=1.0)`` (a keyframe every second, as phones record) and, with --long-gop, ``gop_seconds=None``
(x264's default 250-frame GOP).  Generation takes about 3 minutes each and is cached.

Run:

    source /work/venv/bin/activate
    python benchmarks/hash_video.py                          # generates /tmp/takeback-bench/video-720p-300s-gop1.mp4
    python benchmarks/hash_video.py --long-gop               # also the long-GOP variant
    python benchmarks/hash_video.py --video /tmp/v300_g1.mp4 --long-gop --long-gop-video /tmp/v300_g250.mp4
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _common import WORKERS, distance_summary, machine_lines, timed
from takeback.protect.batch import hash_paths
from takeback.protect.hash_file import HashOptions
from takeback.protect.results import Status
from takeback.signals.pdq import hamming
from takeback.signals.vpdq import VPDQ_QUALITY_THRESHOLD, FrameHash, hash_video

CACHE = Path("/tmp/takeback-bench")
GOP1_NAME = "video-720p-300s-gop1.mp4"
LONG_GOP_NAME = "video-720p-300s-gop250.mp4"
TARGET_REALTIME = 200.0
TARGET_RATIO = 10.0


@dataclass(slots=True)
class Method:
    label: str
    run: Callable[[], list[FrameHash]]
    seconds: list[float]
    cpu: list[float]
    frames: list[FrameHash]


def cpu_seconds() -> float:
    """User + system CPU of this process and of its waited-for children (pool workers after shutdown)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def ensure_video(path: Path, gop_seconds: float | None) -> Path:
    from takeback import samples

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {path} (gop_seconds={gop_seconds}; about 3 minutes) …", flush=True)
        tmp = path.with_name(path.stem + ".part.mp4")
        _, seconds = timed(
            lambda: samples.write_video(tmp, seconds=300, fps=30, size=(1280, 720), gop_seconds=gop_seconds)
        )
        tmp.replace(path)
        print(f"  generated in {seconds:.0f} s", flush=True)
    return path


def describe(path: Path) -> tuple[float, str]:
    """(duration in seconds, one-line description incl. the keyframe interval, read from the packets)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 0)
        keyframes = packets = 0
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            packets += 1
            keyframes += bool(packet.is_keyframe)
        duration = (
            float(container.duration / av.time_base)
            if container.duration
            else float(stream.duration * stream.time_base)
        )
        ctx = stream.codec_context
        text = (
            f"{path} ({path.stat().st_size / 1e6:.1f} MB): {duration:.2f} s, {ctx.width}x{ctx.height} {ctx.name} "
            f"{ctx.pix_fmt}, {fps:g} fps, {packets} frames, {keyframes} keyframes "
            f"(one every {packets / max(1, keyframes):.0f} frames)"
        )
    return duration, text


def vpdq_frames(path: Path) -> list[FrameHash]:
    import vpdq

    features = vpdq.computeHash(str(path), seconds_per_hash=1.0)
    return [FrameHash(int(f.frame_number), float(f.timestamp), int(f.quality), str(f.hex)) for f in features]


def single_frames(path: Path) -> list[FrameHash]:
    video = hash_video(path)
    if video.warning:
        print(f"  takeback hash_video warning: {video.warning}")
    return list(video.frames)


PLAIN = HashOptions(modes="")


def pool_frames(path: Path, options: HashOptions = PLAIN) -> list[FrameHash]:
    report = hash_paths([path], options, workers=WORKERS, cache=None)
    (result,) = report.results
    if result.status is not Status.HASHED:
        raise RuntimeError(f"takeback hash_paths: {result.status.value}: {result.error_code} {result.reason}")
    if result.warning:
        print(f"  takeback hash_paths warning: {result.warning}")
    return [FrameHash(f.frame_number, f.timestamp, f.quality, f.pdq) for f in result.frames]


def pool_startup(folder: Path, runs: int = 3) -> float:
    """hash_paths' worker start-up + shutdown: one tiny JPEG with 2 workers minus the same in-process."""
    from takeback import samples

    tiny = folder / "startup" / "tiny.jpg"
    if not tiny.exists():
        tiny.parent.mkdir(parents=True, exist_ok=True)
        samples.large_photo(samples.PHOTO_NAMES[0], size=(64, 48), grain=0.0).save(tiny, quality=90)
    hash_paths([tiny], PLAIN, workers=0, cache=None)
    pooled = [timed(lambda: hash_paths([tiny], PLAIN, workers=WORKERS, cache=None))[1] for _ in range(runs)]
    solo = [timed(lambda: hash_paths([tiny], PLAIN, workers=0, cache=None))[1] for _ in range(runs)]
    return max(0.0, statistics.median(pooled) - statistics.median(solo))


def distances(reference: Sequence[FrameHash], ours: Sequence[FrameHash]) -> tuple[list[int], int, int]:
    """(distances at matched timestamps with reference quality >= 50, matched count, low-quality count)."""
    by_time = {round(f.timestamp, 3): f for f in ours}
    out: list[int] = []
    matched = low = 0
    for ref in reference:
        mine = by_time.get(round(ref.timestamp, 3))
        if mine is None:
            continue
        matched += 1
        if ref.quality < VPDQ_QUALITY_THRESHOLD:
            low += 1
            continue
        out.append(hamming(ref.hex, mine.hex))
    return out, matched, low


def bench(path: Path, runs: int, startup: float) -> None:
    duration, text = describe(path)
    print(f"\n=== {text}")

    print("warm-up (untimed): reading the file, takeback hash_video on [0, 2) s …", flush=True)
    path.read_bytes()
    hash_video(path, start=0.0, end=2.0)

    methods = [
        Method("vpdq.computeHash (reference)", lambda: vpdq_frames(path), [], [], []),
        Method("takeback hash_video, 1 segment, 1 process", lambda: single_frames(path), [], [], []),
        Method(
            f"takeback hash_paths, workers={WORKERS} (start-up + MD5/SHA-256 included)",
            lambda: pool_frames(path),
            [],
            [],
            [],
        ),
        Method(
            f"takeback hash_paths, workers={WORKERS}, default modes ({HashOptions().modes})",
            lambda: pool_frames(path, HashOptions()),
            [],
            [],
            [],
        ),
    ]
    for r in range(runs):
        for m in methods:
            print(f"  run {r + 1}/{runs}: {m.label} …", end=" ", flush=True)
            cpu0 = cpu_seconds()
            m.frames, seconds = timed(m.run)
            m.cpu.append(cpu_seconds() - cpu0)
            m.seconds.append(seconds)
            print(f"{seconds:.2f} s", flush=True)

    ref = methods[0]
    ref_s = statistics.median(ref.seconds)
    print()
    print(f"video duration {duration:.2f} s; median of {runs} run(s) each")
    print("| path | seconds (median) | min–max | CPU s | × realtime | × vpdq | frames |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in methods:
        s = statistics.median(m.seconds)
        print(
            f"| {m.label} | {s:.2f} | {min(m.seconds):.2f}–{max(m.seconds):.2f} | {statistics.median(m.cpu):.1f} "
            f"| {duration / s:.0f} | {ref_s / s:.1f} | {len(m.frames)} |"
        )
    pooled = methods[2]
    pooled_s = statistics.median(pooled.seconds)
    excl = max(1e-9, pooled_s - startup)
    print(
        f"takeback {WORKERS}-worker start-up + shutdown ≈ {startup:.2f} s (tiny-JPEG estimate); without it: "
        f"{excl:.2f} s, {duration / excl:.0f}× realtime, {ref_s / excl:.1f}× vpdq"
    )
    print()
    for m in methods[1:3]:
        d, matched, low = distances(ref.frames, m.frames)
        print(
            f"distance to vpdq, {m.label}: {distance_summary(d)} "
            f"(timestamps matched {matched}/{len(ref.frames)} vpdq frames, "
            f"{low} with vpdq quality < {VPDQ_QUALITY_THRESHOLD})"
        )
    same = [(f.timestamp, f.hex) for f in methods[1].frames] == [(f.timestamp, f.hex) for f in pooled.frames]
    print(f"takeback 1 segment and {WORKERS}-worker split give identical frames: {same}")
    realtime, ratio = duration / pooled_s, ref_s / pooled_s
    verdict_rt = "MET" if realtime >= TARGET_REALTIME else f"NOT met ({realtime / TARGET_REALTIME:.0%} of it)"
    verdict_ratio = "MET" if ratio >= TARGET_RATIO else f"NOT met ({ratio / TARGET_RATIO:.0%} of it)"
    print(
        f"target >= {TARGET_REALTIME:.0f}× realtime on {WORKERS} cores: {verdict_rt}; "
        f">= {TARGET_RATIO:.0f}× vpdq: {verdict_ratio}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--video",
        type=Path,
        default=CACHE / GOP1_NAME,
        help="the keyframe-every-second video; generated there if missing (default: %(default)s)",
    )
    parser.add_argument("--long-gop", action="store_true", help="also run the x264 default-GOP (250 frames) variant")
    parser.add_argument(
        "--long-gop-video",
        type=Path,
        default=CACHE / LONG_GOP_NAME,
        help="the long-GOP video; generated there if missing (default: %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per method, median reported (default: 3)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be >= 1")

    for line in machine_lines(["takeback", "vpdq", "av", "numpy", "pillow", "pdqhash"]):
        print(line)
    import av

    print(f"FFmpeg (PyAV): {av.ffmpeg_version_info}")

    videos = [ensure_video(args.video, 1.0)]
    if args.long_gop:
        videos.append(ensure_video(args.long_gop_video, None))
    print("\nmeasuring takeback's worker start-up …", flush=True)
    startup = pool_startup(CACHE)
    status = 0
    for path in videos:
        try:
            bench(path, args.runs, startup)
        except Exception:
            print(f"FAILED on {path}:")
            traceback.print_exc(file=sys.stdout)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
