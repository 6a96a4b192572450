"""Every shopper page in headless Chromium, for two stores of different branding and
language, at 1280 and 375 pixels: axe-core finds no serious or critical violation on any,
errors are announced (``role="alert"``), the first field has the focus, the page keeps its
margins on a phone, and a screenshot of each is saved (the path is printed).

Debian's Chromium through Playwright (never a downloaded browser); axe-core from
tests/browser/node_modules, evaluated through the DevTools protocol so the pages' CSP (no
scripts) stays as it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response

from tests.conftest import World
from tests.support.clock import Clock
from tests.support.servers import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
AXE = Path(__file__).resolve().parents[1] / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 375)

LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="180" height="40" viewBox="0 0 180 40">'
    '<rect width="40" height="40" rx="8" fill="#0a6e4f"/>'
    '<text x="50" y="27" font-family="sans-serif" font-size="20" fill="#0a6e4f">Acme</text></svg>'
)

#: Two stores: German with a logo and a green, French with a magenta and a support page.
STORES: dict[str, dict[str, Any]] = {
    "acme-de": {
        "name": "Acme Supply",
        "primary_color": "#0a6e4f",
        "support": "mailto:help@acme.example",
        "languages": ["de", "en"],
        "logo": True,
    },
    "globex-fr": {
        "name": "Globex Négoce",
        "primary_color": "#d6249f",
        "support": "https://support.globex.example/contact",
        "languages": ["fr", "nl"],
    },
}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shopper-pages")
    print(f"\nscreenshots of the shopper pages: {folder}")
    return folder


@pytest.fixture
def logo_server() -> Iterator[str]:
    images = Flask(__name__)

    @images.get("/logo.svg")
    def logo() -> Response:
        return Response(LOGO, mimetype="image/svg+xml")

    with serve_in_thread(images) as server:
        yield server.url


def _axe(page: Any) -> list[str]:
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])})"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _check(page: Any, folder: Path, name: str) -> None:
    """axe-core and a screenshot at each width; the card keeps its margins on a phone."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        assert _axe(page) == [], f"{name} at {width}px"
        box = page.locator("main").bounding_box()
        assert box is not None
        assert box["x"] >= 12, f"{name} at {width}px: no margin"
        assert box["x"] + box["width"] <= width - 12, f"{name} at {width}px: no margin"
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)


@pytest.mark.parametrize("key", list(STORES))
def test_every_shopper_page_passes_axe_at_both_widths(
    key: str,
    make_world: Callable[..., World],
    logo_server: str,
    screenshots: Path,
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/setup (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    branding = {k: v for k, v in STORES[key].items() if k != "logo"}
    if STORES[key].get("logo"):
        branding["logo_url"] = f"{logo_server}/logo.svg"
    clock = Clock()
    world = make_world(
        connection={"link": "confirm", "allowed_domains": ["example.com"]},
        store={"branding": branding},
        theme_script=True,
        app_options={"clock": clock},
    )
    world.sandbox.state.add_customer(
        world.store.store_hash,
        email="alice@example.com",
        first_name="Alice",
        last_name="Shopper",
        password="correct horse battery",
    )
    world.sandbox.state.add_customer(
        world.store.store_hash,
        email="pat@shop.example",
        first_name="Pat",
        last_name="Buyer",
        password="s3cret-pass",
    )
    folder = screenshots / key
    folder.mkdir()
    broker = world.broker.url
    lang = branding["languages"][0]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(locale=lang)  # Accept-Language: the store's first

            page.goto(f"{broker}/acme/login")
            assert page.get_attribute("html", "lang") == lang
            assert branding["name"] in page.title()
            assert page.evaluate("document.activeElement.id") == "email"
            _check(page, folder, "chooser")

            page.fill("#email", "someone@elsewhere.test")
            page.click("#email-continue")
            page.wait_for_selector("#email-error")
            assert page.get_attribute("#email-error", "role") == "alert"
            _check(page, folder, "chooser-unknown-domain")

            page.goto(f"{broker}/acme/oidc/corp/callback?state=forged&code=x")
            assert page.get_attribute("[role=alert]", "role") == "alert"
            _check(page, folder, "error-sign-in")

            page.goto(f"{broker}/acme/no/such/page")
            _check(page, folder, "error-404")

            # Home-realm discovery to the IdP, then the confirmation of an existing account.
            page.goto(f"{broker}/acme/login")
            page.fill("#email", "alice@example.com")
            page.click("#email-continue")
            page.wait_for_selector("#password")
            assert page.input_value("#email") == "alice@example.com"  # login_hint
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#confirm-title")
            assert page.evaluate("document.activeElement.id") == "password"
            _check(page, folder, "confirm")
            for _ in range(4):
                clock.advance(31)  # past the pace (two checks in 30 s): the 15-minute budget
                page.fill("#password", "wrong guess")
                page.locator("form button[type=submit]").first.click()
                page.wait_for_selector("#confirm-error")
            assert page.get_attribute("#confirm-error", "role") == "alert"
            _check(page, folder, "confirm-wrong-password")
            clock.advance(31)
            page.fill("#password", "wrong guess")
            page.locator("form button[type=submit]").first.click()
            page.wait_for_selector("#confirm-locked")
            assert page.locator("#password").count() == 0
            # The page's one script wrote the time in the browser's own zone.
            assert re.fullmatch(r"\d{1,2}[:.]\d\d(\s?[AP]M)?", page.inner_text("#lockout-until"))
            _check(page, folder, "confirm-locked")
            clock.now = time.time()  # back with the IdP's clock, for the sign-ins below
            page.click("#not-me")
            page.wait_for_selector("#cancelled-title")
            _check(page, folder, "confirm-cancelled")

            page.goto(f"{broker}/acme/login")
            page.wait_for_selector("#remembered-link")
            _check(page, folder, "chooser-remembered")

            # Linking from the storefront's account page, then unlinking (asked first).
            page.goto(f"{world.storefront}/login.php")
            page.fill("#login-email", "pat@shop.example")
            page.fill("#login-password", "s3cret-pass")
            page.locator("button[type=submit]").first.click()
            page.wait_for_selector("#sso-manage-link")
            page.click("#sso-manage-link")
            page.wait_for_selector("#no-links")
            _check(page, folder, "links-none")
            page.locator("form[action$='/link/connect/corp'] button").click()
            page.wait_for_selector("#password")
            page.fill("#email", "alice@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#linked-notice")
            _check(page, folder, "links-linked")
            page.reload()
            assert page.locator("#linked-notice").count() == 0  # told once
            page.locator("[id^=unlink-]").first.click()
            page.wait_for_selector("#unlink-confirm")
            _check(page, folder, "unlink-confirm")
            page.click("#unlink-confirm")
            page.wait_for_selector("#unlinked-notice")
            assert page.locator("#no-links").count() == 1

            # A new shopper whose IdP sends no names is asked them, once.
            page.goto(f"{broker}/acme/login/corp")
            page.wait_for_selector("#password")
            page.fill("#email", "bob@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#name-title")
            assert branding["name"] in page.inner_text("#name-title")
            assert page.evaluate("document.activeElement.id") == "first_name"
            _check(page, folder, "name")
            page.fill("#first_name", "Bob")
            page.fill("#last_name", "   ")  # past the browser's own check: refused by ours
            page.click("#name-continue")
            page.wait_for_selector("#last_name-error")
            assert page.get_attribute("#last_name-error", "role") == "alert"
            assert page.evaluate("document.activeElement.id") == "last_name"
            _check(page, folder, "name-error")
            page.fill("#last_name", "Builder")
            page.click("#name-continue")
            page.wait_for_selector("#customer-email")
            assert page.inner_text("#customer-email") == "bob@example.com"
        finally:
            browser.close()
