"""The sign-in service's steps after the upstream, with in-memory store directories.

Real storage (SQLite in memory), real account and company policy, no HTTP: what each step
writes, refuses and audits, in the order the service runs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from broker.accounts import WrongPassword
from broker.config import StoreSettings, parse_settings
from broker.errors import EmailNotAllowed, PolicyDenied
from broker.identity import Identity, UpstreamSession
from broker.signin.service import Completion, ConfirmFirst, Linked, SignedIn, SignInService
from broker.storage import SQLStorage, open_storage
from tests.doubles.directories import MemoryCompanies, MemoryDirectory, MemoryStores

NOW = 1_800_000_000


def make_store(connection: dict[str, Any] | None = None, **store: Any) -> StoreSettings:
    document = {
        "broker": {"base_url": "https://sso.example.com", "secret_key": "s" * 40},
        "stores": {
            "acme": {
                "store_hash": "abc123",
                "access_token": "token",
                "client_id": "app-client",
                "client_secret": "app-secret-" + "x" * 20,
                "storefront_url": "https://shop.example.com",
                **store,
                "connections": {
                    "corp": {
                        "type": "oidc",
                        "issuer": "https://idp.example",
                        "client_id": "broker",
                        "client_secret": "idp-secret",
                        **(connection or {}),
                    }
                },
            }
        },
    }
    return parse_settings(document, env={}).stores["acme"]


def make_identity(**over: Any) -> Identity:
    values: dict[str, Any] = {
        "connection": "corp",
        "issuer": "https://idp.example",
        "subject": "u-1",
        "email": "pat@example.com",
        "email_verified": True,
        "first_name": "Pat",
        "last_name": "Lee",
    }
    values.update(over)
    return Identity(**values)


@pytest.fixture
def storage() -> Iterator[SQLStorage]:
    storage = open_storage("sqlite://")
    yield storage
    storage.close()


@pytest.fixture
def stores() -> MemoryStores:
    directory = MemoryDirectory()
    return MemoryStores(directory=directory, companies=MemoryCompanies(directory), now=NOW)


def service(storage: SQLStorage, stores: MemoryStores) -> SignInService:
    return SignInService(storage=storage, clients=stores, clock=lambda: NOW, sleep=lambda _: None)


def completion(store: StoreSettings, **over: Any) -> Completion:
    values: dict[str, Any] = {
        "store": store,
        "conn": store.connections["corp"],
        "identity": make_identity(),
        "redirect_to": "/account.php",
        "upstream": UpstreamSession(sid="sid-1"),
        "client_ip": "203.0.113.9",
    }
    values.update(over)
    return Completion(**values)


def audit(storage: SQLStorage) -> list[tuple[str, str]]:
    return [(e.event, e.outcome) for e in reversed(storage.recent_audit("acme"))]


def test_a_new_shopper_is_created_linked_given_a_session_and_sent_to_the_storefront(
    storage: SQLStorage, stores: MemoryStores
) -> None:
    store = make_store()
    outcome = service(storage, stores).complete(completion(store))
    assert isinstance(outcome, SignedIn)
    assert outcome.events == ("created", "linked")
    url = urlsplit(outcome.landing_url)
    assert (url.netloc, url.path.startswith("/login/token/")) == ("shop.example.com", True)
    [customer] = stores.directory.customers.values()
    assert storage.get_link("acme", "corp", "u-1").customer_id == customer.id  # type: ignore[union-attr]
    assert audit(storage) == [("signin", "ok")]
    assert stores.directory.calls == ["customers_by_email", "create_customer"]


def test_a_returning_shopper_costs_no_store_call(storage: SQLStorage, stores: MemoryStores) -> None:
    store = make_store()
    service(storage, stores).complete(completion(store))
    stores.directory.calls.clear()
    outcome = service(storage, stores).complete(completion(store))
    assert isinstance(outcome, SignedIn)
    assert outcome.events == ("link",)
    assert stores.directory.calls == []


def test_an_existing_account_under_confirm_is_asked_for_then_signed_in(
    storage: SQLStorage, stores: MemoryStores
) -> None:
    store = make_store({"link": "confirm"})
    existing = stores.directory.add("pat@example.com", password="right")
    asked = service(storage, stores).complete(completion(store))
    assert isinstance(asked, ConfirmFirst)
    assert storage.get_link("acme", "corp", "u-1") is None
    record = storage.peek_pending(
        "confirm:" + __import__("hashlib").sha256(asked.key.encode()).hexdigest(), NOW
    )
    assert record is not None
    with pytest.raises(WrongPassword):
        service(storage, stores).confirm(store, record, "wrong", "203.0.113.9")
    done = service(storage, stores).confirm(store, record, "right", "203.0.113.9")
    assert done.customer_id == existing.id
    assert audit(storage) == [("link", "confirm_required"), ("link", "confirmed"), ("signin", "ok")]


def test_a_link_from_the_storefront_links_and_signs_nobody_in(
    storage: SQLStorage, stores: MemoryStores
) -> None:
    store = make_store()
    customer = stores.directory.add("someone.else@shop.example")
    outcome = service(storage, stores).complete(completion(store, link_customer_id=customer.id))
    assert outcome == Linked(customer_id=customer.id, connection="corp")
    assert storage.get_link("acme", "corp", "u-1").customer_id == customer.id  # type: ignore[union-attr]
    assert audit(storage) == [("link", "linked_from_storefront")]
    assert stores.directory.calls == []


def test_the_allowed_domains_rule_is_one_rule_for_sign_in_and_storefront_link(
    storage: SQLStorage, stores: MemoryStores
) -> None:
    store = make_store({"allowed_domains": ["corp.example"]})
    customer = stores.directory.add("pat@example.com")
    with pytest.raises(EmailNotAllowed) as at_sign_in:
        service(storage, stores).complete(completion(store))
    with pytest.raises(EmailNotAllowed) as at_link:
        service(storage, stores).complete(completion(store, link_customer_id=customer.id))
    assert at_sign_in.value.code == at_link.value.code == "email_not_allowed"
    assert storage.links_for_customer("acme", customer.id) == []


B2B = {"b2b": {"access_token": "b2b-token", "companies_by_domain": {"example.com": 7}}}


def test_the_company_step_comes_first_and_costs_no_store_call_when_it_refuses(
    storage: SQLStorage, stores: MemoryStores
) -> None:
    store = make_store(**B2B)
    with pytest.raises(PolicyDenied):
        service(storage, stores).complete(
            completion(store, identity=make_identity(email="x@nowhere.example"))
        )
    assert stores.directory.calls == []
    assert stores.companies.calls == []
    assert audit(storage) == [("signin", "policy_denied")]


def test_a_refusal_at_the_company_step_leaves_no_link_behind_and_is_audited(
    storage: SQLStorage, stores: MemoryStores
) -> None:
    # Pat's account exists and is a user of another company: the auto link the policy makes
    # must not outlive the refusal that follows.
    store = make_store({"link": "auto"}, **B2B)
    stores.companies.add_company(7)
    pat = stores.directory.add("pat@example.com")
    stores.companies.create_user(
        email="pat@example.com",
        first_name="P",
        last_name="L",
        company_id=99,
        role=2,
        company_role_id=None,
        channel_ids=[1],
    )
    with pytest.raises(PolicyDenied, match="another company"):
        service(storage, stores).complete(completion(store))
    assert storage.links_for_customer("acme", pat.id) == []
    assert audit(storage) == [("signin", "policy_denied")]
    assert storage.recent_audit("acme")[0].subject == "u-1"


def test_a_new_buyer_becomes_a_company_user_with_the_customers_own_email(
    storage: SQLStorage, stores: MemoryStores
) -> None:
    store = make_store({"link": "auto"}, **B2B)
    stores.companies.add_company(7)
    outcome = service(storage, stores).complete(completion(store))
    assert isinstance(outcome, SignedIn)
    user = stores.companies.users[outcome.customer_id]
    assert (user.company_id, user.role) == (7, 2)
    assert stores.directory.calls.count("create_customer") == 0  # created as a company user
