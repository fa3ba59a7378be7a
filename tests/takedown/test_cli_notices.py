"""`takeback notices …` and `takeback evidence …` on a SQLite database, with a real SMTP server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from takeback import store
from takeback.cli import app
from tests.discover.webserver import Reply, WebServer
from tests.smtp import SmtpServer
from tests.takedown.loopback import patch_network
from tests.takedown.rdap_server import rdap_server

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


# --- parties, escalate, recheck, status -----------------------------------------------------------------------------


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A loopback site and RDAP server the CLI's network functions reach (see tests/takedown/loopback.py)."""
    with WebServer() as site, rdap_server() as rdap:
        patch_network(monkeypatch, rdap.url("/bootstrap/"))
        yield {"site": site, "rdap": rdap}


def _finding(env: dict[str, Any], url: str) -> int:
    engine = store.make_engine(env["url"])
    with store.session_factory(engine).begin() as session:
        finding, _ = store.record_finding(session, env["case"], url, "media", evidence={})
    engine.dispose()
    return finding.id


def _notice_id(out: str) -> str:
    return out.split("notice ", 1)[1].split(":", 1)[0]


def test_parties_resolves_and_remembers(env: dict[str, Any], loopback: dict[str, Any]) -> None:
    site = loopback["site"]
    site.routes["/gallery"] = Reply(body=b'<footer><a href="mailto:dmca@bad-site.example">DMCA</a></footer>')
    finding = _finding(env, f"http://www.bad-site.com:{site.port}/gallery")
    code, out = run("notices", "parties", str(finding))
    assert code == 0, out
    for expected in ("site", "host", "upstream", "registrar", "page", "rdap"):
        assert expected in out, expected
    engine = store.make_engine(env["url"])
    with store.session_factory(engine)() as session:
        found = {p.kind: (p.email, p.source) for p in store.finding_parties(session, finding)}
        evidence = [e.kind for e in store.list_evidence(session, env["case"])]
    engine.dispose()
    assert found["site"] == ("dmca@bad-site.example", "page")
    assert found["host"] == ("abuse@shady-hosting.example", "rdap")
    assert found["upstream"] == ("abuse@upstream-transit.example", "rdap")
    assert found["registrar"] == ("abuse@registrar.example", "rdap")
    assert evidence[-1] == "party_resolved"
    assert run("notices", "parties", "999999")[0] == 2


def test_escalate_drafts_the_next_notice(env: dict[str, Any], tmp_path: Path) -> None:
    code, out = run("notices", "draft", str(env["finding"]), "--basis", "takeitdown", "--name", "Jane Doe",
                    "--email", "jane@example.org", "--signature", "/s/ Jane Doe", "--affirm",
                    "--to", "abuse@host.example")
    notice = _notice_id(out)
    engine = store.make_engine(env["url"])
    with store.session_factory(engine).begin() as session:
        registrar = store.upsert_party(session, "registrar", "registrar:iana:1", "Registrar",
                                       email="abuse@registrar.example", source="rdap")
    engine.dispose()
    code, out = run("notices", "escalate", notice, "--party", str(registrar.id))
    assert code == 2 and "drafted" in out  # only expired or refused notices are escalated
    assert run("notices", "mark", notice, "sent")[0] == 0
    assert run("notices", "mark", notice, "expired")[0] == 0
    details = tmp_path / "details.json"
    details.write_text("{not json")
    assert run("notices", "escalate", notice, "--party", str(registrar.id), "--details", str(details))[0] == 2
    code, out = run("notices", "escalate", notice, "--party", str(registrar.id), "--basis", "abuse")
    assert code == 2 and "explanation" in out  # the abuse report needs what the TAKE IT DOWN notice did not say
    details.write_text(json.dumps({"explanation": "Intimate images of me, no consent", "good_faith": True}))
    code, out = run("notices", "escalate", notice, "--party", str(registrar.id), "--basis", "abuse",
                    "--details", str(details))
    assert code == 0 and "abuse, drafted, to abuse@registrar.example" in out, out
    code, out = run("notices", "status", notice)
    assert code == 0 and ": escalated" in out and "next: escalated to notice" in out and "(drafted)" in out


def test_recheck_confirms_removal(env: dict[str, Any], loopback: dict[str, Any]) -> None:
    site = loopback["site"]
    site.routes["/x.jpg"] = Reply(body=b"\xff\xd8not-a-photo", content_type="image/jpeg")
    finding = _finding(env, f"http://www.bad-site.com:{site.port}/x.jpg")
    code, out = run("notices", "draft", str(finding), "--basis", "takeitdown", "--name", "Jane Doe",
                    "--email", "jane@example.org", "--signature", "/s/ Jane Doe", "--affirm",
                    "--to", "abuse@host.example")
    notice = _notice_id(out)
    assert run("notices", "recheck")[0] == 2 and run("notices", "recheck", notice, "--all")[0] == 2
    assert run("notices", "mark", notice, "sent")[0] == 0
    code, out = run("notices", "recheck", "--all")  # never checked: due
    assert code == 0 and "present (HTTP 200)" in out and "removal confirmed" not in out
    code, out = run("notices", "recheck", "--all")
    assert code == 0 and "nothing to re-check" in out  # checked just now
    site.routes["/x.jpg"] = Reply(status=410, body=b"gone")
    code, out = run("notices", "recheck", notice)
    assert code == 0 and "removed (HTTP 410)" in out and "removal confirmed" in out
    assert run("notices", "recheck", "424242")[0] == 2


def test_status_shows_deadline_last_event_and_rechecks(env: dict[str, Any], loopback: dict[str, Any]) -> None:
    site = loopback["site"]
    site.routes["/y.jpg"] = Reply(body=b"\xff\xd8still-here", content_type="image/jpeg")
    finding = _finding(env, f"http://www.bad-site.com:{site.port}/y.jpg")
    code, out = run("notices", "draft", str(finding), "--basis", "takeitdown", "--name", "Jane Doe",
                    "--email", "jane@example.org", "--signature", "/s/ Jane Doe", "--affirm",
                    "--to", "abuse@host.example")
    notice = _notice_id(out)
    code, out = run("notices", "status", notice)
    assert code == 0 and "drafted" in out and f"takeback notices send {notice}" in out
    assert run("notices", "mark", notice, "sent")[0] == 0
    run("notices", "recheck", notice)
    code, out = run("notices", "status", notice)
    assert code == 0 and "deadline" in out and " left" in out and "still online (checked" in out
    assert "last:" in out
    code, out = run("notices", "status", str(env["case"]), "--case", "--json")
    views = json.loads(out)
    assert code == 0 and [v["notice_id"] for v in views] == [int(notice)]
    [view] = views
    assert view["state"] == "sent" and not view["overdue"] and 47 * 3600 < view["seconds_left"] <= 48 * 3600
    assert view["urls"][0]["status"] == "present" and view["last_event"]["kind"] == "sent"
    assert "waiting for removal" in view["next_step"]
    code, out = run("notices", "status")
    assert code == 0 and f"notice {notice} " in out
    engine = store.make_engine(env["url"])
    with engine.begin() as conn:  # the deadline passed
        conn.execute(text("UPDATE notices SET due_at = '2020-01-01 00:00:00.000000' WHERE id = :i"), {"i": notice})
    engine.dispose()
    code, out = run("notices", "status", notice)
    assert code == 0 and "overdue by" in out
    assert run("notices", "status", "999999")[0] == 2
    assert run("notices", "status", "999999", "--case")[0] == 2
    assert run("notices", "status", "--case")[0] == 2
