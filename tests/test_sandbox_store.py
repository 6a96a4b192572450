"""The sandbox BigCommerce store, over real HTTP: the quirks the broker depends on.

Each test gets a fresh sandbox app (one server serves the module) with a settable clock, so
that JWT ages and rate-limit windows are deterministic. Login JWTs are minted here with
joserfc directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from broker.sandbox.store import SandboxState, SandboxStore, create_sandbox_app
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


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Shop:
    url: str
    state: SandboxState
    clock: FakeClock
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
    clock = FakeClock()
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
