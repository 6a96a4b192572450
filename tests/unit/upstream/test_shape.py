"""One begin/complete shape for OIDC and SAML: what each begins with, and the answers a
flow of the other kind cannot complete."""

from __future__ import annotations

import pytest

from broker.errors import StateMismatch
from broker.settings.values import OIDCConnection
from broker.upstream.oidc import OIDCProvider
from broker.upstream.shape import Checks


def _oidc() -> OIDCProvider:
    conn = OIDCConnection(
        key="corp",
        display_name="Corp",
        issuer="https://idp.example",
        client_id="c",
        client_secret="s",
        token_endpoint_auth_method="client_secret_basic",
    )
    return OIDCProvider(conn)


@pytest.mark.parametrize(
    "checks",
    [None, Checks(request_id="id-1"), Checks(nonce="n")],
    ids=["none", "a-saml-flow", "no-verifier"],
)
def test_an_oidc_answer_needs_the_checks_its_begin_made(checks: Checks | None) -> None:
    with pytest.raises(StateMismatch):
        _oidc().complete({"code": "x", "state": "y"}, checks=checks, return_url="https://b/cb")
