"""The Customer Login JWT, byte for byte as BigCommerce expects, and the redirect guard."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from broker.bigcommerce.login_token import (
    mint_login_token,
    safe_redirect_path,
    storefront_login_url,
)

SECRET = "c" * 48


def segments(token: str) -> tuple[dict[str, object], dict[str, object]]:
    def decode(part: str) -> dict[str, object]:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


def mint(**over: object) -> str:
    args: dict[str, object] = {
        "client_id": "app-client",
        "client_secret": SECRET,
        "store_hash": "abc123",
        "customer_id": 42,
        "channel_id": 1,
        "redirect_to": "/account.php",
        "now": 1_700_000_000,
        "jti": "0b7c1c9e-1111-4c1e-9c1e-000000000001",
    }
    args.update(over)
    return mint_login_token(**args)  # type: ignore[arg-type]


def test_header_and_claims_are_exactly_what_bigcommerce_reads() -> None:
    header, claims = segments(mint())
    assert header == {"typ": "JWT", "alg": "HS256"}
    assert claims == {
        "iss": "app-client",
        "iat": 1_700_000_000,
        "jti": "0b7c1c9e-1111-4c1e-9c1e-000000000001",
        "operation": "customer_login",
        "store_hash": "abc123",
        "customer_id": 42,
        "channel_id": 1,
        "redirect_to": "/account.php",
    }


def test_signature_verifies_with_the_client_secret_only() -> None:
    token = mint()
    assert jwt.decode(token, OctKey.import_key(SECRET), algorithms=["HS256"]).claims["iss"]
    with pytest.raises(Exception, match="signature"):
        jwt.decode(token, OctKey.import_key("d" * 48), algorithms=["HS256"])


def test_deterministic_for_a_given_clock_and_jti_and_fresh_otherwise() -> None:
    assert mint() == mint()
    assert mint(jti="another") != mint()
    assert mint(now=1_700_000_001) != mint()


def test_request_ip_only_when_given() -> None:
    assert "request_ip" not in segments(mint())[1]
    assert segments(mint(request_ip="203.0.113.9"))[1]["request_ip"] == "203.0.113.9"


def test_an_unsafe_redirect_is_refused_by_the_minter_itself() -> None:
    with pytest.raises(ValueError, match="relative"):
        mint(redirect_to="https://evil.com/")


@pytest.mark.parametrize(
    "value",
    [
        "//evil.com",
        "///evil.com",
        "https://evil.com",
        "http:evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,hi",
        "/\t/evil.com",
        "/\n/evil.com",
        " /account.php",
        "evil.com",
        "",
        None,
        "/" + "a" * 3000,
    ],
)
def test_open_redirect_forms_fall_back_to_the_default(value: str | None) -> None:
    assert safe_redirect_path(value, "/account.php") == "/account.php"


@pytest.mark.parametrize(
    "value", ["/", "/account.php", "/cart.php?action=add&id=3", "/blog/#comments", "/a%2F%2Fb"]
)
def test_paths_on_the_store_are_kept(value: str) -> None:
    assert safe_redirect_path(value, "/account.php") == value


def test_login_url() -> None:
    assert storefront_login_url("https://shop.example/", "a.b.c") == (
        "https://shop.example/login/token/a.b.c"
    )
