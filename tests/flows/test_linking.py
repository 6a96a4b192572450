"""Links, link policies, storefront linking, webhooks and the audit log, over real HTTP.

The broker, the development IdP and the sandbox store run as servers; what the sandbox saw
(API requests, storefront logins, webhook deliveries) is the evidence.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from broker.sandbox.idp import DevUser
from tests.conftest import World
from tests.support.clock import Clock
from tests.support.flows import Outcome, page_field, sign_in, visit_storefront


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def storage(world: World) -> Any:
    return world.broker.app.extensions["broker"].storage


def validate_calls(world: World) -> int:
    return sum(
        1
        for r in world.sandbox.state.requests(world.store.store_hash)
        if r.path.endswith("validate-credentials")
    )


# -- zero API calls for a linked shopper --------------------------------------------------------


def test_a_linked_shopper_signs_in_with_no_bigcommerce_request(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    first = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert first.status == 302
    world.sandbox.state.clear_requests(world.store.store_hash)

    again = sign_in(browser_http, world.broker.url, "alice@example.com")
    page = visit_storefront(browser_http, again.location)
    assert page_field(page.text, "customer-email") == "alice@example.com"
    assert world.sandbox.state.requests(world.store.store_hash) == []


# -- link = "confirm" -------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def confirm_world(make_world: Callable[..., World], clock: Clock) -> World:
    world = make_world(connection={"link": "confirm"}, app_options={"clock": clock})
    world.sandbox.state.add_customer(
        world.store.store_hash,
        email="alice@example.com",
        first_name="Alice",
        last_name="Shopper",
        password="correct horse battery",
    )
    return world


def _to_confirmation(world: World, http: httpx.Client) -> httpx.Response:
    outcome = sign_in(http, world.broker.url, "alice@example.com")
    assert outcome.status == 303, outcome.response.text
    assert outcome.location == "/acme/link/confirm"
    page = http.get(world.broker.url + outcome.location)
    assert page.status_code == 200
    assert page_field(page.text, "account-email") == "alice@example.com"
    return page


def test_confirm_links_after_the_right_password_and_never_asks_again(
    confirm_world: World, browser_http: httpx.Client
) -> None:
    world = confirm_world
    page = _to_confirmation(world, browser_http)
    answer = browser_http.post(
        f"{world.broker.url}/acme/link/confirm",
        data={"password": "correct horse battery", "csrf_token": csrf_of(page.text)},
    )
    assert answer.status_code == 302
    landing = visit_storefront(browser_http, answer.headers["location"])
    [customer] = world.customers()
    assert page_field(landing.text, "customer-id") == str(customer["id"])

    # The link holds now: the next sign-in goes straight through, no password, no API call.
    world.sandbox.state.clear_requests(world.store.store_hash)
    again = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert again.status == 302
    assert world.sandbox.state.requests(world.store.store_hash) == []


def test_confirm_wrong_password_then_lockout(
    confirm_world: World, browser_http: httpx.Client, clock: Clock
) -> None:
    world = confirm_world
    page = _to_confirmation(world, browser_http)
    token = csrf_of(page.text)
    for left in (4, 3, 2, 1, 0):
        clock.advance(31)  # past the pace: this is about the 15-minute budget
        wrong = browser_http.post(
            f"{world.broker.url}/acme/link/confirm", data={"password": "guess", "csrf_token": token}
        )
        assert wrong.status_code == 401
        assert "not right" in wrong.text
        assert (f"{left} attempt" in wrong.text) if left else ("No attempts left" in wrong.text)
    calls = validate_calls(world)
    locked = Outcome(
        browser_http.post(
            f"{world.broker.url}/acme/link/confirm",
            data={"password": "correct horse battery", "csrf_token": token},
        )
    )
    assert locked.status == 429
    assert int(locked.response.headers["Retry-After"]) == 900
    assert "Too many wrong passwords" in locked.error_message
    assert validate_calls(world) == calls, "a locked account is not even checked"
    assert storage(world).links_for_customer("acme", world.customers()[0]["id"]) == []
    assert not [login for login in world.logins() if login["ok"]]


def test_one_shoppers_guesses_leave_the_stores_checks_to_others(
    confirm_world: World, browser_http: httpx.Client
) -> None:
    """validate-credentials has a store-wide limit (5 per 30 s in the sandbox): a burst of
    one shopper's guesses is paced, so another shopper's right password still gets checked."""
    world = confirm_world
    world.sandbox.state.add_customer(
        world.store.store_hash, email="bob@example.com", first_name="B", password="bobs secret"
    )
    page = _to_confirmation(world, browser_http)
    token = csrf_of(page.text)
    statuses = [
        browser_http.post(
            f"{world.broker.url}/acme/link/confirm", data={"password": "guess", "csrf_token": token}
        ).status_code
        for _ in range(5)
    ]
    assert statuses == [401, 401, 429, 429, 429]
    assert validate_calls(world) == 2
    with httpx.Client(follow_redirects=False, timeout=20) as bob:
        outcome = sign_in(bob, world.broker.url, "bob@example.com")
        assert outcome.location == "/acme/link/confirm"
        bob_page = bob.get(world.broker.url + outcome.location)
        answer = bob.post(
            f"{world.broker.url}/acme/link/confirm",
            data={"password": "bobs secret", "csrf_token": csrf_of(bob_page.text)},
        )
        assert answer.status_code == 302, answer.text


def test_confirm_without_csrf_token_is_refused_before_any_check(
    confirm_world: World, browser_http: httpx.Client
) -> None:
    world = confirm_world
    _to_confirmation(world, browser_http)
    refused = Outcome(
        browser_http.post(
            f"{world.broker.url}/acme/link/confirm", data={"password": "correct horse battery"}
        )
    )
    assert refused.status == 400
    assert validate_calls(world) == 0


def test_confirmation_in_another_browser_is_refused(
    confirm_world: World, browser_http: httpx.Client
) -> None:
    world = confirm_world
    _to_confirmation(world, browser_http)
    with httpx.Client() as other:
        outcome = Outcome(other.get(f"{world.broker.url}/acme/link/confirm"))
    assert outcome.status == 400
    assert "expired" in outcome.error_message


def test_a_used_confirmation_cannot_be_replayed(
    confirm_world: World, browser_http: httpx.Client
) -> None:
    world = confirm_world
    page = _to_confirmation(world, browser_http)
    data = {"password": "correct horse battery", "csrf_token": csrf_of(page.text)}
    assert browser_http.post(f"{world.broker.url}/acme/link/confirm", data=data).status_code == 302
    replay = Outcome(browser_http.post(f"{world.broker.url}/acme/link/confirm", data=data))
    assert replay.status == 400


def test_deny_policy_explains_what_to_do(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"link": "deny"})
    world.sandbox.state.add_customer(world.store.store_hash, email="alice@example.com")
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 403
    assert "Sign in with your password" in outcome.error_message
    assert storage(world).links_for_customer("acme", world.customers()[0]["id"]) == []


# -- linking from the storefront ------------------------------------------------------------------


def current_customer_jwt(world: World, customer: dict[str, Any], **over: Any) -> str:
    now = int(time.time())
    claims = {
        "customer": {"id": customer["id"], "email": customer["email"], "group_id": "0"},
        "iss": "bc/apps",
        "sub": world.store.store_hash,
        "iat": now,
        "exp": now + 900,
        "version": 1,
        "aud": world.store.client_id,
        "application_id": "app",
        "store_hash": world.store.store_hash,
        "operation": "current_customer",
        **over,
    }
    key = OctKey.import_key(over.pop("secret", world.store.client_secret))
    return jwt.encode({"typ": "JWT", "alg": "HS256"}, claims, key)


def link_nonce(world: World, http: httpx.Client) -> str:
    """The script's first step: the broker binds a nonce to this browser and sends it back to
    the storefront page in the fragment."""
    back = http.get(f"{world.broker.url}/acme/link/nonce", params={"return": "/account.php"})
    assert back.status_code == 303, back.text
    page, _, fragment = back.headers["location"].partition("#sso-link-nonce=")
    assert page == f"{world.storefront}/account.php"
    return fragment


def post_start(
    world: World, http: httpx.Client, token: str, nonce: str | None, **headers: str
) -> httpx.Response:
    """The storefront page's POST to /link/start, with the Origin a browser sends."""
    data = {"customer_jwt": token, **({"nonce": nonce} if nonce is not None else {})}
    headers = {"Origin": world.sandbox.url, **headers}
    return http.post(f"{world.broker.url}/acme/link/start", data=data, headers=headers)


def open_link_page(world: World, http: httpx.Client, token: str) -> httpx.Response:
    """The whole storefront side of "Manage company sign-in", up to the broker's page."""
    started = post_start(world, http, token, link_nonce(world, http))
    assert started.status_code == 303, started.text
    finished = http.get(world.broker.url + started.headers["location"])
    assert finished.status_code == 303, finished.text
    assert finished.headers["location"] == "/acme/link"
    page = http.get(world.broker.url + finished.headers["location"])
    assert page.status_code == 200, page.text
    return page


@pytest.mark.parametrize(
    "tamper",
    [
        {"aud": "another-app"},
        {"operation": "customer_login"},
        {"store_hash": "someoneelse"},
        {"exp": 1},
        {"secret": "x" * 40},
    ],
)
def test_link_start_refuses_a_bad_current_customer_jwt(
    make_world: Callable[..., World], browser_http: httpx.Client, tamper: dict[str, Any]
) -> None:
    world = make_world()
    customer = world.sandbox.state.add_customer(world.store.store_hash, email="pat@shop.example")
    token = current_customer_jwt(world, customer, **tamper)
    outcome = Outcome(post_start(world, browser_http, token, link_nonce(world, browser_http)))
    assert outcome.status == 400
    assert outcome.error_ref
    assert browser_http.get(f"{world.broker.url}/acme/link").status_code == 400


def test_link_from_the_storefront_then_sign_in_lands_in_that_account(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    customer = world.sandbox.state.add_customer(
        world.store.store_hash, email="pat@shop.example", first_name="Pat", last_name="Buyer"
    )
    manage = open_link_page(world, browser_http, current_customer_jwt(world, customer))
    assert page_field(manage.text, "account-email") == "pat@shop.example"

    to_idp = browser_http.post(
        f"{world.broker.url}/acme/link/connect/corp", data={"csrf_token": csrf_of(manage.text)}
    )
    assert to_idp.status_code == 302
    browser_http.get(to_idp.headers["location"])
    back = browser_http.post(
        to_idp.headers["location"], data={"email": "alice@example.com", "password": "password"}
    )
    linked = browser_http.get(back.headers["location"])
    assert linked.status_code == 303
    listing = browser_http.get(world.broker.url + linked.headers["location"])
    assert "is now linked" in listing.text
    assert "as alice@example.com" in listing.text

    # Alice's company sign-in now opens Pat's store account, with no lookup by e-mail.
    world.sandbox.state.clear_requests(world.store.store_hash)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    page = visit_storefront(browser_http, outcome.location)
    assert page_field(page.text, "customer-id") == str(customer["id"])
    assert world.sandbox.state.requests(world.store.store_hash) == []
    assert len(world.customers()) == 1

    # And unlinking from the same page ends that (its Unlink asks first, on a page of its own).
    [link] = storage(world).links_for_customer("acme", customer["id"])
    asked = browser_http.get(f"{world.broker.url}/acme/link/unlink/{link.id}")
    gone = browser_http.post(
        f"{world.broker.url}/acme/link/unlink/{link.id}", data={"csrf_token": csrf_of(asked.text)}
    )
    assert gone.status_code == 303
    assert storage(world).links_for_customer("acme", customer["id"]) == []


def test_linking_speaks_the_storefronts_language_and_asks_the_idp_for_it(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    """The script's first step names the page's language (ui_locales): the link pages are in
    it, and the IdP is asked for it, though the later steps' URLs no longer say it."""
    world = make_world(store={"branding": {"languages": ["en", "es"]}})
    customer = world.sandbox.state.add_customer(world.store.store_hash, email="pat@shop.example")
    back = browser_http.get(
        f"{world.broker.url}/acme/link/nonce",
        params={"return": "/account.php", "ui_locales": "es-MX"},
    )
    nonce = back.headers["location"].partition("#sso-link-nonce=")[2]
    started = post_start(world, browser_http, current_customer_jwt(world, customer), nonce)
    finished = browser_http.get(world.broker.url + started.headers["location"])
    manage = browser_http.get(world.broker.url + finished.headers["location"])
    assert '<html lang="es"' in manage.text
    to_idp = browser_http.post(
        f"{world.broker.url}/acme/link/connect/corp", data={"csrf_token": csrf_of(manage.text)}
    )
    assert to_idp.status_code == 302
    assert "ui_locales=es" in to_idp.headers["location"]


def test_one_cannot_unlink_another_customers_link_or_skip_csrf(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [alice] = world.customers()
    [alice_link] = storage(world).links_for_customer("acme", alice["id"])

    mallory = world.sandbox.state.add_customer(world.store.store_hash, email="mallory@shop.example")
    with httpx.Client() as attacker:
        page = open_link_page(world, attacker, current_customer_jwt(world, mallory))
        token = csrf_of(page.text)
        not_theirs = attacker.post(
            f"{world.broker.url}/acme/link/unlink/{alice_link.id}", data={"csrf_token": token}
        )
        assert not_theirs.status_code == 404
        no_csrf = attacker.post(f"{world.broker.url}/acme/link/connect/corp", data={})
        assert no_csrf.status_code == 400
    assert storage(world).links_for_customer("acme", alice["id"]) == [alice_link]


def test_an_identity_linked_to_one_customer_cannot_be_linked_to_another(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    other = world.sandbox.state.add_customer(world.store.store_hash, email="other@shop.example")
    manage = open_link_page(world, browser_http, current_customer_jwt(world, other))
    to_idp = browser_http.post(
        f"{world.broker.url}/acme/link/connect/corp", data={"csrf_token": csrf_of(manage.text)}
    )
    browser_http.get(to_idp.headers["location"])
    back = browser_http.post(
        to_idp.headers["location"], data={"email": "alice@example.com", "password": "password"}
    )
    outcome = Outcome(browser_http.get(back.headers["location"]))
    assert outcome.status == 403
    assert "already connected to another account" in outcome.error_message
    assert storage(world).links_for_customer("acme", other["id"]) == []


# -- linking CSRF: only the storefront's pages, in this browser, start a link -------------------


def nothing_planted(world: World, http: httpx.Client) -> None:
    page = Outcome(http.get(f"{world.broker.url}/acme/link"))
    assert page.status == 400, "no storefront customer in this browser's link session"
    assert "mallory" not in page.response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        # No Origin (an older browser): the Referer says where the form was.
        {"Origin": "", "Referer": "https://evil.example/win-a-prize"},
        {"Sec-Fetch-Site": "none"},
    ],
)
def test_a_link_start_posted_by_another_site_is_refused_and_plants_nothing(
    make_world: Callable[..., World], browser_http: httpx.Client, headers: dict[str, str]
) -> None:
    # The attacker's auto-submitting form carries the attacker's own Current Customer JWT: the
    # victim's next click would link the victim's company sign-in to the attacker's account.
    world = make_world()
    mallory = world.sandbox.state.add_customer(world.store.store_hash, email="mallory@evil.example")
    nonce = link_nonce(world, browser_http)  # even with the victim's own nonce
    response = post_start(
        world, browser_http, current_customer_jwt(world, mallory), nonce, **headers
    )
    outcome = Outcome(response)
    assert outcome.status == 403, outcome.response.text
    assert outcome.error_ref
    assert "another site" in outcome.error_message
    nothing_planted(world, browser_http)


def test_a_link_start_without_the_nonce_is_refused(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    pat = world.sandbox.state.add_customer(world.store.store_hash, email="pat@shop.example")
    outcome = Outcome(post_start(world, browser_http, current_customer_jwt(world, pat), None))
    assert outcome.status == 403
    assert outcome.error_ref
    nothing_planted(world, browser_http)


def test_a_link_started_elsewhere_cannot_be_finished_in_this_browser(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    # The attacker starts a link for their own account in their own client (any Origin header
    # they like), then sends the victim's browser to the finishing URL.
    world = make_world()
    mallory = world.sandbox.state.add_customer(world.store.store_hash, email="mallory@evil.example")
    with httpx.Client() as attacker:
        started = post_start(
            world, attacker, current_customer_jwt(world, mallory), link_nonce(world, attacker)
        )
        assert started.status_code == 303
    link_nonce(world, browser_http)  # the victim even has a nonce of their own
    outcome = Outcome(browser_http.get(world.broker.url + started.headers["location"]))
    assert outcome.status == 403
    assert outcome.error_ref
    nothing_planted(world, browser_http)


def test_the_storefront_script_is_cacheable_javascript(make_world: Callable[..., World]) -> None:
    world = make_world()
    response = httpx.get(f"{world.broker.url}/acme/link/script.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "max-age" in response.headers["cache-control"]
    assert world.store.client_id in response.text
    assert world.store.client_secret not in response.text


# -- webhooks -------------------------------------------------------------------------------------

WEBHOOK_SECRET = "w" * 32


def test_registered_webhook_removes_the_links_of_a_deleted_customer(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(store={"webhook_secret": WEBHOOK_SECRET})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "webhooks",
            "register",
            "--store",
            "acme",
            "--config",
            str(world.broker.config_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "store/customer/deleted" in result.stdout

    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    assert storage(world).links_for_customer("acme", customer["id"])

    world.sandbox.state.delete_customer(world.store.store_hash, customer["id"])
    [delivery] = world.sandbox.state.wait_for_deliveries(world.store.store_hash, 1)
    assert delivery["status"] == 200
    assert storage(world).links_for_customer("acme", customer["id"]) == []

    # BigCommerce delivers again: the receiver answers, does nothing twice.
    world.sandbox.state.redeliver(world.store.store_hash, 0)
    deliveries = world.sandbox.state.wait_for_deliveries(world.store.store_hash, 2)
    assert deliveries[1]["status"] == 200
    webhook_entries = [e for e in storage(world).recent_audit("acme") if e.event == "webhook"]
    assert len(webhook_entries) == 1

    # A new sign-in after the deletion creates a new customer rather than failing.
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302
    assert [c["id"] for c in world.customers()] != [customer["id"]]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"scope": "store/customer/deleted", "hash": "h1", "data": {"id": 1}}, 401),
        (
            {"X-Broker-Webhook-Secret": "wrong" * 8},
            {"scope": "x", "hash": "h", "data": {"id": 1}},
            401,
        ),
        ({"X-Broker-Webhook-Secret": WEBHOOK_SECRET}, {"scope": "store/customer/deleted"}, 400),
        ({"X-Broker-Webhook-Secret": WEBHOOK_SECRET}, "not json", 400),
    ],
)
def test_bad_webhooks_change_nothing(
    make_world: Callable[..., World],
    browser_http: httpx.Client,
    headers: dict[str, str],
    body: Any,
    status: int,
) -> None:
    world = make_world(store={"webhook_secret": WEBHOOK_SECRET})
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    if isinstance(body, dict) and "data" in body:
        body["data"]["id"] = customer["id"]
    url = f"{world.broker.url}/acme/webhooks/bigcommerce"
    if isinstance(body, dict):
        response = httpx.post(url, json=body, headers=headers)
    else:
        response = httpx.post(
            url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status
    assert len(storage(world).links_for_customer("acme", customer["id"])) == 1


def test_webhooks_are_404_for_a_store_without_a_secret(make_world: Callable[..., World]) -> None:
    world = make_world()
    response = httpx.post(f"{world.broker.url}/acme/webhooks/bigcommerce", json={})
    assert response.status_code == 404


# -- audit log ---------------------------------------------------------------------------------


def test_audit_log_records_sign_ins_links_and_refusals(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    world.idp.state.add_user(
        DevUser(sub="dave", email="dave@example.com", password="password", email_verified=False)
    )
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    refused = sign_in(browser_http, world.broker.url, "dave@example.com")
    assert refused.status == 403

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "audit",
            "--store",
            "acme",
            "--config",
            str(world.broker.config_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    [ok] = [line for line in lines if " signin ok " in line]
    assert "connection=corp" in ok
    assert "subject=dev-alice" in ok
    assert "ip=127.0.0.1" in ok
    assert "detail=created,linked" in ok
    [refusal] = [line for line in lines if " refused " in line]
    assert "email_not_allowed" in refusal
    assert f"ref {refused.error_ref}" in refusal


def test_a_flood_of_refusals_cannot_fill_the_audit_log(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    """Anyone can make the broker refuse: rows per address are capped, and none carries the
    request's own text (an unknown connection's name, a forged callback's state)."""
    world = make_world()
    junk = "x" * 1500
    for n in range(45):
        answer = browser_http.get(f"{world.broker.url}/acme/oidc/corp/callback?state={junk}{n}")
        assert answer.status_code == 400
    answer = browser_http.get(f"{world.broker.url}/acme/login/{junk}")
    assert answer.status_code == 404
    refusals = [e for e in storage(world).recent_audit("acme", limit=500) if e.event == "refused"]
    assert len(refusals) == 30
    for entry in refusals:
        assert junk not in f"{entry.connection} {entry.detail} {entry.subject}"


def test_an_unlinked_sign_in_is_not_linked_again_by_the_next_sign_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()  # link = "auto"
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [alice] = world.customers()
    open_link_page(world, browser_http, current_customer_jwt(world, alice))
    [link] = storage(world).links_for_customer("acme", alice["id"])
    asked = browser_http.get(f"{world.broker.url}/acme/link/unlink/{link.id}")
    gone = browser_http.post(
        f"{world.broker.url}/acme/link/unlink/{link.id}", data={"csrf_token": csrf_of(asked.text)}
    )
    assert gone.status_code == 303
    # Her e-mail still matches the account, but she chose to disconnect this sign-in.
    again = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert again.status == 403
    assert "disconnected this sign-in" in again.error_message
    assert storage(world).links_for_customer("acme", alice["id"]) == []
    assert len(world.customers()) == 1
