"""Matching modes end to end: crops, mode parsing, the hash list (v1 unchanged, v2 with variants), bank import."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from takeback import samples
from takeback.cli import app
from takeback.signals import crops, hashlist, interop, pdq
from takeback.signals.regions import Box
from takeback.signals.variants import (
    DEFAULT_MODES,
    Mode,
    UnknownMode,
    bank_variants,
    hash_image_variants,
    modes_text,
    parse_modes,
    plane_of_rgb,
)

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_parse_modes() -> None:
    assert parse_modes("") == frozenset() == parse_modes("none")
    assert parse_modes("default") == DEFAULT_MODES
    assert parse_modes(" Dihedral , crops") == {Mode.DIHEDRAL, Mode.CROPS}
    assert parse_modes("all") == frozenset(Mode)
    assert modes_text(parse_modes("crops,dihedral,borders")) == "borders,crops,dihedral"
    with pytest.raises(UnknownMode, match="mirror"):
        parse_modes("dihedral,mirror")


@given(st.integers(8, 4000), st.integers(8, 4000))
def test_crop_boxes_are_centred_distinct_and_inside(h: int, w: int) -> None:
    whole = Box(0, h, 0, w)
    boxes = crops.crop_boxes(whole)
    assert len({b for _, b in boxes}) == len(boxes) and whole not in {b for _, b in boxes}
    for name, b in boxes:
        assert 0 <= b.top < b.bottom <= h and 0 <= b.left < b.right <= w
        assert abs((b.top - 0) - (h - b.bottom)) <= 1 and abs(b.left - (w - b.right)) <= 1, name
        if name.startswith("aspect"):
            aw, ah = (int(x) for x in name.removeprefix("aspect").split("x"))
            if min(b.height, b.width) >= 50:
                assert abs(b.width / b.height - aw / ah) < 0.05 * aw / ah


def test_centre_cropped_copies_match_a_banked_crop() -> None:
    rgb = np.asarray(Image.fromarray(samples.photo("rocket")).resize((480, 320)))
    variants = bank_variants(plane_of_rgb(rgb), {Mode.CROPS}, original=pdq.hash_rgb(rgb).hex)
    for p in (0.05, 0.10, 0.15, 0.20):
        h, w = rgb.shape[:2]
        dh, dw = round(h * p / 2), round(w * p / 2)
        copy = pdq.hash_rgb(np.ascontiguousarray(rgb[dh : h - dh, dw : w - dw])).hex
        assert pdq.hamming(copy, pdq.hash_rgb(rgb).hex) > 31, p
        assert min(pdq.hamming(copy, v.hex) for v in variants) <= 31, p


def _write_photos(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for name in ("astronaut", "coffee"):
        path = folder / f"{name}.jpg"
        samples.large_photo(name, size=(640, 480), grain=0).save(path, quality=90)
        paths.append(path)
    return paths


def test_hash_list_without_modes_stays_version_1(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    _write_photos(folder)
    out = tmp_path / "plain.jsonl"
    result = runner.invoke(app, ["hash", str(folder), "-o", str(out), "-j", "0", "-q", "--no-cache", "--modes", "none"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["version"] == 1 and "modes" not in lines[0]["options"]
    assert all("variants" not in line for line in lines)


def test_hash_list_with_modes_carries_variants_and_banks_them(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    paths = _write_photos(folder)
    out = tmp_path / "modes.jsonl"
    result = runner.invoke(app, ["hash", str(folder), "-o", str(out), "-j", "0", "-q", "--no-cache"])
    assert result.exit_code == 0, result.output
    listing = hashlist.read(out)
    assert listing.header.version == 2 and listing.header.options["modes"] == modes_text(DEFAULT_MODES)
    record = listing.records[0]
    assert isinstance(record, hashlist.ImageRecord) and record.variants
    names = [n for n, _, _ in record.variants]
    assert {"flipy", "rotate90", "crop100", "smooth", "grid_t10b00l00r20"} <= set(names)
    assert len({h for _, h, _ in record.variants} | {record.pdq}) == len(record.variants) + 1
    main, variants = hash_image_variants(paths[0])
    assert record.pdq == main.hex and [(v.name, v.hex, v.quality) for v in variants] == [
        tuple(v) for v in record.variants
    ]
    # ThreatExchange/HMA text: each variant is one more pdq line, so HMA banks catch mirrored copies too.
    te = list(hashlist.to_threatexchange(listing))
    assert te.count(f"pdq {record.variants[0][1]}") == 1
    # Bank import takes every variant as a PDQ signal of the same photo.
    parsed = interop.read_takeback(out.read_text().splitlines())
    pdqs = {s.value for s in parsed.signals if s.signal_type == "pdq"}
    assert {h for _, h, _ in record.variants} <= pdqs and not parsed.rejected


def test_version_2_is_refused_by_a_version_1_reader_with_a_clear_reason(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "photos"
    _write_photos(folder)
    out = tmp_path / "modes.jsonl"
    assert runner.invoke(app, ["hash", str(folder), "-o", str(out), "-j", "0", "-q", "--no-cache"]).exit_code == 0
    monkeypatch.setattr(hashlist, "FORMAT_VERSION", 1)
    with pytest.raises(hashlist.HashListError, match="newer"):
        hashlist.read(out)


def test_cli_refuses_unknown_modes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["hash", str(tmp_path), "--modes", "mirror"])
    assert result.exit_code == 2 and "mirror" in result.output


def _benchmark_module():  # type: ignore[no-untyped-def]
    path = ROOT / "benchmarks" / "robustness.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("robustness_bench", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


def test_benchmark_transformations_smoke() -> None:
    """Every transformation of the robustness suite runs, deterministically, and yields a hashable RGB picture."""
    bench = _benchmark_module()
    rgb = np.asarray(Image.fromarray(samples.photo("astronaut")).resize((160, 160)))
    img = Image.fromarray(rgb)
    specs = bench.transformations()
    assert len({s.name for s in specs}) == len(specs) >= 35
    for spec in specs:
        a = np.asarray(spec.apply(img, bench.rng_for("astronaut", spec.name)).convert("RGB"))
        b = np.asarray(spec.apply(img, bench.rng_for("astronaut", spec.name)).convert("RGB"))
        assert a.ndim == 3 and a.shape[2] == 3 and min(a.shape[:2]) >= 16, spec.name
        assert np.array_equal(a, b), spec.name
    assert bench.min_distance([pdq.hash_rgb(rgb).hex], [pdq.hash_rgb(rgb).hex]) == 0
