"""`takeback petition …` on a local database: create, counts --check, flags, remove with a reason, export."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pypdf
import pytest
from typer.testing import CliRunner

from takeback.cli import app
from takeback.config import Settings
from takeback.petition.emails import email_key
from takeback.petition.export import verify_summary
from takeback.store import banks, signatures
from takeback.store.db import open_store
from takeback.store.signatures import NewSignature

runner = CliRunner()


def test_petition_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TAKEBACK_DATABASE_URL", raising=False)
    engine, sessions = open_store(Settings())
    with sessions.begin() as session:
        case = banks.create_case(session, "c")
    (tmp_path / "text.txt").write_text("Give it back.", "utf-8")
    args = ["petition", "create", "--case", str(case.id), "--slug", "p1", "--title", "T", "--target", "R"]
    result = runner.invoke(app, [*args, "--goal", "5", "--text", str(tmp_path / "text.txt")])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, [*args, "--goal", "5", "--text", str(tmp_path / "text.txt")]).exit_code == 2
    with sessions.begin() as session:
        out = signatures.add_signatures(
            session,
            [
                NewSignature(
                    1,
                    f"s{i}@example.org",
                    email_key(f"s{i}@example.org"),
                    f"S{i}",
                    "FR",
                    "75001",
                    None,
                    False,
                    True,
                    None,
                    "192.0.2.0/24",
                )
                for i in range(3)
            ],
        )
        for o in out:
            signatures.verify_signature(session, o.signature_id)
    engine.dispose()
    result = runner.invoke(app, ["petition", "counts", "p1", "--check"])
    assert result.exit_code == 0 and "3 verified" in result.output and "counters equal the rows" in result.output
    result = runner.invoke(app, ["petition", "remove", "p1", str(out[0].signature_id), "--reason", "duplicate"])
    assert result.exit_code == 0 and "removed 1" in result.output
    assert runner.invoke(app, ["petition", "remove", "p1", "1", "--reason", " "]).exit_code == 2
    result = runner.invoke(app, ["petition", "export", "p1", "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    data = (tmp_path / "out.csv").read_bytes()
    summary = json.loads((tmp_path / "out.csv.summary.json").read_text("utf-8"))
    assert summary["verified_signatures"] == 2 and verify_summary(summary, data)
    # PDF for delivery: --format pdf (or a .pdf name); the summary's hash covers the PDF's exact bytes.
    result = runner.invoke(app, ["petition", "export", "p1", "--format", "pdf", "-o", str(tmp_path / "out.bin")])
    assert result.exit_code == 0, result.output
    pdf = (tmp_path / "out.bin").read_bytes()
    summary = json.loads((tmp_path / "out.bin.summary.json").read_text("utf-8"))
    assert pdf.startswith(b"%PDF-") and verify_summary(summary, pdf) and summary["verified_signatures"] == 2
    assert summary["export_sha256"] == hashlib.sha256(pdf).hexdigest()
    text = pypdf.PdfReader(io.BytesIO(pdf), strict=True).pages[0].extract_text()
    assert "Verified signatures: 2" in text and "S1" in text and "S2" in text and "S0" not in text
    assert runner.invoke(app, ["petition", "export", "p1", "-o", str(tmp_path / "auto.pdf")]).exit_code == 0
    assert (tmp_path / "auto.pdf").read_bytes() == pdf  # deterministic: same rows, same bytes
    assert runner.invoke(app, ["petition", "export", "p1", "--format", "xls", "-o", str(tmp_path / "x")]).exit_code == 2
    assert runner.invoke(app, ["petition", "counts", "nope"]).exit_code == 2
    assert runner.invoke(app, ["petition", "list"]).exit_code == 0
