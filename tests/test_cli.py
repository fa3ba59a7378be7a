"""`takeback hash` as a person runs it: exit codes, output, names, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from takeback import samples
from takeback.cli import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_WRITE_FAILED, app
from takeback.signals import hashlist

runner = CliRunner()


@pytest.fixture
def good(tmp_path: Path) -> Path:
    folder = tmp_path / "Jane Doe photos"
    folder.mkdir()
    for name in ("astronaut", "coffee"):
        samples.large_photo(name, size=(640, 480), grain=0).save(folder / f"{name}.jpg", quality=90)
    return folder


def test_all_good_exits_zero_and_writes_no_names(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "hashes.jsonl"
    result = runner.invoke(app, ["hash", str(good), "-o", str(out), "-j", "0"])
    assert result.exit_code == EXIT_OK, result.output
    text = out.read_text()
    assert "Jane" not in text and "astronaut" not in text
    listing = hashlist.read(out)
    assert listing.summary.hashed == 2 and listing.summary.images == 2


def test_keep_names(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "hashes.jsonl"
    result = runner.invoke(app, ["hash", str(good), "-o", str(out), "-j", "0", "--keep-names"])
    assert result.exit_code == EXIT_OK
    names = sorted(Path(r.name or "").name for r in hashlist.read(out).records)
    assert names == ["astronaut.jpg", "coffee.jpg"]


def test_some_failed_exits_one_with_error_section(good: Path, tmp_path: Path) -> None:
    (good / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "hashes.jsonl"
    result = runner.invoke(app, ["hash", str(good), "-o", str(out), "-j", "0"])
    assert result.exit_code == EXIT_SOME_FAILED
    assert "broken.jpg" in result.output
    assert "Traceback" not in result.output
    listing = hashlist.read(out)
    assert listing.summary.hashed == 2 and len(listing.errors) == 1


def test_default_output_is_stdout_jsonl(good: Path) -> None:
    result = runner.invoke(app, ["hash", str(good), "-j", "0", "-q"])
    assert result.exit_code == EXIT_OK
    first = json.loads(result.stdout.splitlines()[0])
    assert first["format"] == "takeback-hashlist"


def test_te_format(good: Path) -> None:
    result = runner.invoke(app, ["hash", str(good), "-j", "0", "-q", "--format", "te", "--modes", "none"])
    kinds = [line.split(" ")[0] for line in result.stdout.splitlines()]
    assert kinds == ["pdq", "md5", "pdq", "md5"]


@pytest.mark.parametrize("args", [["hash"], ["hash", "x", "--interval", "0"], ["hash", "x", "--format", "xml"]])
def test_usage_errors_exit_two(args: list[str]) -> None:
    assert runner.invoke(app, args).exit_code == EXIT_USAGE


def test_unwritable_output_exits_three(good: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(app, ["hash", str(good), "-o", str(blocker / "sub" / "x.jsonl"), "-j", "0"])
    assert result.exit_code == EXIT_WRITE_FAILED


def test_second_run_uses_cache(good: Path, tmp_path: Path) -> None:
    out = tmp_path / "h.jsonl"
    runner.invoke(app, ["hash", str(good), "-o", str(out), "-j", "0"])
    again = runner.invoke(app, ["hash", str(good), "-o", str(out), "-j", "0"])
    assert again.exit_code == EXIT_OK
    assert "cached" in again.output
    assert hashlist.read(out).summary.hashed == 2  # cached files are still in the list


def test_console_script_runs_in_a_real_process(good: Path, tmp_path: Path) -> None:
    (good / "empty.png").write_bytes(b"")
    out = tmp_path / "h.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", "from takeback.cli import run; run()", "hash", str(good), "-o", str(out), "-j", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_SOME_FAILED, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "empty.png: file is empty" in proc.stderr
    assert hashlist.read(out).summary.hashed == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_hash_forks_its_workers_with_the_progress_display_on(
    good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: list[str]
) -> None:
    """The display must not run a thread of its own while the workers start, or they are spawned (~0.4 s each)."""
    from takeback.protect import batch

    chosen: list[str] = []
    real = batch.start_method
    monkeypatch.setattr(batch, "start_method", lambda: chosen.append(real()) or chosen[-1])
    out = tmp_path / "h.jsonl"
    result = runner.invoke(app, ["hash", str(good), "-o", str(out), "-j", "2", "--no-cache", *quiet])
    assert result.exit_code == EXIT_OK, result.output
    assert chosen and set(chosen) == {"fork"}
    assert hashlist.read(out).summary.hashed == 2


# --- start-up: `takeback hash` and its workers import only what hashing needs -----------------------------------------

_HEAVY = ("sqlalchemy", "fastapi", "aiohttp", "uvicorn", "ray", "takeback.cli_service", "takeback.store")


def _imported_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {_HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_the_cli_imports_the_other_commands_only_when_they_run() -> None:
    assert _imported_after("import takeback.cli") == []
    assert _imported_after("import takeback.console") == []
    assert "sqlalchemy" in _imported_after("import takeback.cli_notices")  # the probe does see heavy imports


def test_every_lazy_command_is_found_and_every_registered_command_is_listed() -> None:
    from takeback.cli import LAZY_COMMANDS, commands_of

    for module, names in LAZY_COMMANDS.items():
        group = commands_of(module)
        assert sorted(group.list_commands(None)) == sorted(names), module  # type: ignore[arg-type]
        for name in names:
            result = runner.invoke(app, [name, "--help"])
            assert result.exit_code == 0, (name, result.output)
    assert runner.invoke(app, ["no-such-command"]).exit_code == EXIT_USAGE
