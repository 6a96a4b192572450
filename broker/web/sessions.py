"""Broker sessions: the record of each sign-in the broker made, for logout.

A sign-in leaves the browser an HttpOnly cookie naming its broker session (on the broker's
domain), and, when the store follows IdP-side logouts, hands the storefront script a separate
status token in the landing URL. Only hashes of both are stored. Logout ends the session; an
IdP's back-channel logout or LogoutRequest ends every session it names; the storefront script
asks ``/{store}/session/status`` whether its session is still alive.
"""

from __future__ import annotations

import secrets

from flask import request
from werkzeug.wrappers import Response

from broker.bigcommerce.login_token import (
    MAX_LANDING_URL_LENGTH,
    longest_landing_url,
    safe_redirect_path,
)
from broker.config import Channel, StoreSettings
from broker.events import log_event
from broker.signin.sessions import (
    SESSION_SECONDS,
    STATUS_PARAMETER,
    STATUS_TOKEN_BYTES,
    with_status_token,
)
from broker.storage import BrokerSession
from broker.web import cookies, flows
from broker.web.context import runtime

__all__ = ["STATUS_PARAMETER", "clear_cookie", "current", "landing_redirect", "set_cookie"]

_COOKIE = "broker_sso"


def set_cookie(response: Response, value: str) -> None:
    secure = runtime().broker_settings.cookie_secure
    cookies.give(response, _COOKIE, value, secure=secure, max_age=SESSION_SECONDS)


def clear_cookie(response: Response) -> None:
    secure = runtime().broker_settings.cookie_secure
    cookies.drop(response, cookies.cookie_name(_COOKIE, secure), secure=secure)


def current(store: StoreSettings) -> BrokerSession | None:
    """This browser's active session at this store, if any."""
    broker = runtime()
    secure = broker.broker_settings.cookie_secure
    cookie = request.cookies.get(cookies.cookie_name(_COOKIE, secure), "")
    if not cookie:
        return None
    session = broker.storage.get_session(flows.digest(cookie))
    if session is None or session.store != store.key or not session.active(int(broker.clock())):
        return None
    return session


def landing_redirect(
    store: StoreSettings, value: str | None, channel: Channel | None = None
) -> str:
    """The ``redirect_to`` a sign-in starting now will land on: ``value`` when it is a path on
    the store (:func:`safe_redirect_path`) that still fits once the status token and the login
    JWT wrap it on the channel's storefront (None: the default channel), else the channel's
    ``default_redirect``.

    Checked when the flow starts, so that a path too long for the landing URL is dropped
    quietly (the shopper lands on the default page) instead of failing after the customer was
    created and linked."""
    channel = channel or store.default_channel
    path = safe_redirect_path(value, channel.default_redirect)
    if path == channel.default_redirect:
        return path
    final = path
    if store.follow_idp_logout:
        final = with_status_token(path, secrets.token_urlsafe(STATUS_TOKEN_BYTES))
    fits = safe_redirect_path(final, "") == final and (
        longest_landing_url(
            channel.storefront_url,
            client_id=store.client_id,
            store_hash=store.store_hash,
            channel_id=channel.id,
            redirect_to=final,
        )
        <= MAX_LANDING_URL_LENGTH
    )
    if fits:
        return path
    log_event("signin.redirect_dropped", store=store.key, length=len(path))
    return channel.default_redirect
