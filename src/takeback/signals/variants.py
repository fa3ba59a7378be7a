"""Extra PDQ hashes for the copies plain PDQ misses: the matching modes (docs/robustness.md).

Which side computes what (the index's speed targets are per query, so the
extra hashes go where they cost least):

* **bank side** (on the person's device, by `takeback hash`): `dihedral`
  (the seven flips and quarter-turns), `crops` (centred crops) and the bank
  half of `grid` (63 crops cutting 10% or 20% from any sides).  A platform
  hashes an upload with plain PDQ and queries once; it cannot know the upload
  was mirrored or cropped, so the bank must already hold that form.  Cost: more
  hashes in the index (memory, and a near-linear share of query time), none at
  query time.
* **both sides**: `borders` (the picture inside a frame or letterbox).  On the
  device it helps when the original itself was framed; at query time (takeback's
  own `match`, crawler and sweep hashing a found file) it strips the bars a
  re-uploader added.  At most one extra hash per image on each side.
* **query side** of `grid`: when takeback itself hashes a found copy, ~1,150 crops
  of it cutting 0-12% from any sides (of the picture inside its border, if it has
  one).  Together with the bank grid they cover crops of up to 20% per axis at any
  position, and watermarks or captions along an edge (the query box that cuts them
  off meets the bank box that cuts the same strip off the original).
* **both sides**: `smooth` (the PDQ of the picture low-passed by a fixed share of
  its size, `pdq_fast.smooth_operator`).  Fine texture aliases into plain PDQ
  differently at every resolution; the smoothed hash does not depend on the
  resolution, so resized and blurred copies of textured photos match.  One
  extra hash on each side.
* `dense` is for videos (`signals.vpdq`): bank frames four times as often.

Every variant is an extra hash: the original PDQ is unchanged and always kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from takeback.media.images import DEFAULT_MAX_PIXELS, decode_image
from takeback.signals import borders, boxes, crops, dihedral, pdq, pdq_fast
from takeback.signals.regions import Box, Plane, buffers, hashable


class Mode(StrEnum):
    DIHEDRAL = "dihedral"
    BORDERS = "borders"
    CROPS = "crops"
    GRID = "grid"
    SMOOTH = "smooth"
    #: Videos only: bank frames every quarter interval, so trimmed or re-timed copies land near a banked frame.
    DENSE = "dense"


#: On by default: each was measured to pay off without raising false positives (docs/robustness.md).  `dense` is
#: the exception: it finds trimmed and re-timed videos, but decoding four frames a second instead of the keyframes
#: makes hashing a video ~10x slower (slower than the vpdq reference), so it is asked for (`--modes default,dense`).
DEFAULT_MODES: frozenset[Mode] = frozenset(Mode) - {Mode.DENSE}
#: What takeback's own matchers (`takeback match`, the crawler) add to a found copy's plain PDQ by default.
DEFAULT_QUERY_MODES: frozenset[Mode] = frozenset({Mode.BORDERS, Mode.GRID, Mode.SMOOTH})
#: The crawler's default: a crawl hashes tens of thousands of thumbnails, so it adds the two cheap query variants
#: (the picture inside a letterbox or frame, the smoothed picture: about 2x the plain hash on a thumbnail) and leaves
#: the crop grid (about 20x) to `takeback match` and to crawls that ask for it (docs/robustness.md).
CRAWL_QUERY_MODES: frozenset[Mode] = frozenset({Mode.BORDERS, Mode.SMOOTH})
#: The cheap query side, for bulk sweeps against large banks: one extra hash at most per picture.
LIGHT_QUERY_MODES: frozenset[Mode] = frozenset({Mode.BORDERS})
#: Variants whose PDQ quality is below this are not worth banking (vPDQ's frame floor): too flat to be distinctive.
#: A picture that is itself below it keeps variants down to its own quality (a flip is as distinctive as the original).
MIN_VARIANT_QUALITY = 50


class UnknownMode(ValueError):
    """A mode name that is not one of `Mode`."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown matching mode {name!r} (known: {', '.join(m.value for m in Mode)}, none, default)")
        self.name = name


@dataclass(frozen=True, slots=True)
class Variant:
    """One extra hash: what was done to the picture (e.g. "flipy", "border", "crop100") and its PDQ."""

    name: str
    hex: str
    quality: int


def parse_modes(text: str | Iterable[str]) -> frozenset[Mode]:
    """'dihedral,borders' -> modes; 'none' or '' -> none; 'default' or 'all' -> the defaults / every mode."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    out: set[Mode] = set()
    for raw in parts:
        name = raw.strip().lower()
        if name in ("", "none"):
            continue
        if name == "default":
            out |= DEFAULT_MODES
        elif name == "all":
            out |= set(Mode)
        else:
            try:
                out.add(Mode(name))
            except ValueError:
                raise UnknownMode(name) from None
    return frozenset(out)


def parse_query_modes(text: str | Iterable[str]) -> frozenset[Mode]:
    """`parse_modes` for the query side: 'default' means `DEFAULT_QUERY_MODES` there."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    rest = [p for p in parts if p.strip().lower() != "default"]
    return parse_modes(rest) | (DEFAULT_QUERY_MODES if len(rest) < len(parts) else frozenset())


def modes_text(modes: Iterable[Mode]) -> str:
    """Canonical comma-separated spelling (sorted), '' for none."""
    return ",".join(sorted(m.value for m in modes))


def _limited(buf: npt.NDArray[np.float64], limited_range: bool) -> npt.NDArray[np.float64]:
    # Video luma is 16..235; the operator's rows sum to one, so stretching the 64x64 result is exact.
    return (buf - 16.0) * (255.0 / 219.0) if limited_range else buf


def bank_variants(
    plane: Plane, modes: Iterable[Mode] = DEFAULT_MODES, *, original: str | None = None, limited_range: bool = False
) -> list[Variant]:
    """The extra hashes to bank for one picture, in a stable order, without duplicates of each other or of
    `original` (the picture's own PDQ hex) and without near-blank ones."""
    modes = frozenset(modes)
    out: list[Variant] = []
    seen: set[str] = {original} if original else set()
    whole = plane.box
    if not modes or not hashable(whole, plane):
        return out
    flips = buffers(plane, flips=Mode.DIHEDRAL in modes)
    floor = min(MIN_VARIANT_QUALITY, pdq_fast.hash_buffer(_limited(flips[(False, False)], limited_range)).quality)

    def keep(name: str, buf: npt.NDArray[np.float64]) -> None:
        h = pdq_fast.hash_buffer(_limited(buf, limited_range))
        if h.quality >= floor and h.hex not in seen:
            seen.add(h.hex)
            out.append(Variant(name, h.hex, h.quality))

    if Mode.DIHEDRAL in modes:
        for name, buf in zip(dihedral.NAMES, dihedral.expand_buffers(flips), strict=True):
            if name != "original":
                keep(name, buf)
    content = borders.find_content(plane.luma) if Mode.BORDERS in modes else None
    if content is not None and hashable(content, plane):
        keep("border", buffers(plane, content)[(False, False)])
    if Mode.CROPS in modes:
        for name, box in crops.crop_boxes(whole):
            if hashable(box, plane):
                keep(name, buffers(plane, box)[(False, False)])
    if Mode.SMOOTH in modes:
        keep("smooth", buffers(plane, whole, smooth=True)[(False, False)])
    if Mode.GRID in modes:
        cuts = crops.axis_cuts(crops.BANK_GRID)
        rows = crops.spans(whole.top, whole.bottom, cuts)
        cols = crops.spans(whole.left, whole.right, cuts)
        grid = boxes.grid_buffers(plane, rows, cols)
        for i, (row_cut, (top, bottom)) in enumerate(zip(cuts, rows, strict=True)):
            for j, (col_cut, (left, right)) in enumerate(zip(cuts, cols, strict=True)):
                if (i or j) and hashable(Box(top, bottom, left, right), plane):
                    keep(crops.grid_name(row_cut, col_cut), grid[i, j])
    return out


def query_variants(
    plane: Plane, modes: Iterable[Mode] = DEFAULT_QUERY_MODES, *, limited_range: bool = False
) -> list[Variant]:
    """Extra hashes to *query* with for a found copy (the plain PDQ is queried as well, by the caller):

    * `borders`: the picture inside its border, if it has one;
    * `smooth`: the smoothed hash of that picture (or of the whole);
    * `grid`: the query half of the crop grid, on the picture inside its border (or the whole).  Each carries the
      quality of the picture it was cut from: the boxes keep at least 85% of each side.

    The bank already holds the flips and crops, so nothing else is needed at query time.
    """
    modes = frozenset(modes)
    out: list[Variant] = []
    content = borders.find_content(plane.luma) if Mode.BORDERS in modes else None
    if content is not None and not hashable(content, plane):
        content = None
    if content is not None:
        h = pdq_fast.hash_buffer(_limited(buffers(plane, content)[(False, False)], limited_range))
        if h.quality > 0:
            out.append(Variant("border", h.hex, h.quality))
    if Mode.SMOOTH in modes and hashable(content or plane.box, plane):
        h = pdq_fast.hash_buffer(_limited(buffers(plane, content, smooth=True)[(False, False)], limited_range))
        if h.quality > 0:
            out.append(Variant("smooth", h.hex, h.quality))
    if Mode.GRID in modes:
        out += _query_grid(plane, content or plane.box, limited_range)
    return out


def _query_grid(plane: Plane, box: Box, limited_range: bool) -> list[Variant]:
    if not hashable(box, plane):
        return []
    quality = pdq_fast.hash_buffer(_limited(buffers(plane, box)[(False, False)], limited_range)).quality
    if quality <= 0:
        return []
    cuts = crops.axis_cuts(crops.QUERY_GRID)
    rows = crops.spans(box.top, box.bottom, cuts)
    cols = crops.spans(box.left, box.right, cuts)
    # Stretching video levels is affine and PDQ's bits are signs around the median: they do not change.
    hexes = boxes.hashes_from_coefficients(boxes.grid_coefficients(plane, rows, cols))
    out: list[Variant] = []
    seen: set[str] = set()
    for k, hex_ in enumerate(hexes):
        i, j = divmod(k, len(cols))
        top, bottom = rows[i]
        left, right = cols[j]
        if (i or j) and hex_ not in seen and hashable(Box(top, bottom, left, right), plane):
            seen.add(hex_)
            out.append(Variant(crops.grid_name(cuts[i], cuts[j]), hex_, quality))
    return out


def plane_of_rgb(rgb: npt.NDArray[np.uint8]) -> Plane:
    """Full-resolution plane of an RGB array, with the reference's luma."""
    return Plane.of_array(pdq.luma_from_rgb(rgb))


@dataclass(frozen=True, slots=True)
class ImageSignals:
    """One photo's PDQ and the extra hashes its modes asked for, from one decode."""

    pdq: pdq.PdqHash
    #: Bank side: to store with the photo.
    variants: list[Variant]
    #: Query side: to match a found copy with (empty unless query modes were given).
    queries: list[Variant]


def hash_image_signals(
    path: Path,
    modes: Iterable[Mode] = DEFAULT_MODES,
    *,
    query_modes: Iterable[Mode] = (),
    exact: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
) -> ImageSignals:
    """The photo's PDQ (exactly as `signals.photo.hash_image` computes it), its bank variants and its query
    variants.  `data`: the file's bytes, when already read.  Raises `MediaError`."""
    decoded = decode_image(path, exact=exact, max_pixels=max_pixels, data=data)
    if decoded.exact:
        main = pdq.hash_luma(np.asarray(decoded.luma, dtype=np.float32))
    else:
        main = pdq_fast.hash_reduced(
            decoded.luma, decoded.full_size, block=decoded.scale, reversed_axes=decoded.reversed_axes
        )
    modes, query_modes = frozenset(modes), frozenset(query_modes)
    plane = Plane(decoded.luma, decoded.full_size, decoded.scale, decoded.reversed_axes)
    bank = bank_variants(plane, modes, original=main.hex) if modes else []
    queries = query_variants(plane, query_modes) if query_modes else []
    return ImageSignals(main, bank, queries)


def hash_image_variants(
    path: Path,
    modes: Iterable[Mode] = DEFAULT_MODES,
    *,
    exact: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[pdq.PdqHash, list[Variant]]:
    """The photo's PDQ and its bank variants, from one decode.  Raises `MediaError`."""
    signals = hash_image_signals(path, modes, exact=exact, max_pixels=max_pixels)
    return signals.pdq, signals.variants
