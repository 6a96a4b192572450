"""In-memory doubles of the store's directories, for unit tests of the steps after resolve.

They keep BigCommerce's rules that the steps depend on (one e-mail per channel, 422 on a
duplicate, B2B Edition attaching a new company user to whoever holds the e-mail) and record
every call, so a test can say "no store request was made".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from broker.bigcommerce.api import Customer, CustomerConflict, NewCustomer
from broker.bigcommerce.b2b import APPROVED, B2BRefused, Company, CompanyUser
from broker.config import StoreSettings


@dataclass
class MemoryDirectory:
    """The store's customers (CustomerDirectory)."""

    customers: dict[int, Customer] = field(default_factory=dict)
    passwords: dict[int, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, email: str, *, password: str | None = None, channel: int = 1) -> Customer:
        customer = Customer(next(self._ids), email, "Pat", "Lee", (channel,))
        self.customers[customer.id] = customer
        if password is not None:
            self.passwords[customer.id] = password
        return customer

    def customers_by_email(self, emails: Iterable[str]) -> list[Customer]:
        self.calls.append("customers_by_email")
        wanted = {e.lower() for e in emails}
        return [c for c in self.customers.values() if c.email.lower() in wanted]

    def customers_by_id(self, ids: Iterable[int]) -> list[Customer]:
        self.calls.append("customers_by_id")
        return [self.customers[i] for i in ids if i in self.customers]

    def create_customer(self, new: NewCustomer) -> Customer:
        self.calls.append("create_customer")
        if any(c.email.lower() == new.email.lower() for c in self.customers.values()):
            raise CustomerConflict("taken", detail="422")
        customer = Customer(
            next(self._ids), new.email, new.first_name, new.last_name, (new.channel_id,)
        )
        self.customers[customer.id] = customer
        return customer

    def update_customer_email(self, customer_id: int, email: str) -> None:
        self.calls.append("update_customer_email")
        self.customers[customer_id] = replace(self.customers[customer_id], email=email)

    def validate_credentials(self, email: str, password: str, channel_id: int) -> int | None:
        self.calls.append("validate_credentials")
        for customer in self.customers.values():
            if customer.email.lower() == email.lower():
                return customer.id if self.passwords.get(customer.id) == password else None
        return None


@dataclass
class MemoryCompanies:
    """B2B Edition's companies and company users (CompanyDirectory)."""

    directory: MemoryDirectory
    companies: dict[int, Company] = field(default_factory=dict)
    users: dict[int, CompanyUser] = field(default_factory=dict)  # by customer id
    calls: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_company(self, company_id: int, status: int = APPROVED) -> None:
        self.companies[company_id] = Company(company_id, f"Company {company_id}", status)

    def user_of_customer(self, customer_id: int) -> CompanyUser | None:
        self.calls.append("user_of_customer")
        return self.users.get(customer_id)

    def company(self, company_id: int) -> Company | None:
        self.calls.append("company")
        return self.companies.get(company_id)

    def create_user(
        self,
        *,
        email: str,
        first_name: str,
        last_name: str,
        company_id: int,
        role: int,
        company_role_id: int | None,
        channel_ids: Sequence[int],
    ) -> tuple[int, int]:
        self.calls.append("create_user")
        holder = next(
            (c for c in self.directory.customers.values() if c.email.lower() == email.lower()),
            None,
        )
        if holder is None:
            holder = self.directory.add(email, channel=channel_ids[0])
        if holder.id in self.users:
            raise B2BRefused("Email already exists")
        user = CompanyUser(next(self._ids), company_id, holder.id, role, company_role_id)
        self.users[holder.id] = user
        return user.id, holder.id

    def update_role(self, user_id: int, *, role: int, company_role_id: int | None) -> None:
        self.calls.append("update_role")
        for customer_id, user in self.users.items():
            if user.id == user_id:
                self.users[customer_id] = replace(user, role=role, company_role_id=company_role_id)


@dataclass
class MemoryStores:
    """What the sign-in service asks of the runtime (StoreClients), in memory."""

    directory: MemoryDirectory
    companies: MemoryCompanies
    now: int

    def store_api(self, store_key: str) -> MemoryDirectory:
        return self.directory

    def b2b_api(self, store_key: str) -> MemoryCompanies:
        return self.companies

    def now_for_store(self, store: StoreSettings) -> int:
        return self.now
