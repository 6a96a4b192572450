"""`broker demo` driven in headless Chromium, as a newcomer would use it.

Debian's Chromium through Playwright (never a downloaded browser): open the storefront, click
"Sign in with SSO", sign in at the development IdP, land on the account page as that customer.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.serve import free_port

#: The sandbox and the IdP on ports the system picks (their defaults are fixed: tests run
#: side by side).
ANY_PORTS = ("--sandbox-port", "0", "--idp-port", "0")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    """Run `broker demo` in a subprocess; yield the storefront URL it prints."""
    log = (tmp_path / "demo.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "demo", "--port", str(free_port()), *ANY_PORTS],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.search(r"Open (http://127\.0\.0\.1:\d+/\S*)", line)
            url = match.group(1) if match else None
        if url is None:
            log.seek(0)
            pytest.fail(f"broker demo printed no URL; stderr:\n{log.read()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_demo_sign_in_in_a_browser(demo: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/setup (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(demo)
            assert "Sign in with SSO" in page.content()
            page.click("#sso-link")

            page.wait_for_selector("#email")
            page.fill("#email", "alice@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()

            page.wait_for_selector("#customer-email")
            assert page.url.endswith("/account.php")
            assert page.inner_text("#customer-email") == "alice@example.com"
            assert "Alice" in page.inner_text("#customer-name")
            page.screenshot(path=str(tmp_path / "account.png"))

            # Signing in again finds the same customer rather than creating another.
            first_id = page.inner_text("#customer-id")
            page.goto(demo.rstrip("/") + "/login.php?action=logout")
            page.click("#sso-link")
            page.fill("#email", "alice@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#customer-id")
            assert page.inner_text("#customer-id") == first_id
        finally:
            browser.close()
