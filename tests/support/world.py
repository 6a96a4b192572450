"""The one world builder: a store in the sandbox, an identity provider, and the broker wired to
both, for OpenID Connect (the development IdP) and SAML (the samlify IdP).

The fixtures in ``tests/conftest.py`` and ``tests/saml_fixtures.py`` (``make_world``,
``make_saml_world``, ``make_broker``, ``sandbox``, ``dev_idp``, ...) are thin wrappers over
:class:`Worlds` and :class:`BrokerStarter`; the settings documents come from
:mod:`tests.support.settings`.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from flask import Flask

from broker.app import create_app
from broker.config import Settings, parse_settings
from broker.sandbox.idp import DevClient, DevIdPState
from broker.sandbox.store import SandboxStore
from tests.support import settings as docs
from tests.support import toml
from tests.support.flows import Outcome
from tests.support.saml_idp import SamlIdp, complete_sso, start_saml_idp
from tests.support.servers import serve_in_thread
from tests.support.speed import KeyRecycler

#: The users of the samlify IdP in a SAML world, by login.
SAML_USERS = {
    "alice": {
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Liddell",
        "groups": ["buyers"],
    },
    "bob": {"email": "bob@example.com", "first_name": "Bob", "last_name": "Builder"},
}


@dataclass
class Sandbox:
    url: str
    app: Flask

    @property
    def state(self) -> Any:
        return self.app.extensions["sandbox"]

    def add_store(self, store_hash: str = "abc123", **fields: Any) -> SandboxStore:
        store = SandboxStore(
            store_hash=store_hash,
            access_token=fields.pop("access_token", secrets.token_urlsafe(16)),
            client_id=fields.pop("client_id", secrets.token_hex(8)),
            client_secret=fields.pop("client_secret", secrets.token_hex(32)),
            **fields,
        )
        self.state.add_store(store)
        return store

    def storefront(self, store_hash: str) -> str:
        return f"{self.url}/s/{store_hash}"


@dataclass
class DevIdP:
    url: str
    app: Flask

    @property
    def state(self) -> DevIdPState:
        state: DevIdPState = self.app.extensions["dev_idp"]
        return state


@dataclass
class BrokerServer:
    url: str
    app: Flask
    settings: Settings
    #: The same settings as a TOML file, for the `broker` command line.
    config_path: Path


class _LateApp:
    """A WSGI app set after the server has its port: the broker's base_url needs the port."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


class BrokerStarter:
    """``starter(lambda base_url: settings_document, **app_options)``: the broker in a thread.

    A document without ``database_url`` gets a SQLite file in ``workdir`` (one per test, shared
    by the test's brokers), copied from ``sqlite_template`` (an empty database already migrated
    to the newest schema, made once per session) when given: the broker still migrates it at
    start, which then finds nothing to do.
    """

    def __init__(self, workdir: Path, stack: ExitStack, sqlite_template: Path | None) -> None:
        self.workdir = workdir
        self.stack = stack
        self.sqlite_template = sqlite_template
        self.started = 0

    def __call__(
        self, document: Callable[[str], dict[str, Any]], **app_options: Any
    ) -> BrokerServer:
        holder = _LateApp()
        server = self.stack.enter_context(serve_in_thread(holder))
        self.started += 1
        data = document(server.url)
        if "database_url" not in data["broker"]:
            database = self.workdir / "broker.db"
            if self.sqlite_template is not None and not database.exists():
                shutil.copyfile(self.sqlite_template, database)
            data["broker"]["database_url"] = f"sqlite:///{database}"
        settings = parse_settings(data, env={})
        config_path = self.workdir / f"broker-{self.started}.toml"
        config_path.write_text(toml.dumps(data))
        holder.app = create_app(settings, **app_options)
        return BrokerServer(
            url=server.url, app=holder.app, settings=settings, config_path=config_path
        )


@dataclass
class World:
    """A store in the sandbox, a client at the dev IdP and a broker wired to both."""

    sandbox: Sandbox
    idp: DevIdP
    broker: BrokerServer
    store: SandboxStore
    store_key: str = "acme"
    conn_key: str = "corp"

    @property
    def storefront(self) -> str:
        return self.sandbox.storefront(self.store.store_hash)

    def customers(self) -> list[dict[str, Any]]:
        customers: list[dict[str, Any]] = self.sandbox.state.customers(self.store.store_hash)
        return customers

    def logins(self) -> list[dict[str, Any]]:
        logins: list[dict[str, Any]] = self.sandbox.state.logins(self.store.store_hash)
        return logins


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


@dataclass(frozen=True)
class SpKeys:
    """The broker's SAML SP key pair (files), made once per session: each test has its own
    broker, and nothing a test does changes them."""

    key_file: Path
    cert_file: Path

    @property
    def cert_pem(self) -> str:
        return self.cert_file.read_text()


class Worlds:
    """Builds worlds on one test's servers: :meth:`oidc` (``make_world``) and :meth:`saml`
    (``make_saml_world``). The store is "abc123" in the sandbox, key "acme" at the broker,
    with the connection "corp"."""

    def __init__(
        self,
        sandbox: Sandbox,
        start_broker: Callable[..., BrokerServer],
        *,
        dev_idp: DevIdP | None = None,
        stack: ExitStack | None = None,
        sp_keys: SpKeys | None = None,
        saml_idp_keys: KeyRecycler | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.start_broker = start_broker
        self.dev_idp = dev_idp
        self.stack = stack
        self.sp_keys = sp_keys
        #: Signing keys (key PEM, certificate PEM) of the samlify IdPs of earlier tests.
        self.saml_idp_keys = saml_idp_keys

    @contextmanager
    def _start_saml_idp(self, sp: dict[str, Any], options: dict[str, Any]) -> Iterator[SamlIdp]:
        """A samlify IdP, on the key of an IdP of an earlier test when there is one."""
        keys = self.saml_idp_keys
        key = keys.take() if keys is not None else None
        with start_saml_idp(sp=sp, users=SAML_USERS, idp=options, key=key) as idp:
            if keys is not None and key is None and idp.key_pem is not None:
                keys.adopt((idp.key_pem, idp.cert_pem))
            yield idp

    def _store(
        self,
        bc_store: SandboxStore,
        settings: dict[str, Any],
        connections: dict[str, dict[str, Any]],
    ) -> dict[str, dict[str, Any]]:
        return {
            "acme": docs.store_table(
                self.sandbox.url, bc_store, connections=connections, **settings
            )
        }

    def oidc(
        self,
        *,
        connection: dict[str, Any] | None = None,
        store: dict[str, Any] | None = None,
        sandbox_store: dict[str, Any] | None = None,
        theme_script: bool = False,
        defer: dict[str, Any] | None = None,
        app_options: dict[str, Any] | None = None,
        more_connections: dict[str, dict[str, Any]] | None = None,
    ) -> World:
        """A World on the dev IdP; keyword arguments override the connection's or the store's
        settings (``None`` leaves a key out)."""
        sandbox, dev_idp = self.sandbox, self.dev_idp
        assert dev_idp is not None, "an OpenID Connect world needs the dev IdP"
        client_secret = secrets.token_urlsafe(24)
        created: list[SandboxStore] = []

        def document(base_url: str) -> dict[str, Any]:
            extra = dict(sandbox_store or {})
            extra.setdefault("sso_login_url", f"{base_url}/acme/login/corp")
            if theme_script:
                extra["theme_script_url"] = f"{base_url}/acme/link/script.js"
            bc_store = sandbox.add_store("abc123", name="Acme Supplies", **extra)
            created.append(bc_store)
            store_settings = with_companies(sandbox, bc_store.store_hash, store, defer)
            conn = docs.oidc_connection(
                **{
                    "issuer": dev_idp.url,
                    "client_secret": client_secret,
                    "scopes": ["openid", "email", "profile", "groups"],
                    # Most tests are about what follows a link; the default (confirm) has its
                    # own.
                    "link": "auto",
                    **(connection or {}),
                }
            )
            connections = {"corp": conn, **(more_connections or {})}
            if defer:
                connections = {k: _company_ids(c, defer) for k, c in connections.items()}
            return docs.document(base_url, self._store(bc_store, store_settings, connections))

        broker = self.start_broker(document, **(app_options or {}))
        conn_settings = broker.settings.stores["acme"].connections["corp"]
        dev_idp.state.add_client(
            DevClient(
                client_id="broker",
                client_secret=conn_settings.client_secret,
                redirect_uris=(f"{broker.url}/acme/oidc/corp/callback",),
                token_endpoint_auth_method=conn_settings.token_endpoint_auth_method,
            )
        )
        return World(sandbox=sandbox, idp=dev_idp, broker=broker, store=created[0])

    def saml(
        self,
        *,
        idp: dict[str, Any] | None = None,
        connection: dict[str, Any] | Callable[[SamlIdp], dict[str, Any]] | None = None,
        store: dict[str, Any] | None = None,
        sandbox_store: dict[str, Any] | None = None,
        defer: dict[str, Any] | None = None,
        more_connections: Callable[[SamlIdp], dict[str, dict[str, Any]]] | None = None,
        app_options: dict[str, Any] | None = None,
    ) -> SamlWorld:
        """A SamlWorld on a new samlify IdP: ``idp`` are its options, ``connection`` the broker's
        settings (or a function of the started IdP returning them, for settings that name its
        entity id or metadata); ``more_connections(idp)`` returns further connections of the
        store (key -> settings; a SAML one gets the SP key pair and a display name);
        ``app_options`` go to ``create_app`` (e.g. ``clock``)."""
        sandbox, stack, keys = self.sandbox, self.stack, self.sp_keys
        assert stack is not None, "a SAML world needs a stack for its IdPs"
        assert keys is not None, "a SAML world needs the SP keys"
        bc_store = sandbox.add_store("abc123", name="Acme Supplies", **(sandbox_store or {}))
        store_settings = with_companies(sandbox, bc_store.store_hash, store, defer)
        started: list[SamlIdp] = []
        cert_pem = keys.cert_pem

        def document(base_url: str) -> dict[str, Any]:
            sp = {
                "entity_id": f"{base_url}/acme/saml/corp/metadata",
                "acs_url": f"{base_url}/acme/saml/corp/acs",
                "slo_url": f"{base_url}/acme/saml/corp/slo",
                "encryption_cert_pem": cert_pem,
                "signing_cert_pem": cert_pem,
            }
            options = {"expose_key_for_tests": True, **(idp or {})}
            started.append(stack.enter_context(self._start_saml_idp(sp, options)))
            defaults = {
                "display_name": "Acme SAML",
                "sp_key_file": str(keys.key_file),
                "sp_cert_file": str(keys.cert_file),
                # What most tests build on; the defaults (confirm) have tests of their own.
                "link": "auto",
                "trust_email": True,
            }
            overrides = connection(started[0]) if callable(connection) else connection
            connections = {
                "corp": docs.saml_connection(
                    **{
                        **defaults,
                        "idp_metadata_url": started[0].metadata_url,
                        **(overrides or {}),
                    }
                )
            }
            for key, more in (more_connections(started[0]) if more_connections else {}).items():
                base = {"type": "saml", **defaults} if more.get("type", "saml") == "saml" else {}
                connections[key] = docs.present({**base, **more})
            return docs.document(base_url, self._store(bc_store, store_settings, connections))

        broker = self.start_broker(document, **(app_options or {}))
        return SamlWorld(
            sandbox=sandbox, idp=started[0], broker=broker, store=bc_store, sp_cert_pem=cert_pem
        )


def with_companies(
    sandbox: Sandbox,
    store_hash: str,
    store: dict[str, Any] | None,
    defer: dict[str, Any] | None,
) -> dict[str, Any]:
    """For a B2B store: make two approved companies, put them in ``defer`` ("acme", "other"),
    and put their ids where the store's [b2b] table says "ACME" or "OTHER"."""
    settings = dict(store or {})
    if defer is None or "b2b" not in settings:
        return settings
    defer["acme"] = sandbox.state.add_company(store_hash, "Acme Buyers")
    defer["other"] = sandbox.state.add_company(store_hash, "Other Co")
    ids = {"ACME": defer["acme"]["companyId"], "OTHER": defer["other"]["companyId"]}
    b2b = {"api_url": sandbox.url, **settings["b2b"]}
    for name, value in b2b.items():
        if isinstance(value, dict):
            b2b[name] = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in value.items()}
    settings["b2b"] = b2b
    return settings


def _company_ids(conn: dict[str, Any], defer: dict[str, Any]) -> dict[str, Any]:
    """A connection's own [b2b] table with "ACME"/"OTHER" replaced by those companies' ids."""
    if "b2b" not in conn:
        return conn
    ids = {"ACME": defer["acme"]["companyId"], "OTHER": defer["other"]["companyId"]}

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return ids.get(value, value) if isinstance(value, str) else value

    return {**conn, "b2b": swap(conn["b2b"])}
