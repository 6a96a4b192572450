"""The runtime: the broker's tenants, storage and live clients, for every request (no Flask).

Stores come from a tenant source, as Dex lays its static connectors over those in storage: the
stores of the file (read-only, they always win) over the stores held in the database
(``tenant_stores``, which the app install fills). A database store is parsed with the same
rules as a ``[stores.X]`` table of the file.

Changes are seen by every worker and instance without a restart: each process reads one
version row (``tenant_changes``) at most every ``refresh_seconds`` when it needs a database
store, and reloads the stores when the version moved. So a store added, changed or removed by
one process is served (or answers 404) everywhere within a few seconds.

What a store needs live — its BigCommerce and B2B Edition clients, each connection's upstream
provider (discovery, keys and metadata caches), the register of which IdP each connection
declares — is built lazily on first use and cached by (store, configuration version); a
provider whose connection's settings did not change is kept across a store's new version, so
editing one connection does not throw away the others' caches.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from broker.bigcommerce.api import BigCommerceClient
from broker.bigcommerce.b2b import B2BClient
from broker.config import (
    AppSettings,
    BrokerSettings,
    Connection,
    SAMLConnection,
    Settings,
    StoreSettings,
    parse_store_document,
)
from broker.errors import BrokerError, ConfigError, NotFound
from broker.events import log_event
from broker.provisioning.staff.service import StaffService
from broker.settings.secrets import SecretBox, derived_box
from broker.settings.stored import readable_document, release_key_files
from broker.signin.service import SignInService
from broker.sp_keys import SPKeyRing
from broker.storage import SQLStorage
from broker.upstream.claims import IdentityProviderClaims
from broker.upstream.oidc import OIDCProvider
from broker.upstream.registry import Provider, expect, open_provider
from broker.upstream.saml import SAMLProvider

#: How often a process looks at the database's tenant version (at most), in seconds.
DEFAULT_REFRESH_SECONDS = 2.0


@dataclass
class _LiveStore:
    """One version of one store, with what it has built so far."""

    settings: StoreSettings
    version: int
    claims: IdentityProviderClaims
    providers: dict[str, Provider] = field(default_factory=dict)
    api: BigCommerceClient | None = None
    b2b: B2BClient | None = None


class Runtime:
    """What the views need, shared by every request of a process. Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        storage: SQLStorage,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.broker_settings: BrokerSettings = settings.broker
        #: The broker as a BigCommerce app, when ``[app]`` says so.
        self.app: AppSettings | None = settings.app
        #: Seals and opens the secrets of stored stores (None without ``[app]``).
        self.secrets = SecretBox(settings.app.encryption_key) if settings.app else None
        self.storage = storage
        #: The broker's own SAML SP key pairs, for connections that name no key files.
        self.sp_keys = SPKeyRing(
            storage,
            self.secrets or derived_box(settings.broker.secret_key, purpose="sp-keys"),
            clock=clock,
        )
        self.clock = clock
        self._file_stores: Mapping[str, StoreSettings] = settings.stores
        self._transport = transport
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._db_stores: dict[str, tuple[int, StoreSettings]] = {}
        self._db_version: int | None = None
        self._checked_at = float("-inf")
        self._live: dict[str, _LiveStore] = {}
        self._clock_offsets: dict[str, tuple[int, float]] = {}
        #: The one sequence of a sign-in's steps, over this runtime's stores and storage.
        self.signin = SignInService(storage=storage, clients=self, clock=clock)
        #: Control-panel staff of the stores with ``[staff]`` (the Account API's queue).
        self.staff = StaffService(storage, clock=clock, transport=transport)

    # -- tenants ------------------------------------------------------------------------------

    def find_store(self, key: str) -> StoreSettings | None:
        """The store by its key (the file's key, or an installed store's hash), if any."""
        store = self._file_stores.get(key)
        if store is not None:
            return store
        self._refresh()
        entry = self._db_stores.get(key)
        return None if entry is None else entry[1]

    def store(self, key: str) -> StoreSettings:
        store = self.find_store(key)
        if store is None:
            raise NotFound("There is no store here by that name.", detail=f"store={key[:64]!r}")
        return store

    def connection(self, store_key: str, conn_key: str) -> tuple[StoreSettings, Connection]:
        store = self.store(store_key)
        conn = store.connections.get(conn_key)
        if conn is None:
            raise NotFound(
                "This store has no such sign-in option.", detail=f"conn={conn_key[:64]!r}"
            )
        return store, conn

    @property
    def transport(self) -> httpx.BaseTransport | None:
        """The HTTP transport every outbound client uses (tests may give their own)."""
        return self._transport

    def all_stores(self) -> list[StoreSettings]:
        """Every store served now: the file's, then those held in the database."""
        self.refresh()
        with self._lock:
            stored = [entry[1] for entry in self._db_stores.values()]
        return [*self._file_stores.values(), *stored]

    def file_stores(self) -> Mapping[str, StoreSettings]:
        return self._file_stores

    def refresh(self) -> None:
        """Look at the database's stores now (tests and the admin call this after a write)."""
        with self._lock:
            self._checked_at = float("-inf")
        self._refresh()

    def _refresh(self) -> None:
        now = self._monotonic()
        with self._lock:
            if now - self._checked_at < self._refresh_seconds:
                return
            self._checked_at = now
        version = self.storage.tenants_version()
        with self._lock:
            if version == self._db_version:
                return
        documents = self.storage.tenant_documents()
        stores: dict[str, tuple[int, StoreSettings]] = {}
        for key, row in documents.items():
            if key in self._file_stores:
                continue  # the file's store of that name wins; the row is not served
            known = self._db_stores.get(key)
            if known is not None and known[0] == row.version:
                stores[key] = known  # unchanged: keep it, and what it has built
                continue
            try:
                stores[key] = (row.version, self.parse_stored(key, row.document))
            except ConfigError as error:
                log_event("tenants.invalid", store=key, problems=len(error.problems))
        with self._lock:
            gone = set(self._db_stores) - set(stores)
            self._db_stores = stores
            self._db_version = version
        for key in gone:
            release_key_files(key)

    def parse_stored(
        self, key: str, document: Mapping[str, Any], *, served: bool = True
    ) -> StoreSettings:
        """A stored store's settings, read by the file's rules (:mod:`broker.settings.stored`:
        its secrets opened, its SP keys in private files, an app store's credentials)."""
        # ``served``: these settings replace the store's (a check of an edit is not).
        owner = key if served else None
        readable = readable_document(document, self.secrets, self.app, store_key=owner)
        return parse_store_document(key, readable, self.broker_settings)

    def is_stored(self, key: str) -> bool:
        """A store held in the database (editable), not one of the file (read-only)."""
        return key not in self._file_stores and self.find_store(key) is not None

    # -- live clients ------------------------------------------------------------------------

    def _live_store(self, store: StoreSettings) -> _LiveStore:
        version = self._version_of(store.key)
        with self._lock:
            live = self._live.get(store.key)
            if live is not None and live.version == version and live.settings is store:
                return live
            fresh = _LiveStore(
                settings=store, version=version, claims=IdentityProviderClaims(store)
            )
            if live is not None:  # keep what an unchanged connection has learnt
                for conn_key, provider in live.providers.items():
                    if store.connections.get(conn_key) == live.settings.connections.get(conn_key):
                        fresh.providers[conn_key] = provider
            self._live[store.key] = fresh
            return fresh

    def _version_of(self, key: str) -> int:
        if key in self._file_stores:
            return 0
        entry = self._db_stores.get(key)
        return -1 if entry is None else entry[0]

    def provider(self, store_key: str, conn_key: str) -> Provider:
        """The live upstream of a connection, built on first use."""
        store, conn = self.connection(store_key, conn_key)
        live = self._live_store(store)
        with self._lock:
            provider = live.providers.get(conn_key)
            if provider is None:
                guard = live.claims.guard(conn_key) if isinstance(conn, SAMLConnection) else None
                provider = open_provider(
                    conn,
                    base_url=self.broker_settings.base_url,
                    store_key=store.key,
                    transport=self._transport,
                    clock=self.clock,
                    entity_guard=guard,
                    sp_keys=self.sp_keys.current,
                )
                live.providers[conn_key] = provider
        return provider

    def oidc(self, store_key: str, conn_key: str) -> OIDCProvider:
        return expect(self.provider(store_key, conn_key), OIDCProvider, conn_key)

    def saml(self, store_key: str, conn_key: str) -> SAMLProvider:
        return expect(self.provider(store_key, conn_key), SAMLProvider, conn_key)

    def store_api(self, store_key: str) -> BigCommerceClient:
        """The store's BigCommerce client (one per store version: its quota state is shared)."""
        live = self._live_store(self.store(store_key))
        with self._lock:
            if live.api is None:
                live.api = BigCommerceClient(live.settings, transport=self._transport)
            return live.api

    def b2b_api(self, store_key: str) -> B2BClient:
        store = self.store(store_key)
        if store.b2b is None:
            raise NotFound("This store does not run B2B Edition.", detail="no [b2b]")
        live = self._live_store(store)
        with self._lock:
            if live.b2b is None:
                live.b2b = B2BClient(live.settings, store.b2b, transport=self._transport)
            return live.b2b

    def identity_provider_problems(self) -> list[str]:
        """Connections of a file store that declare one IdP, as far as is known at start-up:
        the configured OIDC issuers, and the entity ids of SAML metadata given in the file or
        inline (loaded here, for stores with more than one connection). Metadata from a URL is
        checked at its first load, and by ``broker check``."""
        problems: list[str] = []
        for store in self._file_stores.values():
            live = self._live_store(store)
            if len(store.connections) > 1:
                for conn in store.connections.values():
                    if isinstance(conn, SAMLConnection) and not conn.idp_metadata_url:
                        # A clash lands in the claims; any other problem shows at sign-in.
                        with contextlib.suppress(BrokerError):
                            self.saml(store.key, conn.key).idp_entity_id()
            problems.extend(live.claims.problems())
        return problems

    def now_for_store(self, store: StoreSettings) -> int:
        """Unix time for a login JWT's ``iat``: the store's clock when configured so."""
        now = self.clock()
        if not store.use_store_clock:
            return int(now)
        offset, measured_at = self._clock_offsets.get(store.key, (0, float("-inf")))
        if now - measured_at > 600:
            offset = self.store_api(store.key).server_time() - int(self.clock())
            self._clock_offsets[store.key] = (offset, now)
        return int(now) + offset
