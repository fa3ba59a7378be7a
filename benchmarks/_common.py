"""Shared bits for the benchmark scripts: machine facts and reference hashing."""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

import numpy as np


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for name in ("takeback", "pdqhash", "vpdq", "av", "pillow", "numpy"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} -")
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}; " + ", ".join(versions)


def reference_photo(path: str) -> tuple[str, int]:
    """The reference path: Pillow full decode, pdqhash, plus MD5/SHA-256 (takeback computes those too)."""
    import pdqhash
    from PIL import Image

    data = Path(path).read_bytes()
    hashlib.md5(data).hexdigest()
    hashlib.sha256(data).hexdigest()
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    vector, quality = pdqhash.compute(rgb)
    return "".join(f"{b:02x}" for b in np.packbits(vector)), int(quality)
