"""`takeback serve`, `bank`, `match` and `client` as a person runs them, against a real server process.

One `takeback serve` runs in a subprocess for the module (fresh data directory, SQLite, a free loopback port); the
commands run in-process (typer's CliRunner) and talk HTTP to it.  Each test uses its own bank names, so the tests
do not depend on each other's order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from takeback import samples
from takeback.cli import (
    EXIT_MATCHED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    EXIT_WRITE_FAILED,
    app,
)
from takeback.client import ApiError, ServiceUnreachable, TakebackClient
from takeback.signals import hashlist

KEY = re.compile(r"\btbk_[A-Za-z0-9_\-]+")
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A `takeback serve` subprocess and everything it printed."""

    process: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, deadline_s: float = 60.0) -> None:
        """Poll the health endpoint until it answers (or the process dies, or the deadline passes)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"takeback serve exited with {self.process.returncode}:\n{self.output}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1.0, trust_env=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"takeback serve was not ready within {deadline_s} s:\n{self.output}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(data_dir: Path, *extra: str, env_extra: dict[str, str] | None = None) -> Served:
    port = free_port()
    env = dict(os.environ, TAKEBACK_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **(env_extra or {}))
    env.pop("TAKEBACK_DATABASE_URL", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from takeback.cli import run; run()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    threading.Thread(target=served.read, daemon=True).start()
    try:
        served.wait_ready()
    except BaseException:
        served.stop()
        raise
    return served


@dataclass
class Service:
    served: Served
    data_dir: Path
    admin_key: str

    @property
    def url(self) -> str:
        return self.served.url


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data_dir = tmp_path_factory.mktemp("serve-data")
    served = start_server(data_dir)
    try:
        keys = KEY.findall(served.output)
        assert len(keys) == 1, f"serve must print exactly one admin key on first start:\n{served.output}"
        yield Service(served, data_dir, keys[0])
    finally:
        served.stop()


def cli(service: Service, *args: str, key: str | None = "admin"):  # type: ignore[no-untyped-def]
    """Run `takeback ARGS --url … --key …` in-process; key "admin" means the bootstrap admin key."""
    extra = ["--url", service.url]
    if key is not None:
        extra += ["--key", service.admin_key if key == "admin" else key]
    result = runner.invoke(app, [*args, *extra], env={"TAKEBACK_URL": None, "TAKEBACK_API_KEY": None, "COLUMNS": "250"})
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two benign photos, a resized copy of the first, and a hash list of the originals."""
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("astronaut", "coffee", "chelsea"):
        path = folder / f"{name}.jpg"
        samples.large_photo(name, size=(640, 480), grain=0).save(path, quality=90)
        paths[name] = path
    copy = folder / "copy" / "astronaut-small.jpg"
    copy.parent.mkdir()
    with Image.open(paths["astronaut"]) as img:
        img.resize((400, 300)).save(copy, quality=70)
    paths["copy"] = copy
    listing = folder / "list" / "protected.jsonl"
    result = runner.invoke(
        app,
        ["hash", str(paths["astronaut"]), str(paths["coffee"]), "-o", str(listing), "-j", "0", "-q", "--modes", "none"],
    )
    assert result.exit_code == EXIT_OK, result.output
    paths["list"] = listing
    return paths


# --- serve -----------------------------------------------------------------------------------------------------------


def test_serve_prints_the_admin_key_only_on_first_start(service: Service) -> None:
    assert "shown only this once" in service.served.output
    again = start_server(service.data_dir)  # same database, second process
    try:
        assert not KEY.search(again.output), again.output
        health = httpx.get(f"{again.url}/v1/health", trust_env=False).json()
        assert health["status"] == "ok"
    finally:
        again.stop()


def test_serve_with_two_worker_processes(tmp_path: Path) -> None:
    """`--workers 2`: two processes share the port; whichever one a request reaches sees the bank changes."""
    served = start_server(tmp_path / "data", "--workers", "2", env_extra={"TAKEBACK_INDEX_SYNC_INTERVAL_S": "0.02"})
    try:
        [key] = KEY.findall(served.output)
        headers = {"Authorization": f"Bearer {key}"}
        value = hashlib.sha256(b"two workers").hexdigest()
        with httpx.Client(base_url=served.url, headers=headers, trust_env=False) as http:
            assert http.post("/v1/banks", json={"name": "b"}).status_code == 201
            added = http.post("/v1/banks/b/signals", json={"signals": [{"signal_type": "pdq", "value": value}]})
            assert added.status_code == 201, added.text
        deadline = time.monotonic() + 30
        agreeing = 0
        while agreeing < 20:  # 20 fresh connections in a row (each may reach either process) all find it
            assert time.monotonic() < deadline, served.output
            with httpx.Client(base_url=served.url, headers=headers, trust_env=False) as fresh:
                found = fresh.post("/v1/match", json={"signal_type": "pdq", "value": value}).json()["matches"]
            agreeing = agreeing + 1 if found else 0
        started = set(re.findall(r"Started server process \[(\d+)\]", served.output))
        assert len(started) == 2, served.output
    finally:
        served.stop()


def test_serve_says_why_it_cannot_start(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(app, ["serve", "--data-dir", str(blocker / "data"), "--port", str(free_port())])
    assert result.exit_code == 1
    assert "cannot open the database" in result.output and "Traceback" not in result.output


def test_health_needs_no_key(service: Service) -> None:
    with TakebackClient(service.url) as client:
        assert client.health()["status"] == "ok"


# --- banks -----------------------------------------------------------------------------------------------------------


def test_bank_create_list_add_export_delete(service: Service, photos: dict[str, Path], tmp_path: Path) -> None:
    assert cli(service, "bank", "create", "cli-roundtrip", "-d", "test bank").exit_code == EXIT_OK
    added = cli(service, "bank", "add", "cli-roundtrip", str(photos["list"]), "--json")
    assert added.exit_code == EXIT_OK, added.output
    body = json.loads(added.stdout)
    assert body["added"] == 6 and body["rejected"] == 0  # 2 photos x (pdq, md5, sha256)
    again = json.loads(cli(service, "bank", "add", "cli-roundtrip", str(photos["list"]), "--json").stdout)
    assert again["added"] == 0 and again["duplicates"] == 6

    listed = cli(service, "bank", "list", "--json")
    banks = {b["name"]: b for b in json.loads(listed.stdout)}
    assert banks["cli-roundtrip"]["description"] == "test bank"
    assert banks["cli-roundtrip"]["signals"] in (None, 6)  # the count is optional ("when cheap to know")
    table = cli(service, "bank", "list")
    assert "cli-roundtrip" in table.stdout and "test bank" in table.stdout

    out = tmp_path / "export" / "bank.jsonl"
    exported = cli(service, "bank", "export", "cli-roundtrip", "-o", str(out))
    assert exported.exit_code == EXIT_OK, exported.output
    original = hashlist.read(photos["list"])
    text = out.read_text()
    for record in original.records:
        assert record.pdq in text and record.md5 in text
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    hma = cli(service, "bank", "export", "cli-roundtrip", "--format", "hma")
    assert hma.exit_code == EXIT_OK and original.records[0].pdq in hma.stdout

    refused = cli(service, "bank", "delete", "cli-roundtrip")  # not a terminal, no --yes
    assert refused.exit_code == EXIT_USAGE and "--yes" in refused.output
    assert cli(service, "bank", "delete", "cli-roundtrip", "--yes").exit_code == EXIT_OK
    gone = cli(service, "bank", "export", "cli-roundtrip")
    assert gone.exit_code == EXIT_REFUSED
    assert "404 unknown_bank" in gone.output


def test_bank_add_hashes_media_locally(service: Service, photos: dict[str, Path]) -> None:
    assert cli(service, "bank", "create", "cli-media").exit_code == EXIT_OK
    result = cli(service, "bank", "add", "cli-media", str(photos["chelsea"]), "-j", "0", "-q")
    assert result.exit_code == EXIT_OK, result.output
    # PDQ + MD5 + SHA-256, and the bank variants of the default modes (mirrored, cropped, framed… copies).
    sent = int(re.search(r"hashed 1 files on this device, sent (\d+) signals", result.stdout).group(1))  # type: ignore[union-attr]
    assert sent > 3
    assert f"{sent} added" in result.stdout
    # A mirrored copy matches with a plain PDQ query, as a platform's would: through a banked variant.
    mirrored = photos["chelsea"].with_name("chelsea-mirrored.png")
    with Image.open(photos["chelsea"]) as img:
        img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    found = cli(service, "match", str(mirrored), "-b", "cli-media", "--query-modes", "none", "-j", "0", "-q", "--json")
    assert found.exit_code == EXIT_OK, found.output
    by_type = {r["signal_type"]: r["matches"] for r in json.loads(found.stdout)["results"]}
    assert by_type["pdq"] and by_type["pdq"][0]["distance"] <= 31


def test_video_is_added_and_matched_as_vpdq(service: Service, short_video: Path) -> None:
    assert cli(service, "bank", "create", "cli-video").exit_code == EXIT_OK
    added = cli(service, "bank", "add", "cli-video", str(short_video), "-j", "0", "-q")
    assert added.exit_code == EXIT_OK, added.output
    # vpdq, video_md5, video_sha256, and the default modes' extra frame lists (mirrored, smoothed…)
    assert "sent 5 signals" in added.stdout
    result = cli(service, "match", str(short_video), "-b", "cli-video", "-j", "0", "-q", "--json")
    assert result.exit_code == EXIT_OK, result.output
    by_type = {r["signal_type"]: r["matches"] for r in json.loads(result.stdout)["results"]}
    assert set(by_type) == {"vpdq", "video_md5", "video_sha256"}
    vpdq = by_type["vpdq"][0]
    assert vpdq["bank"] == "cli-video" and vpdq["query_match_pct"] == 100.0
    assert by_type["video_md5"][0]["distance"] == 0


def test_bank_add_reports_rejected_lines(service: Service, tmp_path: Path) -> None:
    assert cli(service, "bank", "create", "cli-rejects").exit_code == EXIT_OK
    bad = tmp_path / "hashes.txt"
    bad.write_text(f"pdq {'ab' * 32}\npdq nothex\nmd5 {'0' * 32}\n")
    result = cli(service, "bank", "add", "cli-rejects", str(bad))
    assert result.exit_code == EXIT_OK, result.output
    assert "2 added" in result.stdout and "1 lines rejected" in result.stdout
    assert "line 2" in result.output


def test_bank_create_twice_is_refused_with_the_server_code(service: Service) -> None:
    assert cli(service, "bank", "create", "cli-twice").exit_code == EXIT_OK
    result = cli(service, "bank", "create", "cli-twice")
    assert result.exit_code == EXIT_REFUSED
    assert "409 bank_exists" in result.output
    assert len(result.output.strip().splitlines()) == 1


# --- match -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def protected(service: Service, photos: dict[str, Path]) -> str:
    assert cli(service, "bank", "create", "cli-protected").exit_code == EXIT_OK
    assert cli(service, "bank", "add", "cli-protected", str(photos["list"])).exit_code == EXIT_OK
    return "cli-protected"


def test_match_file_finds_the_original_and_a_resized_copy(
    service: Service, photos: dict[str, Path], protected: str
) -> None:
    result = cli(service, "match", str(photos["astronaut"]), str(photos["copy"]), "-b", protected, "-j", "0", "-q")
    assert result.exit_code == EXIT_OK, result.output
    assert "astronaut.jpg" in result.stdout and "astronaut-small.jpg" in result.stdout
    assert "2 of 2 files matched" in result.stdout

    data = json.loads(cli(service, "match", str(photos["copy"]), "-b", protected, "-j", "0", "-q", "--json").stdout)
    by_type = {r["signal_type"]: r["matches"] for r in data["results"]}
    assert by_type["pdq"] and by_type["pdq"][0]["bank"] == protected
    assert 0 < by_type["pdq"][0]["distance"] <= 31
    assert by_type["md5"] == [] and by_type["sha256"] == []  # a re-encoded copy has other bytes


def test_match_no_match_exits_zero_and_fail_on_match_exits_ten(
    service: Service, photos: dict[str, Path], protected: str
) -> None:
    miss = cli(service, "match", str(photos["chelsea"]), "-b", protected, "-j", "0", "-q")
    assert miss.exit_code == EXIT_OK and "0 of 1 file matched" in miss.stdout
    assert (
        cli(service, "match", str(photos["chelsea"]), "-b", protected, "-j", "0", "-q", "--fail-on-match").exit_code
        == EXIT_OK
    )
    hit = cli(service, "match", str(photos["coffee"]), "-b", protected, "-j", "0", "-q", "--fail-on-match")
    assert hit.exit_code == EXIT_MATCHED


def test_match_hash_values(service: Service, photos: dict[str, Path], protected: str) -> None:
    record = hashlist.read(photos["list"]).records[0]
    result = cli(service, "match", "--hash", record.pdq, "--hash", f"md5:{record.md5}", "-b", protected, "--json")
    assert result.exit_code == EXIT_OK, result.output
    data = json.loads(result.stdout)
    assert [r["signal_type"] for r in data["results"]] == ["pdq", "md5"]
    assert all(r["matches"] and r["matches"][0]["distance"] == 0 for r in data["results"])
    bad = cli(service, "match", "--hash", "xyz")
    assert bad.exit_code == EXIT_USAGE and "wrong_length" in bad.output


def test_match_unknown_bank_is_a_404(service: Service) -> None:
    result = cli(service, "match", "--hash", "ab" * 32, "-b", "no-such-bank")
    assert result.exit_code == EXIT_REFUSED
    assert "404 unknown_bank" in result.output


# --- clients ---------------------------------------------------------------------------------------------------------


def test_client_lifecycle_scopes_and_revocation(service: Service, protected: str) -> None:
    created = cli(service, "client", "create", "platform-a", "--scope", "match", "--bank", protected)
    assert created.exit_code == EXIT_OK, created.output
    key = created.stdout.strip()
    assert KEY.fullmatch(key)
    assert "shown only this once" in created.output

    ok = cli(service, "match", "--hash", "ab" * 32, key=key)
    assert ok.exit_code == EXIT_OK, ok.output
    banks = json.loads(cli(service, "bank", "list", "--json", key=key).stdout)
    assert [b["name"] for b in banks] == [protected]  # isolation: only the granted bank

    refused = cli(service, "bank", "create", "cli-not-allowed", key=key)
    assert refused.exit_code == EXIT_REFUSED
    assert "403 forbidden_scope" in refused.output

    clients = json.loads(cli(service, "client", "list", "--json").stdout)
    mine = next(c for c in clients if c["name"] == "platform-a")
    assert mine["banks"] == [protected] and "key" not in mine
    table = cli(service, "client", "list")
    assert "platform-a" in table.stdout

    assert cli(service, "bank", "create", "cli-granted-later").exit_code == EXIT_OK
    assert cli(service, "client", "grant", str(mine["id"]), "cli-granted-later").exit_code == EXIT_OK
    banks = json.loads(cli(service, "bank", "list", "--json", key=key).stdout)
    assert sorted(b["name"] for b in banks) == ["cli-granted-later", protected]

    assert cli(service, "client", "revoke", str(mine["id"])).exit_code == EXIT_OK
    revoked = cli(service, "match", "--hash", "ab" * 32, key=key)
    assert revoked.exit_code == EXIT_REFUSED
    assert "401 invalid_key" in revoked.output


def test_client_create_needs_admin(service: Service) -> None:
    created = cli(service, "client", "create", "manager", "--scope", "manage")
    key = created.stdout.strip()
    result = cli(service, "client", "create", "sneaky", "--scope", "admin", key=key)
    assert result.exit_code == EXIT_REFUSED and "403" in result.output
    assert cli(service, "client", "create", "x", "--scope", "root").exit_code == EXIT_USAGE


def test_rate_limited_shows_code_and_retry_after(service: Service) -> None:
    created = cli(service, "client", "create", "slow", "--scope", "match", "--rate-limit", "1")
    key = created.stdout.strip()
    assert cli(service, "match", "--hash", "ab" * 32, key=key).exit_code == EXIT_OK
    limited = cli(service, "match", "--hash", "ab" * 32, key=key)
    assert limited.exit_code == EXIT_REFUSED
    assert "429 rate_limited" in limited.output and "retry after" in limited.output


# --- errors without a traceback --------------------------------------------------------------------------------------


def test_wrong_key_and_missing_key(service: Service) -> None:
    wrong = cli(service, "bank", "list", key="tbk_nope_nope")
    assert wrong.exit_code == EXIT_REFUSED and "401 invalid_key" in wrong.output
    missing = cli(service, "bank", "list", key=None)
    assert missing.exit_code == EXIT_USAGE and "TAKEBACK_API_KEY" in missing.output


def test_connection_refused_is_one_line_exit_five() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["bank", "list", "--url", url, "--key", "tbk_x_y"])
    assert result.exit_code == EXIT_UNREACHABLE
    assert "connection refused" in result.output and len(result.output.strip().splitlines()) == 1


def test_console_script_never_shows_a_traceback(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, TAKEBACK_URL=url, TAKEBACK_API_KEY="tbk_x_y")
    proc = subprocess.run(
        [sys.executable, "-c", "from takeback.cli import run; run()", "match", "--hash", "ab" * 32],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_UNREACHABLE
    assert "Traceback" not in proc.stderr and "cannot reach" in proc.stderr


def test_export_to_unwritable_path_exits_three(service: Service, protected: str, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cli(service, "bank", "export", protected, "-o", str(blocker / "sub" / "x.jsonl"))
    assert result.exit_code == EXIT_WRITE_FAILED


# --- the client's error envelope parsing -----------------------------------------------------------------------------


def _mock(status: int, content: bytes, headers: dict[str, str] | None = None) -> httpx.Client:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, content=content, headers=headers))
    return httpx.Client(transport=transport, base_url="http://test")


def test_error_envelope_is_parsed() -> None:
    body = json.dumps({"error": {"code": "rate_limited", "message": "slow down"}}).encode()
    client = TakebackClient("http://test", "tbk_a_b", http=_mock(429, body, {"Retry-After": "7"}))
    with pytest.raises(ApiError) as info:
        client.list_banks()
    assert (info.value.status, info.value.code, info.value.message, info.value.retry_after) == (
        429,
        "rate_limited",
        "slow down",
        "7",
    )


def test_non_json_error_body_still_gives_a_code() -> None:
    client = TakebackClient("http://test", "tbk_a_b", http=_mock(502, b"<html>Bad Gateway</html>"))
    with pytest.raises(ApiError) as info:
        client.list_banks()
    assert info.value.code == "http_502" and "Bad Gateway" in info.value.message


def test_unusable_url_is_unreachable() -> None:
    with pytest.raises(ServiceUnreachable):
        TakebackClient("ftp://example", "k").health()
