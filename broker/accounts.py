"""Account policy: from a verified Identity to the BigCommerce customer who signs in.

The steps, in order (docs/design.md, flow 3):

1. **A link** ``(store, connection, subject) -> customer`` decides at once, with no
   BigCommerce call. The connection is the one the identity came through, never the issuer
   it declares: one connection's IdP can never reach another connection's links. The link
   follows the IdP's subject, not the e-mail: an e-mail changed at the IdP keeps the link,
   and changes the BigCommerce e-mail only when the connection sets ``sync_email`` (when
   another customer holds the new address, the sign-in goes on with the old one, audited).
   Once in ``verify_link_after_hours`` the customer is checked to still exist (one ``id:in``
   lookup); a link to a deleted customer is removed and the sign-in goes on as unlinked.
   What a sign-in by link changes on it (its time, the IdP's e-mail, the check) is handed back
   as a :class:`~broker.storage.model.LinkTouch` for the caller to write with the rest of the
   sign-in, and only when there is something to write: a new e-mail, a check made, or a
   ``last_login_at`` older than :data:`LAST_SEEN_PRECISION_SECONDS`.
2. :func:`check_identity` — the connection's rules on the identity: an e-mail is needed,
   verified unless the connection says otherwise, and inside ``allowed_domains``.
3. **Lookup by e-mail** (``email:in``, compared by :func:`email_key`: ASCII letters without
   regard to case, every other character exactly, so no non-ASCII address matches an ASCII
   one; e-mail is unique per *channel*, so the customer chosen is the one the store's channel
   admits). A customer the broker itself set out to create for this very identity (a create
   whose answer was lost, or a concurrent sign-in's) is recognised as ours and linked, under
   every policy. Any other existing customer follows the connection's link policy:

   - ``auto``: linked at once, but only for an e-mail the IdP asserts verified, never to a
     customer already linked to another person of the same connection (e-mail addresses get
     reused; the database holds one identity per connection per customer), and never again
     after the customer unlinked this identity;
   - ``confirm``: the shopper proves ownership once with the storefront password
     (:func:`confirm_ownership`, checked by BigCommerce, attempts limited);
   - ``deny``: refused, with a page that says what to do.

4. **Just-in-time creation** when ``jit`` is on (the identity's names, the channel, a customer
   group from the IdP groups), then a link. BigCommerce requires a first and a last name:
   an identity that lacks either is not created but answered :class:`NameNeeded`, and the
   sign-in asks the shopper once (``broker.names``); their answer comes back as the identity's
   names, and the sign-in runs again. Only one sign-in at a time may
   create a given e-mail's customer, across processes (a claim in the shared storage); the
   others wait for it. Before it creates, the creator records the attempt (``creations``);
   a 422 or an uncertain create (timeout, 5xx) is followed by one more lookup, never by a
   second create, and a customer found then or at a later sign-in is reconciled as ours.

Every refusal is a typed :class:`~broker.errors.PolicyDenied`, shown as a 403 page.

What it keeps goes through narrow storage Protocols (:mod:`broker.storage.model`), never the
whole storage: :class:`AccountStore` (links, creations, the create claim, attempt counters)
for :func:`resolve_customer`, :class:`ConfirmationStore` for :func:`confirm_ownership`; the
keys come from :mod:`broker.storage.keys`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import broker.storage.keys as keys
from broker.bigcommerce.api import Customer, CustomerConflict, NewCustomer
from broker.errors import (
    BigCommerceUnavailable,
    EmailNotAllowed,
    NoCustomer,
    PolicyDenied,
    RateLimited,
    TooManyAttempts,
)
from broker.identity import Identity
from broker.names import fallback_name, has_full_name
from broker.storage.model import (
    DEFAULT_CHANNEL,
    AlreadyExists,
    CounterStore,
    Creation,
    CreationStore,
    Link,
    LinkStore,
    LinkTouch,
    OnceStore,
)

#: Wrong storefront passwords allowed per customer, and per IP address, in the window.
MAX_FAILURES_PER_CUSTOMER = 5
MAX_FAILURES_PER_IP = 20
FAILURE_WINDOW_SECONDS = 15 * 60
#: validate-credentials has a stricter limit of its own, shared by the whole store (5 per
#: 30 s in the sandbox; the real numbers are unpublished): one customer's checks are paced
#: so that one shopper's guesses never use up every other shopper's.
CHECKS_PER_CUSTOMER_PACE = 2
PACE_WINDOW_SECONDS = 30
#: How long one sign-in may hold the right to create an e-mail's customer.
CREATE_CLAIM_SECONDS = 30
#: How a concurrent sign-in of the same e-mail waits for the creator (about 8 s in all).
CREATE_WAIT_STEPS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
#: How long the broker remembers a customer it set out to create, to reconcile it as its own.
CREATION_MEMORY_SECONDS = 7 * 24 * 3600
#: A link's ``last_login_at`` is kept to within this much: a returning sign-in rewrites it only
#: when it is older (or when the e-mail changed, or the customer was just checked), so most
#: returning sign-ins write nothing on their link. Nothing decides by it; it is a record.
LAST_SEEN_PRECISION_SECONDS = 3600

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def email_key(email: str) -> str:
    """The form in which two e-mail addresses are compared: ASCII letters folded to lower
    case, nothing else changed. Unicode case folding would let ``K`` (KELVIN SIGN) match
    ``k``, so a non-ASCII address could take over an ASCII one's account."""
    return email.translate(_ASCII_LOWER)


class AccountStore(LinkStore, CreationStore, OnceStore, CounterStore, Protocol):
    """What account policy keeps: links and unlinks, creations, the create claim (one-time
    keys) and the password-attempt counters. :class:`~broker.storage.SQLStorage` is one."""


class ConfirmationStore(LinkStore, CounterStore, Protocol):
    """What :func:`confirm_ownership` keeps: the attempt budgets, then the link."""


class AccountPolicy(Protocol):
    """What account policy reads from a connection's settings (OIDC and SAML alike)."""

    @property
    def key(self) -> str: ...
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
    @property
    def sync_email(self) -> bool: ...


class CustomerDirectory(Protocol):
    """The store's customers: in production BigCommerceClient, in tests the same over HTTP."""

    def customers_by_email(self, emails: Iterable[str]) -> list[Customer]: ...
    def customers_by_id(self, ids: Iterable[int]) -> list[Customer]: ...
    def create_customer(self, new: NewCustomer) -> Customer: ...
    def update_customer_email(self, customer_id: int, email: str) -> None: ...
    def validate_credentials(self, email: str, password: str, channel_id: int) -> int | None: ...


@dataclass(frozen=True)
class StoreContext:
    """Where a sign-in happens: the store's key and channel, and how often links are checked.

    ``default_channel_id`` is the store's default channel (None: ``channel_id`` is it). Links,
    the create claim and the record of a create are per channel, since e-mails are: the
    default channel's keep the shapes they had before channels (a link's channel
    :data:`~broker.storage.model.DEFAULT_CHANNEL`, the bare e-mail key), so nothing stored
    before changes meaning."""

    key: str
    channel_id: int
    verify_link_after_seconds: int = 24 * 3600
    default_channel_id: int | None = None

    @property
    def on_default_channel(self) -> bool:
        return self.default_channel_id is None or self.channel_id == self.default_channel_id

    @property
    def link_channel(self) -> int:
        """The ``channel_id`` of this channel's links."""
        return DEFAULT_CHANNEL if self.on_default_channel else self.channel_id

    def email_scope(self, email: str) -> str:
        """The key of an e-mail's create claim and create record on this channel. Another
        channel's never meets the default's: an e-mail has no whitespace (check_identity)."""
        key = email_key(email)
        return key if self.on_default_channel else f"channel {self.channel_id} {key}"


@dataclass(frozen=True)
class SignIn:
    """Sign this customer in."""

    customer_id: int
    #: What happened on the way, for the audit log: "link", "linked", "created", "email_synced",
    #: "stale_link_removed".
    events: tuple[str, ...] = ()
    #: The link signed in by: the one followed, the one this sign-in made, or a concurrent
    #: sign-in's of the same person (None: none, as in a decision built by hand).
    link: Link | None = None
    #: What to write on ``link`` with the rest of the sign-in (None: nothing).
    touch: LinkTouch | None = None

    @property
    def created(self) -> bool:
        return "created" in self.events


@dataclass(frozen=True)
class ConfirmOwnership:
    """An existing, unlinked customer: the shopper must prove they own it first."""

    customer: Customer


@dataclass(frozen=True)
class NameNeeded:
    """A customer would be created, but the identity lacks a first or a last name, which
    BigCommerce requires: ask the shopper, then resolve again with their answer."""


Decision = SignIn | ConfirmOwnership | NameNeeded


class WrongPassword(PolicyDenied):
    """The storefront password did not match; the form is shown again."""

    status = 401
    code = "wrong_password"

    def __init__(self, *, attempts_left: int) -> None:
        super().__init__("That password is not right for this account.")
        self.attempts_left = attempts_left


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
            "Verify it with your organisation, then sign in again. If your identity provider "
            "never says so (Okta, Entra ID often do not), the store can fix it: have the IdP "
            "send email_verified, name the claim that says so (email_verified_claim; Entra ID: "
            "xms_edov), or set require_verified_email = false.",
            detail="e-mail not asserted verified (absent or false): the IdP releases "
            "email_verified; or OIDC email_verified_claim (Entra ID: xms_edov), SAML "
            "trust_email = true; or require_verified_email = false (then new customers only)",
        )
    check_domain(identity, policy)
    return email


def resolve_customer(
    identity: Identity,
    *,
    directory: CustomerDirectory,
    links: AccountStore,
    store: StoreContext,
    policy: AccountPolicy,
    now: int,
    sleep: Callable[[float], None] = time.sleep,
) -> Decision:
    """Decide who signs in (call nothing else first: this applies every rule)."""
    events: list[str] = []
    link = links.get_link(store.key, identity.connection, identity.subject, store.link_channel)
    if link is not None:
        check_domain(identity, policy)
        due = bool(store.verify_link_after_seconds) and (
            now - link.verified_at >= store.verify_link_after_seconds
        )
        if not due or directory.customers_by_id([link.customer_id]):
            followed, touch = _follow_link(link, identity, directory, policy, now, checked=due)
            return SignIn(link.customer_id, followed, link=link, touch=touch)
        links.delete_link(store.key, link.id)
        events.append("stale_link_removed")

    email = check_identity(identity, policy)
    existing = find_customer(directory, email, store.channel_id)
    if existing is None:
        if not policy.jit:
            raise NoCustomer(
                "There is no customer account for your e-mail address in this store, and the "
                "store does not create accounts on sign-in. Contact the store to be given access."
            )
        if not has_full_name(identity.first_name, identity.last_name):
            return NameNeeded()  # nothing claimed or written yet: asked first, created after
        # One creator per e-mail across every worker and host: a claim in shared storage.
        claim = keys.create_claim(store.key, store.email_scope(email))
        if links.use_once(claim, expires_at=now + CREATE_CLAIM_SECONDS, now=now):
            try:
                # The same person's other sign-in may have created, linked and let go just
                # after our lookup: its link says so without a second create.
                raced = links.get_link(
                    store.key, identity.connection, identity.subject, store.link_channel
                )
                if raced is not None:
                    return SignIn(raced.customer_id, ("link", "waited"), link=raced)
                created = _create(identity, email, directory, links, store, policy, now)
                if created is not None:
                    events.append("created")
                    linked, made = _link(identity, created.id, links, store, now)
                    return SignIn(created.id, (*events, *linked), link=made)
            finally:
                links.forget_once(claim)
            existing = find_customer(directory, email, store.channel_id)
        else:
            waited = _await_creation(identity, email, claim, directory, links, store, now, sleep)
            if isinstance(waited, SignIn):
                return waited
            existing = waited
        if existing is None:
            raise BigCommerceUnavailable(
                "The store could not create your account. Please try again shortly.",
                detail="create failed and no customer found after",
            )
    return _admit_existing(existing, identity, links, store, policy, now, events)


def _await_creation(
    identity: Identity,
    email: str,
    claim: str,
    directory: CustomerDirectory,
    links: AccountStore,
    store: StoreContext,
    now: int,
    sleep: Callable[[float], None],
) -> SignIn | Customer | None:
    """Another sign-in is creating this e-mail's customer: wait for it, costing no API call
    while it works. The same person (same subject) finds the link it made; anyone else finds
    the customer and goes through the link policy."""
    waited = 0.0
    for delay in CREATE_WAIT_STEPS:
        sleep(delay)
        waited += delay
        link = links.get_link(store.key, identity.connection, identity.subject, store.link_channel)
        if link is not None:
            return SignIn(link.customer_id, ("link", "waited"), link=link)
        if not links.seen_once(claim, now + int(waited)):
            return find_customer(directory, email, store.channel_id)
    raise BigCommerceUnavailable(
        "Your account is still being created. Please try again in a moment.",
        detail=f"gave up waiting {waited:.1f}s for a concurrent create",
    )


def confirm_ownership(
    *,
    identity: Identity,
    customer: Customer,
    password: str,
    client_ip: str | None,
    directory: CustomerDirectory,
    links: ConfirmationStore,
    store: StoreContext,
    now: int,
) -> SignIn:
    """Check the storefront password of ``customer``; on success, link and sign in.

    Attempts are limited per customer and per IP address, reserve first: an attempt is taken
    from the budget atomically before BigCommerce is asked, so any number of concurrent
    requests reach validate-credentials at most the budget's times (a check-then-count would
    let them all through). Past the limit the shopper gets a lockout page for the rest of the
    window. A right password gives the customer's budget back; an attempt the store could not
    answer (busy, down) is given back too, since nothing was checked.
    """
    budgets = [
        (attempts_key(store.key, customer.id), MAX_FAILURES_PER_CUSTOMER, FAILURE_WINDOW_SECONDS),
        (keys.confirm_pace(store.key, customer.id), CHECKS_PER_CUSTOMER_PACE, PACE_WINDOW_SECONDS),
    ]
    if client_ip:
        budgets.append(
            (keys.confirm_ip(store.key, client_ip), MAX_FAILURES_PER_IP, FAILURE_WINDOW_SECONDS)
        )
    taken: list[tuple[str, int]] = []
    for key, limit, window in budgets:
        number = links.reserve_attempt(key, limit=limit, window=window, now=now)
        if number is None:
            for reserved, _ in taken:
                links.release_attempt(reserved, now)
            if window == PACE_WINDOW_SECONDS:
                raise TooManyAttempts(
                    "Too many tries in a short time. Wait half a minute, then try again.",
                    retry_after=PACE_WINDOW_SECONDS,
                )
            raise TooManyAttempts(
                "Too many wrong passwords. For your account's safety, try again in 15 minutes, "
                "or reset your password on the store.",
                retry_after=FAILURE_WINDOW_SECONDS,
            )
        taken.append((key, number))
    try:
        checked = directory.validate_credentials(customer.email, password, store.channel_id)
    except (RateLimited, BigCommerceUnavailable):
        for reserved, _ in taken:
            links.release_attempt(reserved, now)
        raise
    if checked != customer.id:
        raise WrongPassword(attempts_left=max(0, MAX_FAILURES_PER_CUSTOMER - taken[0][1]))
    for key, _, _ in budgets[:2]:
        links.clear_failures(key)
    links.clear_unlink(store.key, identity.connection, identity.subject)
    linked, made = _link(identity, customer.id, links, store, now)
    return SignIn(customer.id, linked, link=made)


def attempts_key(store_key: str, customer_id: int) -> str:
    """The counter of a customer's password attempts on the confirmation page."""
    return keys.confirm_attempts(store_key, customer_id)


def find_customer(directory: CustomerDirectory, email: str, channel_id: int) -> Customer | None:
    """The customer with this e-mail whom the channel admits, if any."""
    wanted = email_key(email)
    matches = [
        c
        for c in directory.customers_by_email([email, wanted])
        if email_key(c.email) == wanted and c.allows_channel(channel_id)
    ]
    # A customer tied to this very channel wins over a global one.
    matches.sort(key=lambda c: (c.channel_ids is None, c.id))
    return matches[0] if matches else None


def customer_group_for(groups: Sequence[str], mapping: Mapping[str, int]) -> int | None:
    """The customer group of the first mapped IdP group, in the mapping's order."""
    present = set(groups)
    return next((group_id for name, group_id in mapping.items() if name in present), None)


def check_domain(identity: Identity, policy: AccountPolicy) -> None:
    """Refuse an e-mail outside the connection's ``allowed_domains`` (at every sign-in, and when
    an identity is linked from the storefront: one rule, one error)."""
    if policy.allowed_domains and identity.email_domain not in policy.allowed_domains:
        raise EmailNotAllowed(
            "Sign-in through this connection is limited to certain e-mail domains, "
            "and yours is not one of them."
        )


def _follow_link(
    link: Link,
    identity: Identity,
    directory: CustomerDirectory,
    policy: AccountPolicy,
    now: int,
    *,
    checked: bool,
) -> tuple[tuple[str, ...], LinkTouch | None]:
    """Sign in by the link: its events, and what to write on it (None: nothing)."""
    events = ["link"]
    email = identity.email
    changed = bool(email and link.email and email_key(email) != email_key(link.email))
    if changed and email and policy.sync_email and identity.email_verified:
        try:
            directory.update_customer_email(link.customer_id, email)
            events.append("email_synced")
        except CustomerConflict:
            # Another customer holds the new address: sign in with the old one kept (the
            # audit says so), rather than refuse every sign-in of this person.
            events.append("email_sync_refused")
    stale = link.last_login_at is None or now - link.last_login_at >= LAST_SEEN_PRECISION_SECONDS
    if not (checked or stale or email != link.email):
        return tuple(events), None
    touch = LinkTouch(link.id, seen_at=now, email=email, verified_at=now if checked else None)
    return tuple(events), touch


def _create(
    identity: Identity,
    email: str,
    directory: CustomerDirectory,
    links: CreationStore,
    store: StoreContext,
    policy: AccountPolicy,
    now: int,
) -> Customer | None:
    """Create the customer; None when the outcome is uncertain or it already exists.

    The attempt is recorded first, so that a customer the store made but whose answer was
    lost is recognised as ours when it is found (now or at a later sign-in)."""
    key = store.email_scope(email)
    earlier = links.creation_for(store.key, key, now)
    ours_before = earlier is not None and _same_identity(earlier, identity)
    if not ours_before:
        links.begin_creation(
            Creation(
                store=store.key,
                email_key=key,
                connection=identity.connection,
                subject=identity.subject,
                started_at=now,
                expires_at=now + CREATION_MEMORY_SECONDS,
            )
        )
    # Both names are there (resolve_customer asks first); the fallback only types them.
    first_name, last_name = fallback_name(
        email=email, given=identity.first_name, family=identity.last_name
    )
    new = NewCustomer(
        email=email,
        first_name=first_name,
        last_name=last_name,
        channel_id=store.channel_id,
        customer_group_id=customer_group_for(identity.groups, policy.customer_groups_by_group),
    )
    try:
        created = directory.create_customer(new)
    except CustomerConflict:
        # 422: someone else's account has this e-mail (created meanwhile, or under another
        # case): not ours, unless an earlier attempt of ours was left uncertain.
        if not ours_before:
            links.forget_creation(store.key, key)
        return None
    except BigCommerceUnavailable:
        # A timeout or 5xx: it may have been created. The record stays; the caller looks
        # again, never creates twice.
        return None
    links.finish_creation(store.key, key, created.id)
    return created


def _same_identity(creation: Creation, identity: Identity) -> bool:
    return (creation.connection, creation.subject) == (identity.connection, identity.subject)


def _admit_existing(
    customer: Customer,
    identity: Identity,
    links: AccountStore,
    store: StoreContext,
    policy: AccountPolicy,
    now: int,
    events: list[str],
) -> Decision:
    # The customer's own choice comes first: an identity they unlinked is not linked again
    # without their password, whoever created the account.
    unlinked = links.was_unlinked(store.key, identity.connection, identity.subject, customer.id)
    creation = links.creation_for(store.key, store.email_scope(customer.email), now)
    if creation is not None and _same_identity(creation, identity) and not unlinked:
        # The broker made this customer for this identity (its answer was lost, or a
        # concurrent sign-in of the same person made it): ours under every link policy.
        linked, made = _link(identity, customer.id, links, store, now)
        links.finish_creation(store.key, creation.email_key, customer.id)
        return SignIn(customer.id, (*events, "created_reconciled", *linked), link=made)
    customer_links = links.links_for_customer(store.key, customer.id)
    if not unlinked and any(
        link.connection == identity.connection and link.subject == identity.subject
        for link in customer_links
    ):
        # This very identity signs in as this customer on another channel (a customer
        # allowed on several): the same person, under every link policy.
        linked, made = _link(identity, customer.id, links, store, now)
        return SignIn(customer.id, (*events, "linked_on_another_channel", *linked), link=made)
    if policy.link == "deny":
        raise PolicyDenied(
            "An account with your e-mail address already exists in this store, and this store "
            "does not connect existing accounts to single sign-on. Sign in with your password, "
            "or ask the store to link your account."
        )
    if policy.link == "confirm":
        return ConfirmOwnership(customer)
    if not identity.email_verified:
        raise PolicyDenied(
            "An account with your e-mail address already exists, but your identity provider "
            "does not confirm that the address is yours, so it cannot be connected."
        )
    if unlinked:
        raise PolicyDenied(
            "You disconnected this sign-in from your account in this store. To use it again, "
            "sign in with your password and link it from your account page.",
            detail="identity unlinked by the customer",
        )
    same_connection = [
        link
        for link in customer_links
        if link.connection == identity.connection and link.subject != identity.subject
    ]
    if same_connection:
        raise _taken_by_another_person()
    linked, made = _link(identity, customer.id, links, store, now)
    return SignIn(customer.id, (*events, *linked), link=made)


def _taken_by_another_person() -> PolicyDenied:
    # The address once belonged to someone else at this IdP: never hand their account on.
    return PolicyDenied(
        "The account with your e-mail address is already connected to another person's "
        "sign-in at your identity provider. Contact the store to sort it out.",
        detail="customer linked to another subject of this connection",
    )


def _link(
    identity: Identity, customer_id: int, links: LinkStore, store: StoreContext, now: int
) -> tuple[tuple[str, ...], Link]:
    """Link the identity to the customer; the events and the link. The database holds one link
    per identity and one identity per connection per customer, so of two racing sign-ins one
    wins: the same person finds their own link, another person is refused."""
    try:
        made = links.create_link(
            store=store.key,
            connection=identity.connection,
            subject=identity.subject,
            issuer=identity.issuer,
            customer_id=customer_id,
            email=identity.email,
            now=now,
            channel_id=store.link_channel,
        )
    except AlreadyExists:
        mine = links.get_link(store.key, identity.connection, identity.subject, store.link_channel)
        if mine is not None and mine.customer_id == customer_id:
            return (), mine  # a concurrent sign-in of the same person linked it first
        if mine is not None:
            raise PolicyDenied(
                "This sign-in is already connected to another account in this store. "
                "Contact the store to sort it out.",
                detail="identity linked to another customer meanwhile",
            ) from None
        raise _taken_by_another_person() from None
    return ("linked",), made
