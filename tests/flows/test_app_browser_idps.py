"""The merchant's whole path in headless Chromium with third-party cookies blocked, against
two real third-party identity providers: the sandbox's control panel (127.0.0.1) frames the
broker (localhost); the merchant installs the app, loads it again, adds an OpenID Connect
connection (npm ``oidc-provider``) and a SAML one (samlify) in the admin form, registering the
broker at each IdP from what the admin page shows; tests both; shoppers sign in through each
connection on the store's two channels; the merchant uninstalls, and nothing of the store is
left but the uninstall's audit row. axe-core checks the SAML form, the test pages and the
audit log."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.runtime import Runtime
from tests.conftest import BrokerServer, Sandbox
from tests.support.app import app_settings, register_app, store_rows
from tests.support.oidc_provider import start_oidc_provider
from tests.support.saml_idp import start_saml_idp

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
HASH = "idps02"
APP_ID = "sso-broker-app"
OIDC, SAML = "corp-oidc", "corp-saml"
CHANNELS = (1, 2)
OIDC_ACCOUNTS = {
    "olivia": {
        "email": "olivia@corp.example",
        "email_verified": True,
        "given_name": "Olivia",
        "family_name": "Okta",
    }
}
SAML_USERS = {"sam": {"email": "sam@corp.example", "first_name": "Sam", "last_name": "Samlson"}}

pytestmark = pytest.mark.browser


def _axe_violations(frame: Any) -> list[str]:
    # Evaluated through the DevTools protocol: the page's CSP (no scripts) stays as it is.
    frame.evaluate(AXE.read_text(encoding="utf-8"))
    result = frame.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}: "
        + "; ".join(" ".join(n["target"]) for n in v["nodes"][:5])
        + ")"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _shown(admin: Any, row_header: str) -> str:
    """The value the admin page's "What to enter at the identity provider" table shows."""
    row = admin.locator("#idp-title ~ table tr", has=admin.locator("th", has_text=row_header))
    return str(row.locator("code").inner_text()).strip()


def _sign_in(shopper: Any, start: str, login: str) -> None:
    """Start at the broker; at the IdP's form (if it asks: a session there may answer alone),
    sign in as ``login``; stop at the storefront's account page."""
    shopper.goto(start)
    landed = shopper.locator("#customer-email")
    shopper.locator("input[name=login], #customer-email").first.wait_for()
    if not landed.is_visible():
        shopper.fill("input[name=login]", login)
        if shopper.locator("input[name=password]").count():
            shopper.fill("input[name=password]", "any")
        shopper.click("form button[type=submit]")
        landed.wait_for()


def test_a_merchant_sets_up_oidc_and_saml_idps_for_two_channels(
    sandbox: Sandbox, make_broker: Callable[..., BrokerServer], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    app_secret = secrets.token_hex(32)
    sandbox.add_store(
        HASH, name="Two IdP Goods", channel_ids=CHANNELS, channel_names=("Retail", "Wholesale")
    )

    broker = make_broker(app_settings(sandbox.url, APP_ID, app_secret, other_site=True))
    base = broker.settings.broker.base_url
    runtime: Runtime = broker.app.extensions["broker"]
    register_app(sandbox.url, APP_ID, app_secret, base)
    control_panel = f"{sandbox.url}/manage/{HASH}/apps/{APP_ID}?user=1"
    storefronts = {1: f"{sandbox.url}/s/{HASH}", 2: f"{sandbox.url}/s/{HASH}/c/2"}
    sign_ins = [
        f"{base}/{HASH}/login/{conn}?channel={channel}&redirect_to=/account.php"
        for conn in (OIDC, SAML)
        for channel in CHANNELS
    ]

    with sync_playwright() as p, ExitStack() as stack:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        stack.callback(browser.close)
        merchant = browser.new_context()
        page = merchant.new_page()
        admin = page.frame_locator("#app-frame")

        def frame() -> Any:
            return next(f for f in page.frames if f.url.startswith(base))

        def saved(conn: str) -> None:
            admin.locator("#save").click()
            notice = admin.locator("p.notice[role=status]")
            notice.wait_for()
            said = notice.inner_text()
            assert said == f"Saved the connection {conn}.", admin.locator("main").inner_text()

        # Install (the iframe is the app's auth callback), then load (the load callback).
        page.goto(control_panel)
        admin.locator("#connections-title").wait_for()
        assert sorted(runtime.store(HASH).channels) == list(CHANNELS)
        page.goto(control_panel)
        page.locator("#uninstall-app").wait_for()
        admin.locator("#connections-title").wait_for()

        # OpenID Connect: register the redirect URI the form shows at oidc-provider.
        admin.locator("#add-oidc").click()
        redirect_uri = admin.locator("#redirect-uri").inner_text().strip()
        assert redirect_uri == f"{base}/{HASH}/oidc/<key>/callback"
        oidc_secret = secrets.token_urlsafe(24)
        provider = stack.enter_context(
            start_oidc_provider(
                clients=[
                    {
                        "client_id": "two-idp-goods",
                        "client_secret": oidc_secret,
                        "redirect_uris": [redirect_uri.replace("<key>", OIDC)],
                    }
                ],
                accounts=OIDC_ACCOUNTS,
            )
        )
        admin.locator("#f-key").fill(OIDC)
        admin.locator("#f-issuer").fill(provider.issuer)
        admin.locator("#f-client_id").fill("two-idp-goods")
        admin.locator("#f-client_secret").fill(oidc_secret)
        admin.locator("#f-display_name").fill("Corp OIDC")
        admin.locator("#f-link").select_option("auto")
        saved(OIDC)

        # SAML: register the SP the form shows at samlify, paste the IdP's metadata XML.
        admin.locator("#add-saml").click()
        admin.locator("#f-idp_metadata_xml").wait_for()
        saml_base = f"{base}/{HASH}/saml/<key>"
        assert admin.locator("#sp-metadata").inner_text() == f"{saml_base}/metadata"
        sp = {
            "entity_id": _shown(admin, "Entity ID").replace("<key>", SAML),
            "acs_url": _shown(admin, "ACS URL").replace("<key>", SAML),
            "slo_url": _shown(admin, "Single logout URL").replace("<key>", SAML),
        }
        assert sp["acs_url"] == f"{base}/{HASH}/saml/{SAML}/acs"
        idp = stack.enter_context(start_saml_idp(sp=sp, users=SAML_USERS))
        idp_metadata = httpx.get(idp.metadata_url, timeout=10)
        idp_metadata.raise_for_status()
        admin.locator("#f-key").fill(SAML)
        admin.locator("#f-idp_metadata_xml").fill(idp_metadata.text)
        admin.locator("#f-display_name").fill("Corp SAML")
        admin.locator("#f-trust_email").check()
        admin.locator("#f-link").select_option("auto")
        assert _axe_violations(frame()) == []
        saved(SAML)
        page.screenshot(path=str(tmp_path / "admin-two-connections.png"))
        for conn in (OIDC, SAML):
            assert admin.locator(f"tr[data-connection='{conn}']").count() == 1

        # What the IdP would read at the SP metadata URL the saved connection's page shows.
        admin.locator(f"tr[data-connection='{SAML}'] a:has-text('Edit')").click()
        sp_metadata_url = admin.locator("#sp-metadata").inner_text().strip()
        assert sp_metadata_url == sp["entity_id"]
        sp_metadata = httpx.get(sp_metadata_url, timeout=10)
        assert sp_metadata.status_code == 200, sp_metadata.text
        assert f'entityID="{sp["entity_id"]}"' in sp_metadata.text
        assert f'Location="{sp["acs_url"]}"' in sp_metadata.text

        # Test each connection from the admin.
        for conn in (OIDC, SAML):
            admin.get_by_role("link", name="Connections").click()
            admin.locator(f"tr[data-connection='{conn}'] a:has-text('Test')").click()
            admin.locator("#test-result").wait_for()
            result = admin.locator("#test-result").inner_text()
            assert result == "ready", admin.locator("main").inner_text()
            assert _axe_violations(frame()) == []
        assert merchant.cookies() == []  # the admin session is the token in the page

        # A shopper of each IdP signs in on both channels' storefronts.
        for conn, login, email in (
            (OIDC, "olivia", "olivia@corp.example"),
            (SAML, "sam", "sam@corp.example"),
        ):
            shopper = browser.new_context().new_page()
            for channel in CHANNELS:
                start = f"{base}/{HASH}/login/{conn}?channel={channel}&redirect_to=/account.php"
                _sign_in(shopper, start, login)
                assert shopper.url == f"{storefronts[channel]}/account.php"
                assert shopper.inner_text("#customer-email") == email
            for channel in CHANNELS:  # each storefront keeps its own session
                shopper.goto(f"{storefronts[channel]}/account.php")
                assert shopper.inner_text("#customer-email") == email
        logins = sandbox.state.logins(HASH)
        assert [(entry["ok"], entry["claims"]["channel_id"]) for entry in logins] == [
            (True, 1),
            (True, 2),
            (True, 1),
            (True, 2),
        ]
        customers = sandbox.state.customers(HASH)
        assert sorted((c["email"], tuple(c["channel_ids"])) for c in customers) == [
            ("olivia@corp.example", (1,)),
            ("olivia@corp.example", (2,)),
            ("sam@corp.example", (1,)),
            ("sam@corp.example", (2,)),
        ]

        # The audit log in the admin shows the sign-ins of both connections.
        admin.get_by_role("link", name="Audit log").click()
        admin.locator("#audit-title").wait_for()
        audit_text = admin.locator("table").inner_text()
        assert OIDC in audit_text, audit_text
        assert SAML in audit_text, audit_text
        assert _axe_violations(frame()) == []

        page.click("#uninstall-app")
        page.wait_for_selector("#uninstall-notice")
        assert "answered 200" in page.inner_text("#uninstall-notice")

    for url in sign_ins:
        assert httpx.get(url).status_code == 404, url
    assert runtime.find_store(HASH) is None
    assert runtime.storage.get_install(HASH) is None
    assert store_rows(runtime, HASH) == {"audit_log": 1}
    assert [e.event for e in runtime.storage.search_audit(HASH)] == ["app.uninstalled"]
