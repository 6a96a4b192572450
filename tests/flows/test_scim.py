"""SCIM 2.0 over real HTTP: the company's IdP creates, updates and deactivates its shoppers
at the broker (BigCommerce has none), as Okta and Entra ID really send it; the store follows
(customers created and linked, sign-in blocked through every connection) and every bad
request is a SCIM error that changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from broker.admin.tokens import issue_token
from broker.runtime import Runtime
from broker.sandbox.idp import DevUser
from broker.storage import schema
from tests.conftest import World
from tests.support.flows import sign_in

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Scim:
    """An IdP's SCIM client for one connection of the world's store."""

    def __init__(self, world: World, conn: str = "corp", token: str | None = None) -> None:
        runtime: Runtime = world.broker.app.extensions["broker"]
        self.runtime = runtime
        self.base = f"{world.broker.url}/acme/scim/{conn}/v2"
        if token is None:
            token, _ = issue_token(
                runtime.storage, store="acme", kind="scim", label="idp", now=1, connection=conn
            )
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}, timeout=20
        )

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.request(method, self.base + path, json=body, **kw)


def okta_user(email: str = "alice@example.com", sub: str = "dev-alice", **over: Any) -> dict:
    user = {
        "schemas": [USER],
        "userName": email,
        "externalId": sub,
        "name": {"givenName": "Alice", "familyName": "Liddell"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": "Alice Liddell",
        "active": True,
    }
    user.update(over)
    return user


def scim_world(make_world: Callable[..., World], **scim: Any) -> World:
    return make_world(connection={"scim": {"enabled": True, **scim}})


def test_an_okta_user_becomes_a_linked_customer_and_deactivation_blocks_sign_in(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    created = scim("POST", "/Users", okta_user())
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith(SCIM_JSON)
    user = created.json()
    assert created.headers["etag"] == user["meta"]["version"]
    assert created.headers["location"] == f"{scim.base}/Users/{user['id']}"
    [customer] = world.customers()
    assert (customer["email"], customer["first_name"]) == ("alice@example.com", "Alice")

    # Okta looks the user up the way it does before every push.
    found = scim("GET", "/Users", params={"filter": 'userName eq "ALICE@example.com"'}).json()
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == user["id"]
    page = scim("GET", "/Users", params={"startIndex": "1", "count": "100"}).json()
    assert isinstance(page["totalResults"], int)
    assert page["itemsPerPage"] == 1

    # The link is there already: the first SSO sign-in makes no lookup by e-mail.
    world.sandbox.state.clear_requests(world.store.store_hash)
    outcome = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert outcome.status == 302, outcome.response.text
    assert world.sandbox.state.requests(world.store.store_hash) == []

    off = scim(
        "PATCH",
        f"/Users/{user['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False
    refused = sign_in(browser_http, world.broker.url, "alice@example.com")
    assert refused.status == 403
    assert "removed your access" in refused.response.text

    on = scim(
        "PATCH",
        f"/Users/{user['id']}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": True}]},
    )
    assert on.status_code == 200
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302


def test_a_user_without_names_gets_names_that_read_as_names(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    # No one can be asked over SCIM: given/family, else name.formatted or displayName split at
    # the last space, else the e-mail; one word gets the domain as last name. Never "-".
    world = scim_world(make_world)
    scim = Scim(world)

    def nameless(email: str, sub: str, **names: Any) -> dict[str, Any]:
        user = okta_user(email, sub, **names)
        if "name" not in names:
            del user["name"]
        if "displayName" not in names:
            del user["displayName"]
        return user

    for body in (
        nameless("jane.doe@example.com", "dev-jane"),
        nameless("m@example.com", "dev-mary", name={"formatted": "Mary Ann Smith"}),
        nameless("cher@acme.example", "dev-cher", displayName="Cher"),
        nameless("kim@acme.example", "dev-kim", name={"givenName": "Kim"}),
    ):
        created = scim("POST", "/Users", body)
        assert created.status_code == 201, created.text
    names = {c["email"]: (c["first_name"], c["last_name"]) for c in world.customers()}
    assert names == {
        "jane.doe@example.com": ("Jane", "Doe"),
        "m@example.com": ("Mary Ann", "Smith"),
        "cher@acme.example": ("Cher", "Acme"),
        "kim@acme.example": ("Kim", "Acme"),
    }
    # Provisioned, hence linked: the shopper's first sign-in asks nothing (the IdP's Jane
    # Doe sends no names either), and lands signed in.
    jane = DevUser(sub="dev-jane", email="jane.doe@example.com", password="password")
    world.idp.state.add_user(jane)
    outcome = sign_in(browser_http, world.broker.url, "jane.doe@example.com")
    assert outcome.status == 302, outcome.response.text
    assert len(world.customers()) == 4


def test_entra_id_patches_as_entra_sends_them(make_world: Callable[..., World]) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    user = scim("POST", "/Users", okta_user()).json()
    changed = scim(
        "PATCH",
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH],
            "Operations": [
                {"op": "Replace", "path": "name.familyName", "value": "Pleasance"},
                {"op": "Add", "value": {"name.givenName": "Alicia"}},
                {"op": "Replace", "path": "active", "value": "False"},
            ],
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["name"]["familyName"] == "Pleasance"
    assert body["name"]["givenName"] == "Alicia"
    assert body["active"] is False
    [customer] = world.customers()
    assert (customer["first_name"], customer["last_name"]) == ("Alicia", "Pleasance")
    # Entra's "test connection" fetches a user that does not exist: an empty list, not an error.
    probe = scim("GET", "/Users", params={"filter": 'userName eq "nobody-0f3a@example.com"'})
    assert probe.status_code == 200
    assert probe.json()["totalResults"] == 0


def test_every_bad_request_is_a_scim_error_that_changes_nothing(
    make_world: Callable[..., World],
) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    assert scim("POST", "/Users", okta_user()).status_code == 201
    duplicate = scim("POST", "/Users", okta_user(externalId="other"))
    assert duplicate.status_code == 409
    assert duplicate.json()["scimType"] == "uniqueness"
    assert duplicate.headers["content-type"].startswith(SCIM_JSON)
    bad_filter = scim("GET", "/Users", params={"filter": 'userName co "alice"'})
    assert bad_filter.status_code == 400
    assert bad_filter.json()["scimType"] == "invalidFilter"
    no_name = scim("POST", "/Users", {"schemas": [USER], "externalId": "x"})
    assert no_name.status_code == 400
    assert scim("GET", "/Users/nope").status_code == 404
    assert scim("PUT", "/Users/nope", okta_user()).status_code == 404
    not_json = scim.http.post(scim.base + "/Users", content=b"{oops")
    assert not_json.status_code == 400
    assert len(world.customers()) == 1

    stale = scim("GET", "/Users").json()["Resources"][0]
    conflict = scim("PUT", f"/Users/{stale['id']}", okta_user(), headers={"If-Match": 'W/"9"'})
    assert conflict.status_code == 412

    anonymous = httpx.get(scim.base + "/Users")
    assert anonymous.status_code == 401
    assert anonymous.json()["status"] == "401"
    forged = Scim(world, token="bks_" + "x" * 43)
    assert forged("GET", "/Users").status_code == 401
    assert scim.http.delete(scim.base + "/ServiceProviderConfig").status_code == 405


def test_a_token_of_one_connection_is_refused_at_another(
    make_world: Callable[..., World], make_dev_idp: Callable[..., Any]
) -> None:
    other = make_dev_idp()
    world = make_world(
        connection={"scim": {"enabled": True}},
        more_connections={
            "partner": {
                "type": "oidc",
                "issuer": other.url,
                "client_id": "p",
                "client_secret": "s" * 20,
                "scim": {"enabled": True},
            }
        },
    )
    corp = Scim(world)
    token = corp.http.headers["Authorization"].removeprefix("Bearer ")
    partner = Scim(world, "partner", token=token)
    assert partner("GET", "/Users").status_code == 401
    assert partner("POST", "/Users", okta_user()).status_code == 401
    assert world.customers() == []


def test_deactivation_blocks_every_connection_and_ends_the_sessions(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    user = scim("POST", "/Users", okta_user()).json()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    runtime = scim.runtime
    [customer] = world.customers()
    assert scim("DELETE", f"/Users/{user['id']}").status_code == 204
    assert scim("GET", f"/Users/{user['id']}").status_code == 404
    assert runtime.storage.is_blocked("acme", customer["id"])
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 403
    events = [e.event for e in runtime.storage.search_audit("acme")]
    assert "scim.user_deleted" in events


def test_groups_follow_okta_and_entra_member_changes(make_world: Callable[..., World]) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    alice = scim("POST", "/Users", okta_user()).json()
    bob = scim("POST", "/Users", okta_user("bob@example.com", "dev-bob")).json()
    group = scim(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Buyers", "members": [{"value": alice["id"]}]},
    )
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    added = scim(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": bob["id"]}]}],
        },
    )
    assert sorted(m["value"] for m in added.json()["members"]) == sorted([alice["id"], bob["id"]])
    okta_remove = scim(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}],
        },
    )
    assert [m["value"] for m in okta_remove.json()["members"]] == [bob["id"]]
    entra_remove = scim(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"value": bob["id"]}]}],
        },
    )
    assert entra_remove.json().get("members", []) == []
    unknown = scim(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": "ghost"}]}],
        },
    )
    assert unknown.status_code == 400
    listed = scim("GET", "/Groups", params={"filter": 'displayName eq "Buyers"'}).json()
    assert listed["totalResults"] == 1


def test_forty_pushes_of_one_new_user_make_one_user_and_one_customer(
    make_world: Callable[..., World],
) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    start = threading.Barrier(40)
    statuses: list[int] = []
    lock = threading.Lock()

    def push() -> None:
        with httpx.Client(headers=dict(scim.http.headers), timeout=30) as http:
            start.wait()
            status = http.post(scim.base + "/Users", json=okta_user()).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=push) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 39
    assert len(world.customers()) == 1


def test_scim2_tester_finds_the_server_conformant(make_world: Callable[..., World]) -> None:
    from scim2_tester import Status, check_server

    from tests.support.scim_client import HttpxSCIMClient

    world = make_world(connection={"scim": {"enabled": True, "subject_attribute": "userName"}})
    scim = Scim(world)
    client = HttpxSCIMClient(httpx.Client(base_url=scim.base, headers=dict(scim.http.headers)))
    client.discover()
    results = check_server(client)  # every check it has: discovery, CRUD, PATCH, misc
    failed = [f"{r.title}: {str(r.reason)[:300]}" for r in results if r.status == Status.ERROR]
    assert failed == [], failed
    assert any(r.status == Status.SUCCESS for r in results)


def test_a_store_that_cannot_take_the_user_now_leaves_nothing_for_the_retry(
    make_world: Callable[..., World],
) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    faults = f"{world.sandbox.url}/_sandbox/stores/{world.store.store_hash}/faults"
    httpx.post(faults, json={"status": 503}).raise_for_status()
    refused = scim("POST", "/Users", okta_user())
    assert refused.status_code in (502, 503), refused.text
    assert refused.headers["content-type"].startswith(SCIM_JSON)
    assert scim("GET", "/Users").json()["totalResults"] == 0
    httpx.post(faults, json={}).raise_for_status()
    retried = scim("POST", "/Users", okta_user())
    assert retried.status_code == 201, retried.text
    assert len(world.customers()) == 1


def test_scim_groups_put_customers_in_customer_groups(make_world: Callable[..., World]) -> None:
    world = scim_world(make_world, customer_groups_by_group={"Wholesale": 3, "Staff": 5})
    scim = Scim(world)
    alice = scim("POST", "/Users", okta_user()).json()
    group = scim(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "Wholesale", "members": [{"value": alice["id"]}]},
    ).json()
    assert world.customers()[0]["customer_group_id"] == 3
    scim(
        "PATCH",
        f"/Groups/{group['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}],
        },
    )
    assert world.customers()[0]["customer_group_id"] == 0


def test_deprovision_delete_removes_the_customer_after_the_days_and_block_keeps_it(
    make_world: Callable[..., World],
) -> None:
    import time

    from broker.provisioning.deprovision import delete_deprovisioned

    world = scim_world(make_world, deprovision="delete", delete_after_days=30)
    scim = Scim(world)
    user = scim("POST", "/Users", okta_user()).json()
    kept = scim("POST", "/Users", okta_user("bob@example.com", "dev-bob")).json()
    assert len(world.customers()) == 2
    assert scim("DELETE", f"/Users/{user['id']}").status_code == 204
    now = int(time.time())
    assert delete_deprovisioned(scim.runtime, now + 29 * 86400) == 0
    assert len(world.customers()) == 2
    assert delete_deprovisioned(scim.runtime, now + 31 * 86400) == 1
    assert [c["email"] for c in world.customers()] == ["bob@example.com"]
    events = [e.event for e in scim.runtime.storage.search_audit("acme")]
    assert "scim.customer_deleted" in events
    assert scim("GET", f"/Users/{kept['id']}").status_code == 200


def test_a_burst_leaves_the_quota_to_sign_ins_and_is_told_when_to_come_back(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    faults = f"{world.sandbox.url}/_sandbox/stores/{world.store.store_hash}/faults"
    httpx.post(faults, json={"quota": 20}).raise_for_status()
    statuses: list[int] = []
    retry_after: list[str] = []
    for n in range(20):
        answer = scim("POST", "/Users", okta_user(f"user{n}@example.com", f"sub-{n}"))
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            retry_after.append(answer.headers.get("retry-after", ""))
            assert answer.json()["status"] == "429"
            break
    assert statuses[-1] == 429, (statuses, answer.text)
    assert retry_after[0].isdigit()
    assert 1 <= int(retry_after[0]) <= 31
    created = scim("GET", "/Users").json()["totalResults"]
    assert created == statuses.count(201) == len(world.customers())
    # The shoppers' share is still there: a sign-in goes through at once.
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302


def test_with_b2b_edition_scim_groups_make_company_users_with_their_role(
    make_world: Callable[..., World],
) -> None:
    from tests.flows.test_b2b import b2b_world, company_user

    world, acme, _ = b2b_world(make_world, connection={"scim": {"enabled": True}})
    scim = Scim(world)
    ada = scim("POST", "/Users", okta_user("ada@example.com", "ada")).json()
    [customer] = world.customers()
    joined = company_user(world, customer["id"])
    assert joined is not None
    assert (joined["companyId"], joined["role"]) == (acme["companyId"], 2)  # the default role
    scim(
        "POST",
        "/Groups",
        {"schemas": [GROUP], "displayName": "approvers", "members": [{"value": ada["id"]}]},
    )
    promoted = company_user(world, customer["id"])
    assert promoted is not None
    assert promoted["role"] == 1


def test_okta_puts_the_whole_user_and_entra_probes_users_and_groups(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = scim_world(make_world)
    scim = Scim(world)
    user = scim("POST", "/Users", okta_user()).json()
    assert sign_in(browser_http, world.broker.url, "alice@example.com").status == 302
    put = scim(
        "PUT",
        f"/Users/{user['id']}",
        okta_user(name={"givenName": "Alice", "familyName": "Kingsleigh"}, active=False),
        headers={"If-Match": user["meta"]["version"]},
    )
    assert put.status_code == 200, put.text
    assert world.customers()[0]["last_name"] == "Kingsleigh"
    # Inactive users are still returned, as Entra expects.
    listed = scim("GET", "/Users", params={"filter": 'externalId eq "dev-alice"'}).json()
    assert listed["Resources"][0]["active"] is False
    probe = scim("GET", "/Groups", params={"filter": 'displayName eq "nobody-7c1e"'})
    assert probe.json()["totalResults"] == 0
    # The broker's session of that sign-in ended with the deactivation.

    with scim.runtime.storage.engine.connect() as conn:
        ended = conn.execute(select(schema.sessions.c.ended_at)).scalars().all()
    assert ended
    assert all(value is not None for value in ended)
