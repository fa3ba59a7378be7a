"""Video matching modes in the product: `takeback hash` banks dense and mirrored frame lists (and the picture inside
a letterbox), the query side trims letterboxes, and the vPDQ rule then finds trimmed, re-timed, mirrored and
letterboxed copies that plain vPDQ misses.  The hash list carries the extra lists as version 3."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from takeback import samples
from takeback.index import IndexedSignal, Query, SignalIndex
from takeback.protect.batch import _merge_lists
from takeback.protect.hash_file import HashOptions, Task, run_task
from takeback.protect.report import to_hash_list
from takeback.protect.results import Frame
from takeback.signals import hashlist, interop, pdq
from takeback.signals.variants import DEFAULT_MODES, DEFAULT_QUERY_MODES, Mode, modes_text
from takeback.signals.vpdq import DENSE_FACTOR, VideoHash, hash_video

Frames = list[np.ndarray]


def _transcode(src: Path, dst: Path, edit: Callable[[Frames], Frames]) -> Path:
    import av

    with av.open(str(src)) as container:
        frames = edit([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    h, w = frames[0].shape[:2]
    with av.open(str(dst), mode="w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def _letterbox(frames: Frames) -> Frames:
    bar = np.zeros((frames[0].shape[0] // 4, frames[0].shape[1], 3), dtype=np.uint8)
    return [np.concatenate([bar, x, bar]) for x in frames]


EDITS: dict[str, Callable[[Frames], Frames]] = {
    "trim": lambda f: f[25:-15],
    "speed 1.5x": lambda f: [f[min(len(f) - 1, round(k * 1.5))] for k in range(int(len(f) / 1.5))],
    "mirror": lambda f: [np.ascontiguousarray(x[:, ::-1]) for x in f],
    "letterbox": _letterbox,
    "mirror + letterbox": lambda f: _letterbox([np.ascontiguousarray(x[:, ::-1]) for x in f]),
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    return samples.write_video(
        folder / "clip.mp4", seconds=8, fps=10, size=(320, 240), scene_seconds=4, names=("astronaut", "coffee"),
        gop_seconds=2.0,
    )  # fmt: skip


def _vpdq(frames: list) -> str:  # type: ignore[type-arg]
    return json.dumps([{"hash": f.hex, "quality": f.quality, "timestamp": f.timestamp} for f in frames])


def _bank(video: VideoHash) -> SignalIndex:
    index = SignalIndex()
    lists = [video.frames, *video.variants.values()]
    index.add(IndexedSignal(k + 1, 1, "vpdq", _vpdq(frames)) for k, frames in enumerate(lists))
    return index


def _found(index: SignalIndex, copy: Path, query_modes: frozenset[Mode]) -> bool:
    query = hash_video(copy, query_modes=query_modes)
    lists = [query.frames, *query.query_variants.values()]
    return any(index.match([Query("vpdq", _vpdq(frames)) for frames in lists]))


def test_dense_banks_four_frames_a_second(clip: Path) -> None:
    plain, dense = hash_video(clip), hash_video(clip, modes={Mode.DENSE})
    assert len(plain.frames) == 8 and len(dense.frames) == 8 * DENSE_FACTOR
    assert {f.hex for f in plain.frames} <= {f.hex for f in dense.frames}
    assert not dense.variants


def test_mirror_list_is_the_hash_of_the_mirrored_video(clip: Path, tmp_path: Path) -> None:

    banked = hash_video(clip, modes={Mode.DIHEDRAL})
    mirrored = hash_video(_transcode(clip, tmp_path / "m.mp4", EDITS["mirror"]))
    assert [f.timestamp for f in banked.variants["flipy"]] == [f.timestamp for f in banked.frames]
    for ours, real in zip(banked.variants["flipy"], mirrored.frames, strict=True):
        assert pdq.hamming(ours.hex, real.hex) <= 24  # the copy was re-encoded once more


#: Edits that only the dense bank (frames every quarter second, asked for with `dense`) catches.
NEEDS_DENSE = {"trim", "speed 1.5x"}


@pytest.mark.parametrize("edit", list(EDITS))
def test_modes_find_what_plain_vpdq_misses(clip: Path, tmp_path: Path, edit: str) -> None:
    copy = _transcode(clip, tmp_path / "copy.mp4", EDITS[edit])
    assert not _found(_bank(hash_video(clip)), copy, frozenset())  # plain vPDQ, 1 frame a second on both sides
    with_dense = DEFAULT_MODES | {Mode.DENSE}
    assert _found(_bank(hash_video(clip, modes=with_dense)), copy, DEFAULT_QUERY_MODES)
    if edit not in NEEDS_DENSE:  # the defaults (no dense) catch the rest
        assert _found(_bank(hash_video(clip, modes=DEFAULT_MODES)), copy, DEFAULT_QUERY_MODES)


def test_an_unrelated_clip_is_not_found(clip: Path, tmp_path: Path) -> None:
    other = samples.write_video(tmp_path / "o.mp4", seconds=8, fps=10, size=(320, 240), scene_seconds=4,
                                names=("rocket", "camera"))  # fmt: skip
    assert not _found(_bank(hash_video(clip, modes=DEFAULT_MODES)), other, DEFAULT_QUERY_MODES)


def test_smooth_lists_find_a_downscaled_clip_of_fine_texture(tmp_path: Path) -> None:
    from PIL import Image

    clip = samples.write_video(tmp_path / "brick.mp4", seconds=6, fps=10, size=(320, 240), scene_seconds=3,
                               names=("brick", "gravel"))  # fmt: skip
    def halve(frames: Frames) -> Frames:
        return [np.asarray(Image.fromarray(x).resize((160, 120), Image.Resampling.LANCZOS)) for x in frames]

    small = _transcode(clip, tmp_path / "small.mp4", halve)
    # Per frame, not through the 80%-of-frames rule: x264's output differs a little from run to run, and a clip
    # this short sits near the rule's edge; the per-frame distances show the effect with a margin.
    plain = [pdq.hamming(a.hex, b.hex) for a, b in zip(hash_video(clip).frames, hash_video(small).frames, strict=True)]
    banked = hash_video(clip, modes={Mode.SMOOTH}).variants["smooth"]
    query = hash_video(small, query_modes={Mode.SMOOTH}).query_variants["smooth"]
    smoothed = [pdq.hamming(a.hex, b.hex) for a, b in zip(banked, query, strict=True)]
    assert statistics.median(plain) >= 36, plain  # plain PDQ aliases on the fine texture
    assert statistics.median(smoothed) <= 28 and sum(d <= 31 for d in smoothed) >= len(smoothed) * 2 / 3, smoothed


def test_letterboxed_original_banks_the_picture_inside(clip: Path, tmp_path: Path) -> None:
    boxed = _transcode(clip, tmp_path / "boxed.mp4", _letterbox)
    banked = hash_video(boxed, modes={Mode.BORDERS})
    assert len(banked.variants["border"]) == len(banked.frames)
    assert not hash_video(clip, modes={Mode.BORDERS}).variants  # nothing to trim: no extra list
    assert _found(_bank(banked), clip, frozenset())  # the un-letterboxed copy matches the banked inside


def test_hash_list_carries_video_variants_as_version_3(clip: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    result = run_task(Task(str(clip)), HashOptions())
    assert {name for name, _ in result.video_variants} == {"flipy", "smooth"}
    assert len(result.frames) == 8  # `dense` is not a default
    assert len(run_task(Task(str(clip)), HashOptions(modes="default,dense")).frames) == 8 * DENSE_FACTOR
    listing = to_hash_list([result], options={"modes": modes_text(DEFAULT_MODES)})
    assert listing.header.version == 3
    out = tmp_path / "list.jsonl"
    hashlist.write(listing, out)
    again = hashlist.read(out)
    assert again.records == listing.records
    te = list(hashlist.to_threatexchange(again))
    assert sum(line.startswith("vpdq ") for line in te) == 3
    parsed = interop.read_takeback(out.read_text().splitlines())
    assert sum(s.signal_type == "vpdq" for s in parsed.signals) == 3 and not parsed.rejected
    plain = to_hash_list([run_task(Task(str(clip)), HashOptions(modes=""))])
    assert plain.header.version == 1
    monkeypatch.setattr(hashlist, "FORMAT_VERSION", 2)
    with pytest.raises(hashlist.HashListError, match="newer"):
        hashlist.read(out)


def test_query_modes_give_the_query_list_only(clip: Path, tmp_path: Path) -> None:
    boxed = _transcode(clip, tmp_path / "boxed.mp4", _letterbox)
    result = run_task(Task(str(boxed)), HashOptions(modes="", query_modes=modes_text(DEFAULT_QUERY_MODES)))
    assert not result.video_variants and [name for name, _ in result.query_video_variants] == ["border", "smooth"]
    assert len(result.frames) == 8
    assert to_hash_list([result]).header.version == 1  # query lists never go into a hash list


def test_segments_join_their_lists_and_fill_frames_without_a_border() -> None:
    frames = [Frame(k, float(k), 80, f"{k:064x}") for k in range(4)]
    first = [("border", [(0, 0.0, 70, "a" * 64), (1, 1.0, 70, "b" * 64)])]
    second: list[tuple[str, list[tuple[int, float, int, str]]]] = []  # no frame of the second half had a border
    joined = _merge_lists([first, second], frames)
    assert joined == [("border", [(0, 0.0, 70, "a" * 64), (1, 1.0, 70, "b" * 64), (2, 2.0, 80, f"{2:064x}"),
                                  (3, 3.0, 80, f"{3:064x}")])]  # fmt: skip
