"""Cookie and transport headers, as a browser receives them: the broker's session cookie is a
``__Host-`` cookie over https and carries no personal data; HSTS is sent over https only.

The Flask test client speaks https to the app here (the cookie's Secure flag and the header
shapes are the point); the flows themselves run over real HTTP in the other tests.
"""

from __future__ import annotations

import base64
import secrets
import time
import zlib
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import OctKey

from broker.app import create_app
from broker.config import parse_settings

STOREFRONT = "https://shop.example.test"
CLIENT_SECRET = secrets.token_hex(32)


def build(tmp_path: Path, base_url: str) -> Flask:
    document: dict[str, Any] = {
        "broker": {
            "base_url": base_url,
            "secret_key": secrets.token_urlsafe(32),
            "database_url": f"sqlite:///{tmp_path / 'broker.db'}",
        },
        "stores": {
            "acme": {
                "store_hash": "abc123",
                "access_token": "token",
                "client_id": "app-client",
                "client_secret": CLIENT_SECRET,
                "storefront_url": STOREFRONT,
                "connections": {
                    "corp": {
                        "type": "oidc",
                        "issuer": "https://idp.example.test",
                        "client_id": "broker",
                        "client_secret": "s" * 24,
                    }
                },
            }
        },
    }
    return create_app(parse_settings(document, env={}))


def current_customer_jwt(customer_id: int, email: str) -> str:
    now = int(time.time())
    claims = {
        "customer": {"id": customer_id, "email": email, "group_id": "0"},
        "iss": "bc/apps",
        "sub": "abc123",
        "iat": now,
        "exp": now + 900,
        "version": 1,
        "aud": "app-client",
        "application_id": "app",
        "store_hash": "abc123",
        "operation": "current_customer",
    }
    return jwt.encode({"typ": "JWT", "alg": "HS256"}, claims, OctKey.import_key(CLIENT_SECRET))


def link_flow(client: FlaskClient, base_url: str) -> list[str]:
    """Nonce, start, finish, the link page; every Set-Cookie header the browser received."""
    received: list[str] = []
    back = client.get("/acme/link/nonce?return=/account.php", base_url=base_url)
    received += back.headers.getlist("Set-Cookie")
    nonce = back.headers["Location"].partition("#sso-link-nonce=")[2]
    started = client.post(
        "/acme/link/start",
        data={"customer_jwt": current_customer_jwt(42, "pat@shop.example"), "nonce": nonce},
        headers={"Origin": STOREFRONT},
        base_url=base_url,
    )
    assert started.status_code == 303, started.text
    received += started.headers.getlist("Set-Cookie")
    finished = client.get(started.headers["Location"], base_url=base_url)
    assert finished.status_code == 303, finished.text
    received += finished.headers.getlist("Set-Cookie")
    page = client.get("/acme/link", base_url=base_url)
    assert page.status_code == 200, page.text
    assert "pat@shop.example" in page.text, "the page still shows the store account's e-mail"
    received += page.headers.getlist("Set-Cookie")
    return received


def readable(cookie_value: str) -> str:
    """What anyone holding the cookie can read: itsdangerous's payload is only signed."""
    compressed = cookie_value.startswith(".")
    payload = cookie_value.lstrip(".").split(".")[0]
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return (zlib.decompress(data) if compressed else data).decode()


def test_over_https_the_session_cookie_is_host_prefixed_and_holds_no_personal_data(
    tmp_path: Path,
) -> None:
    app = build(tmp_path, "https://sso.example.test")
    headers = link_flow(app.test_client(), "https://sso.example.test")
    sessions = [h for h in headers if h.startswith("__Host-broker_session=")]
    assert sessions, headers
    assert not [h for h in headers if h.startswith("broker_session=")]
    for header in sessions:
        attributes = [part.strip().lower() for part in header.split(";")[1:]]
        assert "secure" in attributes
        assert "httponly" in attributes
        assert "path=/" in attributes
        assert not [a for a in attributes if a.startswith("domain=")]
        cookie = SimpleCookie()
        cookie.load(header)
        content = readable(cookie["__Host-broker_session"].value)
        assert "pat@shop.example" not in content
        assert "@" not in content
    assert all("pat@shop.example" not in h for h in headers)


@pytest.mark.parametrize(
    ("base_url", "hsts"),
    [("https://sso.example.test", "max-age=31536000"), ("http://127.0.0.1:5000", None)],
)
def test_hsts_is_sent_over_https_only(tmp_path: Path, base_url: str, hsts: str | None) -> None:
    client = build(tmp_path, base_url).test_client()
    for path in ("/healthz", "/acme/login", "/nope/login"):  # a page, and an error page too
        response = client.get(path, base_url=base_url)
        assert response.headers.get("Strict-Transport-Security") == hsts, path
