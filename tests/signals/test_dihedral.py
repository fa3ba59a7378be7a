"""Dihedral PDQ: the reference trick bit for bit, and the transformed hashes equal to hashing the transformed image."""

from __future__ import annotations

import numpy as np
import pdqhash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from takeback import samples
from takeback.signals import dihedral, pdq, pdq_fast, regions
from takeback.signals.photo import hash_image
from takeback.signals.variants import Mode, hash_image_variants

#: The transform, as an array operation, that each name in dihedral.NAMES stands for.
TRANSFORMS = {
    "original": lambda a: a,
    "rotate90": lambda a: np.rot90(a, 1),
    "rotate180": lambda a: np.rot90(a, 2),
    "rotate270": lambda a: np.rot90(a, -1),
    "flipx": lambda a: a[::-1],
    "flipy": lambda a: a[:, ::-1],
    "flipplus1": lambda a: np.swapaxes(a, 0, 1),
    "flipminus1": lambda a: np.swapaxes(np.rot90(a, 2), 0, 1),
}


def _bits_hex(bits: np.ndarray) -> str:
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def _small(name: str, width: int) -> np.ndarray:
    img = Image.fromarray(samples.photo(name))
    return np.asarray(img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS))


def _transformed(rgb: np.ndarray) -> list[pdq.PdqHash]:
    plane = regions.Plane.of_array(pdq.luma_from_rgb(rgb))
    return [pdq_fast.hash_buffer(b) for b in dihedral.expand_buffers(regions.buffers(plane, flips=True))]


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_reference_variants_equal_pdqhash_bit_for_bit(name: str) -> None:
    rgb = _small(name, 300)
    expected, quality = pdqhash.compute_dihedral(rgb)
    ours = dihedral.reference_dihedral_luma(pdq.luma_from_rgb(rgb))
    assert [h.hex for h in ours] == [_bits_hex(b) for b in expected]
    assert all(h.quality == quality for h in ours)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "rocket", "hubble_deep_field"])
def test_transformed_variants_equal_the_hash_of_the_transformed_image(name: str) -> None:
    rgb = _small(name, 320)
    ours = _transformed(rgb)
    for variant, h in zip(dihedral.NAMES, ours, strict=True):
        real = pdq.hash_rgb(np.ascontiguousarray(TRANSFORMS[variant](rgb)))
        assert pdq.hamming(h.hex, real.hex) <= 2, variant
    # ... which is what a platform computes on a mirrored upload; the reference trick is measurably further off.
    trick = dihedral.reference_dihedral_luma(pdq.luma_from_rgb(rgb))
    assert all(pdq.hamming(a.hex, b.hex) <= 2 for a, b in zip(ours, _transformed(rgb), strict=True))
    assert trick[0].hex == ours[0].hex or pdq.hamming(trick[0].hex, ours[0].hex) <= 2


smooth_images = arrays(
    np.uint8, st.tuples(st.integers(24, 72), st.integers(24, 72), st.just(3)), elements=st.integers(0, 255)
)


@settings(max_examples=25, deadline=None)
@given(smooth_images, st.sampled_from(list(TRANSFORMS)))
def test_variants_of_a_transformed_image_are_the_same_set(rgb: np.ndarray, transform: str) -> None:
    """The eight hashes are a property of the picture, not of its orientation: a flipped copy's set is the same."""
    original = {h.hex for h in _transformed(rgb)}
    moved = {h.hex for h in _transformed(np.ascontiguousarray(TRANSFORMS[transform](rgb)))}
    assert sum(min(pdq.hamming(a, b) for b in moved) for a in original) <= 2 * len(original)


def test_fast_path_variants_match_transformed_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Through the real decode (reduced scale): each banked flip is within a few bits of hashing the flipped file."""
    photo = samples.large_photo("coffee", size=(1600, 1200), grain=0)
    path = tmp_path / "photo.png"
    photo.save(path)
    main, variants = hash_image_variants(path, {Mode.DIHEDRAL})
    assert main == hash_image(path)
    by_name = {v.name: v.hex for v in variants}
    for name, op in (
        ("flipy", Image.Transpose.FLIP_LEFT_RIGHT),
        ("rotate90", Image.Transpose.ROTATE_90),
        ("rotate180", Image.Transpose.ROTATE_180),
    ):
        copy = tmp_path / f"{name}.png"
        photo.transpose(op).save(copy)
        assert pdq.hamming(by_name[name], hash_image(copy).hex) <= 8, name
        assert pdq.hamming(main.hex, hash_image(copy).hex) > 31  # plain PDQ misses it


def test_tiny_images_hash_to_zeros_like_the_reference() -> None:
    hashes = dihedral.reference_dihedral_luma(np.zeros((3, 40), dtype=np.float32))
    assert {h.hex for h in hashes} == {"0" * 64} and {h.quality for h in hashes} == {0}
