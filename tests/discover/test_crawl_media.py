"""Hashing fetched media from memory (the same PDQ as `takeback hash`, never a file on disk) and matching it
against a case's banks: images, clips, exact copies, low-quality frames, hostile bytes."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from takeback.discover.crawl_match import MediaMatcher
from takeback.discover.media_hash import HashFailure, MediaHashes, hash_image_bytes, hash_media, hash_video_bytes
from takeback.index import IndexedSignal
from takeback.signals.photo import hash_image
from tests.discover.crawl_site import BANKED, OTHERS, clip, jpeg, photo


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.mark.parametrize("size", [(320, 240), (1600, 1200)])
def test_image_hash_is_takeback_hash(tmp_path: Path, size: tuple[int, int]) -> None:
    data = jpeg(BANKED, size, 90)
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    reference = hash_image(path)
    hashed = hash_image_bytes(data)
    assert hashed.frames[0].pdq == reference.hex and hashed.frames[0].quality == reference.quality
    assert (hashed.width, hashed.height, hashed.size, hashed.format) == (*size, len(data), "JPEG")


def test_exif_orientation_and_alpha() -> None:
    upright = hash_image_bytes(jpeg(BANKED, (320, 240), 95)).frames[0].pdq
    rotated = Image.fromarray(photo(BANKED)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated back by 90°: the picture as shown is the upright one
    out = io.BytesIO()
    rotated.save(out, "JPEG", quality=95, exif=exif)
    shown = hash_image_bytes(out.getvalue())
    assert (shown.width, shown.height) == (320, 240)
    assert _distance(shown.frames[0].pdq, upright) <= 16
    rgba = Image.fromarray(photo(BANKED)).convert("RGBA")
    out = io.BytesIO()
    rgba.save(out, "PNG")
    assert _distance(hash_image_bytes(out.getvalue()).frames[0].pdq, upright) <= 16


def test_video_clip_frames() -> None:
    data = clip(BANKED, "mp4")
    hashed = hash_video_bytes(data)
    still = hash_image_bytes(jpeg(BANKED, (160, 120), 95)).frames[0].pdq
    assert hashed.kind == "video" and 1 <= len(hashed.frames) <= 8 and hashed.width == 160
    assert all(_distance(f.pdq, still) <= 31 for f in hashed.frames)
    times = [f.timestamp for f in hashed.frames]
    assert times == sorted(times) and all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert isinstance(hash_media(clip(BANKED, "mpegts")), MediaHashes)


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", b"")


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not-media"),
        (b"<html>hello</html>", "not-media"),
        (jpeg(BANKED)[:200], "corrupt"),
        (jpeg(BANKED)[:3000], "corrupt"),
        (_png_header(20_000, 20_000), "too-large"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 500, "not-media"),
        (clip(BANKED, "mp4")[:300], "not-media"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 400, "not-media"),
    ],
)
def test_hostile_bytes_never_raise(data: bytes, code: str) -> None:
    result = hash_media(data)
    assert isinstance(result, HashFailure)
    assert result.code == code, result.reason
    assert result.size == len(data) and len(result.sha256) == 64


def test_matcher() -> None:
    banked = hash_image_bytes(jpeg(BANKED, (640, 480), 92))
    exact_copy = jpeg(OTHERS[0])
    exact = hash_image_bytes(exact_copy)
    flat = Image.fromarray(np.full((200, 200, 3), 128, np.uint8))
    out = io.BytesIO()
    flat.save(out, "PNG")
    flat_hash = hash_image_bytes(out.getvalue())
    signals = [
        IndexedSignal(1, 10, "pdq", banked.frames[0].pdq),
        IndexedSignal(2, 11, "md5", exact.md5),
        IndexedSignal(3, 10, "pdq", flat_hash.frames[0].pdq),
    ]
    matcher = MediaMatcher(signals, {10: "photos", 11: "exact"}, pdq_threshold=31)
    copy = matcher.match(hash_image_bytes(jpeg(BANKED, (300, 225), 60)))
    assert [(m.signal_id, m.bank, m.signal_type) for m in copy] == [(1, "photos", "pdq")] and copy[0].distance <= 31
    assert [(m.signal_id, m.distance, m.signal_type) for m in matcher.match(exact)] == [(2, 0, "md5")]
    # A flat picture's hash has no quality: it is never matched (it would match any other flat picture).
    assert flat_hash.frames[0].quality < 50 and matcher.match(flat_hash) == []
    assert matcher.match(hash_image_bytes(jpeg(OTHERS[1]))) == []
    in_clip = matcher.match(hash_video_bytes(clip(BANKED, "mp4")))
    assert in_clip and in_clip[0].signal_id == 1 and in_clip[0].frame_s is not None
    assert MediaMatcher([], {}).match(banked) == []
