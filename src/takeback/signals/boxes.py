"""PDQ of many sub-boxes of one plane at once: the grid of crops both sides hash (`signals.crops`).

A crop grid means hundreds of boxes per picture (on the query side ~1,150), and the per-box path
(`regions.buffers` then `pdq_fast.hash_buffer`: two matrix products for the 64x64 buffer, then the DCT) would
redo the same work for every box that shares a row span or a column span.  PDQ is separable: the 16x16 DCT
coefficients of a box are ``(D R_rows) X (D R_cols)ᵀ``, where ``R`` is the box's blur-and-decimate operator
along one axis (the reference's geometry for the box's own full size, `pdq_fast.reduced_operator`) and ``D``
the 16x64 DCT.  So the plane is multiplied once per distinct row span, and each box is then one small product
per distinct column span: a grid of r row spans x c column spans costs r large and r*c small products.

The hashes equal the per-box path's up to float rounding at the median (measured 0-2 bits).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from takeback.signals import pdq
from takeback.signals.pdq_fast import DCT64, reduced_operator
from takeback.signals.regions import Plane, axis_span

Span = tuple[int, int]
Float64Array = npt.NDArray[np.float64]


def _operators(plane: Plane, spans: Sequence[Span], axis: int, dct: bool) -> Float64Array:
    """(len(spans), 16 or 64, plane extent): each span's operator, zero outside the span."""
    reduced = int(plane.luma.shape[axis])
    full = plane.full_size[axis]
    out = np.zeros((len(spans), 16 if dct else 64, reduced), dtype=np.float64)
    for k, (start, stop) in enumerate(spans):
        length, block, reverse = axis_span(full, reduced, plane.block, start, stop, plane.reversed_axes[axis])
        op = reduced_operator(length, stop - start, block, reverse)
        out[k, :, start:stop] = DCT64 @ op if dct else op
    return out


def grid_coefficients(plane: Plane, rows: Sequence[Span], cols: Sequence[Span]) -> Float64Array:
    """(len(rows), len(cols), 16, 16) PDQ DCT coefficients of every box rows[i] x cols[j]."""
    luma = np.asarray(plane.luma, dtype=np.float64)
    left = _operators(plane, rows, 0, dct=True) @ luma  # (r, 16, W)
    right = np.swapaxes(_operators(plane, cols, 1, dct=True), 1, 2)  # (c, W, 16)
    return np.matmul(left[:, None], right[None])


def grid_buffers(plane: Plane, rows: Sequence[Span], cols: Sequence[Span]) -> Float64Array:
    """(len(rows), len(cols), 64, 64) PDQ buffers (blurred and decimated) of every box: what the quality score and
    `pdq_fast.hash_buffer` need.  Sixteen times the work of `grid_coefficients`: for the few bank boxes only."""
    luma = np.asarray(plane.luma, dtype=np.float64)
    left = _operators(plane, rows, 0, dct=False) @ luma  # (r, 64, W)
    right = np.swapaxes(_operators(plane, cols, 1, dct=False), 1, 2)  # (c, W, 64)
    return np.matmul(left[:, None], right[None])


def hashes_from_coefficients(coeffs: Float64Array) -> list[str]:
    """PDQ hex of each (16, 16) coefficient block of an (..., 16, 16) array, in C order."""
    flat = np.ascontiguousarray(coeffs.reshape(-1, 16, 16), dtype=np.float32)
    bits = pdq.bits_from_dct(flat)
    packed = np.packbits(bits[:, ::-1].astype(np.uint8), axis=1)
    return [row.tobytes().hex() for row in packed]
