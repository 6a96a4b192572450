"""The OpenID provider harness itself: a real oidc-provider signs a user in, the code is exchanged
for an ID token whose claims come from the configured account, and back-channel logout reaches a
relying party on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.oidc_provider import (
    OidcProvider,
    complete_login,
    complete_logout,
    start_oidc_provider,
)
from tests.support.servers import serve_in_thread

# Never served: complete_login must return this redirect without requesting it.
REDIRECT_URI = "http://127.0.0.1:9/cb"
POST_LOGOUT_REDIRECT_URI = "http://127.0.0.1:9/signed-out"

ALICE = {
    "email": "alice@example.com",
    "email_verified": True,
    "name": "Alice Liddell",
    "given_name": "Alice",
    "family_name": "Liddell",
    "groups": ["buyers", "admins"],
}


@dataclass
class BackchannelReceiver:
    """A relying party's back-channel logout endpoint: records the logout tokens POSTed to it."""

    url: str = ""
    logout_tokens: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode()
        if environ["REQUEST_METHOD"] == "POST":
            with self.lock:
                self.logout_tokens.extend(parse_qs(body).get("logout_token", []))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")])
        return [b""]


@dataclass
class Harness:
    provider: OidcProvider
    receiver: BackchannelReceiver
    discovery: dict[str, Any]
    keys: KeySet


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    receiver = BackchannelReceiver()
    with serve_in_thread(receiver) as rp:
        receiver.url = f"{rp.url}/backchannel"
        clients: list[dict[str, Any]] = [
            {
                "client_id": "confidential",
                "client_secret": "confidential-secret",
                "token_endpoint_auth_method": "client_secret_basic",
                "redirect_uris": [REDIRECT_URI],
                "post_logout_redirect_uris": [POST_LOGOUT_REDIRECT_URI],
                "backchannel_logout_uri": receiver.url,
                "backchannel_logout_session_required": True,
            },
            {
                "client_id": "public",
                "token_endpoint_auth_method": "none",
                "redirect_uris": [REDIRECT_URI],
            },
        ]
        with start_oidc_provider(clients=clients, accounts={"alice": ALICE}) as provider:
            discovery = httpx.get(f"{provider.issuer}/.well-known/openid-configuration").json()
            keys = KeySet.import_key_set(httpx.get(discovery["jwks_uri"]).json())
            yield Harness(provider, receiver, discovery, keys)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _sign_in(
    h: Harness, http: httpx.Client, client_id: str, secret: str | None
) -> tuple[dict[str, Any], str]:
    """Run the authorization code flow as alice; return the ID token's claims and the token."""
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    verifier, challenge = _pkce()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile groups",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    authorize_url = f"{h.discovery['authorization_endpoint']}?{urlencode(query)}"

    callback = complete_login(http, authorize_url, "alice", stop_at=REDIRECT_URI)

    assert callback.startswith(f"{REDIRECT_URI}?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert params.get("state") == state, params
    assert params.get("iss") == h.provider.issuer
    assert "code" in params, params

    auth = (client_id, secret) if secret is not None else None
    form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }
    if secret is None:
        form["client_id"] = client_id
    response = httpx.post(h.discovery["token_endpoint"], data=form, auth=auth)
    assert response.status_code == 200, response.text
    tokens = response.json()

    id_token = jwt.decode(tokens["id_token"], h.keys, algorithms=["RS256"])
    assert id_token.header["alg"] == "RS256"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": h.provider.issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True, "value": "alice"},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(id_token.claims)
    return id_token.claims, tokens["id_token"]


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [("confidential", "confidential-secret"), ("public", None)],
)
def test_login_and_code_exchange_give_the_accounts_claims(
    harness: Harness, client_id: str, secret: str | None
) -> None:
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        claims, _ = _sign_in(harness, http, client_id, secret)

    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["given_name"] == "Alice"
    assert claims["family_name"] == "Liddell"
    assert claims["groups"] == ["buyers", "admins"]


def test_refused_login_and_backchannel_logout_to_loopback(harness: Harness) -> None:
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        _, challenge = _pkce()
        unknown = f"{harness.discovery['authorization_endpoint']}?" + urlencode(
            {
                "response_type": "code",
                "client_id": "public",
                "redirect_uri": REDIRECT_URI,
                "scope": "openid",
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        refused = complete_login(http, unknown, "mallory", stop_at=REDIRECT_URI)
    params = parse_qs(urlsplit(refused).query)
    assert params["error"] == ["access_denied"], refused
    assert params["state"] == ["s"]

    with httpx.Client(follow_redirects=False, timeout=10) as http:
        claims, id_token = _sign_in(harness, http, "confidential", "confidential-secret")
        end_session = f"{harness.discovery['end_session_endpoint']}?" + urlencode(
            {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI,
                "state": "bye",
            }
        )
        signed_out = complete_logout(http, end_session, stop_at=POST_LOGOUT_REDIRECT_URI)

    assert signed_out == f"{POST_LOGOUT_REDIRECT_URI}?state=bye"
    with harness.receiver.lock:
        tokens = list(harness.receiver.logout_tokens)
    assert len(tokens) == 1, harness.provider.stderr
    logout = jwt.decode(tokens[0], harness.keys, algorithms=["RS256"]).claims
    assert logout["iss"] == harness.provider.issuer
    assert logout["aud"] == "confidential"
    assert logout["sub"] == "alice"
    assert logout["sid"] == claims["sid"]
    assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
