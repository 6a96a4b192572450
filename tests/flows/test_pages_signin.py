"""The shopper's way in and the ways on after a failure: home-realm discovery by e-mail, the
connection remembered in this browser (and forgotten), the password sign-in, "Try again" with
the same ``redirect_to``, titles that say what failed, our own 404 and 405 pages with their
reference in the log, the confirmation page's lockout told before any password, "not me", and
the "now linked" notice only when something was linked."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from werkzeug.wrappers import Response

from broker.web.remembered import remember
from tests.conftest import World
from tests.flows.test_linking import (  # noqa: F401 (clock, confirm_world: fixtures)
    _to_confirmation,
    clock,
    confirm_world,
    csrf_of,
    current_customer_jwt,
    open_link_page,
    validate_calls,
)
from tests.flows.test_web_security import build
from tests.support.broker_log import LogLines
from tests.support.clock import Clock
from tests.support.flows import page_field

DOMAINS = {"allowed_domains": ["example.com"]}


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _field(html: str, element_id: str) -> str:
    return unescape(page_field(html, element_id) or "")


def test_an_email_goes_straight_to_the_connection_that_owns_its_domain(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection=DOMAINS)
    started = browser_http.get(
        f"{world.broker.url}/acme/login",
        params={"email": "alice@Example.com", "redirect_to": "/cart.php"},
    )
    assert started.status_code == 302, started.text
    authorize = started.headers["location"]
    assert authorize.startswith(world.idp.url)
    assert _query(authorize)["login_hint"] == "alice@Example.com"
    # The IdP's form is filled in with it.
    idp_page = browser_http.get(authorize)
    assert 'value="alice@Example.com"' in idp_page.text
    # The browser remembers the connection, and only its key.
    cookie = browser_http.cookies.get("broker_last_acme")
    assert cookie == "corp"
    assert all("example.com" not in (c.value or "").lower() for c in browser_http.cookies.jar)


def test_with_one_connection_for_any_domain_an_email_goes_straight_to_it(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()  # one connection, no allowed_domains
    started = browser_http.get(f"{world.broker.url}/acme/login", params={"email": "bo@any.test"})
    assert started.status_code == 302
    assert _query(started.headers["location"])["login_hint"] == "bo@any.test"


def test_the_choosers_own_form_posts_the_email_with_its_csrf_token(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection=DOMAINS)
    chooser = browser_http.get(f"{world.broker.url}/acme/login", params={"redirect_to": "/c.php"})
    assert 'method="post"' in chooser.text
    posted = browser_http.post(
        f"{world.broker.url}/acme/login",
        data={"email": "alice@example.com", "csrf_token": csrf_of(chooser.text)},
    )
    assert posted.status_code == 302
    assert _query(posted.headers["location"])["login_hint"] == "alice@example.com"
    forged = httpx.post(f"{world.broker.url}/acme/login", data={"email": "alice@example.com"})
    assert forged.status_code == 400


def test_an_email_no_connection_owns_shows_the_chooser_with_the_password_sign_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection=DOMAINS)
    other = browser_http.get(
        f"{world.broker.url}/acme/login", params={"email": "bob@elsewhere.test"}
    )
    assert other.status_code == 200
    assert "elsewhere.test" in _field(other.text, "email-error")
    assert 'role="alert"' in other.text
    assert 'value="bob@elsewhere.test"' in other.text
    assert f'href="{world.storefront}/login.php"' in other.text
    broken = browser_http.get(f"{world.broker.url}/acme/login", params={"email": "not an e-mail"})
    assert broken.status_code == 200
    assert "name@company.com" in _field(broken.text, "email-error")
    assert "broker_last_acme" not in browser_http.cookies


def test_the_last_connection_is_offered_again_and_not_you_forgets_it(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    chooser = f"{world.broker.url}/acme/login"
    assert page_field(browser_http.get(chooser).text, "remembered") is None
    assert browser_http.get(f"{world.broker.url}/acme/login/corp").status_code == 302
    again = browser_http.get(chooser)
    assert "Corp" in _field(again.text, "remembered")
    assert 'href="/acme/login/corp' in again.text
    forgotten = browser_http.get(chooser, params={"forget": "1"})
    assert page_field(forgotten.text, "remembered") is None
    assert "broker_last_acme" not in browser_http.cookies


def test_a_forged_remembered_connection_is_ignored(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    for value in ("evil", "../corp", "corp%00", ""):
        page = httpx.get(f"{world.broker.url}/acme/login", cookies={"broker_last_acme": value})
        assert page.status_code == 200
        assert page_field(page.text, "remembered") is None, value


def test_try_again_restarts_the_same_connection_with_the_same_redirect_to(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    start = browser_http.get(
        f"{world.broker.url}/acme/login/corp", params={"redirect_to": "/cart.php?x=1"}
    )
    assert start.status_code == 302
    failed = browser_http.get(f"{world.broker.url}/acme/oidc/corp/callback?state=bogus&code=x")
    assert failed.status_code == 400
    retry = re.search(r'id="try-again" href="([^"]+)"', failed.text)
    assert retry, failed.text
    assert unescape(retry.group(1)) == "/acme/login/corp?redirect_to=/cart.php?x%3D1"
    assert 'id="password-link"' in failed.text
    assert _field(failed.text, "error-title") == "This sign-in could not be completed"
    # The retry works: to the IdP again, to land on the same page.
    again = browser_http.get(world.broker.url + unescape(retry.group(1)))
    assert again.status_code == 302
    assert again.headers["location"].startswith(world.idp.url)


def test_try_again_never_carries_a_redirect_to_that_is_not_a_path(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    for bad in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        start = browser_http.get(f"{world.broker.url}/acme/login/corp", params={"redirect_to": bad})
        assert start.status_code == 302
        failed = browser_http.get(f"{world.broker.url}/acme/oidc/corp/callback?state=b&code=x")
        retry = re.search(r'id="try-again" href="([^"]+)"', failed.text)
        assert retry, failed.text
        assert unescape(retry.group(1)) == "/acme/login/corp"  # to the default page


def test_a_plain_sign_in_keeps_no_session_and_forgets_an_older_retry(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    """A sign-in to the default page needs nothing in the session for "Try again": the browser
    is given no session cookie; one started to another page before is forgotten by it."""
    world = make_world()
    login = f"{world.broker.url}/acme/login/corp"
    assert browser_http.get(login).status_code == 302
    assert [c.name for c in browser_http.cookies.jar if "session" in c.name] == []
    assert browser_http.get(login, params={"redirect_to": "/cart.php"}).status_code == 302
    assert [c.name for c in browser_http.cookies.jar if "session" in c.name] != []
    assert browser_http.get(login).status_code == 302
    failed = browser_http.get(f"{world.broker.url}/acme/oidc/corp/callback?state=b&code=x")
    retry = re.search(r'id="try-again" href="([^"]+)"', failed.text)
    assert retry, failed.text
    assert unescape(retry.group(1)) == "/acme/login/corp"


def test_a_sign_out_error_is_titled_as_one(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    refused = browser_http.post(f"{world.broker.url}/acme/logout", data={})
    assert refused.status_code == 400
    assert _field(refused.text, "error-title") == "This sign-out could not be completed"
    assert 'id="try-again"' not in refused.text


def test_our_own_404_and_405_pages_with_the_reference_in_the_log(
    make_world: Callable[..., World], broker_log: LogLines
) -> None:
    world = make_world(store={"branding": {"languages": ["es"]}})
    missing = httpx.get(f"{world.broker.url}/acme/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert _field(missing.text, "error-title") == "Página no encontrada"
    ref = page_field(missing.text, "error-ref")
    assert ref == missing.headers["X-Request-Id"]
    line = broker_log.for_ref(ref)
    assert (line["status"], line["code"], line["level"]) == (404, "not_found", "WARNING")

    wrong_method = httpx.delete(f"{world.broker.url}/acme/login")
    assert wrong_method.status_code == 405
    assert _field(wrong_method.text, "error-title") == "Esta página no se puede usar así"
    assert broker_log.for_ref(page_field(wrong_method.text, "error-ref"))["status"] == 405
    assert "Werkzeug" not in missing.text + wrong_method.text

    api = httpx.get(f"{world.broker.url}/acme/admin/api/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert broker_log.for_ref(api.json()["ref"])["status"] == 404


def test_a_locked_confirmation_is_told_before_any_password_is_asked(
    confirm_world: World,  # noqa: F811
    browser_http: httpx.Client,
    clock: Clock,  # noqa: F811
) -> None:
    world = confirm_world
    page = _to_confirmation(world, browser_http)
    assert 'id="password"' in page.text
    assert "autofocus" in page.text
    token = csrf_of(page.text)
    for _ in range(5):
        clock.advance(31)
        last = browser_http.post(
            f"{world.broker.url}/acme/link/confirm", data={"password": "guess", "csrf_token": token}
        )
    # The fifth wrong password: no live form left, the time it lifts, the real reset page.
    assert last.status_code == 401
    assert 'id="password"' not in last.text
    assert page_field(last.text, "lockout-until")
    reset = f'href="{world.storefront}/login.php?action=reset_password"'
    assert reset in last.text
    calls = validate_calls(world)
    # Coming back later (a new page load): still no form, and the store is not asked.
    clock.advance(60)
    shown = browser_http.get(f"{world.broker.url}/acme/link/confirm")
    assert shown.status_code == 429
    assert 'id="password"' not in shown.text
    assert 'id="confirm-locked" role="alert"' in shown.text
    assert re.search(r'<time id="lockout-until" datetime="[^"]+">\d\d:\d\d UTC</time>', shown.text)
    assert reset in shown.text
    assert "script-src 'nonce-" in shown.headers["Content-Security-Policy"]
    assert validate_calls(world) == calls


def test_not_me_drops_the_confirmation(confirm_world: World, browser_http: httpx.Client) -> None:  # noqa: F811
    world = confirm_world
    page = _to_confirmation(world, browser_http)
    out = browser_http.post(
        f"{world.broker.url}/acme/link/confirm/cancel", data={"csrf_token": csrf_of(page.text)}
    )
    assert out.status_code == 200
    assert page_field(out.text, "cancelled-title") == "Nothing was connected"
    gone = browser_http.get(f"{world.broker.url}/acme/link/confirm")
    assert gone.status_code == 400
    no_csrf = browser_http.post(f"{world.broker.url}/acme/link/confirm/cancel", data={})
    assert no_csrf.status_code == 400


def test_now_linked_is_shown_only_when_something_was_linked(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    pat = world.sandbox.state.add_customer(world.store.store_hash, email="pat@shop.example")
    listing = open_link_page(world, browser_http, current_customer_jwt(world, pat))
    assert page_field(listing.text, "linked-notice") is None
    # A crafted URL claims a link that was never made: no notice.
    crafted = browser_http.get(f"{world.broker.url}/acme/link", params={"linked": "corp"})
    assert crafted.status_code == 200
    assert page_field(crafted.text, "linked-notice") is None
    assert page_field(crafted.text, "no-links") == "None yet."


def test_over_https_the_remembered_connection_is_a_host_cookie_of_its_key_only(
    tmp_path: Path,
) -> None:
    app = build(tmp_path, "https://sso.example.test")
    runtime = app.extensions["broker"]
    store = runtime.store("acme")
    with app.test_request_context("/acme/login/corp", base_url="https://sso.example.test"):
        response = Response()
        remember(response, store, store.connections["corp"])
    [cookie] = response.headers.getlist("Set-Cookie")
    name, _, attributes = cookie.partition(";")
    assert name == "__Host-broker_last_acme=corp"
    assert {a.strip() for a in attributes.split(";")} >= {
        "Secure",
        "HttpOnly",
        "Path=/",
        "SameSite=Lax",
    }
    assert "Domain" not in cookie
