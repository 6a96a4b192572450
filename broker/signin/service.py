"""The one sequence every sign-in runs, OIDC and SAML alike (as Dex's ``finalizeLogin``).

:meth:`SignInService.complete` takes what an upstream verified (an :class:`Identity`, the
upstream session for logout) and the flow it belongs to, and runs, in this order:

1. **a link from the storefront** (the flow says which signed-in customer asked): the identity
   is linked to that customer, and that is all;
2. **the company step** (B2B Edition): where the connection may place this identity, or a
   refusal when it names no company of its own (``broker.companies``);
3. **resolve the customer** (``broker.accounts``): a link, a lookup, a just-in-time create
   (as a company user with B2B Edition), or a step the shopper must take first: confirm an
   existing account with its password (:class:`ConfirmFirst`), or give the first and last name
   a new customer needs and the IdP did not send (:class:`AskName`, then
   :meth:`SignInService.give_name` runs the sequence again with them). Both steps are kept the
   same way: server-side, under a random key the browser's session holds, single use;
4. **join the company** with the planned role (no B2B request for a customer reconciled with
   the same plan lately); a refusal here undoes a link this very sign-in wrote, so a refused
   sign-in leaves nothing behind;
5. **the broker session**, kept in one transaction with **the audit** of what happened and
   what changed on the link (:meth:`~broker.storage.model.SignInStore.record_sign_in`), then
   **the login JWT** (last: it lives 30 seconds). Refusals are audited too, on their own.

Steps are an explicit sequence, not a plugin chain: they are few, fixed and order-sensitive.
Nothing here imports Flask; the web layer turns the outcome into a response.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from broker.accounts import (
    ConfirmOwnership,
    CustomerDirectory,
    Decision,
    NameNeeded,
    SignIn,
    StoreContext,
    check_domain,
    confirm_ownership,
    resolve_customer,
)
from broker.bigcommerce.api import Customer
from broker.bigcommerce.login_token import mint_login_token, storefront_login_url
from broker.companies import (
    CompanyDirectory,
    CompanyPlan,
    CompanyUserDirectory,
    binding_for,
    company_user_known,
    join_company,
    plan_for,
    plan_key,
    refuse_without_company,
)
from broker.config import Channel, Connection, StoreSettings
from broker.errors import AccessRevoked, BrokerError, PolicyDenied, StorageError
from broker.events import log_event
from broker.identity import Identity, UpstreamSession
from broker.signin.channels import channel_for
from broker.signin.sessions import new_session, with_status_token
from broker.storage import AlreadyExists, AuditEntry, LinkTouch, Storage, keys
from broker.storage.model import StaffSighting

#: How long a shopper has to enter their password on the confirmation page (or their name).
CONFIRM_TTL_SECONDS = 600
#: The kinds of pending step (the record's ``step``; a record without one is a confirmation).
STEP_CONFIRM = "confirm"
STEP_NAME = "name"


class StoreClients(Protocol):
    """The store-side clients the service needs (the runtime provides them)."""

    def store_api(self, store_key: str) -> CustomerDirectory: ...
    def b2b_api(self, store_key: str) -> CompanyDirectory: ...
    def now_for_store(self, store: StoreSettings) -> int: ...


@dataclass(frozen=True)
class SignedIn:
    """Send the browser to ``landing_url`` (the storefront's login-token URL) with the broker
    session cookie ``session_cookie``."""

    landing_url: str
    session_cookie: str
    customer_id: int
    events: tuple[str, ...]


@dataclass(frozen=True)
class ConfirmFirst:
    """Ask the shopper to confirm an existing account; ``key`` names the pending confirmation
    (kept in the browser's session, never in a URL)."""

    key: str


@dataclass(frozen=True)
class AskName:
    """Ask the shopper's first and last name before their customer is created; ``key`` names
    the pending sign-in (kept in the browser's session, never in a URL), as for
    :class:`ConfirmFirst`."""

    key: str


@dataclass(frozen=True)
class Linked:
    """A storefront customer linked this identity to their account."""

    customer_id: int
    connection: str


Outcome = SignedIn | ConfirmFirst | AskName | Linked


@dataclass(frozen=True)
class Completion:
    """What the web layer hands over once an upstream has verified an identity."""

    store: StoreSettings
    conn: Connection
    identity: Identity
    redirect_to: str
    upstream: UpstreamSession
    client_ip: str | None
    #: Set when a signed-in storefront customer links this IdP identity to their account.
    link_customer_id: int | None = None
    #: The channel the sign-in is for (None: the store's default channel).
    channel_id: int | None = None

    @property
    def channel(self) -> Channel:
        """The sign-in's channel, as the store has it now; NotFound when the store no longer
        has it or the connection is no longer offered there (the settings changed since the
        sign-in started)."""
        return channel_for(self.store, self.conn, self.channel_id)


class SignInService:
    """Runs the steps; one per app (it holds nothing per request)."""

    def __init__(
        self,
        *,
        storage: Storage,
        clients: StoreClients,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.storage = storage
        self.clients = clients
        self.clock = clock
        self.sleep = sleep

    # -- the sequence -----------------------------------------------------------------------

    def complete(self, done: Completion) -> Outcome:
        """Finish a sign-in (or a link from the storefront) whose identity was verified."""
        try:
            done.channel  # noqa: B018 - refuses a channel the store no longer offers
            if done.link_customer_id is not None:
                return self._link_from_storefront(done, done.link_customer_id)
            plan = self.company_plan(done.store, done.conn, done.identity)
            decision = self._resolve(done, plan)
            if isinstance(decision, ConfirmOwnership):
                return self._ask_confirmation(done, decision.customer)
            if isinstance(decision, NameNeeded):
                return self._ask_name(done)
            return self._sign_in(done, decision, plan)
        except BrokerError as refused:
            self._audit(done.store, "signin", refused.code, done, detail=refused.detail)
            raise

    def give_name(
        self,
        store: StoreSettings,
        record: Mapping[str, Any],
        first_name: str,
        last_name: str,
        client_ip: str | None,
    ) -> Outcome:
        """The names the shopper gave for the sign-in a pending :class:`AskName` step holds
        (checked by :func:`broker.names.entered_name`, the step already taken: single use):
        the whole sequence again with them, so every rule applies as at first (a customer
        created meanwhile is found, not created twice)."""
        done = _completion_of(store, record, client_ip)
        named = replace(done.identity, first_name=first_name, last_name=last_name)
        return self.complete(replace(done, identity=named))

    def confirm(
        self, store: StoreSettings, record: Mapping[str, Any], password: str, client_ip: str | None
    ) -> SignedIn:
        """The shopper's password for the account a pending confirmation names: right, and the
        identity is linked and signed in; wrong, :class:`~broker.accounts.WrongPassword`."""
        conn = store.connections[record["connection"]]
        done = _completion_of(store, record, client_ip)
        customer = Customer.from_api(record["customer"])
        decision = confirm_ownership(
            identity=done.identity,
            customer=customer,
            password=password,
            client_ip=client_ip,
            directory=self.clients.store_api(store.key),
            links=self.storage,
            store=store_context(store, done.channel.id),
            now=self._now(),
        )
        self._audit(store, "link", "confirmed", done, customer_id=customer.id)
        return self._sign_in(done, decision, self.company_plan(store, conn, done.identity))

    def company_plan(
        self, store: StoreSettings, conn: Connection, identity: Identity
    ) -> CompanyPlan | None:
        """With B2B Edition on: the company and role within what this connection may reach,
        or a refusal when none is found (``no_company = "refuse"``)."""
        if store.b2b is None:
            return None
        binding = binding_for(store.b2b, conn, connections=len(store.connections))
        plan = plan_for(identity, binding)
        if plan is None and store.b2b.no_company == "refuse":
            raise refuse_without_company()
        return plan

    # -- the steps --------------------------------------------------------------------------

    def _resolve(self, done: Completion, plan: CompanyPlan | None) -> Decision:
        directory: CustomerDirectory = self.clients.store_api(done.store.key)
        if plan is not None:
            directory = CompanyUserDirectory(directory, self.clients.b2b_api(done.store.key), plan)
        return resolve_customer(
            done.identity,
            directory=directory,
            links=self.storage,
            store=store_context(done.store, done.channel.id),
            policy=done.conn,
            now=self._now(),
            sleep=self.sleep,
        )

    def _sign_in(self, done: Completion, decision: SignIn, plan: CompanyPlan | None) -> SignedIn:
        link = decision.link
        blocked = None if link is None else link.blocked  # read with the link, if by a link
        if blocked is None:
            blocked = self.storage.is_blocked(done.store.key, decision.customer_id)
        if blocked:
            # Deprovisioned through some connection's SCIM: no connection signs them in.
            raise AccessRevoked(
                "Your organisation has removed your access to this store. If this is a "
                "mistake, ask your administrator.",
                detail=f"customer {decision.customer_id} blocked",
            )
        decision, audit = self._join_company(done, decision, plan)
        store, channel = done.store, done.channel
        session = new_session(
            store=store,
            conn=done.conn,
            identity=done.identity,
            customer_id=decision.customer_id,
            upstream=done.upstream,
            now=self._now(),
        )
        audit.append(
            self._entry(
                store,
                "signin",
                "ok",
                done,
                customer_id=decision.customer_id,
                detail=",".join(decision.events),
            )
        )
        # The session, the audit rows and the link's changes: one transaction, all or nothing.
        self.storage.record_sign_in(session=session.record, audit=audit, touch=decision.touch)
        self._note_staff_groups(done)
        redirect_to = done.redirect_to
        if store.follow_idp_logout:
            redirect_to = with_status_token(redirect_to, session.status_token)
        token = mint_login_token(
            client_id=store.client_id,
            client_secret=store.client_secret,
            store_hash=store.store_hash,
            customer_id=decision.customer_id,
            channel_id=channel.id,
            redirect_to=redirect_to,
            now=self.clients.now_for_store(store),
            jti=str(uuid.uuid4()),
            request_ip=done.client_ip if store.bind_request_ip else None,
        )
        log_event(
            "signin.ok",
            store=store.key,
            connection=done.conn.key,
            customer_id=decision.customer_id,
            created=decision.created,
            events=list(decision.events),
        )
        return SignedIn(
            landing_url=storefront_login_url(channel.storefront_url, token),
            session_cookie=session.cookie,
            customer_id=decision.customer_id,
            events=decision.events,
        )

    def _join_company(
        self, done: Completion, decision: SignIn, plan: CompanyPlan | None
    ) -> tuple[SignIn, list[AuditEntry]]:
        """Make the signed-in customer the company user the IdP says (B2B Edition only); the
        decision (with the plan to keep on its link) and the audit rows to write. A customer
        reconciled with this plan lately asks B2B Edition nothing (``broker.companies``). A
        refusal undoes the link this sign-in wrote: nothing of a refused sign-in is kept."""
        store = done.store
        if plan is None or store.b2b is None:
            return decision, []
        now = self._now()
        if company_user_known(decision.link, plan, store.b2b, now):
            return decision, []
        if decision.created:
            # Created just now as a user of the planned company, with the planned role
            # (CompanyUserDirectory): nothing to ask B2B Edition; the link keeps the plan.
            events: tuple[str, ...] = ()
        else:
            events = self._join(done, decision, plan)
        audit = []
        if events:
            audit.append(
                self._entry(
                    store,
                    "company",
                    ",".join(events),
                    done,
                    customer_id=decision.customer_id,
                    detail=plan.describe(),
                )
            )
        touch = decision.touch
        if decision.link is not None and decision.link.customer_id == decision.customer_id:
            touch = replace(
                touch or LinkTouch(decision.link.id),
                company_plan=plan_key(plan, store.b2b),
                company_checked_at=now,
            )
        return replace(decision, events=(*decision.events, *events), touch=touch), audit

    def _join(self, done: Completion, decision: SignIn, plan: CompanyPlan) -> tuple[str, ...]:
        store = done.store
        assert store.b2b is not None
        try:
            return join_company(
                self.clients.b2b_api(store.key),
                customer_id=decision.customer_id,
                directory=self.clients.store_api(store.key),
                identity=done.identity,
                plan=plan,
                settings=store.b2b,
                channel_ids=[done.channel.id],
            )
        except BrokerError:
            if "linked" in decision.events:
                self._unlink_new(done, decision.customer_id)
            raise

    def _unlink_new(self, done: Completion, customer_id: int) -> None:
        channel = store_context(done.store, done.channel.id).link_channel
        link = self.storage.get_link(done.store.key, done.conn.key, done.identity.subject, channel)
        if link is not None and link.customer_id == customer_id:
            self.storage.delete_link(done.store.key, link.id, customer_id=customer_id)

    def _link_from_storefront(self, done: Completion, customer_id: int) -> Linked:
        """Finish a link started from the storefront: this identity now signs in as that
        customer. The connection's domain rule holds here as at any sign-in."""
        store, conn, identity = done.store, done.conn, done.identity
        check_domain(identity, conn)
        channel = store_context(store, done.channel.id).link_channel
        existing = self.storage.get_link(store.key, conn.key, identity.subject, channel)
        if existing is not None and existing.customer_id != customer_id:
            raise PolicyDenied(
                "This sign-in is already connected to another account in this store. Unlink it "
                "there first, or contact the store.",
                detail="identity linked to another customer",
            )
        if existing is None:
            try:
                self.storage.create_link(
                    store=store.key,
                    connection=conn.key,
                    subject=identity.subject,
                    issuer=identity.issuer,
                    customer_id=customer_id,
                    email=identity.email,
                    now=self._now(),
                    channel_id=channel,
                )
            except AlreadyExists:
                raise PolicyDenied(
                    "Your account in this store is already connected to another sign-in of "
                    "this identity provider. Unlink that one first.",
                    detail="customer already linked through this connection",
                ) from None
            self.storage.clear_unlink(store.key, conn.key, identity.subject)
            self._audit(store, "link", "linked_from_storefront", done, customer_id=customer_id)
        return Linked(customer_id=customer_id, connection=conn.key)

    def _note_staff_groups(self, done: Completion) -> None:
        """Keep whether this identity is in the store's control-panel groups, for a connection
        ``[staff]`` names that has no SCIM (SCIM's groups say it otherwise). Nothing is written
        for a shopper in none of them who was never seen in one."""
        staff, conn = done.store.staff, done.conn
        if staff is None or conn.key not in staff.connections:
            return
        email = done.identity.email
        if (conn.scim is not None and conn.scim.enabled) or not email:
            return
        wanted = {g.lower() for g in staff.groups}
        in_group = any(g.lower() in wanted for g in done.identity.groups)
        sighting = StaffSighting(
            store=done.store.key,
            connection=conn.key,
            subject=done.identity.subject,
            email=email.strip().lower(),
            in_group=in_group,
            seen_at=self._now(),
        )
        try:
            self.storage.record_staff_sighting(sighting, create=in_group)
        except StorageError:
            # The shopper is signed in already; the next sign-in says it again.
            log_event("staff.sighting_lost", level=logging.WARNING, store=done.store.key)

    def _ask_confirmation(self, done: Completion, customer: Customer) -> ConfirmFirst:
        key = self._save_step(done, STEP_CONFIRM, customer=customer.to_record())
        self._audit(done.store, "link", "confirm_required", done, customer_id=customer.id)
        return ConfirmFirst(key=key)

    def _ask_name(self, done: Completion) -> AskName:
        key = self._save_step(done, STEP_NAME)
        self._audit(done.store, "signin", "name_required", done)
        return AskName(key=key)

    def _save_step(self, done: Completion, step: str, **extra: Any) -> str:
        """Keep the sign-in for a step the shopper takes first (server-side, for
        :data:`CONFIRM_TTL_SECONDS`); the random key the browser's session holds."""
        key = secrets.token_urlsafe(32)
        record = {
            "step": step,
            "store": done.store.key,
            "connection": done.conn.key,
            "identity": done.identity.to_record(),
            "upstream": done.upstream.to_record(),
            "redirect_to": done.redirect_to,
            "channel_id": done.channel.id,
            **extra,
        }
        now = self._now()
        # One namespace for both steps (a record says its step): the storage key of a
        # confirmation is the one it always had, so one pending across an upgrade still counts.
        self.storage.save_pending(
            keys.confirmation(key), record, expires_at=now + CONFIRM_TTL_SECONDS
        )
        return key

    # -- helpers ----------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock())

    def _audit(
        self,
        store: StoreSettings,
        event: str,
        outcome: str,
        done: Completion,
        *,
        customer_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        entry = self._entry(store, event, outcome, done, customer_id=customer_id, detail=detail)
        self.storage.record_audit(entry)

    def _entry(
        self,
        store: StoreSettings,
        event: str,
        outcome: str,
        done: Completion,
        *,
        customer_id: int | None = None,
        detail: str | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            at=self._now(),
            store=store.key,
            event=event,
            outcome=outcome,
            connection=done.conn.key,
            subject=done.identity.subject,
            customer_id=customer_id,
            ip=done.client_ip,
            detail=detail or None,
        )


def _completion_of(
    store: StoreSettings, record: Mapping[str, Any], client_ip: str | None
) -> Completion:
    """The sign-in a pending step kept (:meth:`SignInService._save_step`)."""
    return Completion(
        store=store,
        conn=store.connections[record["connection"]],
        identity=Identity.from_record(record["identity"]),
        redirect_to=record["redirect_to"],
        upstream=UpstreamSession.from_record(record.get("upstream")),
        client_ip=client_ip,
        channel_id=record.get("channel_id"),
    )


def store_context(store: StoreSettings, channel_id: int | None = None) -> StoreContext:
    """Where account policy runs: the store, and the sign-in's channel (None: the default)."""
    return StoreContext(
        key=store.key,
        channel_id=store.channel_id if channel_id is None else channel_id,
        verify_link_after_seconds=store.verify_link_after_hours * 3600,
        default_channel_id=store.channel_id,
    )
