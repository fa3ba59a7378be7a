"""Extra PDQ hashes for the copies plain PDQ misses: the matching modes.

Which side computes what (the index's speed targets are per query, so the
extra hashes go where they cost least):

* **bank side** (on the person's device, by `takeback hash`): `dihedral`
  (the seven flips and quarter-turns) and `crops` (centred crops).  A platform
  hashes an upload with plain PDQ and queries once; it cannot know the upload
  was mirrored or cropped, so the bank must already hold that form.  Cost: more
  hashes in the index (memory, and a near-linear share of query time), none at
  query time.
* **both sides**: `borders` (the picture inside a frame or letterbox).  On the
  device it helps when the original itself was framed; at query time (takeback's
  own `match`/scan hashing a found file) it strips the bars a re-uploader added.
  At most one extra hash per image on each side, and only when a border is found.

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
from takeback.signals import borders, crops, dihedral, pdq, pdq_fast
from takeback.signals.regions import Plane, buffers, hashable


class Mode(StrEnum):
    DIHEDRAL = "dihedral"
    BORDERS = "borders"
    CROPS = "crops"


#: On by default: each was measured to pay off without raising false positives (docs/robustness.md).
DEFAULT_MODES: frozenset[Mode] = frozenset({Mode.DIHEDRAL, Mode.BORDERS, Mode.CROPS})
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
    floor = min(MIN_VARIANT_QUALITY, dihedral.hash_buffer(_limited(flips[(False, False)], limited_range)).quality)

    def keep(name: str, buf: npt.NDArray[np.float64]) -> None:
        h = dihedral.hash_buffer(_limited(buf, limited_range))
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
    return out


def query_variants(
    plane: Plane, modes: Iterable[Mode] = DEFAULT_MODES, *, limited_range: bool = False
) -> list[Variant]:
    """Extra hashes to *query* with for a found copy: the picture inside its border, if any.

    The bank already holds the flips and crops, so nothing else is needed at query time.
    """
    if Mode.BORDERS not in frozenset(modes):
        return []
    content = borders.find_content(plane.luma)
    if content is None or not hashable(content, plane):
        return []
    h = dihedral.hash_buffer(_limited(buffers(plane, content)[(False, False)], limited_range))
    return [Variant("border", h.hex, h.quality)] if h.quality > 0 else []


def plane_of_rgb(rgb: npt.NDArray[np.uint8]) -> Plane:
    """Full-resolution plane of an RGB array, with the reference's luma."""
    return Plane.of_array(pdq.luma_from_rgb(rgb))


def hash_image_variants(
    path: Path,
    modes: Iterable[Mode] = DEFAULT_MODES,
    *,
    exact: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[pdq.PdqHash, list[Variant]]:
    """The photo's PDQ (exactly as `signals.photo.hash_image` computes it) and its bank variants, from one decode.
    Raises `MediaError`."""
    decoded = decode_image(path, exact=exact, max_pixels=max_pixels)
    if decoded.exact:
        main = pdq.hash_luma(np.asarray(decoded.luma, dtype=np.float32))
    else:
        main = pdq_fast.hash_reduced(
            decoded.luma, decoded.full_size, block=decoded.scale, reversed_axes=decoded.reversed_axes
        )
    modes = frozenset(modes)
    if not modes:
        return main, []
    plane = Plane(decoded.luma, decoded.full_size, decoded.scale, decoded.reversed_axes)
    return main, bank_variants(plane, modes, original=main.hex)
