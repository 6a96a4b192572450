"""Multi-storefront end to end: one connection signing shoppers in on several channels of a
store, over real HTTP (the broker, the development IdP, the sandbox with a storefront per
channel: channel 1 at /s/<hash>/, channel 2 at /s/<hash>/c/2/)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from broker.storage import open_storage
from tests.conftest import Sandbox, World
from tests.support.flows import page_field, sign_in, visit_storefront

HASH = "abc123"  # the store make_world registers


def two_channels(
    make_world: Callable[..., World],
    sandbox: Sandbox,
    *,
    platform: str = "stencil",
    connection: dict[str, Any] | None = None,
) -> World:
    second = {"storefront_url": f"{sandbox.storefront(HASH)}/c/2", "platform": platform}
    return make_world(
        store={"channels": {"2": second}},
        sandbox_store={
            "channel_ids": (1, 2),
            "channel_names": ("Retail", "Wholesale"),
            "catalyst_channels": (2,) if platform == "catalyst" else (),
        },
        connection=connection,
    )


def account_of(http: httpx.Client, landing_url: str) -> tuple[str | None, str | None]:
    page = visit_storefront(http, landing_url)
    assert page.status_code == 200, page.text
    return page_field(page.text, "customer-id"), page_field(page.text, "customer-email")


def test_one_connection_signs_in_as_each_channels_own_customer(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    world = two_channels(make_world, sandbox)
    add = world.sandbox.state.add_customer
    retail = add(HASH, email="alice@example.com", channel_ids=[1], first_name="R")
    wholesale = add(HASH, email="alice@example.com", channel_ids=[2], first_name="W")

    first = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert first.location.startswith(f"{world.storefront}/login/token/")
    assert account_of(browser_http, first.location) == (str(retail["id"]), "alice@example.com")

    second = sign_in(
        browser_http, world.broker.url, "alice@example.com", path="/acme/login/corp?channel=2"
    )
    assert second.location.startswith(f"{world.storefront}/c/2/login/token/")
    assert account_of(browser_http, second.location) == (str(wholesale["id"]), "alice@example.com")
    assert [login["claims"]["channel_id"] for login in world.logins()] == [1, 2]
    assert all(login["ok"] for login in world.logins())
    # Each storefront has its session: channel 1's still shows the retail customer.
    page = browser_http.get(f"{world.storefront}/account.php")
    assert page_field(page.text, "customer-id") == str(retail["id"])

    # One link per channel: a returning sign-in on either costs the store no request.
    storage = open_storage(world.broker.settings.broker.database_url)
    try:
        links = {
            link.channel_id: link.customer_id
            for customer in (retail["id"], wholesale["id"])
            for link in storage.links_for_customer("acme", customer)
        }
    finally:
        storage.close()
    assert links == {0: retail["id"], 2: wholesale["id"]}
    world.sandbox.state.clear_requests(HASH)
    again = sign_in(
        browser_http, world.broker.url, "alice@example.com", path="/acme/login/corp?channel=2"
    )
    assert account_of(browser_http, again.location)[0] == str(wholesale["id"])
    assert world.sandbox.state.requests(HASH) == []


def test_jit_on_channel_2_creates_a_channel_2_customer(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    world = two_channels(make_world, sandbox)
    world.sandbox.state.add_customer(HASH, email="alice@example.com", channel_ids=[1])

    outcome = sign_in(
        browser_http, world.broker.url, "alice@example.com", path="/acme/login/corp?channel=2"
    )
    created = next(c for c in world.customers() if c["channel_ids"] == [2])
    assert created["origin_channel_id"] == 2
    assert len(world.customers()) == 2
    assert account_of(browser_http, outcome.location)[0] == str(created["id"])


@pytest.mark.parametrize("channel", ["3", "0", "two", "2"])
def test_a_channel_the_store_has_not_or_the_connection_is_not_offered_on_is_refused(
    make_world: Callable[..., World],
    sandbox: Sandbox,
    browser_http: httpx.Client,
    channel: str,
) -> None:
    # corp is offered on channel 1 only; the store has no channel 3.
    world = two_channels(make_world, sandbox, connection={"channels": [1]})
    response = browser_http.get(f"{world.broker.url}/acme/login/corp", params={"channel": channel})
    assert response.status_code == 404, response.text
    assert "not available on this storefront" in response.text
    assert "Traceback" not in response.text
    assert "set-cookie" not in response.headers  # no flow started, nothing stored
    assert world.customers() == []
    assert world.logins() == []


def test_a_redirect_to_on_another_channels_storefront_chooses_that_channel(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    world = two_channels(make_world, sandbox)
    target = f"{world.storefront}/c/2/cart.php?suggest=1"
    outcome = sign_in(
        browser_http,
        world.broker.url,
        "alice@example.com",
        path=f"/acme/login/corp?{httpx.QueryParams(redirect_to=target)}",
    )
    assert outcome.location.startswith(f"{world.storefront}/c/2/login/token/")
    landed = browser_http.get(outcome.location)
    assert landed.headers["location"] == f"/s/{HASH}/c/2/cart.php?suggest=1"
    [login] = world.logins()
    assert (login["ok"], login["claims"]["channel_id"]) == (True, 2)
    [customer] = world.customers()
    assert customer["channel_ids"] == [2]


def test_a_redirect_to_on_another_channel_than_the_one_named_is_dropped(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    world = two_channels(make_world, sandbox)
    query = httpx.QueryParams(channel="1", redirect_to=f"{world.storefront}/c/2/x")
    outcome = sign_in(
        browser_http, world.broker.url, "alice@example.com", path=f"/acme/login/corp?{query}"
    )
    assert outcome.location.startswith(f"{world.storefront}/login/token/")
    visit_storefront(browser_http, outcome.location)
    [login] = world.logins()
    assert (login["claims"]["channel_id"], login["claims"]["redirect_to"]) == (1, "/account.php")


def test_logout_on_a_catalyst_channel_uses_catalysts_logout(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    world = two_channels(make_world, sandbox, platform="catalyst")
    outcome = sign_in(
        browser_http, world.broker.url, "alice@example.com", path="/acme/login/corp?channel=2"
    )
    assert outcome.location.startswith(f"{world.storefront}/c/2/login/token/")
    visit_storefront(browser_http, outcome.location)
    # Catalyst's own account page is the channel's default_redirect.
    [login] = world.logins()
    assert (login["claims"]["channel_id"], login["claims"]["redirect_to"]) == (2, "/account/orders")

    # The theme's link on that storefront (its Referer names channel 2's storefront).
    response = browser_http.get(
        f"{world.broker.url}/acme/logout",
        params={"redirect_to": "/cart?x=1"},
        headers={"Sec-Fetch-Site": "same-site", "Referer": f"{world.storefront}/c/2/account"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"{world.storefront}/c/2/logout?redirectTo=/cart"
    landed = browser_http.get(response.headers["location"])
    assert landed.headers["location"] == f"/s/{HASH}/c/2/cart"
    page = browser_http.get(f"{world.storefront}/c/2/account.php")
    assert page.status_code == 302  # signed out: sent to the login page


def test_logout_names_its_channel_and_the_default_channel_is_as_before(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    world = two_channels(make_world, sandbox)
    for params, landing in (
        ({}, f"{world.storefront}/login.php?action=logout"),
        ({"channel": "2"}, f"{world.storefront}/c/2/login.php?action=logout"),
        ({"channel": "9"}, f"{world.storefront}/login.php?action=logout"),
    ):
        response = browser_http.get(f"{world.broker.url}/acme/logout", params=params)
        assert response.status_code == 303
        assert response.headers["location"] == landing


def test_the_chooser_lists_the_connections_of_its_channel(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    world = two_channels(make_world, sandbox, connection={"channels": [2]})
    # No connection on the default channel: the chooser offers only the store's own password.
    assert "/acme/login/corp" not in browser_http.get(f"{world.broker.url}/acme/login").text
    page = browser_http.get(f"{world.broker.url}/acme/login", params={"channel": "2"}).text
    [link] = re.findall(r'href="(/acme/login/corp\?[^"]*)"', page)
    assert dict(httpx.QueryParams(link.split("?", 1)[1].replace("&amp;", "&"))) == {
        "redirect_to": "/account.php",
        "channel": "2",
    }
    # Without a hint, a connection offered only on channel 2 signs in there.
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.location.startswith(f"{world.storefront}/c/2/login/token/")


def test_linking_from_another_channels_storefront_links_on_that_channel(
    make_world: Callable[..., World], sandbox: Sandbox, browser_http: httpx.Client
) -> None:
    from tests.flows.test_linking import csrf_of, current_customer_jwt

    world = two_channels(make_world, sandbox)
    second = f"{sandbox.storefront(HASH)}/c/2"
    pat = world.sandbox.state.add_customer(HASH, email="pat@shop.example", channel_ids=[2])
    broker = world.broker.url

    # The channel's own script names its channel in every linking URL.
    script = browser_http.get(f"{broker}/acme/storefront.js", params={"channel": 2}).text
    assert f"{broker}/acme/link/nonce?channel=2" in script
    back = browser_http.get(
        f"{broker}/acme/link/nonce", params={"channel": 2, "return": "/account.php"}
    )
    page, _, nonce = back.headers["location"].partition("#sso-link-nonce=")
    assert page == f"{second}/account.php"
    # A start posted from channel 2's storefront to the default channel's URL is refused...
    data = {"customer_jwt": current_customer_jwt(world, pat), "nonce": nonce}
    wrong = browser_http.post(
        f"{broker}/acme/link/start", data=data, headers={"Origin": "https://elsewhere.example"}
    )
    assert wrong.status_code == 403
    started = browser_http.post(
        f"{broker}/acme/link/start?channel=2", data=data, headers={"Origin": sandbox.url}
    )
    assert started.status_code == 303, started.text
    finished = browser_http.get(broker + started.headers["location"])
    manage = browser_http.get(broker + finished.headers["location"])
    to_idp = browser_http.post(
        f"{broker}/acme/link/connect/corp", data={"csrf_token": csrf_of(manage.text)}
    )
    browser_http.get(to_idp.headers["location"])
    answer = browser_http.post(
        to_idp.headers["location"], data={"email": "alice@example.com", "password": "password"}
    )
    assert browser_http.get(answer.headers["location"]).status_code == 303

    [link] = open_storage(world.broker.settings.broker.database_url).links_for_customer(
        "acme", pat["id"]
    )
    assert link.channel_id == 2
    # Alice's company sign-in on channel 2 now opens Pat's channel-2 account.
    outcome = sign_in(browser_http, broker, "alice@example.com", path="/acme/login/corp?channel=2")
    assert outcome.location.startswith(f"{second}/login/token/")
    assert account_of(browser_http, outcome.location) == (str(pat["id"]), "pat@shop.example")
