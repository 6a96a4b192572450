"""The sandbox's GraphQL Account API over real HTTP: the documents the broker sends, control-panel
users shared with the stores' control API, the error codes, the hourly limit on a clock the test
moves, forced faults, and the limit held under concurrent requests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from broker.sandbox.store import create_sandbox_app
from tests.conftest import Sandbox
from tests.support.clock import Clock
from tests.support.servers import serve_in_thread

HASH = "acct1"
OTHER = "acct2"

STORE_USERS = (
    "query StoreUsers($after: String) { account { stores(first: 50) { edges { node { id "
    "storeHash users(first: 50, after: $after) { pageInfo { hasNextPage endCursor } edges { "
    "node { id email firstName lastName } } } } } } } }"
)
ACCOUNT_USERS = (
    "query AccountUsers($after: String) { account { users(first: 50, after: $after) { "
    "pageInfo { hasNextPage endCursor } edges { node { id email } } } } }"
)
ADD_TO_ACCOUNT = (
    "mutation AddToAccount($email: String!) { account { addUserToAccount(input: "
    "{email: $email}) { account { id } } } }"
)
ADD_TO_STORE = (
    "mutation AddToStore($email: String!, $storeId: ID!) { user { addUserToStore(input: "
    "{user: {email: $email}, storeId: $storeId}) { storeId } } }"
)
REMOVE_FROM_STORE = (
    "mutation RemoveFromStore($userId: ID!, $storeId: ID!) { user { removeUserFromStore("
    "input: {storeId: $storeId, userId: $userId}) { storeId user { id email } } } }"
)
ACCOUNT_NAME = "{ account { id accountInfo { name } } }"
STORE_ID = f"bc/account/store/{HASH}"


@dataclass
class Accounts:
    sandbox: Sandbox
    clock: Clock
    http: httpx.Client

    def control(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        answer = self.http.request(method, f"{self.sandbox.url}/_sandbox{path}", json=body)
        assert answer.status_code == expect, answer.text
        return answer.json()

    def new_account(self, stores: list[str], **fields: Any) -> dict[str, Any]:
        body = {"name": "Acme Holdings", "stores": stores, **fields}
        found: dict[str, Any] = self.control("POST", "/accounts", body, expect=201)
        return found

    def post(
        self,
        account: dict[str, Any],
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = "",
    ) -> httpx.Response:
        headers = {} if token is None else {"X-Auth-Token": token or account["token"]}
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return self.http.post(
            f"{self.sandbox.url}/accounts/{account['uuid']}/graphql", json=body, headers=headers
        )

    def graphql(self, account: dict[str, Any], query: str, **variables: Any) -> dict[str, Any]:
        answer = self.post(account, query, variables)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def data(self, account: dict[str, Any], query: str, **variables: Any) -> dict[str, Any]:
        found = self.graphql(account, query, **variables)
        assert "errors" not in found, found
        data: dict[str, Any] = found["data"]
        return data

    def store_emails(self, store_hash: str = HASH) -> list[str]:
        """The store's control-panel users, as the stores' own control API lists them."""
        return [u["email"] for u in self.control("GET", f"/stores/{store_hash}/users")]


@pytest.fixture
def world() -> Iterator[Accounts]:
    clock = Clock()
    app = create_sandbox_app(clock=clock)
    with serve_in_thread(app) as server, httpx.Client(trust_env=False, timeout=10) as http:
        sandbox = Sandbox(url=server.url, app=app)
        sandbox.add_store(HASH, name="Acme Goods")
        sandbox.add_store(OTHER, name="Someone Else's")
        yield Accounts(sandbox, clock, http)


def codes(answer: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in answer.get("errors", [])]


def store_page(data: dict[str, Any]) -> dict[str, Any]:
    (edge,) = data["account"]["stores"]["edges"]
    page: dict[str, Any] = edge["node"]["users"]
    return page


# -- the documents the broker sends ----------------------------------------------------------------


def test_store_users_page_past_fifty_with_the_cursor(world: Accounts) -> None:
    account = world.new_account([HASH])
    for i in range(60):
        world.control("POST", f"/stores/{HASH}/users", {"email": f"clerk{i}@acme.example"}, 201)

    first = world.data(account, STORE_USERS)
    (edge,) = first["account"]["stores"]["edges"]
    assert edge["node"]["id"] == STORE_ID
    assert edge["node"]["storeHash"] == HASH
    page = store_page(first)
    assert len(page["edges"]) == 50
    assert page["pageInfo"]["hasNextPage"] is True

    second = store_page(world.data(account, STORE_USERS, after=page["pageInfo"]["endCursor"]))
    assert len(second["edges"]) == 11
    assert second["pageInfo"]["hasNextPage"] is False

    nodes = [e["node"] for e in page["edges"] + second["edges"]]
    assert len({n["id"] for n in nodes}) == 61
    assert all(n["id"].startswith("bc/account/user/") for n in nodes)
    assert sorted(n["email"] for n in nodes) == sorted(world.store_emails())
    assert nodes[0]["email"] == f"owner@{HASH}.example"


def test_account_users_page_past_fifty_with_the_cursor(world: Accounts) -> None:
    account = world.new_account([HASH])
    for i in range(55):
        body = {"email": f"member{i}@acme.example", "first_name": "M", "last_name": str(i)}
        world.control("POST", f"/accounts/{account['uuid']}/users", body, 201)

    page = world.data(account, ACCOUNT_USERS)["account"]["users"]
    assert len(page["edges"]) == 50
    assert page["pageInfo"]["hasNextPage"] is True
    after = page["pageInfo"]["endCursor"]
    rest = world.data(account, ACCOUNT_USERS, after=after)["account"]["users"]
    assert [len(rest["edges"]), rest["pageInfo"]["hasNextPage"]] == [6, False]
    emails = [e["node"]["email"] for e in page["edges"] + rest["edges"]]
    assert len(set(emails)) == 56
    assert f"owner@{HASH}.example" in emails
    # members of the account only: none of them is a control-panel user of the store
    assert world.store_emails() == [f"owner@{HASH}.example"]


def test_add_to_account_then_to_the_store_and_out_again(world: Accounts) -> None:
    account = world.new_account([HASH])
    added = world.data(account, ADD_TO_ACCOUNT, email="ann@acme.example")
    assert added == {"account": {"addUserToAccount": {"account": {"id": account["id"]}}}}
    assert account["id"] == f"bc/account/account/{account['uuid']}"
    assert world.store_emails() == [f"owner@{HASH}.example"]

    store = world.data(account, ADD_TO_STORE, email="ANN@acme.example", storeId=STORE_ID)
    assert store == {"user": {"addUserToStore": {"storeId": STORE_ID}}}
    assert world.store_emails() == [f"owner@{HASH}.example", "ann@acme.example"]
    (ann,) = [
        e["node"]
        for e in store_page(world.data(account, STORE_USERS))["edges"]
        if e["node"]["email"] == "ann@acme.example"
    ]

    removed = world.data(account, REMOVE_FROM_STORE, userId=ann["id"], storeId=STORE_ID)
    assert removed["user"]["removeUserFromStore"] == {
        "storeId": STORE_ID,
        "user": {"id": ann["id"], "email": "ann@acme.example"},
    }
    assert world.store_emails() == [f"owner@{HASH}.example"]
    seen = world.control("GET", f"/accounts/{account['uuid']}")
    assert "ann@acme.example" in [u["email"] for u in seen["users"]]  # still in the account
    assert [u["email"] for u in seen["stores"][0]["users"]] == [f"owner@{HASH}.example"]
    assert [r["operation"] for r in seen["requests"]] == [
        "AddToAccount",
        "AddToStore",
        "StoreUsers",
        "RemoveFromStore",
    ]
    assert {r["status"] for r in seen["requests"]} == {200}


def test_add_to_store_by_email_joins_the_account_and_by_id_needs_a_member(
    world: Accounts,
) -> None:
    account = world.new_account([HASH])
    world.data(account, ADD_TO_STORE, email="bo@acme.example", storeId=STORE_ID)
    members = world.data(account, ACCOUNT_USERS)["account"]["users"]["edges"]
    assert "bo@acme.example" in [e["node"]["email"] for e in members]

    seeded = world.control(
        "POST",
        f"/accounts/{account['uuid']}/users",
        {"email": "cy@acme.example", "first_name": "Cy", "last_name": "Twombly"},
        201,
    )
    by_id = (
        (
            'mutation { user { addUserToStore(input: {user: {id: "USER"} , storeId: "STORE"}) '
            "{ storeId } } }"
        )
        .replace("USER", seeded["id"])
        .replace("STORE", STORE_ID)
    )
    assert world.data(account, by_id) == {"user": {"addUserToStore": {"storeId": STORE_ID}}}
    nodes = [e["node"] for e in store_page(world.data(account, STORE_USERS))["edges"]]
    assert {
        "id": seeded["id"],
        "email": "cy@acme.example",
        "firstName": "Cy",
        "lastName": "Twombly",
    } in nodes

    stranger = by_id.replace(seeded["id"], "bc/account/user/999")
    assert codes(world.graphql(account, stranger)) == ["NOT_FOUND"]


def test_the_whole_documented_query_and_mutations(world: Accounts) -> None:
    account = world.new_account([HASH])
    query = (
        "query { account { id accountInfo { name } users { edges { node { id email firstName "
        "lastName } } } stores { edges { node { id name storeHash users { collectionInfo { "
        "totalItems } edges { node { id email firstName lastName locale lastLoginAt "
        "permissions status updatedAt } } } } } } } }"
    )
    data = world.data(account, query)["account"]
    assert data["accountInfo"] == {"name": "Acme Holdings"}
    (store,) = data["stores"]["edges"]
    assert store["node"]["name"] == "Acme Goods"
    assert store["node"]["users"]["collectionInfo"] == {"totalItems": 1}
    owner = store["node"]["users"]["edges"][0]["node"]
    assert owner["email"] == f"owner@{HASH}.example"
    assert {"locale", "lastLoginAt", "permissions", "status", "updatedAt"} <= set(owner)

    add = (
        'mutation { account { addUserToAccount(input: {email: "dee@acme.example"}) '
        "{ account { id accountInfo { name } } } } }"
    )
    assert (
        world.data(account, add)["account"]["addUserToAccount"]["account"]["id"] == (account["id"])
    )
    remove = (
        'mutation { account { removeUserFromAccount(input: {email: "dee@acme.example"}) '
        "{ accountId userId } } }"
    )
    removed = world.data(account, remove)["account"]["removeUserFromAccount"]
    assert removed["accountId"] == account["id"]
    assert removed["userId"].startswith("bc/account/user/")
    full = (
        'mutation { user { removeUserFromStore(input: {storeId: "STORE", userId: "USER"}) '
        "{ storeId user { id email firstName lastName locale } } } }"
    )
    world.data(account, ADD_TO_STORE, email="eve@acme.example", storeId=STORE_ID)
    eve = next(
        e["node"]
        for e in world.data(account, ACCOUNT_USERS)["account"]["users"]["edges"]
        if e["node"]["email"] == "eve@acme.example"
    )
    gone = world.data(account, full.replace("STORE", STORE_ID).replace("USER", eve["id"]))["user"][
        "removeUserFromStore"
    ]
    assert gone["user"]["locale"] == "en-US"


# -- refusals --------------------------------------------------------------------------------------


def test_the_store_owner_is_never_removed(world: Accounts) -> None:
    account = world.new_account([HASH])
    owner = world.data(account, ACCOUNT_USERS)["account"]["users"]["edges"][0]["node"]
    assert owner["email"] == f"owner@{HASH}.example"

    from_store = world.graphql(account, REMOVE_FROM_STORE, userId=owner["id"], storeId=STORE_ID)
    assert codes(from_store) == ["FORBIDDEN"]
    assert from_store["data"] == {"user": {"removeUserFromStore": None}}
    from_account = (
        'mutation { account { removeUserFromAccount(input: {email: "OWNER@HASH.example"}) '
        "{ accountId userId } } }"
    ).replace("HASH", HASH)
    assert codes(world.graphql(account, from_account)) == ["FORBIDDEN"]
    assert world.store_emails() == [f"owner@{HASH}.example"]


def test_each_error_code(world: Accounts) -> None:
    account = world.new_account([HASH])
    world.new_account([OTHER])
    world.data(account, ADD_TO_ACCOUNT, email="fay@acme.example")

    again = world.graphql(account, ADD_TO_ACCOUNT, email="FAY@acme.example")
    assert codes(again) == ["ALREADY_EXISTS"]
    world.data(account, ADD_TO_STORE, email="fay@acme.example", storeId=STORE_ID)
    assert codes(
        world.graphql(account, ADD_TO_STORE, email="fay@acme.example", storeId=STORE_ID)
    ) == ["ALREADY_EXISTS"]

    assert codes(
        world.graphql(account, ADD_TO_STORE, email="x@y.z", storeId="bc/account/store/nope")
    ) == ["NOT_FOUND"]
    assert codes(
        world.graphql(account, ADD_TO_STORE, email="x@y.z", storeId=f"bc/account/store/{OTHER}")
    ) == ["FORBIDDEN"]
    world.data(account, ADD_TO_ACCOUNT, email="gus@acme.example")
    members = world.data(account, ACCOUNT_USERS)["account"]["users"]["edges"]
    gus = next(e["node"]["id"] for e in members if e["node"]["email"] == "gus@acme.example")
    not_member = world.graphql(account, REMOVE_FROM_STORE, userId=gus, storeId=STORE_ID)
    assert codes(not_member) == ["NOT_FOUND"]
    assert codes(world.graphql(account, ADD_TO_ACCOUNT, email="not an e-mail")) == [
        "BAD_USER_INPUT"
    ]
    assert codes(world.graphql(account, ACCOUNT_USERS, after="bm90IGEgY3Vyc29y")) == [
        "BAD_USER_INPUT"
    ]
    too_many = "{ account { users(first: 51) { edges { node { id } } } } }"
    assert codes(world.graphql(account, too_many)) == ["BAD_USER_INPUT"]

    unknown_field = world.graphql(account, "{ account { id shoeSize } }")
    assert codes(unknown_field) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "data" not in unknown_field
    assert codes(world.graphql(account, "{ account { id ")) == ["GRAPHQL_PARSE_FAILED"]
    missing = world.post(account, ADD_TO_ACCOUNT, {})
    assert missing.status_code == 200
    assert codes(missing.json()) == ["BAD_USER_INPUT"]

    not_json = world.http.post(
        f"{world.sandbox.url}/accounts/{account['uuid']}/graphql",
        content=b"{not json",
        headers={"X-Auth-Token": account["token"], "Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert codes(not_json.json()) == ["BAD_REQUEST"]


def test_scopes_of_the_token(world: Accounts) -> None:
    reader = world.new_account([HASH], scopes=["account_users_read"])
    assert world.data(reader, ACCOUNT_USERS)["account"]["users"]["edges"]
    assert codes(world.graphql(reader, ADD_TO_ACCOUNT, email="hal@acme.example")) == ["FORBIDDEN"]

    writer = world.new_account([OTHER], scopes=["account_users_write"])
    other_id = f"bc/account/store/{OTHER}"
    world.data(writer, ADD_TO_STORE, email="ida@acme.example", storeId=other_id)
    assert world.store_emails(OTHER) == [f"owner@{OTHER}.example", "ida@acme.example"]
    assert codes(world.graphql(writer, ACCOUNT_USERS)) == ["FORBIDDEN"]
    remove = world.graphql(writer, REMOVE_FROM_STORE, userId="bc/account/user/1", storeId=other_id)
    assert codes(remove) == ["FORBIDDEN"]
    assert world.data(writer, ACCOUNT_NAME)["account"]["accountInfo"]["name"] == "Acme Holdings"


def test_unauthorized_and_unknown_accounts(world: Accounts) -> None:
    account = world.new_account([HASH])
    for token in (None, "wrong-token"):
        refused = world.post(account, ACCOUNT_NAME, token=token)
        assert refused.status_code == 401
        assert refused.json()["status"] == 401
        assert isinstance(refused.json()["title"], str)
    # refused requests count against the window too
    assert refused.headers["X-Rate-Limit-Requests-Left"] == "68"

    unknown = world.post({**account, "uuid": "00000000-0000-4000-8000-000000000000"}, ACCOUNT_NAME)
    assert unknown.status_code == 404
    assert unknown.json()["status"] == 404
    assert world.control("GET", "/accounts/00000000-0000-4000-8000-000000000000", expect=404)
    seen = world.control("GET", f"/accounts/{account['uuid']}")
    assert [r["status"] for r in seen["requests"]] == [401, 401]


# -- the hourly limit and faults -------------------------------------------------------------------


def test_seventy_an_hour_then_429_until_the_hour_is_over(world: Accounts) -> None:
    account = world.new_account([HASH])
    for i in range(70):
        answer = world.post(account, ACCOUNT_NAME)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Rate-Limit-Requests-Left"] == str(69 - i)
    assert answer.headers["X-Rate-Limit-Requests-Quota"] == "70"
    assert answer.headers["X-Rate-Limit-Time-Window-Ms"] == "3600000"

    world.clock.advance(600)
    over = world.post(account, ACCOUNT_NAME)
    assert over.status_code == 429
    assert over.json()["status"] == 429
    assert over.headers["X-Rate-Limit-Requests-Quota"] == "70"
    assert over.headers["X-Rate-Limit-Requests-Left"] == "0"
    assert over.headers["X-Rate-Limit-Time-Window-Ms"] == "3600000"
    assert over.headers["X-Rate-Limit-Time-Reset-Ms"] == "3000000"
    assert world.post(account, ACCOUNT_NAME, token="wrong").status_code == 429

    world.clock.advance(3000)
    again = world.post(account, ACCOUNT_NAME)
    assert again.status_code == 200
    assert again.headers["X-Rate-Limit-Requests-Left"] == "69"
    statuses = [
        r["status"] for r in world.control("GET", f"/accounts/{account['uuid']}")["requests"]
    ]
    assert statuses == [200] * 70 + [429, 429, 200]


def test_forced_faults_hit_the_account_api(world: Accounts) -> None:
    account = world.new_account([HASH])
    path = f"/accounts/{account['uuid']}/faults"
    assert world.control("POST", path, {"status": 500, "count": 2}) == {"status": 500, "count": 2}
    assert [world.post(account, ACCOUNT_NAME).status_code for _ in range(3)] == [500, 500, 200]

    world.control("POST", path, {"status": 429, "count": 1, "reset_ms": 5000})
    storm = world.post(account, ACCOUNT_NAME)
    assert storm.status_code == 429
    assert storm.headers["X-Rate-Limit-Time-Reset-Ms"] == "5000"
    assert storm.headers["X-Rate-Limit-Time-Window-Ms"] == "3600000"

    world.control("POST", path, {"only": "bigcommerce"}, expect=422)
    world.control("POST", path, {"clock_offset": 5}, expect=422)
    world.control("POST", path, {})  # cleared
    world.sandbox.state.set_faults(HASH, status=503)  # the store's faults spare the account API
    assert world.post(account, ACCOUNT_NAME).status_code == 200


def test_forty_at_once_against_a_limit_of_five(world: Accounts) -> None:
    account = world.new_account([HASH], requests_per_hour=5)
    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(
            pool.map(lambda _: world.post(account, ACCOUNT_NAME).status_code, range(40))
        )
    assert sorted(statuses) == [200] * 5 + [429] * 35


# -- the control API -------------------------------------------------------------------------------


def test_the_control_api_of_accounts(world: Accounts) -> None:
    chosen = "6a1b2c3d-0000-4000-8000-00000000abcd"
    account = world.new_account([HASH], uuid=chosen, token="t0ken", requests_per_hour=10)
    assert account == {
        "uuid": chosen,
        "id": f"bc/account/account/{chosen}",
        "name": "Acme Holdings",
        "token": "t0ken",
        "scopes": ["account_users_read", "account_users_write", "account_users_delete"],
        "stores": [HASH],
        "requests_per_hour": 10,
    }
    world.control("POST", "/accounts", {"name": "x", "stores": ["nosuch"]}, expect=404)
    world.control("POST", "/accounts", {"name": "x", "stores": [HASH]}, expect=409)
    world.control("POST", "/accounts", {"name": "x", "stores": [], "uuid": chosen}, expect=409)
    world.control("POST", "/accounts", {"name": "x", "stores": [], "scopes": ["all"]}, expect=422)
    world.control("POST", f"/accounts/{chosen}/users", {"email": "OWNER@acct1.example"}, expect=409)
    world.control("POST", f"/accounts/{chosen}/users", {"email": "nope"}, expect=422)
    assert world.post(account, ACCOUNT_NAME).headers["X-Rate-Limit-Requests-Quota"] == "10"

    seen = world.control("GET", f"/accounts/{chosen}")
    assert seen["stores"] == [
        {
            "store_hash": HASH,
            "id": STORE_ID,
            "users": [
                {
                    "id": seen["users"][0]["id"],
                    "email": f"owner@{HASH}.example",
                    "first_name": "",
                    "last_name": "",
                }
            ],
        }
    ]
    assert "token" not in seen
    assert [(r["operation"], r["status"]) for r in seen["requests"]] == [(None, 200)]
