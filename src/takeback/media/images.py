"""Decode an image file into the luma plane PDQ needs, safely and cheaply.

Two paths:

* **fast** (default): decode at reduced scale where the format allows it (JPEG's
  DCT scaling decodes a 12 MP photo straight to 1/8 size), otherwise decode and
  box-reduce; keep only luma.  `signals.pdq_fast` then applies the
  full-resolution PDQ filter geometry to the reduced plane.
* **exact**: full-resolution RGB, converted to luma exactly as the `pdqhash`
  reference does, for bit-exact hashes.

Both apply EXIF orientation (the photo as people see it, which is also how
copies appear online once metadata is stripped) and refuse decompression bombs
before any pixel is decoded.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from takeback.media import jpeg_dc
from takeback.media.errors import (
    CorruptMedia,
    EmptyFile,
    MediaError,
    NotMedia,
    TooLarge,
    UnsupportedMedia,
)

try:  # phones save HEIC; pillow-heif teaches Pillow to open it
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - optional on exotic platforms
    pillow_heif = None

DEFAULT_MAX_PIXELS = 250_000_000
_DRAFTABLE = {"JPEG", "MPO"}
_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}
# Which displayed axes (rows, cols) end up mirrored for each EXIF orientation,
# matching the array operations in `_orient`.
_REVERSED_AXES = {
    1: (False, False),
    2: (False, True),
    3: (True, True),
    4: (True, False),
    5: (False, False),
    6: (False, True),
    7: (True, True),
    8: (True, False),
}


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Luma of an image, possibly at reduced scale.

    `luma` is (h, w): uint8 on the fast path, float32 on the exact path.
    `full_size` is the (H, W) of the image as displayed, which is what the
    reduced plane stands in for.  `scale` is the side of the block of full
    pixels each reduced pixel averages (1 when not reduced); `reversed_axes`
    says which displayed axes EXIF orientation mirrored, which moves the
    partial edge block to the start of that axis.
    """

    luma: npt.NDArray[np.uint8] | npt.NDArray[np.float32]
    full_size: tuple[int, int]
    scale: int
    format: str
    exact: bool
    reversed_axes: tuple[bool, bool] = (False, False)


def reduction_for(full_h: int, full_w: int, max_scale: int = 8) -> int:
    """Largest power-of-two reduction whose pixels stay well inside the PDQ
    blur window (window/2.5), so the reduced plane still carries everything the
    64x64 samples depend on.  Measured: 1/8 on 8 MP keeps hashes within 2 bits."""
    from takeback.signals.pdq import window_size

    limit = window_size(min(full_h, full_w)) / 2.5
    scale = 1
    while scale * 2 <= max_scale and scale * 2 <= limit:
        scale *= 2
    return scale


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
        return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception:
        return 1


def _to_8bit_array(img: Image.Image) -> npt.NDArray[np.uint8]:
    """High-bit-depth and float modes scaled to 0..255 rather than clipped."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    if img.mode.startswith("I;16") or (arr.dtype.kind in "iu" and arr.max(initial=0) > 255):
        top = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
        return np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255).round().astype(np.uint8)
    if arr.dtype.kind == "f":
        peak = float(np.nanmax(arr)) if arr.size else 1.0
        top = 1.0 if peak <= 1.0 else peak
        return np.clip(np.nan_to_num(arr) * (255.0 / top), 0, 255).round().astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def _rgb(img: Image.Image) -> npt.NDArray[np.uint8]:
    """HxWx3 uint8, dropping alpha the way `Image.convert('RGB')` does (which
    is what HMA's PDQ hasher feeds the reference)."""
    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey = _to_8bit_array(img)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img)


def _luma_u8(img: Image.Image) -> npt.NDArray[np.uint8]:
    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _to_8bit_array(img)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    if img.mode != "L":
        img = img.convert("L")
    return np.asarray(img)


def _open(path: Path, max_pixels: int, data: bytes | None = None) -> Image.Image:
    if (len(data) if data is not None else path.stat().st_size) == 0:
        raise EmptyFile("file is empty (0 bytes)")
    # Our own pixel cap is the one that applies; Pillow's must not fire first.
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels // 2 + 1 > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data) if data is not None else path)
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image dimensions exceed the pixel limit ({exc})") from None
    except UnidentifiedImageError:
        raise NotMedia("not a readable image (unrecognised or damaged header)") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"image reports an invalid size {width}x{height}")
    if width * height > max_pixels:
        img.close()
        raise TooLarge(
            f"image is {width}x{height} = {width * height / 1e6:.0f} MP, over the "
            f"{max_pixels / 1e6:.0f} MP limit (possible decompression bomb)"
        )
    return img


def decode_image(
    path: Path, *, exact: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS, data: bytes | None = None
) -> DecodedImage:
    """Luma of the first frame of an image file, oriented as displayed.

    `data` is the file's bytes when the caller has already read them (for the digests), so the file is not read
    twice.  Raises a `MediaError` subclass with a one-line reason for anything that cannot be hashed; never a bare
    decoder exception.
    """
    try:
        img = _open(path, max_pixels, data)
        with img:
            fmt = img.format or "unknown"
            orientation = _orientation(img)
            width, height = img.size
            if exact:
                _load(img)
                from takeback.signals.pdq import luma_from_rgb

                luma: npt.NDArray[np.uint8] | npt.NDArray[np.float32] = luma_from_rgb(_orient(_rgb(img), orientation))
                scale = 1
            else:
                plane, scale = _reduced_luma(img, fmt, path, data)
                luma = _orient(plane, orientation)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image exceeds the pixel limit ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error) as exc:
        raise _classify(exc) from None
    except MemoryError:
        raise TooLarge("not enough memory to decode this image") from None
    full = (width, height)
    full_h, full_w = (full[0], full[1]) if orientation in _SWAPS_AXES else (full[1], full[0])
    return DecodedImage(
        luma=luma,
        full_size=(full_h, full_w),
        scale=scale,
        format=fmt,
        exact=exact,
        reversed_axes=_REVERSED_AXES[orientation],
    )


def _load(img: Image.Image) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img.load()


def _reduced_luma(img: Image.Image, fmt: str, path: Path, data: bytes | None) -> tuple[npt.NDArray[np.uint8], int]:
    """The luma reduced by `reduction_for`'s factor (as stored, before orientation), and that factor."""
    width, height = img.size
    wanted = reduction_for(height, width)
    if fmt in _DRAFTABLE and wanted == 8 and img.mode in ("RGB", "L"):
        # Large JPEGs: the 1/8 plane from the DC coefficients alone, the same pixels as the draft decode below.
        eighth = jpeg_dc.luma_eighth(data if data is not None else path.read_bytes())
        if eighth is not None:
            return eighth, 8
    scale = 1
    if fmt in _DRAFTABLE and wanted > 1 and img.mode in ("RGB", "L", "YCbCr"):
        # Asked for at most 1/wanted of the size, libjpeg decodes at exactly 1/wanted (asked for the rounded-up
        # size it would take half that when the width is not a multiple of `wanted`): the same plane as above.
        drafted = img.draft("L", (max(1, width // wanted), max(1, height // wanted)))
        if drafted is not None:
            box = drafted[1]
            scale = max(1, round(width / box[2])) if box[2] else 1
    _load(img)
    if scale == 1 and wanted > 1:
        return np.asarray(Image.fromarray(_luma_u8(img)).reduce(wanted)), wanted
    return _luma_u8(img), scale


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an HxW[xC] array."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = np.swapaxes(arr, 0, 1)
    elif orientation == 6:
        arr = np.swapaxes(arr, 0, 1)[:, ::-1]
    elif orientation == 7:
        arr = np.swapaxes(arr, 0, 1)[::-1, ::-1]
    elif orientation == 8:
        arr = np.swapaxes(arr, 0, 1)[::-1]
    return np.ascontiguousarray(arr)


def _classify(exc: BaseException) -> MediaError:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "truncated" in lowered or "premature end" in lowered or "broken data stream" in lowered:
        return CorruptMedia("image data is truncated (the file was cut short or damaged)")
    if "cannot identify" in lowered or "not a" in lowered:
        return NotMedia(f"not a readable image ({text})")
    if "unsupported" in lowered or "not supported" in lowered or "unknown" in lowered:
        return UnsupportedMedia(f"image variant not supported ({text})")
    if isinstance(exc, PermissionError):
        from takeback.media.errors import UnreadableFile

        return UnreadableFile(f"permission denied ({text})")
    return CorruptMedia(f"image could not be decoded ({text})")


def oriented_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> npt.NDArray[np.uint8]:
    """Full-resolution RGB as displayed: the reference path's input, used by
    tests and benchmarks to compute the reference hash of the same file."""
    img = _open(path, max_pixels)
    with img:
        orientation = _orientation(img)
        img.load()
        return _orient(_rgb(img), orientation)


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "decode_image",
    "oriented_rgb",
    "reduction_for",
]
