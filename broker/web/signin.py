"""The web end of every sign-in: the service's outcome as a response.

OIDC's callback and SAML's ACS hand what their upstream verified to :func:`finish`, which
calls :class:`~broker.signin.service.SignInService` (the one sequence of steps, no Flask) and
answers: the storefront's login-token URL with the broker session cookie, the confirmation
page, or the link page. Ownership confirmation and the audit helper of the other views live
here too.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, session
from werkzeug.wrappers import Response

from broker.config import Connection, StoreSettings
from broker.errors import FlowExpired
from broker.identity import Identity, UpstreamSession
from broker.signin.service import Completion, ConfirmFirst, Linked, SignedIn, store_context
from broker.signin.trial import explain
from broker.storage import AuditEntry, keys
from broker.web import sessions, tracing
from broker.web.context import runtime


def finish(
    store: StoreSettings,
    conn: Connection,
    identity: Identity,
    redirect_to: str,
    upstream: UpstreamSession | None = None,
    *,
    link_customer_id: int | None = None,
    channel_id: int | None = None,
    trial: bool = False,
) -> Response:
    """Complete a verified sign-in (or a link from the storefront) and answer the browser;
    for the admin's test sign-in (``trial``), only show what would happen."""
    if trial:
        return _trial_page(store, conn, identity, channel_id)
    outcome = runtime().signin.complete(
        Completion(
            store=store,
            conn=conn,
            identity=identity,
            redirect_to=redirect_to,
            upstream=upstream or UpstreamSession(),
            client_ip=request.remote_addr,
            link_customer_id=link_customer_id,
            channel_id=channel_id,
        )
    )
    tracing.signin_finished(store.key, conn.key, outcome)
    if isinstance(outcome, Linked):
        # The notice comes from the session the broker set, never from the URL.
        session["just_linked"] = outcome.connection
        return redirect(f"/{store.key}/link", code=303)
    if isinstance(outcome, ConfirmFirst):
        session["confirm"] = outcome.key
        return redirect(f"/{store.key}/link/confirm", code=303)
    return signed_in(outcome)


def _trial_page(
    store: StoreSettings, conn: Connection, identity: Identity, channel_id: int | None
) -> Response:
    broker = runtime()
    context = store_context(store, channel_id)
    report = explain(
        identity,
        store=store,
        conn=conn,
        channel_id=context.channel_id,
        link_channel=context.link_channel,
        directory=broker.store_api(store.key),
        links=broker.storage,
    )
    audit(store, "admin.test_signin", report.outcome, conn=conn.key)
    body = render_template("admin/trial.html", store=store, conn=conn, report=report)
    return Response(body, mimetype="text/html")


def confirm(store: StoreSettings, record: dict[str, Any], password: str) -> Response:
    """The password for a pending confirmation: sign in, or WrongPassword (the form again)."""
    outcome = runtime().signin.confirm(store, record, password, request.remote_addr)
    tracing.signin_finished(store.key, str(record["connection"]), outcome)
    pending_confirmation(store, take=True)  # single use
    return signed_in(outcome)


def signed_in(outcome: SignedIn) -> Response:
    response = redirect(outcome.landing_url, code=302)
    sessions.set_cookie(response, outcome.session_cookie)
    return response


def pending_confirmation(store: StoreSettings, *, take: bool = False) -> dict[str, Any]:
    """The confirmation this browser is in the middle of, for this store."""
    broker = runtime()
    key = session.get("confirm")
    record = None
    if isinstance(key, str):
        storage, now = broker.storage, int(broker.clock())
        get = storage.take_pending if take else storage.peek_pending
        record = get(keys.confirmation(key), now)
    if record is None or record.get("store") != store.key:
        raise FlowExpired(
            "This confirmation has expired or was already used. Please sign in again.",
            detail="no pending confirmation",
        )
    if take:
        session.pop("confirm", None)
    return record


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
    broker = runtime()
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
