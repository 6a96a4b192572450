"""OpenID Connect front-channel logout (some IdPs only do that, LemonLDAP::NG and Entra ID
among them): the IdP's logout page loads ``{base_url}/{store}/oidc/{conn}/frontchannel-logout
?iss=...&sid=...`` in an iframe, and the broker sessions of that ``sid`` end, as a back-channel
logout token would end them.

The development IdP plays the IdP: a client with a ``frontchannel_logout_uri`` gets a ``sid``
in its ID tokens, and ``/_frontchannel-logout?sub=...`` is its logout page. One test runs it in
headless Chromium, where the iframe must be allowed to render (CSP ``frame-ancestors``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from tests.conftest import World
from tests.support.flows import give_name, query, sign_in, visit_storefront

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def frontchannel_world(make_world: Callable[..., World], **client: Any) -> World:
    """A world whose IdP client registered the broker's front-channel logout URI."""
    world = make_world(**client.pop("world", {}))
    state = world.idp.state
    registered = state.client("broker")
    assert registered is not None
    state.add_client(replace(registered, frontchannel_logout_uri=logout_uri(world), **client))
    return world


def logout_uri(world: World) -> str:
    return f"{world.broker.url}/acme/oidc/corp/frontchannel-logout"


def sessions_of(world: World) -> dict[str, Any]:
    """The broker's sessions by subject."""
    from sqlalchemy import select

    from broker.storage import BrokerSession, sessions

    storage = world.broker.app.extensions["broker"].storage
    with storage.engine.connect() as conn:
        found = [BrokerSession(**row._mapping) for row in conn.execute(select(sessions))]
    return {s.subject: s for s in found}


def ended(world: World) -> dict[str, bool]:
    return {subject: s.ended_at is not None for subject, s in sessions_of(world).items()}


def frames_of(page: str) -> list[str]:
    return [src.replace("&amp;", "&") for src in re.findall(r'<iframe[^>]* src="([^"]+)"', page)]


def signed_in(world: World, *emails: str) -> None:
    for email in emails:
        with httpx.Client(follow_redirects=False, timeout=20) as http:
            outcome = sign_in(http, world.broker.url, email)
            if email == "bob@example.com":  # his IdP sends no names: he is asked them first
                assert outcome.status == 303
                outcome = give_name(http, world.broker.url, "Bob", "Builder")
            assert outcome.status == 302


def test_the_idps_logout_page_ends_the_sessions_of_its_sid(
    make_world: Callable[..., World],
) -> None:
    world = frontchannel_world(make_world)
    signed_in(world, "alice@example.com", "bob@example.com")
    sids = {subject: s.sid for subject, s in sessions_of(world).items()}
    assert all(sids.values()), "the IdP sent a sid, kept with each session"

    page = httpx.get(f"{world.idp.url}/_frontchannel-logout", params={"sub": "dev-alice"})
    [frame] = frames_of(page.text)
    assert query(frame) == {"iss": world.idp.url, "sid": sids["dev-alice"]}
    answer = httpx.get(frame)  # what the iframe loads: no cookie, no CSRF token

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-store"
    csp = answer.headers["content-security-policy"]
    ancestors = re.search(r"frame-ancestors ([^;]+)", csp)
    assert ancestors is not None, csp
    assert ancestors.group(1).split() == [world.idp.url], csp
    assert "Signed out" in answer.text
    assert ended(world) == {"dev-alice": True, "dev-bob": False}
    storage = world.broker.app.extensions["broker"].storage
    assert "frontchannel" in {e.outcome for e in storage.recent_audit("acme")}


def test_an_idp_that_sends_only_the_sid_is_accepted(
    make_world: Callable[..., World],
) -> None:
    # Entra ID sends ?sid=... and no iss: the URL names the connection already.
    world = frontchannel_world(make_world, frontchannel_logout_iss=False)
    signed_in(world, "alice@example.com")
    page = httpx.get(f"{world.idp.url}/_frontchannel-logout", params={"sub": "dev-alice"})
    [frame] = frames_of(page.text)
    assert set(query(frame)) == {"sid"}
    assert httpx.get(frame).status_code == 200
    assert ended(world) == {"dev-alice": True}


@pytest.mark.parametrize(
    "params",
    [
        {"iss": "https://evil.example", "sid": "SID"},
        {"iss": "IDP/", "sid": "SID"},  # verbatim: a trailing "/" is another issuer
        {"iss": "IDP"},
        {},
    ],
    ids=["another iss", "iss with a trailing slash", "no sid", "nothing"],
)
def test_a_wrong_iss_or_a_missing_sid_is_400_and_ends_nothing(
    make_world: Callable[..., World], params: dict[str, str]
) -> None:
    world = frontchannel_world(make_world)
    signed_in(world, "alice@example.com")
    sid = sessions_of(world)["dev-alice"].sid
    values = {
        k: v.replace("IDP", world.idp.url).replace("SID", str(sid)) for k, v in params.items()
    }
    answer = httpx.get(logout_uri(world), params=values)
    assert answer.status_code == 400
    assert "not accepted" in answer.text
    assert ended(world) == {"dev-alice": False}


def test_an_unknown_sid_ends_nothing(make_world: Callable[..., World]) -> None:
    world = frontchannel_world(make_world)
    signed_in(world, "alice@example.com")
    answer = httpx.get(logout_uri(world), params={"iss": world.idp.url, "sid": "someone-else"})
    assert answer.status_code == 200
    assert ended(world) == {"dev-alice": False}
    storage = world.broker.app.extensions["broker"].storage
    assert "frontchannel" not in {e.outcome for e in storage.recent_audit("acme")}, (
        "a call that ended nothing leaves no audit row (anyone can make one)"
    )


def test_without_a_required_sid_the_iframes_cookie_names_the_session(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    # An IdP on the broker's own site (here both are on 127.0.0.1) may send no sid at all: its
    # iframe carries the broker's SameSite=Lax cookie.
    world = frontchannel_world(
        make_world,
        frontchannel_logout_session_required=False,
        world={"connection": {"frontchannel_logout_session_required": False}},
    )
    signed_in(world, "bob@example.com")  # another browser
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    page = httpx.get(f"{world.idp.url}/_frontchannel-logout", params={"sub": "dev-alice"})
    [frame] = frames_of(page.text)
    assert frame == logout_uri(world), "neither iss nor sid"

    assert httpx.get(frame).status_code == 200, "no cookie: nothing to end, and no error"
    assert ended(world) == {"dev-alice": False, "dev-bob": False}
    assert browser_http.get(frame).status_code == 200
    assert ended(world) == {"dev-alice": True, "dev-bob": False}


def test_an_unknown_connection_is_404(make_world: Callable[..., World]) -> None:
    world = frontchannel_world(make_world)
    answer = httpx.get(f"{world.broker.url}/acme/oidc/nope/frontchannel-logout?sid=x")
    assert answer.status_code == 404


def test_the_storefront_follows_a_frontchannel_logout(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = frontchannel_world(make_world, world={"store": {"follow_idp_logout": True}})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    token = query(str(visit_storefront(browser_http, outcome.location).url))["sso_session"]
    status = f"{world.broker.url}/acme/session/status"
    assert httpx.get(status, params={"s": token}).json() == {"active": True}
    page = httpx.get(f"{world.idp.url}/_frontchannel-logout", params={"sub": "dev-alice"})
    [frame] = frames_of(page.text)
    assert httpx.get(frame).status_code == 200
    assert httpx.get(status, params={"s": token}).json() == {"active": "unknown"}


@pytest.mark.browser
def test_the_idps_iframe_renders_the_logout_in_chromium(
    make_world: Callable[..., World],
) -> None:
    from playwright.sync_api import sync_playwright

    world = frontchannel_world(make_world)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            shopper = browser.new_context().new_page()
            shopper.goto(f"{world.broker.url}/acme/login/corp?redirect_to=/account.php")
            shopper.fill("#email", "alice@example.com")
            shopper.fill("#password", "password")
            shopper.get_by_role("button", name="Sign in").click()
            shopper.wait_for_selector("#customer-email")
            assert ended(world) == {"dev-alice": False}

            # The IdP's logout page, on another origin, frames the broker's logout URI.
            shopper.goto(f"{world.idp.url}/_frontchannel-logout?sub=dev-alice")
            frame = shopper.frame_locator("iframe.rp-logout")
            frame.locator("#frontchannel-title").wait_for(timeout=10_000)
            assert frame.locator("#frontchannel-title").inner_text() == "Signed out"
            assert ended(world) == {"dev-alice": True}
        finally:
            browser.close()


def test_the_connection_test_publishes_the_logout_uris(make_world: Callable[..., World]) -> None:
    from broker.admin.checks import test_connection

    world = frontchannel_world(make_world)
    report = test_connection(world.broker.app.extensions["broker"], "acme", "corp")
    facts = report["facts"]
    assert facts["frontchannel_logout_uri"] == logout_uri(world)
    base = f"{world.broker.url}/acme/oidc/corp"
    assert facts["backchannel_logout_uri"] == f"{base}/backchannel-logout"
    assert facts["frontchannel_logout_supported"] is True  # the dev IdP's discovery says so
