"""A test sign-in from the admin: what a real sign-in through a connection would do, without
doing it. The merchant signs in at their IdP in a new tab; the broker shows the identity it
received (which claim became the e-mail, the names, the groups), the customer it would resolve
to and why, and the customer group; it links nothing, creates nothing, mints no login JWT and
starts no session. Read-only: the same rules as :func:`broker.accounts.resolve_customer`, in
the same order, stopping before any write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.accounts import (
    CustomerDirectory,
    check_domain,
    check_identity,
    customer_group_for,
    find_customer,
)
from broker.config import Connection, StoreSettings
from broker.errors import BrokerError
from broker.identity import Identity
from broker.names import has_full_name
from broker.storage.model import LinkStore

#: Claims shown to the merchant: enough to see a mapping, bounded so a page stays readable.
MAX_CLAIMS = 60


@dataclass(frozen=True)
class TrialReport:
    identity: Identity
    outcome: str  # signin | link | confirm | create | refuse
    reason: str
    customer_id: int | None = None
    customer_group: int | None = None
    claims: Mapping[str, str] = field(default_factory=dict)


def explain(
    identity: Identity,
    *,
    store: StoreSettings,
    conn: Connection,
    channel_id: int,
    link_channel: int,
    directory: CustomerDirectory,
    links: LinkStore,
) -> TrialReport:
    claims = {k: _short(v) for k, v in list(identity.claims.items())[:MAX_CLAIMS]}
    group = customer_group_for(identity.groups, conn.customer_groups_by_group)

    def report(outcome: str, reason: str, customer_id: int | None = None) -> TrialReport:
        return TrialReport(identity, outcome, reason, customer_id, group, claims)

    link = links.get_link(store.key, conn.key, identity.subject, link_channel)
    if link is not None:
        try:
            check_domain(identity, conn)
        except BrokerError as error:
            return report("refuse", error.message)
        return report(
            "signin", f"this identity is linked to customer {link.customer_id}", link.customer_id
        )
    try:
        email = check_identity(identity, conn)
        existing = find_customer(directory, email, channel_id)
    except BrokerError as error:
        return report("refuse", error.message)
    if existing is None:
        if conn.jit:
            reason = f"no customer has {email} on this channel: one is created"
            if not has_full_name(identity.first_name, identity.last_name):
                reason += ", once the shopper gives the first and last name the IdP did not send"
            return report("create", reason)
        return report("refuse", f"no customer has {email}, and jit is off for this connection")
    if conn.link == "auto":
        return report(
            "link",
            f"customer {existing.id} has this e-mail; link = auto links them on first sign-in",
            existing.id,
        )
    if conn.link == "confirm":
        return report(
            "confirm",
            f"customer {existing.id} has this e-mail; link = confirm asks for their store "
            "password once",
            existing.id,
        )
    return report(
        "refuse", f"customer {existing.id} has this e-mail, and link = deny refuses", existing.id
    )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 300 else text[:300] + "…"
