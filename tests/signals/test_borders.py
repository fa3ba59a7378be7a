"""Border, letterbox and frame trimming: finds drawn borders, leaves borderless photos alone."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from takeback import samples
from takeback.signals import borders, pdq
from takeback.signals.regions import Box
from takeback.signals.variants import Mode, bank_variants, plane_of_rgb, query_variants

PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "moon",
    "coins",
    "clock",
    "grass",
    "immunohistochemistry",
)


def _photo(name: str, width: int = 240) -> np.ndarray:
    img = Image.fromarray(samples.photo(name))
    return np.asarray(img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS))


def _pad(rgb: np.ndarray, top: int, bottom: int, left: int, right: int, colour: tuple[int, int, int]) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), dtype=np.uint8)
    out[:] = colour
    out[top : top + h, left : left + w] = rgb
    return out


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return pdq.luma_from_rgb(rgb)


@pytest.mark.parametrize("name", PHOTOS)
def test_borderless_photos_are_left_alone(name: str) -> None:
    assert borders.find_content(_luma(_photo(name, 400))) is None


def test_blank_and_striped_images_are_not_framed() -> None:
    assert borders.find_content(np.full((100, 120), 128, dtype=np.uint8)) is None
    stripes = np.repeat((np.arange(100) % 2 * 255).astype(np.uint8)[:, None], 120, axis=1)
    assert borders.find_content(stripes) is None


def test_rejects_colour_planes() -> None:
    with pytest.raises(ValueError, match="luma plane"):
        borders.find_content(np.zeros((10, 10, 3)))


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(PHOTOS),
    st.tuples(*[st.sampled_from([0, 0.04, 0.08, 0.15, 0.3])] * 4),
    st.tuples(*[st.integers(0, 255)] * 3),
    st.sampled_from([None, 90, 60]),
)
def test_finds_generated_borders(
    name: str, sides: tuple[float, float, float, float], colour: tuple[int, int, int], quality: int | None
) -> None:
    rgb = _photo(name)
    h, w = rgb.shape[:2]
    top, bottom = round(sides[0] * h), round(sides[1] * h)
    left, right = round(sides[2] * w), round(sides[3] * w)
    # The detector sees luma only (as PDQ does): a bar as bright as the picture's edge next to it is invisible.
    luma, bar = _luma(rgb).astype(float), float(_luma(np.array([[colour]], dtype=np.uint8))[0, 0])
    edges = {"top": luma[0], "bottom": luma[-1], "left": luma[:, 0], "right": luma[:, -1]}
    padded = {"top": top, "bottom": bottom, "left": left, "right": right}
    assume(all(abs(edges[side].mean() - bar) >= 16 for side, n in padded.items() if n))
    framed = _pad(rgb, top, bottom, left, right, colour)
    if quality is not None:
        framed = _jpeg(framed, quality)
    box = borders.find_content(_luma(framed))
    if not (top or bottom or left or right):
        assert box is None
        return
    truth = Box(top, top + h, left, left + w)
    found = box or Box(0, framed.shape[0], 0, framed.shape[1])
    # JPEG ringing and anti-aliased photo edges; at quality 60 a saturated bar's colour bleeds through 16-pixel
    # chroma blocks (4:2:0), so the step is only known to within half a block.
    slack = 8 if quality == 60 else 4
    assert abs(found.top - truth.top) <= slack and abs(found.bottom - truth.bottom) <= slack
    assert abs(found.left - truth.left) <= slack and abs(found.right - truth.right) <= slack


def test_screenshot_frame_with_toolbar_is_trimmed() -> None:
    rgb = _photo("astronaut", 300)
    framed = _pad(rgb, 40, 30, 36, 36, (236, 236, 238))
    framed[:24] = (52, 54, 62)  # toolbar
    framed[8:16, 10:18] = (237, 106, 94)  # a button
    framed[8:16, 200:260] = (210, 210, 214)  # a title
    box = borders.find_content(_luma(framed))
    assert box is not None
    assert abs(box.top - 40) <= 2 and abs(box.left - 36) <= 2 and abs(box.right - 336) <= 2


def test_letterboxed_copy_matches_through_the_query_variant() -> None:
    rgb = _photo("chelsea", 320)
    original = pdq.hash_rgb(rgb).hex
    letterboxed = _jpeg(_pad(rgb, 60, 60, 0, 0, (0, 0, 0)), 80)
    assert pdq.hamming(original, pdq.hash_rgb(letterboxed).hex) > 31  # plain PDQ misses it
    extra = query_variants(plane_of_rgb(letterboxed), {Mode.BORDERS})
    assert [v.name for v in extra] == ["border"]
    assert pdq.hamming(original, extra[0].hex) <= 16
    assert query_variants(plane_of_rgb(letterboxed), {Mode.DIHEDRAL}) == []
    assert query_variants(plane_of_rgb(rgb), {Mode.BORDERS}) == []


def test_bank_side_keeps_the_picture_inside_its_own_frame() -> None:
    rgb = _photo("coffee", 300)
    framed = _pad(rgb, 20, 20, 20, 20, (255, 255, 255))
    variants = bank_variants(plane_of_rgb(framed), {Mode.BORDERS}, original=pdq.hash_rgb(framed).hex)
    assert [v.name for v in variants] == ["border"]
    assert pdq.hamming(variants[0].hex, pdq.hash_rgb(rgb).hex) <= 8
