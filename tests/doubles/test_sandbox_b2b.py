"""The sandbox's B2B Edition management API (/api/v3/io), over real HTTP.

Each test gets a fresh sandbox app behind one module-wide server, with a settable clock. The
store has B2B Edition enabled (a ``b2b_token``) and two channels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from broker.sandbox.store import SandboxError, SandboxNotFound, SandboxState, SandboxStore
from broker.sandbox.store import create_sandbox_app as create_app
from tests.support.clock import Clock
from tests.support.servers import serve_in_thread

HASH = "b2bshop"
TOKEN = "api-token-0123456789"
B2B_TOKEN = "b2b-token-abcdef012345"
START = 1_700_000_000.0
STORE = SandboxStore(
    store_hash=HASH,
    access_token=TOKEN,
    client_id="client-id-b2b",
    client_secret="client-secret-0123456789abcdef",
    channel_ids=(1, 2),
    name="B2B shop",
    b2b_token=B2B_TOKEN,
)
HEADERS = {"X-Auth-Token": B2B_TOKEN, "X-Store-Hash": HASH}


class SwappableApp:
    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@dataclass
class Shop:
    url: str
    state: SandboxState
    clock: Clock
    b2b: httpx.Client  # base_url = <sandbox>/api/v3/io, B2B headers set
    api: httpx.Client  # BigCommerce's own API of the store
    control: httpx.Client  # the sandbox root, no headers


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[tuple[str, SwappableApp]]:
    target = SwappableApp()
    with serve_in_thread(target) as srv:
        yield srv.url, target


@pytest.fixture
def shop(sandbox_server: tuple[str, SwappableApp]) -> Iterator[Shop]:
    url, target = sandbox_server
    clock = Clock(START)
    app = create_app(clock=clock)
    state: SandboxState = app.extensions["sandbox"]
    state.add_store(STORE)
    target.app = app
    with (
        httpx.Client(base_url=f"{url}/api/v3/io", headers=HEADERS, timeout=5) as b2b,
        httpx.Client(
            base_url=f"{url}/stores/{HASH}", headers={"X-Auth-Token": TOKEN}, timeout=5
        ) as api,
        httpx.Client(base_url=url, timeout=5) as control,
    ):
        yield Shop(url, state, clock, b2b, api, control)


def new_user(email: str, company_id: int, role: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": email,
        "companyId": company_id,
        "role": role,
        **extra,
    }


def company_with_admin(shop: Shop, name: str = "Acme", email: str = "boss@acme.test") -> int:
    company_id: int = shop.state.add_company(HASH, name)["companyId"]
    made = shop.b2b.post("/users", json=new_user(email, company_id, role=0))
    assert made.status_code == 200, made.text
    return company_id


def message(response: httpx.Response) -> str:
    text: str = response.json()["meta"]["message"]
    return text


# -- envelope, paging, reading -----------------------------------------------------------------


def test_companies_list_in_the_envelope_with_paging_and_filters(shop: Shop) -> None:
    made = [shop.state.add_company(HASH, name) for name in ("Acme", "Bolt Ltd", "Acme East")]
    assert [c["companyStatus"] for c in made] == [1, 1, 1]
    assert set(made[0]) >= {"companyId", "companyName", "companyStatus", "bcGroupId"}

    first = shop.b2b.get("/companies", params={"limit": 2})
    assert first.status_code == 200
    body = first.json()
    assert (body["code"], body["meta"]["message"]) == (200, "Success")
    assert body["meta"]["pagination"] == {"totalCount": 3, "limit": 2, "offset": 0}
    assert [c["companyName"] for c in body["data"]] == ["Acme East", "Bolt Ltd"]  # newest first
    rest = shop.b2b.get("/companies", params={"limit": 2, "offset": 2}).json()
    assert [c["companyName"] for c in rest["data"]] == ["Acme"]
    assert shop.b2b.get("/companies").json()["meta"]["pagination"]["limit"] == 10

    searched = shop.b2b.get("/companies", params={"q": "acme"}).json()
    assert [c["companyName"] for c in searched["data"]] == ["Acme East", "Acme"]

    one = shop.b2b.get(f"/companies/{made[1]['companyId']}")
    assert one.json()["data"] == made[1]
    missing = shop.b2b.get("/companies/999")
    assert missing.status_code == 404
    assert missing.json()["code"] == 404
    assert missing.json()["data"] == {}

    assert shop.b2b.get("/companies", params={"limit": 0}).status_code == 422
    assert shop.b2b.get("/companies", params={"limit": 251}).status_code == 422
    assert shop.b2b.get("/companies", params={"offset": "-1"}).status_code == 422


def test_companies_by_customer_id(shop: Shop) -> None:
    acme = company_with_admin(shop)
    shop.state.add_company(HASH, "Other")
    customer_id = shop.state.b2b_users(HASH)[0]["customerId"]
    found = shop.b2b.get("/companies", params={"customerId": customer_id}).json()
    assert [c["companyId"] for c in found["data"]] == [acme]
    nobody = shop.b2b.get("/companies", params={"customerId": 999}).json()
    assert nobody["data"] == []
    assert nobody["meta"]["pagination"]["totalCount"] == 0


def test_users_list_filters_and_paging(shop: Shop) -> None:
    acme = company_with_admin(shop)
    bolt = company_with_admin(shop, "Bolt", "boss@bolt.test")
    for i, role in enumerate((1, 2, 2)):
        made = shop.b2b.post("/users", json=new_user(f"u{i}@acme.test", acme, role=role))
        assert made.status_code == 200

    everyone = shop.b2b.get("/users").json()
    assert everyone["meta"]["pagination"] == {"totalCount": 5, "limit": 10, "offset": 0}
    user = everyone["data"][0]
    assert set(user) >= {
        "id",
        "companyId",
        "customerId",
        "firstName",
        "lastName",
        "email",
        "phoneNumber",
        "role",
        "companyRoleId",
        "companyRoleName",
        "channelList",
        "createdAt",
        "updatedAt",
    }
    assert user["channelList"][0]["channelId"] == 1
    assert user["createdAt"] == int(START)

    def emails(**params: Any) -> list[str]:
        return [u["email"] for u in shop.b2b.get("/users", params=params).json()["data"]]

    assert emails(companyId=bolt) == ["boss@bolt.test"]
    assert emails(email="U1@ACME.test") == ["u1@acme.test"]  # the whole address, any case
    assert emails(email="acme.test") == []
    assert emails(roles="0") == ["boss@acme.test", "boss@bolt.test"]
    assert emails(roles=["0", "1"], companyId=acme) == ["boss@acme.test", "u0@acme.test"]
    assert emails(roles="0,1", companyId=acme) == ["boss@acme.test", "u0@acme.test"]
    assert emails(q="bolt") == ["boss@bolt.test"]  # the company's name is searched too
    assert emails(limit=2, offset=3) == ["u1@acme.test", "u2@acme.test"]
    assert shop.b2b.get("/users", params={"roles": "5"}).status_code == 422
    assert shop.b2b.get("/users", params={"companyId": "x"}).status_code == 422


def test_user_by_id_and_by_customer_and_404_for_a_plain_customer(shop: Shop) -> None:
    acme = company_with_admin(shop)
    user = shop.state.b2b_users(HASH)[0]
    by_id = shop.b2b.get(f"/users/{user['id']}")
    assert by_id.json() == {"code": 200, "data": user, "meta": {"message": "Success"}}
    by_customer = shop.b2b.get(f"/users/customer/{user['customerId']}")
    assert by_customer.json()["data"]["companyId"] == acme

    plain = shop.state.add_customer(HASH, email="shopper@example.com")
    none = shop.b2b.get(f"/users/customer/{plain['id']}")
    assert none.status_code == 404
    assert none.json()["code"] == 404
    assert shop.b2b.get("/users/customer/4242").status_code == 404
    assert shop.b2b.get("/users/4242").status_code == 404
    assert shop.b2b.get("/nothing-here").status_code == 404


# -- authentication ----------------------------------------------------------------------------


def test_wrong_or_missing_headers_are_401_in_the_envelope(shop: Shop) -> None:
    shop.state.add_store(
        SandboxStore("plain1", TOKEN, "cid", "x" * 16)  # B2B Edition not enabled
    )
    root = f"{shop.url}/api/v3/io/users"
    cases = [
        {},
        {"X-Store-Hash": HASH},  # no token
        {"X-Auth-Token": B2B_TOKEN},  # no store
        {"X-Auth-Token": "wrong", "X-Store-Hash": HASH},
        {"X-Auth-Token": TOKEN, "X-Store-Hash": HASH},  # the store's V3 token is not B2B's
        {"X-Auth-Token": B2B_TOKEN, "X-Store-Hash": "nope"},
        {"X-Auth-Token": B2B_TOKEN, "X-Store-Hash": "plain1"},
    ]
    for headers in cases:
        answer = httpx.get(root, headers=headers)
        assert answer.status_code == 401, headers
        body = answer.json()
        assert body["code"] == 401
        assert body["data"] == {}
        assert "X-Auth-Token" in body["meta"]["message"]
    logged = shop.state.requests(HASH)
    assert [(r.path, r.status) for r in logged] == [("/api/v3/io/users", 401)] * 3
    assert shop.state.requests("plain1")[0].status == 401
    assert shop.b2b.get("/users").status_code == 200


# -- creating users ----------------------------------------------------------------------------


def test_create_user_makes_the_customer_too(shop: Shop) -> None:
    acme = shop.state.add_company(HASH, "Acme", bc_group_id=7)["companyId"]
    hook = {"scope": "store/customer/created", "destination": "http://127.0.0.1:9/hook"}
    assert shop.api.post("/v3/hooks", json=hook).status_code == 200
    body = new_user("new@acme.test", acme, role=0, phoneNumber="555-0100")
    made = shop.b2b.post("/users", json=body)
    assert made.status_code == 200
    data = made.json()["data"]
    assert set(data) == {"userId", "bcId"}

    customers = shop.state.customers(HASH)
    assert len(customers) == 1
    customer = customers[0]
    assert customer["id"] == data["bcId"]
    assert (customer["email"], customer["first_name"], customer["phone"]) == (
        "new@acme.test",
        "Ada",
        "555-0100",
    )
    assert customer["channel_ids"] == [1]  # the store's default channel
    assert customer["customer_group_id"] == 7  # the company's customer group

    user = shop.b2b.get(f"/users/{data['userId']}").json()["data"]
    assert (user["customerId"], user["companyId"], user["role"]) == (data["bcId"], acme, 0)
    assert user["companyRoleName"] == "Admin"
    assert user["phoneNumber"] == "555-0100"
    # Hooks hear of the new customer, and BigCommerce's own API sees it.
    (delivery,) = shop.state.deliveries(HASH)
    assert (delivery["scope"], delivery["payload"]["data"]["id"]) == (
        "store/customer/created",
        data["bcId"],
    )
    found = shop.api.get("/v3/customers", params={"email:in": "new@acme.test"}).json()
    assert [c["id"] for c in found["data"]] == [data["bcId"]]

    on_two = shop.b2b.post("/users", json=new_user("two@acme.test", acme, channelIds=[2]))
    bc_id = on_two.json()["data"]["bcId"]
    assert next(c for c in shop.state.customers(HASH) if c["id"] == bc_id)["channel_ids"] == [2]
    logged = shop.state.requests(HASH)
    assert [(r.method, r.path) for r in logged[-1:]] == [("POST", "/api/v3/io/users")]
    assert logged[-1].body["email"] == "two@acme.test"


def test_create_for_an_existing_customer_links_it(shop: Shop) -> None:
    acme = company_with_admin(shop)
    existing = shop.state.add_customer(HASH, email="Grace@Acme.test", channel_ids=[1])
    made = shop.b2b.post("/users", json=new_user("grace@acme.test", acme))
    assert made.status_code == 200
    assert made.json()["data"]["bcId"] == existing["id"]
    assert [c["email"] for c in shop.state.customers(HASH)].count("Grace@Acme.test") == 1

    # A customer of another channel only is not linked: a new customer on channel 1 is made.
    elsewhere = shop.state.add_customer(HASH, email="lin@acme.test", channel_ids=[2])
    made = shop.b2b.post("/users", json=new_user("lin@acme.test", acme, channelIds=[1]))
    assert made.status_code == 200
    assert made.json()["data"]["bcId"] != elsewhere["id"]
    assert len(shop.state.customers(HASH)) == 4


def test_an_email_of_a_company_user_is_422_in_any_company(shop: Shop) -> None:
    acme = company_with_admin(shop)
    bolt = shop.state.add_company(HASH, "Bolt")["companyId"]
    for company_id in (acme, bolt):
        again = shop.b2b.post("/users", json=new_user("BOSS@acme.test", company_id))
        assert again.status_code == 422
        assert again.json()["code"] == 422
        assert message(again) == "Email already exists"
    assert len(shop.state.customers(HASH)) == 1
    assert len(shop.state.b2b_users(HASH)) == 1


def test_bad_bodies_are_422(shop: Shop) -> None:
    acme = company_with_admin(shop)
    complete = new_user("x@acme.test", acme)
    cases: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in complete.items() if k != "firstName"}, "firstName"),
        ({k: v for k, v in complete.items() if k != "email"}, "email"),
        ({k: v for k, v in complete.items() if k != "role"}, "role"),
        ({**complete, "email": "not-an-email"}, "email"),
        ({**complete, "companyId": 999}, "999"),
        ({**complete, "companyId": str(acme)}, "companyId"),
        ({**complete, "role": 3}, "role"),
        ({**complete, "role": "1"}, "role"),
        ({**complete, "channelIds": [9]}, "channelIds"),
        ({**complete, "channelIds": []}, "channelIds"),
    ]
    for body, named in cases:
        answer = shop.b2b.post("/users", json=body)
        assert answer.status_code == 422, body
        assert named in message(answer)
    assert shop.b2b.post("/users", json=[complete]).status_code == 422
    assert shop.b2b.post("/users", content=b"{nope", headers=HEADERS).status_code == 400
    assert len(shop.state.customers(HASH)) == 1


def test_company_role_ids(shop: Shop) -> None:
    acme = company_with_admin(shop)
    builtin = shop.b2b.post("/users", json=new_user("a@acme.test", acme, role=2, companyRoleId=1))
    custom = shop.b2b.post("/users", json=new_user("b@acme.test", acme, role=1, companyRoleId=10))
    users = {u["email"]: u for u in shop.state.b2b_users(HASH)}
    assert builtin.status_code == custom.status_code == 200
    assert (users["a@acme.test"]["role"], users["a@acme.test"]["companyRoleName"]) == (
        1,
        "Senior Buyer",
    )
    assert users["b@acme.test"]["companyRoleId"] == 10
    assert users["b@acme.test"]["companyRoleName"] == "Custom role 10"


def test_bulk_create_at_most_ten_all_or_nothing(shop: Shop) -> None:
    acme = company_with_admin(shop)
    eleven = [new_user(f"b{i}@acme.test", acme) for i in range(11)]
    too_many = shop.b2b.post("/users/bulk", json=eleven)
    assert too_many.status_code == 422
    assert "10" in message(too_many)
    assert shop.b2b.post("/users/bulk", json=[]).status_code == 422

    one_bad = [new_user("ok@acme.test", acme), new_user("boss@acme.test", acme)]
    refused = shop.b2b.post("/users/bulk", json=one_bad)
    assert refused.status_code == 422
    assert message(refused) == "[1] Email already exists"
    twice = [new_user("same@acme.test", acme), new_user("SAME@acme.test", acme)]
    assert shop.b2b.post("/users/bulk", json=twice).status_code == 422
    assert len(shop.state.b2b_users(HASH)) == 1
    assert len(shop.state.customers(HASH)) == 1

    ten = shop.b2b.post("/users/bulk", json=eleven[:10])
    assert ten.status_code == 200
    data = ten.json()["data"]
    assert len(data) == 10
    assert all(set(item) == {"userId", "bcId"} for item in data)
    assert len(shop.state.customers(HASH)) == 11


@pytest.mark.parametrize("status", ["pending", "rejected", "inactive"])
def test_a_company_that_is_not_approved_takes_no_users(shop: Shop, status: str) -> None:
    company = shop.state.add_company(HASH, "Sleepy", status)
    codes = {"pending": 0, "rejected": 2, "inactive": 3}
    assert company["companyStatus"] == codes[status]
    refused = shop.b2b.post("/users", json=new_user("a@sleepy.test", company["companyId"]))
    assert refused.status_code == 422
    assert "not approved" in message(refused)
    assert shop.state.customers(HASH) == []


def test_switch_off_an_admin_reactivates_an_inactive_company(shop: Shop) -> None:
    lenient = SandboxStore(
        "lenient1", TOKEN, "cid", "x" * 16, b2b_token=B2B_TOKEN, b2b_approved_companies_only=False
    )
    shop.state.add_store(lenient)
    headers = {**HEADERS, "X-Store-Hash": "lenient1"}
    company_id = shop.state.add_company("lenient1", "Sleepy", "inactive")["companyId"]
    buyer = shop.b2b.post("/users", json=new_user("b@s.test", company_id), headers=headers)
    assert buyer.status_code == 200
    assert shop.state.companies("lenient1")[0]["companyStatus"] == 3
    admin = shop.b2b.post("/users", json=new_user("a@s.test", company_id, 0), headers=headers)
    assert admin.status_code == 200
    assert shop.state.companies("lenient1")[0]["companyStatus"] == 1


# -- changing and deleting users ---------------------------------------------------------------


def test_the_last_admin_may_not_be_demoted_or_deleted(shop: Shop) -> None:
    acme = company_with_admin(shop)
    admin = shop.state.b2b_users(HASH)[0]
    made = shop.b2b.post("/users", json=new_user("buyer@acme.test", acme, role=2))
    buyer_id = made.json()["data"]["userId"]

    demoted = shop.b2b.put(f"/users/{admin['id']}", json={"role": 1})
    assert demoted.status_code == 422
    assert "last admin" in message(demoted)
    as_custom = shop.b2b.put(f"/users/{admin['id']}", json={"companyRoleId": 2})
    assert as_custom.status_code == 422
    deleted = shop.b2b.delete(f"/users/{admin['id']}")
    assert deleted.status_code == 422
    assert "last admin" in message(deleted)

    promoted = shop.b2b.put(f"/users/{buyer_id}", json={"role": 0})
    assert promoted.status_code == 200
    assert promoted.json()["data"]["companyRoleName"] == "Admin"
    assert shop.b2b.put(f"/users/{admin['id']}", json={"role": 2}).status_code == 200
    gone = shop.b2b.delete(f"/users/{admin['id']}")
    assert gone.status_code == 200
    assert gone.json() == {"code": 200, "data": {}, "meta": {"message": "Success"}}
    assert [u["id"] for u in shop.state.b2b_users(HASH)] == [buyer_id]
    assert len(shop.state.customers(HASH)) == 2  # the customer stays

    last = shop.b2b.delete(f"/users/{buyer_id}")
    assert last.status_code == 422
    assert "last user" in message(last)


def test_update_changes_the_user_and_its_customer(shop: Shop) -> None:
    acme = company_with_admin(shop)
    user = shop.state.b2b_users(HASH)[0]
    shop.clock.now += 60
    changed = shop.b2b.put(
        f"/users/{user['id']}",
        json={"firstName": "Grace", "phoneNumber": "555-0199", "channelIds": [1, 2]},
    )
    assert changed.status_code == 200
    data = changed.json()["data"]
    assert (data["firstName"], data["lastName"], data["role"]) == ("Grace", "Lovelace", 0)
    assert data["updatedAt"] == int(START) + 60
    assert [c["channelId"] for c in data["channelList"]] == [1, 2]
    customer = shop.state.customers(HASH)[0]
    assert (customer["first_name"], customer["phone"], customer["channel_ids"]) == (
        "Grace",
        "555-0199",
        [1, 2],
    )

    other = shop.state.add_company(HASH, "Bolt")["companyId"]
    moved = shop.b2b.put(f"/users/{user['id']}", json={"companyId": other})
    assert moved.status_code == 422
    assert "companyId" in message(moved)
    assert shop.b2b.put(f"/users/{user['id']}", json={"companyId": acme}).status_code == 200
    assert shop.b2b.put(f"/users/{user['id']}", json={"email": "x@y.test"}).status_code == 422
    assert shop.b2b.put(f"/users/{user['id']}", json={"role": 7}).status_code == 422
    assert shop.b2b.put("/users/999", json={"role": 1}).status_code == 404


def test_deleting_the_admins_customer_removes_the_user_and_inactivates_the_company(
    shop: Shop,
) -> None:
    acme = company_with_admin(shop)
    shop.b2b.post("/users", json=new_user("buyer@acme.test", acme))
    admin = shop.state.b2b_users(HASH)[0]
    deleted = shop.api.delete("/v3/customers", params={"id:in": admin["customerId"]})
    assert deleted.status_code == 204
    assert [u["email"] for u in shop.state.b2b_users(HASH)] == ["buyer@acme.test"]
    assert shop.state.companies(HASH)[0]["companyStatus"] == 3
    assert shop.b2b.get(f"/users/customer/{admin['customerId']}").status_code == 404


# -- faults and rate limits --------------------------------------------------------------------


def test_a_500_and_a_429_from_the_fault_switches(shop: Shop) -> None:
    shop.state.set_faults(HASH, status=500, count=1)
    failed = shop.b2b.get("/users")
    assert failed.status_code == 500
    assert failed.json()["code"] == 500
    assert failed.json()["meta"]["message"] == "Internal Server Error"
    assert shop.b2b.get("/users").status_code == 200

    shop.state.set_faults(HASH, rate_limit_for_ms=2000)
    limited = shop.b2b.get("/companies")
    assert limited.status_code == 429
    assert limited.json()["code"] == 429
    assert limited.headers["X-Rate-Limit-Requests-Left"] == "0"
    assert limited.headers["X-Rate-Limit-Time-Reset-Ms"] == "2000"
    shop.clock.now += 2
    assert shop.b2b.get("/companies").status_code == 200

    statuses = [r.status for r in shop.state.requests(HASH)]
    assert statuses == [500, 200, 429, 200]


def test_b2b_has_its_own_quota_window(shop: Shop) -> None:
    shop.state.set_faults(HASH, quota=2)
    answers = [shop.b2b.get("/companies") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["X-Rate-Limit-Requests-Quota"] == "2"
    assert answers[1].headers["X-Rate-Limit-Requests-Left"] == "0"
    assert answers[2].json()["meta"]["message"] == "Too many requests"
    assert shop.api.get("/v2/time").status_code == 200  # BigCommerce's API counts apart
    shop.clock.now += 30
    assert shop.b2b.get("/companies").status_code == 200


def test_faults_aimed_at_one_api(shop: Shop) -> None:
    shop.state.set_faults(HASH, status=503, only="b2b")
    assert shop.api.get("/v2/time").status_code == 200
    assert shop.b2b.get("/users").status_code == 503
    shop.state.set_faults(HASH, status=503, only="bigcommerce")
    assert shop.api.get("/v2/time").status_code == 503
    assert shop.b2b.get("/users").status_code == 200
    with pytest.raises(SandboxError):
        shop.state.set_faults(HASH, status=503, only="storefront")


def test_timeout_fault_reaches_b2b(shop: Shop) -> None:
    acme = company_with_admin(shop)
    shop.state.set_faults(HASH, timeout_ms=600, count=1, only="b2b")
    with pytest.raises(httpx.ReadTimeout):
        shop.b2b.post("/users", json=new_user("slow@acme.test", acme), timeout=0.2)
    # The timeout comes after the store acted: the user exists.
    found = shop.b2b.get("/users", params={"email": "slow@acme.test"}, timeout=2)
    assert found.json()["meta"]["pagination"]["totalCount"] == 1


# -- seeding -----------------------------------------------------------------------------------


def test_python_seeding_helpers(shop: Shop) -> None:
    customer = shop.state.add_customer(HASH, email="seed@acme.test", channel_ids=[2])
    acme = shop.state.add_company(HASH, "Acme", "pending")["companyId"]
    user = shop.state.add_company_user(HASH, customer["id"], acme, 1)
    assert (user["customerId"], user["companyId"], user["role"]) == (customer["id"], acme, 1)
    assert [c["channelId"] for c in user["channelList"]] == [2]
    assert shop.state.b2b_users(HASH) == [user]
    with pytest.raises(SandboxError, match="Email already exists"):
        shop.state.add_company_user(HASH, customer["id"], acme, 0)
    with pytest.raises(SandboxNotFound):
        shop.state.add_company_user(HASH, 999, acme, 0)
    with pytest.raises(SandboxNotFound):
        shop.state.add_company_user(HASH, customer["id"], 999, 0)
    with pytest.raises(SandboxError):
        shop.state.add_company(HASH, "Bad", "sleeping")
    assert shop.state.set_company_status(HASH, acme, "approved")["companyStatus"] == 1


def test_control_endpoints_over_http(shop: Shop) -> None:
    control = shop.control
    made = control.post(
        "/_sandbox/stores",
        json={
            "store_hash": "s2",
            "access_token": "t",
            "client_id": "c",
            "client_secret": "x" * 16,
            "b2b_token": "b2b-s2",
        },
    )
    assert made.status_code == 201
    assert made.json()["b2b_enabled"] is True
    assert "b2b_token" not in made.json()
    customer = control.post("/_sandbox/stores/s2/customers", json={"email": "z@s2.test"}).json()
    company = control.post("/_sandbox/stores/s2/b2b/companies", json={"name": "S2 Co"})
    assert company.status_code == 201
    company_id = company.json()["companyId"]
    user = control.post(
        "/_sandbox/stores/s2/b2b/users",
        json={"customer_id": customer["id"], "company_id": company_id, "role": 0},
    )
    assert user.status_code == 201
    assert control.get("/_sandbox/stores/s2/b2b/users").json() == [user.json()]
    assert control.get("/_sandbox/stores/s2/b2b/companies").json()[0]["companyName"] == "S2 Co"
    status = control.put(
        f"/_sandbox/stores/s2/b2b/companies/{company_id}/status", json={"status": "inactive"}
    )
    assert status.json()["companyStatus"] == 3

    answer = httpx.get(
        f"{shop.url}/api/v3/io/users/customer/{customer['id']}",
        headers={"X-Auth-Token": "b2b-s2", "X-Store-Hash": "s2"},
    )
    assert answer.json()["data"]["id"] == user.json()["id"]

    bad = control.post("/_sandbox/stores/s2/b2b/users", json={"customer_id": 1, "role": 0})
    assert bad.status_code == 422
    missing = control.post(
        "/_sandbox/stores/s2/b2b/users", json={"customer_id": 77, "company_id": 1, "role": 0}
    )
    assert missing.status_code == 404
    assert control.post("/_sandbox/stores/s2/b2b/companies", json={}).status_code == 422
    assert (
        control.post(
            "/_sandbox/stores/s2/b2b/companies", json={"name": "X", "colour": "red"}
        ).status_code
        == 422
    )
    assert control.get("/_sandbox/stores/nope/b2b/users").status_code == 404


def test_the_account_page_shows_the_company(shop: Shop) -> None:
    company_with_admin(shop)
    customer = shop.state.customers(HASH)[0]
    shop.state.add_customer(HASH, email="plain@example.com", password="correct-horse-1")
    password = {"id": customer["id"], "authentication": {"new_password": "correct-horse-1"}}
    assert shop.api.put("/v3/customers", json=[password]).status_code == 200

    def account_of(email: str) -> str:
        with httpx.Client(base_url=shop.url, timeout=5) as browser:
            signed = browser.post(
                f"/s/{HASH}/login.php",
                params={"action": "check_login"},
                data={"login_email": email, "login_pass": "correct-horse-1"},
            )
            assert signed.status_code == 302
            return browser.get(f"/s/{HASH}/account.php").text

    assert 'id="customer-company">Acme &middot; Admin</dd>' in account_of("boss@acme.test")
    assert "customer-company" not in account_of("plain@example.com")
