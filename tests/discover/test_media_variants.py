"""The crawler's media matching with query variants: a letterboxed, an off-centre cropped and a resized copy of a
banked photo, and a letterboxed copy of a banked clip, match through the variant that finds them (and say which)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from takeback import samples
from takeback.discover.crawl_match import MediaMatcher
from takeback.discover.media_hash import MediaHashes, hash_media
from takeback.index import IndexedSignal
from takeback.signals.variants import DEFAULT_MODES, DEFAULT_QUERY_MODES, Mode, hash_image_signals
from takeback.signals.vpdq import hash_video


def _jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _hashed(data: bytes, modes: frozenset[Mode] | None = None) -> MediaHashes:
    out = hash_media(data) if modes is None else hash_media(data, query_modes=modes)
    assert isinstance(out, MediaHashes), out
    return out


def _bank_photo(path: Path) -> list[IndexedSignal]:
    """What `takeback hash` banks for a photo (its PDQ and the default modes' variants)."""
    signals = hash_image_signals(path, DEFAULT_MODES)
    values = [signals.pdq.hex, *(v.hex for v in signals.variants)]
    return [IndexedSignal(k + 1, 7, "pdq", value) for k, value in enumerate(values)]


def test_letterboxed_cropped_and_resized_copies_match(tmp_path: Path) -> None:
    photo = samples.large_photo("chelsea", size=(640, 426), grain=0)
    original = tmp_path / "original.jpg"
    photo.save(original, quality=92)
    plain = MediaMatcher([IndexedSignal(1, 7, "pdq", hash_image_signals(original, ()).pdq.hex)], {7: "case"})
    banked = MediaMatcher(_bank_photo(original), {7: "case"})

    boxed = Image.new("RGB", (640, 426 + 160), (0, 0, 0))
    boxed.paste(photo, (0, 80))
    letterboxed = _hashed(_jpeg(boxed))
    assert any(name == "border" for name, _ in letterboxed.variants)
    # Against the photo's plain PDQ alone (a bank imported from elsewhere): found through the trimmed picture.
    found = plain.match(letterboxed)
    assert [m.via for m in found if m.signal_type == "pdq"] == ["border"]
    assert found[0].as_evidence()["via"] == "border"

    cropped = _hashed(_jpeg(photo.crop((10, 40, 640 - 70, 426 - 5))))  # off-centre, ~10% of each side
    assert not plain.match(cropped)
    hits = [m for m in banked.match(cropped) if m.signal_type == "pdq"]
    assert hits and hits[0].distance <= 31

    small = _hashed(_jpeg(photo.resize((320, 213)), 70))
    assert [m.signal_type for m in banked.match(small)][:1] == ["pdq"]


def test_unrelated_photo_does_not_match_through_any_variant(tmp_path: Path) -> None:
    original = tmp_path / "original.jpg"
    samples.large_photo("astronaut", size=(512, 512), grain=0).save(original, quality=92)
    banked = MediaMatcher(_bank_photo(original), {7: "case"})
    # With the crop grid asked for (crawls leave it out by default): over a thousand queries, still no match.
    other = _hashed(_jpeg(samples.large_photo("coffee", size=(600, 400), grain=0)), DEFAULT_QUERY_MODES)
    assert len(other.variants) > 1000
    assert banked.match(other) == []


def test_letterboxed_clip_matches_the_banked_video(tmp_path: Path) -> None:
    import av

    clip = samples.write_video(tmp_path / "clip.mp4", seconds=4, fps=10, size=(320, 240), scene_seconds=2,
                               names=("astronaut", "coffee"))  # fmt: skip
    bank = hash_video(clip)
    frames = [{"hash": f.hex, "quality": f.quality, "timestamp": f.timestamp} for f in bank.frames]
    import json

    matcher = MediaMatcher([IndexedSignal(1, 7, "vpdq", json.dumps(frames))], {7: "case"})
    boxed = tmp_path / "boxed.mp4"
    with av.open(str(clip)) as src, av.open(str(boxed), mode="w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 360, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24")
            bar = np.zeros((60, 320, 3), dtype=np.uint8)
            new = av.VideoFrame.from_ndarray(np.concatenate([bar, rgb, bar]), format="rgb24")
            new.pts = i
            for packet in stream.encode(new):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    hashed = _hashed(boxed.read_bytes())
    assert [name for name, _ in hashed.variants] == ["border", "smooth"]
    video_hits = [m for m in matcher.match(hashed) if m.signal_type == "vpdq"]
    assert video_hits and video_hits[0].via == "border"
