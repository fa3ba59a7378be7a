"""The demo's pictures: the person's "protected photos" and the altered copies planted on the demo site.

All of them come from scikit-image's bundled public-domain photos (``takeback.samples``).  The planted copies are
altered the way re-uploads are (smaller, re-compressed, cropped, mirrored, recoloured), so the demo shows that
takeback finds copies that are not byte-identical.  Everything is deterministic and made in memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from takeback import samples

#: The photos the demo person protects (hashed into her bank).
PROTECTED: tuple[str, ...] = ("astronaut", "coffee", "rocket", "chelsea")
#: Unrelated photos the site shows too (they must not match).
UNRELATED: tuple[str, ...] = ("camera", "moon", "coins", "clock", "brick", "gravel")
#: Size of the originals, as if from a phone (small enough to make in a blink).
ORIGINAL_SIZE = (1024, 768)


@cache
def _picture(name: str) -> Image.Image:
    return Image.fromarray(samples.photo(name)).convert("RGB")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _width(img: Image.Image, width: int) -> Image.Image:
    return img.resize((width, max(1, round(width * img.height / img.width))), Image.Resampling.LANCZOS)


def original(name: str) -> bytes:
    """The protected photo as the person has it (a JPEG at ORIGINAL_SIZE)."""
    return _jpeg(_picture(name).resize(ORIGINAL_SIZE, Image.Resampling.LANCZOS), 92)


def write_originals(folder: Path, names: tuple[str, ...] = PROTECTED) -> list[Path]:
    """The protected photos as files (what `takeback hash` would be run on, on her device)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.jpg"
        if not path.exists():
            path.write_bytes(original(name))
        paths.append(path)
    return paths


def _resized(img: Image.Image) -> bytes:
    return _jpeg(_width(img, 480), 70)


def _thumbnail(img: Image.Image) -> bytes:
    return _jpeg(_width(img, 200), 45)


def _cropped(img: Image.Image) -> bytes:
    dx, dy = img.width // 20, img.height // 20
    return _jpeg(_width(img.crop((dx, dy, img.width - dx, img.height - dy)), 420), 80)


def _mirrored(img: Image.Image) -> bytes:
    return _jpeg(_width(ImageOps.mirror(img), 400), 80)


def _recoloured(img: Image.Image) -> bytes:
    brighter = ImageEnhance.Brightness(_width(img, 400)).enhance(1.15)
    return _jpeg(ImageEnhance.Color(brighter).enhance(0.6), 80)


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "resized": _resized,
    "thumbnail": _thumbnail,
    "cropped": _cropped,
    "mirrored": _mirrored,
    "recoloured": _recoloured,
}


@dataclass(frozen=True, slots=True)
class Planted:
    """One altered copy of a protected photo on the demo site."""

    path: str
    photo: str
    transform: str

    def data(self) -> bytes:
        return copy(self.photo, self.transform)


@cache
def copy(name: str, transform: str) -> bytes:
    """A protected photo, altered by one of TRANSFORMS."""
    return TRANSFORMS[transform](_picture(name))


@cache
def unrelated(name: str) -> bytes:
    """A photo nobody protects, as a site's ordinary picture."""
    return _jpeg(_width(_picture(name), 360), 75)
