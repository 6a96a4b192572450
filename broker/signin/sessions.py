"""Broker sessions, without the web: the record of each sign-in the broker made, for logout.

A sign-in leaves the browser a cookie naming its broker session and, when the store follows
IdP-side logouts, the storefront script a separate status token in the landing URL. Only
hashes of both are stored (:func:`digest`), with the sign-in's other writes; the web layer
sets the cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from broker.config import Connection, StoreSettings
from broker.identity import Identity, UpstreamSession
from broker.storage import BrokerSession
from broker.storage.keys import digest

#: How long a broker session is remembered (a storefront session rarely outlives it).
SESSION_SECONDS = 7 * 24 * 3600
#: The query parameter that carries the status token to the storefront script.
STATUS_PARAMETER = "sso_session"
#: Random bytes in a status token (32 characters in the landing URL).
STATUS_TOKEN_BYTES = 24


@dataclass(frozen=True)
class NewSession:
    """A session to keep (``record``, hashes only), the browser's ``cookie`` value and the
    storefront script's ``status_token``; the last two are never stored."""

    record: BrokerSession
    cookie: str = field(repr=False)
    status_token: str = field(repr=False)


def new_session(
    *,
    store: StoreSettings,
    conn: Connection,
    identity: Identity,
    customer_id: int,
    upstream: UpstreamSession,
    now: int,
) -> NewSession:
    """A new session, not yet stored: the sign-in keeps it with the rest of its writes
    (:meth:`~broker.storage.model.SignInStore.record_sign_in`)."""
    cookie, status = secrets.token_urlsafe(32), secrets.token_urlsafe(STATUS_TOKEN_BYTES)
    return NewSession(
        record=BrokerSession(
            id=digest(cookie),
            status_key=digest(status),
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
        ),
        cookie=cookie,
        status_token=status,
    )


def with_status_token(redirect_to: str, token: str) -> str:
    """``redirect_to`` with the status token added to its query (still a path on the store)."""
    parts = urlsplit(redirect_to)
    query = [*parse_qsl(parts.query, keep_blank_values=True), (STATUS_PARAMETER, token)]
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))
