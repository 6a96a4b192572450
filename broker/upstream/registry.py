"""The registry from a connection's ``type`` to the live upstream that speaks its protocol.

Every provider has the one begin/complete shape of :mod:`broker.upstream.shape`. One place
knows that ``type = "oidc"`` is :class:`~broker.upstream.oidc.OIDCProvider` and
``type = "saml"`` is :class:`~broker.upstream.saml.SAMLProvider`; everything else asks for "the
provider of this connection" (the runtime caches what this builds) and, where a step differs by
protocol, for the provider of the kind it needs (:func:`expect`), which refuses any other kind
with a 404 instead of an ``isinstance`` check at each caller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import httpx

from broker.config import Connection, OIDCConnection, SAMLConnection
from broker.errors import NotFound
from broker.upstream.oidc import OIDCProvider
from broker.upstream.saml import SAMLProvider
from broker.upstream.saml_keys import SPKeySet
from broker.upstream.shape import SignInUpstream

Provider = OIDCProvider | SAMLProvider
P = TypeVar("P", OIDCProvider, SAMLProvider)

if TYPE_CHECKING:

    def _one_shape(provider: Provider) -> SignInUpstream:
        return provider  # mypy checks both against the begin/complete Protocol here


def open_provider(
    conn: Connection,
    *,
    base_url: str,
    store_key: str,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    entity_guard: Callable[[str], None] | None = None,
    sp_keys: Callable[[], SPKeySet | None] | None = None,
) -> Provider:
    """The live upstream for a connection. ``entity_guard`` (SAML): called with the IdP's
    entity id whenever its metadata is used, to refuse one another connection declares;
    ``sp_keys`` (SAML): the broker's own SP key pairs, for a connection that names none."""
    if isinstance(conn, SAMLConnection):
        base = f"{base_url}/{store_key}/saml/{conn.key}"
        return SAMLProvider(
            conn,
            sp_entity_id=f"{base}/metadata",
            acs_url=f"{base}/acs",
            slo_url=f"{base}/slo",
            transport=transport,
            clock=clock,
            entity_guard=entity_guard,
            sp_keys=sp_keys,
        )
    if isinstance(conn, OIDCConnection):
        return OIDCProvider(conn, transport=transport, clock=clock)
    raise TypeError(f"no upstream for connection type {conn.type!r}")  # pragma: no cover


def expect(provider: Provider, kind: type[P], conn_key: str) -> P:
    """``provider`` when it speaks ``kind``'s protocol, else the 404 a wrong URL deserves."""
    if not isinstance(provider, kind):
        protocol = "OpenID Connect" if kind is OIDCProvider else "SAML"
        raise NotFound(
            f"This sign-in option is not {protocol}.", detail=f"conn={conn_key!r} is not {kind}"
        )
    return provider
