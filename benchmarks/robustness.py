"""Robustness suite: which transformed copies plain PDQ / vPDQ catch, and which takeback's matching modes add.

Photos: every suitable bundled scikit-image photo (plus `--photos DIR`), each transformed by a fixed, seeded list
(recompression, resizing, crops, flips, rotations, borders, watermarks, colour, blur, noise, a screenshot-like
re-render, combinations).  A copy is *found* when some bank hash of its original is within 31 bits of some query
hash of the copy.  The bank side is what `takeback hash` computes on the device; the query side is what a platform
computes on an upload (plain PDQ, the reference `pdqhash`), plus, for the modes that hash at query time, what
takeback's own matcher adds.  False positives: every bank of one picture against every query of a *different*
picture, over a pool of the bundled photos, non-overlapping tiles of them, and generated natural-looking images.

Video: short clips made from the bundled photos (Ken-Burns pans, PyAV), transformed (re-encode, trim, resize, flip,
letterbox, speed change), matched with takeback's vPDQ rule (`takeback.index`, the anchor) and with the modes.

    python benchmarks/robustness.py                # default corpus, ~1M distractor pairs, a few minutes on 2 cores
    python benchmarks/robustness.py --full         # bigger distractor pool and more clips
    python benchmarks/robustness.py --photos DIR   # add your own (benign!) photos to the corpus
    python benchmarks/robustness.py --smoke        # a few photos, tiny pool: checks the script runs
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from _common import machine_lines
from takeback.signals.dihedral import NAMES as DIHEDRAL_NAMES
from takeback.signals.variants import (
    DEFAULT_MODES,
    Mode,
    bank_variants,
    plane_of_rgb,
    query_variants,
)

THRESHOLD = 31
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


# --- hashing both sides ---------------------------------------------------------------------------------------------
def reference_pdq(rgb: Rgb) -> tuple[str, int]:
    """The platform's hash: Meta's reference (pdqhash)."""
    import pdqhash

    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def reference_dihedral(rgb: Rgb) -> list[str]:
    import pdqhash

    hashes, _q = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    return [np.packbits(np.asarray(b, dtype=np.uint8)).tobytes().hex() for b in hashes]


COLUMNS: tuple[str, ...] = ("pdq", "dihedral (pdqhash trick)", "dihedral", "borders", "crops", "default")
_DIHEDRAL_SET = frozenset(DIHEDRAL_NAMES)


def _bank_modes(column: str) -> frozenset[Mode]:
    return {
        "dihedral": frozenset({Mode.DIHEDRAL}),
        "borders": frozenset({Mode.BORDERS}),
        "crops": frozenset({Mode.CROPS}),
        "default": DEFAULT_MODES,
    }.get(column, frozenset())


@dataclass
class Hashed:
    """Bank and query hash lists of one picture, per column."""

    bank: dict[str, list[str]] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    quality: int = 0


def _mode_of(variant_name: str) -> Mode:
    if variant_name in _DIHEDRAL_SET:
        return Mode.DIHEDRAL
    return Mode.BORDERS if variant_name == "border" else Mode.CROPS


def bank_side(rgb: Rgb, timings: dict[str, list[float]] | None = None) -> Hashed:
    """Bank hashes per column.  With `timings`, each mode is computed on its own (to time it); without, once for
    all modes and split by variant name (the same hashes, less work for the distractor pool)."""
    main, quality = reference_pdq(rgb)
    out = Hashed(quality=quality)
    out.bank["pdq"] = [main]
    out.bank["dihedral (pdqhash trick)"] = reference_dihedral(rgb)
    plane = plane_of_rgb(rgb)
    if timings is None:
        every = bank_variants(plane, frozenset(Mode), original=main)
        for column in ("dihedral", "borders", "crops", "default"):
            modes = _bank_modes(column)
            out.bank[column] = [main] + [v.hex for v in every if _mode_of(v.name) in modes]
        return out
    for column in ("dihedral", "borders", "crops", "default"):
        start = time.perf_counter()
        extra = bank_variants(plane, _bank_modes(column), original=main)
        timings.setdefault(column, []).append(time.perf_counter() - start)
        out.bank[column] = [main] + [v.hex for v in extra]
    return out


def query_side(rgb: Rgb, timings: dict[str, list[float]] | None = None) -> Hashed:
    main, quality = reference_pdq(rgb)
    out = Hashed(quality=quality)
    start = time.perf_counter()
    extra = [v.hex for v in query_variants(plane_of_rgb(rgb), {Mode.BORDERS})]
    elapsed = time.perf_counter() - start
    for column in COLUMNS:
        if Mode.BORDERS in _bank_modes(column):
            if timings is not None:
                timings.setdefault(column, []).append(elapsed)
            out.query[column] = [main, *extra]
        else:
            out.query[column] = [main]
    return out


def words(hexes: Sequence[str]) -> npt.NDArray[np.uint64]:
    raw = b"".join(bytes.fromhex(h) for h in hexes)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(len(hexes), 4)


def distances(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.int32]:
    """All-pairs Hamming distances (len(a), len(b))."""
    out = np.zeros((len(a), len(b)), dtype=np.int32)
    for k in range(4):
        out += np.bitwise_count(a[:, None, k] ^ b[None, :, k]).astype(np.int32)
    return out


def min_distance(bank: list[str], query: list[str]) -> int:
    return int(distances(words(bank), words(query)).min())


# --- photo tables ---------------------------------------------------------------------------------------------------
TARGETS = {
    "recompression": 0.99,
    "resize": 0.99,
    "colour": 0.99,
    "blur": 0.99,
    "noise": 0.99,
    "border": 0.99,
    "watermark": 0.99,
    "flip": 1.0,
    "rotate 90": 1.0,
    "crop <=20%": 0.90,
}


def run_photos(corpus: list[tuple[str, Rgb]]) -> tuple[list[str], dict[str, Hashed], dict[str, list[float]]]:
    specs = transformations()
    timings: dict[str, list[float]] = {}
    banks = {name: bank_side(rgb, timings) for name, rgb in corpus}
    found: dict[tuple[str, str], dict[str, int]] = {}  # (spec, photo) -> column -> min distance
    query_timings: dict[str, list[float]] = {}
    for name, rgb in corpus:
        img = Image.fromarray(rgb)
        for spec in specs:
            copy = np.asarray(spec.apply(img, rng_for(name, spec.name)).convert("RGB"))
            q = query_side(copy, query_timings)
            found[(spec.name, name)] = {c: min_distance(banks[name].bank[c], q.query[c]) for c in COLUMNS}
    lines = [
        f"Photos: {len(corpus)}; transformations: {len(specs)}; copies: {len(corpus) * len(specs)}. "
        f"Cells: recall at distance ≤ {THRESHOLD} (found/{len(corpus)}), and in brackets the median distance of the "
        "best bank/query pair.",
        "",
        "| transformation | group | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    group_hits: dict[str, dict[str, list[bool]]] = {}
    for spec in specs:
        cells = []
        for column in COLUMNS:
            d = [found[(spec.name, name)][column] for name, _ in corpus]
            hits = [x <= THRESHOLD for x in d]
            group_hits.setdefault(spec.group, {}).setdefault(column, []).extend(hits)
            cells.append(f"{sum(hits)}/{len(hits)} ({int(np.median(d))})")
        lines.append(f"| {spec.name} | {spec.group} | " + " | ".join(cells) + " |")
    lines += ["", "Recall per group (the issue's targets):", ""]
    lines += [
        "| group | target | " + " | ".join(COLUMNS) + " | met by default |",
        "|---|---:|" + "---:|" * len(COLUMNS) + "---|",
    ]
    for group, cols in group_hits.items():
        target = TARGETS.get(group)
        rates = {c: sum(v) / len(v) for c, v in cols.items()}
        met = "—" if target is None else ("yes" if rates["default"] >= target else "**no**")
        lines.append(
            f"| {group} | {'—' if target is None else f'{target:.0%}'} | "
            + " | ".join(f"{rates[c]:.1%}" for c in COLUMNS)
            + f" | {met} |"
        )
    misses: dict[str, set[str]] = {}
    for spec in specs:
        if spec.group in TARGETS:
            for name, _ in corpus:
                if found[(spec.name, name)]["default"] > THRESHOLD:
                    misses.setdefault(spec.group, set()).add(name)
    lines += ["", "Photos missed by the default modes, per target group:", ""]
    lines += [f"- {group}: {', '.join(sorted(names))}" for group, names in misses.items()] or ["- none"]
    for column, values in query_timings.items():
        timings["query " + column] = values
    return lines, banks, timings


# --- false positives ------------------------------------------------------------------------------------------------
def distractor_pool(corpus: list[tuple[str, Rgb]], generated: int, tile: int) -> list[tuple[str, str, Rgb]]:
    """(source, name, pixels): pairs from the same source are not counted (a tile is part of its photo)."""
    pool: list[tuple[str, str, Rgb]] = [(name, name, rgb) for name, rgb in corpus]
    for name, rgb in corpus:
        for k, t in enumerate(tiles(rgb, tile)):
            pool.append((name, f"{name}/tile{k}", t))
    for k in range(generated):
        pool.append((f"gen{k}", f"gen{k}", dead_leaves(rng_for("dead-leaves", str(k)))))
    return pool


def run_false_positives(corpus: list[tuple[str, Rgb]], generated: int, tile: int, min_quality: int) -> list[str]:
    pool = distractor_pool(corpus, generated, tile)
    hashed: list[tuple[str, Hashed, Hashed]] = []
    dropped = 0
    for source, _name, rgb in pool:
        b = bank_side(rgb)
        if b.quality < min_quality:
            dropped += 1
            continue
        hashed.append((source, b, query_side(rgb)))
    n = len(hashed)
    sources = np.array([zlib.crc32(s.encode()) for s, _, _ in hashed])
    different = sources[:, None] != sources[None, :]
    pairs = int(different.sum())
    lines = [
        f"Distractor pool: {n} pictures ({len(corpus)} photos, their non-overlapping {tile}px tiles, {generated} "
        f"generated dead-leaves images; {dropped} with PDQ quality < {min_quality} left out), every bank against "
        f"every query of a different picture (tiles of the same photo excepted): **{pairs:,} ordered pairs**. "
        f"A false-positive rate of 1e-6 would need ~3,000,000 pairs with none found to claim at 95% confidence; "
        f"with 0 found among {pairs:,}, the 95% upper bound is {3 / max(pairs, 1):.1e} (rule of three).",
        "",
        "| mode | bank hashes / picture | query hashes / picture | pairs ≤ 31 (FP) | FPR | ≤ 40 | ≤ 50 | ≤ 63 | "
        "smallest distances | 0.01% / 0.1% / 1% quantile |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for column in COLUMNS:
        bank_hex: list[str] = []
        bank_owner: list[int] = []
        query_hex: list[str] = []
        query_owner: list[int] = []
        for i, (_s, b, q) in enumerate(hashed):
            bank_hex += b.bank[column]
            bank_owner += [i] * len(b.bank[column])
            query_hex += q.query[column]
            query_owner += [i] * len(q.query[column])
        qw = words(query_hex)
        bw = words(bank_hex)
        # Hashes are grouped by owner, so the best pair per (bank picture, query picture) is a min-reduce over
        # contiguous runs, first along the queries, then along the bank hashes.
        q_starts = np.flatnonzero(np.r_[True, np.diff(query_owner) != 0])
        b_owner = np.array(bank_owner)
        per_bank_hash = np.empty((len(bw), n), dtype=np.int32)
        for start in range(0, len(bw), 4096):
            d = distances(bw[start : start + 4096], qw)
            per_bank_hash[start : start + 4096] = np.minimum.reduceat(d, q_starts, axis=1)
        b_starts = np.flatnonzero(np.r_[True, np.diff(b_owner) != 0])
        best = np.minimum.reduceat(per_bank_hash, b_starts, axis=0)
        values = best[different]
        fp = int((values <= THRESHOLD).sum())
        q = np.quantile(values, [1e-4, 1e-3, 1e-2])
        smallest = ", ".join(str(int(v)) for v in np.sort(values)[:5])
        lines.append(
            f"| {column} | {len(bank_hex) / n:.1f} | {len(query_hex) / n:.2f} | {fp} | {fp / pairs:.1e} | "
            f"{int((values <= 40).sum())} | {int((values <= 50).sum())} | {int((values <= 63).sum())} | {smallest} | "
            f"{q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f} |"
        )
    return lines


# --- video ----------------------------------------------------------------------------------------------------------
def _transcode(
    src: Path, dst: Path, edit: Callable[[list[Rgb]], list[Rgb]], fps: int, codec: str = "libx264", crf: int = 23
) -> Path:
    import av

    with av.open(str(src)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    frames = edit(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(dst), mode="w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def _resize_frames(frames: list[Rgb], f: float) -> list[Rgb]:
    return [np.asarray(_resize(Image.fromarray(x), f)) for x in frames]


def _speed(frames: list[Rgb], factor: float) -> list[Rgb]:
    count = int(len(frames) / factor)
    return [frames[min(len(frames) - 1, round(k * factor))] for k in range(count)]


def _letterbox(frames: list[Rgb]) -> list[Rgb]:
    out = []
    for x in frames:
        bar = np.zeros((x.shape[0] // 4, x.shape[1], 3), dtype=np.uint8)
        out.append(np.concatenate([bar, x, bar]))
    return out


VIDEO_TRANSFORMS: tuple[tuple[str, Callable[[list[Rgb]], list[Rgb]], dict[str, object]], ...] = (
    ("re-encode crf 35", lambda f: f, {"crf": 35}),
    ("re-encode mpeg4", lambda f: f, {"codec": "mpeg4"}),
    ("trim (drop first 2.5 s, last 1.5 s)", lambda f: f[25:-15], {}),
    ("resize 50%", lambda f: _resize_frames(f, 0.5), {}),
    ("flip horizontal", lambda f: [np.ascontiguousarray(x[:, ::-1]) for x in f], {}),
    ("letterbox", _letterbox, {}),
    ("speed 1.5x", lambda f: _speed(f, 1.5), {}),
    ("speed 0.75x", lambda f: _speed(f, 0.75), {}),
    ("flip + letterbox + crf 30", lambda f: _letterbox([np.ascontiguousarray(x[:, ::-1]) for x in f]), {"crf": 30}),
)


def _frame_lists(
    path: Path, modes: frozenset[Mode], side: str, interval: float = 1.0
) -> dict[str, list[tuple[str, int, float]]]:
    """Per variant name, the (hash, quality, timestamp) frames of one video: 'original' and, on the bank side, each
    dihedral variant; on the query side the border-trimmed frames (a frame without a border keeps its own hash)."""
    from takeback.media.video import sample_frames
    from takeback.signals.pdq_fast import PlaneHasher
    from takeback.signals.regions import Plane

    lists: dict[str, list[tuple[str, int, float]]] = {"original": []}
    hasher: PlaneHasher | None = None
    for s in sample_frames(path, interval=interval):
        h, w = s.luma.shape
        if hasher is None or (hasher.height, hasher.width) != (h, w):
            hasher = PlaneHasher(h, w)
        main = hasher.hash(s.luma, limited_range=s.limited_range)
        lists["original"].append((main.hex, main.quality, s.timestamp))
        if not modes:
            continue
        plane = Plane.of_array(np.array(s.luma))
        if side == "bank":
            named = {v.name: v for v in bank_variants(plane, modes, limited_range=s.limited_range)}
            for name in DIHEDRAL_NAMES[1:]:
                if name in named:
                    lists.setdefault(name, []).append((named[name].hex, named[name].quality, s.timestamp))
        else:
            extra = query_variants(plane, modes, limited_range=s.limited_range)
            v = extra[0] if extra else None
            lists.setdefault("border", []).append(
                (v.hex, v.quality, s.timestamp) if v else (main.hex, main.quality, s.timestamp)
            )
    return lists


def _vpdq_value(frames: list[tuple[str, int, float]]) -> str:
    import json

    return json.dumps([{"hash": h, "quality": q, "timestamp": t} for h, q, t in frames])


def run_video(clips: int, workdir: Path) -> list[str]:
    from takeback import samples
    from takeback.index import IndexedSignal, Query, SignalIndex

    names = [n for n in samples.PHOTO_NAMES if n not in ("page", "text")]
    originals: list[Path] = []
    for k in range(clips):
        pick = (names[(2 * k) % len(names)], names[(2 * k + 1) % len(names)])
        originals.append(
            samples.write_video(
                workdir / f"clip{k}.mp4",
                seconds=10,
                fps=10,
                size=(320, 240),
                scene_seconds=5,
                names=pick,
                gop_seconds=2.0,
            )
        )
    # (column, modes, bank frame interval): "dense" banks 4 frames a second so a copy played faster or slower, or
    # trimmed off the second, still lands near a banked frame; queries stay at 1 frame a second.
    columns = (
        ("vPDQ", frozenset(), 1.0),
        ("dihedral", frozenset({Mode.DIHEDRAL}), 1.0),
        ("borders", frozenset({Mode.BORDERS}), 1.0),
        ("dense bank 0.25 s", frozenset(), 0.25),
        ("default", frozenset({Mode.DIHEDRAL, Mode.BORDERS}), 0.25),
    )
    indexes: dict[str, SignalIndex] = {}
    owner: dict[int, int] = {}
    sid = 0
    for column, modes, interval in columns:
        index = SignalIndex()
        signals = []
        for k, path in enumerate(originals):
            for name, frames in _frame_lists(path, modes & {Mode.DIHEDRAL}, "bank", interval).items():
                if frames and (name == "original" or Mode.DIHEDRAL in modes):
                    sid += 1
                    owner[sid] = k
                    signals.append(IndexedSignal(sid, 1, "vpdq", _vpdq_value(frames)))
        index.add(signals)
        indexes[column] = index

    def matched(column: str, modes: frozenset[Mode], path: Path) -> set[int]:
        lists = _frame_lists(path, modes & {Mode.BORDERS}, "query")
        queries = [Query("vpdq", _vpdq_value(f)) for name, f in lists.items() if f and (name == "original" or modes)]
        hits: set[int] = set()
        for result in indexes[column].match(queries):
            hits |= {owner[m.signal_id] for m in result}
        return hits

    lines = [
        f"Clips: {clips} (10 s, 10 fps, 320x240, two Ken-Burns scenes from bundled photos, x264); one frame per "
        "second; matched with takeback's vPDQ rule (`takeback.index.video.VideoRule`: frames of quality ≥ 50, frame "
        "distance ≤ 31, ≥ 80% of the query's frames matched). Cells: copies found / clips (false matches to other "
        "clips in brackets).",
        "",
        "| transformation | " + " | ".join(c for c, _, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    false_hits = {c: 0 for c, _, _ in columns}
    for label, edit, opts in VIDEO_TRANSFORMS:
        cells = []
        copies = []
        for k, path in enumerate(originals):
            copy = workdir / f"copy{k}-{zlib.crc32(label.encode())}.mp4"
            fps = 10
            _transcode(path, copy, edit, fps, **opts)  # type: ignore[arg-type]
            copies.append((k, copy))
        for column, modes, _interval in columns:
            found = wrong = 0
            for k, copy in copies:
                hits = matched(column, modes, copy)
                found += k in hits
                wrong += len(hits - {k})
            false_hits[column] += wrong
            cells.append(f"{found}/{len(copies)} ({wrong})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    pairs = len(VIDEO_TRANSFORMS) * clips * (clips - 1)
    lines += [
        "",
        f"Video false matches: {', '.join(f'{c} {n}' for c, n in false_hits.items())} over {pairs} "
        "(copy, other clip) pairs — far too few pairs to state a rate; the photo pool above is the FPR measurement "
        "(each video frame is a PDQ hash under the same threshold).",
    ]
    return lines


# --- main -----------------------------------------------------------------------------------------------------------
def cost_lines(banks: dict[str, Hashed], timings: dict[str, list[float]]) -> list[str]:
    lines = [
        "| mode | bank hashes / photo (mean, max) | device ms / photo (extra) | query hashes | query ms (extra) |",
        "|---|---:|---:|---:|---:|",
    ]
    for column in ("dihedral", "borders", "crops", "default"):
        sizes = [len(b.bank[column]) for b in banks.values()]
        bank_ms = 1000 * float(np.mean(timings.get(column, [0.0])))
        q = timings.get("query " + column)
        lines.append(
            f"| {column} | {np.mean(sizes):.1f}, {max(sizes)} | {bank_ms:.1f} | "
            f"{'1 + border if found' if q else '1'} | {1000 * float(np.mean(q)) if q else 0.0:.1f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, help="a folder of extra (benign) photos for the corpus")
    parser.add_argument("--full", action="store_true", help="bigger distractor pool (~4M pairs) and more clips")
    parser.add_argument("--smoke", action="store_true", help="three photos, a tiny pool, two clips")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument("--min-quality", type=int, default=50, help="distractors below this PDQ quality are dropped")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    names = PHOTO_NAMES[:3] if args.smoke else PHOTO_NAMES
    corpus = [(n, bundled_photo(n)) for n in names]
    if args.photos:
        corpus += folder_photos(args.photos)
    generated, tile, clips = (20, 256, 2) if args.smoke else ((1700, 96, 8) if args.full else (700, 128, 6))
    print("# takeback robustness suite\n")
    print("\n".join("    " + line for line in machine_lines(["numpy", "Pillow", "pdqhash", "av", "scikit-image"])))
    print(f"\ncommand: python benchmarks/robustness.py {' '.join(argv if argv is not None else sys.argv[1:])}\n")
    photo_lines, banks, timings = run_photos(corpus)
    print("## Photos: recall per transformation\n")
    print("\n".join(photo_lines))
    print("\n## Cost of the modes\n")
    print("\n".join(cost_lines(banks, timings)))
    print("\n## False positives\n")
    print("\n".join(run_false_positives(corpus, generated, tile, args.min_quality)))
    if not args.no_video:
        print("\n## Video\n")
        with tempfile.TemporaryDirectory(prefix="takeback-robustness-") as tmp:
            print("\n".join(run_video(clips, Path(tmp))))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
