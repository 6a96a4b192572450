"""The development OpenID Connect provider (broker/sandbox/idp.py), mostly over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from broker.sandbox.idp import (
    DEFAULT_USERS,
    DevClient,
    DevIdPState,
    DevUser,
    create_idp_app,
    encode_hs256,
    encode_unsecured,
    flip_signature,
)
from tests.support.clock import Clock
from tests.support.servers import RunningServer, serve_in_thread

CLIENT_ID = "broker-test"
CLIENT_SECRET = "s3cret-for-tests"
REDIRECT_URI = "http://rp.test/oidc/callback"
PUBLIC_ID = "spa"
PUBLIC_REDIRECT = "http://rp.test/spa/callback"


@dataclass
class IdP:
    server: RunningServer
    state: DevIdPState
    clock: Clock

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def _idp_server() -> Iterator[tuple[RunningServer, DevIdPState, Clock]]:
    clock = Clock(1_700_000_000.0)
    app = create_idp_app(
        clients=[
            DevClient(CLIENT_ID, CLIENT_SECRET, (REDIRECT_URI,)),
            DevClient(PUBLIC_ID, None, (PUBLIC_REDIRECT,)),
        ],
        clock=clock,
    )
    state = app.extensions["dev_idp"]
    with serve_in_thread(app) as server:
        yield server, state, clock


@pytest.fixture
def idp(_idp_server: tuple[RunningServer, DevIdPState, Clock]) -> Iterator[IdP]:
    server, state, clock = _idp_server
    yield IdP(server, state, clock)
    # Undo the hooks a test may have set; the server (and its key) is shared.
    state.tamper = None
    state.userinfo_override = None
    state.token_error = None
    state.id_token_claims_in_token = True
    state.issuer = None


@pytest.fixture
def http(idp: IdP) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=idp.url, follow_redirects=False, timeout=10) as client:
        yield client


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(challenge: str, **overrides: str) -> dict[str, str]:
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid email profile",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params


def query_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(
    http: httpx.Client,
    params: dict[str, str],
    email: str = "alice@example.com",
    password: str = "password",
) -> httpx.Response:
    page = http.get("/authorize", params=params)
    assert page.status_code == 200, page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert action is not None
    return http.post(
        action.group(1).replace("&amp;", "&"),
        data={"email": email, "password": password, "action": "sign_in"},
    )


def get_code(http: httpx.Client, params: dict[str, str], **login: str) -> str:
    query = query_of(sign_in(http, params, **login))
    assert query["state"] == params["state"]
    return query["code"]


def exchange(
    http: httpx.Client,
    code: str,
    verifier: str,
    *,
    redirect_uri: str = REDIRECT_URI,
    auth: tuple[str | bytes, str | bytes] | None = (CLIENT_ID, CLIENT_SECRET),
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        **(extra or {}),
    }
    if auth is None:
        return http.post("/token", data=data)
    return http.post("/token", data=data, auth=(auth[0], auth[1]))


def verify_id_token(http: httpx.Client, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(http.get("/jwks.json").json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] in {k.kid for k in keys}
    return dict(token.claims)


def test_discovery(idp: IdP, http: httpx.Client) -> None:
    doc = http.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == idp.url
    for name, path in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks.json"),
        ("end_session_endpoint", "/end-session"),
    ]:
        assert doc[name] == idp.url + path
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    # Advertised on purpose: the broker must not take its allow-list from here.
    assert doc["id_token_signing_alg_values_supported"] == ["RS256", "HS256", "none"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert "openid" in doc["scopes_supported"]
    assert {"email", "email_verified", "groups", "nonce"} <= set(doc["claims_supported"])

    idp.state.issuer = "https://idp.example.test"
    assert http.get("/.well-known/openid-configuration").json()["issuer"] == (
        "https://idp.example.test"
    )


def test_code_flow_with_pkce(idp: IdP, http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    params = authorize_params(challenge, scope="openid email profile groups")
    page = http.get("/authorize", params=params)
    assert page.status_code == 200
    for needle in ('id="email"', 'name="email"', 'id="password"', 'name="password"'):
        assert needle in page.text
    assert ">Sign in</button>" in page.text
    assert ">Cancel</button>" in page.text
    assert "alice@example.com" in page.text
    assert "http://" not in page.text.replace(idp.url, "")  # no external assets
    recorded = idp.state.authorize_requests[-1]
    assert recorded["code_challenge"] == challenge
    assert recorded["nonce"] == params["nonce"]

    code = get_code(http, params)
    response = exchange(http, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["scope"] == "openid email profile groups"
    assert idp.state.token_requests[-1]["code_verifier"] == verifier
    assert "client_secret" not in idp.state.token_requests[-1]
    assert idp.state.token_auth_methods[-1] == "client_secret_basic"

    claims = verify_id_token(http, body["id_token"])
    now = int(idp.clock.now)
    assert claims["iss"] == idp.url
    assert claims["aud"] == CLIENT_ID
    assert claims["sub"] == "dev-alice"
    assert claims["nonce"] == params["nonce"]
    assert claims["iat"] == now
    assert claims["exp"] == now + 300
    assert claims["auth_time"] == now
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["given_name"] == "Alice"
    assert claims["name"] == "Alice Anderson"
    assert claims["groups"] == ["buyers"]

    info = http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.json()["sub"] == "dev-alice"
    assert info.json()["email"] == "alice@example.com"


def test_wrong_code_verifier_is_refused(idp: IdP, http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    code = get_code(http, authorize_params(challenge))
    response = exchange(http, code, other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_missing_code_challenge_is_refused(http: httpx.Client) -> None:
    params = authorize_params("x")
    del params["code_challenge"], params["code_challenge_method"]
    query = query_of(http.get("/authorize", params=params))
    assert query["error"] == "invalid_request"
    assert query["state"] == params["state"]

    _, challenge = pkce_pair()
    query = query_of(
        http.get(
            "/authorize", params=authorize_params(challenge, **{"code_challenge_method": "plain"})
        )
    )
    assert query["error"] == "invalid_request"


def test_code_is_single_use(http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(http, authorize_params(challenge))
    first = exchange(http, code, verifier)
    assert first.status_code == 200
    second = exchange(http, code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    # Reuse revokes what the code produced (RFC 6749 section 4.1.2).
    token = first.json()["access_token"]
    info = http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert info.status_code == 401


def test_code_expires_after_60_seconds(idp: IdP, http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(http, authorize_params(challenge))
    idp.clock.now += 61
    response = exchange(http, code, verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_code_is_bound_to_redirect_uri_and_client(idp: IdP, http: httpx.Client) -> None:
    idp.state.add_client(
        DevClient("other", "other-secret", ("http://rp.test/other",), "client_secret_post")
    )
    verifier, challenge = pkce_pair()
    code = get_code(http, authorize_params(challenge))
    stolen = exchange(
        http,
        code,
        verifier,
        auth=None,
        extra={"client_id": "other", "client_secret": "other-secret"},
    )
    assert stolen.json()["error"] == "invalid_grant"

    code = get_code(http, authorize_params(challenge))
    response = exchange(http, code, verifier, redirect_uri="http://rp.test/elsewhere")
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        (CLIENT_ID, "http://evil.test/callback"),
        (CLIENT_ID, REDIRECT_URI + "/extra"),
        (CLIENT_ID, ""),
        ("nobody", REDIRECT_URI),
    ],
)
def test_bad_client_or_redirect_uri_gives_error_page(
    http: httpx.Client, client_id: str, redirect_uri: str
) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(challenge, client_id=client_id, redirect_uri=redirect_uri)
    response = http.get("/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def test_key_rotation_changes_jwks(idp: IdP, http: httpx.Client) -> None:
    before = http.get("/jwks.json").json()["keys"]
    assert len(before) == 1
    old = before[0]
    assert old["use"] == "sig"
    assert old["alg"] == "RS256"
    assert old["kid"]
    assert "d" not in old
    requests_before = idp.state.jwks_requests

    new_kid = idp.state.rotate_key()

    after = http.get("/jwks.json").json()["keys"]
    assert [k["kid"] for k in after] == [new_kid]
    assert new_kid != old["kid"]
    assert after[0]["n"] != old["n"]
    assert idp.state.jwks_requests == requests_before + 1

    verifier, challenge = pkce_pair()
    code = get_code(http, authorize_params(challenge))
    id_token = exchange(http, code, verifier).json()["id_token"]
    stale = KeySet.import_key_set({"keys": before})
    with pytest.raises(JoseError):
        jwt.decode(id_token, stale, algorithms=["RS256"])
    assert verify_id_token(http, id_token)["sub"] == "dev-alice"


def test_wrong_password_shows_page_again(idp: IdP, http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    response = sign_in(http, authorize_params(challenge), password="wrong")
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.text
    assert 'value="alice@example.com"' in response.text
    assert "wrong" not in response.text.replace("Wrong", "")


def test_cancel_returns_access_denied(http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(challenge)
    page = http.get("/authorize", params=params)
    action = re.search(r'action="([^"]+)"', page.text)
    assert action is not None
    response = http.post(action.group(1).replace("&amp;", "&"), data={"action": "cancel"})
    query = query_of(response)
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert query == {"error": "access_denied", "state": params["state"]}


def test_public_client_and_client_auth(idp: IdP, http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    params = authorize_params(challenge, client_id=PUBLIC_ID, redirect_uri=PUBLIC_REDIRECT)
    code = get_code(http, params)
    response = exchange(
        http,
        code,
        verifier,
        redirect_uri=PUBLIC_REDIRECT,
        auth=None,
        extra={"client_id": PUBLIC_ID},
    )
    assert response.status_code == 200, response.text
    assert idp.state.token_auth_methods[-1] == "none"

    # The confidential client may not drop its secret, nor use a wrong one.
    code = get_code(http, authorize_params(challenge))
    response = exchange(http, code, verifier, auth=None, extra={"client_id": CLIENT_ID})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    code = get_code(http, authorize_params(challenge))
    response = exchange(http, code, verifier, auth=(CLIENT_ID, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_claims_only_at_userinfo(idp: IdP, http: httpx.Client) -> None:
    idp.state.id_token_claims_in_token = False
    idp.state.userinfo_override = lambda claims: {**claims, "sub": "someone-else"}
    verifier, challenge = pkce_pair()
    code = get_code(http, authorize_params(challenge), email="bob@example.com")
    body = exchange(http, code, verifier).json()
    claims = verify_id_token(http, body["id_token"])
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce"}
    calls = idp.state.userinfo_requests
    info = http.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert idp.state.userinfo_requests == calls + 1
    assert info.json() == {
        "sub": "someone-else",
        "email": "bob@example.com",
        "email_verified": True,
    }


def test_unverified_user_and_bad_bearer(http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    code = get_code(http, authorize_params(challenge), email="carol@example.com")
    claims = verify_id_token(http, exchange(http, code, verifier).json()["id_token"])
    assert claims["email_verified"] is False
    assert "groups" not in claims
    response = http.get("/userinfo", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert "invalid_token" in response.headers["www-authenticate"]


def test_tamper_hooks(idp: IdP, http: httpx.Client) -> None:
    def tampered() -> str:
        verifier, challenge = pkce_pair()
        code = get_code(http, authorize_params(challenge))
        response = exchange(http, code, verifier)
        assert response.status_code == 200
        return str(response.json()["id_token"])

    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def wrong_aud(header: dict[str, Any], claims: dict[str, Any], state: DevIdPState) -> str:
        seen.append((header, claims))
        return state.sign(header, {**claims, "aud": "someone-else"})

    idp.state.tamper = wrong_aud
    assert verify_id_token(http, tampered())["aud"] == "someone-else"
    assert seen[0][0]["kid"] == idp.state.kid

    idp.state.tamper = lambda h, c, s: encode_unsecured(h, c)
    token = tampered()
    assert token.endswith(".")
    with pytest.raises(JoseError):
        verify_id_token(http, token)

    idp.state.tamper = lambda h, c, s: encode_hs256(h, c, s.public_pem())
    with pytest.raises(JoseError):
        verify_id_token(http, tampered())

    idp.state.tamper = lambda h, c, s: flip_signature(s.sign(h, c))
    with pytest.raises(BadSignatureError):
        verify_id_token(http, tampered())


def test_token_error_hook(idp: IdP, http: httpx.Client) -> None:
    idp.state.token_error = {"error": "invalid_grant", "error_description": "nope"}
    verifier, challenge = pkce_pair()
    code = get_code(http, authorize_params(challenge))
    response = exchange(http, code, verifier)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "nope"}


def test_end_session_redirects_back_with_state(http: httpx.Client) -> None:
    response = http.get(
        "/end-session",
        params={"post_logout_redirect_uri": "http://rp.test/signed-out", "state": "xyz"},
    )
    assert response.headers["location"] == "http://rp.test/signed-out?state=xyz"
    refused = http.get(
        "/end-session", params={"post_logout_redirect_uri": "http://evil.test/", "state": "x"}
    )
    assert refused.status_code == 400
    assert "location" not in refused.headers


def test_issuer_derived_from_request_without_server() -> None:
    app = create_idp_app(clients=[DevClient(CLIENT_ID, CLIENT_SECRET, (REDIRECT_URI,))])
    client = app.test_client()
    doc = client.get("/.well-known/openid-configuration", base_url="http://idp.local:5555/").json
    assert doc is not None
    assert doc["issuer"] == "http://idp.local:5555"
    assert {u.email for u in DEFAULT_USERS} == {
        "alice@example.com",
        "bob@example.com",
        "carol@example.com",
    }
    assert DevClient("p", None, (REDIRECT_URI,)).token_endpoint_auth_method == "none"
    assert isinstance(app.extensions["dev_idp"].users[0], DevUser)
