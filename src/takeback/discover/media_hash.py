"""Hashes of media fetched by a crawl, computed from the bytes in memory: nothing fetched is written to disk.

Images get a PDQ hash (+ quality) the same way ``takeback hash`` computes it (decoded at reduced scale in draft
mode, EXIF orientation applied, the full-size PDQ filter geometry), plus MD5 and SHA-256 of the bytes.  Video
clips, preview loops and stream segments get the PDQ of a few frames (PyAV decoding from memory), which is
matched both frame by frame against banked images and as a vPDQ query against banked videos.  Only the hashes,
the size and the content type are kept.

Query variants (docs/robustness.md): an image also gets the extra query hashes of `signals.variants.query_variants`
(the picture inside a letterbox or frame, the smoothed picture, the query half of the crop grid), a clip its frames
inside their letterbox and its smoothed frames as more frame lists, so cropped, framed, watermarked and resized
copies still match.

Decoding is CPU-bound and runs in a worker (thread or process) pool; every function here is pure and picklable.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from PIL import Image, UnidentifiedImageError

from takeback.media.errors import CorruptMedia, MediaError, NotMedia, NoVideoStream, TooLarge
from takeback.media.images import DEFAULT_MAX_PIXELS, reduction_for
from takeback.media.sniff import Kind, kind_of_bytes
from takeback.media.video import DEFAULT_MAX_FRAME_PIXELS
from takeback.signals import exact, pdq_fast
from takeback.signals.pdq import PdqHash
from takeback.signals.regions import Plane
from takeback.signals.variants import CRAWL_QUERY_MODES, Mode, query_variants
from takeback.signals.vpdq import frame_inside_border, smooth_frame_hash

#: Frames hashed per clip or segment: a preview loop or the start of a stream, not the whole video.
MAX_FRAMES = 8
FRAME_INTERVAL_S = 1.0
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class FrameHash:
    pdq: str
    quality: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class MediaHashes:
    #: "image" or "video".
    kind: str
    size: int
    md5: str
    sha256: str
    #: One entry for an image; the sampled frames for a video.
    frames: tuple[FrameHash, ...] = ()
    width: int = 0
    height: int = 0
    format: str = ""
    #: Query variants, (name, frames): for an image one frame each ("border", "smooth", "grid_t02b00l00r04", ...);
    #: for a video the sampled frames inside their letterbox ("border"), frames without one keeping their own hash.
    variants: tuple[tuple[str, tuple[FrameHash, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class HashFailure:
    """Why bytes could not be hashed (still with their digests, which are evidence too)."""

    code: str
    reason: str
    size: int
    md5: str
    sha256: str
    extra: dict[str, str] = field(default_factory=dict)


def hash_image_bytes(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    digests: exact.Digests | None = None,
    query_modes: frozenset[Mode] = CRAWL_QUERY_MODES,
) -> MediaHashes:
    """PDQ (+ quality), MD5 and SHA-256 of an image given as bytes.  Raises a ``MediaError`` subclass.
    ``digests`` are the bytes' digests when the caller has them already (a crawl hashes thousands of files)."""
    digests = digests or exact.digest_bytes(data)
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels // 2 + 1 > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        with img:
            width, height = img.size
            if width <= 0 or height <= 0:
                raise CorruptMedia(f"image reports an invalid size {width}x{height}")
            if width * height > max_pixels:
                raise TooLarge(f"image is {width}x{height}, over the {max_pixels / 1e6:.0f} MP limit")
            fmt = img.format or "unknown"
            orientation = _orientation(img)
            wanted = reduction_for(height, width)
            scale = 1
            if fmt in ("JPEG", "MPO") and wanted > 1 and img.mode in ("RGB", "L", "YCbCr"):
                drafted = img.draft("L", (-(-width // wanted), -(-height // wanted)))
                if drafted is not None and drafted[1][2]:
                    scale = max(1, round(width / drafted[1][2]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()
            luma = _luma_image(img)
            if scale == 1 and wanted > 1:
                luma, scale = luma.reduce(wanted), wanted
            if orientation in _TRANSPOSE:
                luma = luma.transpose(_TRANSPOSE[orientation])
            plane = np.asarray(luma)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"image exceeds the pixel limit ({exc})") from None
    except UnidentifiedImageError:
        raise NotMedia("not a readable image (unrecognised or damaged header)") from None
    except MemoryError:
        raise TooLarge("not enough memory to decode this image") from None
    except Exception as exc:  # Pillow raises many types on damaged data; all mean "cannot decode"
        raise CorruptMedia(f"image could not be decoded ({type(exc).__name__}: {str(exc)[:200]})") from None
    full = (width, height) if orientation in (5, 6, 7, 8) else (height, width)
    result = pdq_fast.hash_reduced(plane, full, block=scale)
    extra = query_variants(Plane(plane, full, scale), query_modes) if query_modes else []
    return MediaHashes(
        kind="image",
        size=digests.size,
        md5=digests.md5,
        sha256=digests.sha256,
        frames=(FrameHash(result.hex, result.quality, 0.0),),
        width=full[1],
        height=full[0],
        format=fmt,
        variants=tuple((v.name, (FrameHash(v.hex, v.quality, 0.0),)) for v in extra),
    )


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
        return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception:
        return 1


def _luma_image(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = float(arr.max()) or 1.0
        return Image.fromarray((arr * (255.0 / top)).clip(0, 255).astype(np.uint8))
    return img.convert("L") if img.mode != "L" else img


def hash_video_bytes(
    data: bytes,
    *,
    max_frames: int = MAX_FRAMES,
    interval: float = FRAME_INTERVAL_S,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    digests: exact.Digests | None = None,
    query_modes: frozenset[Mode] = CRAWL_QUERY_MODES,
) -> MediaHashes:
    """PDQ of up to ``max_frames`` frames, one per ``interval`` seconds, of a clip or segment given as bytes (an
    fMP4 media segment must come with its initialisation segment prepended), and the query modes' frame lists (the
    frames inside their letterbox, the smoothed frames).  Raises a ``MediaError`` subclass."""
    import av

    digests = digests or exact.digest_bytes(data)
    frames: list[FrameHash] = []
    framed: list[FrameHash] = []
    smoothed: list[FrameHash] = []
    width = height = 0
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise NotMedia(f"not a readable video ({getattr(exc, 'strerror', None) or exc})") from None
    with container:
        streams = [s for s in container.streams.video if not int(getattr(s, "disposition", 0) or 0) & 0x400]
        if not streams:
            raise NoVideoStream("no video stream")
        stream = streams[0]
        ctx = stream.codec_context
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > max_frame_pixels:
            raise TooLarge(f"video frames are {width}x{height}, over the frame limit")
        time_base = stream.time_base or Fraction(1, 90000)
        next_time: float | None = None
        hashers = pdq_fast.FrameHashers()
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += 1
                if decoded > max_frames * 400:  # a clip of tiny frames cannot keep the worker forever
                    break
                when = float(frame.pts * time_base) if frame.pts is not None else decoded / 30.0
                if next_time is not None and when < next_time:
                    continue
                grey = frame.reformat(format="gray")
                plane = grey.planes[0]
                arr = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
                if arr.shape[0] * arr.shape[1] > max_frame_pixels:
                    raise TooLarge("video frame over the frame limit")
                result: PdqHash = hashers.hash(arr)
                frames.append(FrameHash(result.hex, result.quality, round(when, 3)))
                inside = frame_inside_border(arr, hashers=hashers) if Mode.BORDERS in query_modes else None
                framed.append(frames[-1] if inside is None else FrameHash(inside[1], inside[0], round(when, 3)))
                if Mode.SMOOTH in query_modes:
                    soft = smooth_frame_hash(arr, hashers=hashers)
                    smoothed.append(FrameHash(soft.hex, soft.quality, round(when, 3)))
                next_time = when + interval
                if len(frames) >= max_frames:
                    break
        except MediaError:
            raise
        except av.error.FFmpegError as exc:
            if not frames:
                raise CorruptMedia(f"video could not be decoded ({getattr(exc, 'strerror', None) or exc})") from None
    if not frames:
        raise CorruptMedia("no decodable video frames")
    return MediaHashes(
        kind="video",
        size=digests.size,
        md5=digests.md5,
        sha256=digests.sha256,
        frames=tuple(frames),
        width=width,
        height=height,
        format=str(container.format.name if container.format else ""),
        variants=tuple(
            (name, tuple(rows)) for name, rows in (("border", framed), ("smooth", smoothed)) if rows and rows != frames
        ),
    )


def hash_media(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, query_modes: frozenset[Mode] = CRAWL_QUERY_MODES
) -> MediaHashes | HashFailure:
    """Hash whatever the bytes are (sniffed, the declared type is not trusted).  Never raises: a failure comes back
    as ``HashFailure`` with its digests, so one bad file never stops a crawl.  ``query_modes`` chooses the query
    variants computed besides the plain hashes (they cost far more than the plain PDQ: a crawl may choose)."""
    digests = exact.digest_bytes(data)
    try:
        if not data:
            raise NotMedia("empty body")
        kind = kind_of_bytes(data[:512])
        if kind is Kind.IMAGE:
            return hash_image_bytes(data, max_pixels=max_pixels, digests=digests, query_modes=query_modes)
        if kind is Kind.VIDEO:
            return hash_video_bytes(data, digests=digests, query_modes=query_modes)
        raise NotMedia("not an image or video (unrecognised content)")
    except MediaError as exc:
        return HashFailure(exc.code, exc.reason, digests.size, digests.md5, digests.sha256)
    except MemoryError:
        return HashFailure("too-large", "not enough memory to decode", digests.size, digests.md5, digests.sha256)
    except Exception as exc:  # a decoder bug must not kill the crawl
        message = f"unexpected {type(exc).__name__}: {str(exc)[:200]}"
        return HashFailure("internal", message, digests.size, digests.md5, digests.sha256)
