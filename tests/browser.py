"""A real browser for the web console's tests: Debian's Chromium driven by Playwright.

The browser talks to the console's real server on 127.0.0.1 in the test's own event loop,
so it clicks the buttons and fills the forms a moderator would, and the test then looks at
what the bot did (the fake Slack's and fake Discord's records). Chromium is not optional:
when it cannot be found the tests fail and say how to install it.

    from tests.browser import browser_fixture, page_fixture, sign_in  # noqa: F401

    async def test_x(web, page):
        await sign_in(page, web)
        await page.click("tr[data-feed='1'] >> text=Pause")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.web import WebRun

CHROMIUM_ENV = "ITSM_BOT_CHROMIUM"  # a Chromium elsewhere than on PATH
VIEWPORT = {"width": 1280, "height": 900}
# How long one browser step may wait for the page before it fails (never a timed assertion:
# a step that succeeds returns as soon as the page is ready).
STEP_MS = 10_000

INSTALL_HINT = (
    "The browser tests need Chromium, and none was found (looked for ${env}, then "
    "'chromium' and 'chromium-browser' on PATH). Install it with\n"
    "    sudo apt-get install chromium          (Debian, Ubuntu: chromium or chromium-browser)\n"
    "or point {env} at a Chromium or Chrome binary. .ci/run installs it on a fresh machine."
)


def chromium_path() -> str:
    """Where Chromium is, or a test failure saying how to install it (never a skip)."""
    candidates = [os.environ.get(CHROMIUM_ENV, ""), "chromium", "chromium-browser"]
    for candidate in candidates:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    pytest.fail(INSTALL_HINT.format(env=CHROMIUM_ENV), pytrace=False)


@pytest_asyncio.fixture(name="browser")
async def browser_fixture() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(name="page")
async def page_fixture(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab with no cookies, the size the screenshots use."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = await context.new_page()
    opened.set_default_timeout(STEP_MS)
    try:
        yield opened
    finally:
        await context.close()


async def sign_in(page: Page, run: WebRun, name: str = "mia", moderator: bool = True) -> None:
    """Type /web on the console, open the link, press Sign in: land on the first page."""
    link = await run.link(name, moderator)
    await page.goto(link)
    await page.click("#sign-in")
    await page.wait_for_url(f"{run.base}/feeds")
