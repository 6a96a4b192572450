"""One record for every sign-in in progress, OIDC and SAML alike: :class:`PendingSignIn`.

A sign-in is started by the web layer and kept server-side (never in a cookie) until its
answer comes back: the store, connection and channel, where the shopper goes afterwards, the hash of
the browser's id cookie (so the answer is accepted only in the browser that started it), the
customer linking from the storefront if any, and what the protocol must check on the way
back: OIDC's nonce and PKCE verifier, SAML's AuthnRequest id (InResponseTo).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from broker.storage.model import flat_row
from broker.upstream.shape import Checks


@dataclass(frozen=True)
class PendingSignIn:
    store: str
    connection: str
    redirect_to: str
    #: sha256 of the browser's id cookie.
    browser: str
    #: Set when a signed-in storefront customer links this IdP identity to their account.
    link_customer_id: int | None = None
    #: OpenID Connect: the nonce and the PKCE code verifier of the authorization request.
    nonce: str | None = None
    code_verifier: str | None = None
    #: SAML: the AuthnRequest's ID, which the Response's InResponseTo must name.
    request_id: str | None = None
    #: The channel (storefront) the sign-in is for; None: the store's default channel (and
    #: every flow a broker before channels stored).
    channel_id: int | None = None
    #: A test sign-in started from the admin: show what would happen, do nothing.
    trial: bool = False

    def to_record(self) -> dict[str, Any]:
        return flat_row(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PendingSignIn:
        """From storage; a record may carry more (a verified identity waiting), or be one a
        broker before this type wrote (either protocol's fields alone)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def belongs_to(self, store: str, connection: str) -> bool:
        return (self.store, self.connection) == (store, connection)

    def checks(self) -> Checks:
        """What the IdP's answer is checked against (upstream.shape: one shape for both)."""
        return Checks(
            nonce=self.nonce, code_verifier=self.code_verifier, request_id=self.request_id
        )
