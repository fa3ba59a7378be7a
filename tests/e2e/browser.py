"""Headless Chromium for page tests: Debian's ``chromium`` driven by Playwright for Python (never ``playwright
install``: no browser downloads).  Skips when chromium or playwright is missing, unless TAKEBACK_REQUIRE_BROWSER is
set (CI sets it, so there a missing browser fails).  Import the fixtures into a test module to use them."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "TAKEBACK_REQUIRE_BROWSER"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for one test module.

    Not for the whole run: while Playwright's sync API is started it keeps an event loop marked as running on the
    main thread, and every later test that calls ``asyncio.run`` would fail."""
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        _missing("chromium not found (apt-get install chromium; scripts/setup.sh does)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context and page per test (no shared cookies or storage)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def artefact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $TAKEBACK_ARTEFACT_DIR if set (CI can keep it), else a pytest temporary directory."""
    configured = os.environ.get("TAKEBACK_ARTEFACT_DIR")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("artefacts")
