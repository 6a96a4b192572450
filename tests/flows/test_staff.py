"""Control-panel staff from IdP groups, end to end: the company's IdP manages a group over
SCIM, the broker plans and queues the GraphQL Account API changes and carries them out on the
sandbox's Account API within the account's budget. Joining the group makes a store user,
leaving it takes the access away; the store owner and users the broker did not add stay; the
queue survives a restart, a 429 storm loses nothing, forty workers do each change once, and
another connection's group grants nothing."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest

from broker.admin.staff import run_forever
from broker.admin.tokens import issue_token
from broker.cli import main as broker_main
from broker.provisioning.staff.service import StaffService
from broker.runtime import Runtime
from broker.sandbox.idp import DevUser
from broker.settings.values import StoreSettings
from broker.storage import open_storage
from tests.conftest import World
from tests.support.clock import Clock
from tests.support.flows import sign_in
from tests.support.world import Sandbox

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OWNER = "owner@abc123.example"


@dataclass
class Staff:
    """A world whose store maps the IdP group "BC Admins" to its control panel."""

    world: World
    account: dict[str, Any]
    clock: Clock
    http: httpx.Client

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.world.broker.app.extensions["broker"]
        return runtime

    @property
    def store(self) -> StoreSettings:
        return self.runtime.store("acme")

    def service(self, *, fresh_storage: bool = False) -> StaffService:
        """The staff service on the broker's database (a new connection: as after a restart)."""
        storage = self.runtime.storage
        if fresh_storage:
            storage = open_storage(self.world.broker.settings.broker.database_url)
        return StaffService(storage, clock=self.clock)

    def scim(self, method: str, path: str, body: Any = None, conn: str = "corp") -> Any:
        token, _ = issue_token(
            self.runtime.storage, store="acme", kind="scim", label="idp", now=1, connection=conn
        )
        answer = self.http.request(
            method,
            f"{self.world.broker.url}/acme/scim/{conn}/v2{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON},
        )
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None

    def user(self, email: str, conn: str = "corp") -> str:
        name = email.split("@")[0].title()
        body = {
            "schemas": [USER],
            "userName": email,
            "externalId": f"sub-{email}",
            "name": {"givenName": name, "familyName": "Tester"},
            "emails": [{"primary": True, "value": email}],
            "active": True,
        }
        created: str = self.scim("POST", "/Users", body, conn)["id"]
        return created

    def group(self, name: str, members: list[str], conn: str = "corp") -> str:
        body = {
            "schemas": [GROUP],
            "displayName": name,
            "members": [{"value": m} for m in members],
        }
        created: str = self.scim("POST", "/Groups", body, conn)["id"]
        return created

    def leave(self, group_id: str, user_id: str) -> None:
        self.scim(
            "PATCH",
            f"/Groups/{group_id}",
            {
                "schemas": [PATCH],
                "Operations": [{"op": "remove", "path": f'members[value eq "{user_id}"]'}],
            },
        )

    def control(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"{self.world.sandbox.url}/_sandbox{path}", json=body)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def in_account(self, *emails: str) -> None:
        """Users of the account already (they join the store in one request, not two)."""
        for email in emails:
            self.control("POST", f"/accounts/{self.account['uuid']}/users", {"email": email})

    def account_users(self) -> list[str]:
        return sorted(
            u["email"] for u in self.control("GET", f"/accounts/{self.account['uuid']}")["users"]
        )

    def store_users(self) -> list[str]:
        return sorted(u["email"] for u in self.control("GET", "/stores/abc123/users"))

    def calls(self, operation: str) -> list[dict[str, Any]]:
        requests = self.control("GET", f"/accounts/{self.account['uuid']}")["requests"]
        return [r for r in requests if r["operation"] == operation]


@pytest.fixture
def staff_world(
    sandbox: Sandbox, make_world: Callable[..., World], browser_http: httpx.Client
) -> Callable[..., Staff]:
    def build(
        *,
        staff: dict[str, Any] | None = None,
        sandbox_limit: int = 1000,
        scim: bool = True,
        **world: Any,
    ) -> Staff:
        account = {"uuid": str(uuid.uuid4()), "token": secrets.token_urlsafe(24)}
        table = {
            "account_uuid": account["uuid"],
            "account_token": account["token"],
            "api_url": sandbox.url,
            "groups": ["BC Admins"],
            "connections": ["corp"],
            **(staff or {}),
        }
        connection = {"scim": {"enabled": True}} if scim else {}
        built = make_world(connection=connection, store={"staff": table}, **world)
        made = Staff(built, account, Clock(float(int(time.time()))), browser_http)
        made.control(
            "POST",
            "/accounts",
            {
                **account,
                "name": "Acme Holdings",
                "stores": ["abc123"],
                "requests_per_hour": sandbox_limit,
            },
        )
        return made

    return build


def test_joining_the_group_grants_the_control_panel_and_leaving_takes_it_away(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()
    staff.control("POST", "/stores/abc123/users", {"email": "dave@example.com"})  # not ours
    alice, bob, carol = (staff.user(f"{n}@example.com") for n in ("alice", "bob", "carol"))
    admins = staff.group("BC Admins", [alice, bob])
    staff.group("Buyers", [carol])
    service = staff.service()

    staff.in_account("bob@example.com")  # alice is new to the account: she joins it first
    report = service.apply(staff.store)
    assert [(i.action, i.email) for i in report.done] == [
        ("add_to_account", "alice@example.com"),
        ("add_to_store", "alice@example.com"),
        ("add_to_store", "bob@example.com"),
    ]
    assert "alice@example.com" in staff.account_users()
    assert staff.store_users() == sorted(
        ["alice@example.com", "bob@example.com", "dave@example.com", OWNER]
    )
    assert report.plan is not None
    assert report.plan.untouched == {
        OWNER: "not added by the broker",
        "dave@example.com": "not added by the broker",
    }

    staff.leave(admins, bob)
    staff.scim(
        "PATCH",
        f"/Users/{alice}",
        {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]},
    )
    report = service.apply(staff.store)
    assert sorted(i.email for i in report.done) == ["alice@example.com", "bob@example.com"]
    assert {i.action for i in report.done} == {"remove_from_store"}
    assert staff.store_users() == ["dave@example.com", OWNER]
    assert staff.runtime.storage.staff_grants("acme") == set()

    # Nothing left to do: a plan again reads the store's users (one request), changes nothing.
    again = service.apply(staff.store)
    assert again.plan is not None
    assert again.plan.empty
    assert again.requests == 1
    events = [e.event for e in staff.runtime.storage.recent_audit("acme", 20)]
    assert events.count("staff.add_to_store") == 2
    assert events.count("staff.remove_from_store") == 2


def test_the_plan_is_a_dry_run_and_the_command_line_prints_it(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()
    staff.group("BC Admins", [staff.user("alice@example.com")])
    config = str(staff.world.broker.config_path)
    plan = subprocess.run(
        [sys.executable, "-m", "broker.cli", "staff", "plan", "--config", config],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plan.returncode == 0, plan.stderr
    assert "+ alice@example.com: add (scim:corp, to the account first)" in plan.stdout
    assert f"= {OWNER}: left alone (not added by the broker)" in plan.stdout
    assert "queue: empty" in plan.stdout
    assert staff.store_users() == [OWNER]
    assert staff.calls("AddToStore") == []

    applied = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "staff",
            "apply",
            "--config",
            config,
            "--store",
            "acme",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert applied.returncode == 0, applied.stderr
    assert "done: add to the store alice@example.com" in applied.stdout
    assert staff.store_users() == ["alice@example.com", OWNER]

    unknown = subprocess.run(
        [
            sys.executable,
            "-m",
            "broker.cli",
            "staff",
            "plan",
            "--config",
            config,
            "--store",
            "nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2
    assert "no [staff] table in store 'nope'" in unknown.stderr


def test_the_budget_spreads_the_changes_and_the_queue_survives_a_restart(
    staff_world: Callable[..., Staff],
) -> None:
    # 14 an hour: 2 at once, then one every 5 minutes (3600 / 12).
    staff = staff_world(staff={"requests_per_hour": 14})
    emails = [f"user{n}@example.com" for n in range(4)]
    staff.in_account(*emails)
    staff.group("BC Admins", [staff.user(email) for email in emails])

    first = staff.service().apply(staff.store)
    assert first.requests == 2  # the reads of the store's users and the account's
    assert first.done == []
    assert first.next_request_at == int(staff.clock.now) + 300
    times = [at for _, at in first.pending]
    assert times == [int(staff.clock.now) + 300 * n for n in (1, 2, 3, 4)]

    # A restart: a new process sees the same queue and the same budget.
    restarted = staff.service(fresh_storage=True)
    assert [at for _, at in restarted.schedule(staff.store)] == times
    assert restarted.run_due(staff.store).done == []  # nothing is due before its time
    for _ in range(4):
        staff.clock.advance(300)
        assert len(restarted.run_due(staff.store).done) == 1
    assert restarted.schedule(staff.store) == []
    assert staff.store_users() == sorted([OWNER, *(f"user{n}@example.com" for n in range(4))])
    assert len(staff.calls("AddToStore")) == 4


def test_a_429_storm_loses_nothing_and_does_nothing_twice(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()
    emails = [f"user{n}@example.com" for n in range(3)]
    staff.in_account(*emails)
    staff.group("BC Admins", [staff.user(email) for email in emails])
    service = staff.service()
    plan = service.plan(staff.store)
    assert plan.plan is not None
    service.enqueue(staff.store, plan.plan)
    staff.control(
        "POST",
        f"/accounts/{staff.account['uuid']}/faults",
        {"status": 429, "count": 3, "reset_ms": 20000},
    )
    done: list[str] = []
    for _ in range(12):
        run = service.run_due(staff.store)
        assert run.failed == []
        done.extend(i.email for i in run.done)
        open_items = service.storage.staff_items("acme")
        assert all(i.failures == 0 for i in open_items)  # a 429 is not the item's failure
        assert len(open_items) + len(done) == 3  # nothing lost
        if run.next_request_at is None:
            break
        assert run.next_request_at > staff.clock.now
        assert service.run_due(staff.store).requests == 0  # nothing before its time
        staff.clock.now = run.next_request_at
    assert sorted(done) == [f"user{n}@example.com" for n in range(3)]
    refused = [c for c in staff.calls("AddToStore") if c["status"] == 429]
    assert len(refused) == 3
    assert staff.store_users() == sorted([OWNER, *(f"user{n}@example.com" for n in range(3))])
    added = [c for c in staff.calls("AddToStore") if c["status"] == 200 and not c["codes"]]
    assert len(added) == 3


def test_forty_workers_at_once_do_each_change_once_within_the_budget(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()  # 70 an hour: 10 at once
    emails = [f"user{n:02}@example.com" for n in range(14)]
    staff.in_account(*emails)
    staff.group("BC Admins", [staff.user(email) for email in emails])
    service = staff.service()
    plan = service.plan(staff.store)  # two requests: the store's users, the account's
    assert plan.plan is not None
    service.enqueue(staff.store, plan.plan)
    start = threading.Barrier(40)
    done: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        start.wait()
        report = staff.service().run_due(staff.store)
        with lock:
            done.extend(i.email for i in report.done)

    threads = [threading.Thread(target=work) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(done) == 8  # the burst of 10, less the two reads
    assert len(set(done)) == 8
    assert len(staff.calls("AddToStore")) == 8
    assert len(service.storage.staff_items("acme")) == 6


def test_a_change_whose_answer_was_lost_is_done_once_when_retried(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()
    staff.in_account("alice@example.com")
    staff.group("BC Admins", [staff.user("alice@example.com")])
    service = staff.service()
    plan = service.plan(staff.store)
    assert plan.plan is not None
    service.enqueue(staff.store, plan.plan)
    # A worker claims the change and dies after BigCommerce made it, before the answer.
    claimed = service.storage.claim_staff_item("acme", now=int(staff.clock.now), lease=300)
    assert claimed is not None
    staff.control("POST", "/stores/abc123/users", {"email": "alice@example.com"})
    assert service.run_due(staff.store).done == []  # still leased
    staff.clock.advance(301)
    report = service.run_due(staff.store)
    assert [i.email for i in report.done] == ["alice@example.com"]
    assert staff.runtime.storage.staff_grants("acme") == {"alice@example.com"}
    assert staff.store_users() == ["alice@example.com", OWNER]


def test_another_connections_group_of_the_same_name_grants_nothing(
    staff_world: Callable[..., Staff], make_dev_idp: Callable[[], Any]
) -> None:
    other_idp = make_dev_idp()
    staff = staff_world(
        more_connections={
            "partner": {
                "type": "oidc",
                "issuer": other_idp.url,
                "client_id": "partner",
                "client_secret": secrets.token_urlsafe(24),
                "scim": {"enabled": True},
            }
        }
    )
    staff.group("BC Admins", [staff.user("mallory@partner.example", "partner")], "partner")
    report = staff.service().apply(staff.store)
    assert report.wanted == {}
    assert report.done == []
    assert staff.store_users() == [OWNER]


def test_unmanaged_users_go_only_when_the_store_says_so_and_never_those_kept(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world(staff={"remove_unmanaged": True, "keep": [OWNER, "Erin@Example.com"]})
    for email in ("dave@example.com", "erin@example.com"):
        staff.control("POST", "/stores/abc123/users", {"email": email})
    staff.group("BC Admins", [staff.user("alice@example.com")])
    report = staff.service().apply(staff.store)
    assert sorted((i.action, i.email) for i in report.done) == [
        ("add_to_account", "alice@example.com"),
        ("add_to_store", "alice@example.com"),
        ("remove_from_store", "dave@example.com"),
    ]
    assert staff.store_users() == ["alice@example.com", "erin@example.com", OWNER]


def test_the_admin_api_shows_the_queue_and_when_it_runs(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world(staff={"requests_per_hour": 14})
    staff.in_account("user0@example.com", "user1@example.com")
    staff.group("BC Admins", [staff.user(f"user{n}@example.com") for n in range(3)])
    staff.runtime.staff.clock = staff.clock  # the broker's own service, on the test's clock
    staff.runtime.staff.apply(staff.store)
    token, _ = issue_token(staff.runtime.storage, store="acme", kind="admin", label="t", now=1)
    url = f"{staff.world.broker.url}/acme/admin/api/staff"
    assert staff.http.get(url).status_code == 401
    answer = staff.http.get(url, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["budget"] == {"requests_per_hour": 14, "burst": 2, "interval_seconds": 300.0}
    assert [(p["action"], p["email"]) for p in body["pending"]] == [
        ("add_to_account", "user2@example.com"),
        ("add_to_store", "user0@example.com"),
        ("add_to_store", "user1@example.com"),
        ("add_to_store", "user2@example.com"),
    ]
    assert [p["runs_at"] for p in body["pending"]] == [
        int(staff.clock.now) + 300 * n for n in (1, 2, 3, 4)
    ]
    assert body["wanted"] == 3
    assert body["granted"] == 0
    assert "account_token" not in answer.text
    assert staff.account["token"] not in answer.text


def test_the_scheduled_run_follows_the_group_on_its_own(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()
    alice = staff.user("alice@example.com")
    admins = staff.group("BC Admins", [alice])
    stop = threading.Event()
    service = StaffService(staff.runtime.storage)  # the real clock, as `broker staff run`
    runner = threading.Thread(
        target=run_forever,
        args=(service, lambda: [staff.store]),
        kwargs={"every": 0.05, "plan_every": 0.2, "stop": stop},
    )
    runner.start()
    try:
        assert _eventually(lambda: staff.store_users() == ["alice@example.com", OWNER])
        staff.leave(admins, alice)
        assert _eventually(lambda: staff.store_users() == [OWNER])
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()


def _eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def idp_user(who: str, groups: tuple[str, ...]) -> DevUser:
    """A user of the dev IdP in these groups (``who@example.com``, subject ``dev-who``)."""
    return DevUser(
        sub=f"dev-{who}",
        email=f"{who}@example.com",
        password="password",
        given_name=who.title(),
        family_name="Tester",
        groups=groups,
    )


def test_without_scim_the_groups_seen_at_sign_in_count_for_a_while(
    staff_world: Callable[..., Staff], browser_http: httpx.Client
) -> None:
    staff = staff_world(scim=False, staff={"sign_in_days": 30})
    idp = staff.world.idp.state
    for who, groups in (("erin", ("BC Admins", "buyers")), ("frank", ("buyers",))):
        idp.add_user(idp_user(who, groups))
        assert sign_in(browser_http, staff.world.broker.url, f"{who}@example.com").status == 302
        browser_http.cookies.clear()
    # Only the member is kept: a shopper in no staff group leaves no row behind.
    seen = staff.runtime.storage.staff_sightings("acme", ("corp",), since=0)
    assert [(s.subject, s.in_group) for s in seen] == [("dev-erin", True)]
    service = staff.service()
    report = service.apply(staff.store)
    assert report.wanted == {"erin@example.com": "sign-in:corp"}
    assert staff.store_users() == ["erin@example.com", OWNER]

    # Erin leaves the group: her next sign-in says so, and the access goes.
    idp.add_user(idp_user("erin", ("buyers",)))
    assert sign_in(browser_http, staff.world.broker.url, "erin@example.com").status == 302
    assert service.apply(staff.store).wanted == {}
    assert staff.store_users() == [OWNER]


def test_a_membership_seen_at_sign_in_lapses_after_sign_in_days(
    staff_world: Callable[..., Staff], browser_http: httpx.Client
) -> None:
    staff = staff_world(scim=False, staff={"sign_in_days": 30})
    staff.world.idp.state.add_user(idp_user("gail", ("BC Admins",)))
    assert sign_in(browser_http, staff.world.broker.url, "gail@example.com").status == 302
    service = staff.service()
    assert [i.action for i in service.apply(staff.store).done] == [
        "add_to_account",
        "add_to_store",
    ]
    staff.clock.advance(31 * 86400)  # no sign-in for a month: the IdP may have removed her
    assert [i.action for i in service.apply(staff.store).done] == ["remove_from_store"]
    assert staff.store_users() == [OWNER]


def test_a_wrong_account_token_is_named_and_changes_nothing(
    staff_world: Callable[..., Staff], capsys: pytest.CaptureFixture[str]
) -> None:
    staff = staff_world(staff={"account_token": "not-the-token"})
    staff.group("BC Admins", [staff.user("alice@example.com")])
    status = broker_main(["staff", "apply", "--config", str(staff.world.broker.config_path)])
    out = capsys.readouterr().out
    assert status == 1
    assert "the Account API refused the token" in out
    assert "check account_token and its scopes" in out
    assert "not-the-token" not in out
    assert staff.store_users() == [OWNER]
    assert staff.runtime.storage.staff_items("acme") == []


def test_a_store_error_retries_the_change_later_and_gives_up_after_five(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()
    staff.in_account("alice@example.com", "bob@example.com")
    staff.group("BC Admins", [staff.user("alice@example.com")])
    service = staff.service()
    plan = service.plan(staff.store)
    assert plan.plan is not None
    service.enqueue(staff.store, plan.plan)
    faults = f"/accounts/{staff.account['uuid']}/faults"
    staff.control("POST", faults, {"status": 500, "count": 1})
    assert service.run_due(staff.store).done == []
    [waiting] = service.storage.staff_items("acme")
    assert (waiting.failures, waiting.run_at) == (1, int(staff.clock.now) + 60)
    assert "500" in (waiting.error or "")
    staff.clock.advance(60)
    assert [i.email for i in service.run_due(staff.store).done] == ["alice@example.com"]

    # A change that keeps failing is given up after five tries, and says why.
    staff.group("More admins", [staff.user("bob@example.com")])
    staff.control("POST", faults, {"status": 500})
    service.storage.enqueue_staff(
        "acme", "add_to_store", "bob@example.com", user_id=None, now=int(staff.clock.now)
    )
    for _ in range(5):
        service.run_due(staff.store)
        staff.clock.advance(3600)
    [given_up] = service.storage.staff_items("acme", states=("failed",))
    assert (given_up.email, given_up.failures) == ("bob@example.com", 5)
    assert "500" in (given_up.error or "")
    assert service.storage.staff_items("acme") == []
    assert staff.store_users() == ["alice@example.com", OWNER]


def test_a_connection_limited_to_some_domains_grants_no_one_outside_them(
    staff_world: Callable[..., Staff],
) -> None:
    staff = staff_world()
    limited = StaffService(staff.runtime.storage, clock=staff.clock)
    staff.group(
        "BC Admins",
        [staff.user("alice@example.com"), staff.user("ceo@elsewhere.example")],
    )
    store = staff.store
    conn = replace(store.connections["corp"], allowed_domains=("example.com",))
    narrowed = replace(store, connections={**store.connections, "corp": conn})
    assert limited.wanted(narrowed) == {"alice@example.com": "scim:corp"}
    assert set(limited.wanted(store)) == {"alice@example.com", "ceo@elsewhere.example"}


def test_broker_check_reads_the_store_users_once(
    staff_world: Callable[..., Staff], capsys: pytest.CaptureFixture[str]
) -> None:
    good = staff_world()
    status = broker_main(["check", "--config", str(good.world.broker.config_path)])
    out = capsys.readouterr().out
    assert "✓ control-panel staff: the account token reads the store's 1 users" in out, out
    assert "used 1 of the account's 70 requests this hour" in out
    assert status == 0
    assert len(good.calls("StoreUsers")) == 1
    assert good.store_users() == [OWNER]


def test_broker_check_names_a_wrong_account_token(
    staff_world: Callable[..., Staff], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = staff_world(staff={"account_token": "not-the-token"})
    status = broker_main(["check", "--config", str(bad.world.broker.config_path)])
    out = capsys.readouterr().out
    assert status == 1
    assert "✗ control-panel staff" in out
    assert "HTTP 401" in out
    assert "the account_token is wrong or revoked" in out
    assert "not-the-token" not in out


def test_a_user_someone_else_added_while_the_change_waited_is_not_the_brokers_to_remove(
    staff_world: Callable[..., Staff],
) -> None:
    # 14 an hour: the two reads spend the burst, so the change waits for the budget.
    staff = staff_world(staff={"requests_per_hour": 14})
    staff.in_account("alice@example.com")
    admins = staff.group("BC Admins", [alice := staff.user("alice@example.com")])
    service = staff.service()
    assert service.apply(staff.store).done == []
    assert service.run_due(staff.store).done == []  # claimed, put back: no request went
    # Meanwhile a merchant adds alice by hand; then the change runs and finds her there.
    staff.control("POST", "/stores/abc123/users", {"email": "alice@example.com"})
    staff.clock.advance(300)
    [done] = service.run_due(staff.store).done
    assert (done.action, done.email, done.attempts) == ("add_to_store", "alice@example.com", 1)
    assert staff.runtime.storage.staff_grants("acme") == set()
    # She leaves the group: the broker did not add her, so it does not remove her.
    staff.leave(admins, alice)
    staff.clock.advance(300)
    report = service.apply(staff.store)
    assert report.plan is not None
    assert report.plan.untouched == {
        "alice@example.com": "not added by the broker",
        OWNER: "not added by the broker",
    }
    assert staff.store_users() == ["alice@example.com", OWNER]
