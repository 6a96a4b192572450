"""The sandbox's channels: a storefront per channel, and the API describing them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from broker.bigcommerce.login_token import mint_login_token
from broker.sandbox.store import SandboxStore
from tests.conftest import Sandbox

HASH = "abc123"


def shop(sandbox: Sandbox, **fields: Any) -> SandboxStore:
    fields.setdefault("channel_ids", (1, 2))
    return sandbox.add_store(HASH, name="Acme", **fields)


def token(store: SandboxStore, customer_id: int, channel_id: int | None) -> str:
    return mint_login_token(
        client_id=store.client_id,
        client_secret=store.client_secret,
        store_hash=HASH,
        customer_id=customer_id,
        channel_id=channel_id or 1,
        redirect_to="/account.php",
        now=int(time.time()),
        jti=str(uuid.uuid4()),
    )


def api(sandbox: Sandbox, store: SandboxStore, path: str, **params: str) -> Any:
    response = httpx.get(
        f"{sandbox.url}/stores/{HASH}/{path}",
        params=params,
        headers={"X-Auth-Token": store.access_token},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_the_store_its_channels_and_their_sites(sandbox: Sandbox) -> None:
    store = shop(sandbox, channel_ids=(1, 2, 3), catalyst_channels=(2,))
    info = api(sandbox, store, "v2/store")
    assert (info["id"], info["name"]) == (HASH, "Acme")
    assert info["secure_url"] == sandbox.storefront(HASH)
    assert info["domain"] == sandbox.storefront(HASH).split("://", 1)[1]

    channels = api(sandbox, store, "v3/channels")["data"]
    assert [(c["id"], c["type"], c["platform"], c["status"]) for c in channels] == [
        (1, "storefront", "bigcommerce", "active"),
        (2, "storefront", "catalyst", "active"),
        (3, "storefront", "bigcommerce", "active"),
    ]
    assert channels[0]["name"] == "Acme"

    sites = api(sandbox, store, "v3/sites", **{"channel_id:in": "1,2"})["data"]
    assert [(s["channel_id"], s["url"]) for s in sites] == [
        (1, sandbox.storefront(HASH)),
        (2, f"{sandbox.storefront(HASH)}/c/2"),
    ]
    assert [u["type"] for u in sites[1]["urls"]] == ["primary", "canonical", "checkout"]
    assert {u["url"] for u in sites[1]["urls"]} == {f"{sandbox.storefront(HASH)}/c/2"}


def test_a_channel_storefront_takes_only_its_own_channels_token(sandbox: Sandbox) -> None:
    store = shop(sandbox)
    state = sandbox.state
    on_two = state.add_customer(HASH, email="w@example.com", channel_ids=[2])
    on_one = state.add_customer(HASH, email="r@example.com", channel_ids=[1])
    everywhere = state.add_customer(HASH, email="g@example.com")
    second = f"{sandbox.storefront(HASH)}/c/2"
    with httpx.Client() as browser:
        refused = browser.get(f"{second}/login/token/{token(store, everywhere['id'], 1)}")
        assert refused.headers["location"] == f"/s/{HASH}/c/2/login.php?error=invalid_login"
        assert state.logins(HASH)[-1]["reason"].startswith("channel_id is another channel")
        refused = browser.get(f"{second}/login/token/{token(store, on_one['id'], 2)}")
        assert state.logins(HASH)[-1]["reason"] == "the customer may not sign in on this channel"
        assert browser.get(f"{second}/account.php").status_code == 302  # nobody signed in

        ok = browser.get(f"{second}/login/token/{token(store, on_two['id'], 2)}")
        assert ok.headers["location"] == f"/s/{HASH}/c/2/account.php"
        page = browser.get(f"{second}/account.php")
        assert 'id="customer-email">w@example.com' in page.text.replace("\n", "")
        # Channel 1's storefront has a session of its own: nobody there.
        assert browser.get(f"{sandbox.storefront(HASH)}/account.php").status_code == 302
        jwt = browser.get(
            f"{second}/customer/current.jwt", params={"app_client_id": store.client_id}
        )
        assert jwt.status_code == 200
        browser.get(f"{second}/login.php", params={"action": "logout"})
        assert browser.get(f"{second}/account.php").status_code == 302


def test_a_catalyst_channel_logs_out_at_logout_keeping_only_the_path(sandbox: Sandbox) -> None:
    store = shop(sandbox, catalyst_channels=(2,))
    customer = sandbox.state.add_customer(HASH, email="w@example.com", channel_ids=[2])
    second = f"{sandbox.storefront(HASH)}/c/2"
    with httpx.Client() as browser:
        browser.get(f"{second}/login/token/{token(store, customer['id'], 2)}")
        out = browser.get(f"{second}/logout", params={"redirectTo": "/cart?x=1#top"})
        assert out.headers["location"] == f"/s/{HASH}/c/2/cart"
        assert browser.get(f"{second}/account.php").status_code == 302


def test_a_channel_without_a_storefront_of_its_own_is_not_found(sandbox: Sandbox) -> None:
    shop(sandbox)
    for path in ("c/3/", "c/1/", "c/3/account.php"):
        response = httpx.get(f"{sandbox.storefront(HASH)}/{path}")
        assert response.status_code == 404
        assert "Store not found" in response.text
