"""`takeback notices …` and `takeback evidence …` on a SQLite database, with a real SMTP server on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from takeback import store
from takeback.cli import app
from tests.smtp import SmtpServer

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    monkeypatch.setenv("TAKEBACK_DATABASE_URL", url)
    monkeypatch.setenv("TAKEBACK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TAKEBACK_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("TAKEBACK_SMTP_PORT", str(smtp_server.port))
    store.upgrade(url)
    engine = store.make_engine(url)
    with store.session_factory(engine).begin() as session:
        case = store.create_case(session, "jane")
        finding, _ = store.record_finding(session, case.id, "https://bad.example/1.jpg", "media", evidence={})
    engine.dispose()
    return {"case": case.id, "finding": finding.id, "url": url}  # type: ignore[dict-item]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_draft_send_track_verify(env: dict[str, int], smtp_server: SmtpServer, tmp_path: Path) -> None:
    code, out = run("notices", "bases")
    assert code == 0 and "takeitdown" in out and "legal advice" in out

    code, out = run("notices", "draft", str(env["finding"]), "--basis", "dmca", "--name", "Jane Doe")
    assert code == 2
    for missing in ("signature", "work", "sender.email", "good_faith", "penalty of perjury"):
        assert missing in out, missing

    code, out = run("notices", "draft", str(env["finding"]), "--basis", "takeitdown", "--name", "Jane Doe",
                    "--email", "jane@example.org", "--signature", "/s/ Jane Doe", "--affirm",
                    "--to", "abuse@host.example")
    assert code == 0, out
    notice_id = out.split("notice ", 1)[1].split(":", 1)[0]
    code, out = run("notices", "show", notice_id)
    assert code == 0 and "TAKE IT DOWN" in out and "https://bad.example/1.jpg" in out
    code, out = run("notices", "export", notice_id, "--json")
    assert code == 0 and json.loads(out)["basis"] == "takeitdown"

    code, out = run("notices", "send", notice_id)
    assert code == 0 and "sent" in out, out
    assert smtp_server.wait_for(1)[0].rcpt_tos == ["abuse@host.example"]
    code, out = run("notices", "send", notice_id)
    assert code == 2 and "cannot become sent" in out
    code, out = run("notices", "mark", notice_id, "acknowledged", "--note", "ticket 42")
    assert code == 0 and "acknowledged" in out
    code, out = run("notices", "due")
    assert code == 0 and "nothing is due" in out
    code, out = run("notices", "list", "--case", str(env["case"]), "--state", "acknowledged")
    assert code == 0 and "┃ id" in out and f"│ {notice_id} " in out

    code, out = run("evidence", "verify", str(env["case"]))
    assert code == 0 and "ok:" in out
    head = out.strip().rsplit(" ", 1)[1]
    html = tmp_path / "dossier.html"
    code, out = run("evidence", "export", str(env["case"]), "-o", str(html))
    assert code == 0 and "verifies" in out and "The log verifies" in html.read_text()
    code, _ = run("evidence", "export", str(env["case"]), "-o", str(tmp_path / "d.json"))
    assert json.loads((tmp_path / "d.json").read_text())["evidence"]["head"] == head
    code, out = run("evidence", "export", str(env["case"]), "-o", str(tmp_path / "d.pdf"))
    pdf = pypdf.PdfReader(tmp_path / "d.pdf", strict=True)
    pdf_text = "\n".join(page.extract_text() for page in pdf.pages)
    assert code == 0 and "TAKEDOWN DOSSIER" in pdf_text and "https://bad.example/1.jpg" in pdf_text
    assert head[:40] in pdf_text
    code, out = run("evidence", "export", str(env["case"]), "-o", str(tmp_path / "missing" / "d.json"))
    assert code == 3

    engine = store.make_engine(env["url"])  # type: ignore[arg-type]
    with engine.begin() as conn:
        conn.execute(text("UPDATE evidence_log SET payload = '{}' WHERE position = 2"))
    engine.dispose()
    code, out = run("evidence", "verify", str(env["case"]))
    assert code == 7 and "first bad entry 2" in out


def test_cli_refusals(env: dict[str, int]) -> None:
    assert run("notices", "show", "999")[0] == 2
    code, out = run("notices", "draft", "999", "--basis", "dsa")
    assert code == 2 and "no finding" in out
    code, out = run("notices", "draft", str(env["finding"]), "--basis", "dsa", "--name", "J", "--email", "bad",
                    "--explanation", "x", "--affirm")
    assert code == 2 and "sender.email" in out
    code, out = run("notices", "mark", "1", "escalated")
    assert code == 2
