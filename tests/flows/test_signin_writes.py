"""What a returning OIDC sign-in writes, counted at the database driver (SQLite's own trace
of every statement it runs, tests.support.sql_trace): the statements the storage runs
through SQLAlchemy and those it runs on the driver itself (broker.storage.sql.direct) alike,
and the ``COMMIT`` that ends each write transaction.

A returning shopper's sign-in is two write transactions: the flow spent at the callback
(single use, before the code is redeemed; ``/login`` writes nothing, the browser carries the
sealed flow), and the sign-in's one transaction (session + audit, and the link only when
something on it changed). No other statement runs: the link is read with its customer's
block in one SELECT.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from broker.accounts import LAST_SEEN_PRECISION_SECONDS
from broker.storage import LinkTouch
from tests.conftest import World
from tests.support.flows import dev_idp_sign_in, sign_in, start_login
from tests.support.sql_trace import Traced, traced


@contextmanager
def counting(world: World) -> Iterator[Traced]:
    with traced(world.broker.app.extensions["broker"].storage.engine) as found:
        yield found


@pytest.fixture
def returning(make_world: Callable[..., World], browser_http: httpx.Client) -> World:
    """A world where alice has signed in once (customer created and linked)."""
    world = make_world()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    browser_http.cookies.clear()
    return world


def storage_of(world: World) -> Any:
    return world.broker.app.extensions["broker"].storage


def alice_link(world: World) -> Any:
    [customer] = world.customers()
    [link] = storage_of(world).links_for_customer("acme", customer["id"])
    return link


def test_a_returning_sign_in_is_two_write_transactions_and_four_statements(
    returning: World, browser_http: httpx.Client
) -> None:
    before = alice_link(returning)
    with counting(returning) as counted:
        assert sign_in(browser_http, returning.broker.url, "alice@example.com").status == 302
    assert counted.verbs == [
        "INSERT used_once",  # the callback spends the flow its cookie carries
        "SELECT links",  # the link, with its customer's block
        "INSERT sessions",  # the sign-in's one transaction
        "INSERT audit_log",
    ]
    assert counted.write_transactions == 2
    assert alice_link(returning) == before  # signed in within the hour: not rewritten
    [*_, entry] = storage_of(returning).recent_audit("acme", limit=1)
    assert (entry.event, entry.outcome, entry.detail) == ("signin", "ok", "link")


def test_a_link_last_seen_over_an_hour_ago_is_touched_in_the_same_transaction(
    returning: World, browser_http: httpx.Client
) -> None:
    link = alice_link(returning)
    old = link.last_login_at - LAST_SEEN_PRECISION_SECONDS
    storage_of(returning).record_sign_in(
        session=None, audit=[], touch=LinkTouch(link.id, seen_at=old, email=link.email)
    )
    with counting(returning) as counted:
        assert sign_in(browser_http, returning.broker.url, "alice@example.com").status == 302
    assert counted.verbs[2:] == ["UPDATE links", "INSERT sessions", "INSERT audit_log"]
    assert counted.write_transactions == 2
    assert alice_link(returning).last_login_at > old


def test_a_new_email_at_the_idp_is_written_on_the_link(
    returning: World, browser_http: httpx.Client
) -> None:
    def new_email(header: dict[str, Any], claims: dict[str, Any], state: Any) -> str:
        return str(state.sign(header, {**claims, "email": "alice.new@example.com"}))

    returning.idp.state.tamper = new_email
    with counting(returning) as counted:
        assert sign_in(browser_http, returning.broker.url, "alice@example.com").status == 302
    assert counted.verbs[2:] == ["UPDATE links", "INSERT sessions", "INSERT audit_log"]
    assert alice_link(returning).email == "alice.new@example.com"


def test_a_blocked_customer_is_refused_by_the_link_read_and_nothing_is_written(
    returning: World, browser_http: httpx.Client
) -> None:
    link = alice_link(returning)
    storage = storage_of(returning)
    storage.block_customer("acme", link.customer_id, source="scim:corp", now=1)
    audit_before = storage.recent_audit("acme", limit=100)
    with counting(returning) as counted:
        outcome = sign_in(browser_http, returning.broker.url, "alice@example.com")
    assert outcome.status == 403
    assert "removed your access" in outcome.response.text
    assert "SELECT scim_blocks" not in counted.verbs  # known from the link's own read
    assert "INSERT sessions" not in counted.verbs
    added = storage.recent_audit("acme", limit=100)[: -len(audit_before)]
    assert added
    assert {e.outcome for e in added} == {"access_revoked"}  # audited as refused, no "ok"
    assert alice_link(returning) == link


def test_the_callback_replayed_is_refused_and_writes_no_session(
    returning: World, browser_http: httpx.Client
) -> None:
    """The callback cleared the flow's cookie: the replay brings none, and no flow is kept
    server-side under its state either."""
    callback = dev_idp_sign_in(
        browser_http,
        start_login(browser_http, returning.broker.url, "/acme/login/corp"),
        "alice@example.com",
    )
    assert browser_http.get(callback).status_code == 302
    with counting(returning) as counted:
        replay = browser_http.get(callback)
    assert replay.status_code == 400
    assert counted.verbs[0] == "DELETE pending_flows"
    assert "INSERT sessions" not in counted.verbs


def test_the_callback_replayed_with_its_flow_cookie_is_refused_and_writes_no_session(
    returning: World, browser_http: httpx.Client
) -> None:
    """A copied flow cookie (or a browser that kept it) replayed with the callback: the flow
    is spent in the one-time store, first, so the replay stops there."""
    callback = dev_idp_sign_in(
        browser_http,
        start_login(browser_http, returning.broker.url, "/acme/login/corp"),
        "alice@example.com",
    )
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser_http.cookies.jar)
    assert "broker_flow_" in cookies
    assert browser_http.get(callback).status_code == 302
    with counting(returning) as counted, httpx.Client(follow_redirects=False) as copied:
        replay = copied.get(callback, headers={"Cookie": cookies})
    assert replay.status_code == 400
    assert "already used" in replay.text
    assert counted.verbs[0] == "INSERT used_once"
    assert "INSERT sessions" not in counted.verbs
    assert "flow_expired" in {e.outcome for e in storage_of(returning).recent_audit("acme")}
