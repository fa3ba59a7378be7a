"""`takeback match` sends a found copy's query variants too (docs/robustness.md): a letterboxed copy of a banked photo
and a letterboxed copy of a banked clip match, folded into the file's own row with "via" naming the variant; an
unrelated photo still matches nothing.  Against a real `takeback serve`, as tests/test_cli_service.py does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from takeback import samples
from takeback.cli import EXIT_OK, EXIT_USAGE
from tests.test_cli_service import KEY, Service, cli, start_server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("serve-variants")
    served = start_server(data_dir)
    try:
        yield Service(served, data_dir, KEY.findall(served.output)[0])
    finally:
        served.stop()


def _letterbox(img: Image.Image, bar: int) -> Image.Image:
    out = Image.new("RGB", (img.width, img.height + 2 * bar), (0, 0, 0))
    out.paste(img, (0, bar))
    return out


def test_letterboxed_photo_matches_through_the_border_variant(service: Service, tmp_path: Path) -> None:
    photo = samples.large_photo("coffee", size=(600, 400), grain=0)
    original, copy, other = tmp_path / "original.jpg", tmp_path / "boxed.jpg", tmp_path / "other.jpg"
    photo.save(original, quality=92)
    _letterbox(photo, 90).save(copy, quality=85)
    samples.large_photo("astronaut", size=(512, 512), grain=0).save(other, quality=90)
    assert cli(service, "bank", "create", "variants-photo").exit_code == EXIT_OK
    assert cli(service, "bank", "add", "variants-photo", str(original), "-j", "0", "-q").exit_code == EXIT_OK

    result = cli(service, "match", str(copy), "-b", "variants-photo", "-j", "0", "-q", "--json")
    assert result.exit_code == EXIT_OK, result.output
    body = json.loads(result.stdout)
    rows = {r["signal_type"]: r for r in body["results"]}
    assert set(rows) == {"pdq", "md5", "sha256"}  # the variants' own rows are folded away
    # Found only through the letterbox-trimmed query (against the original and whichever of its bank variants
    # are near), never by the copy's plain PDQ.
    vias = [m.get("via") for m in rows["pdq"]["matches"]]
    assert vias and "border" in vias and None not in vias, vias
    assert body["matched"] == 1

    table = cli(service, "match", str(copy), "-b", "variants-photo", "-j", "0", "-q")
    assert "1 of 1 file matched" in table.stdout

    none = cli(service, "match", str(other), "-b", "variants-photo", "-j", "0", "-q", "--json")
    assert json.loads(none.stdout)["matched"] == 0

    plain = cli(service, "match", str(copy), "-b", "variants-photo", "-j", "0", "-q", "--json", "--query-modes", "none")
    assert json.loads(plain.stdout)["matched"] == 0  # what takeback match did before: plain PDQ misses the copy
    bad = cli(service, "match", str(copy), "--query-modes", "mirror")
    assert bad.exit_code == EXIT_USAGE and "mirror" in bad.output


def test_letterboxed_clip_matches_as_vpdq_through_the_border_list(service: Service, tmp_path: Path) -> None:
    import av

    clip = samples.write_video(tmp_path / "clip.mp4", seconds=4, fps=10, size=(320, 240), scene_seconds=2,
                               names=("chelsea", "rocket"))  # fmt: skip
    boxed = tmp_path / "boxed.mp4"
    with av.open(str(clip)) as src, av.open(str(boxed), mode="w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 360, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            bar = np.zeros((60, 320, 3), dtype=np.uint8)
            new = av.VideoFrame.from_ndarray(np.concatenate([bar, frame.to_ndarray(format="rgb24"), bar]), "rgb24")
            new.pts = i
            for packet in stream.encode(new):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert cli(service, "bank", "create", "variants-clip").exit_code == EXIT_OK
    assert cli(service, "bank", "add", "variants-clip", str(clip), "-j", "0", "-q").exit_code == EXIT_OK
    result = cli(service, "match", str(boxed), "-b", "variants-clip", "-j", "0", "-q", "--json")
    assert result.exit_code == EXIT_OK, result.output
    rows = {r["signal_type"]: r for r in json.loads(result.stdout)["results"]}
    # The banked clip and its banked variant lists (mirrored, smoothed…) are each one vPDQ signal; the letterboxed
    # copy reaches them only through its border-trimmed frame list.
    matches = rows["vpdq"]["matches"]
    assert matches and {m.get("via") for m in matches} == {"border"}, matches
    assert max(m["query_match_pct"] for m in matches) >= 80.0
