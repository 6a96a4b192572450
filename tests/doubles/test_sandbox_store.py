"""The sandbox BigCommerce store, over real HTTP: the quirks the broker depends on.

Each test gets a fresh sandbox app (one server serves the module) with a settable clock, so
that JWT ages and rate-limit windows are deterministic. Login JWTs are minted here with
joserfc directly. Webhooks go to a small Flask receiver (one server for the module too) that
records what it gets.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, Response, request
from joserfc import jwt
from joserfc.jwk import OctKey

from broker.sandbox.store import (
    DELIVERY_TIMEOUT,
    SandboxNotFound,
    SandboxState,
    SandboxStore,
    create_sandbox_app,
)
from tests.support.clock import Clock
from tests.support.serve import free_port
from tests.support.servers import serve_in_thread

HASH = "abc123"
TOKEN = "api-token-0123456789"
CLIENT_ID = "client-id-sandbox"
SECRET = "client-secret-0123456789abcdef"
START = 1_700_000_000.0
STORE = SandboxStore(
    store_hash=HASH,
    access_token=TOKEN,
    client_id=CLIENT_ID,
    client_secret=SECRET,
    channel_ids=(1, 2),
    name="Test shop",
    sso_login_url="https://broker.test/login/acme",
)


@dataclass
class Shop:
    url: str
    state: SandboxState
    clock: Clock
    api: httpx.Client  # authenticated, base_url = the store's API root
    browser: httpx.Client  # no redirects followed, keeps cookies

    def storefront(self, path: str = "") -> str:
        return f"/s/{HASH}{path}"


class SwappableApp:
    """One server for the module (shutting a server down costs 0.5 s); a fresh app per test."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[tuple[str, SwappableApp]]:
    target = SwappableApp()
    with serve_in_thread(target) as srv:
        yield srv.url, target


@pytest.fixture
def shop(sandbox_server: tuple[str, SwappableApp]) -> Iterator[Shop]:
    url, target = sandbox_server
    clock = Clock(START)
    app = create_sandbox_app(clock=clock)
    state: SandboxState = app.extensions["sandbox"]
    state.add_store(STORE)
    target.app = app
    with (
        httpx.Client(
            base_url=f"{url}/stores/{HASH}", headers={"X-Auth-Token": TOKEN}, timeout=5
        ) as api,
        httpx.Client(base_url=url, timeout=5) as browser,
    ):
        yield Shop(url, state, clock, api, browser)


def mint(
    claims: dict[str, Any] | None = None,
    *,
    secret: str = SECRET,
    header: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    body: dict[str, Any] = {
        "iss": CLIENT_ID,
        "iat": int(START),
        "jti": str(uuid.uuid4()),
        "operation": "customer_login",
        "store_hash": HASH,
        "customer_id": 1,
    }
    body.update(claims or {})
    for name in drop:
        body.pop(name)
    head = header if header is not None else {"typ": "JWT", "alg": "HS256"}
    return jwt.encode(head, body, OctKey.import_key(secret), default_type=None)


def new_customer(email: str, **extra: Any) -> dict[str, Any]:
    return {"email": email, "first_name": "Ada", "last_name": "Lovelace", **extra}


# -- management API ----------------------------------------------------------------------------


def test_create_needs_an_array_of_at_most_ten(shop: Shop) -> None:
    as_object = shop.api.post("/v3/customers", json=new_customer("a@example.com"))
    assert as_object.status_code == 422
    assert set(as_object.json()) >= {"status", "title", "type", "errors"}

    too_many = [new_customer(f"u{i}@example.com") for i in range(11)]
    assert shop.api.post("/v3/customers", json=too_many).status_code == 413

    missing = shop.api.post("/v3/customers", json=[{"email": "b@example.com"}])
    assert missing.status_code == 422
    assert any("last_name" in key for key in missing.json()["errors"])
    assert shop.state.customers(HASH) == []

    created = shop.api.post("/v3/customers", json=[new_customer("a@example.com")])
    assert created.status_code == 200
    body = created.json()
    assert body["meta"] == {}
    [customer] = body["data"]
    assert customer["id"] == 1
    assert customer["customer_group_id"] == 0
    assert customer["channel_ids"] is None
    assert "authentication" not in customer


def test_duplicate_email_is_422_and_nothing_in_the_batch_is_created(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="taken@example.com")
    batch = [new_customer("fresh@example.com"), new_customer("TAKEN@example.com")]
    response = shop.api.post("/v3/customers", json=batch)
    assert response.status_code == 422
    assert [c["email"] for c in shop.state.customers(HASH)] == ["taken@example.com"]


def test_email_is_unique_per_channel_not_per_store(shop: Shop) -> None:
    first = shop.api.post("/v3/customers", json=[new_customer("a@example.com", channel_ids=[1])])
    second = shop.api.post("/v3/customers", json=[new_customer("a@example.com", channel_ids=[2])])
    assert (first.status_code, second.status_code) == (200, 200)
    # A global customer (channel_ids null) overlaps every channel.
    clash = shop.api.post("/v3/customers", json=[new_customer("a@example.com")])
    assert clash.status_code == 422

    found = shop.api.get("/v3/customers", params={"email:in": "A@Example.com"}).json()
    assert sorted(c["channel_ids"][0] for c in found["data"]) == [1, 2]
    assert found["meta"]["pagination"]["total"] == 2


def test_email_in_is_case_insensitive_unless_the_store_says_otherwise(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="Mixed@Example.com")
    hits = shop.api.get("/v3/customers", params={"email:in": "mixed@example.com"}).json()
    assert [c["email"] for c in hits["data"]] == ["Mixed@Example.com"]

    strict = SandboxStore("strict1", TOKEN, CLIENT_ID, SECRET, email_case_sensitive=True)
    shop.state.add_store(strict)
    shop.state.add_customer("strict1", email="Mixed@Example.com")
    url = f"{shop.url}/stores/strict1/v3/customers"
    miss = shop.api.get(url, params={"email:in": "mixed@example.com"}).json()
    exact = shop.api.get(url, params={"email:in": "Mixed@Example.com"}).json()
    assert (len(miss["data"]), len(exact["data"])) == (0, 1)


def test_unknown_filter_bad_limit_and_missing_single_customer_route(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="a@example.com")
    assert shop.api.get("/v3/customers", params={"email": "a@example.com"}).status_code == 422
    assert shop.api.get("/v3/customers", params={"limit": 251}).status_code == 422
    assert shop.api.get("/v3/customers/1").status_code == 404
    by_id = shop.api.get("/v3/customers", params={"id:in": "1,7"}).json()
    assert [c["id"] for c in by_id["data"]] == [1]
    pagination = by_id["meta"]["pagination"]
    assert pagination["per_page"] == 50
    assert pagination["current_page"] == 1


def test_401_without_the_access_token(shop: Shop) -> None:
    response = httpx.get(f"{shop.url}/stores/{HASH}/v3/customers")
    assert response.status_code == 401
    assert response.json()["status"] == 401
    wrong = httpx.get(
        f"{shop.url}/stores/{HASH}/v2/time", headers={"X-Auth-Token": "nope"}
    ).status_code
    assert wrong == 401


def test_put_and_delete(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="a@example.com")
    shop.state.add_customer(HASH, email="b@example.com")
    updated = shop.api.put("/v3/customers", json=[{"id": 1, "first_name": "Grace"}])
    assert updated.status_code == 200
    assert updated.json()["data"][0]["first_name"] == "Grace"
    assert shop.api.put("/v3/customers", json=[{"first_name": "x"}]).status_code == 422
    steal = shop.api.put("/v3/customers", json=[{"id": 2, "email": "A@example.com"}])
    assert steal.status_code == 422

    assert shop.api.delete("/v3/customers").status_code == 204
    assert len(shop.state.customers(HASH)) == 2
    assert shop.api.delete("/v3/customers", params={"id:in": "2"}).status_code == 204
    assert [c["id"] for c in shop.state.customers(HASH)] == [1]


def test_validate_credentials_and_its_own_rate_limit(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="a@example.com", password="correct-horse-1")
    path = "/v3/customers/validate-credentials"
    good = shop.api.post(path, json={"email": "A@example.com", "password": "correct-horse-1"})
    assert good.json() == {"is_valid": True, "customer_id": 1}
    bad = shop.api.post(path, json={"email": "a@example.com", "password": "wrong"})
    assert bad.json() == {"is_valid": False, "customer_id": None}

    shop.state.set_faults(HASH, credentials_quota=2)
    statuses = [
        shop.api.post(path, json={"email": "a@example.com", "password": "x"}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert shop.state.requests(HASH)[-1].body["password"] == "***"


def test_server_time_follows_the_clock_and_its_offset(shop: Shop) -> None:
    assert shop.api.get("/v2/time").json() == {"time": int(START)}
    shop.state.set_faults(HASH, clock_offset=-90)
    assert shop.api.get("/v2/time").json() == {"time": int(START) - 90}


# -- rate limits and faults --------------------------------------------------------------------


def test_rate_limit_headers_count_down_a_real_window(shop: Shop) -> None:
    shop.state.set_faults(HASH, quota=3)
    responses = [shop.api.get("/v2/time") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["X-Rate-Limit-Requests-Left"] for r in responses] == ["2", "1", "0", "0"]
    limited = responses[-1].headers
    assert limited["X-Rate-Limit-Time-Window-Ms"] == "30000"
    assert limited["X-Rate-Limit-Requests-Quota"] == "3"
    shop.clock.now += 10
    assert shop.api.get("/v2/time").headers["X-Rate-Limit-Time-Reset-Ms"] == "20000"
    shop.clock.now += 20
    assert shop.api.get("/v2/time").status_code == 200


def test_a_reset_fault_drops_the_connection_without_an_answer(shop: Shop) -> None:
    # What a client sees of a reset: its request fails in transit, no status at all; the
    # next request is answered, and the dropped one is not in the store's log.
    shop.state.set_faults(HASH, resets=1)
    with pytest.raises(httpx.TransportError):
        shop.api.get("/v3/customers")
    assert shop.api.get("/v3/customers").status_code == 200
    assert [r.status for r in shop.state.requests(HASH)] == [200]


def test_quota_holds_under_concurrent_requests(shop: Shop) -> None:
    shop.state.set_faults(HASH, quota=40)

    def burst() -> list[int]:
        with httpx.Client(base_url=shop.api.base_url, headers={"X-Auth-Token": TOKEN}) as api:
            return [api.get("/v2/time").status_code for _ in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [s for batch in pool.map(lambda _: burst(), range(8)) for s in batch]
    assert (statuses.count(200), statuses.count(429)) == (40, 40)
    assert len(shop.state.requests(HASH)) == 80


def test_a_429_storm_counts_down_then_ends(shop: Shop) -> None:
    shop.state.set_faults(HASH, rate_limit_for_ms=5000)
    first = shop.api.get("/v3/customers")
    assert first.status_code == 429
    assert first.headers["X-Rate-Limit-Time-Reset-Ms"] == "5000"
    assert first.headers["X-Rate-Limit-Requests-Left"] == "0"
    shop.clock.now += 2
    assert shop.api.get("/v3/customers").headers["X-Rate-Limit-Time-Reset-Ms"] == "3000"
    shop.clock.now += 3
    assert shop.api.get("/v3/customers").status_code == 200


def test_status_fault_answers_the_next_n_requests_and_is_logged(shop: Shop) -> None:
    shop.state.set_faults(HASH, status=503, count=2)
    statuses = [shop.api.get("/v2/time").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [r.status for r in shop.state.requests(HASH)] == [503, 503, 200]
    assert shop.state.requests(HASH)[0].path == "/v2/time"

    shop.state.set_faults(HASH, status=429, count=1, reset_ms=250)
    limited = shop.api.get("/v2/time")
    assert (limited.status_code, limited.headers["X-Rate-Limit-Time-Reset-Ms"]) == (429, "250")


def test_timeout_fault_makes_clients_time_out(shop: Shop) -> None:
    shop.state.set_faults(HASH, timeout_ms=600, count=1)
    with pytest.raises(httpx.ReadTimeout):
        shop.api.get("/v2/time", timeout=0.2)
    assert shop.api.get("/v2/time", timeout=2).status_code == 200


def test_control_api_over_http(shop: Shop) -> None:
    control = shop.browser
    made = control.post(
        "/_sandbox/stores",
        json={"store_hash": "s2", "access_token": "t", "client_id": "c", "client_secret": "x" * 16},
    )
    assert made.status_code == 201
    assert "client_secret" not in made.json()
    seeded = control.post("/_sandbox/stores/s2/customers", json={"email": "z@example.com"})
    assert seeded.status_code == 201
    assert control.get("/_sandbox/stores/s2/customers").json()[0]["email"] == "z@example.com"
    assert control.post("/_sandbox/stores/s2/faults", json={"status": 500}).status_code == 200
    api = f"{shop.url}/stores/s2/v2/time"
    assert httpx.get(api, headers={"X-Auth-Token": "t"}).status_code == 500
    assert control.post("/_sandbox/stores/s2/faults", json={}).status_code == 200
    assert httpx.get(api, headers={"X-Auth-Token": "t"}).status_code == 200
    logged = control.get("/_sandbox/stores/s2/requests").json()
    assert [r["status"] for r in logged] == [500, 200]
    assert control.delete("/_sandbox/stores/s2/requests").status_code == 204
    assert control.get("/_sandbox/stores/s2/requests").json() == []
    assert control.post("/_sandbox/stores/s2/faults", json={"bogus": 1}).status_code == 422
    assert control.get("/_sandbox/stores/nope/customers").status_code == 404


# -- storefront --------------------------------------------------------------------------------


def test_login_token_signs_in_once_and_the_account_page_shows_who(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="ada@example.com", first_name="Ada", last_name="L")
    token = mint()
    first = shop.browser.get(shop.storefront(f"/login/token/{token}"))
    assert first.status_code == 302
    assert first.headers["location"] == shop.storefront("/account.php")
    cookie = first.headers["set-cookie"]
    assert f"SHOP_SESSION_{HASH}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie

    account = shop.browser.get(shop.storefront("/account.php"))
    assert account.status_code == 200
    assert 'id="customer-email">ada@example.com<' in account.text
    assert 'id="customer-id">1<' in account.text
    assert 'id="customer-name">Ada L<' in account.text

    with httpx.Client(base_url=shop.url) as other_browser:
        again = other_browser.get(shop.storefront(f"/login/token/{token}"))
        assert again.headers["location"] == shop.storefront("/login.php?error=invalid_login")
        page = other_browser.get(again.headers["location"])
        assert "Invalid login. Please attempt to log in again" in page.text
    logins = shop.state.logins(HASH)
    assert [(e["ok"], e["reason"]) for e in logins] == [(True, "ok"), (False, "jti already used")]
    assert logins[0]["customer_id"] == 1


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"claims": {"iat": int(START) - 31}}, "older than 30 seconds"),
        ({"claims": {"iat": int(START) + 5}}, "in the future"),
        ({"claims": {"iat": START - 1.5}}, "iat must be an integer"),
        ({"secret": "another-secret-0123456789"}, "bad signature"),
        ({"header": {"alg": "HS256"}}, "header must be exactly"),
        ({"claims": {"iss": "someone-else"}}, "iss"),
        ({"claims": {"operation": "login"}}, "operation"),
        ({"claims": {"store_hash": "other"}}, "store_hash"),
        ({"claims": {"customer_id": "1"}}, "customer_id must be an integer"),
        ({"claims": {"customer_id": 99}}, "no such customer"),
        ({"drop": ("jti",)}, "jti missing"),
        ({"claims": {"channel_id": 3}}, "channel_id"),
        ({"claims": {"channel_id": 2}}, "may not sign in on this channel"),
        ({"claims": {"request_ip": "10.9.8.7"}}, "request_ip"),
    ],
)
def test_login_token_refusals(shop: Shop, kwargs: dict[str, Any], reason: str) -> None:
    shop.state.add_customer(HASH, email="ada@example.com", channel_ids=[1])
    response = shop.browser.get(shop.storefront(f"/login/token/{mint(**kwargs)}"))
    assert response.headers["location"] == shop.storefront("/login.php?error=invalid_login")
    assert "set-cookie" not in response.headers
    [entry] = shop.state.logins(HASH)
    assert entry["ok"] is False
    assert reason in entry["reason"]


def test_login_token_accepts_matching_ip_channel_and_redirect(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="ada@example.com", channel_ids=[2])
    claims = {"request_ip": "127.0.0.1", "channel_id": 2, "redirect_to": "/cart.php?x=1"}
    response = shop.browser.get(shop.storefront(f"/login/token/{mint(claims)}"))
    assert response.headers["location"] == shop.storefront("/cart.php?x=1")


def test_the_store_clock_offset_applies_to_login_tokens(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="ada@example.com")
    shop.state.set_faults(HASH, clock_offset=-120)
    ours = shop.browser.get(shop.storefront(f"/login/token/{mint()}"))
    assert "error=invalid_login" in ours.headers["location"]
    store_time = shop.api.get("/v2/time").json()["time"]
    theirs = shop.browser.get(shop.storefront(f"/login/token/{mint({'iat': store_time})}"))
    assert theirs.headers["location"] == shop.storefront("/account.php")


def test_absolute_redirect_to_loses_the_session(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="ada@example.com")
    token = mint({"redirect_to": "https://elsewhere.example/account.php"})
    response = shop.browser.get(shop.storefront(f"/login/token/{token}"))
    assert response.headers["location"] == "https://elsewhere.example/account.php"
    assert "set-cookie" not in response.headers
    assert shop.state.logins(HASH)[0]["ok"] is False


def test_current_customer_jwt_and_logout(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="ada@example.com", customer_group_id=6)
    current = shop.storefront("/customer/current.jwt")
    assert shop.browser.get(current, params={"app_client_id": CLIENT_ID}).status_code == 404
    shop.browser.get(shop.storefront(f"/login/token/{mint()}"))

    response = shop.browser.get(current, params={"app_client_id": CLIENT_ID})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    token = jwt.decode(response.text, OctKey.import_key(SECRET), algorithms=["HS256"])
    assert token.header == {"typ": "JWT", "alg": "HS256"}
    claims = token.claims
    assert claims["customer"] == {"id": 1, "email": "ada@example.com", "group_id": "6"}
    assert claims["aud"] == CLIENT_ID
    assert (claims["sub"], claims["store_hash"]) == (HASH, HASH)
    assert claims["operation"] == "current_customer"
    assert claims["exp"] == claims["iat"] + 900
    assert shop.browser.get(current, params={"app_client_id": "other"}).status_code == 404

    logout = shop.browser.get(shop.storefront("/login.php"), params={"action": "logout"})
    assert logout.headers["location"] == shop.storefront("/")
    assert shop.browser.get(current, params={"app_client_id": CLIENT_ID}).status_code == 404
    account = shop.browser.get(shop.storefront("/account.php"))
    assert account.headers["location"] == shop.storefront("/login.php")


def test_home_page_links_to_sso(shop: Shop) -> None:
    home = shop.browser.get(shop.storefront("/"))
    assert home.status_code == 200
    assert "Test shop" in home.text
    assert 'href="https://broker.test/login/acme?redirect_to=/account.php"' in home.text
    assert "Not signed in" in home.text


def test_home_page_links_to_the_password_form(shop: Shop) -> None:
    home = shop.browser.get(shop.storefront("/"))
    assert f'href="{shop.storefront("/login.php")}">Sign in</a>' in home.text


# -- storefront password sign-in ------------------------------------------------------------


def check_login(client: httpx.Client, email: str, password: str, store: str = HASH) -> Any:
    return client.post(
        f"/s/{store}/login.php",
        params={"action": "check_login"},
        data={"login_email": email, "login_pass": password},
    )


def test_login_page_shows_the_password_form(shop: Shop) -> None:
    text = shop.browser.get(shop.storefront("/login.php")).text
    form = re.search(r"<form[^>]*>", text)
    assert form is not None
    assert 'method="post"' in form.group(0)
    assert f'action="{shop.storefront("/login.php?action=check_login")}"' in form.group(0)
    assert re.search(r'<input[^>]*id="login-email"[^>]*name="login_email"', text)
    assert re.search(
        r'<input[^>]*type="password"[^>]*id="login-password"[^>]*name="login_pass"', text
    )
    assert re.search(r'<button type="submit"[^>]*>Sign in</button>', text)
    assert 'id="sso-link"' in text  # the SSO link is still there beside the form

    refused = shop.browser.get(shop.storefront("/login.php"), params={"error": "invalid_login"})
    assert "Invalid login. Please attempt to log in again" in refused.text
    other = shop.browser.post(shop.storefront("/login.php"), params={"action": "create_account"})
    assert other.status_code == 400


def test_password_sign_in_starts_a_session(shop: Shop) -> None:
    shop.state.add_customer(
        HASH, email="ada@example.com", password="correct-horse-1", first_name="Ada", last_name="L"
    )
    response = check_login(shop.browser, "ADA@example.com", "correct-horse-1")
    assert response.status_code == 302
    assert response.headers["location"] == shop.storefront("/account.php")
    cookie = response.headers["set-cookie"]
    assert f"SHOP_SESSION_{HASH}=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    first_session = shop.browser.cookies[f"SHOP_SESSION_{HASH}"]

    account = shop.browser.get(shop.storefront("/account.php"))
    assert 'id="customer-email">ada@example.com<' in account.text
    current = shop.browser.get(
        shop.storefront("/customer/current.jwt"), params={"app_client_id": CLIENT_ID}
    )
    claims = jwt.decode(current.text, OctKey.import_key(SECRET), algorithms=["HS256"]).claims
    assert claims["customer"]["email"] == "ada@example.com"

    # Signing in again replaces the browser's session: the old id is dead.
    check_login(shop.browser, "ada@example.com", "correct-horse-1")
    assert shop.browser.cookies[f"SHOP_SESSION_{HASH}"] != first_session
    stale = httpx.get(
        f"{shop.url}{shop.storefront('/account.php')}",
        headers={"Cookie": f"SHOP_SESSION_{HASH}={first_session}"},
    )
    assert stale.headers["location"] == shop.storefront("/login.php")

    entries = shop.state.password_logins(HASH)
    assert [(e["method"], e["ok"], e["reason"], e["customer_id"]) for e in entries] == [
        ("password", True, "ok", 1),
        ("password", True, "ok", 1),
    ]
    assert entries[0]["channel_id"] == 1
    assert "correct-horse-1" not in json.dumps(entries)
    assert shop.state.logins(HASH) == []  # the /login/token log is untouched
    assert shop.browser.get(f"/_sandbox/stores/{HASH}/password-logins").json() == entries


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@example.com", "wrong-password"),
        ("nobody@example.com", "correct-horse-1"),
        ("nopass@example.com", "correct-horse-1"),
        ("", ""),
        # Right password, but the customer may only sign in on channel 2; /s/<hash>/ is 1.
        ("channel2@example.com", "correct-horse-1"),
    ],
)
def test_password_sign_in_refusals(shop: Shop, email: str, password: str) -> None:
    shop.state.add_customer(HASH, email="ada@example.com", password="correct-horse-1")
    shop.state.add_customer(HASH, email="nopass@example.com")
    shop.state.add_customer(
        HASH, email="channel2@example.com", password="correct-horse-1", channel_ids=[2]
    )
    response = check_login(shop.browser, email, password)
    assert response.status_code == 200
    assert "Your email address or password is incorrect." in response.text
    assert f'name="login_email" value="{email}"' in response.text
    assert "set-cookie" not in response.headers
    account = shop.browser.get(shop.storefront("/account.php"))
    assert account.headers["location"] == shop.storefront("/login.php")
    [entry] = shop.state.password_logins(HASH)
    assert (entry["ok"], entry["reason"], entry["customer_id"]) == (
        False,
        "email or password incorrect",
        None,
    )


def test_password_sign_in_makes_the_validate_credentials_check(shop: Shop) -> None:
    """The channel-2 customer's password is right (validate-credentials says so on channel 2)."""
    shop.state.add_customer(
        HASH, email="channel2@example.com", password="correct-horse-1", channel_ids=[2]
    )
    path = "/v3/customers/validate-credentials"
    body = {"email": "channel2@example.com", "password": "correct-horse-1"}
    assert shop.api.post(path, json={**body, "channel_id": 2}).json()["is_valid"] is True
    assert shop.api.post(path, json=body).json()["is_valid"] is False
    assert check_login(shop.browser, body["email"], body["password"]).status_code == 200

    shop.state.add_store(SandboxStore("only2", TOKEN, CLIENT_ID, SECRET, channel_ids=(2, 3)))
    shop.state.add_customer(
        "only2", email="channel2@example.com", password="correct-horse-1", channel_ids=[2]
    )
    signed_in = check_login(shop.browser, body["email"], body["password"], store="only2")
    assert signed_in.headers["location"] == "/s/only2/account.php"
    assert shop.state.password_logins("only2")[0]["channel_id"] == 2


# -- theme script slot ----------------------------------------------------------------------

THEME_SCRIPT = "http://127.0.0.1:9/theme/sso.js"


def test_theme_script_on_every_page_and_the_account_link(shop: Shop) -> None:
    made = shop.browser.post(
        "/_sandbox/stores",
        json={
            "store_hash": "theme1",
            "access_token": TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "theme_script_url": THEME_SCRIPT,
        },
    )
    assert made.status_code == 201
    assert made.json()["theme_script_url"] == THEME_SCRIPT
    shop.state.add_customer("theme1", email="ada@example.com", password="correct-horse-1")
    tag = f'<script src="{THEME_SCRIPT}" defer></script>'
    link = '<a href="#" id="sso-manage-link" data-sso-link>Manage company sign-in</a>'

    pages = [shop.browser.get(f"/s/theme1{path}") for path in ("/", "/login.php", "/cart.php")]
    pages.append(check_login(shop.browser, "ada@example.com", "wrong", store="theme1"))
    assert check_login(shop.browser, "ada@example.com", "correct-horse-1", store="theme1")
    account = shop.browser.get("/s/theme1/account.php")
    pages.append(account)
    for page in pages:
        assert page.status_code == 200
        assert tag in page.text
        assert "content-security-policy" not in page.headers
        assert "content-security-policy-report-only" not in page.headers
    assert link in account.text
    assert link not in pages[0].text  # only on the signed-in account page

    # A same-origin fetch carries the session cookie: the Current Customer JWT comes back.
    current = shop.browser.get(
        "/s/theme1/customer/current.jwt", params={"app_client_id": CLIENT_ID}
    )
    assert current.status_code == 200

    # Without theme_script_url: no script, no link.
    shop.state.add_customer(HASH, email="ada@example.com", password="correct-horse-1")
    check_login(shop.browser, "ada@example.com", "correct-horse-1")
    plain = shop.browser.get(shop.storefront("/account.php"))
    assert "<script" not in plain.text
    assert "data-sso-link" not in plain.text

    bad = shop.browser.post(
        "/_sandbox/stores",
        json={
            "store_hash": "theme2",
            "access_token": TOKEN,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "theme_script_url": "javascript:alert(1)",
        },
    )
    assert bad.status_code == 422


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# What the broker's script does, in short: find the links, fetch the JWT same-origin.
THEME_JS = """
document.querySelectorAll('[data-sso-link]').forEach(function (link) {
  link.addEventListener('click', async function (event) {
    event.preventDefault();
    const response = await fetch('/s/theme1/customer/current.jwt?app_client_id=%s');
    const out = document.createElement('output');
    out.id = 'jwt-result';
    out.textContent = response.status + ' ' + (await response.text());
    document.body.appendChild(out);
  });
});
"""


@pytest.mark.browser
def test_a_theme_script_from_another_origin_gets_the_current_customer_jwt(shop: Shop) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/setup (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    cdn = Flask("theme-cdn")

    @cdn.get("/sso.js")
    def theme_script() -> Response:
        return Response(THEME_JS % CLIENT_ID, mimetype="text/javascript")

    with serve_in_thread(cdn) as cdn_server, sync_playwright() as p:
        store = SandboxStore(
            "theme1", TOKEN, CLIENT_ID, SECRET, theme_script_url=f"{cdn_server.url}/sso.js"
        )
        shop.state.add_store(store)
        shop.state.add_customer("theme1", email="ada@example.com", password="correct-horse-1")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{shop.url}/s/theme1/login.php")
            page.fill("#login-email", "ada@example.com")
            page.fill("#login-password", "correct-horse-1")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_selector("#sso-manage-link")
            page.click("#sso-manage-link")
            result = page.wait_for_selector("#jwt-result", timeout=5000)
            assert result is not None
            status, token = result.inner_text().split(" ", 1)
        finally:
            browser.close()
    assert status == "200"
    claims = jwt.decode(token, OctKey.import_key(SECRET), algorithms=["HS256"]).claims
    assert claims["customer"]["email"] == "ada@example.com"
    assert claims["store_hash"] == "theme1"


# -- webhooks -------------------------------------------------------------------------------


@dataclass
class Receiver:
    """What a webhook destination got; /hooks/slow and /hooks/hang wait for `release`."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    release: threading.Event = field(default_factory=threading.Event)

    def destination(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"


def receiver_app(receiver: Receiver) -> Flask:
    app = Flask("webhook-receiver")

    @app.post("/hooks/<name>")
    def hook(name: str) -> Response:
        if name == "slow":
            receiver.release.wait(timeout=5)
        elif name == "hang":
            receiver.release.wait(timeout=DELIVERY_TIMEOUT + 3)
        receiver.received.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "raw": request.get_data(),
                "body": request.get_json(),
            }
        )
        return Response("", receiver.status)

    return app


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    receiver = Receiver()
    with serve_in_thread(receiver_app(receiver)) as server:
        receiver.url = server.url
        yield receiver


@pytest.fixture
def receiver(receiver_server: Receiver) -> Iterator[Receiver]:
    receiver_server.received.clear()
    receiver_server.status = 200
    receiver_server.release = threading.Event()
    yield receiver_server
    receiver_server.release.set()


def make_hook(shop: Shop, scope: str, destination: str, **extra: Any) -> dict[str, Any]:
    response = shop.api.post(
        "/v3/hooks", json={"scope": scope, "destination": destination, **extra}
    )
    assert response.status_code == 200, response.text
    hook: dict[str, Any] = response.json()["data"]
    return hook


def test_hooks_are_created_listed_updated_and_deleted(shop: Shop, receiver: Receiver) -> None:
    destination = receiver.destination("a")
    created = shop.api.post(
        "/v3/hooks",
        json={
            "scope": "store/customer/deleted",
            "destination": destination,
            "is_active": True,
            "headers": {"X-Hook-Secret": "s3cret"},
        },
    )
    assert created.status_code == 200
    assert "X-Rate-Limit-Requests-Left" in created.headers
    assert created.json() == {
        "data": {
            "id": 1,
            "client_id": CLIENT_ID,
            "store_hash": HASH,
            "scope": "store/customer/deleted",
            "destination": destination,
            "headers": {"X-Hook-Secret": "s3cret"},
            "is_active": True,
            "created_at": int(START),
            "updated_at": int(START),
        },
        "meta": {},
    }
    # is_active defaults to true, headers to null; https on port 443 is BigCommerce's rule.
    second = make_hook(shop, "store/customer/*", "https://hooks.example.com:443/bc")
    assert (second["id"], second["is_active"], second["headers"]) == (2, True, None)

    listed = shop.api.get("/v3/hooks").json()
    assert [h["id"] for h in listed["data"]] == [1, 2]
    assert listed["meta"]["pagination"]["total"] == 2
    by_scope = shop.api.get("/v3/hooks", params={"scope": "store/customer/*"}).json()
    assert [h["id"] for h in by_scope["data"]] == [2]
    assert shop.api.get("/v3/hooks", params={"bogus": "1"}).status_code == 422

    shop.clock.now += 60
    updated = shop.api.put("/v3/hooks/1", json={"is_active": False})
    assert updated.status_code == 200
    hook = updated.json()["data"]
    assert (hook["is_active"], hook["created_at"], hook["updated_at"]) == (
        False,
        int(START),
        int(START) + 60,
    )
    inactive = shop.api.get("/v3/hooks", params={"is_active": "false"}).json()
    assert [h["id"] for h in inactive["data"]] == [1]
    assert shop.api.get("/v3/hooks/1").json() == {"data": hook, "meta": {}}
    assert shop.api.put("/v3/hooks/1", json={"scope": "store/order/*"}).status_code == 422

    deleted = shop.api.delete("/v3/hooks/1")
    assert (deleted.status_code, deleted.json()["data"]) == (200, hook)
    missing = shop.api.get("/v3/hooks/1")
    assert missing.status_code == 404
    assert missing.json()["title"] == "Webhook with id [1] not found"
    assert shop.api.get("/v3/hooks/abc").status_code == 404
    assert [h["id"] for h in shop.state.hooks(HASH)] == [2]

    # The hook's headers (usually a shared secret) stay out of the request log.
    assert shop.state.requests(HASH)[0].body["headers"] == "***"
    assert httpx.get(f"{shop.url}/stores/{HASH}/v3/hooks").status_code == 401


VALID_HOOK = {"scope": "store/customer/*", "destination": "https://hooks.example.com/bc"}


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"scope": None}, "scope"),
        ({"scope": "store/order/created"}, "scope"),  # the sandbox fires customer events only
        ({"destination": None}, "destination"),
        ({"destination": "http://hooks.example.com/bc"}, "destination"),
        ({"destination": "https://hooks.example.com:8443/bc"}, "destination"),
        ({"destination": "http://localhost:8000/bc"}, "destination"),
        ({"destination": "ftp://127.0.0.1/bc"}, "destination"),
        ({"is_active": "yes"}, "is_active"),
        ({"headers": {"X-A": 1}}, "headers"),
        ({"headers": {"X-A": "a\r\nB: c"}}, "headers"),
        ({"headers": ["X-A"]}, "headers"),
        ({"secret": "x"}, "secret"),
    ],
)
def test_hook_validation(shop: Shop, changes: dict[str, Any], field_name: str) -> None:
    body = {k: v for k, v in {**VALID_HOOK, **changes}.items() if v is not None}
    response = shop.api.post("/v3/hooks", json=body)
    assert response.status_code == 422
    assert field_name in response.json()["errors"]
    assert shop.state.hooks(HASH) == []


def test_hook_limits(shop: Shop, receiver: Receiver) -> None:
    make_hook(shop, "store/customer/created", receiver.destination("a"))
    again = shop.api.post(
        "/v3/hooks",
        json={"scope": "store/customer/created", "destination": receiver.destination("a")},
    )
    assert again.status_code == 422  # one hook per scope and destination
    make_hook(shop, "store/customer/updated", receiver.destination("a"))
    clash = shop.api.put("/v3/hooks/2", json={"scope": "store/customer/created"})
    assert clash.status_code == 422
    for n in range(9):
        make_hook(shop, "store/customer/created", receiver.destination(f"n{n}"))
    eleventh = shop.api.post(
        "/v3/hooks",
        json={"scope": "store/customer/created", "destination": receiver.destination("x")},
    )
    assert eleventh.status_code == 422  # ten per scope
    assert shop.api.post("/v3/hooks", json=[{"scope": "x"}]).status_code == 422


def test_customer_changes_through_the_api_are_delivered(shop: Shop, receiver: Receiver) -> None:
    make_hook(shop, "store/customer/*", receiver.destination("a"), headers={"X-Hook-Secret": "s3"})
    batch = [new_customer("a@example.com", channel_ids=[2]), new_customer("b@example.com")]
    assert shop.api.post("/v3/customers", json=batch).status_code == 200
    shop.clock.now += 5
    assert shop.api.put("/v3/customers", json=[{"id": 1, "first_name": "G"}]).status_code == 200
    assert shop.api.delete("/v3/customers", params={"id:in": "2,99"}).status_code == 204

    deliveries = shop.state.wait_for_deliveries(HASH, 4)
    assert [(d["status"], d["error"], d["done"]) for d in deliveries] == [(200, None, True)] * 4
    assert [(d["scope"], d["payload"]["data"]) for d in deliveries] == [
        ("store/customer/created", {"type": "customer", "id": 1, "channel_ids": [2]}),
        ("store/customer/created", {"type": "customer", "id": 2, "channel_ids": [1, 2]}),
        ("store/customer/updated", {"type": "customer", "id": 1, "channel_ids": [2]}),
        ("store/customer/deleted", {"type": "customer", "id": 2}),
    ]
    assert {(d["hook_id"], d["destination"]) for d in deliveries} == {
        (1, receiver.destination("a"))
    }
    first = deliveries[0]["payload"]
    assert list(first) == ["scope", "store_id", "data", "hash", "created_at", "producer"]
    assert first["scope"] == "store/customer/created"
    assert first["producer"] == f"stores/{HASH}"
    assert first["store_id"].isdigit()
    assert first["created_at"] == int(START)
    assert deliveries[3]["payload"]["created_at"] == int(START) + 5
    hashes = [d["payload"]["hash"] for d in deliveries]
    assert len(set(hashes)) == 4
    assert all(re.fullmatch(r"[0-9a-f]{40}", h) for h in hashes)

    # The receiver got exactly those payloads, as JSON, with the hook's headers.
    assert sorted(r["body"]["hash"] for r in receiver.received) == sorted(hashes)
    for got in receiver.received:
        assert got["headers"]["Content-Type"] == "application/json"
        assert got["headers"]["X-Hook-Secret"] == "s3"
        assert got["path"] == "/hooks/a"

    # Seeding sets up the world: it notifies nobody.
    shop.state.add_customer(HASH, email="seed@example.com")
    assert len(shop.state.deliveries(HASH)) == 4


def test_only_active_hooks_with_a_matching_scope_are_called(shop: Shop, receiver: Receiver) -> None:
    make_hook(shop, "store/customer/deleted", receiver.destination("deleted"))
    make_hook(shop, "store/customer/*", receiver.destination("off"), is_active=False)
    make_hook(shop, "store/customer/updated", receiver.destination("updated"))
    assert shop.api.post("/v3/customers", json=[new_customer("a@example.com")]).status_code == 200
    assert shop.state.deliveries(HASH) == []  # decided when the change is made, not later

    # A merchant deletes the customer in the control panel.
    shop.state.delete_customer(HASH, 1)
    [delivery] = shop.state.wait_for_deliveries(HASH, 1)
    assert (delivery["hook_id"], delivery["scope"], delivery["status"]) == (
        1,
        "store/customer/deleted",
        200,
    )
    assert delivery["payload"]["data"] == {"type": "customer", "id": 1}
    assert [r["path"] for r in receiver.received] == ["/hooks/deleted"]
    assert shop.state.customers(HASH) == []
    with pytest.raises(SandboxNotFound):
        shop.state.delete_customer(HASH, 1)


def test_deleting_a_customer_ends_their_storefront_session(shop: Shop) -> None:
    shop.state.add_customer(HASH, email="ada@example.com")
    shop.browser.get(shop.storefront(f"/login/token/{mint()}"))
    assert shop.browser.get(shop.storefront("/account.php")).status_code == 200
    assert shop.browser.delete(f"/_sandbox/stores/{HASH}/customers/1").status_code == 204
    assert shop.browser.delete(f"/_sandbox/stores/{HASH}/customers/1").status_code == 404
    account = shop.browser.get(shop.storefront("/account.php"))
    assert account.headers["location"] == shop.storefront("/login.php")
    assert shop.state.deliveries(HASH) == []  # no hook, no delivery


def test_a_slow_receiver_never_holds_up_the_api(shop: Shop, receiver: Receiver) -> None:
    make_hook(shop, "store/customer/created", receiver.destination("slow"))
    started = time.monotonic()
    response = shop.api.post("/v3/customers", json=[new_customer("a@example.com")])
    assert response.status_code == 200
    assert time.monotonic() - started < 1
    [pending] = shop.state.deliveries(HASH)
    assert (pending["done"], pending["status"]) == (False, None)
    receiver.release.set()
    [done] = shop.state.wait_for_deliveries(HASH, 1)
    assert (done["done"], done["status"]) == (True, 200)


def test_failed_deliveries_are_logged_with_the_status_or_error(
    shop: Shop, receiver: Receiver
) -> None:
    receiver.status = 503
    make_hook(shop, "store/customer/created", receiver.destination("a"))
    make_hook(shop, "store/customer/created", receiver.destination("hang"))
    make_hook(shop, "store/customer/created", f"http://127.0.0.1:{free_port()}/nobody")
    started = time.monotonic()
    assert shop.api.post("/v3/customers", json=[new_customer("a@example.com")]).status_code == 200
    unavailable, hung, refused = shop.state.wait_for_deliveries(HASH, 3)
    assert time.monotonic() - started < DELIVERY_TIMEOUT + 1.5
    assert (unavailable["status"], unavailable["error"]) == (503, None)
    assert hung["status"] is None
    assert "Timeout" in hung["error"]
    assert refused["status"] is None
    assert "ConnectError" in refused["error"]


def test_redelivery_repeats_the_exact_payload(shop: Shop, receiver: Receiver) -> None:
    make_hook(shop, "store/customer/*", receiver.destination("a"))
    shop.state.add_customer(HASH, email="a@example.com")
    shop.state.delete_customer(HASH, 1)
    [first] = shop.state.wait_for_deliveries(HASH, 1)
    assert shop.state.redeliver(HASH, first["index"]) == 1
    _, again = shop.state.wait_for_deliveries(HASH, 2)
    assert again["payload"] == first["payload"]
    assert (again["redelivery_of"], again["status"]) == (0, 200)
    # Byte for byte the same body, so the same `hash`: receivers deduplicate on it.
    assert receiver.received[0]["raw"] == receiver.received[1]["raw"]
    with pytest.raises(SandboxNotFound):
        shop.state.redeliver(HASH, 7)


def test_webhook_control_api_over_http(shop: Shop, receiver: Receiver) -> None:
    make_hook(shop, "store/customer/deleted", receiver.destination("a"))
    shop.state.add_customer(HASH, email="a@example.com")
    control = shop.browser
    assert control.delete(f"/_sandbox/stores/{HASH}/customers/1").status_code == 204
    shop.state.wait_for_deliveries(HASH, 1)
    redelivered = control.post(f"/_sandbox/stores/{HASH}/deliveries/0/redeliver")
    assert (redelivered.status_code, redelivered.json()) == (202, {"index": 1})
    shop.state.wait_for_deliveries(HASH, 2)
    logged = control.get(f"/_sandbox/stores/{HASH}/deliveries").json()
    assert [(d["redelivery_of"], d["status"]) for d in logged] == [(None, 200), (0, 200)]
    assert "headers" not in logged[0]
    assert control.post(f"/_sandbox/stores/{HASH}/deliveries/9/redeliver").status_code == 404


def test_waiting_for_deliveries_that_never_come_times_out(shop: Shop) -> None:
    with pytest.raises(TimeoutError):
        shop.state.wait_for_deliveries(HASH, 1, timeout=0.1)
