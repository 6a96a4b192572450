"""Real store conditions over HTTP: faults at the store and many first sign-ins at once.

The concurrency case runs the broker as operators do, under gunicorn with several worker
processes, so the "one customer per e-mail" guard is shown to hold across processes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.sandbox.idp import DevClient, DevUser
from tests.conftest import DevIdP, Sandbox, World
from tests.support.flows import dev_idp_sign_in, sign_in, start_login, visit_storefront
from tests.support.serve import broker_serve
from tests.support.settings import document as settings_document
from tests.support.settings import oidc_connection, store_table


def test_a_5xx_then_success_signs_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, status=503, count=1)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302
    statuses = [r.status for r in world.sandbox.state.requests(world.store.store_hash)]
    assert statuses[:2] == [503, 200]
    assert len(world.customers()) == 1


def test_the_busy_page_says_when_to_come_back(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, rate_limit_for_ms=20_000)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 503
    seconds = int(outcome.response.headers["Retry-After"])
    assert f"try again in {seconds} seconds" in outcome.error_message
    assert world.customers() == []


def test_an_exhausted_quota_is_respected_without_spending_429s(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    # A quota of 2 per 30-second window: the first sign-in (lookup, create) uses it up and the
    # store says so in X-Rate-Limit-Requests-Left. The next one does not knock: the wait is past
    # the deadline, so it says "busy" at once and the store sees no request from it.
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, quota=2)
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    outcome = sign_in(browser_http, world.broker.url, "bob@example.com")
    assert outcome.status == 503
    assert 20 <= int(outcome.response.headers["Retry-After"]) <= 31
    statuses = [r.status for r in world.sandbox.state.requests(world.store.store_hash)]
    assert statuses == [200, 200]
    assert [c["email"] for c in world.customers()] == ["alice@example.com"]


@pytest.fixture(params=["auto", "confirm", "deny"])
def crowd(
    sandbox: Sandbox, dev_idp: DevIdP, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    """Ten new people at the IdP, a store, and the broker under gunicorn with 3 workers, under
    each link policy: a customer made by a concurrent sign-in of the same person is never an
    "existing account" to confirm or refuse."""
    store = sandbox.add_store("crowd1")
    people = [f"buyer{i}@example.com" for i in range(10)]
    for i, email in enumerate(people):
        dev_idp.state.add_user(
            DevUser(
                sub=f"buyer-{i}",
                email=email,
                password="password",
                given_name="Buyer",
                family_name=str(i),
            )
        )
    secret = secrets.token_urlsafe(24)

    def document(base_url: str) -> dict[str, Any]:
        dev_idp.state.add_client(
            DevClient("broker", secret, (f"{base_url}/acme/oidc/corp/callback",))
        )
        corp = oidc_connection(dev_idp.url, secret, link=request.param)
        return settings_document(
            base_url,
            {"acme": store_table(sandbox.url, store, connections={"corp": corp})},
            database_url=f"sqlite:///{tmp_path / 'broker.db'}",
        )

    with broker_serve(tmp_path, document, workers=3, threads=8) as url:
        yield {"broker": url, "people": people, "sandbox": sandbox, "store": store}


def test_fifty_first_sign_ins_of_ten_new_people_make_ten_customers(crowd: dict[str, Any]) -> None:
    sandbox: Sandbox = crowd["sandbox"]
    store_hash = crowd["store"].store_hash
    emails = [email for email in crowd["people"] for _ in range(5)]

    # Everyone is at the IdP's callback at the same moment: the race is in the broker. Each
    # request has a connection of its own: a connection kept alive from /login would sit idle
    # while the others reach the IdP, and one that gunicorn closes at its keep-alive timeout
    # just as the callback is sent is a dropped request (a browser retries it; httpx does not).
    def to_callback(email: str) -> tuple[httpx.Client, str]:
        fresh = httpx.Limits(max_keepalive_connections=0)
        http = httpx.Client(follow_redirects=False, timeout=60, limits=fresh)
        authorize = start_login(http, crowd["broker"], "/acme/login/corp")
        return http, dev_idp_sign_in(http, authorize, email)

    with ThreadPoolExecutor(max_workers=25) as pool:
        ready = list(pool.map(to_callback, emails))

    def finish(args: tuple[httpx.Client, str]) -> tuple[int, str]:
        http, callback = args
        answer = http.get(callback)
        landed = ""
        if answer.status_code == 302:
            page = visit_storefront(http, answer.headers["location"])
            landed = page.text
        http.close()
        return answer.status_code, landed

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(finish, ready))

    assert [status for status, _ in results] == [302] * 50
    customers = sandbox.state.customers(store_hash)
    assert sorted(c["email"] for c in customers) == sorted(crowd["people"])
    logins = sandbox.state.logins(store_hash)
    assert sum(1 for login in logins if login["ok"]) == 50
    for (_, page), email in zip(results, emails, strict=True):
        assert f">{email}<" in page
    creates = [r for r in sandbox.state.requests(store_hash) if r.method == "POST"]
    assert len(creates) == 10, "exactly one create per person"


def test_connection_resets_are_retried_for_lookups(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    world.sandbox.state.set_faults(world.store.store_hash, resets=2)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302, outcome.response.text
    # The two reset requests never reached the store; the retried lookup and the create did.
    assert [r.method for r in world.sandbox.state.requests(world.store.store_hash)] == [
        "GET",
        "POST",
    ]
    assert len(world.customers()) == 1
