"""The protocol-neutral end of every sign-in: Identity -> decision -> login JWT -> storefront.

OIDC's callback (and SAML's ACS) finish here, so customer resolution, ownership confirmation,
account linking from the storefront and the login-JWT redirect exist once.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

from flask import redirect, request, session
from werkzeug.wrappers import Response

from broker.accounts import (
    ConfirmOwnership,
    CustomerDirectory,
    SignIn,
    StoreContext,
    resolve_customer,
)
from broker.app import get_broker
from broker.bigcommerce.login_token import mint_login_token, storefront_login_url
from broker.companies import (
    CompanyPlan,
    CompanyUserDirectory,
    binding_for,
    join_company,
    plan_for,
    refuse_without_company,
)
from broker.config import Connection, StoreSettings
from broker.errors import FlowExpired, PolicyDenied
from broker.events import log_event
from broker.identity import Identity, UpstreamSession
from broker.storage import AlreadyExists, AuditEntry
from broker.web import sessions

#: How long a shopper has to enter their password on the confirmation page.
CONFIRM_TTL_SECONDS = 600


def store_context(store: StoreSettings) -> StoreContext:
    return StoreContext(
        key=store.key,
        channel_id=store.channel_id,
        verify_link_after_seconds=store.verify_link_after_hours * 3600,
    )


def finish_sign_in(
    store: StoreSettings,
    conn: Connection,
    identity: Identity,
    redirect_to: str,
    upstream: UpstreamSession | None = None,
) -> Response:
    """Resolve the customer; sign them in, or ask them to confirm an existing account."""
    broker = get_broker()
    directory: CustomerDirectory = broker.stores[store.key]
    plan = company_plan(store, conn, identity)
    if plan is not None:
        directory = CompanyUserDirectory(directory, broker.b2b[store.key], plan)
    decision = resolve_customer(
        identity,
        directory=directory,
        links=broker.storage,
        store=store_context(store),
        policy=conn,
        now=int(broker.clock()),
    )
    upstream = upstream or UpstreamSession()
    if isinstance(decision, ConfirmOwnership):
        return _ask_confirmation(store, conn, identity, decision, redirect_to, upstream)
    return redirect_signed_in(store, conn, identity, decision, redirect_to, upstream, plan=plan)


def company_plan(store: StoreSettings, conn: Connection, identity: Identity) -> CompanyPlan | None:
    """With B2B Edition on: the company and role within what this connection may reach, or a
    refusal when none is found."""
    if store.b2b is None:
        return None
    binding = binding_for(store.b2b, conn, connections=len(store.connections))
    plan = plan_for(identity, binding)
    if plan is None and store.b2b.no_company == "refuse":
        raise refuse_without_company()
    return plan


def _join_company(
    store: StoreSettings,
    conn: Connection,
    identity: Identity,
    decision: SignIn,
    plan: CompanyPlan | None,
) -> SignIn:
    """Make the signed-in customer the company user the IdP says (B2B Edition only)."""
    if plan is None or store.b2b is None:
        return decision
    broker = get_broker()
    events = join_company(
        broker.b2b[store.key],
        customer_id=decision.customer_id,
        directory=broker.stores[store.key],
        identity=identity,
        plan=plan,
        settings=store.b2b,
        channel_ids=[store.channel_id],
    )
    if events:
        audit(
            store,
            "company",
            ",".join(events),
            conn=conn.key,
            identity=identity,
            customer_id=decision.customer_id,
            detail=plan.describe(),
        )
    return SignIn(decision.customer_id, (*decision.events, *events))


def redirect_signed_in(
    store: StoreSettings,
    conn: Connection,
    identity: Identity,
    decision: SignIn,
    redirect_to: str,
    upstream: UpstreamSession,
    *,
    plan: CompanyPlan | None = None,
) -> Response:
    """Join the company (B2B), record the broker session, mint the login JWT (last: it lives
    30 s) and send them on. ``plan``: the company step's answer, when already made."""
    broker = get_broker()
    if plan is None:
        plan = company_plan(store, conn, identity)
    decision = _join_company(store, conn, identity, decision, plan)
    cookie, status_token = sessions.start(store, conn, identity, decision.customer_id, upstream)
    if store.follow_idp_logout:
        redirect_to = sessions.with_status_token(redirect_to, status_token)
    token = mint_login_token(
        client_id=store.client_id,
        client_secret=store.client_secret,
        store_hash=store.store_hash,
        customer_id=decision.customer_id,
        channel_id=store.channel_id,
        redirect_to=redirect_to,
        now=broker.now_for_store(store),
        jti=str(uuid.uuid4()),
        request_ip=request.remote_addr if store.bind_request_ip else None,
    )
    audit(
        store,
        "signin",
        "ok",
        conn=conn.key,
        identity=identity,
        customer_id=decision.customer_id,
        detail=",".join(decision.events),
    )
    log_event(
        "signin.ok",
        store=store.key,
        connection=conn.key,
        customer_id=decision.customer_id,
        created=decision.created,
        events=list(decision.events),
    )
    response = redirect(storefront_login_url(store.storefront_url, token), code=302)
    sessions.set_cookie(response, cookie)
    return response


def link_to_signed_in_customer(
    store: StoreSettings, conn: Connection, identity: Identity, customer_id: int
) -> Response:
    """Finish a link started from the storefront: this identity now signs in as that customer."""
    broker = get_broker()
    if conn.allowed_domains and identity.email_domain not in conn.allowed_domains:
        raise PolicyDenied(
            "Sign-in through this connection is limited to certain e-mail domains, "
            "and yours is not one of them."
        )
    existing = broker.storage.get_link(store.key, conn.key, identity.subject)
    if existing is not None and existing.customer_id != customer_id:
        raise PolicyDenied(
            "This sign-in is already connected to another account in this store. Unlink it "
            "there first, or contact the store."
        )
    if existing is None:
        try:
            broker.storage.create_link(
                store=store.key,
                connection=conn.key,
                subject=identity.subject,
                issuer=identity.issuer,
                customer_id=customer_id,
                email=identity.email,
                now=int(broker.clock()),
            )
        except AlreadyExists:
            raise PolicyDenied(
                "Your account in this store is already connected to another sign-in of "
                "this identity provider. Unlink that one first.",
                detail="customer already linked through this connection",
            ) from None
        broker.storage.clear_unlink(store.key, conn.key, identity.subject)
        audit(
            store,
            "link",
            "linked_from_storefront",
            conn=conn.key,
            identity=identity,
            customer_id=customer_id,
        )
    return redirect(f"/{store.key}/link?linked={conn.key}", code=303)


def _ask_confirmation(
    store: StoreSettings,
    conn: Connection,
    identity: Identity,
    decision: ConfirmOwnership,
    redirect_to: str,
    upstream: UpstreamSession,
) -> Response:
    broker = get_broker()
    key = secrets.token_urlsafe(32)
    record = {
        "store": store.key,
        "connection": conn.key,
        "identity": identity.to_record(),
        "upstream": upstream.to_record(),
        "customer": decision.customer.to_record(),
        "redirect_to": redirect_to,
    }
    now = int(broker.clock())
    broker.storage.save_pending(confirmation_key(key), record, expires_at=now + CONFIRM_TTL_SECONDS)
    session["confirm"] = key
    audit(
        store,
        "link",
        "confirm_required",
        conn=conn.key,
        identity=identity,
        customer_id=decision.customer.id,
    )
    return redirect(f"/{store.key}/link/confirm", code=303)


def pending_confirmation(store: StoreSettings, *, take: bool = False) -> dict[str, Any]:
    """The confirmation this browser is in the middle of, for this store."""
    broker = get_broker()
    key = session.get("confirm")
    record = None
    if isinstance(key, str):
        storage, now = broker.storage, int(broker.clock())
        get = storage.take_pending if take else storage.peek_pending
        record = get(confirmation_key(key), now)
    if record is None or record.get("store") != store.key:
        raise FlowExpired(
            "This confirmation has expired or was already used. Please sign in again.",
            detail="no pending confirmation",
        )
    if take:
        session.pop("confirm", None)
    return record


def confirmation_key(key: str) -> str:
    return "confirm:" + hashlib.sha256(key.encode()).hexdigest()


def audit(
    store: StoreSettings,
    event: str,
    outcome: str,
    *,
    conn: str | None = None,
    identity: Identity | None = None,
    customer_id: int | None = None,
    detail: str | None = None,
) -> None:
    broker = get_broker()
    broker.storage.record_audit(
        AuditEntry(
            at=int(broker.clock()),
            store=store.key,
            event=event,
            outcome=outcome,
            connection=conn,
            subject=identity.subject if identity else None,
            customer_id=customer_id,
            ip=request.remote_addr,
            detail=detail or None,
        )
    )
