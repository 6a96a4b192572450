"""B2B Edition over real HTTP: buyers signed in as company users with the right company and role.

The sandbox store runs B2B Edition's management API; the broker is configured with a company
map and a role map. What the sandbox's B2B book holds afterwards is the evidence.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from broker.sandbox.idp import DevClient, DevUser
from broker.storage import LinkTouch
from tests.conftest import DevIdP, World
from tests.saml_fixtures import SamlWorld
from tests.support.flows import (
    Outcome,
    dev_idp_sign_in,
    give_name,
    page_field,
    sign_in,
    start_login,
    visit_storefront,
)

B2B_TOKEN = "b2b-token-" + "x" * 20


def b2b_world(
    make_world: Callable[..., World], connection: dict[str, Any] | None = None, **b2b: Any
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
        sandbox_store={"b2b_token": B2B_TOKEN},
        store={"b2b": settings},
        defer=holder,
        connection=connection,
    )
    return world, holder["acme"], holder["other"]


@pytest.fixture
def b2b(
    make_world: Callable[..., World],
) -> Callable[..., tuple[World, dict[str, Any], dict[str, Any]]]:
    def build(
        connection: dict[str, Any] | None = None, **b2b_settings: Any
    ) -> tuple[World, dict[str, Any], dict[str, Any]]:
        return b2b_world(make_world, connection, **b2b_settings)

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


# -- a connection reaches only the companies bound to it ---------------------------------------


def two_idp_world(
    make_world: Callable[..., World],
    make_dev_idp: Callable[[], DevIdP],
    *,
    corp_b2b: dict[str, Any] | None,
    partner_b2b: dict[str, Any] | None,
    store_b2b: dict[str, Any] | None = None,
    partner: dict[str, Any] | None = None,
) -> tuple[World, DevIdP, dict[str, Any], dict[str, Any]]:
    """Company ACME's IdP (connection corp) and company OTHER's own IdP (connection partner)
    in one B2B store: README's "one IdP per customer company"."""
    holder: dict[str, Any] = {}
    partner_idp = make_dev_idp()
    secret = secrets.token_urlsafe(24)
    partner_conn = {
        "type": "oidc",
        "issuer": partner_idp.url,
        "client_id": "broker",
        "client_secret": secret,
        "scopes": ["openid", "email", "profile", "groups"],
        "link": "auto",
        **(partner or {}),
    }
    if partner_b2b is not None:
        partner_conn["b2b"] = partner_b2b
    world = make_world(
        sandbox_store={"b2b_token": B2B_TOKEN},
        store={"b2b": {"access_token": B2B_TOKEN, **(store_b2b or {})}},
        connection={"b2b": corp_b2b} if corp_b2b is not None else None,
        more_connections={"partner": partner_conn},
        defer=holder,
    )
    partner_idp.state.add_client(
        DevClient("broker", secret, (f"{world.broker.url}/acme/oidc/partner/callback",))
    )
    return world, partner_idp, holder["acme"], holder["other"]


def partner_sign_in(
    http: httpx.Client, world: World, partner_idp: DevIdP, user: DevUser
) -> Outcome:
    partner_idp.state.add_user(user)
    authorize = start_login(http, world.broker.url, "/acme/login/partner")
    return Outcome(http.get(dev_idp_sign_in(http, authorize, user.email)))


def with_claim(name: str, value: Any) -> Any:
    def tamper(header: dict[str, Any], claims: dict[str, Any], state: Any) -> str:
        return str(state.sign(header, {**claims, name: value}))

    return tamper


def members(world: World, company: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        user
        for customer in world.customers()
        if (user := company_user(world, customer["id"])) is not None
        and user["companyId"] == company["companyId"]
    ]


def test_another_companys_idp_cannot_assert_your_group(
    make_world: Callable[..., World], make_dev_idp: Callable[[], DevIdP], browser_http: httpx.Client
) -> None:
    # OTHER's IdP puts its user in "acme-admins", the group that makes ACME admins.
    world, partner_idp, acme, other = two_idp_world(
        make_world,
        make_dev_idp,
        corp_b2b={
            "companies_by_group": {"acme-admins": "ACME"},
            "roles_by_group": {"acme-admins": 0},
        },
        partner_b2b={"companies_by_domain": {"other.example": "OTHER"}},
    )
    mallory = DevUser(
        sub="m", email="mallory@other.example", password="password", groups=("acme-admins",)
    )
    asked = partner_sign_in(browser_http, world, partner_idp, mallory)
    # Her IdP sends no names: she is asked before the company user is created.
    assert (asked.status, asked.location) == (303, "/acme/signin/name"), asked.response.text
    assert members(world, other) == []
    outcome = give_name(browser_http, world.broker.url, "Mallory", "Moss")
    assert outcome.status == 302, outcome.response.text
    assert members(world, acme) == []
    [member] = members(world, other)
    assert member["role"] == 2  # OTHER's binding has no admin group: the default role
    assert (member["firstName"], member["lastName"]) == ("Mallory", "Moss")


def test_another_companys_idp_cannot_claim_your_company_id(
    make_world: Callable[..., World], make_dev_idp: Callable[[], DevIdP], browser_http: httpx.Client
) -> None:
    world, partner_idp, acme, other = two_idp_world(
        make_world,
        make_dev_idp,
        corp_b2b={"company_claim": "b2b_company_id", "companies": ["ACME"]},
        partner_b2b={"company_claim": "b2b_company_id", "companies": ["OTHER"]},
    )
    partner_idp.state.tamper = with_claim("b2b_company_id", acme["companyId"])
    mallory = DevUser(
        sub="m",
        email="mallory@other.example",
        password="password",
        given_name="Mallory",
        family_name="Moss",
    )
    outcome = partner_sign_in(browser_http, world, partner_idp, mallory)
    assert outcome.status == 403  # no company of its own named: refused, not placed in ACME
    assert members(world, acme) == []
    assert world.customers() == []
    # Its own company's id is honoured.
    partner_idp.state.tamper = with_claim("b2b_company_id", other["companyId"])
    browser_http.cookies.clear()
    outcome = partner_sign_in(browser_http, world, partner_idp, mallory)
    assert outcome.status == 302, outcome.response.text
    assert len(members(world, other)) == 1


def test_store_wide_domains_apply_only_within_the_connections_allowed_domains(
    make_world: Callable[..., World], make_dev_idp: Callable[[], DevIdP], browser_http: httpx.Client
) -> None:
    # The store-wide map names both companies' domains; OTHER's IdP asserts an ACME address.
    world, partner_idp, acme, other = two_idp_world(
        make_world,
        make_dev_idp,
        corp_b2b=None,
        partner_b2b=None,
        store_b2b={"companies_by_domain": {"acme.example": "ACME", "other.example": "OTHER"}},
        partner={"allowed_domains": ["other.example", "acme.example.net"]},
    )
    mallory = DevUser(sub="m", email="ceo@acme.example", password="password")
    outcome = partner_sign_in(browser_http, world, partner_idp, mallory)
    assert outcome.status == 403
    assert members(world, acme) == []
    browser_http.cookies.clear()
    buyer = DevUser(
        sub="b", email="buyer@other.example", password="password", given_name="B", family_name="Y"
    )
    assert partner_sign_in(browser_http, world, partner_idp, buyer).status == 302
    assert len(members(world, other)) == 1


def test_an_unverified_email_never_chooses_a_company(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    # The connection lets unverified addresses sign in, but not choose a company by domain.
    world, acme, _ = b2b(connection={"require_verified_email": False})
    world.idp.state.add_user(
        DevUser(sub="u", email="eve@example.com", password="password", email_verified=False)
    )
    outcome = sign_in(browser_http, world.broker.url, "eve@example.com")
    assert outcome.status == 403
    assert members(world, acme) == []


def test_joining_a_company_uses_the_customers_own_email(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    # Ada's sign-in is linked to her customer (from before the store ran B2B Edition); her
    # IdP address has since become one another customer holds at the store. Joining the
    # company must attach Ada's customer, not that address's owner.
    world, acme, _ = b2b()
    h = world.store.store_hash
    ada = world.sandbox.state.add_customer(h, email="ada@example.com")
    bob = world.sandbox.state.add_customer(h, email="bob@example.com")
    world.broker.app.extensions["broker"].storage.create_link(
        store="acme",
        connection="corp",
        subject="ada",
        issuer=world.idp.url,
        customer_id=ada["id"],
        email="ada@example.com",
        now=int(time.time()),
    )
    world.idp.state.add_user(DevUser(sub="ada", email="bob@example.com", password="password"))
    outcome = sign_in(browser_http, world.broker.url, "bob@example.com")
    assert outcome.status == 302, outcome.response.text
    page = visit_storefront(browser_http, outcome.location)
    assert page_field(page.text, "customer-id") == str(ada["id"])
    assert company_user(world, bob["id"]) is None
    user = company_user(world, ada["id"])
    assert user is not None
    assert user["companyId"] == acme["companyId"]


def test_the_company_claim_is_found_whatever_the_case_of_its_name(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    # SAML attribute (and some OIDC claim) names come as each IdP writes them.
    world, acme, _ = b2b(company_claim="b2b_company_id", companies_by_domain={})
    world.idp.state.tamper = with_claim("B2B_Company_Id", str(acme["companyId"]))
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302, outcome.response.text
    assert len(members(world, acme)) == 1


# -- returning buyers ask B2B Edition nothing --------------------------------------------------


def b2b_requests(world: World) -> list[str]:
    """The B2B Edition requests the store saw, as "METHOD /path"."""
    return [
        f"{r.method} {r.path.removeprefix('/api/v3/io')}"
        for r in world.sandbox.state.requests(world.store.store_hash)
        if r.path.startswith("/api/v3/io")
    ]


def sign_in_again(http: httpx.Client, world: World, email: str = "alice@example.com") -> None:
    """A returning buyer in a new browser; the B2B requests are counted from here."""
    world.sandbox.state.clear_requests(world.store.store_hash)
    http.cookies.clear()
    outcome = sign_in(http, world.broker.url, email)
    assert outcome.status == 302, outcome.response.text


def only_link(world: World, email: str = "alice@example.com") -> Any:
    """The one link of the customer with ``email``."""
    storage = world.broker.app.extensions["broker"].storage
    [customer] = [c for c in world.customers() if c["email"] == email]
    [link] = storage.links_for_customer("acme", customer["id"])
    return link


def set_alice_groups(world: World, *groups: str) -> None:
    world.idp.state.add_user(
        DevUser(sub="dev-alice", email="alice@example.com", password="password", groups=groups)
    )


def test_a_new_buyer_costs_two_b2b_requests_and_the_next_sign_in_none(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    world.sandbox.state.clear_requests(world.store.store_hash)
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    # Made as a company user with the planned role: nothing left to ask afterwards.
    assert b2b_requests(world) == [f"GET /companies/{acme['companyId']}", "POST /users"]
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []


def test_an_existing_customer_joins_with_three_b2b_requests(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    existing = world.sandbox.state.add_customer(world.store.store_hash, email="alice@example.com")
    world.sandbox.state.clear_requests(world.store.store_hash)
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    assert b2b_requests(world) == [
        f"GET /users/customer/{existing['id']}",
        f"GET /companies/{acme['companyId']}",
        "POST /users",
    ]
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []


@pytest.mark.parametrize("sync_role", [True, False])
def test_a_returning_buyer_costs_no_b2b_request(
    b2b: Callable[..., Any], browser_http: httpx.Client, sync_role: bool
) -> None:
    world, acme, _ = b2b(sync_role=sync_role)
    first = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert first.status == 302, first.response.text
    assert b2b_requests(world)  # the first sign-in asks (and creates the company user)
    link = only_link(world)
    assert link.company_plan == f"{acme['companyId']}:2::{'sync' if sync_role else 'keep'}"
    for _ in range(2):
        sign_in_again(browser_http, world)
        assert b2b_requests(world) == []
        assert world.sandbox.state.requests(world.store.store_hash) == []  # nor any other
    page = visit_storefront(
        browser_http, sign_in(browser_http, world.broker.url, "alice@example.com").location
    )
    [customer] = world.customers()
    assert page_field(page.text, "customer-id") == str(customer["id"])
    user = company_user(world, customer["id"])
    assert user is not None
    assert (user["companyId"], user["role"]) == (acme["companyId"], 2)


def test_a_group_change_asks_b2b_again_and_syncs_the_role(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    set_alice_groups(world, "approvers")  # the IdP makes her a senior buyer
    sign_in_again(browser_http, world)
    user_id = company_user(world, customer["id"])["id"]  # type: ignore[index]
    assert b2b_requests(world) == [f"GET /users/customer/{customer['id']}", f"PUT /users/{user_id}"]
    assert company_user(world, customer["id"])["role"] == 1  # type: ignore[index]
    assert only_link(world).company_plan == f"{acme['companyId']}:1::sync"
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []


def test_a_group_change_with_sync_role_off_asks_once_and_keeps_the_role(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, _, _ = b2b(sync_role=False)
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    set_alice_groups(world, "approvers")
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == [f"GET /users/customer/{customer['id']}"]
    assert company_user(world, customer["id"])["role"] == 2  # type: ignore[index]
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []


def test_a_company_change_at_the_idp_is_refused_at_the_refresh(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    """The IdP now puts the buyer in another company: asked again, refused as at a first
    sign-in (a user of another company), and the link's plan is left as it was."""
    world, acme, _ = b2b(
        companies_by_domain={}, companies_by_group={"buyers": "ACME", "x": "OTHER"}
    )
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    kept = only_link(world).company_plan
    set_alice_groups(world, "x")
    world.sandbox.state.clear_requests(world.store.store_hash)
    browser_http.cookies.clear()
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 403
    assert "belongs to another company" in outcome.error_message
    assert len(b2b_requests(world)) == 1
    assert only_link(world).company_plan == kept == f"{acme['companyId']}:2::sync"
    # Back in the old company: the kept plan matches again, nothing to ask.
    set_alice_groups(world, "buyers")
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []


def age_company_check(world: World, hours: int) -> None:
    """Make the link's last B2B check ``hours`` older (the broker's own write verb)."""
    storage = world.broker.app.extensions["broker"].storage
    link = only_link(world)
    storage.record_sign_in(
        session=None,
        audit=[],
        touch=LinkTouch(
            link.id,
            company_plan=link.company_plan,
            company_checked_at=link.company_checked_at - hours * 3600,
        ),
    )


def test_an_expired_check_asks_b2b_again(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, _, _ = b2b()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    age_company_check(world, 23)
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []  # 23 hours old: within company_user_cache_hours (24)
    age_company_check(world, 2)
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == [f"GET /users/customer/{customer['id']}"]
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []  # checked anew


def test_a_company_user_removed_in_b2b_is_joined_again_at_the_refresh(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, acme, _ = b2b()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    user = company_user(world, customer["id"])
    assert user is not None
    h = world.store.store_hash
    colleague = world.sandbox.state.add_customer(h, email="bob@example.com")
    world.sandbox.state.add_company_user(h, colleague["id"], acme["companyId"], 0)
    removed = httpx.delete(
        f"{world.sandbox.url}/api/v3/io/users/{user['id']}",
        headers={"X-Auth-Token": B2B_TOKEN, "X-Store-Hash": h},
    )
    assert removed.status_code == 200, removed.text
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == []  # trusted until the check expires
    age_company_check(world, 25)
    sign_in_again(browser_http, world)
    assert b2b_requests(world)[0] == f"GET /users/customer/{customer['id']}"  # 404: gone
    again = company_user(world, customer["id"])
    assert again is not None
    assert again["companyId"] == acme["companyId"]
    entries = world.broker.app.extensions["broker"].storage.recent_audit("acme")
    assert (entries[1].event, entries[1].outcome) == ("company", "company_joined")


def test_with_no_cache_every_sign_in_asks_b2b(
    b2b: Callable[..., Any], browser_http: httpx.Client
) -> None:
    world, _, _ = b2b(company_user_cache_hours=0)
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    [customer] = world.customers()
    sign_in_again(browser_http, world)
    assert b2b_requests(world) == [f"GET /users/customer/{customer['id']}"]
