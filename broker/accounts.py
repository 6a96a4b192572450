"""Account policy: from a verified Identity to the BigCommerce customer who signs in.

The steps, in order (DESIGN.md, flow 3):

1. :func:`check_identity` — the connection's rules on the identity itself: an e-mail is
   needed, verified unless the connection says otherwise, and inside ``allowed_domains``.
2. :func:`resolve_customer` — look the customer up by e-mail (``email:in``; compared without
   regard to case on our side; e-mail is unique per *channel*, so the customer chosen is the
   one the store's channel admits). An existing customer follows the connection's link
   policy: ``auto`` only for an e-mail the IdP asserts verified, ``deny`` never.
3. Else, when ``jit`` is on, create the customer (names from the identity with fallbacks,
   the channel, a customer group from the IdP groups). A 422 or an uncertain create
   (timeout, 5xx) is followed by one more lookup, never by a second create.

Every refusal is a typed :class:`~broker.errors.PolicyDenied`, shown as a 403 page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from broker.bigcommerce.api import Customer, CustomerConflict, NewCustomer
from broker.errors import BigCommerceUnavailable, EmailNotAllowed, NoCustomer, PolicyDenied
from broker.identity import Identity

#: BigCommerce requires a last name; an IdP that sends none gets this placeholder.
MISSING_LAST_NAME = "-"


class AccountPolicy(Protocol):
    """What account policy reads from a connection's settings (OIDC and SAML alike)."""

    @property
    def jit(self) -> bool: ...
    @property
    def link(self) -> str: ...
    @property
    def allowed_domains(self) -> tuple[str, ...]: ...
    @property
    def require_verified_email(self) -> bool: ...
    @property
    def customer_groups_by_group(self) -> Mapping[str, int]: ...


class CustomerDirectory(Protocol):
    """The store's customers: in production BigCommerceClient, in tests the same over HTTP."""

    def customers_by_email(self, emails: Iterable[str]) -> list[Customer]: ...
    def create_customer(self, new: NewCustomer) -> Customer: ...


@dataclass(frozen=True)
class Resolution:
    customer: Customer
    created: bool


def check_identity(identity: Identity, policy: AccountPolicy) -> str:
    """Apply the connection's rules to the identity; return the e-mail to look up."""
    email = identity.email
    if not email or email.count("@") != 1 or any(c.isspace() for c in email):
        raise EmailNotAllowed(
            "Your identity provider did not share a usable e-mail address, which this store "
            "needs to find your account. Ask your administrator to release the e-mail claim."
        )
    if policy.require_verified_email and not identity.email_verified:
        raise EmailNotAllowed(
            "Your identity provider does not confirm that your e-mail address is verified. "
            "Verify it with your organisation, then sign in again."
        )
    domain = identity.email_domain
    if policy.allowed_domains and domain not in policy.allowed_domains:
        raise EmailNotAllowed(
            "Sign-in through this connection is limited to certain e-mail domains, "
            "and yours is not one of them."
        )
    return email


def resolve_customer(
    identity: Identity,
    *,
    directory: CustomerDirectory,
    channel_id: int,
    policy: AccountPolicy,
) -> Resolution:
    """Find or create the customer for a checked identity (call :func:`check_identity` first)."""
    email = check_identity(identity, policy)
    existing = find_customer(directory, email, channel_id)
    if existing is not None:
        return Resolution(_admit_existing(existing, identity, policy), created=False)
    if not policy.jit:
        raise NoCustomer(
            "There is no customer account for your e-mail address in this store, and the store "
            "does not create accounts on sign-in. Contact the store to be given access."
        )
    new = NewCustomer(
        email=email,
        first_name=identity.first_name or email.split("@", 1)[0],
        last_name=identity.last_name or MISSING_LAST_NAME,
        channel_id=channel_id,
        customer_group_id=customer_group_for(identity.groups, policy.customer_groups_by_group),
    )
    try:
        return Resolution(directory.create_customer(new), created=True)
    except (CustomerConflict, BigCommerceUnavailable) as failure:
        # 422: someone created it meanwhile, or it existed under another case. A timeout or
        # 5xx: it may have been created. Either way, look again; never create twice.
        existing = find_customer(directory, email, channel_id)
        if existing is None:
            raise BigCommerceUnavailable(
                "The store could not create your account. Please try again shortly.",
                detail=f"create failed ({failure.code}) and no customer found after",
            ) from None
        return Resolution(_admit_existing(existing, identity, policy), created=False)


def find_customer(directory: CustomerDirectory, email: str, channel_id: int) -> Customer | None:
    """The customer with this e-mail whom the channel admits, if any."""
    wanted = email.casefold()
    matches = [
        c
        for c in directory.customers_by_email([email, email.lower()])
        if c.email.casefold() == wanted and c.allows_channel(channel_id)
    ]
    # A customer tied to this very channel wins over a global one.
    matches.sort(key=lambda c: (c.channel_ids is None, c.id))
    return matches[0] if matches else None


def customer_group_for(groups: Sequence[str], mapping: Mapping[str, int]) -> int | None:
    """The customer group of the first mapped IdP group, in the mapping's order."""
    present = set(groups)
    return next((group_id for name, group_id in mapping.items() if name in present), None)


def _admit_existing(customer: Customer, identity: Identity, policy: AccountPolicy) -> Customer:
    if policy.link == "deny":
        raise PolicyDenied(
            "An account with your e-mail address already exists in this store, and this store "
            "does not connect existing accounts to single sign-on. Sign in with your password, "
            "or ask the store to link your account."
        )
    if not identity.email_verified:
        raise PolicyDenied(
            "An account with your e-mail address already exists, but your identity provider "
            "does not confirm that the address is yours, so it cannot be connected."
        )
    return customer
