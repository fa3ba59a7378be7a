"""`takeback hash --ray`: the same hash list as the local hasher, computed on a real Ray cluster joined by address."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import ray.cloudpickle
from typer.testing import CliRunner

from takeback.bulk.cluster import RayUnavailable, connect
from takeback.bulk.ray_hash import hash_on_ray, hash_paths_on_ray
from takeback.cli import EXIT_SOME_FAILED, EXIT_UNREACHABLE, app
from takeback.protect.batch import hash_paths
from takeback.protect.cache import HashCache
from takeback.protect.hash_file import HashOptions
from takeback.protect.results import Status
from tests.bulk import stand_ins

runner = CliRunner()
ray.cloudpickle.register_pickle_by_value(stand_ins)


def lines_without_time(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0].pop("created")
    return rows


def test_ray_hash_list_equals_the_local_one(ray_head, corpus: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    common = ["--keep-names", "--no-cache", "-q"]
    result = runner.invoke(app, ["hash", str(corpus), "-o", str(local), "-j", "0", *common])
    assert result.exit_code == EXIT_SOME_FAILED, result.output  # the corrupt and empty files
    result = runner.invoke(app, ["hash", "--ray", ray_head.address, str(corpus), "-o", str(on_ray), *common])
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert "Traceback" not in result.output
    expected = lines_without_time(local)
    assert lines_without_time(on_ray) == expected
    # The corpus covers what it should: photos, a video, named errors, a skipped file.
    kinds = [row.get("type") for row in expected]
    assert kinds.count("image") == 6 and kinds.count("video") == 1
    assert {row["code"] for row in expected if row.get("type") == "error"} >= {"corrupt", "empty-file", "not-media"}
    assert expected[-1]["skipped"] == 1


def test_a_file_that_kills_its_worker_is_named_and_the_rest_of_its_chunk_survives(
    ray_head,  # type: ignore[no-untyped-def]
    corpus: Path,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("astronaut.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(corpus / "photos" / name, folder / name)
    shutil.copy(corpus / "photos" / "coffee.jpg", folder / "crash-me.jpg")
    shutil.copy(corpus / "notes.txt", folder / "notes.txt")
    options = HashOptions(modes="")
    local = {r.path: r for r in hash_paths([folder], options, workers=0).results}
    with connect(ray_head.address) as cpus:
        report = hash_paths_on_ray(
            [folder], options, cpus=cpus, chunk_files=8, window=2, runner=stand_ins.crash_on_marker
        )
    got = {r.path: r for r in report.results}
    assert list(got) == list(local)  # walk order, nothing lost
    crashed = got.pop(str(folder / "crash-me.jpg"))
    assert (crashed.status, crashed.error_code) == (Status.FAILED, "crashed")
    del local[str(folder / "crash-me.jpg")]
    assert got == local


def test_cache_answers_unchanged_files_on_the_second_run(ray_head, corpus: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    options = HashOptions(modes="")
    cache = HashCache(tmp_path / "cache.sqlite3")
    try:
        first = hash_on_ray(ray_head.address, [corpus / "photos"], options, cache=cache)
        second = hash_on_ray(ray_head.address, [corpus / "photos"], options, cache=cache)
    finally:
        cache.close()
    assert {r.status for r in first.results} == {Status.HASHED}
    assert {r.status for r in second.results} == {Status.CACHED}
    assert [r.pdq for r in second.results] == [r.pdq for r in first.results]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_is_one_line_and_exit_five_within_seconds(corpus: Path) -> None:
    started = time.monotonic()
    result = runner.invoke(app, ["hash", "--ray", f"127.0.0.1:{_closed_port()}", str(corpus), "-q"])
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert "cannot reach the Ray cluster" in result.output
    assert "Traceback" not in result.output
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("address", ["ray://head:10001", "nohostport", "host:99999", ""])
def test_malformed_address_is_refused_before_ray_starts(address: str, corpus: Path) -> None:
    with pytest.raises(RayUnavailable):
        hash_on_ray(address, [corpus], HashOptions())
