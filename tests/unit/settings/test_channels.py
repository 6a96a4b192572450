"""The store's ``channels`` and a connection's ``channels``: TOML and JSON documents alike."""

from __future__ import annotations

from typing import Any

import pytest

from broker.config import parse_settings
from broker.errors import ConfigError
from broker.settings import BrokerSettings, parse_store_document


def store(**more: Any) -> dict[str, Any]:
    conn = {"type": "oidc", "issuer": "https://idp.example", "client_id": "b", "client_secret": "x"}
    conn.update(more.pop("connection", {}))
    return {
        "store_hash": "abc123",
        "access_token": "t",
        "client_id": "c",
        "client_secret": "s",
        "storefront_url": "https://shop.acme.com",
        "connections": {"corp": conn},
        **more,
    }


def problems(document: dict[str, Any]) -> list[str]:
    data = {"broker": {"base_url": "https://sso.example.com", "secret_key": "k" * 32}}
    with pytest.raises(ConfigError) as caught:
        parse_settings({**data, "stores": {"acme": document}}, env={})
    return [str(line) for line in caught.value.problems]


def test_channels_with_the_default_one_first_and_platform_defaults() -> None:
    data = {"broker": {"base_url": "https://sso.example.com", "secret_key": "k" * 32}}
    document = store(
        channels={"2": {"storefront_url": "https://wholesale.acme.com/", "platform": "catalyst"}},
        connection={"channels": [2]},
    )
    settings = parse_settings({**data, "stores": {"acme": document}}, env={}).stores["acme"]
    assert list(settings.channels) == [1, 2]
    default, wholesale = settings.channels.values()
    assert (default.storefront_url, default.platform, default.default_redirect) == (
        "https://shop.acme.com",
        "stencil",
        "/account.php",
    )
    assert (wholesale.storefront_url, wholesale.platform, wholesale.default_redirect) == (
        "https://wholesale.acme.com",
        "catalyst",
        "/account/orders",
    )
    assert settings.connections["corp"].channels == (2,)
    assert settings.connections["corp"].offered_on(2)
    assert not settings.connections["corp"].offered_on(1)


def test_a_json_document_gives_the_same_channels() -> None:
    broker = BrokerSettings(base_url="https://sso.example.com", secret_key="k" * 32)
    document = store(
        channel_id=3,
        default_redirect="/home",
        channels={"2": {"storefront_url": "https://b2b.acme.com"}},
    )
    settings = parse_store_document("acme", document, broker)
    assert [(c.id, c.default_redirect) for c in settings.channels.values()] == [
        (3, "/home"),
        (2, "/home"),  # the store's own default_redirect, since it sets one
    ]


@pytest.mark.parametrize(
    ("channels", "connection", "expected"),
    [
        (
            {"1": {"storefront_url": "https://other.acme.com"}},
            {},
            "stores.acme.channels.1: is the store's default channel (channel_id)",
        ),
        ({"two": {"storefront_url": "https://b.acme.com"}}, {}, "stores.acme.channels.two:"),
        ({"02": {"storefront_url": "https://b.acme.com"}}, {}, "stores.acme.channels.02:"),
        ({"2": {}}, {}, "stores.acme.channels.2.storefront_url: is required"),
        (
            {"2": {"storefront_url": "https://b.acme.com", "platform": "next"}},
            {},
            "stores.acme.channels.2.platform: must be one of stencil, catalyst",
        ),
        (
            {"2": {"storefront_url": "https://SHOP.acme.com/"}},
            {},
            "stores.acme.channels.2.storefront_url: is also the store's storefront_url",
        ),
        ({"2": {"storefront_url": "http://b.acme.com"}}, {}, "must use https"),
        ({"2": {"storefront_url": "https://b.acme.com", "colour": 1}}, {}, "unknown key"),
        (None, {"channels": [2]}, "stores.acme.connections.corp.channels: channel 2 is not"),
        (
            {"2": {"storefront_url": "https://b.acme.com"}},
            {"channels": [2, 3, 4]},
            "stores.acme.connections.corp.channels: channels 3, 4 are not",
        ),
        (None, {"channels": ["2"]}, "stores.acme.connections.corp.channels: must be a list"),
    ],
)
def test_bad_channel_keys_are_named(
    channels: dict[str, Any] | None, connection: dict[str, Any], expected: str
) -> None:
    document = store(connection=connection)
    if channels is not None:
        document["channels"] = channels
    lines = problems(document)
    assert any(line.startswith(expected) or expected in line for line in lines), lines


def test_two_channels_may_not_share_a_storefront() -> None:
    lines = problems(
        store(
            channels={
                "2": {"storefront_url": "https://b.acme.com"},
                "3": {"storefront_url": "https://b.acme.com"},
            }
        )
    )
    assert lines == [
        "stores.acme.channels.3.storefront_url: is also channel 2: each channel has its own "
        "storefront"
    ]
