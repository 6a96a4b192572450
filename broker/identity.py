"""Identity: what any upstream sign-in yields, protocol-neutral.

OIDC and SAML translate their answers into this one frozen object in one place each; every
later step (account policy, customer resolution, the login JWT) reads only this. It carries
no upstream tokens: nothing here may be shown to the shopper beyond their own name and e-mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True)
class Identity:
    #: The connection key in the store's configuration (``okta``).
    connection: str
    #: Who vouches: the OIDC issuer or the SAML IdP entity id.
    issuer: str
    #: The IdP's stable identifier for the person (OIDC ``sub``, SAML NameID).
    subject: str
    email: str | None = None
    email_verified: bool = False
    first_name: str | None = None
    last_name: str | None = None
    groups: tuple[str, ...] = ()
    #: When the IdP says the person authenticated (Unix seconds), if it says.
    auth_time: int | None = None
    #: The verified claims or attributes as received, read-only; for mappings, never logged.
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def to_record(self) -> dict[str, Any]:
        """The identity as JSON-ready data, for a pending step kept in server-side storage."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["groups"] = list(self.groups)
        record["claims"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.claims.items()
        }
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Identity:
        return cls(
            **{
                **record,
                "groups": tuple(record.get("groups", ())),
                "claims": MappingProxyType(dict(record.get("claims") or {})),
            }
        )

    @property
    def email_domain(self) -> str | None:
        if not self.email or "@" not in self.email:
            return None
        return self.email.rsplit("@", 1)[1].lower()


@dataclass(frozen=True)
class UpstreamSession:
    """What the IdP needs to hear to end this sign-in's session there (logout).

    Kept beside the Identity, not in it: it holds the ID token, which no policy reads."""

    #: OpenID Connect: the ``sid`` claim and the ID token (for ``id_token_hint``).
    sid: str | None = None
    id_token: str | None = field(default=None, repr=False)
    #: SAML: the NameID (and its format) and the SessionIndex of the assertion.
    name_id: str | None = None
    name_id_format: str | None = None
    session_index: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> UpstreamSession:
        return cls(**(record or {}))
