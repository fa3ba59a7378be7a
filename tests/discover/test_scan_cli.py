"""`takeback case …`, `takeback scan …` and `takeback findings …` in-process against a loopback site."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from takeback import cli_scan, store
from takeback.cli import app
from takeback.config import Settings
from takeback.discover.media_hash import hash_image_bytes
from tests.discover.crawl_site import BANKED, html, jpeg
from tests.discover.webserver import ALLOW_LOOPBACK, Reply, WebServer


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def test_case_scan_findings_recheck(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["case", "create", "Case of J.", "--name", "Jane Doe", "--username", "jdoe"])
    assert created.exit_code == 0, created.output
    assert "case 1 created" in created.output and "2 name(s)" in created.output
    banked = hash_image_bytes(jpeg(BANKED, (640, 480), 92)).frames[0]
    engine, sessions = store.open_store(Settings(data_dir=data_dir))
    with sessions.begin() as session:
        bank = store.create_bank(session, "jane", case_id=1)
        store.add_signals(session, bank.id, [("pdq", banked.pdq, banked.quality, None)])
    engine.dispose()
    listed = runner.invoke(app, ["case", "list"])
    assert "Jane Doe (name)" in listed.output and "jdoe (username)" in listed.output

    routes = {
        "/": html('<img src="/copy.jpg"><a href="/jdoe/videos">more</a>'),
        "/jdoe/videos": html("<p>x</p>"),
        "/copy.jpg": Reply(body=jpeg(BANKED, (300, 225), 60), content_type="image/jpeg"),
    }
    with WebServer(routes) as site:
        # The guarded fetcher refuses loopback unless a test allows it.
        refused = runner.invoke(app, ["scan", "1", "--seed", site.url("/"), "--no-sitemaps", "--json"])
        assert refused.exit_code == 0 and json.loads(refused.stdout)["error_log"][0]["code"] == "unsafe_url"
        allowed = functools.partial(cli_scan.scan_case, allow_networks=ALLOW_LOOPBACK)
        monkeypatch.setattr(cli_scan, "scan_case", allowed)
        scanned = runner.invoke(app, ["scan", "Case of J.", "--seed", site.url("/"), "--max-pages", "5"])
        assert scanned.exit_code == 0, scanned.output
        assert "2 new findings" in scanned.output and "pdq jane#1" in scanned.output
        assert "name jdoe as jdoe" in scanned.output

        findings = runner.invoke(app, ["findings", "1", "--json"])
        records = [json.loads(line) for line in findings.stdout.splitlines()]
        assert {r["kind"] for r in records} == {"media", "name"}
        media = next(r for r in records if r["kind"] == "media")
        assert media["evidence"]["media"]["width"] == 300 and media["status"] == "open"

        site.routes["/copy.jpg"] = Reply(status=410, body=b"", content_type="text/plain")
        monkeypatch.setattr(
            cli_scan, "recheck_case", functools.partial(cli_scan.recheck_case, allow_networks=ALLOW_LOOPBACK)
        )
        rechecked = runner.invoke(app, ["scan", "1", "--recheck", "--json"])
        summary = json.loads(rechecked.stdout)
        assert (summary["checked"], summary["removed"], summary["still_there"]) == (2, 1, 1)


def test_usage_errors(data_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["scan", "nope", "--seed", "https://x.test/"]).exit_code == 2
    assert runner.invoke(app, ["case", "create", "A"]).exit_code == 0
    no_seed = runner.invoke(app, ["scan", "A"])
    assert no_seed.exit_code == 2 and "no seed" in no_seed.output
    bad_seed = runner.invoke(app, ["scan", "1", "--seed", "ftp://x.test/"])
    assert bad_seed.exit_code == 2 and "not" in bad_seed.output
    bad_name = runner.invoke(app, ["case", "add-name", "1", "--name", " "])
    assert bad_name.exit_code == 2
