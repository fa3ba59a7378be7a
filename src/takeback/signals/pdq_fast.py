"""PDQ from a reduced-resolution decode, close to the full-resolution hash.

The reference blurs the *full* image with a tent filter about width/64 pixels
wide and samples it at 64x64 points.  Decoding a 12 MP JPEG at full size and
filtering it dominates the cost, while those 4096 samples depend only on
low-frequency content.  JPEG can decode straight to 1/2, 1/4 or 1/8 scale
(each reduced pixel is the mean of a 2x2 … 8x8 block), and FFmpeg can scale a
video frame by area averaging.

Running the reference algorithm on the small image would use a *different*
filter (its window is recomputed from the small size and rounded), which moves
a photo by ~9 bits.  Instead we apply the full-resolution operator itself:
the blur-and-decimate step is linear, ``B = R_h · X · R_wᵀ`` with ``R`` a
64xN matrix built from the reference's running-sum box filter for the *full*
size N.  Approximating the full image by its block means, ``X ≈ U · Y``, gives
``B ≈ (R_h U_h) · Y · (R_w U_w)ᵀ``: two small matrix products on the reduced
image, with the reference's exact filter geometry.  Measured on 8 MP photos
this lands within 0-2 bits of the full-resolution reference (see
docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from takeback.signals import pdq

try:
    from takeback.signals import _pdq_frame  # type: ignore[attr-defined]
except ImportError:  # built without a C compiler (setup.py): numpy does the column pass
    _pdq_frame = None

#: Whether video frames' column and row passes run in C (`_pdq_frame.c`); without it numpy gives the same hash, slower.
NATIVE_PASSES = _pdq_frame is not None
#: The C column pass sums this many taps at a time; each output's weights are padded to a multiple of it.
_LANES = 8

#: PDQ's 16x64 DCT matrix in float64, for the fast paths' products.
DCT64 = pdq.dct_matrix().astype(np.float64)


def _box_bounds(n: int, window: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """[lo, hi) input range averaged into each output of the reference box filter."""
    half = (window + 2) // 2
    o = np.arange(n)
    lo = np.maximum(0, o - (window - half))
    hi = np.minimum(n, o + half)
    return lo, hi


@lru_cache(maxsize=256)
def full_operator(n: int) -> npt.NDArray[np.float64]:
    """64 x n matrix: two box passes then decimation, as the reference does
    along one axis of an n-pixel image."""
    window = pdq.window_size(n)
    lo, hi = _box_bounds(n, window)
    inv = 1.0 / (hi - lo)
    rows = pdq.decimation_indices(n)
    # First pass: the selected outputs' box rows; second pass: each of those
    # taps spreads over its own box.  Built with a difference array per row.
    diff = np.zeros((len(rows), n + 1), dtype=np.float64)
    for r, o in enumerate(rows):
        taps = np.arange(lo[o], hi[o])
        weight = inv[o] * inv[taps]
        np.add.at(diff[r], lo[taps], weight)
        np.add.at(diff[r], hi[taps], -weight)
    return np.cumsum(diff[:, :n], axis=1)


#: The `smooth` mode's low-pass: a Gaussian of this share of the axis (see `smooth_operator`).
SMOOTH_SIGMA = 1.0 / 96.0


@lru_cache(maxsize=64)
def smooth_operator(n: int) -> npt.NDArray[np.float64]:
    """64 x n matrix: a Gaussian blur of sigma = n * SMOOTH_SIGMA (edge pixels repeated), then PDQ's own filter.

    Why: PDQ's tent filter is about n/64 wide and its 64 samples are n/64 apart, so detail between PDQ's band and the
    tent's cut-off (fine periodic texture: brick, gravel, grass) aliases into the hash, and aliases differently at
    every resolution: a 50% copy of such a photo is 30-60 bits away.  Blurring by a fixed share of the frame first
    removes that detail at any resolution, so the hash of the smoothed picture no longer depends on its size.
    Measured on the benchmark photos: copies resized to 70/50/40/25% all within 24 bits (brick included), while two
    different photos stay 110+ bits apart.
    """
    base = full_operator(n)
    sigma = max(n * SMOOTH_SIGMA, 1e-6)
    radius = int(np.ceil(3.0 * sigma))
    if radius < 1:
        return base
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    # Row k of (base @ G), G the clamped blur: each row convolved with the (symmetric) kernel, and the weight that
    # falls past an end folded back onto the edge pixel.
    full = np.stack([np.convolve(row, kernel) for row in base])  # (64, n + 2 * radius)
    out = full[:, radius : radius + n].copy()
    out[:, 0] += full[:, :radius].sum(axis=1)
    out[:, -1] += full[:, radius + n :].sum(axis=1)
    return out


@lru_cache(maxsize=256)
def reduced_operator(
    n_full: int, n_reduced: int, block: int = 0, reverse: bool = False, smooth: bool = False
) -> npt.NDArray[np.float64]:
    """64 x n_reduced matrix: the full-size operator applied to an image whose
    reduced pixels each stand for the full-size pixels they cover.

    `block` > 0 means reduced pixel i covers full pixels [i*block, (i+1)*block)
    (JPEG DCT scaling and Pillow's reduce(), the last block possibly partial);
    0 means an even fractional split (area scaling).  `reverse` is for an axis
    that EXIF orientation mirrored after decoding: the partial block is then at
    the start.  `smooth` uses `smooth_operator` instead of PDQ's own.
    """
    base = smooth_operator(n_full) if smooth else full_operator(n_full)
    if n_reduced == n_full and block <= 1:
        return base
    x = np.arange(n_full)
    if block > 0:
        u = np.zeros((n_full, n_reduced), dtype=np.float64)
        u[x, np.minimum(x // block, n_reduced - 1)] = 1.0
    else:
        # U[x, i]: overlap of full pixel [x, x+1) with reduced pixel [i*s, (i+1)*s).
        edges = np.arange(n_reduced + 1) * (n_full / n_reduced)
        x0 = x.astype(np.float64)
        u = np.clip(
            np.minimum(x0[:, None] + 1.0, edges[None, 1:]) - np.maximum(x0[:, None], edges[None, :-1]),
            0.0,
            None,
        )
    if reverse:
        u = u[::-1, ::-1]
    return base @ u


def hash_buffer(buf: npt.NDArray[np.float64]) -> pdq.PdqHash:
    """PDQ bits and quality of one 64x64 blurred-and-decimated buffer.

    One definition for every fast path (photos, video frames, the flipped, cropped and framed variants), so a
    variant's hash and the plain hash of the same pixels cannot drift apart: the DCT in float64, the quality and
    the median threshold in float32 as the reference computes them.
    """
    quality = int(pdq.quality_64(buf[None].astype(np.float32))[0])
    coeffs = DCT64 @ buf @ DCT64.T
    bits = pdq.bits_from_dct(coeffs[None].astype(np.float32))[0]
    return pdq.PdqHash(pdq.bits_to_hex(bits), quality)


def hash_reduced(
    luma: npt.NDArray[np.floating] | npt.NDArray[np.uint8],
    full_size: tuple[int, int],
    block: int = 0,
    reversed_axes: tuple[bool, bool] = (False, False),
) -> pdq.PdqHash:
    """PDQ of an image known only at reduced resolution.

    `luma` is the (h, w) reduced image; `full_size` the (H, W) of the original
    whose reference hash we approximate; `block` and `reversed_axes` describe
    how reduced pixels map onto full ones (see `reduced_operator`).  With
    h == H and w == W this is the full-resolution operator in float64 (close
    to, but not bit-exact with, the reference's float32 running sums).
    """
    full_h, full_w = full_size
    if full_h < pdq.MIN_HASHABLE_DIM or full_w < pdq.MIN_HASHABLE_DIM:
        return pdq.PdqHash("0" * pdq.HEX_LENGTH, 0)
    h, w = luma.shape
    rows = reduced_operator(full_h, h, block, reversed_axes[0])
    cols = reduced_operator(full_w, w, block, reversed_axes[1])
    buf = rows @ (np.asarray(luma, dtype=np.float64) @ cols.T)
    return hash_buffer(buf)


#: Outputs per band in `PlaneHasher`: 4 keeps each band ~4/64 of the width plus two filter windows wide.
_BAND_OUTPUTS = 4


@dataclass(frozen=True, slots=True)
class _Band:
    first: int  # output columns [first, first + weights.shape[1])
    start: int  # input columns [start, stop) that reach them
    stop: int
    weights: npt.NDArray[np.float32]  # (stop - start) x outputs


def _reach(operator: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """The [start, stop) of inputs each output of `operator` reaches.

    Why: each of the 64 outputs reaches about two filter windows (n/32) of the n inputs, so a dense product spends
    nine-tenths of its work multiplying by zero.  Weights below a billionth of the largest are the running sums'
    rounding residue, not the filter, and are left out.
    """
    floor = float(np.abs(operator).max()) * 1e-9
    spans = []
    for row in operator:
        reached = np.flatnonzero(np.abs(row) > floor)
        spans.append((int(reached[0]), int(reached[-1]) + 1))
    return spans


def _bands(operator: npt.NDArray[np.float64], outputs: int = _BAND_OUTPUTS) -> tuple[_Band, ...]:
    """The column operator cut into bands of a few outputs each, with only the input columns each band reaches."""
    spans = _reach(operator)
    bands = []
    for first in range(0, operator.shape[0], outputs):
        start = min(span[0] for span in spans[first : first + outputs])
        stop = max(span[1] for span in spans[first : first + outputs])
        block = operator[first : first + outputs, start:stop]
        bands.append(_Band(first, start, stop, np.ascontiguousarray(block.T, dtype=np.float32)))
    return tuple(bands)


@dataclass(frozen=True, slots=True)
class _Taps:
    """The column operator as the C pass wants it: where each output's taps start, and their weights, padded with
    zeros to the same multiple of `_LANES` for every output and shifted to end inside the row."""

    starts: npt.NDArray[np.int32]  # 64
    weights: npt.NDArray[np.float32]  # 64 x taps


def _taps(operator: npt.NDArray[np.float64]) -> _Taps | None:
    """None when the padded taps would not fit in a row (planes narrower than a few dozen pixels)."""
    spans = _reach(operator)
    width = operator.shape[1]
    taps = -(-max(stop - start for start, stop in spans) // _LANES) * _LANES
    if taps > width:
        return None
    starts = np.empty(len(spans), dtype=np.int32)
    weights = np.zeros((len(spans), taps), dtype=np.float32)
    for j, (start, stop) in enumerate(spans):
        first = min(start, width - taps)
        starts[j] = first
        weights[j, start - first : stop - first] = operator[j, start:stop]
    return _Taps(starts, weights)


def _readable_in_c(plane: npt.NDArray[np.generic]) -> bool:
    """8-bit pixels next to each other in memory (rows may be padded, as the decoder's are)."""
    return plane.dtype == np.uint8 and plane.ndim == 2 and plane.strides[1] == 1


class PlaneHasher:
    """Hashes many same-sized uint8 planes (video frames) with the full-size
    operator, reusing its buffers: fresh multi-megabyte arrays per frame
    cost more in page faults than the arithmetic itself.  The column pass runs
    in C straight on the 8-bit plane (`_pdq_frame.c`, `_taps`) when it is
    built, and so does the row pass (no BLAS call per frame); otherwise numpy
    runs the column pass banded (`_bands`) on a float copy, about half the
    time of a dense product with the same weights.  `smooth` applies
    `smooth_operator` (the `smooth` mode) instead of PDQ's own filter."""

    def __init__(self, height: int, width: int, smooth: bool = False) -> None:
        self.height = height
        self.width = width
        operator = smooth_operator if smooth else full_operator
        rows = operator(height)
        self._rows = rows.astype(np.float32)
        self._columns = operator(width)
        self._bands = _bands(self._columns)
        self._mirrored_bands: tuple[_Band, ...] | None = None
        native = NATIVE_PASSES and min(height, width) >= pdq.MIN_HASHABLE_DIM
        self._taps = _taps(self._columns) if native else None
        self._row_taps = _taps(rows) if native else None
        self._block = np.empty((64, 64), dtype=np.float32)
        self._mirrored_taps: _Taps | None = None
        # The numpy pass's float copy of a plane: made on first use, never with the C pass.
        self._plane: npt.NDArray[np.float32] | None = None
        self._partial = np.empty((height, 64), dtype=np.float32)

    def hash(self, plane: npt.NDArray[np.uint8], limited_range: bool = False) -> pdq.PdqHash:
        """`limited_range` stretches video levels 16..235 to 0..255 first (on
        the 64x64 result: the operator is linear and its rows sum to one), so
        quality scores match the reference's RGB conversion."""
        if self.height < pdq.MIN_HASHABLE_DIM or self.width < pdq.MIN_HASHABLE_DIM:
            return pdq.PdqHash("0" * pdq.HEX_LENGTH, 0)
        if self._taps is not None and _readable_in_c(plane):
            _pdq_frame.columns(plane, self._taps.starts, self._taps.weights, self._partial)
            return self._rows_pass(limited_range)
        return self._finish(self._float_plane(plane), self._bands, limited_range)

    def hash_and_mirror(
        self, plane: npt.NDArray[np.uint8], limited_range: bool = False
    ) -> tuple[pdq.PdqHash, pdq.PdqHash]:
        """The plane's hash and its left-right mirror's (the `dihedral` mode's "flipy"), from one float copy:
        mirroring the columns is the same product with the column operator reversed."""
        if self.height < pdq.MIN_HASHABLE_DIM or self.width < pdq.MIN_HASHABLE_DIM:
            zero = pdq.PdqHash("0" * pdq.HEX_LENGTH, 0)
            return zero, zero
        if self._taps is not None and _readable_in_c(plane):
            if self._mirrored_taps is None:
                self._mirrored_taps = _taps(self._columns[:, ::-1])
            if self._mirrored_taps is not None:
                own = self.hash(plane, limited_range)
                _pdq_frame.columns(plane, self._mirrored_taps.starts, self._mirrored_taps.weights, self._partial)
                return own, self._rows_pass(limited_range)
        floats = self._float_plane(plane)
        if self._mirrored_bands is None:
            self._mirrored_bands = _bands(self._columns[:, ::-1])
        return self._finish(floats, self._bands, limited_range), self._finish(
            floats, self._mirrored_bands, limited_range
        )

    def _float_plane(self, plane: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        if self._plane is None:
            self._plane = np.empty((self.height, self.width), dtype=np.float32)
        np.copyto(self._plane, plane, casting="unsafe")
        return self._plane

    def _finish(self, floats: npt.NDArray[np.float32], bands: tuple[_Band, ...], limited_range: bool) -> pdq.PdqHash:
        for band in bands:
            np.matmul(
                floats[:, band.start : band.stop],
                band.weights,
                out=self._partial[:, band.first : band.first + band.weights.shape[1]],
            )
        return self._rows_pass(limited_range)

    def _rows_pass(self, limited_range: bool) -> pdq.PdqHash:
        if self._row_taps is not None:
            _pdq_frame.rows(self._partial, self._row_taps.starts, self._row_taps.weights, self._block)
            buf = self._block.astype(np.float64)
        else:
            buf = (self._rows @ self._partial).astype(np.float64)
        if limited_range:
            buf = (buf - 16.0) * (255.0 / 219.0)
        return hash_buffer(buf)


class FrameHashers:
    """A `PlaneHasher` per plane size and filter, made on first use: a video's frames share one size, and the
    picture inside its letterbox usually another.  One per video (or thread): the hashers reuse their buffers."""

    def __init__(self) -> None:
        self._hashers: dict[tuple[int, int, bool], PlaneHasher] = {}

    def hash(self, plane: npt.NDArray[np.uint8], limited_range: bool = False, smooth: bool = False) -> pdq.PdqHash:
        return self._hasher(plane, smooth).hash(plane, limited_range)

    def hash_and_mirror(
        self, plane: npt.NDArray[np.uint8], limited_range: bool = False
    ) -> tuple[pdq.PdqHash, pdq.PdqHash]:
        return self._hasher(plane, False).hash_and_mirror(plane, limited_range)

    def _hasher(self, plane: npt.NDArray[np.uint8], smooth: bool) -> PlaneHasher:
        height, width = plane.shape
        hasher = self._hashers.get((height, width, smooth))
        if hasher is None:
            hasher = self._hashers[(height, width, smooth)] = PlaneHasher(height, width, smooth)
        return hasher


def hash_full_blocked(rows_of_luma: npt.NDArray[np.uint8], block: int = 512) -> pdq.PdqHash:
    """Full-resolution operator over a large uint8 plane, `block` rows at a time,
    so a 250 MP image never needs a float copy of itself."""
    full_h, full_w = rows_of_luma.shape
    if full_h < pdq.MIN_HASHABLE_DIM or full_w < pdq.MIN_HASHABLE_DIM:
        return pdq.PdqHash("0" * pdq.HEX_LENGTH, 0)
    rows = full_operator(full_h)
    cols = full_operator(full_w)
    acc = np.zeros((64, 64), dtype=np.float64)
    for start in range(0, full_h, block):
        part = rows_of_luma[start : start + block].astype(np.float32) @ cols.T.astype(np.float32)
        acc += rows[:, start : start + block] @ part.astype(np.float64)
    return hash_buffer(acc)
