"""The one builder of the broker's settings documents (the TOML file's tables, as dicts).

Every test that writes the broker's configuration builds it here, so a new required key or a
renamed one is changed in one place::

    document(base_url, {"acme": store_table(sandbox.url, bc_store, connections={
        "corp": oidc_connection(dev_idp.url, client_secret),
    })}, database_url=...)

In a connection, ``None`` as a value leaves the key out (a test's way to say "the default").
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol


class StoreCredentials(Protocol):
    """What a store of the sandbox (:class:`broker.sandbox.store.SandboxStore`) offers."""

    store_hash: str
    access_token: str
    client_id: str
    client_secret: str


def present(table: dict[str, Any]) -> dict[str, Any]:
    """The table without its ``None`` values."""
    return {key: value for key, value in table.items() if value is not None}


def broker_table(base_url: str, **more: Any) -> dict[str, Any]:
    """The ``[broker]`` table: ``base_url``, a fresh ``secret_key``, and ``more``."""
    return {"base_url": base_url, "secret_key": secrets.token_urlsafe(32), **more}


def store_table(
    sandbox_url: str,
    store: StoreCredentials,
    *,
    connections: dict[str, dict[str, Any]],
    **more: Any,
) -> dict[str, Any]:
    """A ``[stores.KEY]`` table for a store of the sandbox at ``sandbox_url``: its API, its
    credentials and storefront, ``more`` (store settings) and its ``connections``."""
    return {
        "store_hash": store.store_hash,
        "api_url": sandbox_url,
        "access_token": store.access_token,
        "client_id": store.client_id,
        "client_secret": store.client_secret,
        "storefront_url": f"{sandbox_url}/s/{store.store_hash}",
        **more,
        "connections": connections,
    }


def oidc_connection(
    issuer: str, client_secret: str, *, client_id: str = "broker", **more: Any
) -> dict[str, Any]:
    """An OpenID Connect connection to ``issuer``; ``more`` adds or overrides keys."""
    return present(
        {
            "type": "oidc",
            "issuer": issuer,
            "client_id": client_id,
            "client_secret": client_secret,
            **more,
        }
    )


def saml_connection(**more: Any) -> dict[str, Any]:
    """A SAML connection; ``more`` is its keys (``idp_metadata_url``, ``sp_key_file``, ...)."""
    return present({"type": "saml", **more})


def document(base_url: str, stores: dict[str, dict[str, Any]], **broker: Any) -> dict[str, Any]:
    """The whole document: ``[broker]`` (``broker`` adds keys to it) and the ``stores``."""
    return {"broker": broker_table(base_url, **broker), "stores": stores}
