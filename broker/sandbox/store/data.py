"""One sandbox store's data, and the changes that cross its concerns.

No IO, no framework, no lock (:class:`~broker.sandbox.store.state.SandboxState` holds the
lock while any of this runs). :class:`StoreData` gathers what each concern keeps: customers
(:mod:`~broker.sandbox.store.customers`), storefront sessions
(:mod:`~broker.sandbox.store.login`), webhooks (:mod:`~broker.sandbox.store.hooks`), fault
switches and rate windows (:mod:`~broker.sandbox.store.faults`), B2B Edition's book
(:mod:`broker.sandbox.b2b`), the request log, and the app side: control-panel users and
installs (:mod:`~broker.sandbox.store.installs`), scripts
(:mod:`~broker.sandbox.store.scripts`) and customer groups
(:mod:`~broker.sandbox.store.groups`). The functions here are where one concern's
change reaches the others, as on BigCommerce (``docs/bigcommerce-api.md``, "Webhooks" and
"B2B Edition"): a customer created, changed or deleted through an API is announced to the
store's hooks; a deleted customer's storefront sessions end and its company user goes; B2B
Edition creates and changes BigCommerce customers (:class:`Directory`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from broker.sandbox import b2b
from broker.sandbox.store import customers, hooks, login
from broker.sandbox.store.customers import CustomerBook
from broker.sandbox.store.faults import Faults, RateWindow
from broker.sandbox.store.groups import GroupBook
from broker.sandbox.store.hooks import HookBook
from broker.sandbox.store.installs import StoreApps
from broker.sandbox.store.login import LoginBook
from broker.sandbox.store.model import (
    JSONDict,
    RecordedRequest,
    SandboxStore,
    copy_json,
    default_channel,
)
from broker.sandbox.store.scripts import ScriptBook
from broker.sandbox.store.v3 import ApiError


@dataclass
class StoreData:
    """Everything one fake store holds."""

    settings: SandboxStore
    customers: CustomerBook = field(default_factory=CustomerBook)
    login: LoginBook = field(default_factory=LoginBook)
    hooks: HookBook = field(default_factory=HookBook)
    b2b_book: b2b.B2BBook = field(default_factory=b2b.B2BBook)
    faults: Faults = field(default_factory=Faults)
    api_window: RateWindow = field(default_factory=RateWindow)
    credentials_window: RateWindow = field(default_factory=RateWindow)
    b2b_window: RateWindow = field(default_factory=RateWindow)  # B2B Edition's own quota
    requests: list[RecordedRequest] = field(default_factory=list)
    apps: StoreApps = field(default_factory=StoreApps)  # control-panel users, installed apps
    scripts: ScriptBook = field(default_factory=ScriptBook)
    groups: GroupBook = field(default_factory=GroupBook)

    @classmethod
    def empty(cls, settings: SandboxStore) -> StoreData:
        """A new, empty store with these settings (and its owner, control-panel user 1)."""
        book = b2b.B2BBook(approved_companies_only=settings.b2b_approved_companies_only)
        apps = StoreApps.for_store(settings.store_hash)
        return cls(settings=settings, b2b_book=book, apps=apps)


def announce(st: StoreData, scope: str, customer: JSONDict, now: float) -> None:
    """Notify the hooks that a customer was created or updated (``scope``)."""
    data = customers.event_data(st.settings, customer)
    hooks.raise_event(st.hooks, st.settings.store_hash, scope, data, now)


def remove_customers(st: StoreData, ids: Iterable[int], now: float) -> None:
    """Delete the customers that exist, notify the hooks, end their storefront sessions and
    remove their company users (a company left with no admin becomes inactive)."""
    removed = customers.remove(st.customers, ids)
    for customer_id in removed:
        data = {"type": "customer", "id": customer_id}
        hooks.raise_event(st.hooks, st.settings.store_hash, hooks.CUSTOMER_DELETED, data, now)
    login.end_sessions_of(st.login, removed)
    b2b.customers_removed(st.b2b_book, removed, now)


class Directory:
    """One store's customers as B2B Edition reaches them (a b2b.CustomerDirectory).

    Customers it creates or changes notify the store's hooks, as BigCommerce's do.
    """

    def __init__(self, st: StoreData, now: float) -> None:
        self._st = st
        self._now = now

    @property
    def channel_ids(self) -> tuple[int, ...]:
        return self._st.settings.channel_ids

    @property
    def default_channel(self) -> int:
        return default_channel(self._st.settings)

    def channel_name(self, channel_id: int) -> str:
        name = self._st.settings.name
        return name if channel_id == self.default_channel else f"{name} (channel {channel_id})"

    def customer(self, customer_id: int) -> JSONDict | None:
        found = self._st.customers.records.get(customer_id)
        return copy_json(found) if found is not None else None

    def find_customer(self, email: str, channel_ids: list[int]) -> JSONDict | None:
        found = customers.find_by_email(self._st.customers, email, channel_ids)
        return copy_json(found) if found is not None else None

    def create_customer(self, values: JSONDict) -> JSONDict:
        st = self._st
        try:
            created = customers.create(st.customers, st.settings, [values], self._now)[0]
        except ApiError as exc:
            raise b2b.DirectoryRefused(_refusal(exc)) from None
        announce(st, hooks.CUSTOMER_CREATED, created, self._now)
        return copy_json(created)

    def update_customer(self, customer_id: int, values: JSONDict) -> JSONDict:
        st = self._st
        changes = [{**values, "id": customer_id}]
        try:
            updated = customers.update(st.customers, st.settings, changes, self._now)[0]
        except ApiError as exc:
            raise b2b.DirectoryRefused(_refusal(exc)) from None
        announce(st, hooks.CUSTOMER_UPDATED, updated, self._now)
        return copy_json(updated)


def _refusal(error: ApiError) -> str:
    details = "; ".join(f"{k.split('.')[-1]}: {v}" for k, v in error.errors.items())
    return f"{error.title} ({details})" if details else error.title
