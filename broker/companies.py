"""B2B Edition policy: the company and role of a signed-in shopper (docs/design.md, flow 7).

With B2B Edition on, a shopper must also be a *company user* of the right company, with the
role the IdP says, or the Buyer Portal shows them nothing.

Each company brings its own IdP, so a connection may only place its users in the companies
the configuration binds to *that connection* (:func:`binding_for`):

- a connection with its own ``[stores.X.connections.Y.b2b]`` uses only those maps, and its
  ``company_claim`` is honoured only for an id the table lists;
- a connection without one uses the store-wide ``[stores.X.b2b]`` maps only where they cannot
  cross connections: all of them when the store has one connection; with several, only the
  ``companies_by_domain`` entries whose domain is one of the connection's ``allowed_domains``
  (the file refuses store-wide ``company_claim``/``companies_by_group`` then).

From the identity, within that binding:

- **company**: the claim/attribute carrying the company id (``company_claim``), else the
  e-mail domain (``companies_by_domain``, only for an e-mail the IdP asserts verified), else
  the first IdP group found in ``companies_by_group`` (in the file's order). None found:
  refuse with a page, or sign in as a plain customer (``no_company``).
- **role**: the first IdP group found in ``company_roles_by_group`` (a custom company role),
  else in ``roles_by_group`` (0 admin, 1 senior buyer, 2 junior buyer), else ``default_role``.

Then, after the customer is resolved (:mod:`broker.accounts`):

- a brand-new person is created *as a company user* (``POST /users`` creates the customer
  too) instead of through Customers V3: :class:`CompanyUserDirectory`;
- a customer who is not yet a company user is added to the company (``POST /users`` links the
  existing customer by e-mail: the *customer's* e-mail at the store, never the IdP's, which
  may belong to someone else there);
- an existing company user keeps their account; their role is brought in line with the IdP
  when ``sync_role`` is on. Refused: a user of *another* company, a company that is not
  approved (pending, rejected, inactive). Demoting a company's last admin is refused by B2B
  Edition; the sign-in goes on with the role unchanged, and the audit log says so.

**Returning buyers ask B2B Edition nothing.** B2B Edition allows 150 requests a minute for the
whole store, all integrations together. Once a sign-in has reconciled the customer with a
plan (joined, role synced or kept, or found as planned), its link keeps the plan
(:func:`plan_key`: company, role, custom role, and whether the role is synced) and the time.
A later sign-in by that link whose plan is the same, within the store's
``company_user_cache_hours``, trusts it (:func:`company_user_known`) and makes no B2B request;
a changed plan (the IdP's groups, claim or domain now say another company or role, or
``sync_role`` was switched) or an older check asks B2B Edition again, exactly as a first
sign-in does (a company user gone meanwhile, 404, is joined again). What an admin changes in
B2B Edition itself is therefore seen within ``company_user_cache_hours``; 0 asks at every
sign-in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Protocol

from broker.accounts import CustomerDirectory
from broker.bigcommerce.api import Customer, CustomerConflict, NewCustomer
from broker.bigcommerce.b2b import ROLE_NAMES, B2BRefused, Company, CompanyUser
from broker.config import B2BSettings, Connection
from broker.errors import BigCommerceUnavailable, PolicyDenied
from broker.identity import Identity
from broker.names import fallback_name
from broker.storage.model import Link


class CompanyDirectory(Protocol):
    """B2B Edition's companies and company users: in production CompanyDirectory, in unit tests an
    in-memory double."""

    def user_of_customer(self, customer_id: int) -> CompanyUser | None: ...
    def company(self, company_id: int) -> Company | None: ...
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
    ) -> tuple[int, int]: ...
    def update_role(self, user_id: int, *, role: int, company_role_id: int | None) -> None: ...


@dataclass(frozen=True)
class CompanyBinding:
    """The company maps one connection may use: nothing here names another's companies."""

    company_claim: str | None = None
    #: The ids ``company_claim`` may name (None: any, for a store with one connection).
    claimable: frozenset[int] | None = frozenset()
    companies_by_domain: Mapping[str, int] = field(default_factory=dict)
    companies_by_group: Mapping[str, int] = field(default_factory=dict)
    roles_by_group: Mapping[str, int] = field(default_factory=dict)
    company_roles_by_group: Mapping[str, int] = field(default_factory=dict)
    default_role: int = 2


def binding_for(b2b: B2BSettings, conn: Connection, *, connections: int) -> CompanyBinding:
    """What ``conn`` may use of the store's B2B configuration (see the module docstring)."""
    own = conn.b2b
    if own is not None:
        return CompanyBinding(
            company_claim=own.company_claim,
            claimable=own.allowed_companies,
            companies_by_domain=own.companies_by_domain,
            companies_by_group=own.companies_by_group,
            roles_by_group=own.roles_by_group or b2b.roles_by_group,
            company_roles_by_group=own.company_roles_by_group or b2b.company_roles_by_group,
            default_role=b2b.default_role if own.default_role is None else own.default_role,
        )
    store_wide = CompanyBinding(
        company_claim=b2b.company_claim,
        claimable=None,
        companies_by_domain=b2b.companies_by_domain,
        companies_by_group=b2b.companies_by_group,
        roles_by_group=b2b.roles_by_group,
        company_roles_by_group=b2b.company_roles_by_group,
        default_role=b2b.default_role,
    )
    if connections == 1:
        return store_wide
    # Several connections: only the domains inside this one's allowed_domains are its own.
    return replace(
        store_wide,
        company_claim=None,
        claimable=frozenset(),
        companies_by_group=MappingProxyType({}),
        companies_by_domain=MappingProxyType(
            {d: cid for d, cid in b2b.companies_by_domain.items() if d in conn.allowed_domains}
        ),
    )


@dataclass(frozen=True)
class CompanyPlan:
    """Where the IdP says this person belongs."""

    company_id: int
    role: int
    company_role_id: int | None = None

    def describe(self) -> str:
        role = (
            f"company role {self.company_role_id}"
            if self.company_role_id is not None
            else (ROLE_NAMES.get(self.role, str(self.role)))
        )
        return f"company {self.company_id}, {role}"


def plan_for(identity: Identity, b2b: CompanyBinding) -> CompanyPlan | None:
    """The company and role the identity maps to, or None when no company is found."""
    company = _company(identity, b2b)
    if company is None:
        return None
    groups = set(identity.groups)
    custom = next((rid for name, rid in b2b.company_roles_by_group.items() if name in groups), None)
    role = next((r for name, r in b2b.roles_by_group.items() if name in groups), b2b.default_role)
    return CompanyPlan(company_id=company, role=role, company_role_id=custom)


def plan_key(plan: CompanyPlan, settings: B2BSettings) -> str:
    """The plan as a link keeps it: any change of company, role, custom role or role sync
    makes another key, so the next sign-in asks B2B Edition again."""
    custom = "" if plan.company_role_id is None else str(plan.company_role_id)
    sync = "sync" if settings.sync_role else "keep"
    return f"{plan.company_id}:{plan.role}:{custom}:{sync}"


def company_user_known(
    link: Link | None, plan: CompanyPlan, settings: B2BSettings, now: int
) -> bool:
    """Whether the link's customer was reconciled with this very plan within
    ``company_user_cache_hours`` (then the sign-in makes no B2B Edition request)."""
    if link is None or link.company_checked_at is None or settings.company_user_cache_hours <= 0:
        return False
    fresh = now - link.company_checked_at < settings.company_user_cache_hours * 3600
    return fresh and link.company_plan == plan_key(plan, settings)


def refuse_without_company() -> PolicyDenied:
    return PolicyDenied(
        "This store signs in buyers of its customer companies, and your organisation is not "
        "one of them yet. Contact the store to have your company set up."
    )


def check_company_open(b2b: CompanyDirectory, plan: CompanyPlan) -> None:
    company = b2b.company(plan.company_id)
    if company is None or not company.active:
        raise PolicyDenied(
            "Your company's account in this store is not active yet (or no longer). "
            "Contact the store.",
            detail=f"company {plan.company_id}: {'missing' if company is None else company.status}",
        )


class CompanyUserDirectory:
    """The store's customers, except that a new person is created as a company user."""

    def __init__(
        self, directory: CustomerDirectory, b2b: CompanyDirectory, plan: CompanyPlan
    ) -> None:
        self._directory = directory
        self._b2b = b2b
        self._plan = plan

    def customers_by_email(self, emails: Iterable[str]) -> list[Customer]:
        return self._directory.customers_by_email(emails)

    def customers_by_id(self, ids: Iterable[int]) -> list[Customer]:
        return self._directory.customers_by_id(ids)

    def update_customer_email(self, customer_id: int, email: str) -> None:
        self._directory.update_customer_email(customer_id, email)

    def validate_credentials(self, email: str, password: str, channel_id: int) -> int | None:
        return self._directory.validate_credentials(email, password, channel_id)

    def create_customer(self, new: NewCustomer) -> Customer:
        check_company_open(self._b2b, self._plan)
        try:
            _, customer_id = self._b2b.create_user(
                email=new.email,
                first_name=new.first_name,
                last_name=new.last_name,
                company_id=self._plan.company_id,
                role=self._plan.role,
                company_role_id=self._plan.company_role_id,
                channel_ids=[new.channel_id],
            )
        except B2BRefused as refused:
            # "Email already exists" and the like: look the customer up, never create twice.
            raise CustomerConflict(
                "The store refused the new buyer.", detail=refused.detail
            ) from None
        return Customer(
            id=customer_id,
            email=new.email,
            first_name=new.first_name,
            last_name=new.last_name,
            channel_ids=(new.channel_id,),
        )


def join_company(
    b2b: CompanyDirectory,
    *,
    customer_id: int,
    directory: CustomerDirectory,
    identity: Identity,
    plan: CompanyPlan,
    settings: B2BSettings,
    channel_ids: Iterable[int],
) -> tuple[str, ...]:
    """Make the customer a user of the planned company, with the planned role; events.

    B2B Edition attaches a new company user to whoever holds the e-mail it is given, so it is
    given the signed-in customer's own, as the store knows it (``directory``), never the
    IdP's: after an e-mail change at the IdP that address may be another customer's."""
    user = b2b.user_of_customer(customer_id)
    if user is None:
        check_company_open(b2b, plan)
        found = directory.customers_by_id([customer_id])
        if not found:
            raise BigCommerceUnavailable(
                "Your account could not be found in this store. Please sign in again.",
                detail="customer vanished before joining the company",
            )
        customer = found[0]
        # The customer's own names (BigCommerce has both); the IdP's, or a fallback that
        # reads as a name, only should the store answer without one.
        first_name, last_name = fallback_name(
            email=customer.email,
            given=customer.first_name or identity.first_name,
            family=customer.last_name or identity.last_name,
        )
        try:
            b2b.create_user(
                email=customer.email,
                first_name=first_name,
                last_name=last_name,
                company_id=plan.company_id,
                role=plan.role,
                company_role_id=plan.company_role_id,
                channel_ids=list(channel_ids),
            )
        except B2BRefused as refused:
            raise PolicyDenied(
                "Your account could not be added to your company in this store. Contact the store.",
                detail=refused.detail,
            ) from None
        return ("company_joined",)
    if user.company_id != plan.company_id:
        raise PolicyDenied(
            "Your account in this store belongs to another company. Contact the store to move it.",
            detail=f"company user of {user.company_id}, IdP says {plan.company_id}",
        )
    if not settings.sync_role or (user.role, user.company_role_id) == (
        plan.role,
        plan.company_role_id,
    ):
        return ()
    try:
        b2b.update_role(user.id, role=plan.role, company_role_id=plan.company_role_id)
    except B2BRefused:
        return ("role_kept_last_admin",)  # B2B keeps a company's last admin; so do we
    return ("role_synced",)


def _company(identity: Identity, b2b: CompanyBinding) -> int | None:
    if b2b.company_claim:
        claimed = _claimed_company(identity.claims, b2b.company_claim)
        if claimed is not None and (b2b.claimable is None or claimed in b2b.claimable):
            return claimed
    domain = identity.email_domain
    # Only an address the IdP vouches for may choose a company by its domain.
    if domain and identity.email_verified and domain in b2b.companies_by_domain:
        return b2b.companies_by_domain[domain]
    groups = set(identity.groups)
    return next((cid for name, cid in b2b.companies_by_group.items() if name in groups), None)


def _claimed_company(claims: Mapping[str, object], name: str) -> int | None:
    """The company id in claim ``name``: its exact name, else the one attribute whose name
    differs only in case (SAML attribute names are written as each IdP likes)."""
    if name in claims:
        value = claims[name]
    else:
        folded = [k for k in claims if k.lower() == name.lower()]
        value = claims[folded[0]] if len(folded) == 1 else None
    if isinstance(value, list | tuple):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
