"""A real headless Chromium for UI tests: the distribution's browser, driven by Playwright.

The browser is the system ``chromium`` (``PISCES_TEST_CHROMIUM`` names another
binary); Playwright's own browser download is never used. One browser per
test module, a fresh context (cookies, storage) per test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """Path of the Chromium binary to drive, or None when none is installed."""
    explicit = os.environ.get("PISCES_TEST_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A running headless Chromium (Playwright ``Browser``).

    Module-scoped, not session-scoped: Playwright's sync API keeps an asyncio
    loop running in the main thread while it lives, which would break every
    later test that calls ``asyncio.run``.
    """
    path = chromium_path()
    if path is None:
        pytest.fail("no chromium installed: `./pisces test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
