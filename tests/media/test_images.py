"""Formats, EXIF orientation and bad input for the image decoder."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from takeback import samples
from takeback.media.errors import CorruptMedia, EmptyFile, MediaError, NotMedia, TooLarge
from takeback.media.images import decode_image
from takeback.signals import pdq
from takeback.signals.photo import hash_image
from tests.reference import pdqhash_rgb


def ref_hash(img: Image.Image) -> pdq.PdqHash:
    return pdqhash_rgb(np.asarray(img.convert("RGB")))


@pytest.fixture(scope="module")
def base() -> Image.Image:
    return samples.large_photo("coffee", size=(1200, 800), grain=2.0)


@pytest.mark.parametrize(
    ("fmt", "suffix", "kwargs"),
    [
        ("JPEG", ".jpg", {"quality": 92}),
        ("PNG", ".png", {}),
        ("WEBP", ".webp", {"quality": 90}),
        ("TIFF", ".tif", {}),
        ("BMP", ".bmp", {}),
        ("HEIF", ".heic", {"quality": 90}),
    ],
)
def test_formats_hash_close_to_reference(
    base: Image.Image, tmp_path: Path, fmt: str, suffix: str, kwargs: dict[str, int]
) -> None:
    path = tmp_path / f"photo{suffix}"
    base.save(path, format=fmt, **kwargs)
    with Image.open(path) as decoded:
        ref = ref_hash(decoded)
    fast = hash_image(path)
    exact = hash_image(path, exact=True)
    assert pdq.hamming(fast.hex, ref.hex) <= 8
    assert exact == ref


def test_gif_uses_first_frame_of_animation(tmp_path: Path) -> None:
    first = samples.large_photo("astronaut", size=(400, 400), grain=0)
    second = samples.large_photo("rocket", size=(400, 400), grain=0)
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(path) as gif:
        ref = ref_hash(gif)  # frame 0
    assert hash_image(path, exact=True) == ref
    assert pdq.hamming(hash_image(path).hex, ref.hex) <= 8


def test_animated_webp_first_frame(tmp_path: Path) -> None:
    first = samples.large_photo("chelsea", size=(300, 200), grain=0)
    second = samples.large_photo("moon", size=(300, 200), grain=0)
    path = tmp_path / "anim.webp"
    first.save(path, save_all=True, append_images=[second], duration=100, lossless=True)
    assert hash_image(path, exact=True) == ref_hash(first)


def test_alpha_is_dropped_like_convert_rgb(tmp_path: Path) -> None:
    rgba = samples.large_photo("astronaut", size=(500, 500), grain=0).convert("RGBA")
    alpha = np.full((500, 500), 255, dtype=np.uint8)
    alpha[:, :250] = 0
    rgba.putalpha(Image.fromarray(alpha))
    path = tmp_path / "alpha.png"
    rgba.save(path)
    with Image.open(path) as img:
        ref = ref_hash(img)
    assert hash_image(path, exact=True) == ref


def test_sixteen_bit_grey_png(tmp_path: Path) -> None:
    grey = np.asarray(samples.large_photo("camera", size=(600, 600), grain=0).convert("L"), dtype=np.uint16) * 257
    path = tmp_path / "deep.png"
    Image.fromarray(grey).save(path)
    as8 = Image.fromarray((grey // 257).astype(np.uint8))
    assert pdq.hamming(hash_image(path).hex, ref_hash(as8).hex) <= 8
    assert hash_image(path).quality > 50


def test_cmyk_jpeg(base: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    base.convert("CMYK").save(path, quality=92)
    with Image.open(path) as img:
        assert img.mode == "CMYK"
        ref = ref_hash(img)
    assert pdq.hamming(hash_image(path).hex, ref.hex) <= 8
    assert hash_image(path, exact=True) == ref


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_transposed_reference(base: Image.Image, tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    base.save(path, quality=92, exif=exif)
    with Image.open(path) as img:
        upright = ImageOps.exif_transpose(img)
        ref = ref_hash(upright)
    decoded = decode_image(path)
    assert decoded.full_size == (upright.height, upright.width)
    assert hash_image(path, exact=True) == ref
    assert pdq.hamming(hash_image(path).hex, ref.hex) <= 8


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(EmptyFile):
        decode_image(path)


def test_truncated_jpeg(base: Image.Image, tmp_path: Path) -> None:
    buf = io.BytesIO()
    base.save(buf, format="JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(CorruptMedia) as info:
        hash_image(path)
    assert "truncated" in info.value.reason


def test_garbage_with_image_name(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(b"this is not a picture at all, just text" * 10)
    with pytest.raises(MediaError) as info:
        decode_image(path)
    assert isinstance(info.value, NotMedia | CorruptMedia)


def test_wrong_extension_still_hashes(base: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "actually-jpeg.png"
    base.save(path, format="JPEG", quality=90)
    assert hash_image(path).quality > 50


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(30000, 30000))  # 900 MP
    with pytest.raises(TooLarge):
        decode_image(path)


def test_pixel_limit_is_configurable(base: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    base.save(path)
    with pytest.raises(TooLarge):
        decode_image(path, max_pixels=100_000)
