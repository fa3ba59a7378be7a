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
