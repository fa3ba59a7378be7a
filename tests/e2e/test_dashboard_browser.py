"""The dashboard as the person uses it, in headless Chromium against a real `takeback serve --demo` process.

Sign in with the demo account the server printed, open a new case, add her name, load a hash list made with
takeback's own hasher from benign photos (uploaded through the file input), scan the demo's loopback web site,
see the findings and one's evidence, draft a notice and send it to a local SMTP server (the mail arrives with the
URLs), mark it removed, and see the overview's found-vs-taken-down numbers change.  Screenshots go to the
artefact dir.  The demo's other pages (its seeded case, petition, operator pages) get a look too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from takeback.demo import media
from tests.e2e.browser import artefact_dir, browser, page  # noqa: F401 (fixtures)
from tests.e2e.served_demo import ServedDemo, serve_demo
from tests.smtp import SmtpServer

#: Mails the demo's own seeding sends at first start (its two notices), before the test sends one.
SEEDED_MAILS = 2
SCAN_TIMEOUT_MS = 120_000
PERSON = "Ada Demoulin"


@pytest.fixture
def demo(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[ServedDemo]:
    served = serve_demo(tmp_path / "demo-data", smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                        cache_dir=tmp_path / "cache")
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def hash_list(tmp_path: Path) -> Path:
    """The protected photos hashed on "her device": `takeback hash` itself, on benign sample photos."""
    photos = media.write_originals(tmp_path / "my-photos")
    listing = tmp_path / "my-hashes.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", "from takeback.cli import run; run()", "hash", str(photos[0].parent), "-o",
         str(listing), "--no-cache", "--quiet", "--workers", "0"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return listing


def _shot(tab: Any, artefact_dir: Path, name: str) -> None:  # noqa: F811 (artefact_dir: the fixture's value)
    tab.screenshot(path=str(artefact_dir / f"dashboard-{name}.png"), full_page=True)


def _sign_in(tab: Any, demo: ServedDemo) -> None:
    tab.goto(f"{demo.url}/app/login")
    tab.fill("#email", demo.email)
    tab.fill("#password", demo.password)
    tab.get_by_role("button", name="Sign in").click()


def _taken_down_today(tab: Any) -> Any:
    """The last row's "Taken down" cell of the overview's numbers table (the chart's data as text)."""
    numbers = tab.locator("details", has_text="The numbers: findings")
    numbers.locator("summary").click()
    return numbers.locator("tbody tr").last.locator("td").nth(2)


def _wait_for_scan(tab: Any, case_url: str) -> None:
    """The case page reloads itself (a meta refresh, no script) while the scan runs: wait, with a locator assertion,
    for its state to leave "running", and check the page did reload by itself if it was shown running."""
    from playwright.sync_api import expect

    state = tab.locator("#scan-state")
    shown_running = state.get_attribute("data-state") == "running"  # the page the scan form led to
    reloads: list[str] = []  # navigations from then on: the page's own reloads
    tab.on("framenavigated", lambda frame: reloads.append(frame.url) if frame == tab.main_frame else None)
    expect(state).to_have_attribute("data-state", re.compile(r"^(done|failed|stopped)$"), timeout=SCAN_TIMEOUT_MS)
    assert state.get_attribute("data-state") == "done", state.inner_text()
    if shown_running:
        assert reloads and all(url.startswith(case_url) for url in reloads), reloads
    assert tab.locator("meta[http-equiv=refresh]").count() == 0  # over: the page stays put


def test_sign_in_scan_notify_remove(demo: ServedDemo, page: Any, smtp_server: SmtpServer, hash_list: Path,  # noqa: F811
                                    artefact_dir: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect  # here: the fixtures skip the test when playwright is missing

    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # the browser's own complaints too: a CSP violation (the meta refresh must not be one), a missing resource
    page.on("console", lambda msg: errors.append(f"{msg.type}: {msg.text}") if msg.type == "error" else None)
    smtp_server.wait_for(SEEDED_MAILS, timeout=30)  # the demo's own notices went out while it seeded

    _sign_in(page, demo)
    expect(page.get_by_role("heading", name="Your cases")).to_be_visible()
    expect(page.get_by_text("Demo: Ada Demoulin")).to_be_visible()
    _shot(page, artefact_dir, "cases")

    # a new case
    page.goto(f"{demo.url}/app/cases/new")
    page.fill("#name", "Browser test case")
    page.get_by_role("button", name="Open the case").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Browser test case")
    case_url = page.url.split("?")[0].split("#")[0]

    # her name
    page.fill("#name-value", PERSON)
    page.select_option("#name-kind", "name")
    page.get_by_role("button", name="Add name").click()
    expect(page.locator("section[aria-labelledby=names]")).to_contain_text(PERSON)

    # the hash list made on her device, through the file input
    page.set_input_files("#hash-file", str(hash_list))
    page.get_by_role("button", name="Load hashes").click()
    expect(page.get_by_role("status").filter(has_text="Loaded")).to_contain_text("new hashes")
    expect(page.locator("section[aria-labelledby=protected]")).to_contain_text("hashes in")
    _shot(page, artefact_dir, "hashes-loaded")

    # a scan of the demo's loopback site
    page.goto(case_url)
    page.fill("#scan-seeds", f"{demo.site}/")
    page.get_by_role("button", name="Scan now").click()
    _wait_for_scan(page, case_url)
    findings = page.locator("section[aria-labelledby=findings] tbody tr")
    expect(findings.filter(has_text=f"{demo.site}/media/rocket-mirrored.jpg")).to_have_count(1)
    expect(findings.filter(has_text=f"{demo.site}/ada-demoulin-leaked")).to_have_count(1)
    assert page.locator(f"a[href^='{demo.site}']").count() == 0  # found URLs are text, never links
    before = _taken_down_today(page)
    expect(before).to_have_text("0")
    _shot(page, artefact_dir, "findings")

    # one finding's evidence
    findings.filter(has_text="/media/rocket-mirrored.jpg").get_by_role("link", name="Evidence").click()
    expect(page.locator("#finding-url")).to_have_text(f"{demo.site}/media/rocket-mirrored.jpg")
    expect(page.get_by_role("heading", name="What matched")).to_be_visible()
    _shot(page, artefact_dir, "evidence")

    # draft a TAKE IT DOWN notice about two copies, and send it
    page.goto(f"{case_url}/notices/")
    copies = (f"{demo.site}/media/rocket-mirrored.jpg", f"{demo.site}/media/chelsea-recoloured.jpg")
    for url in copies:
        page.locator("label.url", has_text=url).locator("input[type=checkbox]").check()
    page.check("input[name=basis][value=takeitdown]")
    page.fill("#recipient", "abuse@demo-hosting.example")
    page.fill("#sender_name", PERSON)
    page.fill("#sender_email", "ada@demoulin.example")
    page.fill("#signature", f"/s/ {PERSON}")
    page.check("input[name=good_faith_not_consensual]")
    page.get_by_role("button", name="Draft the notice").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("drafted")
    _shot(page, artefact_dir, "notice-drafted")
    page.get_by_role("button", name="Send it now").click()
    expect(page.get_by_role("status")).to_have_text("Sent.")

    mail = smtp_server.wait_for(SEEDED_MAILS + 1, timeout=30)[-1]
    assert mail.rcpt_tos == ["abuse@demo-hosting.example"]
    text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    for url in copies:
        assert url in text
    assert "TAKE IT DOWN" in text

    # the host took them down: record it, and see the overview move
    page.select_option("#state", "removed")
    page.fill("#note", "The host wrote back: both removed.")
    page.get_by_role("button", name="Record").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("removed")
    page.goto(case_url)
    expect(_taken_down_today(page)).to_have_text(str(len(copies)))
    expect(page.locator("#found-d")).to_contain_text("taken down")
    expect(findings.filter(has_text="/media/rocket-mirrored.jpg")).to_contain_text("removed")
    _shot(page, artefact_dir, "overview-after-removal")
    assert errors == []
    assert (artefact_dir / "dashboard-overview-after-removal.png").stat().st_size > 0


def test_the_seeded_demo_pages(demo: ServedDemo, page: Any, artefact_dir: Path) -> None:  # noqa: F811
    """What a new user clicks through first: the seeded case, its notices, petition and the operator's side."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(f"{msg.type}: {msg.text}") if msg.type == "error" else None)
    _sign_in(page, demo)
    page.get_by_role("link", name="Demo: Ada Demoulin").click()
    expect(page.locator("svg.chart").first).to_be_visible()
    expect(page.locator("section[aria-labelledby=findings] tbody tr").first).to_be_visible()
    _shot(page, artefact_dir, "demo-case")
    page.get_by_role("link", name="Notices").first.click()
    expect(page.locator("tbody tr")).to_have_count(3)
    page.go_back()
    page.get_by_role("link", name="Petition").first.click()
    expect(page.get_by_role("heading", name="To review")).to_be_visible()
    _shot(page, artefact_dir, "demo-petition")
    page.goto(f"{demo.url}/app/operator/")
    expect(page.get_by_text("demo-platform")).to_be_visible()
    page.goto(f"{demo.url}/app/operator/inbox/")
    expect(page.get_by_text("Riley Example")).to_be_visible()
    _shot(page, artefact_dir, "demo-inbox")
    assert errors == []
