"""The crop grid and the smoothed hash: batched box hashes equal the per-box path; off-centre crops, edge watermarks
and resized textured photos that plain PDQ misses match bank side against query side; unrelated photos do not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from takeback import samples
from takeback.signals import boxes, crops, pdq, pdq_fast
from takeback.signals.regions import Box, Plane, buffers
from takeback.signals.variants import Mode, bank_variants, plane_of_rgb, query_variants


def _photo(name: str, width: int = 360) -> np.ndarray:
    img = Image.fromarray(samples.photo(name))
    return np.asarray(img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS))


def _best(bank: list[str], queries: list[str]) -> int:
    return min(pdq.hamming(b, q) for b in bank for q in queries)


def _sides(rgb: np.ndarray, copy: np.ndarray, modes: set[Mode]) -> tuple[list[str], list[str]]:
    original = pdq.hash_rgb(rgb).hex
    bank = [original, *(v.hex for v in bank_variants(plane_of_rgb(rgb), modes, original=original))]
    queries = [pdq.hash_rgb(copy).hex, *(v.hex for v in query_variants(plane_of_rgb(copy), modes))]
    return bank, queries


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 3), st.booleans(), st.booleans())
def test_batched_boxes_equal_the_per_box_path(seed: int, reduced: bool, reverse: bool) -> None:
    rgb = _photo(("coffee", "astronaut", "rocket", "chelsea")[seed], 300)
    luma = pdq.luma_from_rgb(rgb)
    full = luma.shape
    plane = Plane(np.ascontiguousarray(luma[::2, ::2]), full, 2, (reverse, False)) if reduced else Plane.of_array(luma)
    h, w = plane.luma.shape
    rows = crops.spans(0, h, crops.axis_cuts(crops.QUERY_GRID))[::7]
    cols = crops.spans(0, w, crops.axis_cuts(crops.BANK_GRID))
    coeff_hex = boxes.hashes_from_coefficients(boxes.grid_coefficients(plane, rows, cols))
    grid = boxes.grid_buffers(plane, rows, cols)
    for i, (top, bottom) in enumerate(rows):
        for j, (left, right) in enumerate(cols):
            one = pdq_fast.hash_buffer(buffers(plane, Box(top, bottom, left, right))[(False, False)])
            assert pdq.hamming(one.hex, coeff_hex[i * len(cols) + j]) <= 2
            assert pdq_fast.hash_buffer(grid[i, j]) == one


def test_grid_sizes_and_names() -> None:
    assert len(crops.axis_cuts(crops.BANK_GRID)) == 8 and crops.axis_cuts(crops.BANK_GRID)[0] == (0.0, 0.0)
    assert len(crops.axis_cuts(crops.QUERY_GRID)) == 34
    assert crops.grid_name((0.1, 0.0), (0.2, 0.02)) == "grid_t10b00l20r02"
    rgb = _photo("astronaut", 320)
    names = [v.name for v in bank_variants(plane_of_rgb(rgb), {Mode.GRID})]
    assert len(names) == len(set(names)) == 63 and all(n.startswith("grid_") for n in names)
    queries = query_variants(plane_of_rgb(rgb), {Mode.GRID})
    assert 1100 <= len(queries) <= 1155 and len({q.hex for q in queries}) == len(queries)


CUTS = [("astronaut", (0.01, 0.09, 0.15, 0.04)), ("coffee", (0.12, 0.03, 0.0, 0.17))]  # top, bottom, left, right


@pytest.mark.parametrize(("name", "cut"), CUTS)
def test_off_centre_crop_matches_bank_grid_against_query_grid(name: str, cut: tuple[float, ...]) -> None:
    rgb = _photo(name)
    h, w = rgb.shape[:2]
    top, bottom, left, right = cut
    copy = np.ascontiguousarray(rgb[round(top * h) : h - round(bottom * h), round(left * w) : w - round(right * w)])
    plain = pdq.hamming(pdq.hash_rgb(rgb).hex, pdq.hash_rgb(copy).hex)
    assert plain > 31  # plain PDQ misses it
    bank, queries = _sides(rgb, copy, {Mode.GRID})
    assert _best(bank, queries) <= 31


def test_corner_logo_watermark_is_cut_off_on_both_sides() -> None:
    rgb = _photo("retina", 400)  # dark corners: a bright logo there moves plain PDQ far
    img = Image.fromarray(rgb)
    side = img.width // 10
    draw = ImageDraw.Draw(img)
    for k in range(6):  # a colourful, busy mark in the top-right corner
        draw.rectangle((img.width - side - 10, 10 + k * side // 6, img.width - 10, 10 + (k + 1) * side // 6),
                       fill=((k * 90) % 256, 255 - k * 40, (k * 150) % 256))  # fmt: skip
    copy = np.asarray(img)
    bank, queries = _sides(rgb, copy, {Mode.GRID})
    assert pdq.hamming(bank[0], queries[0]) > 31
    assert _best(bank, queries) <= 31


def test_smoothed_hash_does_not_depend_on_the_resolution() -> None:
    """Brick: fine periodic texture aliases into plain PDQ differently at every size."""
    rgb = np.asarray(Image.fromarray(samples.photo("brick")).convert("RGB"))
    for factor in (0.7, 0.5, 0.4, 0.25):
        size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
        copy = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
        bank, queries = _sides(rgb, copy, {Mode.SMOOTH})
        smooth_bank = bank_variants(plane_of_rgb(rgb), {Mode.SMOOTH})[0].hex
        smooth_query = query_variants(plane_of_rgb(copy), {Mode.SMOOTH})[0].hex
        assert pdq.hamming(smooth_bank, smooth_query) <= 31, factor
        assert _best(bank, queries) <= 31


def test_smooth_operator_is_a_blur_of_the_pdq_operator() -> None:
    op = pdq_fast.smooth_operator(500)
    assert op.shape == (64, 500) and np.allclose(op.sum(axis=1), 1.0)
    assert (op >= -1e-12).all()
    # wider than PDQ's own tent: the rows reach further
    assert (op > 1e-6).sum(axis=1).mean() > (pdq_fast.full_operator(500) > 1e-6).sum(axis=1).mean()


@pytest.mark.parametrize(("a", "b"), [("astronaut", "camera"), ("coffee", "chelsea"), ("grass", "gravel")])
def test_unrelated_photos_stay_far_apart_with_every_mode(a: str, b: str) -> None:
    modes = {Mode.GRID, Mode.SMOOTH, Mode.CROPS, Mode.DIHEDRAL, Mode.BORDERS}
    bank, queries = _sides(_photo(a), _photo(b), modes)
    assert _best(bank, queries) > 60
