"""`takeback sweep` with query variants on the real cluster: a letterboxed copy of a banked photo is found through
the picture inside its bars (one line, "via": "border"), an unrelated photo is not, and without query modes the
letterboxed copy is missed (what the sweep did before)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from takeback import samples
from takeback.bulk.cluster import connect
from takeback.bulk.sweep import StoreMatcher, sweep
from takeback.config import Settings
from takeback.protect.hash_file import HashOptions
from takeback.signals.photo import hash_image
from takeback.store import add_signals, create_bank
from takeback.store.db import open_store


@pytest.fixture(scope="module")
def folder_and_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    root = tmp_path_factory.mktemp("sweep-variants")
    photo = samples.large_photo("rocket", size=(640, 426), grain=0)
    original = root / "original.jpg"
    photo.save(original, quality=92)
    uploads = root / "uploads"
    uploads.mkdir()
    boxed = Image.new("RGB", (640, 426 + 200), (0, 0, 0))
    boxed.paste(photo, (0, 100))
    boxed.save(uploads / "boxed.jpg", quality=85)
    samples.large_photo("camera", size=(480, 480), grain=0).save(uploads / "other.jpg", quality=85)
    data_dir = root / "store"
    settings = Settings(data_dir=data_dir, database_url="", cache_dir=data_dir / "cache")
    engine, sessions = open_store(settings)
    try:
        with sessions.begin() as session:
            bank = create_bank(session, "protected")
            add_signals(session, bank.id, [("pdq", hash_image(original).hex, 100, None)])
    finally:
        engine.dispose()
    return uploads, settings


@pytest.fixture(scope="module")
def cluster(ray_head) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with connect(ray_head.address) as cpus:
        yield cpus


def _run(cluster: int, folder: Path, settings: Settings, query_modes: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    sweep(
        [folder],
        [],
        StoreMatcher.open(settings),
        lines.append,
        options=HashOptions(modes="", query_modes=query_modes),
        cpus=cluster,
        chunk_files=1,
        window=2,
    )
    return lines


def test_letterboxed_copy_is_found_through_the_border_variant(
    cluster: int, folder_and_store: tuple[Path, Settings]
) -> None:
    folder, settings = folder_and_store
    lines = _run(cluster, folder, settings, "borders")
    assert [(line["source"], line["signal_type"], line.get("via")) for line in lines] == [
        (str(folder / "boxed.jpg"), "pdq", "border")
    ]
    assert lines[0]["distance"] <= 31 and lines[0]["bank"] == "protected"
    assert _run(cluster, folder, settings, "") == []
