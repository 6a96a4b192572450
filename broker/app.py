"""The Flask application factory.

``create_app(settings)`` builds everything once — storage, one BigCommerce client per store,
one OIDC provider per connection — and keeps it at ``app.extensions["broker"]``; blueprints
read it from there. Nothing is global but the app, so tests build as many as they like.

Two connections of one store never declare the same identity provider (a SAML IdP entity id
or an OIDC issuer, compared verbatim): :class:`IdentityProviderClaims` refuses the second, at
start-up for what the configuration and local SAML metadata say, and at every use of SAML
metadata fetched from a URL (its first load and each refresh).

In production: ``BROKER_CONFIG=broker.toml gunicorn 'broker.app:create_app()'``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx
from flask import Flask, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from broker.bigcommerce.api import BigCommerceClient
from broker.bigcommerce.b2b import B2BClient
from broker.config import (
    Connection,
    OIDCConnection,
    SAMLConnection,
    Settings,
    StoreSettings,
    load_settings,
)
from broker.errors import BrokerError, ConfigError, NotFound, UpstreamMisconfigured
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
    claims: IdentityProviderClaims | None = None,
) -> OIDCProvider | SAMLProvider:
    """The live upstream for a connection: the registry from ``type`` to protocol. With
    ``claims`` (the store's), a SAML connection is refused while its metadata's IdP entity is
    another connection's."""
    if isinstance(conn, SAMLConnection):
        base = f"{settings.broker.base_url}/{store.key}/saml/{conn.key}"
        return SAMLProvider(
            conn,
            sp_entity_id=f"{base}/metadata",
            acs_url=f"{base}/acs",
            slo_url=f"{base}/slo",
            transport=transport,
            clock=clock,
            entity_guard=claims.guard(conn.key) if claims is not None else None,
        )
    return OIDCProvider(conn, transport=transport, clock=clock)


class IdentityProviderClaims:
    """Which identity provider each connection of one store declares: the OIDC issuer as
    configured, the SAML IdP entity id as its metadata says once loaded.

    Two connections never share one. The first connection to declare an IdP holds it; another
    that declares it too (a sibling's metadata refreshed to name it, say) is refused with
    :class:`UpstreamMisconfigured` at each use until one of them changes, while the holder goes
    on working: a connection cannot take another's IdP away from it. Thread-safe; per process.
    """

    def __init__(self, store: StoreSettings) -> None:
        self.store_key = store.key
        self._lock = threading.Lock()
        self._holders: dict[str, str] = {}  # identity provider -> connection key
        self._declared: dict[str, str] = {}  # connection key -> identity provider
        for conn in store.connections.values():
            if isinstance(conn, OIDCConnection):
                self._record(conn.key, conn.issuer)

    def guard(self, conn_key: str) -> Callable[[str], None]:
        """The ``entity_guard`` of a SAML connection of this store."""
        return lambda entity_id: self.claim(conn_key, entity_id)

    def claim(self, conn_key: str, idp: str) -> None:
        """``conn_key`` declares ``idp`` now; raise UpstreamMisconfigured if another holds it."""
        holder = self._record(conn_key, idp)
        if holder != conn_key:
            raise UpstreamMisconfigured(detail=clash_line(self.store_key, idp, [holder, conn_key]))

    def problems(self) -> list[str]:
        """One line per identity provider declared by more than one connection."""
        with self._lock:
            declared = dict(self._declared)
        return shared_identity_providers(self.store_key, declared)

    def _record(self, conn_key: str, idp: str) -> str:
        with self._lock:
            previous = self._declared.get(conn_key)
            if previous is not None and previous != idp and self._holders.get(previous) == conn_key:
                del self._holders[previous]
            self._declared[conn_key] = idp
            return self._holders.setdefault(idp, conn_key)


def shared_identity_providers(store_key: str, declared: Mapping[str, str]) -> list[str]:
    """For ``declared`` (connection key -> IdP entity id or issuer) of one store, a line per
    identity provider more than one connection declares, naming them."""
    by_idp: dict[str, list[str]] = {}
    for conn_key, idp in declared.items():
        by_idp.setdefault(idp, []).append(conn_key)
    return [
        clash_line(store_key, idp, conn_keys)
        for idp, conn_keys in by_idp.items()
        if len(conn_keys) > 1
    ]


def clash_line(store_key: str, idp: str, conn_keys: list[str]) -> str:
    names = " and ".join(f"stores.{store_key}.connections.{key}" for key in conn_keys)
    return (
        f"{names} declare the same identity provider {idp[:200]!r}: each connection of a "
        "store needs its own IdP (SAML entity id or OIDC issuer)"
    )


def identity_provider_problems(
    settings: Settings,
    providers: Mapping[tuple[str, str], OIDCProvider | SAMLProvider],
    claims: Mapping[str, IdentityProviderClaims],
) -> list[str]:
    """What can be known at start-up of connections sharing an IdP: the configured OIDC
    issuers, and the entity ids of SAML metadata given in the file or inline (loaded here, for
    stores with more than one connection). Metadata from a URL is checked at its first load,
    and by ``broker check``. A local metadata that cannot be read is left to its sign-in page."""
    for store in settings.stores.values():
        if len(store.connections) < 2:
            continue
        for conn in store.connections.values():
            provider = providers[(store.key, conn.key)]
            local = isinstance(conn, SAMLConnection) and not conn.idp_metadata_url
            if local and isinstance(provider, SAMLProvider):
                # A clash is in the claims; any other problem shows on the sign-in page.
                with contextlib.suppress(BrokerError):
                    provider.idp_entity_id()
    return [line for key in settings.stores for line in claims[key].problems()]


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
        # __Host-: Secure, Path=/, no Domain, so no other host of the domain can set or
        # shadow it. It holds random keys only (CSRF, link and confirmation records live in
        # storage): no personal data in the browser.
        SESSION_COOKIE_NAME="__Host-broker_session"
        if settings.broker.cookie_secure
        else "broker_session",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
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
    claims = {key: IdentityProviderClaims(store) for key, store in settings.stores.items()}
    providers = {
        (store.key, conn.key): open_provider(
            settings, store, conn, transport, clock, claims[store.key]
        )
        for store in settings.stores.values()
        for conn in store.connections.values()
    }
    problems = identity_provider_problems(settings, providers, claims)
    if problems:
        raise ConfigError(problems)
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
        providers=providers,
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
