"""Account policy against the sandbox store over HTTP, with the real BigCommerce client.

The races are played for real: another "worker" creates the customer at the store between our
lookup and our create, and the store's 422 must lead to a lookup, never a second create.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest

from broker.accounts import (
    ConfirmOwnership,
    SignIn,
    StoreContext,
    WrongPassword,
    confirm_ownership,
    find_customer,
    resolve_customer,
)
from broker.bigcommerce.api import BigCommerceClient, Customer, NewCustomer
from broker.config import StoreSettings
from broker.errors import (
    BigCommerceUnavailable,
    NoCustomer,
    PolicyDenied,
    RateLimited,
    TooManyAttempts,
)
from broker.identity import Identity
from broker.storage import SQLStorage, open_storage
from tests.conftest import Sandbox

NOW = 1_800_000_000


@pytest.fixture
def links(tmp_path: Any) -> Iterator[SQLStorage]:
    storage = open_storage(f"sqlite:///{tmp_path / 'links.db'}")
    yield storage
    storage.close()


def resolve(
    directory: Any,
    links: SQLStorage,
    *,
    policy: Policy | None = None,
    identity: Identity | None = None,
    channel_id: int = 1,
    now: int = NOW,
) -> SignIn | ConfirmOwnership:
    return resolve_customer(
        identity or make_identity(),
        directory=directory,
        links=links,
        store=StoreContext(key="acme", channel_id=channel_id),
        policy=policy or Policy(),
        now=now,
    )


def signed_in(decision: SignIn | ConfirmOwnership) -> SignIn:
    assert isinstance(decision, SignIn), decision
    return decision


@dataclass(frozen=True)
class Policy:
    key: str = "corp"
    jit: bool = True
    sync_email: bool = False
    link: str = "auto"
    allowed_domains: tuple[str, ...] = ()
    require_verified_email: bool = True
    customer_groups_by_group: Any = field(default_factory=dict)


def make_identity(**over: Any) -> Identity:
    values: dict[str, Any] = {
        "connection": "corp",
        "issuer": "https://idp.example",
        "subject": "u-1",
        "email": "Pat@Example.com",
        "email_verified": True,
        "first_name": "Pat",
        "last_name": "Lee",
        "groups": ("buyers",),
    }
    values.update(over)
    return Identity(**values)


def client_for(
    sandbox: Sandbox, *, deadline: float = 8.0, **store_fields: Any
) -> tuple[BigCommerceClient, str]:
    bc = sandbox.add_store("abc123", **store_fields)
    settings = StoreSettings(
        key="acme",
        store_hash=bc.store_hash,
        api_url=sandbox.url,
        access_token=bc.access_token,
        client_id=bc.client_id,
        client_secret=bc.client_secret,
        storefront_url=sandbox.storefront(bc.store_hash),
        connections=MappingProxyType({}),
        api_timeout_seconds=2.0,
    )
    return BigCommerceClient(settings, deadline_seconds=deadline), bc.store_hash


def posts(sandbox: Sandbox, store_hash: str) -> int:
    return sum(1 for r in sandbox.state.requests(store_hash) if r.method == "POST")


def test_lookup_ignores_case_even_when_the_store_does_not(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox, email_case_sensitive=True)
    existing = sandbox.state.add_customer(h, email="pat@example.com", first_name="P", last_name="L")
    found = signed_in(resolve(client, links))
    assert found.customer_id == existing["id"]
    assert found.events == ("linked",)


def test_create_sends_channel_names_and_group_then_links(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    result = signed_in(
        resolve(client, links, policy=Policy(customer_groups_by_group={"buyers": 4}))
    )
    assert result.events == ("created", "linked")
    [stored] = sandbox.state.customers(h)
    assert stored["email"] == "Pat@Example.com"
    assert (stored["channel_ids"], stored["origin_channel_id"], stored["customer_group_id"]) == (
        [1],
        1,
        4,
    )
    link = links.get_link("acme", "corp", "u-1")
    assert link is not None
    assert link.customer_id == result.customer_id


def test_a_linked_shopper_costs_no_api_call(sandbox: Sandbox, links: SQLStorage) -> None:
    client, h = client_for(sandbox)
    first = signed_in(resolve(client, links))
    sandbox.state.clear_requests(h)
    again = signed_in(resolve(client, links, now=NOW + 3600))
    assert again.customer_id == first.customer_id
    assert again.events == ("link",)
    assert sandbox.state.requests(h) == []


def test_the_link_follows_the_subject_when_the_email_changes(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    first = signed_in(resolve(client, links))
    moved = make_identity(email="pat.lee@newname.example")
    again = signed_in(resolve(client, links, identity=moved))
    assert again.customer_id == first.customer_id
    [customer] = sandbox.state.customers(h)
    assert customer["email"] == "Pat@Example.com"  # not rewritten without sync_email
    synced = signed_in(
        resolve(
            client,
            links,
            identity=make_identity(email="p@third.example"),
            policy=Policy(sync_email=True),
        )
    )
    assert "email_synced" in synced.events
    assert sandbox.state.customers(h)[0]["email"] == "p@third.example"


def test_a_link_to_a_deleted_customer_is_noticed_at_the_next_check(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    first = signed_in(resolve(client, links))
    sandbox.state.delete_customer(h, first.customer_id)
    # Within a day the link is trusted as it is (no API call); after it, checked.
    assert signed_in(resolve(client, links, now=NOW + 3600)).customer_id == first.customer_id
    later = signed_in(resolve(client, links, now=NOW + 25 * 3600))
    assert later.events == ("stale_link_removed", "created", "linked")
    assert later.customer_id != first.customer_id
    [customer] = sandbox.state.customers(h)
    assert customer["id"] == later.customer_id


def test_confirm_policy_asks_for_the_password_of_an_existing_account(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    existing = sandbox.state.add_customer(h, email="pat@example.com", first_name="P", last_name="L")
    decision = resolve(client, links, policy=Policy(link="confirm"))
    assert isinstance(decision, ConfirmOwnership)
    assert decision.customer.id == existing["id"]
    assert links.get_link("acme", "corp", "u-1") is None


def test_auto_never_hands_on_an_account_linked_to_another_person_of_the_same_idp(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, _ = client_for(sandbox)
    first = signed_in(resolve(client, links))
    newcomer = make_identity(subject="u-2")  # the address was given to someone else
    with pytest.raises(PolicyDenied, match="another person"):
        resolve(client, links, identity=newcomer)
    # Another connection asserting the same verified address may link (two IdPs).
    other_idp = make_identity(connection="other", issuer="https://other-idp.example", subject="x")
    assert signed_in(resolve(client, links, identity=other_idp)).customer_id == first.customer_id
    assert len(links.links_for_customer("acme", first.customer_id)) == 2


class RacingDirectory:
    """The real client, but another worker creates the customer just before our create."""

    def __init__(self, client: BigCommerceClient, sandbox: Sandbox, store_hash: str) -> None:
        self.client, self.sandbox, self.store_hash = client, sandbox, store_hash

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_customer(self, new: NewCustomer) -> Customer:
        self.sandbox.state.add_customer(
            self.store_hash,
            email=new.email,
            first_name="Other",
            last_name="Worker",
            channel_ids=[1],
        )
        return self.client.create_customer(new)


def test_a_422_on_create_is_followed_by_a_lookup_not_a_second_create(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    result = signed_in(resolve(RacingDirectory(client, sandbox, h), links))
    assert result.created is False
    [customer] = sandbox.state.customers(h)
    assert (customer["first_name"], customer["id"]) == ("Other", result.customer_id)
    assert posts(sandbox, h) == 1


def test_a_422_with_nobody_found_is_an_error_not_a_retry(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    # A case-sensitive store holds "PAT@EXAMPLE.COM": our lookup misses, the create gets 422.
    client, h = client_for(sandbox, email_case_sensitive=True)
    sandbox.state.add_customer(h, email="PAT@EXAMPLE.COM", first_name="P", last_name="L")
    with pytest.raises(BigCommerceUnavailable, match="could not create"):
        resolve(client, links)
    assert posts(sandbox, h) == 1
    assert len(sandbox.state.customers(h)) == 1


class FaultOnCreate:
    """The real client, with a store fault switched on for the create request only."""

    def __init__(self, client: BigCommerceClient, sandbox: Sandbox, store_hash: str, **faults: Any):
        self.client, self.sandbox, self.store_hash, self.faults = (
            client,
            sandbox,
            store_hash,
            faults,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_customer(self, new: NewCustomer) -> Customer:
        self.sandbox.state.set_faults(self.store_hash, count=1, **self.faults)
        try:
            return self.client.create_customer(new)
        finally:
            self.sandbox.state.set_faults(self.store_hash)


def test_a_5xx_on_create_is_never_retried(sandbox: Sandbox, links: SQLStorage) -> None:
    client, h = client_for(sandbox)
    with pytest.raises(BigCommerceUnavailable, match="could not create"):
        resolve(FaultOnCreate(client, sandbox, h, status=500), links)
    assert posts(sandbox, h) == 1
    assert sandbox.state.customers(h) == []


def test_a_timeout_on_create_is_followed_by_a_lookup(sandbox: Sandbox, links: SQLStorage) -> None:
    # The store creates the customer but answers after 3 s; our client gives up at 2 s.
    client, h = client_for(sandbox)
    result = signed_in(resolve(FaultOnCreate(client, sandbox, h, timeout_ms=3000), links))
    assert result.created is False
    assert posts(sandbox, h) == 1
    assert len(sandbox.state.customers(h)) == 1


def test_a_reset_create_is_never_retried(sandbox: Sandbox, links: SQLStorage) -> None:
    # The create's connection is reset: the broker cannot know whether it took effect, so it
    # looks the e-mail up instead of sending it again; nothing was created, so it says so.
    client, h = client_for(sandbox)
    with pytest.raises(BigCommerceUnavailable, match="could not create"):
        resolve(FaultOnCreate(client, sandbox, h, resets=1), links)
    assert posts(sandbox, h) == 0
    assert sandbox.state.customers(h) == []
    assert [r.method for r in sandbox.state.requests(h)] == ["GET", "GET"]


def test_rate_limit_within_the_deadline_waits_then_succeeds(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox)
    sandbox.state.set_faults(h, status=429, count=1, reset_ms=300)
    assert client.customers_by_email(["nobody@example.com"]) == []
    assert [r.status for r in sandbox.state.requests(h)] == [429, 200]


def test_rate_limit_past_the_deadline_raises_with_retry_after(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox, deadline=1.0)
    sandbox.state.set_faults(h, status=429, count=5, reset_ms=5000)
    with pytest.raises(RateLimited) as caught:
        client.customers_by_email(["nobody@example.com"])
    assert caught.value.retry_after == 6
    assert len(sandbox.state.requests(h)) == 1


def test_jit_off(sandbox: Sandbox, links: SQLStorage) -> None:
    client, h = client_for(sandbox)
    with pytest.raises(NoCustomer):
        resolve(client, links, policy=Policy(jit=False))
    assert sandbox.state.customers(h) == []


def test_an_existing_customer_needs_a_verified_email_even_if_jit_does_not(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    sandbox.state.add_customer(h, email="pat@example.com", first_name="P", last_name="L")
    with pytest.raises(PolicyDenied, match="does not confirm"):
        resolve(
            client,
            links,
            identity=make_identity(email_verified=False),
            policy=Policy(require_verified_email=False),
        )
    assert links.get_link("acme", "corp", "u-1") is None


def test_channel_specific_customer_wins_over_a_global_one(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox, channel_ids=(1, 2))
    sandbox.state.add_customer(
        h, email="pat@example.com", first_name="G", last_name="G", channel_ids=[2]
    )
    found = find_customer(client, "pat@example.com", 2)
    assert found is not None
    assert found.channel_ids == (2,)
    assert find_customer(client, "pat@example.com", 1) is None


# -- every identity belongs to its connection; writes safe under every policy ----------------


@pytest.mark.parametrize("link", ["auto", "confirm", "deny"])
def test_a_create_whose_answer_was_lost_is_ours_under_every_policy(
    sandbox: Sandbox, links: SQLStorage, link: str
) -> None:
    # The store commits the create but answers after our client gave up: the customer found
    # afterwards is the one we made, not an "existing account" for the link policy.
    client, h = client_for(sandbox)
    result = signed_in(
        resolve(FaultOnCreate(client, sandbox, h, timeout_ms=3000), links, policy=Policy(link=link))
    )
    [customer] = sandbox.state.customers(h)
    assert result.customer_id == customer["id"]
    assert "created_reconciled" in result.events
    assert links.get_link("acme", "corp", "u-1").customer_id == customer["id"]  # type: ignore[union-attr]
    assert posts(sandbox, h) == 1


class DownAfterCreate:
    """The real client; the create's answer is lost, and then the store is down for lookups."""

    def __init__(self, client: BigCommerceClient, sandbox: Sandbox, store_hash: str) -> None:
        self.client, self.sandbox, self.store_hash = client, sandbox, store_hash
        self.down = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_customer(self, new: NewCustomer) -> Customer:
        self.sandbox.state.set_faults(self.store_hash, count=1, timeout_ms=3000)
        try:
            return self.client.create_customer(new)
        finally:
            self.sandbox.state.set_faults(self.store_hash)
            self.down = True

    def customers_by_email(self, emails: Any) -> list[Customer]:
        if self.down:
            raise BigCommerceUnavailable("down", detail="test: store down after the create")
        return self.client.customers_by_email(emails)


@pytest.mark.parametrize("link", ["confirm", "deny"])
def test_an_uncertain_create_is_reconciled_at_the_next_sign_in(
    sandbox: Sandbox, links: SQLStorage, link: str
) -> None:
    client, h = client_for(sandbox)
    with pytest.raises(BigCommerceUnavailable):
        resolve(DownAfterCreate(client, sandbox, h), links, policy=Policy(link=link))
    [customer] = sandbox.state.customers(h)  # the store did commit it
    # The shopper tries again later: the account is theirs, not someone else's to refuse.
    again = signed_in(resolve(client, links, policy=Policy(link=link)))
    assert again.customer_id == customer["id"]
    assert "created_reconciled" in again.events
    assert posts(sandbox, h) == 1
    # Someone else with that e-mail at the same connection is still held to the policy.
    someone_else = make_identity(subject="u-2")
    if link == "deny":
        with pytest.raises(PolicyDenied):
            resolve(client, links, policy=Policy(link=link), identity=someone_else)
    else:
        decision = resolve(client, links, policy=Policy(link=link), identity=someone_else)
        assert isinstance(decision, ConfirmOwnership)


def test_a_customer_the_store_refused_to_create_is_not_ours(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    # Another worker creates the account between our lookup and our create: 422. That
    # account is someone else's: the link policy decides, as for any existing account.
    client, _ = client_for(sandbox)
    decision = resolve(
        RacingDirectory(client, sandbox, "abc123"), links, policy=Policy(link="confirm")
    )
    assert isinstance(decision, ConfirmOwnership)
    assert links.creation_for("acme", "pat@example.com", NOW) is None


def test_a_non_ascii_address_never_matches_an_ascii_one(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    kate = sandbox.state.add_customer(h, email="kate@example.com", first_name="K", last_name="L")
    kelvin = make_identity(email="\u212aate@example.com")  # KELVIN SIGN, casefolds to "k"
    try:
        result = resolve(client, links, identity=kelvin)
    except BigCommerceUnavailable:
        result = None  # the store may refuse the address; it must not reach Kate's account
    assert not (isinstance(result, SignIn) and result.customer_id == kate["id"])
    assert links.links_for_customer("acme", kate["id"]) == []
    assert find_customer(client, "KATE@example.com", 1).id == kate["id"]  # type: ignore[union-attr]


def test_an_unlinked_identity_is_not_linked_again_automatically(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, _ = client_for(sandbox)
    first = signed_in(resolve(client, links))
    [link] = links.links_for_customer("acme", first.customer_id)
    links.delete_link("acme", link.id, customer_id=first.customer_id)
    links.record_unlink("acme", "corp", "u-1", first.customer_id, NOW)
    with pytest.raises(PolicyDenied, match="disconnected"):
        resolve(client, links)
    assert links.links_for_customer("acme", first.customer_id) == []


def test_an_email_sync_the_store_refuses_keeps_the_old_email(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    first = signed_in(resolve(client, links))
    sandbox.state.add_customer(h, email="taken@example.com", first_name="T", last_name="T")
    moved = make_identity(email="taken@example.com")
    again = signed_in(resolve(client, links, identity=moved, policy=Policy(sync_email=True)))
    assert again.customer_id == first.customer_id
    assert "email_sync_refused" in again.events
    mine = next(c for c in sandbox.state.customers(h) if c["id"] == first.customer_id)
    assert mine["email"].lower() == "pat@example.com"


def test_two_people_racing_to_auto_link_one_account_link_one(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    existing = sandbox.state.add_customer(h, email="pat@example.com", first_name="P", last_name="L")
    start = threading.Barrier(10)
    outcomes: list[str] = []

    def sign_in(n: int) -> None:
        start.wait()
        try:
            signed_in(resolve(client, links, identity=make_identity(subject=f"p-{n}")))
            outcomes.append("linked")
        except PolicyDenied:
            outcomes.append("refused")

    threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["linked"] + ["refused"] * 9
    assert len(links.links_for_customer("acme", existing["id"])) == 1


def test_forty_concurrent_wrong_passwords_reach_the_store_five_times(
    sandbox: Sandbox, links: SQLStorage
) -> None:
    client, h = client_for(sandbox)
    sandbox.state.set_faults(h, credentials_quota=100)  # the store would answer them all
    customer = Customer.from_api(
        sandbox.state.add_customer(
            h, email="pat@example.com", first_name="P", last_name="L", password="right-one"
        )
    )

    def attempt(password: str, n: int, now: int) -> str:
        try:
            confirm_ownership(
                identity=make_identity(),
                customer=customer,
                password=password,
                client_ip=f"10.0.{now % 250}.{n}",
                directory=client,
                links=links,
                store=StoreContext(key="acme", channel_id=1),
                now=now,
            )
        except WrongPassword:
            return "wrong"
        except TooManyAttempts:
            return "locked"
        return "signed in"

    def burst(now: int) -> list[str]:
        start = threading.Barrier(40)
        outcomes: list[str] = []

        def guess(n: int) -> None:
            start.wait()
            outcomes.append(attempt(f"wrong-{n}", n, now))

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(outcomes)

    def checks() -> int:
        return sum(1 for r in sandbox.state.requests(h) if r.path.endswith("validate-credentials"))

    # Each burst of 40 gets the pace's 2 checks; the third burst only what is left of the 5.
    assert burst(NOW) == ["locked"] * 38 + ["wrong"] * 2
    assert burst(NOW + 31) == ["locked"] * 38 + ["wrong"] * 2
    assert burst(NOW + 62) == ["locked"] * 39 + ["wrong"]
    assert checks() == 5
    # The right password is locked out too, for the rest of the 15 minutes, unchecked.
    assert attempt("right-one", 1, NOW + 93) == "locked"
    assert checks() == 5
    assert attempt("right-one", 1, NOW + 15 * 60 + 1) == "signed in"
