"""The robustness suite's pictures and what is done to them: the corpus (bundled scikit-image photos, a folder,
generated "dead leaves" images for the distractor pool) and the fixed, seeded list of transformations.

Kept apart from `robustness.py` (which hashes and tabulates) so the transformations can be read, and tested, on
their own: each takes a PIL image and a generator seeded from (photo, transformation), so every run makes the
same copies.
"""

from __future__ import annotations

import io
import math
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

SEED = 20261125
#: Bundled photos used as the corpus (documents, drawings and binary masks are left out; `chelsea` == `cat`).
PHOTO_NAMES = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "brick",
    "moon",
    "coins",
    "clock",
    "gravel",
    "grass",
    "cell",
    "stereo_motorcycle",
)
MAX_SIDE = 1024  # photos from --photos are scaled down to this, to keep the run short

Rgb = npt.NDArray[np.uint8]


# --- corpus ---------------------------------------------------------------------------------------------------------
def bundled_photo(name: str) -> Rgb:
    import skimage.data

    arr = getattr(skimage.data, name)()
    if isinstance(arr, tuple):  # stereo pair: the left view only (the right is a near-duplicate)
        arr = arr[0]
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        arr = (arr.astype(np.float64) * (255.0 / max(1.0, float(arr.max())))).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return np.ascontiguousarray(arr[:, :, :3])


def folder_photos(folder: Path) -> list[tuple[str, Rgb]]:
    out = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"):
            continue
        try:
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img).convert("RGB")
                img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
                out.append((f"dir:{path.name}", np.asarray(img)))
        except OSError as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
    return out


def dead_leaves(rng: np.random.Generator, size: int = 256) -> Rgb:
    """A 'dead leaves' image: occluding shapes with power-law sizes, the classic model of natural-image statistics,
    plus 1/f grain and a lighting gradient."""
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(60, 220))):
        r = size * 0.01 / max(rng.random(), 0.01) ** 0.7  # heavy-tailed radii
        r = min(r, size * 0.6)
        x, y = rng.uniform(-r, size + r, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.6:
            draw.ellipse((x - r, y - r * rng.uniform(0.5, 1.5), x + r, y + r), fill=colour)
        else:
            pts = [(x + r * math.cos(a), y + r * math.sin(a)) for a in np.sort(rng.uniform(0, 2 * math.pi, 5))]
            draw.polygon(pts, fill=colour)
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))).astype(np.float64)
    freq = np.fft.fftfreq(size)
    f = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    f[0, 0] = 1.0
    grain = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / f))
    grain = grain / (grain.std() + 1e-9) * rng.uniform(4, 20)
    yy, xx = np.mgrid[0:size, 0:size] / size
    light = 40 * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy)
    return np.clip(arr + grain[:, :, None] + light[:, :, None], 0, 255).astype(np.uint8)


def tiles(rgb: Rgb, tile: int) -> list[Rgb]:
    """Non-overlapping tiles of a photo (distinct content, photographic statistics)."""
    h, w = rgb.shape[:2]
    return [
        np.ascontiguousarray(rgb[y : y + tile, x : x + tile])
        for y in range(0, h - tile + 1, tile)
        for x in range(0, w - tile + 1, tile)
    ]


# --- transformations ------------------------------------------------------------------------------------------------
def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _resize(img: Image.Image, f: float) -> Image.Image:
    return img.resize((max(8, round(img.width * f)), max(8, round(img.height * f))), Image.Resampling.LANCZOS)


def _crop(img: Image.Image, p: float, rng: np.random.Generator | None) -> Image.Image:
    """Remove p of the width and p of the height: split evenly between the two ends (centre), or unevenly, at
    least 3:1, with a random split per axis (off-centre)."""
    w, h = img.size
    kw, kh = round(w * (1 - p)), round(h * (1 - p))
    if rng is None:
        ux = uy = 0.5
    else:
        ux, uy = (float(rng.uniform(0, 0.25)) if rng.random() < 0.5 else float(rng.uniform(0.75, 1)) for _ in "xy")
    x, y = round((w - kw) * ux), round((h - kh) * uy)
    return img.crop((x, y, x + kw, y + kh))


def _pad(img: Image.Image, left: int, top: int, right: int, bottom: int, colour: tuple[int, int, int]) -> Image.Image:
    out = Image.new("RGB", (img.width + left + right, img.height + top + bottom), colour)
    out.paste(img, (left, top))
    return out


def _text(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    out = img.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(10, img.height // 18)
    font = ImageFont.load_default(size=size)
    label = "@reuploader_" + str(int(rng.integers(100, 999)))
    x = img.width - int(size * 0.55 * len(label)) - size
    draw.text((max(0, x), img.height - 2 * size), label, font=font, fill=(255, 255, 255, 170))
    return Image.alpha_composite(out, layer).convert("RGB")


def _logo(img: Image.Image, rng: np.random.Generator, share: float, opacity: float) -> Image.Image:
    """scikit-image's logo (colourful, busy) pasted into a random corner, `share` of the width wide."""
    import skimage.data

    logo = Image.fromarray(skimage.data.logo()).convert("RGBA")
    side = max(16, round(img.width * share))
    logo = logo.resize((side, side), Image.Resampling.LANCZOS)
    alpha = logo.getchannel("A").point(lambda a: int(a * opacity))
    logo.putalpha(alpha)
    out = img.convert("RGBA")
    corner = int(rng.integers(0, 4))
    x = side // 4 if corner % 2 == 0 else img.width - side - side // 4
    y = side // 4 if corner < 2 else img.height - side - side // 4
    out.alpha_composite(logo, (max(0, x), max(0, y)))
    return out.convert("RGB")


def _gamma(img: Image.Image, g: float) -> Image.Image:
    lut = [round(255 * (i / 255) ** g) for i in range(256)] * 3
    return img.point(lut)


def _noise(img: Image.Image, rng: np.random.Generator, sigma: float) -> Image.Image:
    arr = np.asarray(img).astype(np.float64) + rng.normal(0, sigma, (img.height, img.width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _screenshot(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo shown in a viewer window and screen-captured: scaled into a larger canvas with a toolbar (buttons,
    a title), page margins and a status bar, then saved as JPEG."""
    scale = rng.uniform(0.6, 0.9)
    shown = _resize(img, scale)
    page_w = round(shown.width / rng.uniform(0.7, 0.85))
    page_h = round(shown.height / rng.uniform(0.75, 0.9))
    bar = max(12, page_h // 12)
    status = max(6, page_h // 30)
    canvas = Image.new("RGB", (page_w, bar + page_h + status), (236, 236, 238))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, page_w, bar), fill=(52, 54, 62))
    r = bar // 5
    for k, colour in enumerate(((237, 106, 94), (245, 191, 79), (98, 197, 84))):
        cx = bar // 2 + k * 3 * r
        draw.ellipse((cx - r, bar // 2 - r, cx + r, bar // 2 + r), fill=colour)
    font = ImageFont.load_default(size=max(8, bar // 3))
    draw.text((page_w // 2 - bar * 2, bar // 3), "IMG_2041.jpg", font=font, fill=(210, 210, 214))
    draw.rectangle((0, bar + page_h, page_w, bar + page_h + status), fill=(220, 220, 224))
    x = (page_w - shown.width) // 2
    y = bar + (page_h - shown.height) // 2
    canvas.paste(shown, (x, y))
    return _jpeg(canvas, 85)


def _rotate(img: Image.Image, angle: float) -> Image.Image:
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)


Transform = Callable[[Image.Image, np.random.Generator], Image.Image]


@dataclass(frozen=True)
class Spec:
    name: str
    group: str  # the target group (recall target depends on it)
    apply: Transform


def transformations() -> list[Spec]:
    """The fixed list.  Each copy gets its own generator seeded from (photo, transformation)."""
    t: list[Spec] = [
        Spec("jpeg q90", "recompression", lambda im, r: _jpeg(im, 90)),
        Spec("jpeg q50", "recompression", lambda im, r: _jpeg(im, 50)),
        Spec("jpeg q20", "recompression", lambda im, r: _jpeg(im, 20)),
        Spec("resize 50%", "resize", lambda im, r: _resize(im, 0.5)),
        Spec("resize 25%", "resize", lambda im, r: _resize(im, 0.25)),
        # Not in the list: factors that are not powers of two, to show how far the resize figures carry.
        Spec("resize 70%", "resize, other factors", lambda im, r: _resize(im, 0.70)),
        Spec("resize 40%", "resize, other factors", lambda im, r: _resize(im, 0.40)),
    ]
    for p in (0.05, 0.10, 0.20, 0.30):
        group = "crop <=20%" if p <= 0.20 else "crop 30%"
        t.append(Spec(f"crop {p:.0%} centre", group, lambda im, r, p=p: _crop(im, p, None)))
        t.append(Spec(f"crop {p:.0%} off-centre", group, lambda im, r, p=p: _crop(im, p, r)))
    # Between the bank's crop rungs (every 2.5%): the worst case for the ladder is 1.25% off a rung.
    for p in (0.06, 0.16):
        t.append(Spec(f"crop {p:.0%} centre", "crop <=20%", lambda im, r, p=p: _crop(im, p, None)))
    t += [
        Spec("flip horizontal", "flip", lambda im, r: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        Spec("flip vertical", "flip", lambda im, r: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
        Spec("rotate 90", "rotate 90", lambda im, r: im.transpose(Image.Transpose.ROTATE_90)),
        Spec("rotate 180", "rotate 90", lambda im, r: im.transpose(Image.Transpose.ROTATE_180)),
        Spec("rotate 270", "rotate 90", lambda im, r: im.transpose(Image.Transpose.ROTATE_270)),
        Spec("rotate +5°", "small rotation", lambda im, r: _rotate(im, 5)),
        Spec("rotate -5°", "small rotation", lambda im, r: _rotate(im, -5)),
        Spec(
            "border 6% white",
            "border",
            lambda im, r: _pad(im, *(4 * [max(2, round(0.06 * max(im.size)))]), colour=(255, 255, 255)),
        ),
        Spec(
            "border 12% colour",
            "border",
            lambda im, r: _pad(
                im,
                *(4 * [max(2, round(0.12 * max(im.size)))]),
                colour=tuple(int(v) for v in r.integers(0, 256, 3)),  # type: ignore[arg-type]
            ),
        ),
        Spec(
            "letterbox",
            "border",
            lambda im, r: _pad(im, 0, round(0.2 * im.height), 0, round(0.2 * im.height), (0, 0, 0)),
        ),
        Spec(
            "pillarbox",
            "border",
            lambda im, r: _pad(im, round(0.25 * im.width), 0, round(0.25 * im.width), 0, (0, 0, 0)),
        ),
        Spec("text watermark", "watermark", _text),
        Spec("logo watermark 1/10 width, 50%", "watermark", lambda im, r: _logo(im, r, 0.10, 0.5)),
        Spec("logo watermark 1/6 width, 80%", "large watermark", lambda im, r: _logo(im, r, 1 / 6, 0.8)),
        Spec("brightness +30%", "colour", lambda im, r: ImageEnhance.Brightness(im).enhance(1.3)),
        Spec("contrast -30%", "colour", lambda im, r: ImageEnhance.Contrast(im).enhance(0.7)),
        Spec("gamma 0.6", "colour", lambda im, r: _gamma(im, 0.6)),
        Spec("gamma 1.6", "colour", lambda im, r: _gamma(im, 1.6)),
        Spec("saturation +60%", "colour", lambda im, r: ImageEnhance.Color(im).enhance(1.6)),
        Spec("greyscale", "colour", lambda im, r: ImageOps.grayscale(im).convert("RGB")),
        Spec("blur r=2", "blur", lambda im, r: im.filter(ImageFilter.GaussianBlur(2))),
        Spec("noise σ=12", "noise", lambda im, r: _noise(im, r, 12)),
        Spec("screenshot", "screenshot", _screenshot),
        Spec(
            "flip + crop 10% + jpeg q50",
            "combination",
            lambda im, r: _jpeg(_crop(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0.10, None), 50),
        ),
        Spec(
            "resize 50% + text + jpeg q70",
            "combination",
            lambda im, r: _jpeg(_text(_resize(im, 0.5), r), 70),
        ),
        Spec(
            "letterbox + jpeg q50",
            "combination",
            lambda im, r: _jpeg(_pad(im, 0, round(0.2 * im.height), 0, round(0.2 * im.height), (0, 0, 0)), 50),
        ),
        Spec(
            "rotate 90 + resize 50% + jpeg q70",
            "combination",
            lambda im, r: _jpeg(_resize(im.transpose(Image.Transpose.ROTATE_90), 0.5), 70),
        ),
        Spec(
            "greyscale + crop 5% + noise",
            "combination",
            lambda im, r: _noise(ImageOps.grayscale(_crop(im, 0.05, None)).convert("RGB"), r, 6),
        ),
        Spec(
            "mirror + border + jpeg q70",
            "combination",
            lambda im, r: _jpeg(
                _pad(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), *(4 * [round(0.08 * max(im.size))]), (20, 20, 20)),
                70,
            ),
        ),
    ]
    return t


def rng_for(*keys: str) -> np.random.Generator:
    return np.random.default_rng([SEED, *(zlib.crc32(k.encode()) for k in keys)])
