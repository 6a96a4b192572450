"""The merchant's whole path in headless Chromium, third-party cookies blocked: the sandbox's
control panel (one site) frames the broker (another site: localhost against 127.0.0.1); the
merchant installs the app, adds an OpenID Connect connection in the admin, tests it, maps
control-panel staff, a shopper signs in, the merchant uninstalls; the admin pages pass
axe-core."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.runtime import Runtime
from broker.sandbox.idp import DevClient
from tests.conftest import BrokerServer, DevIdP, Sandbox
from tests.support.app import app_settings, register_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--test-third-party-cookie-phaseout",  # third-party cookies blocked, as Safari does
]
AXE = Path(__file__).resolve().parents[1] / "browser" / "node_modules" / "axe-core" / "axe.min.js"
HASH = "brws01"

pytestmark = pytest.mark.browser


def _axe_violations(frame: Any) -> list[str]:
    # Evaluated through the DevTools protocol: the page's CSP (no scripts) stays as it is.
    frame.evaluate(AXE.read_text(encoding="utf-8"))
    result = frame.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])})"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_a_merchant_sets_up_sso_in_the_control_panel(
    sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    app_id, app_secret = "sso-broker-app", secrets.token_hex(32)
    sandbox.add_store(HASH, name="Browser Goods")

    broker = make_broker(app_settings(sandbox.url, app_id, app_secret, other_site=True))
    base = broker.settings.broker.base_url
    runtime: Runtime = broker.app.extensions["broker"]
    register_app(sandbox.url, app_id, app_secret, base)
    idp_secret = secrets.token_urlsafe(24)
    dev_idp.state.add_client(
        DevClient(
            client_id="browser-shop",
            client_secret=idp_secret,
            redirect_uris=(f"{base}/{HASH}/oidc/corp/callback",),
        )
    )
    control_panel = f"{sandbox.url}/manage/{HASH}/apps/{app_id}?user=1"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            merchant = browser.new_context()
            page = merchant.new_page()
            page.goto(control_panel)
            admin = page.frame_locator("#app-frame")
            admin.locator("#connections-title").wait_for()
            frame = next(f for f in page.frames if f.url.startswith(base))
            assert _axe_violations(frame) == []

            admin.locator("#add-oidc").click()
            admin.locator("#f-key").fill("corp")
            admin.locator("#f-issuer").fill(dev_idp.url)
            admin.locator("#f-client_id").fill("browser-shop")
            admin.locator("#f-client_secret").fill(idp_secret)
            admin.locator("#f-display_name").fill("Corp SSO")
            admin.locator("#f-link").select_option("auto")
            frame = next(f for f in page.frames if f.url.startswith(base))
            assert _axe_violations(frame) == []
            # A mistake first: the form says what is wrong, and keeps what was typed.
            admin.locator("#f-scopes").fill("email, profile")
            admin.locator("#save").click()
            admin.locator("#form-errors").wait_for()
            assert "must include 'openid'" in admin.locator("#form-errors").inner_text()
            assert admin.locator("#f-issuer").input_value() == dev_idp.url
            admin.locator("#f-scopes").fill("openid, email, profile")
            admin.locator("#f-client_secret").fill(idp_secret)
            admin.locator("#save").click()
            admin.locator("text=Saved the connection corp.").wait_for()
            page.screenshot(path=str(tmp_path / "admin-saved.png"))

            admin.locator("a:has-text('Test')").first.click()
            admin.locator("#test-result").wait_for()
            assert admin.locator("#test-result").inner_text() == "ready"
            frame = next(f for f in page.frames if f.url.startswith(base))
            assert _axe_violations(frame) == []
            admin.locator("a:has-text('Control-panel staff')").click()
            admin.locator("#staff-title").wait_for()
            shown = " ".join(admin.locator("main").inner_text().split())
            assert "fill in the settings below" in shown
            frame = next(f for f in page.frames if f.url.startswith(base))
            assert _axe_violations(frame) == []
            # The staff form: a mistake first (no connection ticked), named next to its field.
            admin.locator("#f-account_uuid").fill("5a1e0c6e-2f4b-4c1d-9e8a-0b7c6d5e4f3a")
            account_token = secrets.token_urlsafe(24)
            admin.locator("#f-account_token").fill(account_token)
            admin.locator("#f-groups").fill("BC Admins")
            admin.locator("#save-staff").click()
            admin.locator("#form-errors").wait_for()
            assert "name the connections" in admin.locator("#h-connections").inner_text()
            assert admin.locator("#f-groups").input_value() == "BC Admins"
            assert admin.locator("#f-account_token").input_value() == ""
            frame = next(f for f in page.frames if f.url.startswith(base))
            assert _axe_violations(frame) == []
            admin.locator("#f-connections-corp").check()
            admin.locator("#f-account_token").fill(account_token)
            admin.locator("#save-staff").click()
            admin.locator("p.notice:has-text('Saved.')").wait_for()
            frame = next(f for f in page.frames if f.url.startswith(base))
            assert _axe_violations(frame) == []
            assert account_token not in frame.content()
            staff = runtime.store(HASH).staff
            assert staff is not None
            assert (staff.groups, staff.connections) == (("BC Admins",), ("corp",))
            # No cookie anywhere: the admin session is the token in the page.
            assert merchant.cookies() == []

            shopper = browser.new_context().new_page()
            shopper.goto(f"{base}/{HASH}/login/corp?redirect_to=/account.php")
            shopper.fill("#email", "alice@example.com")
            shopper.fill("#password", "password")
            shopper.get_by_role("button", name="Sign in").click()
            shopper.wait_for_selector("#customer-email")
            assert shopper.inner_text("#customer-email") == "alice@example.com"

            page.goto(control_panel)  # now the control panel knows the app is installed
            page.frame_locator("#app-frame").locator("#connections-title").wait_for()
            page.click("#uninstall-app")
            page.wait_for_selector("#uninstall-notice")
        finally:
            browser.close()

    assert httpx.get(f"{base}/{HASH}/login/corp").status_code == 404
    assert runtime.find_store(HASH) is None
    assert runtime.storage.get_install(HASH) is None
    leftovers = [e.event for e in runtime.storage.search_audit(HASH)]
    assert leftovers == ["app.uninstalled"], json.dumps(leftovers)
