"""Broker sessions: the record of each sign-in the broker made, for logout.

A sign-in leaves the browser an HttpOnly cookie naming its broker session (on the broker's
domain), and, when the store follows IdP-side logouts, hands the storefront script a separate
status token in the landing URL. Only hashes of both are stored. Logout ends the session; an
IdP's back-channel logout or LogoutRequest ends every session it names; the storefront script
asks ``/{store}/session/status`` whether its session is still alive.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import request
from werkzeug.wrappers import Response

from broker.app import get_broker
from broker.bigcommerce.login_token import (
    MAX_LANDING_URL_LENGTH,
    longest_landing_url,
    safe_redirect_path,
)
from broker.config import Connection, StoreSettings
from broker.events import log_event
from broker.identity import Identity, UpstreamSession
from broker.storage import BrokerSession
from broker.web import flows

#: How long a broker session is remembered (a storefront session rarely outlives it).
SESSION_SECONDS = 7 * 24 * 3600
#: The query parameter that carries the status token to the storefront script.
STATUS_PARAMETER = "sso_session"
#: Random bytes in a status token (32 characters in the landing URL).
STATUS_TOKEN_BYTES = 24
_COOKIE = "broker_sso"
_SECURE_COOKIE = "__Host-broker_sso"


def start(
    store: StoreSettings,
    conn: Connection,
    identity: Identity,
    customer_id: int,
    upstream: UpstreamSession,
) -> tuple[str, str]:
    """Record a new session; return the cookie value and the status token."""
    broker = get_broker()
    now = int(broker.clock())
    cookie, status = secrets.token_urlsafe(32), secrets.token_urlsafe(STATUS_TOKEN_BYTES)
    broker.storage.create_session(
        BrokerSession(
            id=flows.digest(cookie),
            status_key=flows.digest(status),
            store=store.key,
            connection=conn.key,
            customer_id=customer_id,
            issuer=identity.issuer,
            subject=identity.subject,
            created_at=now,
            expires_at=now + SESSION_SECONDS,
            sid=upstream.sid,
            name_id=upstream.name_id,
            name_id_format=upstream.name_id_format,
            session_index=upstream.session_index,
            id_token=upstream.id_token,
        )
    )
    return cookie, status


def set_cookie(response: Response, value: str) -> None:
    secure = get_broker().settings.broker.cookie_secure
    response.set_cookie(
        _SECURE_COOKIE if secure else _COOKIE,
        value,
        max_age=SESSION_SECONDS,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Lax",
    )


def clear_cookie(response: Response) -> None:
    secure = get_broker().settings.broker.cookie_secure
    response.delete_cookie(_SECURE_COOKIE if secure else _COOKIE, path="/", secure=secure)


def current(store: StoreSettings) -> BrokerSession | None:
    """This browser's active session at this store, if any."""
    broker = get_broker()
    secure = broker.settings.broker.cookie_secure
    cookie = request.cookies.get(_SECURE_COOKIE if secure else _COOKIE, "")
    if not cookie:
        return None
    session = broker.storage.get_session(flows.digest(cookie))
    if session is None or session.store != store.key or not session.active(int(broker.clock())):
        return None
    return session


def landing_redirect(store: StoreSettings, value: str | None) -> str:
    """The ``redirect_to`` a sign-in starting now will land on: ``value`` when it is a path on
    the store (:func:`safe_redirect_path`) that still fits once the status token and the login
    JWT wrap it, else the store's ``default_redirect``.

    Checked when the flow starts, so that a path too long for the landing URL is dropped
    quietly (the shopper lands on the default page) instead of failing after the customer was
    created and linked."""
    path = safe_redirect_path(value, store.default_redirect)
    if path == store.default_redirect:
        return path
    final = path
    if store.follow_idp_logout:
        final = with_status_token(path, secrets.token_urlsafe(STATUS_TOKEN_BYTES))
    fits = safe_redirect_path(final, "") == final and (
        longest_landing_url(
            store.storefront_url,
            client_id=store.client_id,
            store_hash=store.store_hash,
            channel_id=store.channel_id,
            redirect_to=final,
        )
        <= MAX_LANDING_URL_LENGTH
    )
    if fits:
        return path
    log_event("signin.redirect_dropped", store=store.key, length=len(path))
    return store.default_redirect


def with_status_token(redirect_to: str, token: str) -> str:
    """``redirect_to`` with the status token added to its query (still a path on the store)."""
    parts = urlsplit(redirect_to)
    query = [*parse_qsl(parts.query, keep_blank_values=True), (STATUS_PARAMETER, token)]
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))
