"""Playwright driving Debian's Chromium (``apt-get install chromium``), never a downloaded one.

Screenshots of every step land in ``test-artifacts/browser/`` (gitignored; CI keeps them).
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import skip_unless_installed

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    skip_unless_installed(
        CHROMIUM.exists(),
        f"{CHROMIUM} (apt-get install -y chromium; no browser downloads)",
        required_by="REQUIRE_BROWSER",
    )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread while it is
    # started, and Django then refuses ORM calls from the test ("async context"). The tests
    # only call the ORM between browser steps, never concurrently, so allow it, for as long
    # as the browser runs and no longer.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


class Screenshots:
    """Numbered full-page screenshots of one test, named after it."""

    def __init__(self, test_name: str) -> None:
        self.prefix = test_name.replace("[", "-").replace("]", "")
        self.count = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for stale in ARTIFACTS.glob(f"{self.prefix}-*.png"):
            stale.unlink()  # from an earlier run: only this run's steps are left

    def take(self, page, step: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        page.screenshot(path=path, full_page=True)
        return path


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(request.node.name)


@pytest.fixture
def new_page(browser, request: pytest.FixtureRequest, screenshots: Screenshots):
    """``new_page()`` opens a page in a fresh browser context (its own cookies)."""
    contexts = []

    def open_page():
        context = browser.new_context(viewport={"width": 1600, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    if getattr(request.node, "call_failed", False):
        for context in contexts:
            for page in context.pages:
                screenshots.take(page, "FAILED")
    for context in contexts:
        context.close()
