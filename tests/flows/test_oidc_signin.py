"""OIDC sign-in end to end over real HTTP: broker, development IdP and sandbox store.

Each refusal is checked as a shopper and an operator would: the status, a clear page with a
reference id, one structured log line with that id and no token in it, and nothing created at
the store (no customer, no storefront login).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from broker.sandbox.idp import DevIdPState, DevUser, encode_hs256, encode_unsecured, flip_signature
from tests.conftest import DevIdP, World
from tests.support.broker_log import LogLines
from tests.support.flows import (
    Outcome,
    dev_idp_sign_in,
    page_field,
    query,
    sign_in,
    start_login,
    visit_storefront,
)


def assert_refused(
    outcome: Outcome, status: int, world: World, log: LogLines, *, says: str = ""
) -> None:
    assert outcome.status == status, outcome.response.text
    assert outcome.response.headers["content-type"].startswith("text/html")
    assert outcome.error_ref, "the page shows a reference id"
    assert says.lower() in outcome.error_message.lower()
    assert "Traceback" not in outcome.response.text
    matching = [line for line in log.lines if line.get("ref") == outcome.error_ref]
    assert len(matching) == 1, log.lines
    assert matching[0]["status"] == status
    assert world.customers() == [], "no customer created"
    assert not [login for login in world.logins() if login["ok"]], "nobody signed in"


def tamper_with(
    world: World, fn: Callable[[dict[str, Any], dict[str, Any], DevIdPState], str]
) -> None:
    world.idp.state.tamper = fn


# -- the happy paths ---------------------------------------------------------------------------


def test_new_shopper_is_created_and_lands_signed_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")

    assert outcome.status == 302
    assert outcome.location.startswith(f"{world.storefront}/login/token/")
    [customer] = world.customers()
    assert (customer["email"], customer["first_name"], customer["last_name"]) == (
        "alice@example.com",
        "Alice",
        "Anderson",
    )
    assert customer["channel_ids"] == [1]

    page = visit_storefront(browser_http, outcome.location)
    assert page_field(page.text, "customer-email") == "alice@example.com"
    assert page_field(page.text, "customer-id") == str(customer["id"])
    [login] = world.logins()
    assert login["ok"] is True
    assert login["claims"]["redirect_to"] == "/account.php"


def test_returning_shopper_is_found_not_created(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    existing = world.sandbox.state.add_customer(
        world.store.store_hash, email="Alice@Example.com", first_name="Al", last_name="A"
    )
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")

    assert outcome.status == 302
    assert len(world.customers()) == 1
    page = visit_storefront(browser_http, outcome.location)
    assert page_field(page.text, "customer-id") == str(existing["id"])
    posts = [r for r in world.sandbox.state.requests(world.store.store_hash) if r.method == "POST"]
    assert posts == []


def test_email_is_unique_per_channel(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"channel_id": 2}, sandbox_store={"channel_ids": (1, 2)})
    world.sandbox.state.add_customer(
        world.store.store_hash,
        email="alice@example.com",
        first_name="Other",
        last_name="Channel",
        channel_ids=[1],
    )
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302
    # The channel-1 customer cannot sign in on channel 2: a channel-2 one is created beside it.
    assert sorted(c["channel_ids"] for c in world.customers()) == [[1], [2]]
    page = visit_storefront(browser_http, outcome.location)
    created = next(c for c in world.customers() if c["channel_ids"] == [2])
    assert page_field(page.text, "customer-id") == str(created["id"])
    assert world.logins()[0]["claims"]["channel_id"] == 2


def test_redirect_to_is_kept_when_it_is_a_path_on_the_store(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    outcome = sign_in(
        browser_http,
        world.broker.url,
        "alice@example.com",
        path="/acme/login/corp?redirect_to=/cart.php%3Fsuggest%3D1",
    )
    assert outcome.status == 302
    visit_storefront(browser_http, outcome.location)
    assert world.logins()[0]["claims"]["redirect_to"] == "/cart.php?suggest=1"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "javascript:alert(1)",
        "/\t/evil.com",
        "http:evil.com",
        "evil.com",
        "/%0a/evil.com",
    ],
)
def test_open_redirects_fall_back_to_the_account_page(
    make_world: Callable[..., World], browser_http: httpx.Client, target: str
) -> None:
    world = make_world()
    start = browser_http.get(f"{world.broker.url}/acme/login/corp", params={"redirect_to": target})
    callback = dev_idp_sign_in(browser_http, start.headers["location"], "alice@example.com")
    outcome = Outcome(browser_http.get(callback))
    assert outcome.status == 302
    landing = visit_storefront(browser_http, outcome.location)
    assert landing.url.host == "127.0.0.1"
    redirect_to = world.logins()[0]["claims"]["redirect_to"]
    assert redirect_to in ("/account.php", "/%0a/evil.com")
    assert not redirect_to.startswith("//")


@pytest.mark.parametrize(
    ("store", "target", "kept"),
    [
        # With the status token added it would pass the login JWT's 2048-character limit.
        ({"follow_idp_logout": True}, "/" + "a" * 2040, False),
        # Short enough a path, but each "€" is three bytes in the JWT, four characters in
        # base64: the landing URL would be past 8000 characters.
        ({}, "/" + "€" * 2000, False),
        ({"follow_idp_logout": True}, "/" + "a" * 1500, True),
    ],
)
def test_a_redirect_to_too_long_for_the_landing_url_is_dropped_when_the_flow_starts(
    make_world: Callable[..., World],
    browser_http: httpx.Client,
    store: dict[str, Any],
    target: str,
    kept: bool,
) -> None:
    world = make_world(store=store)
    start = browser_http.get(f"{world.broker.url}/acme/login/corp", params={"redirect_to": target})
    callback = dev_idp_sign_in(browser_http, start.headers["location"], "alice@example.com")
    outcome = Outcome(browser_http.get(callback))
    assert outcome.status == 302, outcome.error_message
    assert len(outcome.location) <= 8000
    landing = visit_storefront(browser_http, outcome.location)
    [login] = world.logins()
    assert login["ok"] is True
    path = login["claims"]["redirect_to"].split("?")[0]
    assert path == (target if kept else "/account.php")
    if not kept:
        assert page_field(landing.text, "customer-email") == "alice@example.com"
    assert len(world.customers()) == 1


def test_names_are_asked_when_missing_and_groups_map_to_a_customer_group(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"customer_groups_by_group": {"vip": 7, "buyers": 3}})
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    # Bob's IdP sends no names: he is asked (tests/flows/test_pages_name.py), then created.
    asked = sign_in(browser_http, world.broker.url, "bob@example.com")
    assert (asked.status, asked.location) == (303, "/acme/signin/name")
    form = browser_http.get(world.broker.url + asked.location)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    done = browser_http.post(
        world.broker.url + asked.location,
        data={"csrf_token": token.group(1), "first_name": "Bob", "last_name": "Builder"},
    )
    assert done.status_code == 302, done.text
    by_email = {c["email"]: c for c in world.customers()}
    assert by_email["alice@example.com"]["customer_group_id"] == 3
    bob = by_email["bob@example.com"]
    assert (bob["first_name"], bob["last_name"], bob["customer_group_id"]) == ("Bob", "Builder", 0)


def test_a_cookie_the_token_endpoint_sets_never_reaches_the_next_shoppers_code(
    make_world: Callable[..., World],
) -> None:
    """The broker's client for an IdP is shared by every sign-in: a cookie its token endpoint
    sets (the dev IdP sets one, as a load balancer would) is not kept and sent with another
    shopper's code, nor with the same shopper's next one."""
    world = make_world()
    for email in ("alice@example.com", "bob@example.com", "alice@example.com"):
        with httpx.Client(follow_redirects=False) as browser:
            assert sign_in(browser, world.broker.url, email).status in (302, 303)
    assert len(world.idp.state.token_cookies) == 3
    assert world.idp.state.token_cookies == ["", "", ""]


def test_pkce_state_and_nonce_are_sent(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    params = query(authorize)
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 32
    assert len(params["nonce"]) >= 32
    assert params["redirect_uri"] == f"{world.broker.url}/acme/oidc/corp/callback"
    cookie = browser_http.cookies.jar
    assert any(c.name == "broker_browser" and c.has_nonstandard_attr("HttpOnly") for c in cookie)


def test_client_secret_post(make_world: Callable[..., World], browser_http: httpx.Client) -> None:
    world = make_world(connection={"token_endpoint_auth_method": "client_secret_post"})
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    assert world.idp.state.token_auth_methods[-1] == "client_secret_post"


def test_public_client_with_pkce_only(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"client_secret": None})
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    assert world.idp.state.token_auth_methods[-1] == "none"
    assert "code_verifier" in world.idp.state.token_requests[-1]


def test_userinfo_is_used_when_the_id_token_lacks_the_claims(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    world.idp.state.id_token_claims_in_token = False
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    assert world.customers()[0]["email"] == "alice@example.com"


def test_signing_key_rotation_is_followed_once(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    fetches = world.idp.state.jwks_requests
    world.idp.state.rotate_key()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    assert world.idp.state.jwks_requests == fetches + 1


def test_request_ip_is_bound_when_the_store_asks(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"bind_request_ip": True})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    page = visit_storefront(browser_http, outcome.location)
    assert page_field(page.text, "customer-email") == "alice@example.com"
    assert world.logins()[0]["claims"]["request_ip"] == "127.0.0.1"


def test_store_clock_is_used_when_configured(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"use_store_clock": True})
    world.sandbox.state.set_faults(world.store.store_hash, clock_offset=120)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    page = visit_storefront(browser_http, outcome.location)
    assert page_field(page.text, "customer-email") == "alice@example.com"


def test_a_store_clock_ahead_refuses_our_token_without_the_option(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    # The reason `use_store_clock` exists: BigCommerce judges iat by its own clock.
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, clock_offset=120)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    visit_storefront(browser_http, outcome.location)
    [login] = world.logins()
    assert login["ok"] is False


# -- refusals: the ID token ---------------------------------------------------------------------


def _alg_none(header: dict[str, Any], claims: dict[str, Any], state: DevIdPState) -> str:
    return encode_unsecured({"alg": "none", "typ": "JWT"}, claims)


def _hs256_with_public_key(
    header: dict[str, Any], claims: dict[str, Any], state: DevIdPState
) -> str:
    return encode_hs256(
        {"alg": "HS256", "typ": "JWT", "kid": state.kid}, claims, state.public_pem()
    )


def _other_key_same_kid(header: dict[str, Any], claims: dict[str, Any], state: DevIdPState) -> str:
    from joserfc import jwt

    other = RSAKey.generate_key(2048)
    return jwt.encode({"alg": "RS256", "kid": state.kid}, claims, other)


def _unknown_kid(header: dict[str, Any], claims: dict[str, Any], state: DevIdPState) -> str:
    from joserfc import jwt

    other = RSAKey.generate_key(2048)
    return jwt.encode({"alg": "RS256", "kid": "not-published"}, claims, other)


def _with(**changes: Any) -> Callable[[dict[str, Any], dict[str, Any], DevIdPState], str]:
    def tamper(header: dict[str, Any], claims: dict[str, Any], state: DevIdPState) -> str:
        return state.sign(
            header, {**claims, **{k: v(claims) if callable(v) else v for k, v in changes.items()}}
        )

    return tamper


def _flipped(header: dict[str, Any], claims: dict[str, Any], state: DevIdPState) -> str:
    return flip_signature(state.sign(header, claims))


@pytest.mark.parametrize(
    ("case", "tamper"),
    [
        ("tampered signature", _flipped),
        ("alg none", _alg_none),
        ("HS256 keyed with the public key", _hs256_with_public_key),
        ("signed by another key under the published kid", _other_key_same_kid),
        ("unknown kid", _unknown_kid),
        ("wrong audience", _with(aud="someone-else")),
        ("two audiences, no azp", _with(aud=lambda c: [c["aud"], "someone-else"])),
        ("wrong azp", _with(azp="someone-else")),
        ("wrong issuer", _with(iss="https://evil.example")),
        (
            "expired",
            _with(exp=lambda c: int(time.time()) - 600, iat=lambda c: int(time.time()) - 900),
        ),
        ("issued in the future", _with(iat=lambda c: int(time.time()) + 3600)),
        ("nonce mismatch", _with(nonce="not-the-nonce")),
        ("no nonce", _with(nonce=None)),
        ("no sub", _with(sub=None)),
    ],
)
def test_bad_id_tokens_are_refused(
    make_world: Callable[..., World],
    browser_http: httpx.Client,
    broker_log: LogLines,
    case: str,
    tamper: Callable[[dict[str, Any], dict[str, Any], DevIdPState], str],
) -> None:
    world = make_world()
    tamper_with(world, tamper)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 400, world, broker_log)
    line = next(line for line in broker_log.lines if line.get("ref") == outcome.error_ref)
    assert "eyJ" not in json.dumps(line), "no token in the log line"


def test_unknown_kid_fetches_the_keys_again_once_then_fails(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    tamper_with(world, _unknown_kid)
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 400
    assert world.idp.state.jwks_requests == 2  # the first fetch, then one more for the new kid
    # A stream of forged kids does not become a stream of requests to the IdP.
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 400
    assert world.idp.state.jwks_requests == 2


def test_two_audiences_with_our_azp_are_accepted(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    tamper_with(world, _with(aud=lambda c: [c["aud"], "api"], azp=lambda c: c["aud"]))
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302


def test_userinfo_about_someone_else_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    world.idp.state.id_token_claims_in_token = False
    world.idp.state.userinfo_override = lambda info: {**info, "sub": "someone-else"}
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 400, world, broker_log, says="disagree")


def test_token_endpoint_error_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    world.idp.state.token_error = {"error": "invalid_grant"}
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 400, world, broker_log, says="refused")


@pytest.mark.parametrize(
    "fault",
    [(500, "<h1>Internal Server Error</h1>"), (503, ""), (200, "<html>sign in</html>")],
    ids=["500-page", "503-empty", "200-not-json"],
)
def test_a_token_endpoint_answering_no_json_is_unavailable(
    make_world: Callable[..., World],
    browser_http: httpx.Client,
    broker_log: LogLines,
    fault: tuple[int, str],
) -> None:
    world = make_world()
    world.idp.state.token_fault = fault
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 502, world, broker_log, says="could not be reached")


# -- the issuer is an identifier: kept verbatim --------------------------------------------------


def test_an_issuer_with_a_trailing_slash_signs_in(
    make_world: Callable[..., World], dev_idp: DevIdP, browser_http: httpx.Client
) -> None:
    # Auth0's issuers end in "/" (https://tenant.auth0.com/): discovery says so, tokens too.
    dev_idp.state.issuer = dev_idp.url + "/"
    world = make_world(connection={"issuer": dev_idp.url + "/"})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302, outcome.error_message
    page = visit_storefront(browser_http, outcome.location)
    assert page_field(page.text, "customer-email") == "alice@example.com"


def test_an_id_token_whose_iss_lacks_the_trailing_slash_is_refused(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    dev_idp.state.issuer = dev_idp.url + "/"
    world = make_world(connection={"issuer": dev_idp.url + "/"})
    tamper_with(world, _with(iss=dev_idp.url))
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 400, world, broker_log)


# -- refusals: where the IdP's discovery document points -------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("jwks_uri", "http://169.254.169.254/latest/meta-data/"),  # a cloud metadata service
        ("jwks_uri", "https://169.254.169.254/keys"),
        ("token_endpoint", "https://10.0.0.5/token"),
        ("token_endpoint", "https://0.0.0.0/token"),
        ("userinfo_endpoint", "https://[::ffff:169.254.169.254]/userinfo"),
        ("userinfo_endpoint", "https://[fd00::1]/userinfo"),
        ("jwks_uri", "http://idp.example.net/jwks.json"),  # plain http, not on loopback
        ("token_endpoint", "https://user:pw@idp.example.net/token"),
        ("authorization_endpoint", "http://idp.example.net/authorize"),
        ("end_session_endpoint", "javascript:alert(1)"),
    ],
)
def test_discovery_pointing_an_endpoint_at_an_internal_or_plain_http_address_is_refused(
    make_world: Callable[..., World],
    browser_http: httpx.Client,
    broker_log: LogLines,
    endpoint: str,
    url: str,
) -> None:
    world = make_world()
    world.idp.state.discovery_override = lambda doc: {**doc, endpoint: url}
    started = time.monotonic()
    outcome = Outcome(browser_http.get(f"{world.broker.url}/acme/login/corp"))
    assert time.monotonic() - started < 5, "refused at once, not after trying the address"
    assert_refused(outcome, 502, world, broker_log, says=endpoint)
    assert world.idp.state.authorize_requests == [], "the browser was not sent to the IdP"
    line = next(line for line in broker_log.lines if line.get("ref") == outcome.error_ref)
    assert endpoint in line["detail"]
    assert url not in json.dumps(broker_log.lines), "the IdP's text stays out of the log"


def test_an_issuer_on_a_private_address_is_never_contacted(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(connection={"issuer": "https://10.255.255.1/realms/acme"})
    started = time.monotonic()
    outcome = Outcome(browser_http.get(f"{world.broker.url}/acme/login/corp"))
    assert time.monotonic() - started < 5, "refused at once, not after a connect timeout"
    assert_refused(outcome, 502, world, broker_log, says="issuer")


def test_endpoints_on_other_public_hosts_than_the_issuer_are_not_refused_for_it(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    # Google's issuer is accounts.google.com, its token endpoint oauth2.googleapis.com: the
    # policy is about addresses, not about the issuer's host. Only the browser visits the
    # authorization endpoint, so it is not resolved here (no network needed).
    world = make_world()
    world.idp.state.discovery_override = lambda doc: {
        **doc,
        "end_session_endpoint": "https://idp.example.net/logout",
    }
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302


# -- refusals: the flow -------------------------------------------------------------------------


def test_idp_error_parameter(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    browser_http.get(authorize)
    cancelled = browser_http.post(authorize, data={"action": "cancel"})
    assert "error=access_denied" in cancelled.headers["location"]
    outcome = Outcome(browser_http.get(cancelled.headers["location"]))
    assert_refused(outcome, 401, world, broker_log, says="cancelled")


def test_callback_in_another_browser_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    with httpx.Client(follow_redirects=False) as other_browser:
        outcome = Outcome(other_browser.get(callback))
    assert_refused(outcome, 400, world, broker_log, says="another browser")


def test_replayed_callback_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    assert browser_http.get(callback).status_code == 302
    customers_before = world.customers()
    outcome = Outcome(browser_http.get(callback))
    assert outcome.status == 400
    assert "already used" in outcome.error_message
    assert world.customers() == customers_before


def _flow_cookie(http: httpx.Client) -> Any:
    [cookie] = [c for c in http.cookies.jar if c.name.startswith("broker_flow_")]
    return cookie


def test_a_tampered_flow_cookie_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    cookie = _flow_cookie(browser_http)
    middle = len(cookie.value) // 2
    flipped = "A" if cookie.value[middle] != "A" else "B"
    browser_http.cookies.delete(cookie.name)
    browser_http.cookies.set(
        cookie.name, cookie.value[:middle] + flipped + cookie.value[middle + 1 :]
    )
    outcome = Outcome(browser_http.get(callback))
    assert_refused(outcome, 400, world, broker_log, says="start signing in again")
    assert world.idp.state.token_requests == [], "no code redeemed for a flow not the broker's"
    cleared = outcome.response.headers.get_list("set-cookie")
    assert any(c.startswith(f"{cookie.name}=;") and "Max-Age=0" in c for c in cleared)


def _opened(runtime: Any, value: str) -> tuple[int, bytes]:
    """A flow cookie's (sealed at, plaintext), opened as the broker opens it."""
    from broker.web.flows import _unseal

    opened = _unseal(runtime.broker_settings.secret_key, value)
    assert opened is not None
    return opened


def test_a_flow_cookie_whose_time_was_changed_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    """The time a flow was sealed rides in clear, before the ciphertext: it is authenticated
    with it, so moving it (to keep the flow among the newest four) breaks the seal."""
    import base64

    world = make_world()
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    cookie = _flow_cookie(browser_http)
    raw = bytearray(base64.urlsafe_b64decode(cookie.value + "=" * (-len(cookie.value) % 4)))
    raw[8] ^= 0x01  # the sealed-at time's last byte: one second later
    browser_http.cookies.delete(cookie.name)
    browser_http.cookies.set(cookie.name, base64.urlsafe_b64encode(bytes(raw)).decode())
    outcome = Outcome(browser_http.get(callback))
    assert_refused(outcome, 400, world, broker_log, says="start signing in again")
    assert world.idp.state.token_requests == []


def test_a_flow_cookie_sealed_by_the_broker_before_this_one_still_finishes(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    """Upgrading mid-sign-in: a flow cookie an older broker sealed with Fernet (under the key
    it derived for that) completes its sign-in, once; the same under another key does not."""
    from cryptography.fernet import Fernet

    from broker.web.flows import _fernet

    world = make_world()
    runtime = world.broker.app.extensions["broker"]
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    cookie = _flow_cookie(browser_http)
    sealed_at, plaintext = _opened(runtime, cookie.value)
    older = _fernet(runtime.broker_settings.secret_key).encrypt_at_time(plaintext, sealed_at)
    forged = Fernet(Fernet.generate_key()).encrypt_at_time(plaintext, sealed_at)
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    cookies = {c.name: c.value for c in browser_http.cookies.jar if c.name != cookie.name}
    with httpx.Client(
        follow_redirects=False, cookies={**cookies, cookie.name: forged.decode()}
    ) as other:
        assert other.get(callback).status_code == 400
    browser_http.cookies.delete(cookie.name)
    browser_http.cookies.set(cookie.name, older.decode())
    assert Outcome(browser_http.get(callback)).status == 302
    assert Outcome(browser_http.get(callback)).status == 400, "once"


def test_another_flows_cookie_under_this_flows_name_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    """Two sign-ins in two tabs: each flow's cookie is named after its state, and says which
    state it is for, so one tab's sealed flow does not complete the other's callback."""
    world = make_world()
    first = dev_idp_sign_in(
        browser_http,
        start_login(browser_http, world.broker.url, "/acme/login/corp"),
        "alice@example.com",
    )
    first_cookie = _flow_cookie(browser_http)
    browser_http.cookies.delete(first_cookie.name)
    start_login(browser_http, world.broker.url, "/acme/login/corp")
    second_cookie = _flow_cookie(browser_http)
    browser_http.cookies.delete(second_cookie.name)
    browser_http.cookies.set(first_cookie.name, second_cookie.value)
    outcome = Outcome(browser_http.get(first))
    assert_refused(outcome, 400, world, broker_log, says="start signing in again")


def test_a_flow_an_older_broker_kept_server_side_still_finishes(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    """Upgrading mid-sign-in: a flow started by a broker that kept it in ``pending_flows``
    (no flow cookie) is taken from there, once, in the browser that started it."""
    import json as json_module

    from broker.storage import keys

    world = make_world()
    runtime = world.broker.app.extensions["broker"]
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    state = re.search(r"[?&]state=([^&]+)", authorize)
    assert state is not None
    cookie = _flow_cookie(browser_http)
    record = json_module.loads(_opened(runtime, cookie.value)[1])
    browser_http.cookies.delete(cookie.name)
    runtime.storage.save_pending(
        keys.oidc_flow(state.group(1)), record, expires_at=int(time.time()) + 600
    )
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    assert Outcome(browser_http.get(callback)).status == 302
    assert runtime.storage.take_pending(keys.oidc_flow(state.group(1)), 0) is None, "taken"
    assert Outcome(browser_http.get(callback)).status == 400, "once"


def test_sign_ins_started_again_and_again_keep_the_newest_flows_only(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    """Ten clicks on "Sign in" in one browser: it carries at most MAX_FLOWS flow cookies
    (its Cookie header stays small enough for any server), the newest finish, the oldest is
    refused as expired."""
    from broker.web.flows import MAX_FLOWS

    world = make_world()
    starts = [start_login(browser_http, world.broker.url, "/acme/login/corp") for _ in range(10)]
    carried = [c for c in browser_http.cookies.jar if c.name.startswith("broker_flow_")]
    assert len(carried) == MAX_FLOWS
    oldest = dev_idp_sign_in(browser_http, starts[0], "alice@example.com")
    assert Outcome(browser_http.get(oldest)).status == 400
    newest = dev_idp_sign_in(browser_http, starts[-1], "alice@example.com")
    assert Outcome(browser_http.get(newest)).status == 302
    assert len(world.customers()) == 1


def test_a_flow_brought_to_another_connections_callback_is_refused(
    make_world: Callable[..., World],
    make_dev_idp: Callable[[], DevIdP],
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    """A flow started for connection corp, its answer (code and state, with the flow's
    cookie) brought to connection partner's callback: the sealed flow names its store and
    connection, so partner's IdP is never asked to redeem corp's code."""
    from broker.sandbox.idp import DevClient

    partner_idp = make_dev_idp()
    secret = "partner-secret-" + "x" * 20
    world = make_world(
        more_connections={
            "partner": {
                "type": "oidc",
                "issuer": partner_idp.url,
                "client_id": "broker",
                "client_secret": secret,
                "link": "auto",
            }
        }
    )
    partner_idp.state.add_client(
        DevClient("broker", secret, (f"{world.broker.url}/acme/oidc/partner/callback",))
    )
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    elsewhere = callback.replace("/acme/oidc/corp/callback", "/acme/oidc/partner/callback")
    assert elsewhere != callback
    outcome = Outcome(browser_http.get(elsewhere))
    assert_refused(outcome, 400, world, broker_log, says="another store")
    assert partner_idp.state.token_requests == []
    assert world.idp.state.token_requests == []


def test_forty_callbacks_at_once_with_one_flow_sign_in_once(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    """The same callback and flow cookie, 40 times at once (a copied cookie, a double
    submit): the flow is spent once, so one sign-in happens and 39 are refused."""
    from concurrent.futures import ThreadPoolExecutor

    world = make_world()
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser_http.cookies.jar)

    def call(_: int) -> int:
        with httpx.Client(follow_redirects=False, timeout=30) as http:
            return http.get(callback, headers={"Cookie": cookies}).status_code

    with ThreadPoolExecutor(40) as pool:
        statuses = sorted(pool.map(call, range(40)))
    assert statuses == [302] + [400] * 39
    assert len(world.idp.state.token_requests) == 1, "the code is redeemed once"
    assert len([login for login in world.logins() if login["ok"]]) == 0  # not yet followed
    assert len(world.customers()) == 1


@pytest.mark.parametrize("state", ["", "forged-state-value"])
def test_missing_or_unknown_state(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines, state: str
) -> None:
    world = make_world()
    start_login(browser_http, world.broker.url, "/acme/login/corp")
    outcome = Outcome(
        browser_http.get(
            f"{world.broker.url}/acme/oidc/corp/callback", params={"code": "x", "state": state}
        )
    )
    assert_refused(outcome, 400, world, broker_log, says="start signing in again")


def test_expired_flow_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    offset = [0.0]
    world = make_world(app_options={"clock": lambda: time.time() + offset[0]})
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    callback = dev_idp_sign_in(browser_http, authorize, "alice@example.com")
    offset[0] = 601  # the default flow_ttl_seconds is 600
    outcome = Outcome(browser_http.get(callback))
    assert_refused(outcome, 400, world, broker_log, says="expired")


# -- refusals: policy -------------------------------------------------------------------------


def test_unverified_email_is_refused_by_default(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    outcome = sign_in(browser_http, world.broker.url, "carol@example.com")
    assert_refused(outcome, 403, world, broker_log, says="verified")


def test_unverified_email_may_create_when_allowed_but_never_takes_over(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"require_verified_email": False})
    assert sign_in(browser_http, world.broker.url, "carol@example.com").status == 302
    assert [c["email"] for c in world.customers()] == ["carol@example.com"]

    # An existing account is another matter: an unverified e-mail never links to it.
    world.sandbox.state.add_customer(
        world.store.store_hash, email="dave@example.com", first_name="D", last_name="D"
    )
    world.idp.state.add_user(
        DevUser(sub="dave", email="dave@example.com", password="password", email_verified=False)
    )
    outcome = sign_in(browser_http, world.broker.url, "dave@example.com")
    assert outcome.status == 403
    assert "does not confirm" in outcome.error_message


def test_domain_not_allowed(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(connection={"allowed_domains": ["acme.com"]})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 403, world, broker_log, says="domains")


def test_no_customer_and_jit_off(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(connection={"jit": False})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 403, world, broker_log, says="no customer account")


def test_link_deny_refuses_an_existing_account(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"link": "deny"})
    world.sandbox.state.add_customer(
        world.store.store_hash, email="alice@example.com", first_name="A", last_name="A"
    )
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 403
    assert "already exists" in outcome.error_message
    assert world.logins() == []


# -- refusals: the store's API ------------------------------------------------------------------


def test_store_answering_500_gives_a_clear_page_and_creates_nothing(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, status=500, count=100)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 502, world, broker_log, says="not answering")


def test_store_rate_limited_past_the_deadline_gives_503_with_retry_after(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, rate_limit_for_ms=60_000)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 503, world, broker_log, says="busy")
    assert 1 <= int(outcome.response.headers["Retry-After"]) <= 61


def test_store_rate_limited_briefly_still_signs_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, rate_limit_for_ms=1500)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302
    assert len(world.customers()) == 1


def test_store_unreachable(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(store={"api_url": "http://127.0.0.1:9"})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 502, world, broker_log, says="could not be reached")


def test_idp_unreachable(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(connection={"issuer": "http://127.0.0.1:9"})
    outcome = Outcome(browser_http.get(f"{world.broker.url}/acme/login/corp"))
    assert_refused(outcome, 502, world, broker_log, says="could not be reached")


def test_unknown_store_and_connection_are_404_pages(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    for path in ("/nope/login/corp", "/acme/login/nope", "/acme/oidc/nope/callback"):
        outcome = Outcome(browser_http.get(world.broker.url + path))
        assert outcome.status == 404
        assert outcome.error_ref


def test_store_refusing_the_broker_4xx_gives_a_clear_page(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(store={"access_token": "a-revoked-token"})  # the store answers 401
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert_refused(outcome, 502, world, broker_log, says="refused the broker")
    line = next(line for line in broker_log.lines if line.get("ref") == outcome.error_ref)
    assert "401" in line["detail"]
    assert "a-revoked-token" not in json.dumps(broker_log.lines)
