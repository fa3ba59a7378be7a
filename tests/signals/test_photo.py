"""The fast reduced-scale path against the full-resolution reference, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from takeback.signals import pdq
from takeback.signals.photo import hash_image
from tests.reference import pdqhash_rgb


def reference_file_hash(path: Path) -> pdq.PdqHash:
    """The reference path: Pillow full decode to RGB, then pdqhash."""
    with Image.open(path) as img:
        return pdqhash_rgb(np.asarray(img.convert("RGB")))


def test_fast_path_is_within_bounds_of_reference(phone_photos: list[Path]) -> None:
    distances = []
    for path in phone_photos:
        ref = reference_file_hash(path)
        fast = hash_image(path)
        if ref.quality >= 50:
            distances.append(pdq.hamming(ref.hex, fast.hex))
        assert abs(fast.quality - ref.quality) <= 5
    assert len(distances) >= 10
    assert float(np.median(distances)) <= 4
    assert max(distances) <= 16


def test_exact_path_is_bit_exact_with_reference(phone_photos: list[Path]) -> None:
    for path in phone_photos[:4]:
        assert hash_image(path, exact=True) == reference_file_hash(path)


def test_fast_path_actually_reduces_large_jpegs(phone_photos: list[Path]) -> None:
    from takeback.media.images import decode_image

    decoded = decode_image(phone_photos[0])
    assert decoded.scale == 8
    assert decoded.luma.shape == (2448 // 8, 3264 // 8)
    assert decoded.full_size == (2448, 3264)


@pytest.mark.parametrize("quality", [95, 60])
def test_reencoded_copy_stays_close(phone_photos: list[Path], tmp_path: Path, quality: int) -> None:
    """A re-encoded copy (what a site republishes) hashes near the original."""
    original = phone_photos[1]
    copy = tmp_path / "copy.jpg"
    with Image.open(original) as img:
        img.resize((img.width // 2, img.height // 2)).save(copy, quality=quality)
    assert pdq.hamming(hash_image(original).hex, hash_image(copy).hex) <= 20
