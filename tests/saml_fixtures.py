"""A SAML world: the sandbox store, the samlify IdP and the broker with a SAML connection."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.keys import make_key_pair
from broker.sandbox.store import SandboxStore
from tests.conftest import BrokerServer, Sandbox, with_companies
from tests.support.flows import Outcome
from tests.support.saml_idp import SamlIdp, complete_sso, start_saml_idp

USERS = {
    "alice": {
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Liddell",
        "groups": ["buyers"],
    },
    "bob": {"email": "bob@example.com", "first_name": "Bob", "last_name": "Builder"},
}


@dataclass
class SamlWorld:
    sandbox: Sandbox
    idp: SamlIdp
    broker: BrokerServer
    store: SandboxStore
    sp_cert_pem: str

    @property
    def acs(self) -> str:
        return f"{self.broker.url}/acme/saml/corp/acs"

    def customers(self) -> list[dict[str, Any]]:
        customers: list[dict[str, Any]] = self.sandbox.state.customers(self.store.store_hash)
        return customers

    def logins(self) -> list[dict[str, Any]]:
        logins: list[dict[str, Any]] = self.sandbox.state.logins(self.store.store_hash)
        return logins

    def sso(self, http: httpx.Client, login: str = "alice", path: str = "") -> dict[str, str]:
        """Start at the broker, sign in at the IdP; the form the IdP would POST to the ACS."""
        start = http.get(f"{self.broker.url}/acme/login/corp{path}")
        assert start.status_code == 302, start.text
        acs, form = complete_sso(http, start.headers["location"], login)
        assert acs == self.acs
        return form

    def post(self, http: httpx.Client, form: dict[str, str]) -> Outcome:
        """POST to the ACS, then follow the broker's own continuation, as a browser would."""
        answer = http.post(self.acs, data=form)
        if answer.status_code == 303 and "/acs/continue" in answer.headers["location"]:
            answer = http.get(self.broker.url + answer.headers["location"])
        return Outcome(answer)


@pytest.fixture
def make_saml_world(
    sandbox: Sandbox, make_broker: Callable[..., BrokerServer], tmp_path: Path
) -> Iterator[Callable[..., SamlWorld]]:
    """``make_saml_world(idp={...}, connection={...})``: samlify options and broker settings.

    ``connection`` may also be a function of the started IdP returning them (for settings that
    name its entity id or metadata); ``more_connections(idp)`` returns further SAML connections
    of the store (key -> settings; a SAML one gets the SP key pair and a display name);
    ``app_options`` go to ``create_app`` (e.g. ``clock``)."""
    stack = ExitStack()
    key_file, cert_file = make_key_pair(tmp_path / "keys")

    def build(
        *,
        idp: dict[str, Any] | None = None,
        connection: dict[str, Any] | Callable[[SamlIdp], dict[str, Any]] | None = None,
        store: dict[str, Any] | None = None,
        sandbox_store: dict[str, Any] | None = None,
        defer: dict[str, Any] | None = None,
        more_connections: Callable[[SamlIdp], dict[str, dict[str, Any]]] | None = None,
        app_options: dict[str, Any] | None = None,
    ) -> SamlWorld:
        bc_store = sandbox.add_store("abc123", name="Acme Supplies", **(sandbox_store or {}))
        store_settings = with_companies(sandbox, bc_store.store_hash, store, defer)
        started: list[SamlIdp] = []

        def document(base_url: str) -> dict[str, Any]:
            sp = {
                "entity_id": f"{base_url}/acme/saml/corp/metadata",
                "acs_url": f"{base_url}/acme/saml/corp/acs",
                "slo_url": f"{base_url}/acme/saml/corp/slo",
                "encryption_cert_pem": cert_file.read_text(),
                "signing_cert_pem": cert_file.read_text(),
            }
            options = {"expose_key_for_tests": True, **(idp or {})}
            started.append(stack.enter_context(start_saml_idp(sp=sp, users=USERS, idp=options)))
            defaults = {
                "type": "saml",
                "display_name": "Acme SAML",
                "sp_key_file": str(key_file),
                "sp_cert_file": str(cert_file),
                # What most tests build on; the defaults (confirm) have tests of their own.
                "link": "auto",
                "trust_email": True,
            }
            overrides = connection(started[0]) if callable(connection) else connection
            conn = {
                **defaults,
                "idp_metadata_url": started[0].metadata_url,
                **(overrides or {}),
            }
            connections = {"corp": {k: v for k, v in conn.items() if v is not None}}
            for key, more in (more_connections(started[0]) if more_connections else {}).items():
                base = defaults if more.get("type", "saml") == "saml" else {}
                connections[key] = {k: v for k, v in {**base, **more}.items() if v is not None}
            return {
                "broker": {"base_url": base_url, "secret_key": secrets.token_urlsafe(32)},
                "stores": {
                    "acme": {
                        "store_hash": bc_store.store_hash,
                        "api_url": sandbox.url,
                        "access_token": bc_store.access_token,
                        "client_id": bc_store.client_id,
                        "client_secret": bc_store.client_secret,
                        "storefront_url": sandbox.storefront(bc_store.store_hash),
                        **store_settings,
                        "connections": connections,
                    }
                },
            }

        broker = make_broker(document, **(app_options or {}))
        return SamlWorld(
            sandbox=sandbox,
            idp=started[0],
            broker=broker,
            store=bc_store,
            sp_cert_pem=cert_file.read_text(),
        )

    yield build
    stack.close()
