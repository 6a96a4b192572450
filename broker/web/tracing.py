"""Each request's id and clock, and what the metrics and the log learn from a sign-in's end.

Every request gets a random id when it starts: every log line written while it is handled
carries it as ``request_id`` (:data:`broker.events.REQUEST_ID`), its error page shows it as the
reference id (``ref``), and the response says it in ``X-Request-Id``. It is made here, never
taken from the request, so nobody can plant a misleading id in the log.

The request that completes a sign-in (the OIDC callback, the SAML ACS or its continuation, the
password of a confirmation) logs ``signin.completed`` with its ``outcome`` and ``duration_ms``
(from the start of that request) and counts it in the metrics; a refusal there is counted as
the sign-in's outcome ``refused`` too.
"""

from __future__ import annotations

import secrets
import time

from flask import Flask, g, request

from broker import metrics
from broker.errors import BrokerError
from broker.events import REQUEST_ID, log_event
from broker.signin.service import AskName, ConfirmFirst, Outcome, SignedIn
from broker.web.context import runtime

#: The endpoints whose request ends a sign-in begun at the IdP.
SIGNIN_ENDPOINTS = frozenset({"sso.oidc_callback", "saml.acs", "saml.acs_continue"})


def init_app(app: Flask) -> None:
    """The request id made before each request, forgotten after it (``X-Request-Id`` is
    added with the security headers: broker.web.errors)."""
    app.before_request(_start)
    app.teardown_request(_end)


def _start() -> None:
    g.request_id = secrets.token_hex(4)
    g.request_started = time.perf_counter()
    g.request_id_token = REQUEST_ID.set(g.request_id)


def _end(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        REQUEST_ID.reset(token)


def request_id() -> str:
    """This request's id (the error page's reference); one is made if the hooks did not run
    (an error raised before them)."""
    found = g.get("request_id")
    if not isinstance(found, str):
        found = g.request_id = secrets.token_hex(4)
    return found


def _elapsed() -> float:
    started = g.get("request_started")
    return time.perf_counter() - started if isinstance(started, float) else 0.0


def signin_finished(store: str, connection: str, outcome: Outcome) -> None:
    """A sign-in reached its end: log it with its duration, and count it."""
    name = (
        "signed_in"
        if isinstance(outcome, SignedIn)
        else "confirm"
        if isinstance(outcome, ConfirmFirst)
        else "name"
        if isinstance(outcome, AskName)
        else "linked"
    )
    _finished(store, connection, name, code=None)


def refused(error: BrokerError) -> None:
    """A request refused with ``error`` (the error handler calls this): counted by its code,
    and as a refused sign-in when the request was ending one of a configured connection."""
    metrics.refused(error.code)
    if request.endpoint not in SIGNIN_ENDPOINTS:
        return
    args = request.view_args or {}
    try:
        store = runtime().find_store(str(args.get("store_key", "")))
    except BrokerError:  # the database is down: the refusal still counts, by its code
        return
    conn_key = str(args.get("conn_key", ""))
    if store is None or conn_key not in store.connections:
        return  # a URL naming nothing configured: no label from it
    _finished(store.key, conn_key, "refused", code=error.code)


def _finished(store: str, connection: str, outcome: str, *, code: str | None) -> None:
    seconds = _elapsed()
    metrics.signin_finished(store, connection, outcome, seconds)
    log_event(
        "signin.completed",
        store=store,
        connection=connection,
        outcome=outcome,
        code=code,
        duration_ms=round(seconds * 1000, 1),
    )
