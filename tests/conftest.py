"""Fixtures every product's tests share."""
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def browser():
    """One headless chromium for the whole run: Playwright's sync API allows one running instance per thread."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not at /usr/bin/chromium: apt-get install -y chromium", pytrace=False)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
