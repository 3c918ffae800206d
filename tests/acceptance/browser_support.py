"""A real browser for the web UI's end-to-end tests: Playwright driving Debian's Chromium.

Playwright's own browser download is not reachable from this project's machines, so the
tests drive ``/usr/bin/chromium`` (``apt-get install chromium``; ``make test`` installs it
through ``scripts/ensure-ui-tools.sh``). Without it the tests skip, except in CI
(``CI=true``), where a missing browser fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("FLOWPLANE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = os.environ.get("FLOWPLANE_UI_SCREENSHOTS", "")
"""A folder to write the docs' screenshots into (``docs/ui``); empty: none are written."""


def require_browser() -> None:
    """Skip (locally) or fail (in CI) when Chromium or Playwright is missing."""
    problem = ""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if not problem and not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests need a browser in CI: {problem}")
        pytest.skip(problem)


def launched() -> Iterator[Any]:
    """A headless Chromium for the duration of the ``with`` (or generator) block."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Any, name: str) -> None:
    """Save ``page`` as ``<FLOWPLANE_UI_SCREENSHOTS>/<name>.png`` when that is set."""
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"))
