"""The IdPs stores really use, end to end: the development IdP taught each one's quirks
(:class:`broker.sandbox.idp.IdPQuirks`), the broker configured as docs/idps/ says, and the
sandbox store showing who signed in, or that nobody did.

Entra ID (no email_verified, xms_edov, the groups overage and Microsoft Graph, multi-tenant
issuers), Okta (email_verified absent, a custom authorization server's issuer), Google
Workspace (hd), Auth0 (a trailing "/" in the issuer, namespaced claims), Keycloak (realm roles,
preferred_username), and an IdP whose clock is off.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from broker.sandbox.idp import DevIdPState, DevUser, IdPQuirks
from tests.conftest import DevIdP, World
from tests.support.flows import Outcome, give_name, page_field, query, sign_in, start_login

T1 = "11111111-1111-4111-8111-111111111111"
T2 = "22222222-2222-4222-8222-222222222222"
T3 = "33333333-3333-4333-8333-333333333333"


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "broker":
            self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def broker_log() -> Iterator[LogLines]:
    handler = LogLines()
    logger = logging.getLogger("broker")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def teach(world: World, quirks: IdPQuirks, *users: DevUser) -> DevIdPState:
    """The broker's client at the dev IdP now behaves with ``quirks``; ``users`` are added."""
    state = world.idp.state
    client = state.client("broker")
    assert client is not None
    state.add_client(replace(client, quirks=quirks))
    for user in users:
        state.add_user(user)
    return state


def refused(
    outcome: Outcome, status: int, world: World, log: LogLines, *, says: str = ""
) -> dict[str, Any]:
    """A clear refusal page, its one log line (returned), and nothing done at the store."""
    assert outcome.status == status, outcome.response.text
    assert outcome.error_ref, "the page shows a reference id"
    assert says.lower() in outcome.error_message.lower(), outcome.error_message
    [line] = [line for line in log.lines if line.get("ref") == outcome.error_ref]
    assert "@" not in json.dumps(line), "no e-mail in the log line"
    assert world.customers() == [], "no customer created"
    assert not [login for login in world.logins() if login["ok"]], "nobody signed in"
    return line


def storage(world: World) -> Any:
    return world.broker.app.extensions["broker"].storage


def signed_in_as(world: World, outcome: Outcome, email: str) -> dict[str, Any]:
    assert outcome.status == 302, outcome.error_message or outcome.response.text
    assert outcome.location.startswith(f"{world.storefront}/login/token/")
    [customer] = [c for c in world.customers() if c["email"] == email]
    return customer


# -- Entra ID: email_verified never sent; xms_edov -----------------------------------------------

ENTRA_USER = DevUser(
    sub="AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
    email="erin@contoso.example",
    password="password",
    given_name="Erin",
    family_name="Entra",
)


def test_an_idp_that_never_sends_email_verified_is_refused_naming_the_fix(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    teach(world, IdPQuirks(send_email_verified=False), ENTRA_USER)
    outcome = sign_in(browser_http, world.broker.url, ENTRA_USER.email)
    line = refused(outcome, 403, world, broker_log, says="email_verified_claim")
    assert "require_verified_email = false" in outcome.error_message
    assert "xms_edov" in line["detail"]


def test_xms_edov_stands_in_for_email_verified_when_the_connection_says_so(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"email_verified_claim": "xms_edov", "link": "auto"})
    teach(world, IdPQuirks(send_email_verified=False, claims={"xms_edov": True}), ENTRA_USER)
    existing = world.sandbox.state.add_customer(
        world.store.store_hash, email=ENTRA_USER.email, first_name="E", last_name="E"
    )
    outcome = sign_in(browser_http, world.broker.url, ENTRA_USER.email)
    # Verified, so link = "auto" connects the existing account.
    assert signed_in_as(world, outcome, ENTRA_USER.email)["id"] == existing["id"]


def test_xms_edov_false_or_absent_is_not_verified(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(connection={"email_verified_claim": "xms_edov"})
    # email_verified true is not read any more: the connection names its own claim.
    teach(world, IdPQuirks(claims={"xms_edov": False}), ENTRA_USER)
    outcome = sign_in(browser_http, world.broker.url, ENTRA_USER.email)
    refused(outcome, 403, world, broker_log, says="verified")


# -- Entra ID: the groups overage ------------------------------------------------------------------

MANY_GROUPS = tuple(f"{i:08x}-0000-4000-8000-000000000000" for i in range(205))
WHOLESALE = MANY_GROUPS[150]
BUSY_USER = replace(ENTRA_USER, groups=MANY_GROUPS)
OVERAGE = IdPQuirks(groups_overage_above=200, claims={"tid": T1})


def test_a_groups_overage_without_graph_is_refused_naming_the_fix(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(connection={"customer_groups_by_group": {WHOLESALE: 2}})
    state = teach(world, OVERAGE, BUSY_USER)
    outcome = sign_in(browser_http, world.broker.url, BUSY_USER.email)
    line = refused(outcome, 502, world, broker_log, says="app roles")
    assert "groups assigned to the application" in outcome.error_message
    assert 'groups_overage = "graph"' in line["detail"]
    assert state.graph_requests == [], "neither Graph nor the token's endpoint was called"


def test_a_groups_overage_is_read_from_graph_with_the_access_token(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
) -> None:
    world = make_world(
        connection={
            "groups_overage": "graph",
            "graph_url": f"{dev_idp.url}/_graph",
            "customer_groups_by_group": {WHOLESALE: 2},
        }
    )
    state = teach(world, OVERAGE, BUSY_USER)
    state.graph_page_size = 100  # three pages: @odata.nextLink followed
    outcome = sign_in(browser_http, world.broker.url, BUSY_USER.email)
    customer = signed_in_as(world, outcome, BUSY_USER.email)
    assert customer["customer_group_id"] == 2, "group 151 of 205 found"
    assert [method for method, _ in state.graph_requests] == ["POST", "GET", "GET"]
    tokens = {token for _, token in state.graph_requests}
    [token] = tokens
    grant = state.access_grant(token)
    assert grant is not None
    assert grant.client_id == "broker", "the sign-in's own access token"


@pytest.mark.parametrize(
    ("fault", "status", "says"),
    [(500, 502, "not answering"), (401, 502, "not allowed to read them")],
)
def test_graph_failing_is_a_clear_refusal_and_creates_nothing(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
    broker_log: LogLines,
    fault: int,
    status: int,
    says: str,
) -> None:
    world = make_world(connection={"groups_overage": "graph", "graph_url": f"{dev_idp.url}/_graph"})
    state = teach(world, OVERAGE, BUSY_USER)
    state.graph_fault = fault
    outcome = sign_in(browser_http, world.broker.url, BUSY_USER.email)
    line = refused(outcome, status, world, broker_log, says=says)
    assert str(fault) in line["detail"]
    if fault == 401:
        assert "GroupMember.Read.All" in line["detail"]


def test_a_graph_url_on_a_private_address_is_never_called(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(
        connection={"groups_overage": "graph", "graph_url": "https://169.254.169.254"}
    )
    teach(world, OVERAGE, BUSY_USER)
    outcome = sign_in(browser_http, world.broker.url, BUSY_USER.email)
    line = refused(outcome, 502, world, broker_log)
    assert "graph_url refused" in line["detail"]


# -- Entra ID: a multi-tenant app ------------------------------------------------------------------

MULTI_TENANT = IdPQuirks(issuer_path="/{tenantid}/v2.0", send_email_verified=False)


def tenant_user(email: str, tenant: str, sub: str = "shared-sub") -> DevUser:
    return DevUser(
        sub=sub,
        email=email,
        password="password",
        given_name="Tess",
        family_name="Tenant",
        claims={"tid": tenant, "xms_edov": True},
    )


def multi_tenant_world(make_world: Callable[..., World], dev_idp: DevIdP, **more: Any) -> World:
    return make_world(
        connection={
            "issuer": f"{dev_idp.url}/organizations/v2.0",
            "tenants": [T1, T2],
            "email_verified_claim": "xms_edov",
            **more,
        }
    )


def test_listed_tenants_sign_in_with_tenant_qualified_subjects(
    make_world: Callable[..., World], dev_idp: DevIdP, browser_http: httpx.Client
) -> None:
    world = multi_tenant_world(make_world, dev_idp)
    teach(
        world,
        MULTI_TENANT,
        tenant_user("tess@one.example", T1, sub="s-1"),
        tenant_user("tom@two.example", T2, sub="s-2"),
    )
    discovery = httpx.get(f"{dev_idp.url}/organizations/v2.0/.well-known/openid-configuration")
    assert discovery.json()["issuer"] == f"{dev_idp.url}/{{tenantid}}/v2.0"  # verbatim
    for email in ("tess@one.example", "tom@two.example"):
        browser_http.cookies.clear()
        signed_in_as(world, sign_in(browser_http, world.broker.url, email), email)
    links = {
        c["email"]: storage(world).links_for_customer("acme", c["id"]) for c in world.customers()
    }
    assert [link.subject for link in links["tess@one.example"]] == [f"{T1}:s-1"]
    assert [link.subject for link in links["tom@two.example"]] == [f"{T2}:s-2"]


def test_the_same_sub_in_another_tenant_is_another_person(
    make_world: Callable[..., World], dev_idp: DevIdP, browser_http: httpx.Client
) -> None:
    world = multi_tenant_world(make_world, dev_idp)
    state = teach(world, MULTI_TENANT, tenant_user("tess@one.example", T1))
    first = signed_in_as(
        world, sign_in(browser_http, world.broker.url, "tess@one.example"), "tess@one.example"
    )
    # Another tenant's user with the very same sub (and, here, e-mail): not tess's link.
    state.add_user(tenant_user("tess@one.example", T2))
    browser_http.cookies.clear()
    outcome = sign_in(browser_http, world.broker.url, "tess@one.example")
    assert outcome.status == 403, "an account linked to another person is not taken over"
    [link] = storage(world).links_for_customer("acme", first["id"])
    assert link.subject == f"{T1}:shared-sub"


def test_a_tenant_not_listed_is_refused(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = multi_tenant_world(make_world, dev_idp)
    teach(world, MULTI_TENANT, tenant_user("mallory@three.example", T3))
    outcome = sign_in(browser_http, world.broker.url, "mallory@three.example")
    line = refused(outcome, 403, world, broker_log, says="not one this store accepts")
    assert T3 not in json.dumps(line), "the IdP's text stays out of the log"


def test_an_iss_other_than_the_tid_s_issuer_is_refused(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = multi_tenant_world(make_world, dev_idp)
    state = teach(world, MULTI_TENANT, tenant_user("tess@one.example", T1))

    def other_tenants_iss(header: dict[str, Any], claims: dict[str, Any], s: DevIdPState) -> str:
        return s.sign(header, {**claims, "iss": f"{dev_idp.url}/{T2}/v2.0"})  # T2 is listed

    state.tamper = other_tenants_iss
    outcome = sign_in(browser_http, world.broker.url, "tess@one.example")
    line = refused(outcome, 400, world, broker_log)
    assert "iss" in line["detail"]


def test_a_multi_tenant_token_without_tid_is_refused(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = multi_tenant_world(make_world, dev_idp)
    state = teach(world, MULTI_TENANT, tenant_user("tess@one.example", T1))
    state.tamper = lambda h, c, s: s.sign(h, {k: v for k, v in c.items() if k != "tid"})
    refused(sign_in(browser_http, world.broker.url, "tess@one.example"), 400, world, broker_log)


def test_a_multi_tenant_issuer_without_tenants_is_misconfigured(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    world = make_world(connection={"issuer": f"{dev_idp.url}/organizations/v2.0"})
    teach(world, MULTI_TENANT, tenant_user("tess@one.example", T1))
    response = browser_http.get(f"{world.broker.url}/acme/login/corp")
    assert response.status_code == 502
    [line] = [line for line in broker_log.lines if line.get("event") == "request.refused"]
    assert "list the tenant ids accepted in tenants" in line["detail"]


def test_tenants_on_a_single_tenant_issuer_is_misconfigured(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world(connection={"tenants": [T1]})
    response = browser_http.get(f"{world.broker.url}/acme/login/corp")
    assert response.status_code == 502
    [line] = [line for line in broker_log.lines if line.get("event") == "request.refused"]
    assert "is not multi-tenant" in line["detail"]


# -- Okta --------------------------------------------------------------------------------------


def test_okta_without_email_verified_may_create_when_the_connection_allows(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"require_verified_email": False})
    teach(world, IdPQuirks(send_email_verified=False))
    signed_in_as(
        world, sign_in(browser_http, world.broker.url, "alice@example.com"), "alice@example.com"
    )


def test_okta_custom_authorization_server_issuer_is_kept_verbatim(
    make_world: Callable[..., World],
    dev_idp: DevIdP,
    browser_http: httpx.Client,
    broker_log: LogLines,
) -> None:
    issuer = f"{dev_idp.url}/oauth2/default"
    world = make_world(connection={"issuer": issuer})
    state = teach(world, IdPQuirks(issuer_path="/oauth2/default"))
    signed_in_as(
        world, sign_in(browser_http, world.broker.url, "alice@example.com"), "alice@example.com"
    )
    # A token of the org authorization server is not one of this one's.
    state.tamper = lambda h, c, s: s.sign(h, {**c, "iss": dev_idp.url})
    browser_http.cookies.clear()
    outcome = sign_in(browser_http, world.broker.url, "bob@example.com")
    assert outcome.status == 400
    assert [c["email"] for c in world.customers()] == ["alice@example.com"]


def test_okta_org_issuer_beside_a_custom_server_s_connection(
    make_world: Callable[..., World], dev_idp: DevIdP, browser_http: httpx.Client
) -> None:
    # The org server's issuer is the bare origin: configured so, it works as before; a custom
    # server's document, asked at the org's issuer, is not the org's.
    world = make_world(connection={"issuer": dev_idp.url})
    teach(world, IdPQuirks(issuer_path="/oauth2/default"))
    assert httpx.get(f"{dev_idp.url}/.well-known/openid-configuration").json()["issuer"] == (
        dev_idp.url
    )
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 400, "tokens of the custom server are refused at the org issuer"


# -- Google Workspace: hd ------------------------------------------------------------------------

WORKSPACE_USER = DevUser(
    sub="1084",
    email="gail@acme.example",
    password="password",
    given_name="Gail",
    family_name="Google",
    claims={"hd": "acme.example"},
)
GMAIL_USER = DevUser(
    sub="1085",
    email="someone@gmail.example",
    password="password",
    given_name="Some",
    family_name="One",
)
OTHER_WORKSPACE = replace(
    WORKSPACE_USER, sub="1086", email="olga@other.example", claims={"hd": "other.example"}
)


def test_a_workspace_account_of_a_hosted_domain_signs_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"hosted_domains": ["Acme.example"]})
    state = teach(world, IdPQuirks(), WORKSPACE_USER)
    authorize = start_login(browser_http, world.broker.url, "/acme/login/corp")
    assert query(authorize)["hd"] == "Acme.example", "Google's account chooser hint"
    browser_http.cookies.clear()
    outcome = sign_in(browser_http, world.broker.url, WORKSPACE_USER.email)
    signed_in_as(world, outcome, WORKSPACE_USER.email)
    assert state.authorize_requests[-1]["hd"] == "Acme.example"


@pytest.mark.parametrize(
    ("user", "says"),
    [(GMAIL_USER, "personal Google account"), (OTHER_WORKSPACE, "Google Workspace")],
    ids=["no hd (gmail)", "another hd"],
)
def test_an_account_without_or_with_another_hd_is_refused(
    make_world: Callable[..., World],
    browser_http: httpx.Client,
    broker_log: LogLines,
    user: DevUser,
    says: str,
) -> None:
    world = make_world(connection={"hosted_domains": ["acme.example"]})
    teach(world, IdPQuirks(), user)
    line = refused(
        sign_in(browser_http, world.broker.url, user.email), 403, world, broker_log, says=says
    )
    assert "other.example" not in json.dumps(line)


# -- Auth0: a trailing "/" and namespaced claims -------------------------------------------------

NAMESPACE = "https://example.com"


def test_auth0_namespaced_claims_and_a_trailing_slash_issuer(
    make_world: Callable[..., World], dev_idp: DevIdP, browser_http: httpx.Client
) -> None:
    dev_idp.state.issuer = dev_idp.url + "/"
    world = make_world(
        connection={
            "issuer": dev_idp.url + "/",
            "groups_claim": f"{NAMESPACE}/groups",
            "first_name_claim": f"{NAMESPACE}/first_name",
            "customer_groups_by_group": {"wholesale": 4},
        }
    )
    teach(
        world,
        IdPQuirks(groups_claim=f"{NAMESPACE}/groups"),
        DevUser(
            sub="auth0|65f",
            email="ann@acme.example",
            password="password",
            family_name="Auth",
            groups=("wholesale",),
            claims={f"{NAMESPACE}/first_name": "Ann"},
        ),
    )
    outcome = sign_in(browser_http, world.broker.url, "ann@acme.example")
    customer = signed_in_as(world, outcome, "ann@acme.example")
    assert (customer["first_name"], customer["last_name"]) == ("Ann", "Auth")
    assert customer["customer_group_id"] == 4


# -- Keycloak: realm roles, preferred_username ---------------------------------------------------


def test_keycloak_realm_roles_as_groups_and_preferred_username_as_name(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(
        connection={
            "groups_claim": "realm_access.roles",
            "customer_groups_by_group": {"wholesale": 6},
        }
    )
    teach(
        world,
        IdPQuirks(
            groups_claim=("realm_access", "roles"),
            claims={"realm_access": {"roles": []}, "preferred_username": "kim"},
        ),
        DevUser(
            sub="f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            email="kim@acme.example",
            password="password",
            groups=("offline_access", "wholesale"),
        ),
    )
    asked = sign_in(browser_http, world.broker.url, "kim@acme.example")
    # preferred_username is the first name the form offers; the last name is asked for.
    assert (asked.status, asked.location) == (303, "/acme/signin/name")
    form = browser_http.get(world.broker.url + asked.location)
    assert re.search(r'<input type="text" id="first_name"[^>]* value="kim"', form.text)
    outcome = give_name(browser_http, world.broker.url, "Kim", "Lee")
    customer = signed_in_as(world, outcome, "kim@acme.example")
    assert (customer["first_name"], customer["last_name"]) == ("Kim", "Lee")
    assert customer["customer_group_id"] == 6


# -- an IdP whose clock is off --------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "direction"), [(600, "ahead"), (-900, "behind")])
def test_an_idp_clock_off_beyond_the_skew_gets_a_page_naming_the_difference(
    make_world: Callable[..., World],
    browser_http: httpx.Client,
    broker_log: LogLines,
    offset: int,
    direction: str,
) -> None:
    world = make_world(connection={"clock_skew_seconds": 120})
    teach(world, IdPQuirks(clock_offset_seconds=offset))
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    line = refused(outcome, 400, world, broker_log, says=f"seconds {direction}")
    shown = int(page_field(outcome.response.text, "clock-difference") or 0)
    assert abs(shown - abs(offset)) <= 2, shown
    assert page_field(outcome.response.text, "clock-allowed") == "120"
    assert "clock" in (page_field(outcome.response.text, "error-title") or "")
    assert line["code"] == "clock_skew"
    assert abs(line["clock_offset_seconds"] - offset) <= 2
    assert "eyJ" not in json.dumps(line), "no token in the log line"


def test_an_idp_clock_off_within_the_skew_signs_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world(connection={"clock_skew_seconds": 60})
    teach(world, IdPQuirks(clock_offset_seconds=45))
    signed_in_as(
        world, sign_in(browser_http, world.broker.url, "alice@example.com"), "alice@example.com"
    )
