"""Which identity provider each connection of a store declares, so that no two share one.

Two connections of one store never declare the same identity provider (a SAML IdP entity id
or an OIDC issuer, compared verbatim): every identity belongs to the connection it came
through (docs/design.md, "Security floor"). :class:`IdentityProviderClaims` refuses the second,
at start-up for what the configuration and local SAML metadata say, and at every use of SAML
metadata fetched from a URL (its first load and each refresh).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from broker.config import OIDCConnection, StoreSettings
from broker.errors import UpstreamMisconfigured


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
