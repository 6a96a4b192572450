"""The configuration file: what operators write, and the one line per problem they get back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from broker.config import load_settings, parse_settings
from broker.errors import ConfigError

GOOD = """
[broker]
base_url = "https://sso.example.com"
secret_key = "env:BROKER_SECRET_KEY"

[stores.acme]
store_hash = "abc123"
access_token = "env:ACME_ACCESS_TOKEN"
client_id = "env:ACME_CLIENT_ID"
client_secret = "env:ACME_CLIENT_SECRET"
storefront_url = "https://shop.acme.com"
channel_id = 1

[stores.acme.connections.okta]
type = "oidc"
issuer = "https://acme.okta.com"
client_id = "0oa1"
client_secret = "env:OKTA_CLIENT_SECRET"
scopes = ["openid", "email", "profile"]
groups_claim = "groups"
jit = true
link = "auto"
allowed_domains = ["acme.com"]

[stores.beta]
store_hash = "def456"
access_token = "t"
client_id = "c"
client_secret = "s"
storefront_url = "https://beta.example"

[stores.beta.connections.google]
type = "oidc"
issuer = "https://accounts.google.com"
client_id = "web-client"
"""

ENV = {
    "BROKER_SECRET_KEY": "x" * 40,
    "ACME_ACCESS_TOKEN": "acme-api-token-value",
    "ACME_CLIENT_ID": "acme-client-id",
    "ACME_CLIENT_SECRET": "acme-client-secret-value",
    "OKTA_CLIENT_SECRET": "okta-client-secret-value",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.toml"
    path.write_text(text)
    return path


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    import tomllib

    with pytest.raises(ConfigError) as caught:
        parse_settings(tomllib.loads(text), ENV if env is None else env)
    return caught.value.problems


def test_a_good_file_with_two_stores(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), ENV)
    acme = settings.stores["acme"]
    assert acme.client_secret == "acme-client-secret-value"
    assert acme.api_url == "https://api.bigcommerce.com"
    okta = acme.connections["okta"]
    assert okta.client_secret == "okta-client-secret-value"
    assert okta.token_endpoint_auth_method == "client_secret_basic"
    assert okta.algorithms == ("RS256", "PS256", "ES256")
    assert okta.allowed_domains == ("acme.com",)
    google = settings.stores["beta"].connections["google"]
    assert google.client_secret is None
    assert google.token_endpoint_auth_method == "none"  # a public client
    for name in (
        "BROKER_SECRET_KEY",
        "ACME_ACCESS_TOKEN",
        "ACME_CLIENT_SECRET",
        "OKTA_CLIENT_SECRET",
    ):
        assert ENV[name] not in repr(settings)


def test_every_problem_is_reported_once_naming_its_key() -> None:
    text = GOOD.replace('base_url = "https://sso.example.com"', 'base_url = "ftp://x"')
    text = text.replace("channel_id = 1", 'channel_id = "one"')
    text = text.replace('link = "auto"', 'link = "sometimes"')
    text = text.replace('groups_claim = "groups"', 'group_claim = "groups"')
    env = {k: v for k, v in ENV.items() if k != "OKTA_CLIENT_SECRET"}
    assert problems(text, env) == [
        "broker.base_url: 'ftp://x' is not an http(s) URL",
        "stores.acme.channel_id: must be an integer",
        "stores.acme.connections.okta.group_claim: unknown key (check the spelling)",
        "stores.acme.connections.okta.client_secret: environment variable OKTA_CLIENT_SECRET "
        "is not set",
        "stores.acme.connections.okta.link: must be one of auto, confirm, deny, not 'sometimes'",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('secret_key = "env:BROKER_SECRET_KEY"', 'secret_key = "short"'), "broker.secret_key"),
        (('store_hash = "abc123"', ""), "stores.acme.store_hash: is required"),
        (('issuer = "https://acme.okta.com"', 'issuer = "http://acme.okta.com"'), "https"),
        (('scopes = ["openid", "email", "profile"]', 'scopes = ["email"]'), "'openid'"),
        (("jit = true", 'jit = "yes"'), "stores.acme.connections.okta.jit: must be true or false"),
        (('type = "oidc"\nissuer = "https://acme', 'type = "cas"\nissuer = "https://acme'), "type"),
        (("[stores.acme.connections.okta]", "[stores.acme.connections.Okta]"), "connection keys"),
        (("channel_id = 1", 'channel_id = 1\nwebhook_secret = "short"'), "webhook_secret"),
        (("channel_id = 1", "channel_id = 1\nverify_link_after_hours = -1"), "verify_link"),
        (
            ('type = "oidc"\nissuer = "https://acme', 'type = "saml"\nissuer = "https://acme'),
            "SAML",
        ),
    ],
)
def test_single_problems(change: tuple[str, str], expected: str) -> None:
    found = problems(GOOD.replace(*change))
    assert any(expected in line for line in found), found


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_symmetric_and_none_algorithms_cannot_be_configured(algorithm: str) -> None:
    text = GOOD.replace('groups_claim = "groups"', f'algorithms = ["RS256", "{algorithm}"]')
    assert any("algorithms" in line for line in problems(text))


def test_public_client_cannot_claim_a_secret_method() -> None:
    text = GOOD + 'token_endpoint_auth_method = "client_secret_post"\n'
    assert any("client_secret: required" in line for line in problems(text))


def test_broker_check_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("jit = true", "jit = 3"))
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "", **ENV},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "config: stores.acme.connections.okta.jit: must be true or false"
    ]


def test_broker_check_reports_unreachable_store_and_idp(tmp_path: Path) -> None:
    text = GOOD.replace('issuer = "https://acme.okta.com"', 'issuer = "http://127.0.0.1:9"')
    text = text.replace("channel_id = 1", 'channel_id = 1\napi_url = "http://127.0.0.1:9"')
    path = write(tmp_path, text.split("[stores.beta]")[0])
    result = subprocess.run(
        [sys.executable, "-m", "broker.cli", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        env={"PATH": "", **ENV},
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("stores.acme: store API: The store could not be reached")
    assert lines[1].startswith("stores.acme.connections.okta: identity provider:")
    for value in ENV.values():
        assert value not in result.stderr
