"""The banded column pass of `PlaneHasher` against the dense full-size operator."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from takeback.signals import pdq, pdq_fast


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(min_value=pdq.MIN_HASHABLE_DIM, max_value=1100),
    width=st.integers(min_value=pdq.MIN_HASHABLE_DIM, max_value=2100),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_bands_give_the_dense_product(height: int, width: int, seed: int) -> None:
    plane = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    hasher = pdq_fast.PlaneHasher(height, width)
    hasher.hash(plane)
    dense = plane.astype(np.float64) @ pdq_fast.full_operator(width).T
    # Every output column is written, and only by the inputs its filter reaches.
    np.testing.assert_allclose(hasher._partial, dense, rtol=1e-5, atol=1e-3)
    bands = pdq_fast._bands(pdq_fast.full_operator(width))
    assert [b.first for b in bands] == list(range(0, 64, pdq_fast._BAND_OUTPUTS))


def test_bands_are_far_narrower_than_the_frame() -> None:
    bands = pdq_fast._bands(pdq_fast.full_operator(1280))
    assert max(b.stop - b.start for b in bands) <= 1280 // 8


def test_frame_hash_equals_the_dense_operators() -> None:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:720, 0:1280]
    plane = np.clip(np.sin(x / 90.0) * 90 + np.cos(y / 70.0) * 60 + 128 + rng.normal(0, 8, x.shape), 0, 255)
    plane = plane.astype(np.uint8)
    ours = pdq_fast.PlaneHasher(720, 1280).hash(plane)
    dense = pdq_fast.hash_reduced(plane, (720, 1280))
    assert pdq.hamming(ours.hex, dense.hex) <= 1
    assert abs(ours.quality - dense.quality) <= 1


def _photo_like(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    plane = np.sin(x / (width / 9.0)) * 80 + np.cos(y / (height / 7.0)) * 60 + 128 + rng.normal(0, 8, x.shape)
    return np.clip(plane, 0, 255).astype(np.uint8)


@settings(max_examples=15, deadline=None)
@given(
    height=st.integers(min_value=64, max_value=800),
    width=st.integers(min_value=64, max_value=1300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_mirror_from_one_copy_is_the_mirrored_planes_hash(height: int, width: int, seed: int) -> None:
    plane = _photo_like(height, width, seed)
    hasher = pdq_fast.PlaneHasher(height, width)
    own, mirrored = hasher.hash_and_mirror(plane, limited_range=True)
    assert own == hasher.hash(plane, limited_range=True)
    direct = hasher.hash(np.ascontiguousarray(plane[:, ::-1]), limited_range=True)
    assert pdq.hamming(mirrored.hex, direct.hex) <= 1
    assert abs(mirrored.quality - direct.quality) <= 1


def test_smooth_hasher_equals_the_dense_smooth_operators() -> None:
    from takeback.signals.regions import Plane, buffers

    plane = _photo_like(720, 1280, 3)
    ours = pdq_fast.PlaneHasher(720, 1280, smooth=True).hash(plane)
    dense = pdq_fast.hash_buffer(buffers(Plane.of_array(plane), smooth=True)[(False, False)])
    assert pdq.hamming(ours.hex, dense.hex) <= 1
    # The smoothed hash is not the plain one: the filter really changed.
    assert ours.hex != pdq_fast.PlaneHasher(720, 1280).hash(plane).hex


def test_frame_hashers_keep_one_hasher_per_size_and_filter() -> None:
    hashers = pdq_fast.FrameHashers()
    big, small = _photo_like(300, 400, 1), _photo_like(200, 380, 2)
    for plane in (big, small, big):
        assert hashers.hash(plane) == pdq_fast.PlaneHasher(*plane.shape).hash(plane)
        assert hashers.hash(plane, smooth=True) == pdq_fast.PlaneHasher(*plane.shape, smooth=True).hash(plane)
    assert len(hashers._hashers) == 4
