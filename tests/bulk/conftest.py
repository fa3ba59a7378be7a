"""One real Ray cluster for the bulk tests: a head node started on this machine (`ray start --head`, 2 CPUs) that
the code under test joins by address, as `takeback hash --ray HOST:PORT` would; stopped after the last test here.
Plus a mixed media folder and a store with planted protected photos."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("ray")

from takeback import samples
from takeback.bulk.cluster import HeadNode, start_head


@pytest.fixture(scope="package")
def ray_head() -> Iterator[HeadNode]:
    head = start_head(num_cpus=2)
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="package")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photos (JPEG, PNG), a short video, a corrupt JPEG, an empty one, a lying name and a text file, in folders."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "photos" / "more").mkdir(parents=True)
    for i, name in enumerate(("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")):
        img = samples.large_photo(name, size=(480, 360), grain=2.0, seed=i)
        if i % 3 == 2:
            img.save(root / "photos" / "more" / f"{name}.png")
        else:
            img.save(root / "photos" / f"{name}.jpg", quality=88)
    samples.write_video(root / "clip.mp4", seconds=3, fps=10, size=(160, 120), scene_seconds=2)
    good = (root / "photos" / "astronaut.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(good[:300] + b"\x00" * 200)
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("not media\n")
    (root / "fake.png").write_text("this is text named like a photo\n")
    return root


@dataclass(frozen=True)
class Planted:
    """Originals put in a bank, copies of them hidden in a sweep folder among unrelated photos."""

    originals: dict[str, Path]
    folder: Path
    copies: frozenset[str]  # paths (as str) of the files in `folder` that must match
    others: frozenset[str]  # files that must not match


@pytest.fixture(scope="package")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    root = tmp_path_factory.mktemp("planted")
    originals = {}
    for i, name in enumerate(("astronaut", "chelsea")):
        path = root / "originals" / f"{name}.jpg"
        path.parent.mkdir(exist_ok=True)
        samples.large_photo(name, size=(640, 480), grain=0, seed=i).save(path, quality=92)
        originals[name] = path
    folder = root / "uploads"
    folder.mkdir()
    copies = set()
    with Image.open(originals["astronaut"]) as img:  # resized and re-encoded: a PDQ match, not an exact one
        img.resize((400, 300)).save(folder / "u1.jpg", quality=70)
    copies.add(str(folder / "u1.jpg"))
    (folder / "u2.jpg").write_bytes(originals["chelsea"].read_bytes())  # byte-identical: PDQ and MD5/SHA-256
    copies.add(str(folder / "u2.jpg"))
    others = set()
    for i, name in enumerate(("coffee", "rocket", "camera", "coins", "moon")):
        path = folder / f"x{i}.jpg"
        samples.large_photo(name, size=(400, 300), grain=0, seed=10 + i).save(path, quality=85)
        others.add(str(path))
    (folder / "readme.txt").write_text("not media\n")
    return Planted(originals, folder, frozenset(copies), frozenset(others))
