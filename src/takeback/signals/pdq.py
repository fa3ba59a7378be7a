"""PDQ perceptual hashing in numpy, bit-exact with Meta's reference.

Why our own implementation instead of calling the `pdqhash` binding:

* it vectorises across many frames at once (video, tiles, crops), which the
  per-image C++ call cannot do, so a video's frames cost one pass of numpy
  calls instead of hundreds of Python-to-C round trips;
* the on-device hasher then needs only numpy, no compiled extension that may
  lack wheels for the person's platform;
* `pdqhash` stays what it is best at: the oracle our tests compare against.

Bit-exactness is obtained by performing the same float32 operations in the same
order as `pdqhashing.cpp` / `downscaling.cpp`: the Jarosz box filter is a
running sum (add, subtract, divide) stepped along one axis while numpy
vectorises along the other; the 16x64 and 16x16 DCT products accumulate their
64 terms one at a time, as the C++ loops do, instead of using BLAS (whose
blocked summation order would round differently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HASH_BITS = 256
HEX_LENGTH = 64
#: Images smaller than this along either side hash to all zeros with quality 0,
#: as in the reference.
MIN_HASHABLE_DIM = 5
_DOWNSAMPLE = 64
_JAROSZ_PASSES = 2
_MEDIAN_INDEX = (HASH_BITS + 1) // 2 - 1  # torben's lower median for n=256

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class PdqHash:
    """One PDQ hash: 64 hex digits (bit 255 first, as ThreatExchange writes it)
    and the reference quality score 0..100."""

    hex: str
    quality: int


def dct_matrix() -> FloatArray:
    # Mirrors the C++ lambda: a float scale factor times a double cosine,
    # rounded to float.  math.cos (libm) rather than np.cos so that no SIMD
    # approximation can differ in the last bit of the double.
    scale = float(np.float32(math.sqrt(2.0 / 64.0)))
    out = np.empty((16, 64), dtype=np.float32)
    for i in range(16):
        for j in range(64):
            out[i, j] = np.float32(scale * math.cos((math.pi / 2.0 / 64.0) * (i + 1) * (2 * j + 1)))
    return out


_DCT = dct_matrix()


def window_size(old_dimension: int, new_dimension: int = _DOWNSAMPLE) -> int:
    """Jarosz box-filter window: half of old/new, rounded up (two passes make a
    tent of the full width)."""
    return (old_dimension + 2 * new_dimension - 1) // (2 * new_dimension)


def luma_from_rgb(rgb: npt.NDArray[np.uint8]) -> FloatArray:
    """Luma exactly as the `pdqhash` Python binding and ThreatExchange compute
    it: in float64, then rounded to float32."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
    r = rgb[:, :, 0].astype(np.float64)
    g = rgb[:, :, 1].astype(np.float64)
    b = rgb[:, :, 2].astype(np.float64)
    return (r * 0.299 + g * 0.587 + b * 0.114).astype(np.float32)


def _box_along_axis0(src: FloatArray, dst: FloatArray, window: int) -> None:
    """Running-sum box filter stepping along axis 0; every other axis is a
    vector of independent lanes.  Same phases and float32 rounding as the
    reference's box1DFloat."""
    length = src.shape[0]
    half = (window + 2) // 2
    acc = np.zeros(src.shape[1:], dtype=np.float32)
    ri = li = oi = 0
    count = 0
    for _ in range(half - 1):
        np.add(acc, src[ri], out=acc)
        count += 1
        ri += 1
    for _ in range(window - half + 1):
        np.add(acc, src[ri], out=acc)
        count += 1
        np.divide(acc, np.float32(count), out=dst[oi])
        ri += 1
        oi += 1
    divisor = np.float32(count)
    for _ in range(length - window):
        np.add(acc, src[ri], out=acc)
        np.subtract(acc, src[li], out=acc)
        np.divide(acc, divisor, out=dst[oi])
        li += 1
        ri += 1
        oi += 1
    for _ in range(half - 1):
        np.subtract(acc, src[li], out=acc)
        count -= 1
        np.divide(acc, np.float32(count), out=dst[oi])
        li += 1
        oi += 1


def decimation_indices(size: int) -> npt.NDArray[np.intp]:
    return np.array([int(((k + 0.5) * size) / _DOWNSAMPLE) for k in range(_DOWNSAMPLE)], dtype=np.intp)


def downsample_64(luma: FloatArray) -> FloatArray:
    """Blur (two Jarosz x/y passes) and decimate a batch of luma planes to 64x64.

    `luma` is (N, H, W) float32; returns (N, 64, 64).  Planes already 64x64 are
    passed through untouched, as the reference does for pre-scaled video frames.
    """
    _n, rows, cols = luma.shape
    if rows == _DOWNSAMPLE and cols == _DOWNSAMPLE:
        return luma.astype(np.float32, copy=True)
    w_rows = window_size(cols)  # window for filtering along each row
    w_cols = window_size(rows)  # window for filtering along each column
    row_idx = decimation_indices(rows)
    col_idx = decimation_indices(cols)
    # Work in (W, N, H) layout for the along-row pass so that each step reads a
    # contiguous lane vector, and in (H, N, W) for the along-column pass.
    cur = np.ascontiguousarray(luma.transpose(2, 0, 1), dtype=np.float32)  # (W, N, H)
    for rep in range(_JAROSZ_PASSES):
        tmp = np.empty_like(cur)
        _box_along_axis0(cur, tmp, w_rows)  # along rows
        hw = np.ascontiguousarray(tmp.transpose(2, 1, 0))  # (H, N, W)
        if rep == _JAROSZ_PASSES - 1:
            # Only the 64 decimated columns are ever read again: filter just those lanes.
            hw = np.ascontiguousarray(hw[:, :, col_idx])
        out = np.empty_like(hw)
        _box_along_axis0(hw, out, w_cols)  # along columns
        if rep == _JAROSZ_PASSES - 1:
            return np.ascontiguousarray(out[row_idx].transpose(1, 0, 2))  # (N, 64, 64)
        cur = np.ascontiguousarray(out.transpose(2, 1, 0))  # back to (W, N, H)
    raise AssertionError("unreachable")


def quality_64(buf: FloatArray) -> npt.NDArray[np.int64]:
    """Reference quality metric: count of quantised gradients, /90, capped at 100."""
    hundred = np.float32(100.0)
    d255 = np.float32(255.0)
    dv = ((buf[:, :-1, :] - buf[:, 1:, :]) * hundred) / d255
    dh = ((buf[:, :, :-1] - buf[:, :, 1:]) * hundred) / d255
    total = np.abs(dv.astype(np.int32)).sum(axis=(1, 2), dtype=np.int64) + np.abs(dh.astype(np.int32)).sum(
        axis=(1, 2), dtype=np.int64
    )
    return np.minimum(total // 90, 100)


def dct_16(buf: FloatArray) -> FloatArray:
    """The reference's D·A·Dᵀ restricted to coefficients 1..16, summing k in order."""
    n = buf.shape[0]
    t = np.zeros((n, 16, 64), dtype=np.float32)
    for k in range(64):
        t += _DCT[None, :, k, None] * buf[:, None, k, :]
    b = np.zeros((n, 16, 16), dtype=np.float32)
    for k in range(64):
        b += t[:, :, k, None] * _DCT[None, None, :, k]
    return b


def bits_from_dct(coeffs: FloatArray) -> npt.NDArray[np.bool_]:
    """Bit i*16+j is set when coefficient (i, j) exceeds the lower median."""
    flat = coeffs.reshape(coeffs.shape[0], HASH_BITS)
    median = np.partition(flat, _MEDIAN_INDEX, axis=1)[:, _MEDIAN_INDEX]
    return flat > median[:, None]


def bits_to_hex(bits: npt.NDArray[np.bool_]) -> str:
    """256 bits (bit 0 first) to ThreatExchange hex (bit 255 first)."""
    return np.packbits(bits[::-1].astype(np.uint8)).tobytes().hex()


def hex_to_bits(value: str) -> npt.NDArray[np.bool_]:
    raw = bytes.fromhex(value)
    if len(raw) != HASH_BITS // 8:
        raise ValueError(f"a PDQ hash has {HEX_LENGTH} hex digits, got {len(value)}")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[::-1].astype(bool)


def hash_luma_batch(luma: FloatArray) -> list[PdqHash]:
    """PDQ hashes of a batch of same-sized luma planes, shape (N, H, W)."""
    luma = np.asarray(luma, dtype=np.float32)
    if luma.ndim != 3:
        raise ValueError(f"expected (N, H, W) luma, got shape {luma.shape}")
    n, rows, cols = luma.shape
    if n == 0:
        return []
    if rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM:
        return [PdqHash("0" * HEX_LENGTH, 0) for _ in range(n)]
    buf = downsample_64(luma)
    quality = quality_64(buf)
    bits = bits_from_dct(dct_16(buf))
    return [PdqHash(bits_to_hex(bits[i]), int(quality[i])) for i in range(n)]


def hash_luma(luma: FloatArray) -> PdqHash:
    """PDQ hash of one (H, W) float32 luma plane."""
    return hash_luma_batch(np.asarray(luma, dtype=np.float32)[None])[0]


def hash_rgb(rgb: npt.NDArray[np.uint8]) -> PdqHash:
    """PDQ hash of an (H, W, 3) uint8 RGB image: same as `pdqhash.compute`."""
    return hash_luma(luma_from_rgb(rgb))


def hamming(a: str, b: str) -> int:
    """Bit distance between two hex-encoded hashes of equal length."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
