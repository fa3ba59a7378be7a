"""The petition as a supporter sees it, in headless Chromium against a real `takeback serve`: open the page, solve
the proof-of-work in the browser (WebCrypto), sign, receive the verification mail at a local SMTP server, open the
link, and see the count move."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import artefact_dir, browser, page  # noqa: F401 (fixtures)
from tests.petition.served import SLUG, Served, create_petition, free_port, serve
from tests.smtp import SmtpServer

LINK = re.compile(r"(http://\S+/p/[a-z0-9-]+/verify\?token=\S+)")


@pytest.fixture
def server(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Served]:
    data_dir = tmp_path / "data"
    create_petition(data_dir, goal=4)
    served = serve(
        data_dir,
        free_port(),
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        petition_pow_max_number=3000,
    )
    try:
        yield served
    finally:
        served.stop()


def test_sign_verify_and_see_the_count_move(server: Served, page: Any, smtp_server: SmtpServer, artefact_dir: Path) -> None:  # noqa: F811, E501
    from playwright.sync_api import expect  # here: the fixtures skip the test when playwright is missing

    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server.url}/p/{SLUG}")
    assert page.title() == "Give her domains back"
    assert page.inner_text("#verified-count") == "0"
    page.fill("#name", "Ann <b>Example</b>")
    page.fill("#email", "Ann.Example+rally@gmail.com")
    page.select_option("#country", "FR")
    page.fill("#comment", "<script>alert(1)</script> because it matters")
    page.check("#consent_public")
    page.click("#sign-button")
    # A locator assertion, not wait_for_function: the page's CSP (no eval) stays on, as a supporter's browser has it.
    expect(page.locator("#sign-status")).to_contain_text("confirm your signature", timeout=60_000)
    # The page writes the counts (carried by the signing answer) and then the message in one synchronous step, so
    # the count is already right when the message appears; the assertion still waits, as a person's eyes would.
    expect(page.locator("#pending-count")).to_have_text("1")
    expect(page.locator("#verified-count")).to_have_text("0")
    page.screenshot(path=str(artefact_dir / "petition-signed.png"), full_page=True)

    message = smtp_server.wait_for(1, timeout=30)[0]
    assert message.rcpt_tos == ["Ann.Example+rally@gmail.com"]
    text = message.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = LINK.search(text)
    assert link, text
    page.goto(link.group(1))
    assert "Your signature is confirmed" in page.inner_text("#message")

    page.goto(f"{server.url}/p/{SLUG}")
    assert page.inner_text("#verified-count") == "1"
    assert page.inner_text("#pending-count") == "0"
    assert page.eval_on_selector("#progress", "el => el.value") == 1
    # The comment is shown as text, never run.
    assert "<script>alert(1)</script> because it matters" in page.inner_text(".comments")
    assert errors == []
    page.screenshot(path=str(artefact_dir / "petition-verified.png"), full_page=True)
    assert (artefact_dir / "petition-verified.png").stat().st_size > 0
