"""The Flask application factory.

``create_app(settings)`` builds everything once — storage, one BigCommerce client per store,
one OIDC provider per connection — and keeps it at ``app.extensions["broker"]``; blueprints
read it from there. Nothing is global but the app, so tests build as many as they like.

In production: ``BROKER_CONFIG=broker.toml gunicorn 'broker.app:create_app()'``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from flask import Flask, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from broker.bigcommerce.api import BigCommerceClient
from broker.bigcommerce.b2b import B2BClient
from broker.config import Connection, SAMLConnection, Settings, StoreSettings, load_settings
from broker.errors import ConfigError, NotFound
from broker.events import configure_logging
from broker.storage import SQLStorage, open_storage
from broker.upstream.oidc import OIDCProvider
from broker.upstream.saml import SAMLProvider


@dataclass
class Broker:
    """What the views need, built once per app."""

    settings: Settings
    storage: SQLStorage
    stores: dict[str, BigCommerceClient]
    #: B2B Edition clients, for the stores that enable it.
    b2b: dict[str, B2BClient]
    providers: dict[tuple[str, str], OIDCProvider | SAMLProvider]
    clock: Callable[[], float] = time.time
    _clock_offsets: dict[str, tuple[int, float]] = field(default_factory=dict)

    def store(self, store_key: str) -> StoreSettings:
        store = self.settings.store(store_key)
        if store is None:
            raise NotFound("There is no store here by that name.", detail=f"store={store_key!r}")
        return store

    def connection(self, store_key: str, conn_key: str) -> tuple[StoreSettings, Connection]:
        store = self.store(store_key)
        conn = store.connections.get(conn_key)
        if conn is None:
            raise NotFound("This store has no such sign-in option.", detail=f"conn={conn_key!r}")
        return store, conn

    def oidc(self, store_key: str, conn_key: str) -> OIDCProvider:
        provider = self.providers[(store_key, conn_key)]
        if not isinstance(provider, OIDCProvider):
            raise NotFound(
                "This sign-in option is not OpenID Connect.", detail=f"conn={conn_key!r}"
            )
        return provider

    def saml(self, store_key: str, conn_key: str) -> SAMLProvider:
        provider = self.providers[(store_key, conn_key)]
        if not isinstance(provider, SAMLProvider):
            raise NotFound("This sign-in option is not SAML.", detail=f"conn={conn_key!r}")
        return provider

    def now_for_store(self, store: StoreSettings) -> int:
        """Unix time for a login JWT's ``iat``: the store's clock when configured so."""
        now = self.clock()
        if not store.use_store_clock:
            return int(now)
        offset, measured_at = self._clock_offsets.get(store.key, (0, float("-inf")))
        if now - measured_at > 600:
            offset = self.stores[store.key].server_time() - int(self.clock())
            self._clock_offsets[store.key] = (offset, now)
        return int(now) + offset


def open_provider(
    settings: Settings,
    store: StoreSettings,
    conn: Connection,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> OIDCProvider | SAMLProvider:
    """The live upstream for a connection: the registry from ``type`` to protocol."""
    if isinstance(conn, SAMLConnection):
        base = f"{settings.broker.base_url}/{store.key}/saml/{conn.key}"
        return SAMLProvider(
            conn,
            sp_entity_id=f"{base}/metadata",
            acs_url=f"{base}/acs",
            slo_url=f"{base}/slo",
            transport=transport,
            clock=clock,
        )
    return OIDCProvider(conn, transport=transport, clock=clock)


def get_broker() -> Broker:
    broker: Broker = current_app.extensions["broker"]
    return broker


def create_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    transport: httpx.BaseTransport | None = None,
) -> Flask:
    """Build the broker. Without ``settings``, read the file named by ``BROKER_CONFIG``."""
    if settings is None:
        path = os.environ.get("BROKER_CONFIG")
        if not path:
            raise ConfigError(["BROKER_CONFIG: set it to the path of the broker's TOML file"])
        settings = load_settings(path)
    configure_logging()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.broker.secret_key,
        SESSION_COOKIE_NAME="broker_session",
        SESSION_COOKIE_SECURE=settings.broker.cookie_secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    if settings.broker.trusted_proxies:
        hops = settings.broker.trusted_proxies
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
    app.extensions["broker"] = Broker(
        settings=settings,
        storage=open_storage(settings.broker.database_url),
        stores={
            key: BigCommerceClient(store, transport=transport)
            for key, store in settings.stores.items()
        },
        b2b={
            key: B2BClient(store, store.b2b, transport=transport)
            for key, store in settings.stores.items()
            if store.b2b is not None
        },
        providers={
            (store.key, conn.key): open_provider(settings, store, conn, transport, clock)
            for store in settings.stores.values()
            for conn in store.connections.values()
        },
        clock=clock,
    )

    from broker.web import csrf, errors, health, hooks, link, logout, saml, sso

    errors.init_app(app)
    app.jinja_env.globals["csrf_token"] = csrf.csrf_token
    app.register_blueprint(health.bp)
    app.register_blueprint(sso.bp)
    app.register_blueprint(link.bp)
    app.register_blueprint(hooks.bp)
    app.register_blueprint(saml.bp)
    app.register_blueprint(logout.bp)
    return app
