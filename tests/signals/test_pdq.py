"""Our numpy PDQ against Meta's reference (`pdqhash`) on the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeback import samples
from takeback.signals import pdq
from tests.reference import pdqhash_rgb as reference


@pytest.mark.parametrize("name", samples.PHOTO_NAMES)
def test_bit_exact_on_bundled_photos(name: str) -> None:
    rgb = samples.photo(name)
    assert pdq.hash_rgb(rgb) == reference(rgb)


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(min_value=5, max_value=700),
    width=st.integers(min_value=5, max_value=700),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    smooth=st.booleans(),
)
def test_bit_exact_on_generated_images(height: int, width: int, seed: int, smooth: bool) -> None:
    rng = np.random.default_rng(seed)
    if smooth:  # gradients and blobs, like photos, rather than pure noise
        y, x = np.mgrid[0:height, 0:width]
        base = np.sin(x / (width / 3.0 + 1)) * 100 + np.cos(y / (height / 4.0 + 1)) * 100 + 128
        rgb = np.clip(base[..., None] + rng.normal(0, 10, (height, width, 3)), 0, 255).astype(np.uint8)
    else:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert pdq.hash_rgb(rgb) == reference(rgb)


def test_constant_image_matches_reference() -> None:
    rgb = np.full((300, 200, 3), 77, dtype=np.uint8)
    assert pdq.hash_rgb(rgb) == reference(rgb)


def test_too_small_image_gets_zero_quality() -> None:
    tiny = np.zeros((3, 3, 3), dtype=np.uint8)
    assert pdq.hash_rgb(tiny).quality == 0


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_hamming_counts_differing_bits(a: bytes, b: bytes) -> None:
    expected = sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))
    assert pdq.hamming(a.hex(), b.hex()) == expected
    assert pdq.hamming(a.hex(), a.hex()) == 0


@given(st.binary(min_size=32, max_size=32))
def test_hex_bits_round_trip(raw: bytes) -> None:
    assert pdq.bits_to_hex(pdq.hex_to_bits(raw.hex())) == raw.hex()
