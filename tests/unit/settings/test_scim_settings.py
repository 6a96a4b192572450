"""``[stores.X.connections.Y.scim]``: SCIM provisioning per connection, read like its ``b2b``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from broker.config import parse_settings
from broker.errors import ConfigError
from broker.settings import BrokerSettings, ConnectionScim, parse_store_document
from broker.settings.schema import ConnectionScimTable, OIDCTable, SAMLTable
from tests.unit.settings.test_schema import readme_table

BROKER = {"base_url": "https://sso.example.com", "secret_key": "k" * 32}


def store(scim: Any = None, **connection: Any) -> dict[str, Any]:
    conn: dict[str, Any] = {
        "type": "oidc",
        "issuer": "https://idp.example",
        "client_id": "b",
        "client_secret": "x",
        **connection,
    }
    if scim is not None:
        conn["scim"] = scim
    return {
        "store_hash": "abc123",
        "access_token": "t",
        "client_id": "c",
        "client_secret": "s",
        "storefront_url": "https://shop.acme.com",
        "connections": {"corp": conn},
    }


def scim_of(document: dict[str, Any]) -> ConnectionScim | None:
    settings = parse_settings({"broker": BROKER, "stores": {"acme": document}}, env={})
    return settings.stores["acme"].connections["corp"].scim


def problems(document: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"broker": BROKER, "stores": {"acme": document}}, env=env or {})
    return [str(line) for line in caught.value.problems]


def test_no_table_or_a_disabled_one_is_no_scim() -> None:
    assert scim_of(store()) is None
    assert scim_of(store({})) is None  # enabled defaults to false
    assert scim_of(store({"enabled": False, "deprovision": "delete"})) is None


def test_an_enabled_table_with_its_defaults() -> None:
    assert scim_of(store({"enabled": True})) == ConnectionScim(
        enabled=True,
        deprovision="block",
        delete_after_days=30,
        customer_groups_by_group={},
        subject_attribute="externalId",
    )


def test_every_key_is_read() -> None:
    scim = scim_of(
        store(
            {
                "enabled": True,
                "deprovision": "delete",
                "delete_after_days": 7,
                "customer_groups_by_group": {"Wholesale": 2, "Staff": 5},
                "subject_attribute": "userName",
            }
        )
    )
    assert scim is not None
    assert (scim.deprovision, scim.delete_after_days, scim.subject_attribute) == (
        "delete",
        7,
        "userName",
    )
    assert list(scim.customer_groups_by_group.items()) == [("Wholesale", 2), ("Staff", 5)]
    with pytest.raises(TypeError):
        scim.customer_groups_by_group["x"] = 1  # type: ignore[index]


def test_the_toml_file_and_env_values(tmp_path: Path) -> None:
    key, cert = tmp_path / "sp.key", tmp_path / "sp.crt"
    key.write_text("key")
    cert.write_text("cert")
    text = f"""
[broker]
base_url = "https://sso.example.com"
secret_key = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"

[stores.acme]
store_hash = "abc123"
access_token = "t"
client_id = "c"
client_secret = "s"
storefront_url = "https://shop.acme.com"

[stores.acme.connections.adfs]
type = "saml"
idp_metadata_xml = "<xml/>"
sp_key_file = "{key}"
sp_cert_file = "{cert}"

[stores.acme.connections.adfs.scim]
enabled = "env:SCIM_ON"
subject_attribute = "emails"
"""
    settings = parse_settings(tomllib.loads(text), env={"SCIM_ON": "true"})
    scim = settings.stores["acme"].connections["adfs"].scim
    assert scim is not None
    assert (scim.enabled, scim.subject_attribute) == (True, "emails")


def test_problems_name_the_key_and_an_unknown_key_gets_did_you_mean() -> None:
    found = problems(
        store(
            {
                "enabled": True,
                "deprovison": "block",
                "deprovision": "erase",
                "delete_after_days": 0,
                "customer_groups_by_group": {"Wholesale": "two"},
                "subject_attribute": "sub",
            }
        )
    )
    prefix = "stores.acme.connections.corp.scim"
    assert found == [
        f"{prefix}.deprovison: unknown key (check the spelling), did you mean 'deprovision'?",
        f"{prefix}.deprovision: must be one of block, delete, not 'erase'",
        f"{prefix}.delete_after_days: must be between 1 and 3650",
        f"{prefix}.customer_groups_by_group: must be a table of name = id, "
        'e.g. { "wholesale" = 2 }',
        f"{prefix}.subject_attribute: must be one of externalId, userName, emails, not 'sub'",
    ]
    assert problems(store({"enabled": True, "delete_after_days": 3651})) == [
        f"{prefix}.delete_after_days: must be between 1 and 3650"
    ]
    assert problems(store("yes")) == [f"{prefix}: must be a table"]


def test_a_disabled_table_is_still_checked() -> None:
    assert problems(store({"enabled": False, "deprovision": "erase"})) == [
        "stores.acme.connections.corp.scim.deprovision: must be one of block, delete, not 'erase'"
    ]


def test_a_stored_store_reads_it_too() -> None:
    broker = BrokerSettings(base_url="https://sso.example.com", secret_key="k" * 32)
    parsed = parse_store_document(
        "abc123", store({"enabled": True, "deprovision": "delete"}), broker
    )
    scim = parsed.connections["corp"].scim
    assert scim is not None
    assert scim.deprovision == "delete"


def test_the_schema_describes_every_key_and_its_default() -> None:
    schema = ConnectionScimTable.model_json_schema()
    properties = schema["properties"]
    assert set(properties) == {
        "enabled",
        "deprovision",
        "delete_after_days",
        "customer_groups_by_group",
        "subject_attribute",
    }
    for key, value in properties.items():
        assert value.get("description"), key
        factory = ConnectionScimTable.model_fields[key].default_factory
        assert "default" in value or factory is not None, key
    assert properties["enabled"]["default"] is False
    assert properties["deprovision"]["default"] == "block"
    assert properties["delete_after_days"]["default"] == 30
    assert properties["delete_after_days"]["minimum"] == 1
    assert properties["delete_after_days"]["maximum"] == 3650
    # A connection's scim is a table of its own, not a key of the connection.
    assert "scim" not in OIDCTable.model_fields
    assert "scim" not in SAMLTable.model_fields


def test_the_readme_documents_every_key() -> None:
    documented = readme_table("stores.acme.connections.okta.scim")
    assert set(documented) == set(ConnectionScimTable.model_fields)
