"""Shared fixtures: benign media only (scikit-image photos, generated pixels)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from takeback import samples


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the real user cache from a test."""
    monkeypatch.setenv("TAKEBACK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def phone_photos(media_dir: Path) -> list[Path]:
    """Phone-sized JPEGs (3 MP; a few 8 MP) made from the bundled photos."""
    folder = media_dir / "phone"
    folder.mkdir()
    paths = []
    for i, name in enumerate(samples.PHOTO_NAMES):
        size = (3264, 2448) if i < 3 else (2048, 1536)
        path = folder / f"{i:02d}-{name}.jpg"
        samples.large_photo(name, size=size, grain=4.0, seed=i).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def short_video(media_dir: Path) -> Path:
    """8 s, 320x240, 30 fps, keyframe every second."""
    return samples.write_video(media_dir / "short.mp4", seconds=8, fps=30, size=(320, 240), scene_seconds=3)


@pytest.fixture(scope="session")
def long_gop_video(media_dir: Path) -> Path:
    """8 s, 25 fps, a single keyframe: sampling must decode within the GOP."""
    return samples.write_video(
        media_dir / "longgop.mkv", seconds=8, fps=25, size=(320, 240), gop_seconds=None, scene_seconds=3
    )


@pytest.fixture
def rng() -> Iterator[np.random.Generator]:
    yield np.random.default_rng(1234)
