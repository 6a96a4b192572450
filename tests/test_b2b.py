"""B2B Edition over real HTTP: buyers signed in as company users with the right company and role.

The sandbox store runs B2B Edition's management API; the broker is configured with a company
map and a role map. What the sandbox's B2B book holds afterwards is the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from broker.sandbox.idp import DevUser
from tests.conftest import World
from tests.saml_fixtures import SamlWorld
from tests.support.flows import page_field, sign_in, visit_storefront

B2B_TOKEN = "b2b-token-" + "x" * 20


def b2b_world(
    make_world: Callable[..., World], **b2b: Any
) -> tuple[World, dict[str, Any], dict[str, Any]]:
    """A B2B store with two approved companies; ``b2b`` overrides the broker's [b2b] table."""
    holder: dict[str, Any] = {}

    settings = {
        "access_token": B2B_TOKEN,
        "companies_by_domain": {"example.com": "ACME"},  # "ACME": that company's id
        "roles_by_group": {"buyer-admins": 0, "approvers": 1},
        "default_role": 2,
        **b2b,
    }
    world = make_world(
        sandbox_store={"b2b_token": B2B_TOKEN}, store={"b2b": settings}, defer=holder
    )
    return world, holder["acme"], holder["other"]


@pytest.fixture
def b2b(
    make_world: Callable[..., World],
) -> Callable[..., tuple[World, dict[str, Any], dict[str, Any]]]:
    def build(**b2b_settings: Any) -> tuple[World, dict[str, Any], dict[str, Any]]:
        return b2b_world(make_world, **b2b_settings)

    return build


def company_user(world: World, customer_id: int) -> dict[str, Any] | None:
    user: dict[str, Any] | None = world.sandbox.state.company_user(
        world.store.store_hash, customer_id
    )
    return user


def test_a_new_buyer_is_created_as_a_company_user_with_the_mapped_role(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    world.idp.state.add_user(
        DevUser(
            sub="ada",
            email="ada@example.com",
            password="password",
            given_name="Ada",
            family_name="L",
            groups=("approvers",),
        )
    )
    outcome = sign_in(browser_http, world.broker.url, "ada@example.com")
    assert outcome.status == 302, outcome.response.text
    page = visit_storefront(browser_http, outcome.location)
    [customer] = world.customers()
    assert page_field(page.text, "customer-id") == str(customer["id"])
    user = company_user(world, customer["id"])
    assert user is not None
    assert (user["companyId"], user["role"]) == (acme["companyId"], 1)
    # Created through B2B Edition, not Customers V3.
    paths = [
        r.path for r in world.sandbox.state.requests(world.store.store_hash) if r.method == "POST"
    ]
    assert paths == ["/api/v3/io/users"]


def test_an_existing_customer_joins_the_company(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    existing = world.sandbox.state.add_customer(world.store.store_hash, email="alice@example.com")
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    assert [c["id"] for c in world.customers()] == [existing["id"]]
    user = company_user(world, existing["id"])
    assert user is not None
    assert (user["companyId"], user["role"]) == (acme["companyId"], 2)


def test_the_role_follows_the_idp_at_each_sign_in(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    existing = world.sandbox.state.add_customer(world.store.store_hash, email="alice@example.com")
    world.sandbox.state.add_company_user(
        world.store.store_hash, existing["id"], acme["companyId"], 2
    )
    # Alice is in "buyers" at the dev IdP; make her an approver there.
    world.idp.state.add_user(
        DevUser(
            sub="dev-alice", email="alice@example.com", password="password", groups=("approvers",)
        )
    )
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    user = company_user(world, existing["id"])
    assert user is not None
    assert user["role"] == 1
    entries = world.broker.app.extensions["broker"].storage.recent_audit("acme")
    assert any(e.event == "company" and e.outcome == "role_synced" for e in entries)


def test_the_last_admin_is_not_demoted_and_still_signs_in(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    existing = world.sandbox.state.add_customer(world.store.store_hash, email="alice@example.com")
    world.sandbox.state.add_company_user(
        world.store.store_hash, existing["id"], acme["companyId"], 0
    )
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")  # IdP says: junior
    assert outcome.status == 302
    user = company_user(world, existing["id"])
    assert user is not None
    assert user["role"] == 0
    entries = world.broker.app.extensions["broker"].storage.recent_audit("acme")
    assert any(e.outcome == "role_kept_last_admin" for e in entries)


def test_a_user_of_another_company_is_refused(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, _, other = b2b()
    existing = world.sandbox.state.add_customer(world.store.store_hash, email="alice@example.com")
    world.sandbox.state.add_company_user(
        world.store.store_hash, existing["id"], other["companyId"], 2
    )
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 403
    assert "belongs to another company" in outcome.error_message
    assert not [login for login in world.logins() if login["ok"]]
    user = company_user(world, existing["id"])
    assert user is not None
    assert user["companyId"] == other["companyId"]


@pytest.mark.parametrize("status", ["pending", "inactive"])
def test_a_company_that_is_not_approved_is_refused(
    b2b: Callable[..., Any], browser_http: httpx.Client, status: str
) -> None:
    world, acme, _ = b2b()
    world.sandbox.state.set_company_status(world.store.store_hash, acme["companyId"], status)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 403
    assert "not active" in outcome.error_message
    assert world.customers() == []


def test_no_company_refused_by_default(b2b: Callable[..., Any], browser_http: httpx.Client) -> None:
    world, _, _ = b2b(companies_by_domain={"elsewhere.example": 1})
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 403
    assert "not one of them" in outcome.error_message
    assert world.customers() == []


def test_no_company_may_sign_in_as_a_plain_customer(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, _, _ = b2b(companies_by_domain={"elsewhere.example": 1}, no_company="customer")
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    assert company_user(world, customer["id"]) is None


def test_company_from_a_group(b2b: Callable[..., Any], browser_http: httpx.Client) -> None:
    world, _, other = b2b(companies_by_domain={}, companies_by_group={"buyers": "OTHER"})
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    user = company_user(world, customer["id"])
    assert user is not None
    assert user["companyId"] == other["companyId"]


@pytest.mark.parametrize("fault", [{"status": 429, "reset_ms": 60_000}, {"status": 500}])
def test_b2b_api_failures_give_a_clear_page_and_nothing_half_done(
    b2b: Callable[..., Any], browser_http: httpx.Client, fault: dict[str, int]
) -> None:
    world, _, _ = b2b()
    world.sandbox.state.set_faults(world.store.store_hash, only="b2b", count=100, **fault)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == (503 if fault["status"] == 429 else 502)
    assert outcome.error_ref
    assert world.customers() == []
    assert world.sandbox.state.b2b_users(world.store.store_hash) == []


def test_a_saml_buyer_lands_as_a_company_user(
    make_saml_world: Callable[..., SamlWorld], browser_http: httpx.Client
) -> None:
    holder: dict[str, Any] = {}
    world = make_saml_world(
        sandbox_store={"b2b_token": B2B_TOKEN},
        store={
            "b2b": {
                "access_token": B2B_TOKEN,
                "companies_by_group": {"buyers": "ACME"},
                "roles_by_group": {"buyers": 1},
            }
        },
        defer=holder,
    )
    outcome = world.post(browser_http, world.sso(browser_http, "alice"))
    assert outcome.status == 302, outcome.response.text
    [customer] = world.customers()
    user = world.sandbox.state.company_user(world.store.store_hash, customer["id"])
    assert user is not None
    assert (user["companyId"], user["role"]) == (holder["acme"]["companyId"], 1)
