"""The one shape every upstream has, OIDC and SAML alike: :meth:`begin` a sign-in, then
:meth:`complete` it with the IdP's answer.

``begin(key=, return_url=)`` gives where to send the browser and the :class:`Checks` the
answer must meet (OIDC: the nonce and PKCE verifier it made; SAML: the AuthnRequest's ID);
the caller keeps them server-side under ``key`` (the OIDC ``state``, the SAML RelayState),
which the IdP hands back. ``complete(answer, checks=, return_url=)`` takes the answer's
parameters (OIDC: the callback's query; SAML: the POSTed form) and gives the verified
:class:`Verified` identity, the IdP session for logout, and, where the protocol has one, the
answer's one-time id and until when it must be remembered against replay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from broker.identity import Identity, UpstreamSession


@dataclass(frozen=True)
class Checks:
    """What the IdP's answer to one sign-in is checked against."""

    nonce: str | None = None
    code_verifier: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Begun:
    url: str
    checks: Checks


@dataclass(frozen=True)
class Verified:
    identity: Identity
    session: UpstreamSession
    #: The answer's own id (a SAML assertion ID), used at most once, until ``replay_until``.
    replay_id: str | None = None
    replay_until: int | None = None


class SignInUpstream(Protocol):
    def begin(self, *, key: str, return_url: str) -> Begun: ...

    def complete(
        self, answer: Mapping[str, str], *, checks: Checks | None, return_url: str
    ) -> Verified: ...
