"""`takeback sweep` on the real cluster: planted copies among unrelated uploads are found, nothing else is, whether
matched against the local store or a match server over HTTP, from files or from URLs fetched by the workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from takeback.bulk.cluster import connect
from takeback.bulk.sweep import ServiceMatcher, StoreMatcher, SweepError, read_url_list, sweep
from takeback.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, app
from takeback.cli_service import signals_of
from takeback.client import TakebackClient
from takeback.config import Settings
from takeback.protect.batch import hash_paths
from takeback.protect.hash_file import HashOptions
from takeback.protect.results import FileResult, Status
from takeback.store import add_signals, create_bank, create_client
from takeback.store.db import open_store
from tests.bulk.conftest import Planted
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, WebServer

runner = CliRunner()
QUERY_OPTIONS = HashOptions(modes="")


@pytest.fixture(scope="module")
def store(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str]:
    """A store with the originals in bank 'protected', a decoy bank, and a match key for 'protected' only."""
    data_dir = tmp_path_factory.mktemp("store")
    settings = Settings(data_dir=data_dir, database_url="", cache_dir=data_dir / "cache")
    originals = hash_paths(list(planted.originals.values()), HashOptions(), workers=0).results
    assert all(r.status is Status.HASHED for r in originals)
    engine, sessions = open_store(settings)
    try:
        with sessions.begin() as session:
            bank = create_bank(session, "protected")
            decoy = create_bank(session, "decoy")
            add_signals(
                session, bank.id, [(s.signal_type, s.value, s.quality, None) for r in originals for s in signals_of(r)]
            )
            add_signals(session, decoy.id, [("pdq", "0" * 64, 100, None), ("md5", "0" * 32, None, None)])
            _info, key = create_client(session, "sweeper", ["match"], bank_ids=[bank.id])
    finally:
        engine.dispose()
    return settings, key


@pytest.fixture(scope="module")
def cluster(ray_head) -> Iterator[int]:  # type: ignore[no-untyped-def]
    with connect(ray_head.address) as cpus:
        yield cpus


def run_sweep(cluster: int, matcher: Any, paths: list[Path], urls: list[str] = (), **kw: Any):  # type: ignore[assignment,no-untyped-def]
    lines: list[dict[str, Any]] = []
    results: list[FileResult] = []
    report = sweep(
        paths,
        list(urls),
        matcher,
        lines.append,
        options=QUERY_OPTIONS,
        cpus=cluster,
        chunk_files=2,
        window=3,
        on_result=results.append,
        **kw,
    )
    return report, lines, {r.path: r for r in results}


def test_cli_sweep_against_the_local_store_finds_the_planted_copies_only(
    ray_head,
    planted: Planted,
    store: tuple[Settings, str],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    settings, _key = store
    out = tmp_path / "matches.jsonl"
    env = {"TAKEBACK_DATA_DIR": str(settings.data_dir), "TAKEBACK_DATABASE_URL": None}
    result = runner.invoke(
        app,
        ["sweep", str(planted.folder), "--ray", ray_head.address, "--store", "-o", str(out), "--chunk", "2"],
        env=env,
    )
    assert result.exit_code == EXIT_OK, result.output
    assert "Traceback" not in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["source"] for line in lines} == planted.copies
    assert {line["bank"] for line in lines} == {"protected"}
    by_source: dict[str, set[str]] = {}
    for line in lines:
        by_source.setdefault(line["source"], set()).add(line["signal_type"])
        if line["signal_type"] == "pdq":
            assert 0 <= line["distance"] <= 31
    assert by_source[str(planted.folder / "u2.jpg")] == {"pdq", "md5", "sha256"}  # byte-identical copy
    assert by_source[str(planted.folder / "u1.jpg")] == {"pdq"}  # resized and re-encoded
    assert out.stat().st_mode & 0o777 == 0o600
    assert "swept 7 sources" in result.output and "for 2 sources" in result.output


def test_sweep_over_http_sees_only_the_banks_its_key_is_granted(
    cluster: int, planted: Planted, store: tuple[Settings, str]
) -> None:
    from takeback.web.app import create_app

    settings, key = store
    with TestClient(create_app(settings)) as http, TakebackClient("http://testserver", key, http=http) as client:
        report, lines, results = run_sweep(cluster, ServiceMatcher(client), [planted.folder])
    assert {line["source"] for line in lines} == planted.copies
    assert report.matched_sources == 2 and report.failed == 0 and report.hashed == 7 and report.skipped == 1
    assert set(results) == planted.copies | planted.others | {str(planted.folder / "readme.txt")}


def test_store_bank_filter_and_threshold(cluster: int, planted: Planted, store: tuple[Settings, str]) -> None:
    settings, _key = store
    _report, lines, _ = run_sweep(cluster, StoreMatcher.open(settings, ["decoy"]), [planted.folder])
    assert lines == []
    # Threshold 0: only the byte-identical copy's PDQ is still within reach.
    _report, lines, _ = run_sweep(cluster, StoreMatcher.open(settings, threshold=0), [planted.folder])
    assert {line["source"] for line in lines} == {str(planted.folder / "u2.jpg")}
    with pytest.raises(SweepError, match="no bank named 'nope'"):
        StoreMatcher.open(settings, ["nope"])


def test_urls_are_fetched_by_the_workers_through_the_guarded_fetcher(
    cluster: int, planted: Planted, store: tuple[Settings, str]
) -> None:
    settings, _key = store
    routes = {
        "/img/a.jpg": Reply(body=(planted.folder / "u1.jpg").read_bytes(), content_type="image/jpeg"),
        "/img/b": Reply(body=(planted.folder / "x0.jpg").read_bytes(), content_type="image/jpeg"),
        "/page": Reply(body=b"<html>hello</html>"),
    }
    with WebServer(routes) as site:
        urls = [site.url("/img/a.jpg"), site.url("/img/b"), site.url("/gone.jpg"), site.url("/page")]
        matcher = StoreMatcher.open(settings)
        report, lines, results = run_sweep(cluster, matcher, [], urls, allow_networks=ALLOW_LOOPBACK)
        # Without the test-only allow-list the SSRF guard refuses the loopback address, inside the worker.
        _, guarded, refused = run_sweep(cluster, matcher, [], urls[:1])
    assert {line["source"] for line in lines} == {urls[0]}
    assert results[urls[1]].status is Status.HASHED
    assert (results[urls[2]].error_code, results[urls[2]].reason) == ("fetch-failed", "HTTP 404")
    assert results[urls[3]].status is Status.SKIPPED
    assert (report.hashed, report.failed, report.skipped) == (2, 1, 1)
    assert guarded == []
    assert refused[urls[0]].error_code == "fetch-failed" and refused[urls[0]].reason.startswith("unsafe_url")


def test_cli_usage_errors(ray_head, store: tuple[Settings, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _key = store
    env = {"TAKEBACK_DATA_DIR": str(settings.data_dir), "TAKEBACK_DATABASE_URL": None}
    result = runner.invoke(app, ["sweep", "--store"], env=env)
    assert result.exit_code == EXIT_USAGE and "give files or folders" in result.output
    bad = tmp_path / "urls.txt"
    bad.write_text("https://example.org/a.jpg\nfile:///etc/passwd\n")
    result = runner.invoke(app, ["sweep", "--store", "--urls", str(bad)], env=env)
    assert result.exit_code == EXIT_USAGE and "line 2" in result.output
    result = runner.invoke(
        app, ["sweep", str(tmp_path), "--store", "--bank", "nope", "--ray", ray_head.address], env=env
    )
    assert result.exit_code == EXIT_USAGE and "no bank named 'nope'" in result.output


def test_cli_sweep_reports_failures_and_exits_one(ray_head, store: tuple[Settings, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings, _key = store
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    env = {"TAKEBACK_DATA_DIR": str(settings.data_dir), "TAKEBACK_DATABASE_URL": None}
    result = runner.invoke(app, ["sweep", str(tmp_path), "--store", "--ray", ray_head.address, "-q"], env=env)
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert "broken.jpg" in result.output and result.stdout == ""


def test_url_list_parsing() -> None:
    text = ["# uploads\n", "\n", "https://cdn.example/a.jpg\n", "  http://cdn.example/b.mp4  \n"]
    assert read_url_list(text) == ["https://cdn.example/a.jpg", "http://cdn.example/b.mp4"]
    with pytest.raises(SweepError):
        read_url_list(["ftp://x/y"])
