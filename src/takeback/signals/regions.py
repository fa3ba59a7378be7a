"""PDQ buffers of parts and mirror images of one decoded plane, without decoding again.

Every extra hash takeback banks (a crop, the picture inside a border, a flip)
is the PDQ of a transformed copy of the photo.  The photo is decoded once, at
reduced scale where possible (`media.images.decode_image`), and PDQ's blur and
decimation is a linear operator per axis (`signals.pdq_fast`), so the 64x64
buffer of a sub-rectangle, or of a mirrored copy, is two small matrix products
on the already decoded plane: no second decode, no resampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from takeback.signals import pdq
from takeback.signals.pdq_fast import reduced_operator

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Box:
    """A sub-rectangle of a plane in its own (reduced) pixel coordinates: rows [top, bottom), columns [left, right)."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass(frozen=True, slots=True)
class Plane:
    """A luma plane standing for a full-size image: the fields of `media.images.DecodedImage` PDQ needs.

    `block` is how many full pixels each plane pixel averages along each axis (1: full resolution);
    `reversed_axes` says whether EXIF orientation put the partial edge block at the start of an axis.
    """

    luma: npt.NDArray[np.uint8] | npt.NDArray[np.float32]
    full_size: tuple[int, int]
    block: int = 1
    reversed_axes: tuple[bool, bool] = (False, False)

    @classmethod
    def of_array(cls, luma: npt.NDArray[np.uint8] | npt.NDArray[np.float32]) -> Plane:
        """A plane that is its own full-size image."""
        return cls(luma, (int(luma.shape[0]), int(luma.shape[1])))

    @property
    def box(self) -> Box:
        return Box(0, int(self.luma.shape[0]), 0, int(self.luma.shape[1]))


def axis_span(full: int, reduced: int, block: int, start: int, stop: int, reverse: bool) -> tuple[int, int, bool]:
    """(full length, block, reverse) of the span [start, stop) of one axis of the plane: what
    `pdq_fast.reduced_operator` needs to apply the reference's geometry for that part of the full-size image."""
    if block <= 1:
        return stop - start, block, False
    # Where the partial block lies: at the end of the axis, or (reversed) at its start.
    full_start = start * block if not reverse else max(0, full - (reduced - start) * block)
    full_stop = min(full, stop * block) if not reverse else full - (reduced - stop) * block
    partial = (stop == reduced) if not reverse else (start == 0)
    return max(1, full_stop - full_start), block, reverse and partial


def buffers(
    plane: Plane, box: Box | None = None, *, flips: bool = False, smooth: bool = False
) -> dict[tuple[bool, bool], Float64Array]:
    """64x64 PDQ buffers of `box` (default: all) keyed by (rows mirrored, columns mirrored); only (False, False)
    unless `flips`.  Each equals what the reference computes on that part of the full-size image, mirrored, up to
    the reduced decode's error (0-2 bits measured on the unmirrored whole).  `smooth`: of the low-passed picture
    (`pdq_fast.smooth_operator`) instead."""
    box = box or plane.box
    h, w = plane.luma.shape
    full_h, full_w = plane.full_size
    fh, block_h, rev_h = axis_span(full_h, h, plane.block, box.top, box.bottom, plane.reversed_axes[0])
    fw, block_w, rev_w = axis_span(full_w, w, plane.block, box.left, box.right, plane.reversed_axes[1])
    part = np.asarray(plane.luma[box.top : box.bottom, box.left : box.right], dtype=np.float64)
    out: dict[tuple[bool, bool], Float64Array] = {}
    for mirror_rows in (False, True) if flips else (False,):
        # Mirroring an axis mirrors where its partial block lies too.
        rows = reduced_operator(fh, box.height, block_h, rev_h != (mirror_rows and block_h > 1), smooth)
        src = part[::-1] if mirror_rows else part
        for mirror_cols in (False, True) if flips else (False,):
            cols = reduced_operator(fw, box.width, block_w, rev_w != (mirror_cols and block_w > 1), smooth)
            img = src[:, ::-1] if mirror_cols else src
            out[(mirror_rows, mirror_cols)] = rows @ (img @ cols.T)
    return out


def hashable(box: Box, plane: Plane) -> bool:
    """Whether a box is big enough for PDQ (the reference hashes tiny images to zeros)."""
    scale = max(1, plane.block)
    return box.height * scale >= 64 and box.width * scale >= 64 and box.height >= pdq.MIN_HASHABLE_DIM
