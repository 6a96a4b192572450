"""What a SCIM user does at the store (BigCommerce has no SCIM): a customer of the store's
default channel, found by e-mail or created, and linked to the connection's IdP subject so
the first SSO sign-in costs no BigCommerce call; names and e-mail kept in line; ``active:
false`` blocks sign-in through every connection of the store and ends the broker's sessions.

Linking an existing customer on the e-mail the IdP sends is what ``link = "auto"`` allows at
sign-in; with ``confirm`` or ``deny`` the SCIM user stays unlinked (``customer_id`` None) and
the shopper's first sign-in applies the connection's policy, as without SCIM.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from broker.accounts import email_key, find_customer
from broker.bigcommerce.api import BigCommerceClient, CustomerConflict, NewCustomer
from broker.config import Connection, StoreSettings
from broker.errors import BrokerError
from broker.names import fallback_name
from broker.storage.model import AlreadyExists, Storage


@dataclass(frozen=True)
class Person:
    """A SCIM user as the store sees it."""

    subject: str
    email: str | None
    first_name: str | None
    last_name: str | None
    active: bool
    #: SCIM ``name.formatted`` and ``displayName``: where a name is missing, they (or the
    #: e-mail) give one (:func:`broker.names.fallback_name`): BigCommerce requires both.
    formatted_name: str | None = None
    display_name: str | None = None

    def names(self) -> tuple[str, str]:
        """The customer's (first, last): no one can be asked, so missing parts fall back."""
        return fallback_name(
            email=self.email,
            given=self.first_name,
            family=self.last_name,
            formatted=self.formatted_name,
            display=self.display_name,
        )


class CustomerTarget:
    """The store side of one connection's SCIM users."""

    def __init__(
        self,
        *,
        storage: Storage,
        directory: BigCommerceClient,
        store: StoreSettings,
        conn: Connection,
        issuer: str,
        now: int,
    ) -> None:
        self.storage = storage
        self.directory = directory
        self.store = store
        self.conn = conn
        self.issuer = issuer
        self.now = now

    @property
    def source(self) -> str:
        return f"scim:{self.conn.key}"

    def provision(self, person: Person, customer_id: int | None) -> int | None:
        """The customer this person is (linked to their subject), found or created; None when
        the connection's link policy leaves an existing customer for the first sign-in."""
        if customer_id is None:
            customer_id = self._customer_for(person)
        if customer_id is not None:
            self._apply_state(customer_id, person.active)
        return customer_id

    def update(self, person: Person, before: Person, customer_id: int | None) -> int | None:
        """Carry name and e-mail changes to the customer, and ``active`` to the block."""
        if customer_id is None:
            return self.provision(person, None)
        names = (person.first_name, person.last_name) != (before.first_name, before.last_name)
        if names and (person.first_name or person.last_name):
            self.directory.update_customer_names(customer_id, *person.names())
        if person.email and before.email and email_key(person.email) != email_key(before.email):
            # Another customer of the channel may hold it: the link still counts.
            with contextlib.suppress(CustomerConflict):
                self.directory.update_customer_email(customer_id, person.email)
        self._apply_state(customer_id, person.active)
        return customer_id

    def deprovision(self, customer_id: int | None) -> None:
        """The SCIM user was deleted: sign-in stays blocked (the store's policy may delete the
        customer later, ``delete_after_days``)."""
        if customer_id is not None:
            self._apply_state(customer_id, active=False)

    # -- steps ------------------------------------------------------------------------------

    def _customer_for(self, person: Person) -> int | None:
        link = self.storage.get_link(self.store.key, self.conn.key, person.subject)
        if link is not None:
            return link.customer_id
        if not person.email:
            return None
        existing = find_customer(self.directory, person.email, self.store.channel_id)
        if existing is not None:
            if self.conn.link != "auto":
                return None  # the first sign-in applies the policy (confirm / deny)
            return self._link(person, existing.id)
        first_name, last_name = person.names()
        try:
            created = self.directory.create_customer(
                NewCustomer(
                    email=person.email,
                    first_name=first_name,
                    last_name=last_name,
                    channel_id=self.store.channel_id,
                )
            )
        except CustomerConflict:
            found = find_customer(self.directory, person.email, self.store.channel_id)
            if found is None or self.conn.link != "auto":
                return None
            return self._link(person, found.id)
        return self._link(person, created.id)

    def _link(self, person: Person, customer_id: int) -> int | None:
        try:
            self.storage.create_link(
                store=self.store.key,
                connection=self.conn.key,
                subject=person.subject,
                issuer=self.issuer,
                customer_id=customer_id,
                email=person.email,
                now=self.now,
            )
        except AlreadyExists:
            link = self.storage.get_link(self.store.key, self.conn.key, person.subject)
            return link.customer_id if link is not None else None
        return customer_id

    def _apply_state(self, customer_id: int, active: bool) -> None:
        if active:
            self.storage.unblock_customer(self.store.key, customer_id, source=self.source)
            return
        self.storage.block_customer(self.store.key, customer_id, source=self.source, now=self.now)
        for link in self.storage.links_for_customer(self.store.key, customer_id):
            try:
                self.storage.end_sessions(
                    self.store.key, link.connection, subject=link.subject, sid=None, now=self.now
                )
            except BrokerError:
                continue
