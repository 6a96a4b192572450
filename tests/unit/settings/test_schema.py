"""The settings schema: each key declared once, and what an operator reads when a file is wrong.

Did-you-mean for a misspelt key, a malformed ``env:`` name, secrets kept out of every
``repr``, every problem of a file reported at once in file order, and the JSON Schema that
admin forms and API bodies will read, checked against what README's "Configure" documents.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from broker.errors import ConfigError
from broker.settings import OIDCConnection, SAMLConnection, parse_settings
from broker.settings.schema import BrokerTable, OIDCTable, SAMLTable, StoreTable, Table

README = Path(__file__).resolve().parents[3] / "README.md"

FILE = """
[broker]
base_url = "https://sso.example.com"
secret_key = "env:BROKER_SECRET_KEY"

[stores.acme]
store_hash = "abc123"
access_token = "env:ACME_ACCESS_TOKEN"
client_id = "c"
client_secret = "env:ACME_CLIENT_SECRET"
storefront_url = "https://shop.acme.com"
webhook_secret = "env:ACME_WEBHOOK_SECRET"

[stores.acme.connections.okta]
type = "oidc"
issuer = "https://acme.okta.com"
client_id = "0oa1"
client_secret = "env:OKTA_CLIENT_SECRET"
groups_claim = "groups"
"""

ENV = {
    "BROKER_SECRET_KEY": "broker-secret-key-" + "k" * 30,
    "ACME_ACCESS_TOKEN": "acme-access-token-value",
    "ACME_CLIENT_SECRET": "acme-client-secret-value",
    "ACME_WEBHOOK_SECRET": "acme-webhook-secret-" + "w" * 10,
    "OKTA_CLIENT_SECRET": "okta-client-secret-value",
}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(tomllib.loads(text), ENV if env is None else env)
    return caught.value.problems


def test_an_unknown_key_names_the_nearest_known_one() -> None:
    found = problems(FILE.replace('groups_claim = "groups"', 'group_claim = "groups"'))
    assert found == [
        "stores.acme.connections.okta.group_claim: unknown key (check the spelling), "
        "did you mean 'groups_claim'?"
    ]
    found = problems(FILE.replace("[broker]", "[broker]\nzzz = 1"))
    assert found == ["broker.zzz: unknown key (check the spelling)"]  # nothing close


def test_a_malformed_env_name_is_flagged_and_a_missing_variable_named() -> None:
    text = FILE.replace('client_id = "0oa1"', 'client_id = "env:x y"')
    env = {k: v for k, v in ENV.items() if k != "OKTA_CLIENT_SECRET"}
    assert problems(text, env) == [
        "stores.acme.connections.okta.client_id: `env:` needs a variable name such as "
        "env:OKTA_SECRET, not 'x y'",
        "stores.acme.connections.okta.client_secret: environment variable OKTA_CLIENT_SECRET "
        "is not set",
    ]


def test_secrets_are_in_no_repr() -> None:
    settings = parse_settings(tomllib.loads(FILE), ENV)
    assert settings.stores["acme"].webhook_secret == ENV["ACME_WEBHOOK_SECRET"]
    tables = [
        BrokerTable.model_validate({"base_url": "https://x.example", "secret_key": "s" * 40}),
        StoreTable.model_validate(
            {
                "store_hash": "abc",
                "access_token": ENV["ACME_ACCESS_TOKEN"],
                "client_id": "c",
                "client_secret": ENV["ACME_CLIENT_SECRET"],
                "storefront_url": "https://shop.example",
                "webhook_secret": ENV["ACME_WEBHOOK_SECRET"],
            }
        ),
    ]
    for shown in (repr(settings), str(settings), *map(repr, tables)):
        for name, value in ENV.items():
            assert value not in shown, name
    assert "s" * 40 not in repr(tables[0])


def test_every_problem_of_a_file_at_once_in_file_order() -> None:
    text = """
[broker]
flow_ttl_seconds = 5
base_url = "http://sso.example.com"
secret_key = "short"
colour = "blue"

[stores.acme]
storefront_url = "https://shop.acme.com/?x=1"
channel_id = "one"
store_hash = "ABC"
access_token = "env:NOPE"
client_id = "c"
client_secret = "s"
default_redirect = "https://elsewhere.example"

[stores.acme.connections.okta]
type = "oidc"
link = "sometimes"
issuer = "https://acme.okta.com"
jit = "yes"
scopes = ["email"]
clock_skew_seconds = 900
client_id = 7

[stores.acme.connections.adfs]
type = "saml"
idp_metadata_file = "/nonexistent.xml"
idp_metadata_xml = "<EntityDescriptor/>"
allow_sha1 = 1

[stores.beta]
store_hash = "def456"
"""
    assert problems(text) == [
        "broker.colour: unknown key (check the spelling)",
        "broker.flow_ttl_seconds: must be between 60 and 3600",
        "broker.base_url: must use https (http is allowed only on 127.0.0.1/localhost)",
        "broker.secret_key: must be at least 32 characters (use a random value)",
        "stores.acme.storefront_url: must not have a query or fragment",
        "stores.acme.channel_id: must be an integer",
        "stores.acme.store_hash: 'ABC' does not look right (expected ^[a-z0-9]{1,32}$)",
        "stores.acme.access_token: environment variable NOPE is not set",
        "stores.acme.default_redirect: must be a path on the store, such as /account.php",
        "stores.acme.connections.okta.link: must be one of auto, confirm, deny, not 'sometimes'",
        "stores.acme.connections.okta.jit: must be true or false",
        "stores.acme.connections.okta.scopes: must include 'openid'",
        "stores.acme.connections.okta.clock_skew_seconds: must be between 0 and 300",
        "stores.acme.connections.okta.client_id: must be a string",
        "stores.acme.connections.adfs.idp_metadata_file: no such file: /nonexistent.xml",
        "stores.acme.connections.adfs.allow_sha1: must be true or false",
        # keys the file lacks come after those it has
        "stores.acme.connections.adfs.idp_metadata_url: give exactly one of idp_metadata_url, "
        "_file or _xml",
        "stores.beta.access_token: is required",
        "stores.beta.client_id: is required",
        "stores.beta.client_secret: is required",
        "stores.beta.storefront_url: is required",
        "stores.beta.connections: at least one connection is required, "
        "e.g. [stores.X.connections.okta]",
    ]


def readme_table(header: str) -> dict[str, Any]:
    """The README "Configure" example holding ``[header]``, as TOML."""
    for block in re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        if f"[{header}]" in block:
            document: dict[str, Any] = tomllib.loads(block)
            for part in header.split("."):
                document = document[part]
            return document
    raise AssertionError(f"README has no [{header}] example")


@pytest.mark.parametrize(
    ("header", "model", "values"),
    [
        ("stores.acme.connections.okta", OIDCTable, OIDCConnection),
        ("stores.acme.connections.adfs", SAMLTable, SAMLConnection),
        ("stores.acme", StoreTable, None),
        ("broker", BrokerTable, None),
    ],
)
def test_the_json_schema_lists_every_documented_key_with_its_default(
    header: str, model: type[Table], values: type[Any] | None
) -> None:
    schema = model.model_json_schema()
    properties = schema["properties"]
    required = set(schema.get("required", ()))
    documented = {k for k, v in readme_table(header).items() if not isinstance(v, dict)}
    assert documented <= set(properties), documented - set(properties)
    for key in documented:
        assert properties[key].get("description"), key
        assert key in required or "default" in properties[key], key
    if values is None:
        return
    # The schema's defaults are those of the settings every consumer reads.
    for item in dataclasses.fields(values):
        if item.name in properties and item.default is not dataclasses.MISSING:
            default = item.default
            if item.name in ("name_id_format", "type"):
                continue  # the file's short name (the settings hold the URN); a constant
            expected = list(default) if isinstance(default, tuple) else default
            assert properties[item.name].get("default") == expected, item.name
    assert properties["link"]["default"] == "confirm"
    assert properties["clock_skew_seconds"]["maximum"] == 300
