"""The development IdP taught real IdPs' quirks (:class:`broker.sandbox.idp.IdPQuirks`): the
tokens each client gets, the discovery documents of its authorization servers, the Microsoft
Graph double, and its front-channel logout page. Over real HTTP, without the broker."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from broker.sandbox.idp import DevClient, DevIdPState, DevUser, IdPQuirks, create_idp_app
from tests.support.clock import Clock
from tests.support.servers import serve_in_thread

REDIRECT = "http://rp.test/cb"
NOW = 1_700_000_000.0
TENANT = "11111111-1111-4111-8111-111111111111"
USER = DevUser(
    sub="u-1",
    email="una@corp.example",
    password="password",
    given_name="Una",
    groups=("g1", "g2", "g3"),
    claims={"tid": TENANT, "hd": "corp.example"},
)


@pytest.fixture
def idp() -> Iterator[tuple[str, DevIdPState]]:
    app = create_idp_app(clients=(), users=(USER,), clock=Clock(NOW))
    with serve_in_thread(app) as server:
        yield server.url, app.extensions["dev_idp"]


def tokens_for(url: str, state: DevIdPState, quirks: IdPQuirks, **client: Any) -> dict[str, Any]:
    """Sign USER in at a client with ``quirks``: the token answer, the ID token's claims."""
    state.add_client(DevClient("c", "secret", (REDIRECT,), quirks=quirks, **client))
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    params = {
        "client_id": "c",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid email profile groups",
        "state": "s",
        "nonce": "n",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    with httpx.Client(base_url=url) as http:
        page = http.get("/authorize", params=params)
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None
        answer = http.post(
            action.group(1).replace("&amp;", "&"),
            data={"email": USER.email, "password": "password", "action": "sign_in"},
        )
        code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
        body = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
            auth=("c", "secret"),
        ).json()
        keys = KeySet.import_key_set(http.get("/jwks.json").json())
    claims = dict(jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims)
    return {**body, "claims": claims}


def test_no_email_verified_and_extra_claims(idp: tuple[str, DevIdPState]) -> None:
    url, state = idp
    claims = tokens_for(url, state, IdPQuirks(send_email_verified=False, claims={"xms_edov": 1}))[
        "claims"
    ]
    assert "email_verified" not in claims
    assert (claims["xms_edov"], claims["tid"], claims["hd"]) == (1, TENANT, "corp.example")


def test_groups_go_where_the_idp_puts_them(idp: tuple[str, DevIdPState]) -> None:
    url, state = idp
    auth0 = tokens_for(url, state, IdPQuirks(groups_claim="https://x.example/groups"))["claims"]
    assert auth0["https://x.example/groups"] == ["g1", "g2", "g3"]
    assert "groups" not in auth0
    keycloak = tokens_for(url, state, IdPQuirks(groups_claim=("realm_access", "roles")))
    assert keycloak["claims"]["realm_access"] == {"roles": ["g1", "g2", "g3"]}


def test_a_groups_overage_and_the_graph_double(idp: tuple[str, DevIdPState]) -> None:
    url, state = idp
    answer = tokens_for(url, state, IdPQuirks(groups_overage_above=2))
    claims = answer["claims"]
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"}
    assert "graph.windows.net" in claims["_claim_sources"]["src1"]["endpoint"]

    graph = f"{url}/_graph/v1.0/me/getMemberObjects"
    bearer = {"Authorization": f"Bearer {answer['access_token']}"}
    body = {"securityEnabledOnly": False}
    assert httpx.post(graph, json=body, headers=bearer).json()["value"] == ["g1", "g2", "g3"]
    state.graph_page_size = 2
    first = httpx.post(graph, json=body, headers=bearer).json()
    assert first["value"] == ["g1", "g2"]
    assert httpx.get(first["@odata.nextLink"], headers=bearer).json()["value"] == ["g3"]
    assert httpx.post(graph, json={}, headers=bearer).status_code == 400
    assert httpx.post(graph, json=body, headers={"Authorization": "Bearer x"}).status_code == 401
    state.graph_fault = 503
    assert httpx.post(graph, json=body, headers=bearer).status_code == 503


def test_authorization_servers_under_a_path(idp: tuple[str, DevIdPState]) -> None:
    url, state = idp
    okta = tokens_for(url, state, IdPQuirks(issuer_path="/oauth2/default"))["claims"]
    assert okta["iss"] == f"{url}/oauth2/default"
    doc = httpx.get(f"{url}/oauth2/default/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{url}/oauth2/default"
    assert doc["token_endpoint"] == f"{url}/token"

    entra = tokens_for(url, state, IdPQuirks(issuer_path="/{tenantid}/v2.0"))["claims"]
    assert entra["iss"] == f"{url}/{TENANT}/v2.0"
    doc = httpx.get(f"{url}/organizations/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == url + "/{tenantid}/v2.0"
    assert httpx.get(f"{url}/nowhere/.well-known/openid-configuration").status_code == 404


def test_a_clock_that_is_off(idp: tuple[str, DevIdPState]) -> None:
    url, state = idp
    claims = tokens_for(url, state, IdPQuirks(clock_offset_seconds=-900))["claims"]
    assert claims["iat"] == NOW - 900
    assert claims["exp"] == NOW - 900 + 300


def test_the_frontchannel_logout_page_frames_each_client(idp: tuple[str, DevIdPState]) -> None:
    url, state = idp
    rp = "http://rp.test/fc"
    claims = tokens_for(url, state, IdPQuirks(), frontchannel_logout_uri=rp)["claims"]
    assert claims["sid"] in state.sessions
    page = httpx.get(f"{url}/_frontchannel-logout", params={"sub": USER.sub})
    [src] = re.findall(r'<iframe[^>]* src="([^"]+)"', page.text)
    frame = urlsplit(src.replace("&amp;", "&"))
    assert f"{frame.scheme}://{frame.netloc}{frame.path}" == rp
    assert parse_qs(frame.query) == {"iss": [url], "sid": [claims["sid"]]}
    assert "frame-src http://rp.test" in page.headers["content-security-policy"]
    assert state.sessions == {}, "the IdP's sessions of that user ended"
    again = httpx.get(f"{url}/_frontchannel-logout", params={"sub": USER.sub})
    assert re.findall(r"<iframe", again.text) == []
