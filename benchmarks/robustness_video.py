"""The robustness suite's video table: clips, their transformed copies, and what each matching mode finds.

Clips are Ken-Burns pans over two photos each (no photo in two clips, so a copy of one clip has no true match in
another), plus distractor clips over generated "dead leaves" images that are only ever in the bank.  Every column
calls the product: `takeback.signals.vpdq.hash_video` with the column's modes on the bank side (what `takeback hash`
banks) and with the query modes on the query side (what takeback's matchers send), and `takeback.index.SignalIndex`
with its vPDQ rule (`takeback.index.video.VideoRule`) to match.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from robustness_corpus import PHOTO_NAMES, Rgb, _resize, bundled_photo, dead_leaves, rng_for
from takeback.signals.variants import DEFAULT_MODES, DEFAULT_QUERY_MODES, Mode


def _transcode(
    src: Path, dst: Path, edit: Callable[[list[Rgb]], list[Rgb]], fps: int, codec: str = "libx264", crf: int = 23
) -> Path:
    import av

    with av.open(str(src)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    frames = edit(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(dst), mode="w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def _resize_frames(frames: list[Rgb], f: float) -> list[Rgb]:
    return [np.asarray(_resize(Image.fromarray(x), f)) for x in frames]


def _speed(frames: list[Rgb], factor: float) -> list[Rgb]:
    count = int(len(frames) / factor)
    return [frames[min(len(frames) - 1, round(k * factor))] for k in range(count)]


def _letterbox(frames: list[Rgb]) -> list[Rgb]:
    out = []
    for x in frames:
        bar = np.zeros((x.shape[0] // 4, x.shape[1], 3), dtype=np.uint8)
        out.append(np.concatenate([bar, x, bar]))
    return out


VIDEO_TRANSFORMS: tuple[tuple[str, Callable[[list[Rgb]], list[Rgb]], dict[str, object]], ...] = (
    ("re-encode crf 35", lambda f: f, {"crf": 35}),
    ("re-encode mpeg4", lambda f: f, {"codec": "mpeg4"}),
    ("trim (drop first 2.5 s, last 1.5 s)", lambda f: f[25:-15], {}),
    ("resize 50%", lambda f: _resize_frames(f, 0.5), {}),
    ("flip horizontal", lambda f: [np.ascontiguousarray(x[:, ::-1]) for x in f], {}),
    ("letterbox", _letterbox, {}),
    ("speed 1.5x", lambda f: _speed(f, 1.5), {}),
    ("speed 0.75x", lambda f: _speed(f, 0.75), {}),
    ("flip + letterbox + crf 30", lambda f: _letterbox([np.ascontiguousarray(x[:, ::-1]) for x in f]), {"crf": 30}),
)


#: (column, bank modes, query modes).
VIDEO_COLUMNS: tuple[tuple[str, frozenset[Mode], frozenset[Mode]], ...] = (
    ("vPDQ", frozenset(), frozenset()),
    ("dihedral", frozenset({Mode.DIHEDRAL}), frozenset()),
    ("borders", frozenset({Mode.BORDERS}), frozenset({Mode.BORDERS})),
    ("dense", frozenset({Mode.DENSE}), frozenset()),
    ("smooth", frozenset({Mode.SMOOTH}), frozenset({Mode.SMOOTH})),
    ("default", DEFAULT_MODES, DEFAULT_QUERY_MODES),
    # dense is asked for (it makes hashing a long video ~10x slower), so the opt-in it needs is a column of its own
    ("default + dense", DEFAULT_MODES | {Mode.DENSE}, DEFAULT_QUERY_MODES),
)


def _vpdq(frames: list) -> str:  # type: ignore[type-arg]
    return json.dumps([{"hash": f.hex, "quality": f.quality, "timestamp": f.timestamp} for f in frames])


def _write_clips(workdir: Path, clips: int, distractors: int) -> tuple[list[Path], list[Path]]:
    from takeback import samples

    def clip(path: Path, sources: list[Rgb]) -> Path:
        return samples.write_video(
            path, seconds=10, fps=10, size=(320, 240), scene_seconds=5, sources=sources, gop_seconds=2.0
        )

    originals = [
        clip(workdir / f"clip{k}.mp4", [bundled_photo(PHOTO_NAMES[2 * k]), bundled_photo(PHOTO_NAMES[2 * k + 1])])
        for k in range(clips)
    ]
    others = [
        clip(workdir / f"distractor{k}.mp4", [dead_leaves(rng_for("clip", str(k), s), 320) for s in "ab"])
        for k in range(distractors)
    ]
    return originals, others


def run_video(clips: int, distractors: int, workdir: Path) -> tuple[list[str], list[str]]:
    """(table lines, cost lines)."""
    from takeback.index import IndexedSignal, Query, SignalIndex
    from takeback.signals.vpdq import hash_video

    if 2 * clips > len(PHOTO_NAMES):
        raise ValueError(f"at most {len(PHOTO_NAMES) // 2} clips: no photo may be in two clips")
    originals, others = _write_clips(workdir, clips, distractors)
    indexes: dict[str, SignalIndex] = {}
    owner: dict[int, int] = {}  # signal id -> clip (distractors: clips, clips+1, ...)
    bank_frames: dict[str, list[int]] = {}
    bank_seconds: dict[str, float] = {}
    sid = 0
    for column, modes, _query in VIDEO_COLUMNS:
        signals = []
        started = time.perf_counter()
        for k, path in enumerate(originals + others):
            hashed = hash_video(path, interval=1.0, modes=modes)
            lists = [hashed.frames, *hashed.variants.values()]
            if k < clips:
                bank_frames.setdefault(column, []).append(sum(len(x) for x in lists))
            for frames in lists:
                sid += 1
                owner[sid] = k
                signals.append(IndexedSignal(sid, 1, "vpdq", _vpdq(frames)))
        bank_seconds[column] = (time.perf_counter() - started) / len(originals + others)
        index = SignalIndex()
        index.add(signals)
        indexes[column] = index

    def matched(column: str, query_modes: frozenset[Mode], path: Path) -> set[int]:
        hashed = hash_video(path, interval=1.0, query_modes=query_modes)
        lists = [hashed.frames, *hashed.query_variants.values()]
        hits: set[int] = set()
        for result in indexes[column].match([Query("vpdq", _vpdq(f)) for f in lists if f]):
            hits |= {owner[m.signal_id] for m in result}
        return hits

    lines = [
        f"Clips: {clips} (10 s, 10 fps, 320x240, Ken-Burns pans over two bundled photos each, no photo in two clips, "
        f"x264) and {distractors} distractor clips over generated dead-leaves images, in the bank only; one query "
        "frame per second; matched with takeback's vPDQ rule (`takeback.index.video.VideoRule`: frames of quality "
        "≥ 50, frame distance ≤ 31, ≥ 80% of the query's frames matched). Bank side: `signals.vpdq.hash_video` with "
        "the column's modes (`dense`: frames every 0.25 s; `dihedral`: the mirrored frames as a second list; "
        "`borders`: each frame inside its letterbox, on both sides; `smooth`: each frame's smoothed PDQ, on both "
        "sides). Cells: copies found / clips (false matches to "
        "other clips and distractors in brackets).",
        "",
        "| transformation | " + " | ".join(c for c, _, _ in VIDEO_COLUMNS) + " |",
        "|---|" + "---:|" * len(VIDEO_COLUMNS),
    ]
    false_hits = {c: 0 for c, _, _ in VIDEO_COLUMNS}
    for label, edit, opts in VIDEO_TRANSFORMS:
        copies = []
        for k, path in enumerate(originals):
            copy = workdir / f"copy{k}-{zlib.crc32(label.encode())}.mp4"
            _transcode(path, copy, edit, 10, **opts)  # type: ignore[arg-type]
            copies.append((k, copy))
        cells = []
        for column, _modes, query_modes in VIDEO_COLUMNS:
            found = wrong = 0
            for k, copy in copies:
                hits = matched(column, query_modes, copy)
                found += k in hits
                wrong += len(hits - {k})
            false_hits[column] += wrong
            cells.append(f"{found}/{len(copies)} ({wrong})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    pairs = len(VIDEO_TRANSFORMS) * clips * (clips - 1 + distractors)
    lines += [
        "",
        f"Video false matches: {', '.join(f'{c} {n}' for c, n in false_hits.items())} over {pairs:,} (copy, other "
        f"clip) pairs (95% upper bound with none found: {3 / max(pairs, 1):.1e} per pair). Each video frame is a PDQ "
        "hash under the same threshold, so the photo pool above is the per-frame measurement.",
    ]
    cost = [
        "| video mode | bank frame hashes per 10 s clip | bank hashing ms per clip |",
        "|---|---:|---:|",
    ]
    for column, _m, _q in VIDEO_COLUMNS:
        cost.append(f"| {column} | {np.mean(bank_frames[column]):.0f} | {1000 * bank_seconds[column]:.0f} |")
    return lines, cost
