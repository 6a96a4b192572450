"""Pending sign-ins: the state, nonce and PKCE verifier of a started flow, kept server-side.

A flow is stored under its ``state`` value with a hash of a random per-browser cookie. The
callback takes it (once: taking deletes it) and checks that the same browser brings it back,
for the same store and connection. So a callback URL replayed, shared, forged or completed in
another browser (login CSRF) is refused, across every broker process sharing the storage.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Request, redirect
from werkzeug.wrappers import Response

from broker.errors import FlowExpired, StateMismatch
from broker.signin.flows import PendingSignIn
from broker.storage import Storage, keys
from broker.storage.keys import digest as digest

_COOKIE = "broker_browser"
_SECURE_COOKIE = "__Host-broker_browser"


def cookie_name(secure: bool) -> str:
    return _SECURE_COOKIE if secure else _COOKIE


def redirect_binding_browser(url: str, browser: str, *, secure: bool, ttl: int) -> Response:
    """A redirect to the IdP that also gives the browser its id cookie."""
    response = redirect(url, code=302)
    set_browser_cookie(response, browser, secure=secure, ttl=ttl)
    return response


def set_browser_cookie(response: Response, value: str, *, secure: bool, ttl: int) -> None:
    response.set_cookie(
        cookie_name(secure),
        value,
        max_age=ttl,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def complete(
    storage: Storage, request: Request, *, store: str, connection: str, now: int, secure: bool
) -> PendingSignIn:
    """Take the flow named by the callback's ``state``; refuse anything that does not fit."""
    state = request.args.get("state", "")
    if not state or len(state) > 256:
        raise FlowExpired(
            "This sign-in link is incomplete. Please start signing in again.",
            detail="callback without state",
        )
    data = storage.take_pending(keys.oidc_flow(state), now)
    if data is None:
        raise FlowExpired(
            "This sign-in has expired or was already used. Please start signing in again.",
            detail="state unknown, expired or used",
        )
    flow = PendingSignIn.from_record(data)
    if not same_browser(request, flow.browser, secure) or not flow.belongs_to(store, connection):
        raise StateMismatch(
            "This sign-in was started in another browser or for another store. "
            "Please start signing in again from the store.",
            detail="browser binding or store/connection mismatch",
        )
    return flow


def browser_id(request: Request, secure: bool) -> str:
    """This browser's random id (the cookie's value), a new one if it has none yet."""
    browser = request.cookies.get(cookie_name(secure), "")
    if len(browser) != 43:  # token_urlsafe(32); anything else is not ours
        browser = secrets.token_urlsafe(32)
    return browser


def same_browser(request: Request, browser_digest: str, secure: bool) -> bool:
    """Whether this request comes from the browser whose id hashes to ``browser_digest``."""
    browser = request.cookies.get(cookie_name(secure), "")
    return bool(browser) and hmac.compare_digest(browser_digest, digest(browser))
