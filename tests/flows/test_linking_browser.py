"""Linking from the storefront, in headless Chromium: the theme script, the broker's page, the IdP.

A customer who signs in to the sandbox storefront with a password opens "Manage company
sign-in" on their account page; the broker's script takes the browser to the broker for a
nonce bound to it and back, then hands the storefront's Current Customer JWT and the nonce to
the broker; they link their company sign-in; from then on "Sign in with SSO" opens that
same account although the IdP's e-mail differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import World
from tests.flows.test_linking import current_customer_jwt
from tests.support.servers import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def test_link_from_the_account_page_then_sign_in_with_sso(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    world = make_world(theme_script=True)
    pat = world.sandbox.state.add_customer(
        world.store.store_hash,
        email="pat@shop.example",
        first_name="Pat",
        last_name="Buyer",
        password="s3cret-pass",
    )
    storefront = world.storefront

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{storefront}/login.php")
            page.fill("#login-email", "pat@shop.example")
            page.fill("#login-password", "s3cret-pass")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#customer-email")

            page.click("#sso-manage-link")
            page.wait_for_selector("#account-email")
            assert page.url == f"{world.broker.url}/acme/link"
            assert page.inner_text("#account-email") == "pat@shop.example"
            assert page.is_visible("#no-links")

            page.get_by_role("button", name=re.compile("Link Corp")).click()
            page.wait_for_selector("#email")
            page.fill("#email", "alice@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#linked-notice")
            assert "as alice@example.com" in page.inner_text("#links")
            page.screenshot(path=str(tmp_path / "linked.png"))

            page.goto(f"{storefront}/login.php?action=logout")
            page.click("#sso-link")
            page.fill("#email", "alice@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#customer-id")
            assert page.inner_text("#customer-id") == str(pat["id"])
            assert page.inner_text("#customer-email") == "pat@shop.example"
        finally:
            browser.close()
    assert len(world.customers()) == 1


def test_another_sites_auto_submitting_form_plants_nothing(
    make_world: Callable[..., World],
) -> None:
    """Another site's page posts the attacker's Current Customer JWT to /link/start the moment
    the victim opens it: refused (its Origin is not the storefront's), nothing planted."""
    from playwright.sync_api import sync_playwright

    world = make_world(theme_script=True)
    mallory = world.sandbox.state.add_customer(world.store.store_hash, email="mallory@evil.example")
    token = current_customer_jwt(world, mallory)
    evil = Flask(__name__)

    @evil.get("/")
    def prize() -> str:
        return (
            f'<form id="f" method="post" action="{world.broker.url}/acme/link/start">'
            f'<input type="hidden" name="customer_jwt" value="{token}">'
            f'<input type="hidden" name="nonce" value="{"n" * 43}"></form>'
            "<script>document.getElementById('f').submit()</script>"
        )

    with serve_in_thread(evil, host="localhost") as site, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(site.url + "/")
            page.wait_for_url(f"{world.broker.url}/acme/link/start")
            page.wait_for_selector("#error-title")
            assert page.inner_text("#error-title") == "This request did not come from the store"
            page.goto(f"{world.broker.url}/acme/link")
            assert "mallory@evil.example" not in page.content()
            assert page.inner_text("#error-title")  # no link session: a clear page
        finally:
            browser.close()


def test_the_script_passes_the_storefronts_language_on_to_the_sign_in(
    make_world: Callable[..., World],
) -> None:
    """A storefront page in French (``<html lang="fr-CA">``): the script adds its language to
    the "Sign in with SSO" link as ``ui_locales``, the broker passes it on to the IdP and
    speaks it on its own pages (here the name page of a new shopper); a page that declares
    no language, or a link that names one already, is left as it is."""
    from playwright.sync_api import sync_playwright

    world = make_world(theme_script=True, store={"branding": {"languages": ["en", "fr"]}})
    storefront = world.storefront
    # The sandbox's pages say lang="en": each page's <html> is given another as it is parsed
    # (a rewritten response would be another address space, which Chromium lets load no
    # script of 127.0.0.1).
    in_language = (
        "new MutationObserver(function (_, seen) {"
        "  var root = document.documentElement;"
        "  if (root && location.pathname.indexOf('/login.php') >= 0) {"
        "    if (window.LANG) { root.setAttribute('lang', window.LANG); }"
        "    else { root.removeAttribute('lang'); }"
        "    seen.disconnect();"
        "  }"
        "}).observe(document, {childList: true});"
    )

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(locale="en-US")  # Accept-Language: English
            context.add_init_script("window.LANG = 'fr-CA';" + in_language)
            page = context.new_page()
            page.goto(f"{storefront}/login.php")
            assert page.get_attribute("html", "lang") == "fr-CA"
            page.wait_for_function(
                "document.getElementById('sso-link').href.includes('ui_locales=')"
            )
            href = page.get_attribute("#sso-link", "href") or ""
            assert href.startswith(f"{world.broker.url}/acme/login/corp?")
            assert "redirect_to=" in href
            assert href.endswith("ui_locales=fr-CA")
            page.click("#sso-link")
            page.wait_for_selector("#password")
            assert "ui_locales=fr-CA" in page.url  # the IdP is asked for the same language
            page.fill("#email", "bob@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#name-title")
            assert page.get_attribute("html", "lang") == "fr"
            assert page.title().startswith("Comment vous appelez-vous ?")

            # No language declared: the link stays as the theme wrote it.
            plain = browser.new_context()
            plain.add_init_script("window.LANG = '';" + in_language)
            page = plain.new_page()
            with page.expect_response(lambda r: r.url.endswith("/acme/link/script.js")) as got:
                page.goto(f"{storefront}/login.php")
            assert got.value.ok  # the script is there, and ran
            page.wait_for_function("document.readyState === 'complete'")
            assert page.get_attribute("html", "lang") is None
            assert "ui_locales" not in (page.get_attribute("#sso-link", "href") or "")
        finally:
            browser.close()
