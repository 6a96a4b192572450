"""``broker scim token``: a connection's SCIM token alone on stdout, stored hashed; revoked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.admin.tokens import authenticate
from broker.cli import main as broker_cli
from broker.errors import AdminDenied
from broker.storage import SQLStorage, open_storage
from broker.storage.keys import digest
from tests.support.toml import dumps

CONNECTION = {
    "type": "oidc",
    "issuer": "https://idp.example",
    "client_id": "broker",
    "client_secret": "secret",
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A file with store "acme" (connection "okta" with SCIM, "plain" without) and a
    database holding an installed store "abc123" (connection "corp")."""
    database_url = f"sqlite:///{tmp_path / 'broker.db'}"
    document: dict[str, Any] = {
        "broker": {
            "base_url": "https://sso.example.com",
            "secret_key": "k" * 40,
            "database_url": database_url,
        },
        "stores": {
            "acme": {
                "store_hash": "abc",
                "access_token": "t",
                "client_id": "c",
                "client_secret": "s",
                "storefront_url": "https://shop.acme.com",
                "connections": {
                    "okta": {**CONNECTION, "scim": {"enabled": True}},
                    "plain": CONNECTION,
                    "off": {**CONNECTION, "scim": {"enabled": False}},
                },
            }
        },
    }
    path = tmp_path / "broker.toml"
    path.write_text(dumps(document), encoding="utf-8")
    storage = open_storage(database_url)
    storage.put_tenant(
        "abc123", {"store_hash": "abc123", "connections": {"corp": CONNECTION}}, now=1
    )
    storage.close()
    return path


@pytest.fixture
def storage(config: Path) -> Iterator[SQLStorage]:
    store = open_storage(f"sqlite:///{config.parent / 'broker.db'}")
    yield store
    store.close()


def token_of(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert broker_cli(["scim", "token", "--config", str(config), *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # the token alone on one line
    return out.strip()


def test_a_file_store_connection_gets_a_token_stored_hashed(
    config: Path, capsys: pytest.CaptureFixture[str], storage: SQLStorage
) -> None:
    token = token_of(config, capsys, "--store", "acme", "--connection", "okta", "--label", "Okta")
    assert token.startswith("bks_")
    found = authenticate(storage, f"Bearer {token}", store="acme", kind="scim")
    assert (found.connection, found.label) == ("okta", "Okta")
    assert storage.find_api_token(digest(token)) == found
    raw = b"".join(p.read_bytes() for p in config.parent.glob("broker.db*"))
    assert token.encode() not in raw
    with pytest.raises(AdminDenied):  # not an admin token
        authenticate(storage, f"Bearer {token}", store="acme", kind="admin")


def test_an_installed_store_connection_gets_a_token(
    config: Path, capsys: pytest.CaptureFixture[str], storage: SQLStorage
) -> None:
    token = token_of(config, capsys, "--store", "abc123", "--connection", "corp")
    found = authenticate(storage, f"Bearer {token}", store="abc123", kind="scim")
    assert (found.connection, found.label) == ("corp", "broker scim token")


@pytest.mark.parametrize(
    ("store", "connection", "told"),
    [
        ("acme", "nope", "no connection 'nope' in store 'acme'"),
        ("acme", "plain", "stores.acme.connections.plain.scim: SCIM is not enabled"),
        ("acme", "off", "stores.acme.connections.off.scim: SCIM is not enabled"),
        ("abc123", "nope", "no connection 'nope' in store 'abc123'"),
        ("nowhere", "okta", "no store 'nowhere'"),
    ],
)
def test_an_unknown_store_or_connection_or_scim_off_is_refused(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    storage: SQLStorage,
    store: str,
    connection: str,
    told: str,
) -> None:
    args = ["scim", "token", "--config", str(config), "--store", store]
    assert broker_cli([*args, "--connection", connection]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert told in err
    assert storage.list_api_tokens(store, "scim") == []


def test_revoke_ends_that_connections_tokens_only(
    config: Path, capsys: pytest.CaptureFixture[str], storage: SQLStorage
) -> None:
    first = token_of(config, capsys, "--store", "acme", "--connection", "okta")
    second = token_of(config, capsys, "--store", "acme", "--connection", "okta")
    storage.create_api_token(
        store="acme", kind="scim", digest="other", label="x", now=1, connection="plain"
    )
    storage.create_api_token(store="acme", kind="admin", digest="admin", label="x", now=1)
    args = ["scim", "token", "--config", str(config), "--store", "acme"]
    assert broker_cli([*args, "--connection", "okta", "--revoke"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "2 SCIM token(s) of acme/okta revoked" in err
    for token in (first, second):
        with pytest.raises(AdminDenied):
            authenticate(storage, f"Bearer {token}", store="acme", kind="scim")
    assert storage.find_api_token("other") is not None
    assert storage.find_api_token("admin") is not None
    # A connection whose SCIM was turned off can still have its tokens revoked.
    assert broker_cli([*args, "--connection", "plain", "--revoke"]) == 0
    assert storage.find_api_token("other") is None
