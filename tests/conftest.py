"""Fixtures: real servers on 127.0.0.1 — the sandbox store, the development IdP, the broker.

Factories, not shared objects: each test gets fresh servers and its own database, and builds
the broker's settings with ``make_settings(**overrides)``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask

from broker.app import create_app
from broker.config import Settings, parse_settings
from broker.sandbox.idp import DevClient, DevIdPState, create_idp_app
from broker.sandbox.store import SandboxStore, create_sandbox_app
from tests.support import toml
from tests.support.servers import serve_in_thread

pytest_plugins = ["tests.saml_fixtures"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own broker configuration."""
    monkeypatch.delenv("BROKER_CONFIG", raising=False)


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


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    app = create_sandbox_app()
    with serve_in_thread(app) as server:
        yield Sandbox(url=server.url, app=app)


@pytest.fixture
def make_dev_idp() -> Iterator[Callable[[], DevIdP]]:
    """More development IdPs, for stores with several connections (each its own issuer)."""
    with ExitStack() as stack:

        def start() -> DevIdP:
            app = create_idp_app(clients=())
            server = stack.enter_context(serve_in_thread(app))
            app.extensions["dev_idp"].issuer = server.url
            return DevIdP(url=server.url, app=app)

        yield start


@pytest.fixture
def dev_idp() -> Iterator[DevIdP]:
    app = create_idp_app(clients=())
    with serve_in_thread(app) as server:
        app.extensions["dev_idp"].issuer = server.url
        yield DevIdP(url=server.url, app=app)


class _LateApp:
    """A WSGI app set after the server has its port: the broker's base_url needs the port."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@dataclass
class BrokerServer:
    url: str
    app: Flask
    settings: Settings
    #: The same settings as a TOML file, for the `broker` command line.
    config_path: Path


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., BrokerServer]]:
    """Start the broker in a thread: ``make_broker(lambda base_url: settings_document)``."""
    with_stack: list[Any] = []

    def start(document: Callable[[str], dict[str, Any]], **app_options: Any) -> BrokerServer:
        holder = _LateApp()
        context = serve_in_thread(holder)
        server = context.__enter__()
        with_stack.append(context)
        data = document(server.url)
        data["broker"].setdefault("database_url", f"sqlite:///{tmp_path / 'broker.db'}")
        settings = parse_settings(data, env={})
        config_path = tmp_path / f"broker-{len(with_stack)}.toml"
        config_path.write_text(toml.dumps(data))
        holder.app = create_app(settings, **app_options)
        return BrokerServer(
            url=server.url, app=holder.app, settings=settings, config_path=config_path
        )

    yield start
    for context in reversed(with_stack):
        context.__exit__(None, None, None)


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


@pytest.fixture
def make_world(
    sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer]
) -> Callable[..., World]:
    """Build a World; keyword arguments override the connection's or the store's settings."""

    def build(
        *,
        connection: dict[str, Any] | None = None,
        store: dict[str, Any] | None = None,
        sandbox_store: dict[str, Any] | None = None,
        theme_script: bool = False,
        defer: dict[str, Any] | None = None,
        app_options: dict[str, Any] | None = None,
        more_connections: dict[str, dict[str, Any]] | None = None,
    ) -> World:
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
            conn = {
                "type": "oidc",
                "issuer": dev_idp.url,
                "client_id": "broker",
                "client_secret": client_secret,
                "scopes": ["openid", "email", "profile", "groups"],
                # Most tests are about what follows a link; the default (confirm) has its own.
                "link": "auto",
                **(connection or {}),
            }
            conn = {k: v for k, v in conn.items() if v is not None}  # None: leave the key out
            connections = {"corp": conn, **(more_connections or {})}
            if defer:
                connections = {k: _company_ids(c, defer) for k, c in connections.items()}
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

    return build


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


@pytest.fixture
def browser_http() -> Iterator[httpx.Client]:
    """A cookie-keeping client that follows nothing by itself, like a careful browser."""
    with httpx.Client(follow_redirects=False, timeout=20) as client:
        yield client
