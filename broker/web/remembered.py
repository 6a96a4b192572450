"""The connection this browser used last on a store: a cookie holding its key, nothing else.

``__Host-broker_last_{store}`` over https (Secure, path /, no Domain), ``broker_last_{store}``
over plain http on localhost; HttpOnly, SameSite=Lax, a year. Set when a sign-in starts
(:mod:`broker.web.starts`), read by the chooser (:mod:`broker.web.discovery`), which ignores a
value that names no connection of the store, and deleted by its "Not you?". Never the e-mail.
"""

from __future__ import annotations

from flask import request
from werkzeug.wrappers import Response

from broker.config import Channel, Connection, StoreSettings
from broker.web.context import runtime
from broker.web.cookies import cookie_name, drop, give

#: How long the remembered connection is kept.
REMEMBER_SECONDS = 365 * 24 * 3600


def remembered_cookie_name(store_key: str, secure: bool) -> str:
    """Per store (one broker serves many); ``__Host-`` over https: this host only, path /."""
    return cookie_name(f"broker_last_{store_key}", secure)


def remembered(store: StoreSettings, channel: Channel) -> Connection | None:
    """The connection this browser used last on this store, if it is still offered here."""
    secure = runtime().broker_settings.cookie_secure
    key = request.cookies.get(remembered_cookie_name(store.key, secure), "")
    conn = store.connections.get(key)
    return conn if conn is not None and conn.offered_on(channel.id) else None


def remember(response: Response, store: StoreSettings, conn: Connection) -> None:
    secure = runtime().broker_settings.cookie_secure
    give(response, f"broker_last_{store.key}", conn.key, secure=secure, max_age=REMEMBER_SECONDS)


def forget(response: Response, store: StoreSettings) -> None:
    secure = runtime().broker_settings.cookie_secure
    drop(response, remembered_cookie_name(store.key, secure), secure=secure)
