"""Frame sampling and the fast vPDQ path against the `vpdq` reference."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from takeback.media import video
from takeback.media.errors import CorruptMedia, EmptyFile, NoVideoStream
from takeback.signals import pdq
from takeback.signals.pdq_fast import PlaneHasher
from takeback.signals.vpdq import VPDQ_QUALITY_THRESHOLD, hash_video


def _vpdq():  # type: ignore[no-untyped-def]
    return pytest.importorskip("vpdq", reason="the vpdq reference needs ffmpeg headers to build")


def _distances(ours_path: Path, exact: bool = False) -> list[int]:
    vpdq = _vpdq()
    ours = hash_video(ours_path, exact=exact)
    ref = {round(f.timestamp, 3): f for f in vpdq.computeHash(str(ours_path), seconds_per_hash=1.0)}
    out = []
    for frame in ours.frames:
        match = ref.get(round(frame.timestamp, 3))
        assert match is not None, f"no reference frame at {frame.timestamp}"
        if match.quality >= VPDQ_QUALITY_THRESHOLD:
            out.append(pdq.hamming(match.hex, frame.hex))
    return out


def test_samples_one_frame_per_second(short_video: Path) -> None:
    frames = list(video.sample_frames(short_video))
    assert [f.timestamp for f in frames] == [float(i) for i in range(8)]
    assert [f.frame_number for f in frames] == [30 * i for i in range(8)]
    assert all(f.luma.shape == (240, 320) for f in frames)


def test_samples_inside_long_gop(long_gop_video: Path) -> None:
    frames = list(video.sample_frames(long_gop_video, interval=0.5))
    assert len(frames) == 16
    # The frame on screen at each instant: within a frame (1/25 s) of it.
    for i, frame in enumerate(frames):
        assert abs(frame.timestamp - i * 0.5) <= 1 / 25 + 1e-6


def test_segment_bounds(short_video: Path) -> None:
    frames = list(video.sample_frames(short_video, start=3, end=6))
    assert [f.timestamp for f in frames] == [3.0, 4.0, 5.0]


def _every_frame(path: Path) -> dict[float, np.ndarray]:
    """Each frame's luma by presentation time, from a plain decode of the whole stream."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        origin = stream.start_time or 0
        return {
            round(float((frame.pts - origin) * stream.time_base), 6): video._luma_of(frame)[0].copy()
            for frame in container.decode(stream)
        }


def test_unreferenced_frames_are_skipped_without_changing_any_frame(
    long_gop_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[float] = []
    keep = video._Sampler._keep

    def counting(self: video._Sampler, frames: dict, frame: object, wanted: list[float]) -> None:
        decoded.append(1)
        keep(self, frames, frame, wanted)

    monkeypatch.setattr(video._Sampler, "_keep", counting)
    sampled = list(video.sample_frames(long_gop_video, interval=0.5))
    with_skipping = len(decoded)
    decoded.clear()
    with monkeypatch.context() as plain:
        plain.setattr(video._Decoders, "skip_unwanted", lambda self, ctx, skip: None)
        unskipped = list(video.sample_frames(long_gop_video, interval=0.5))
    # The B-frames nothing is predicted from were not decoded...
    assert with_skipping < len(decoded)
    # ...and every sampled frame is still the one a full decode shows, bit for bit.
    every = _every_frame(long_gop_video)
    assert [f.timestamp for f in sampled] == [f.timestamp for f in unskipped]
    for frame in sampled:
        np.testing.assert_array_equal(frame.luma, every[frame.timestamp])


def test_keyframes_decoded_alone_may_skip_the_loop_filter(short_video: Path) -> None:
    filtered = list(video.sample_frames(short_video))
    unfiltered = list(video.sample_frames(short_video, deblock=False))
    assert [f.timestamp for f in unfiltered] == [f.timestamp for f in filtered]
    # The filter really was left out (pixels differ), and PDQ hardly notices.
    assert any(not np.array_equal(a.luma, b.luma) for a, b in zip(filtered, unfiltered, strict=True))
    hasher = PlaneHasher(240, 320)
    distances = [
        pdq.hamming(hasher.hash(a.luma, limited_range=True).hex, hasher.hash(b.luma, limited_range=True).hex)
        for a, b in zip(filtered, unfiltered, strict=True)
    ]
    assert max(distances) <= 4


def test_frames_decoded_past_a_keyframe_keep_the_loop_filter(long_gop_video: Path) -> None:
    """Later frames are predicted from the keyframe: an unfiltered one would carry its error into them."""
    every = _every_frame(long_gop_video)
    frames = list(video.sample_frames(long_gop_video, interval=0.5, deblock=False))
    assert len(frames) == 16
    for frame in frames:
        np.testing.assert_array_equal(frame.luma, every[frame.timestamp])


@pytest.mark.parametrize("fixture", ["short_video", "long_gop_video"])
def test_fast_path_close_to_vpdq(fixture: str, request: pytest.FixtureRequest) -> None:
    distances = _distances(request.getfixturevalue(fixture))
    assert len(distances) >= 6
    assert float(np.median(distances)) <= 8


def test_exact_path_identical_to_vpdq(short_video: Path) -> None:
    distances = _distances(short_video, exact=True)
    assert len(distances) >= 6
    assert max(distances) == 0


def test_same_frame_count_and_timestamps_as_vpdq(short_video: Path) -> None:
    ours = hash_video(short_video)
    ref = _vpdq().computeHash(str(short_video), seconds_per_hash=1.0)
    assert [f.frame_number for f in ours.frames] == [f.frame_number for f in ref]
    assert ours.duration == pytest.approx(8.0, abs=0.1)


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "voice.m4a"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = i * 1024
            frame.time_base = Fraction(1, 16000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(NoVideoStream):
        hash_video(path)


def test_missing_index_is_reported(short_video: Path, tmp_path: Path) -> None:
    """An MP4 cut before its index (moov at the end, as phones write while recording)."""
    data = short_video.read_bytes()
    moov = data.rfind(b"moov")
    assert moov > len(data) // 2, "test needs an MP4 with the index at the end"
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: moov - 4])
    with pytest.raises(CorruptMedia):
        hash_video(path)


def test_damage_part_way_keeps_earlier_frames(long_gop_video: Path, tmp_path: Path) -> None:
    """Matroska cut in the middle: the frames before the cut are kept."""
    data = long_gop_video.read_bytes()
    path = tmp_path / "half.mkv"
    path.write_bytes(data[: len(data) // 2])
    result = hash_video(path)
    assert 1 <= len(result.frames) < 8


def test_empty_video_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(EmptyFile):
        hash_video(path)
