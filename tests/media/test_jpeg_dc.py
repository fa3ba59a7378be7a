"""The DC-only JPEG decoder gives libjpeg-turbo's 1/8-scale luma bit for bit, and hands everything else to Pillow."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from takeback import samples
from takeback.media import images, jpeg_dc
from takeback.media.errors import CorruptMedia
from takeback.signals import pdq, pdq_fast
from takeback.signals.photo import hash_image

REQUIRE_ENV = "TAKEBACK_REQUIRE_NATIVE"


@pytest.fixture(autouse=True)
def _built() -> None:
    if not jpeg_dc.available():
        message = "takeback.media._jpeg_dc is not built (pip install -e . needs a C compiler)"
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{message} ({REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(message)


def pillow_eighth(data: bytes) -> np.ndarray:
    """libjpeg-turbo's grey decode at exactly 1/8 scale (Pillow picks 1/8 when asked for at most a 1/8 size)."""
    with Image.open(io.BytesIO(data)) as img:
        img.draft("L", (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()
        return np.asarray(img)


def encode(img: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **options)
    return buf.getvalue()


def picture(width: int, height: int, seed: int, extremes: bool) -> Image.Image:
    """Gradients, noise and (optionally) flat black and white areas, where the range limit clamps."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 128 + 100 * np.sin(x / (3 + seed % 17)) * np.cos(y / (5 + seed % 11))
    noise = rng.normal(0, 20, (height, width, 3))
    rgb = np.stack([base, base[::-1], 255 - base], axis=2) + noise
    if extremes:
        rgb[: height // 3] = 255
        rgb[-(height // 3) or height :, : width // 2] = 0
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(8, 260),
    height=st.integers(8, 260),
    seed=st.integers(0, 10_000),
    grey=st.booleans(),
    extremes=st.booleans(),
    quality=st.integers(1, 100),
    subsampling=st.sampled_from([0, 1, 2]),
    optimize=st.booleans(),
    restart=st.sampled_from(
        [None, ("restart_marker_blocks", 1), ("restart_marker_blocks", 5), ("restart_marker_rows", 1)]
    ),
)
def test_same_pixels_as_libjpeg_turbo(
    width: int,
    height: int,
    seed: int,
    grey: bool,
    extremes: bool,
    quality: int,
    subsampling: int,
    optimize: bool,
    restart: tuple[str, int] | None,
) -> None:
    img = picture(width, height, seed, extremes)
    options: dict[str, object] = {"quality": quality, "optimize": optimize}
    if grey:
        img = img.convert("L")
    else:
        options["subsampling"] = subsampling
    if restart:
        options[restart[0]] = restart[1]
    data = encode(img, **options)
    ours = jpeg_dc.luma_eighth(data)
    assert ours is not None
    expected = pillow_eighth(data)
    assert ours.shape == expected.shape == (-(-height // 8), -(-width // 8))
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize(
    "tables",
    [
        [[1] * 64, [1] * 64],  # the finest DC quantiser
        [[255] * 64, [255] * 64],  # the coarsest 8-bit one: DC values land outside 0..255 and are clamped
        [[4000] + [300] * 63, [2] * 64],  # 16-bit tables (an "extended" SOF1 file)
    ],
)
@pytest.mark.parametrize("extremes", [False, True])
def test_custom_quantisers(tables: list[list[int]], extremes: bool) -> None:
    data = encode(picture(203, 121, 7, extremes), qtables=tables)
    ours = jpeg_dc.luma_eighth(data)
    assert ours is not None
    assert np.array_equal(ours, pillow_eighth(data))


def test_refuses_what_it_does_not_decode() -> None:
    img = picture(64, 48, 1, False)
    assert jpeg_dc.parse(encode(img, progressive=True)) is None
    assert jpeg_dc.parse(encode(img.convert("CMYK"))) is None
    assert jpeg_dc.parse(encode(img, keep_rgb=True)) is None  # RGB components: libjpeg weights all three for grey
    twelve_bit = bytearray(encode(img))
    sof = twelve_bit.index(b"\xff\xc0")
    twelve_bit[sof + 4] = 12
    assert jpeg_dc.parse(bytes(twelve_bit)) is None
    assert jpeg_dc.parse(b"not a jpeg at all") is None


def test_the_trailer_decides_like_libjpeg() -> None:
    data = encode(picture(64, 48, 2, False), quality=80)
    assert data.endswith(b"\xff\xd9")
    body = data[:-2]
    comment = b"\xff\xfe\x00\x07hello"
    assert np.array_equal(jpeg_dc.luma_eighth(body + comment + b"\xff\xd9"), pillow_eighth(data))
    assert jpeg_dc.luma_eighth(body) is None  # no EOI: Pillow calls it truncated
    assert jpeg_dc.luma_eighth(body + b"\xff\xb7\xff\xd9") is None  # a marker libjpeg does not know
    assert jpeg_dc.luma_eighth(body + data[data.index(b"\xff\xda") :]) is None  # a second scan


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in edits:
        at = where % len(out)
        if kind == 0:
            out[at] = value
        elif kind == 1:
            del out[at:]
        elif kind == 2:
            out[at:at] = bytes([0xFF, value])
        else:
            out[at] ^= 1 << (value % 8)
        if not out:
            break
    return bytes(out)


_HOSTILE_BASES = [
    encode(picture(72, 40, 3, False), quality=90, subsampling=1, restart_marker_rows=1, optimize=True),
    encode(picture(80, 40, 4, True), quality=85, restart_marker_blocks=3),
    encode(picture(50, 70, 5, False).convert("L"), quality=50, optimize=True),
    encode(picture(48, 56, 6, False), qtables=[[300 + i for i in range(64)], [2] * 64]),
]


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(_HOSTILE_BASES),
    edits=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_damaged_files_never_disagree_with_pillow(base: bytes, edits: list[tuple[int, int, int]]) -> None:
    """Whatever the damage, the decoder returns None (Pillow then decides) or exactly Pillow's pixels."""
    data = _mutate(base, edits)
    ours = jpeg_dc.luma_eighth(data)
    if ours is None:
        return
    layout = jpeg_dc.parse(data)
    assert layout is not None
    if layout.width < 8 or layout.height < 8:
        return  # Pillow cannot be asked for exactly 1/8 of a picture under 8 pixels
    assert np.array_equal(ours, pillow_eighth(data))


def test_bad_arguments_are_refused_not_crashed() -> None:
    data = encode(picture(64, 48, 8, False))
    layout = jpeg_dc.parse(data)
    assert layout is not None
    rows, cols = layout.out_size
    args = [data, layout.scan_start, layout.tables, layout.plan, layout.mcus_x, layout.mcus_y, 0, 2, 2, cols, rows]
    with pytest.raises(ValueError):
        jpeg_dc._jpeg_dc.luma_dc(*args, layout.quant, bytearray(rows * cols - 1))  # output too small
    with pytest.raises(ValueError):
        jpeg_dc._jpeg_dc.luma_dc(data, len(data) + 1, *args[2:], layout.quant, bytearray(rows * cols))
    with pytest.raises(ValueError):
        jpeg_dc._jpeg_dc.luma_dc(*args[:3], b"\x00" * 55, *args[4:], layout.quant, bytearray(rows * cols))
    with pytest.raises(ValueError):
        jpeg_dc._jpeg_dc.luma_dc(*args[:6], 0, 2, 2, cols * 9, rows, layout.quant, bytearray(rows * cols * 9))


# --- the decoder inside decode_image: large photos ------------------------------------------------------------------

#: Big enough for reduction_for to ask for 1/8 (a short side of at least ~2,450 pixels).
LARGE = (2560, 2464)


@pytest.fixture(scope="module")
def large_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "photo.jpg"
    samples.large_photo("coffee", size=LARGE, grain=4.0).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def odd_large_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Neither side a multiple of 8: the last block row and column are partial."""
    path = tmp_path_factory.mktemp("odd") / "photo.jpg"
    samples.large_photo("rocket", size=(LARGE[0] + 3, LARGE[1] + 5), grain=4.0).save(path, quality=85)
    return path


@pytest.mark.parametrize("which", ["large_jpeg", "odd_large_jpeg"])
def test_decode_image_takes_the_dc_path_for_large_jpegs(
    which: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DC path and Pillow's (on a machine without the extension) give the same plane, so the same hash."""
    large_jpeg: Path = request.getfixturevalue(which)
    calls: list[int] = []
    real = jpeg_dc.luma_eighth

    def counting(data: bytes) -> np.ndarray | None:
        plane = real(data)
        calls.append(0 if plane is None else 1)
        return plane

    monkeypatch.setattr(jpeg_dc, "luma_eighth", counting)
    fast = images.decode_image(large_jpeg)
    assert calls == [1]
    assert fast.scale == 8
    monkeypatch.setattr(jpeg_dc, "_jpeg_dc", None)  # as on a machine where the extension was not built
    pillow = images.decode_image(large_jpeg)
    assert pillow.scale == 8
    assert np.array_equal(fast.luma, pillow.luma)
    assert (fast.full_size, fast.reversed_axes) == (pillow.full_size, pillow.reversed_axes)
    assert hash_image(large_jpeg) == pdq_fast.hash_reduced(pillow.luma, pillow.full_size, block=pillow.scale)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_exif_orientation_on_the_dc_path(large_jpeg: Path, tmp_path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    with Image.open(large_jpeg) as img:
        img.save(path, quality=90, exif=exif)
    data = path.read_bytes()
    assert jpeg_dc.luma_eighth(data) is not None
    decoded = images.decode_image(path, data=data)
    upright = np.rot90(pillow_eighth(data), k=_QUARTER_TURNS[orientation])  # as ImageOps.exif_transpose turns it
    assert np.array_equal(decoded.luma, upright)


_QUARTER_TURNS = {1: 0, 3: 2, 6: -1, 8: 1}  # anticlockwise quarter turns that put each orientation upright


def test_a_damaged_large_jpeg_is_reported_as_before(large_jpeg: Path, tmp_path: Path) -> None:
    data = large_jpeg.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMedia) as info:
        hash_image(cut)
    assert "truncated" in info.value.reason
    assert pdq.hamming(hash_image(large_jpeg).hex, hash_image(large_jpeg, exact=True).hex) <= 8
