"""Benign sample media for the demo, the tests and the benchmarks.

Never real intimate imagery: everything here is derived from scikit-image's
bundled public-domain photos (astronaut, cat, coffee, rocket, …) or drawn by
numpy.  scikit-image is an optional dependency (`pip install takeback[demo]`);
the on-device hasher itself never needs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

#: Natural photos bundled with scikit-image (no download needed).
PHOTO_NAMES: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "camera",
    "brick",
    "moon",
    "coins",
    "clock",
    "gravel",
    "grass",
    "page",
    "text",
)

RgbArray = npt.NDArray[np.uint8]


def photo(name: str) -> RgbArray:
    """One bundled photo as an HxWx3 uint8 array (grey photos are replicated to RGB)."""
    import skimage.data

    arr = np.asarray(getattr(skimage.data, name)())
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return np.ascontiguousarray(arr[:, :, :3].astype(np.uint8))


def photos(names: tuple[str, ...] = PHOTO_NAMES) -> Iterator[tuple[str, RgbArray]]:
    for name in names:
        yield name, photo(name)


def large_photo(name: str, size: tuple[int, int] = (3264, 2448), grain: float = 6.0, seed: int = 0) -> Image.Image:
    """A phone-sized photo: a bundled photo upscaled (Lanczos) to `size` (W, H)
    with sensor-like grain so that the JPEG carries realistic entropy."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(photo(name)).resize(size, Image.Resampling.LANCZOS)
    if grain > 0:
        noisy = np.asarray(img, dtype=np.int16) + rng.normal(0.0, grain, (size[1], size[0], 1)).astype(np.int16)
        img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return img


def write_demo_photos(folder: Path, count: int = 12, size: tuple[int, int] = (1600, 1200)) -> list[Path]:
    """A small folder of benign JPEG photos for the README demo."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(PHOTO_NAMES[:count]):
        path = folder / f"{i:02d}-{name}.jpg"
        if not path.exists():
            large_photo(name, size=size, grain=3.0, seed=i).save(path, quality=90)
        paths.append(path)
    return paths


def _ken_burns_frame(src: RgbArray, t: float, width: int, height: int) -> RgbArray:
    """A slowly panning and zooming view of `src` at phase t in [0, 1]."""
    h, w = src.shape[:2]
    zoom = 1.0 + 0.25 * t
    crop_w = min(w, int(w / zoom))
    crop_h = min(h, int(crop_w * height / width), h)
    x0 = int((w - crop_w) * t)
    y0 = int((h - crop_h) * (1 - t) * 0.5)
    crop = src[y0 : y0 + crop_h, x0 : x0 + crop_w]
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.Resampling.BILINEAR))


def write_video(
    path: Path,
    seconds: float = 10.0,
    fps: int = 30,
    size: tuple[int, int] = (1280, 720),
    codec: str = "libx264",
    gop_seconds: float | None = 1.0,
    scene_seconds: float = 6.0,
    preset: str = "veryfast",
    names: tuple[str, ...] = PHOTO_NAMES,
    sources: Sequence[RgbArray] | None = None,
) -> Path:
    """Encode a benign test video: Ken-Burns pans over the bundled photos (or over `sources`, e.g. generated
    images), one scene every `scene_seconds`.  `gop_seconds` sets the keyframe interval (None leaves the encoder's
    default, 250 frames for x264)."""
    import av

    width, height = size
    sources = list(sources) if sources is not None else [photo(n) for n in names]
    total = round(seconds * fps)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        options: dict[str, str] = {}
        if codec in ("libx264", "libx265"):
            options["preset"] = preset
        if gop_seconds is not None:
            stream.codec_context.gop_size = max(1, round(gop_seconds * fps))
            if codec == "libx264":
                options["keyint_min"] = str(max(1, round(gop_seconds * fps)))
                options["sc_threshold"] = "0"
        stream.options = options
        stream.time_base = Fraction(1, fps)
        for i in range(total):
            t_sec = i / fps
            scene = int(t_sec // scene_seconds)
            phase = (t_sec % scene_seconds) / scene_seconds
            frame = av.VideoFrame.from_ndarray(
                _ken_burns_frame(sources[scene % len(sources)], phase, width, height), format="rgb24"
            )
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
