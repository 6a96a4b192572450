"""Account policy against the sandbox store over HTTP, with the real BigCommerce client.

The races are played for real: another "worker" creates the customer at the store between our
lookup and our create, and the store's 422 must lead to a lookup, never a second create.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pytest

from broker.accounts import find_customer, resolve_customer
from broker.bigcommerce.api import BigCommerceClient, Customer, NewCustomer
from broker.config import StoreSettings
from broker.errors import BigCommerceUnavailable, NoCustomer, PolicyDenied, RateLimited
from broker.identity import Identity
from tests.conftest import Sandbox


@dataclass(frozen=True)
class Policy:
    jit: bool = True
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


def test_lookup_ignores_case_even_when_the_store_does_not(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox, email_case_sensitive=True)
    sandbox.state.add_customer(h, email="pat@example.com", first_name="P", last_name="L")
    found = resolve_customer(make_identity(), directory=client, channel_id=1, policy=Policy())
    assert found.created is False
    assert found.customer.email == "pat@example.com"


def test_create_sends_channel_names_and_group(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox)
    policy = Policy(customer_groups_by_group={"buyers": 4})
    result = resolve_customer(make_identity(), directory=client, channel_id=1, policy=policy)
    assert result.created is True
    [stored] = sandbox.state.customers(h)
    assert stored["email"] == "Pat@Example.com"
    assert (stored["channel_ids"], stored["origin_channel_id"], stored["customer_group_id"]) == (
        [1],
        1,
        4,
    )


class RacingDirectory:
    """The real client, but another worker creates the customer just before our create."""

    def __init__(self, client: BigCommerceClient, sandbox: Sandbox, store_hash: str) -> None:
        self.client, self.sandbox, self.store_hash = client, sandbox, store_hash

    def customers_by_email(self, emails: Iterable[str]) -> list[Customer]:
        return self.client.customers_by_email(emails)

    def create_customer(self, new: NewCustomer) -> Customer:
        self.sandbox.state.add_customer(
            self.store_hash,
            email=new.email,
            first_name="Other",
            last_name="Worker",
            channel_ids=[1],
        )
        return self.client.create_customer(new)


def test_a_422_on_create_is_followed_by_a_lookup_not_a_second_create(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox)
    racing = RacingDirectory(client, sandbox, h)
    result = resolve_customer(make_identity(), directory=racing, channel_id=1, policy=Policy())
    assert result.created is False
    assert result.customer.first_name == "Other"
    assert len(sandbox.state.customers(h)) == 1
    assert posts(sandbox, h) == 1


def test_a_422_with_nobody_found_is_an_error_not_a_retry(sandbox: Sandbox) -> None:
    # A case-sensitive store holds "PAT@example.com": our lookup misses, the create gets 422.
    client, h = client_for(sandbox, email_case_sensitive=True)
    sandbox.state.add_customer(h, email="PAT@EXAMPLE.COM", first_name="P", last_name="L")
    with pytest.raises(BigCommerceUnavailable, match="could not create"):
        resolve_customer(make_identity(), directory=client, channel_id=1, policy=Policy())
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

    def customers_by_email(self, emails: Iterable[str]) -> list[Customer]:
        return self.client.customers_by_email(emails)

    def create_customer(self, new: NewCustomer) -> Customer:
        self.sandbox.state.set_faults(self.store_hash, count=1, **self.faults)
        try:
            return self.client.create_customer(new)
        finally:
            self.sandbox.state.set_faults(self.store_hash)


def test_a_5xx_on_create_is_never_retried(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox)
    directory = FaultOnCreate(client, sandbox, h, status=500)
    with pytest.raises(BigCommerceUnavailable, match="could not create"):
        resolve_customer(make_identity(), directory=directory, channel_id=1, policy=Policy())
    assert posts(sandbox, h) == 1
    assert sandbox.state.customers(h) == []


def test_a_timeout_on_create_is_followed_by_a_lookup(sandbox: Sandbox) -> None:
    # The store creates the customer but answers after 3 s; our client gives up at 2 s.
    client, h = client_for(sandbox)
    directory = FaultOnCreate(client, sandbox, h, timeout_ms=3000)
    result = resolve_customer(make_identity(), directory=directory, channel_id=1, policy=Policy())
    assert result.created is False
    assert posts(sandbox, h) == 1
    assert len(sandbox.state.customers(h)) == 1


def test_rate_limit_within_the_deadline_waits_then_succeeds(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox)
    sandbox.state.set_faults(h, status=429, count=1, reset_ms=300)
    assert client.customers_by_email(["nobody@example.com"]) == []
    statuses = [r.status for r in sandbox.state.requests(h)]
    assert statuses == [429, 200]


def test_rate_limit_past_the_deadline_raises_with_retry_after(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox, deadline=1.0)
    sandbox.state.set_faults(h, status=429, count=5, reset_ms=5000)
    with pytest.raises(RateLimited) as caught:
        client.customers_by_email(["nobody@example.com"])
    assert caught.value.retry_after == 6
    assert len(sandbox.state.requests(h)) == 1


def test_jit_off(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox)
    with pytest.raises(NoCustomer):
        resolve_customer(make_identity(), directory=client, channel_id=1, policy=Policy(jit=False))
    assert sandbox.state.customers(h) == []


def test_an_existing_customer_needs_a_verified_email_even_if_jit_does_not(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox)
    sandbox.state.add_customer(h, email="pat@example.com", first_name="P", last_name="L")
    policy = Policy(require_verified_email=False)
    with pytest.raises(PolicyDenied, match="does not confirm"):
        resolve_customer(
            make_identity(email_verified=False), directory=client, channel_id=1, policy=policy
        )


def test_channel_specific_customer_wins_over_a_global_one(sandbox: Sandbox) -> None:
    client, h = client_for(sandbox, channel_ids=(1, 2))
    sandbox.state.add_customer(
        h, email="pat@example.com", first_name="G", last_name="G", channel_ids=[2]
    )
    found = find_customer(client, "pat@example.com", 2)
    assert found is not None
    assert found.channel_ids == (2,)
    assert find_customer(client, "pat@example.com", 1) is None
