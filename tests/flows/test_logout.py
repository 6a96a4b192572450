"""Logout over real HTTP: the storefront, the broker's session, the IdP, and back-channel.

RP-initiated and back-channel logout run against the npm ``oidc-provider`` (a real OpenID
provider that sends logout tokens itself); the logout-token refusals are crafted with the
development IdP's key, so only the check named in each case can refuse them.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import OctKey

from broker.sandbox.idp import DevIdPState, create_idp_app, encode_hs256, encode_unsecured
from broker.sandbox.store import SandboxStore
from tests.conftest import BrokerServer, DevIdP, Sandbox, World
from tests.support.flows import (
    Outcome,
    give_name,
    page_field,
    query,
    sign_in,
    start_login,
    visit_storefront,
)
from tests.support.oidc_provider import complete_login, complete_logout, start_oidc_provider
from tests.support.serve import broker_serve, free_port
from tests.support.servers import serve_in_thread
from tests.support.settings import document as settings_document
from tests.support.settings import oidc_connection, store_table

BACKCHANNEL = "http://schemas.openid.net/event/backchannel-logout"


def status_of(broker_url: str, token: str, customer_jwt: str | None = None) -> Any:
    """What /session/status answers the storefront script: with the storefront's Current
    Customer JWT (a POST) or without (the cheap GET)."""
    url = f"{broker_url}/acme/session/status"
    if customer_jwt is None:
        return httpx.get(url, params={"s": token}).json()["active"]
    return httpx.post(url, data={"s": token, "customer_jwt": customer_jwt}).json()["active"]


def customer_jwt_for(store: SandboxStore, customer_id: int) -> str:
    """The Current Customer JWT the storefront hands its scripts for this customer."""
    now = int(time.time())
    claims = {
        "customer": {"id": customer_id, "email": "", "group_id": "0"},
        "iss": "bc/apps",
        "sub": store.store_hash,
        "iat": now,
        "exp": now + 900,
        "version": 1,
        "aud": store.client_id,
        "application_id": "app",
        "store_hash": store.store_hash,
        "operation": "current_customer",
    }
    key = OctKey.import_key(store.client_secret)
    return joserfc_jwt.encode({"typ": "JWT", "alg": "HS256"}, claims, key)


def broker_state(world: World) -> Any:
    return world.broker.app.extensions["broker"]


def sessions_of(world: World) -> list[Any]:
    from sqlalchemy import select

    from broker.storage import BrokerSession, sessions

    storage = broker_state(world).storage
    with storage.engine.connect() as conn:
        return [BrokerSession(**row._mapping) for row in conn.execute(select(sessions))]


# -- storefront and broker session ------------------------------------------------------------


def test_logout_of_a_shopper_the_broker_does_not_know_is_storefront_logout(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    response = browser_http.get(f"{world.broker.url}/acme/logout?redirect_to=//evil.com")
    assert response.status_code == 303
    assert response.headers["location"] == f"{world.storefront}/login.php?action=logout"


def test_logout_ends_the_broker_session_and_the_storefront_session(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"follow_idp_logout": True})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    landing = visit_storefront(browser_http, outcome.location)
    token = query(str(landing.url))["sso_session"]
    status = httpx.get(f"{world.broker.url}/acme/session/status", params={"s": token})
    assert status.json() == {"active": True}
    assert status.headers["access-control-allow-origin"] == world.sandbox.url
    [alice] = world.customers()

    out = browser_http.get(f"{world.broker.url}/acme/logout")
    assert out.status_code == 303
    assert out.headers["location"] == f"{world.storefront}/login.php?action=logout"
    browser_http.get(out.headers["location"])
    account = browser_http.get(f"{world.storefront}/account.php")
    assert account.status_code == 302, "signed out of the storefront"
    # Ended: "false" (the script's cue to sign the storefront out) only for alice herself.
    assert status_of(world.broker.url, token) == "unknown"
    assert status_of(world.broker.url, token, customer_jwt_for(world.store, alice["id"])) is False
    [session] = sessions_of(world)
    assert session.ended_at is not None
    assert "logout" in {e.event for e in broker_state(world).storage.recent_audit("acme")}


def test_status_of_an_unknown_token_is_unknown(make_world: Callable[..., World]) -> None:
    world = make_world()
    pat = world.sandbox.state.add_customer(world.store.store_hash, email="pat@shop.example")
    for token in ("", "forged", "x" * 500):
        assert status_of(world.broker.url, token) == "unknown"
        jwt = customer_jwt_for(world.store, pat["id"])
        assert status_of(world.broker.url, token, jwt) == "unknown"


# -- forced logout: another site cannot sign a shopper out -------------------------------------


def signed_in_with_status(world: World, http: httpx.Client) -> str:
    """Sign alice in through the broker; the landing URL's status token."""
    outcome = sign_in(http, world.broker.url, "alice@example.com")
    landing = visit_storefront(http, outcome.location)
    return query(str(landing.url))["sso_session"]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def still_signed_in(world: World, http: httpx.Client, token: str) -> None:
    assert status_of(world.broker.url, token) is True, "the broker session is alive"
    assert [s.ended_at for s in sessions_of(world)] == [None]
    account = http.get(f"{world.storefront}/account.php")
    assert account.status_code == 200, "still signed in to the storefront"


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/prize"},
        {"Sec-Fetch-Site": "cross-site"},  # a page with a no-referrer policy
        {"Sec-Fetch-Site": "same-site", "Referer": "http://127.0.0.1:9/"},  # another origin
        {"Referer": "https://evil.example/prize"},  # an older browser: no Sec-Fetch-Site
    ],
)
def test_a_logout_another_site_sends_the_browser_to_asks_first(
    make_world: Callable[..., World], browser_http: httpx.Client, headers: dict[str, str]
) -> None:
    world = make_world(store={"follow_idp_logout": True})
    token = signed_in_with_status(world, browser_http)
    page = browser_http.get(f"{world.broker.url}/acme/logout", headers=headers)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Sign out of" in page.text
    still_signed_in(world, browser_http, token)

    # The shopper does mean it: the page's form signs them out.
    out = browser_http.post(
        f"{world.broker.url}/acme/logout", data={"csrf_token": csrf_of(page.text)}
    )
    assert out.status_code == 303
    assert out.headers["location"] == f"{world.storefront}/login.php?action=logout"
    assert [s.ended_at is not None for s in sessions_of(world)] == [True]


CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/prize"}
LOGOUT_BRANDING = {"name": "Acme Supply", "languages": ["de"], "primary_color": "#0a6e4f"}


def test_the_logout_page_wears_the_stores_branding(make_world: Callable[..., World]) -> None:
    world = make_world(store={"branding": LOGOUT_BRANDING})
    page = httpx.get(f"{world.broker.url}/acme/logout", headers=CROSS_SITE)
    assert page.status_code == 200
    assert page_field(page.text, "logout-title") == "Von Acme Supply abmelden?"
    assert page_field(page.text, "store-name") == "Acme Supply"
    assert "--brand: #0a6e4f;" in page.text


def test_the_logout_pages_of_a_stores_template_dir_are_used(
    make_world: Callable[..., World], tmp_path: Path
) -> None:
    folder = tmp_path / "acme-pages"
    folder.mkdir()
    (folder / "logout_confirm.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1 id="own-logout">{{ brand.name }}: '
        "{{ _('Sign out') }}</h1><form method=\"post\" action=\"{{ url_for('logout.logout', "
        'store_key=store.key) }}"><input type="hidden" name="csrf_token" '
        'value="{{ csrf_token() }}"><button>{{ channel.storefront_url }}</button></form>'
        "{% endblock %}"
    )
    (folder / "frontchannel_logout.html").write_text(
        '<!doctype html><p id="own-frontchannel">{{ brand.name }} {{ ended }}</p>'
    )
    world = make_world(store={"branding": {**LOGOUT_BRANDING, "template_dir": str(folder)}})
    own = httpx.get(f"{world.broker.url}/acme/logout", headers=CROSS_SITE)
    assert own.status_code == 200
    assert page_field(own.text, "own-logout") == "Acme Supply: Abmelden"
    assert f"<button>{world.storefront}</button>" in own.text
    assert 'name="csrf_token" value="' in own.text
    framed = httpx.get(f"{world.broker.url}/acme/oidc/corp/frontchannel-logout?sid=none")
    assert framed.status_code == 200
    assert page_field(framed.text, "own-frontchannel") == "Acme Supply 0"


def test_a_logout_post_without_the_csrf_token_changes_nothing(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"follow_idp_logout": True})
    token = signed_in_with_status(world, browser_http)
    outcome = Outcome(browser_http.post(f"{world.broker.url}/acme/logout", data={}))
    assert outcome.status == 400
    assert outcome.error_ref
    still_signed_in(world, browser_http, token)


@pytest.mark.parametrize("case", ["theme same-site", "theme cross-site", "typed in", "old browser"])
def test_the_themes_sign_out_link_still_signs_out_at_once(
    make_world: Callable[..., World], browser_http: httpx.Client, case: str
) -> None:
    world = make_world(store={"follow_idp_logout": True})
    signed_in_with_status(world, browser_http)
    headers = {
        "theme same-site": {"Sec-Fetch-Site": "same-site", "Referer": world.storefront + "/"},
        # The broker on another site than the store: the default referrer policy sends the
        # storefront's origin.
        "theme cross-site": {"Sec-Fetch-Site": "cross-site", "Referer": world.sandbox.url + "/"},
        "typed in": {"Sec-Fetch-Site": "none"},
        "old browser": {},
    }[case]
    out = browser_http.get(f"{world.broker.url}/acme/logout", headers=headers)
    assert out.status_code == 303
    assert out.headers["location"] == f"{world.storefront}/login.php?action=logout"
    assert [s.ended_at is not None for s in sessions_of(world)] == [True]


def test_a_status_token_planted_through_a_link_never_signs_out_another_shopper(
    make_world: Callable[..., World],
) -> None:
    # Mallory signs in, keeps her landing URL's status token and signs out: her session has
    # ended. She sends pat a storefront link carrying that token (?sso_session=...).
    world = make_world(store={"follow_idp_logout": True})
    with httpx.Client(follow_redirects=False) as mallory:
        planted = signed_in_with_status(world, mallory)
        mallory.get(f"{world.broker.url}/acme/logout")
    [mallory_customer] = world.customers()
    pat = world.sandbox.state.add_customer(world.store.store_hash, email="pat@shop.example")

    assert status_of(world.broker.url, planted) == "unknown"
    assert status_of(world.broker.url, planted, customer_jwt_for(world.store, pat["id"])) == (
        "unknown"
    ), "not pat's session: the script drops it"
    mallory_jwt = customer_jwt_for(world.store, mallory_customer["id"])
    assert status_of(world.broker.url, planted, mallory_jwt) is False


# -- back-channel: refusals (tokens signed by the dev IdP's key) ---------------------------------


def logout_claims(world: World, **over: Any) -> dict[str, Any]:
    return logout_claims_of(world.idp.url, **over)


def logout_claims_of(issuer: str, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": "broker",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "sub": "dev-alice",
        "events": {BACKCHANNEL: {}},
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(state: DevIdPState, claims: dict[str, Any]) -> str:
    return state.sign({"typ": "logout+jwt"}, claims)


CASES: dict[str, Callable[[World], str]] = {
    "alg none": lambda w: encode_unsecured({"alg": "none"}, logout_claims(w)),
    "HS256 keyed with the public key": lambda w: encode_hs256(
        {"alg": "HS256", "kid": w.idp.state.kid}, logout_claims(w), w.idp.state.public_pem()
    ),
    "wrong aud": lambda w: _signed(w.idp.state, logout_claims(w, aud="someone-else")),
    "wrong iss": lambda w: _signed(w.idp.state, logout_claims(w, iss="https://evil.example")),
    "no events": lambda w: _signed(w.idp.state, logout_claims(w, events=None)),
    "other event": lambda w: _signed(w.idp.state, logout_claims(w, events={"x": {}})),
    "with nonce": lambda w: _signed(w.idp.state, logout_claims(w, nonce="n")),
    "neither sid nor sub": lambda w: _signed(w.idp.state, logout_claims(w, sub=None)),
    "no jti": lambda w: _signed(w.idp.state, logout_claims(w, jti=None)),
    "too old": lambda w: _signed(w.idp.state, logout_claims(w, iat=int(time.time()) - 3600)),
    "no exp": lambda w: _signed(w.idp.state, logout_claims(w, exp=None)),
    "expired": lambda w: _signed(
        w.idp.state,
        logout_claims(w, iat=int(time.time()) - 200, exp=int(time.time()) - 100),
    ),
    # An ID token (typ JWT) is not a logout token, whatever its claims say.
    "typ JWT": lambda w: w.idp.state.sign({"typ": "JWT"}, logout_claims(w)),
    "typ of another kind": lambda w: w.idp.state.sign({"typ": "at+jwt"}, logout_claims(w)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_logout_tokens_are_refused_and_end_nothing(
    make_world: Callable[..., World], browser_http: httpx.Client, case: str
) -> None:
    world = make_world()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    answer = httpx.post(
        f"{world.broker.url}/acme/oidc/corp/backchannel-logout",
        data={"logout_token": CASES[case](world)},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"
    assert [s.ended_at for s in sessions_of(world)] == [None]


def test_a_good_logout_token_ends_the_sessions_once(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    assert sign_in(browser_http, world.broker.url, "bob@example.com").status == 303  # no names
    assert give_name(browser_http, world.broker.url, "Bob", "Builder").status == 302
    token = _signed(world.idp.state, logout_claims(world))
    url = f"{world.broker.url}/acme/oidc/corp/backchannel-logout"
    answer = httpx.post(url, data={"logout_token": token})
    assert answer.status_code == 200
    assert answer.json()["sessions_ended"] == 1
    ended = {s.subject: s.ended_at is not None for s in sessions_of(world)}
    assert ended == {"dev-alice": True, "dev-bob": False}
    replay = httpx.post(url, data={"logout_token": token})
    assert replay.status_code == 400


def test_a_logout_token_without_typ_is_accepted(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    # typ is checked when present; Back-Channel Logout 1.0 does not require it.
    world = make_world()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    key = world.idp.state.private_key
    header = {"alg": "RS256", "kid": key.kid}
    token = jws.serialize_compact(header, json.dumps(logout_claims(world)).encode(), key)
    answer = httpx.post(
        f"{world.broker.url}/acme/oidc/corp/backchannel-logout", data={"logout_token": token}
    )
    assert answer.status_code == 200, answer.text
    assert [s.ended_at is not None for s in sessions_of(world)] == [True]


def test_a_jti_used_at_one_connection_does_not_block_another(
    sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer]
) -> None:
    # Two IdPs each pick their own jti values: the replay check is per connection.
    second_app = create_idp_app(clients=())
    with serve_in_thread(second_app) as second:
        second_state: DevIdPState = second_app.extensions["dev_idp"]
        second_state.issuer = second.url
        store = sandbox.add_store("abc123")

        def connection(issuer: str) -> dict[str, Any]:
            return oidc_connection(issuer, secrets.token_urlsafe(24))

        def document(base_url: str) -> dict[str, Any]:
            connections = {"corp": connection(dev_idp.url), "partner": connection(second.url)}
            return settings_document(
                base_url, {"acme": store_table(sandbox.url, store, connections=connections)}
            )

        broker = make_broker(document)
        jti = str(uuid.uuid4())
        for conn, state, issuer in (
            ("corp", dev_idp.state, dev_idp.url),
            ("partner", second_state, second.url),
        ):
            token = _signed(state, logout_claims_of(issuer, jti=jti))
            url = f"{broker.url}/acme/oidc/{conn}/backchannel-logout"
            answer = httpx.post(url, data={"logout_token": token})
            assert answer.status_code == 200, (conn, answer.text)
            replay = httpx.post(url, data={"logout_token": token})
            assert replay.status_code == 400
            assert "already used" in replay.json()["error_description"]


# -- against oidc-provider: RP-initiated and back-channel ---------------------------------------


@pytest.fixture
def op_world(tmp_path: Path, sandbox: Sandbox) -> Iterator[dict[str, Any]]:
    """oidc-provider with logout URIs registered, a store, and the broker under gunicorn."""
    port = free_port()
    broker_url = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(24)
    client = {
        "client_id": "acme-broker",
        "client_secret": secret,
        "redirect_uris": [f"{broker_url}/acme/oidc/corp/callback"],
        "post_logout_redirect_uris": [f"{broker_url}/acme/logout/done"],
        "backchannel_logout_uri": f"{broker_url}/acme/oidc/corp/backchannel-logout",
        "backchannel_logout_session_required": True,
    }
    accounts = {"alice": {"email": "alice@corp.example", "email_verified": True, "name": "Alice M"}}
    store = sandbox.add_store("acme1")
    with start_oidc_provider(clients=[client], accounts=accounts) as provider:

        def document(base_url: str) -> dict[str, Any]:
            corp = oidc_connection(
                provider.issuer, secret, client_id="acme-broker", idp_logout=True
            )
            acme = store_table(
                sandbox.url, store, follow_idp_logout=True, connections={"corp": corp}
            )
            return settings_document(
                base_url, {"acme": acme}, database_url=f"sqlite:///{tmp_path / 'broker.db'}"
            )

        with broker_serve(tmp_path, document, port=port) as url:
            yield {"broker": url, "provider": provider, "sandbox": sandbox, "store": store}


def _op_sign_in(op_world: dict[str, Any], http: httpx.Client) -> str:
    broker = op_world["broker"]
    authorize = start_login(http, broker, "/acme/login/corp")
    callback = complete_login(http, authorize, "alice", stop_at=f"{broker}/acme/oidc/corp/callback")
    outcome = Outcome(http.get(callback))
    assert outcome.status == 302, outcome.response.text
    landing = visit_storefront(http, outcome.location)
    return query(str(landing.url))["sso_session"]


def test_rp_initiated_logout_signs_out_of_the_idp_and_the_storefront(
    op_world: dict[str, Any], browser_http: httpx.Client
) -> None:
    broker, provider = op_world["broker"], op_world["provider"]
    status_token = _op_sign_in(op_world, browser_http)
    out = browser_http.get(f"{broker}/acme/logout")
    assert out.status_code == 303
    end_session = out.headers["location"]
    assert end_session.startswith(provider.issuer)
    params = query(end_session)
    assert params["post_logout_redirect_uri"] == f"{broker}/acme/logout/done"
    assert params["id_token_hint"].count(".") == 2
    back = complete_logout(browser_http, end_session, stop_at=f"{broker}/acme/logout/done")
    assert query(back)["state"] == params["state"]
    done = browser_http.get(back)
    assert done.status_code == 303
    storefront = op_world["sandbox"].storefront("acme1")
    assert done.headers["location"] == f"{storefront}/login.php?action=logout"
    [customer] = op_world["sandbox"].state.customers("acme1")
    jwt = customer_jwt_for(op_world["store"], customer["id"])
    assert status_of(broker, status_token, jwt) is False
    # The IdP session is gone too: a new sign-in in the same browser must show the IdP's
    # login form again (complete_login fails when the IdP skips it for a live session).
    assert _op_sign_in(op_world, browser_http)


def test_rp_logout_return_with_a_forged_state_still_ends_at_the_storefront(
    op_world: dict[str, Any], browser_http: httpx.Client
) -> None:
    # The broker session ended before the IdP: a bad state must not leave the shopper signed
    # in to the storefront on an error page.
    for state in ("forged", ""):
        done = browser_http.get(f"{op_world['broker']}/acme/logout/done?state={state}")
        assert done.status_code == 303
        storefront = op_world["sandbox"].storefront("acme1")
        assert done.headers["location"] == f"{storefront}/login.php?action=logout"


def test_backchannel_logout_from_the_idp_ends_the_broker_session(
    op_world: dict[str, Any], browser_http: httpx.Client
) -> None:
    broker, provider = op_world["broker"], op_world["provider"]
    status_token = _op_sign_in(op_world, browser_http)
    # The person signs out at the IdP itself (another application's logout, say).
    metadata = httpx.get(f"{provider.issuer}/.well-known/openid-configuration").json()
    complete_logout(browser_http, metadata["end_session_endpoint"])
    deadline = time.monotonic() + 10
    active = True
    while active and time.monotonic() < deadline:
        active = status_of(broker, status_token) is True
        time.sleep(0.1)
    assert active is False, "the IdP's logout token ended the broker session"


def test_the_storefront_follows_an_idp_side_logout_in_a_browser(
    make_world: Callable[..., World],
) -> None:
    from playwright.sync_api import sync_playwright

    world = make_world(theme_script=True, store={"follow_idp_logout": True})
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
            headless=True,
        )
        try:
            page = browser.new_page()
            page.goto(world.storefront + "/")
            page.click("#sso-link")
            page.fill("#email", "alice@example.com")
            page.fill("#password", "password")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#customer-email")
            page.wait_for_function("() => !location.search.includes('sso_session')")
            # Kept once the broker says it is this signed-in customer's session.
            page.wait_for_function("() => localStorage.getItem('sso_session') !== null")
            assert page_field(page.content(), "customer-email") == "alice@example.com"

            # The company ends her session: a logout token from the IdP, back-channel.
            token = _signed(world.idp.state, logout_claims(world))
            answer = httpx.post(
                f"{world.broker.url}/acme/oidc/corp/backchannel-logout",
                data={"logout_token": token},
            )
            assert answer.status_code == 200

            # The next storefront page view notices and signs the storefront out.
            page.evaluate("() => sessionStorage.clear()")
            page.goto(world.storefront + "/account.php")
            # The script sends the browser through /login.php?action=logout, which lands home.
            page.wait_for_url(world.storefront + "/", timeout=10_000)
            page.goto(world.storefront + "/account.php")
            assert "/login.php" in page.url
        finally:
            browser.close()


def test_a_status_token_planted_in_a_storefront_link_does_not_sign_the_shopper_out(
    make_world: Callable[..., World],
) -> None:
    """Someone else's ended status token in a link (``?sso_session=``) changes nothing for the
    shopper who opens it: the script asks with the storefront's word on who is signed in."""
    from playwright.sync_api import sync_playwright

    world = make_world(theme_script=True, store={"follow_idp_logout": True})
    with httpx.Client(follow_redirects=False) as mallory:
        planted = signed_in_with_status(world, mallory)
        mallory.get(f"{world.broker.url}/acme/logout")
    world.sandbox.state.add_customer(
        world.store.store_hash, email="pat@shop.example", password="s3cret-pass"
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            headless=True,
        )
        try:
            page = browser.new_page()
            page.goto(f"{world.storefront}/login.php")
            page.fill("#login-email", "pat@shop.example")
            page.fill("#login-password", "s3cret-pass")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#customer-email")

            with page.expect_response(lambda r: "/session/status" in r.url) as answer:
                page.goto(f"{world.storefront}/account.php?sso_session={planted}")
            assert answer.value.json() == {"active": "unknown"}
            page.wait_for_load_state("networkidle")
            assert page.evaluate("() => localStorage.getItem('sso_session')") is None
            page.goto(f"{world.storefront}/account.php")
            page.wait_for_load_state("networkidle")
            assert page_field(page.content(), "customer-email") == "pat@shop.example"
        finally:
            browser.close()
