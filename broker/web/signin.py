"""The web end of every sign-in: the service's outcome as a response.

OIDC's callback and SAML's ACS hand what their upstream verified to :func:`finish`, which
calls :class:`~broker.signin.service.SignInService` (the one sequence of steps, no Flask) and
answers: the storefront's login-token URL with the broker session cookie, the confirmation
page, the "What's your name?" page, or the link page. The two steps a shopper may have to take
before a sign-in ends (confirm an existing account, give the name a new customer needs) are
kept alike: server-side under a random key this browser's session holds
(:func:`pending_step`), peeked at to show the form, taken (single use) to finish. The audit
helper of the other views lives here too.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, session
from werkzeug.wrappers import Response

from broker.config import Connection, StoreSettings
from broker.errors import FlowExpired
from broker.identity import Identity, UpstreamSession
from broker.names import MAX_NAME_LENGTH, NameInvalid, clean, entered_name
from broker.signin.service import (
    STEP_CONFIRM,
    STEP_NAME,
    AskName,
    Completion,
    ConfirmFirst,
    Linked,
    Outcome,
    SignedIn,
    store_context,
)
from broker.signin.trial import explain
from broker.storage import AuditEntry, keys
from broker.web import pages, sessions, tracing
from broker.web.context import runtime

#: The session key of each pending step's random key (the storage key is made from it).
STEP_SESSION = {STEP_CONFIRM: "confirm", STEP_NAME: "name_step"}
#: What an expired, used or foreign pending step says (the same page as other expired flows).
_STEP_EXPIRED = {
    STEP_CONFIRM: "This confirmation has expired or was already used. Please sign in again.",
    STEP_NAME: "This sign-in has expired or was already used. Please start signing in again.",
}


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
    return answer(store, outcome)


def answer(store: StoreSettings, outcome: Outcome) -> Response:
    """The browser's way on from a sign-in's outcome."""
    if isinstance(outcome, Linked):
        # The notice comes from the session the broker set, never from the URL.
        session["just_linked"] = outcome.connection
        return redirect(f"/{store.key}/link", code=303)
    if isinstance(outcome, ConfirmFirst):
        session[STEP_SESSION[STEP_CONFIRM]] = outcome.key
        return redirect(f"/{store.key}/link/confirm", code=303)
    if isinstance(outcome, AskName):
        session[STEP_SESSION[STEP_NAME]] = outcome.key
        return redirect(f"/{store.key}/signin/name", code=303)
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


def pending_step(store: StoreSettings, step: str, *, take: bool = False) -> dict[str, Any]:
    """The pending ``step`` (:data:`STEP_CONFIRM`, :data:`STEP_NAME`) this browser is in the
    middle of, for this store: bound to the browser by the random key its (signed) session
    holds; ``take``: removed at once, atomically, so a replay finds nothing. Anything else
    (no key, expired, used, another store's or another step's) is FlowExpired."""
    broker = runtime()
    slot = STEP_SESSION[step]
    key = session.get(slot)
    record = None
    if isinstance(key, str):
        storage, now = broker.storage, int(broker.clock())
        get = storage.take_pending if take else storage.peek_pending
        record = get(keys.confirmation(key), now)
    if (
        record is None
        or record.get("store") != store.key
        or record.get("step", STEP_CONFIRM) != step
        or record.get("connection") not in store.connections
    ):
        raise FlowExpired(_STEP_EXPIRED[step], detail=f"no pending {step} step")
    if take:
        session.pop(slot, None)
    return record


def pending_confirmation(store: StoreSettings, *, take: bool = False) -> dict[str, Any]:
    """The confirmation this browser is in the middle of, for this store."""
    return pending_step(store, STEP_CONFIRM, take=take)


def name_page(store: StoreSettings) -> str:
    """ "What's your name?", filled in with what the IdP sent."""
    record = pending_step(store, STEP_NAME)
    identity = Identity.from_record(record["identity"])
    first, last = clean(identity.first_name) or "", clean(identity.last_name) or ""
    return _name_form(store, record, first, last)


def name_given(store: StoreSettings) -> Response | tuple[str, int]:
    """The names the shopper typed: both fine, and the sign-in goes on (the step taken
    first: a replay, or a second tab, finds nothing and creates nothing); else the form
    again, saying what is wrong, with nothing created."""
    record = pending_step(store, STEP_NAME)
    typed = {field: request.form.get(field, "") for field in ("first_name", "last_name")}
    names: dict[str, str] = {}
    problems: dict[str, str] = {}
    for field, value in typed.items():
        try:
            names[field] = entered_name(value)
        except NameInvalid as invalid:
            problems[field] = invalid.reason
    if problems:
        audit(store, "signin", "name_invalid", conn=record["connection"], detail=",".join(problems))
        page = _name_form(store, record, typed["first_name"], typed["last_name"], problems)
        return page, 422
    record = pending_step(store, STEP_NAME, take=True)
    outcome = runtime().signin.give_name(
        store, record, names["first_name"], names["last_name"], request.remote_addr
    )
    tracing.signin_finished(store.key, str(record["connection"]), outcome)
    return answer(store, outcome)


def _name_form(
    store: StoreSettings,
    record: dict[str, Any],
    first: str,
    last: str,
    problems: dict[str, str] | None = None,
) -> str:
    problems = problems or {}
    # The first field with something to fix; else the first empty one.
    focus = next(
        (f for f in ("first_name", "last_name") if f in problems),
        "first_name" if not first.strip() else "last_name",
    )
    channel_id = record.get("channel_id")
    return pages.render(
        "name.html",
        store,
        channel=store.channel(channel_id) if isinstance(channel_id, int) else None,
        first_name=first,
        last_name=last,
        problems=problems,
        focus=focus,
        max_length=MAX_NAME_LENGTH,
    )


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
