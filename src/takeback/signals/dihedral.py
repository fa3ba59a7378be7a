"""PDQ of the eight flips and quarter-turns of an image (the dihedral group D4).

Re-uploaders mirror and rotate photos to dodge matching, and plain PDQ of a
mirrored photo is ~128 bits (unrelated) from the original.  Two ways to get the
eight hashes, both from one decode:

* **reference** (`reference_variants`): the trick in Meta's pdqhash
  (``pdqDihedralHash256esFromFloatLuma``): a flip negates the DCT coefficients
  of odd frequency along the flipped axis and a transpose transposes them, so
  all eight come from one 16x16 DCT.  Bit-exact with `pdqhash.compute_dihedral`.
  But the reference's blur window and decimation grid are not mirror-symmetric,
  so these differ from the hash a platform computes on an *actually* flipped
  copy by ~10-16 bits on 512-pixel photos: half the matching budget.
* **transformed** (`transformed_buffers`): the 64x64 buffer of the flipped
  image itself, from the full-size PDQ operator with its rows or columns
  mirrored (`signals.pdq_fast`).  Four buffers (identity, two flips, both); the
  four transposed variants are their transposes, because PDQ treats rows and
  columns alike.  These equal the hash of the flipped file within the
  fast path's 0-2 bits, so this is what takeback banks.

Names and order follow pdqhash: original, rotate90 (np.rot90: a quarter turn
anticlockwise), rotate180, rotate270, flipx (upside down), flipy (mirrored
left-right), flipplus1 (transpose), flipminus1 (anti-transpose).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from takeback.signals import pdq

NAMES: tuple[str, ...] = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)

_I, _J = np.indices((16, 16))
#: For each variant: which input coefficients change sign, and whether the result is transposed (pdqhash's tables).
_RULES: tuple[tuple[npt.NDArray[np.bool_], bool], ...] = (
    (np.zeros((16, 16), dtype=bool), False),
    (_J % 2 == 0, True),
    ((_I + _J) % 2 == 1, False),
    (_I % 2 == 0, True),
    (_I % 2 == 0, False),
    (_J % 2 == 0, False),
    (np.zeros((16, 16), dtype=bool), True),
    ((_I + _J) % 2 == 1, True),
)

Float64Array = npt.NDArray[np.float64]


def reference_variants(coeffs: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """(..., 16, 16) DCT coefficients -> (..., 8, 16, 16), in `NAMES` order, as pdqhash derives them."""
    out = []
    for negate, transpose in _RULES:
        c = np.where(negate, -coeffs, coeffs)
        out.append(np.swapaxes(c, -1, -2) if transpose else c)
    return np.stack(out, axis=-3)


def reference_dihedral_luma(luma: npt.NDArray[np.float32]) -> list[pdq.PdqHash]:
    """The eight hashes `pdqhash.compute_dihedral` gives for this (H, W) float32 luma plane, bit for bit."""
    luma = np.asarray(luma, dtype=np.float32)
    rows, cols = luma.shape
    if rows < pdq.MIN_HASHABLE_DIM or cols < pdq.MIN_HASHABLE_DIM:
        return [pdq.PdqHash("0" * pdq.HEX_LENGTH, 0) for _ in NAMES]
    buf = pdq.downsample_64(luma[None])
    quality = int(pdq.quality_64(buf)[0])
    variants = reference_variants(pdq.dct_16(buf)[0])
    bits = pdq.bits_from_dct(np.ascontiguousarray(variants, dtype=np.float32))
    return [pdq.PdqHash(pdq.bits_to_hex(b), quality) for b in bits]


def expand_buffers(flips: dict[tuple[bool, bool], Float64Array]) -> list[Float64Array]:
    """The eight 64x64 buffers in `NAMES` order from the four flips, keyed (rows mirrored, columns mirrored).

    np.rot90(x) = transpose(fliplr(x)), rot270 = transpose(flipud(x)), anti-transpose = transpose(rot180(x)).
    """
    ident = flips[(False, False)]
    ud = flips[(True, False)]
    lr = flips[(False, True)]
    both = flips[(True, True)]
    return [ident, lr.T, both, ud.T, ud, lr, ident.T, both.T]
