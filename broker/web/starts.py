"""The first leg of each protocol, by the kind of provider a connection has (no blueprint).

Starting a sign-in (OIDC: state, nonce and PKCE kept server-side, then the authorization
request; SAML: an AuthnRequest remembered under an opaque RelayState) and starting an
IdP-side logout (OIDC RP-initiated logout; SAML single logout) differ by protocol. The
blueprints that start them (the login URL, linking from the storefront, logout) call
:func:`sign_in` and :func:`idp_logout`, which pick the leg from a table keyed by the provider's
class: no ``isinstance`` in the views, and no blueprint imports another.

Hints for the IdP go on the authorization request of OpenID Connect: ``login_hint`` (the
e-mail of home-realm discovery) and ``ui_locales`` (the languages the shopper asked for).
They are added to the URL the upstream built, as query parameters (OIDC Core 3.1.2.1), so the
upstream's code is untouched. SAML gets neither: pysaml2 builds the AuthnRequest, and a
``<Subject>`` hint is refused by some IdPs (ADFS); the IdP asks for the e-mail itself.

A sign-in started here to another page than the default or on another channel is remembered
for the error pages' "Try again" (the session's ``retry``: store, connection, ``redirect_to``
path and channel; nothing personal; a plain one needs nothing the URL does not give), and its
connection in the browser for the chooser (:mod:`broker.web.remembered`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Response, redirect, request, session
from werkzeug.wrappers import Response as BaseResponse

from broker.bigcommerce.login_token import storefront_logout_url
from broker.config import Connection, StoreSettings
from broker.signin.flows import PendingSignIn
from broker.storage import BrokerSession, keys
from broker.upstream.oidc import OIDCProvider
from broker.upstream.registry import Provider
from broker.upstream.saml import OutboundMessage, SAMLProvider
from broker.web import flows, pages, remembered
from broker.web.context import runtime

#: How long the IdP has to send the browser back from its logout page.
LOGOUT_TTL_SECONDS = 600

#: The last two: where the storefront logout that ends it all goes (the channel, and a path
#: for Catalyst's ``redirectTo``), kept with the IdP logout's state for the way back.
LogoutStart = Callable[
    [StoreSettings, Connection, BrokerSession, "int | None", "str | None"], "BaseResponse | None"
]


def sign_in(
    store: StoreSettings,
    conn: Connection,
    *,
    redirect_to: str,
    link_customer_id: int | None = None,
    channel_id: int | None = None,
    trial: bool = False,
    login_hint: str | None = None,
) -> BaseResponse:
    """Send the browser to the connection's IdP to sign in (or to link, for a customer), for
    the store's channel ``channel_id`` (None: the default; :mod:`broker.signin.channels`).
    ``trial``: the admin's test sign-in, which only shows what would happen. ``login_hint``:
    the e-mail the shopper typed, for the IdP's sign-in form."""
    response = _start(store, conn, redirect_to, link_customer_id, channel_id, trial, login_hint)
    if link_customer_id is None and not trial:
        pages.remember_locale()
        _remember_retry(store, conn, redirect_to, channel_id)
        remembered.remember(response, store, conn)
    return response


def _remember_retry(
    store: StoreSettings, conn: Connection, redirect_to: str, channel_id: int | None
) -> None:
    """Keep what "Try again" needs that the error page's URL does not give: a sign-in to
    another page than the default one, or on another channel. A plain sign-in (the default
    page, the default channel) forgets any older one instead, and so leaves the browser no
    session cookie to carry, sign, open and check (the connection's own URL starts it again
    just as well; :func:`broker.web.pages.retry_url`)."""
    channel = None if channel_id == store.channel_id else channel_id
    if channel is None and redirect_to == store.default_channel.default_redirect:
        if "retry" in session:
            del session["retry"]
        return
    session["retry"] = {
        "store": store.key,
        "conn": conn.key,
        "redirect_to": redirect_to,
        "channel": channel,
    }


def idp_logout(
    store: StoreSettings,
    conn: Connection,
    session: BrokerSession,
    *,
    channel_id: int | None = None,
    path: str | None = None,
) -> BaseResponse | None:
    """Send the browser to the IdP's logout, or None when the IdP offers none. The way back
    ends at the storefront logout of channel ``channel_id`` (None: the default channel),
    landing on ``path`` where the storefront honours one (Catalyst)."""
    return _LOGOUT[type(_provider(store, conn))](store, conn, session, channel_id, path)


def callback_url(store_key: str, conn_key: str) -> str:
    """The OIDC redirect URI to register at the IdP: from ``base_url``, never the request."""
    return f"{runtime().broker_settings.base_url}/{store_key}/oidc/{conn_key}/callback"


def send_saml(message: OutboundMessage) -> BaseResponse:
    """A SAML message on its way to the IdP: a redirect, or an auto-submitting form."""
    if message.url is not None:
        return redirect(message.url, code=303)
    response = Response(message.html or "", mimetype="text/html")
    # The auto-submitting form posts to the IdP: allow exactly that script-free form.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; form-action *; script-src 'unsafe-inline'"
    )
    return response


def storefront_logout(
    store: StoreSettings, channel_id: int | None = None, path: str | None = None
) -> str:
    """The storefront logout that ends every sign-out: channel ``channel_id``'s (None, or a
    channel the store no longer has: the default channel's), in its platform's shape."""
    channel = store.channel(channel_id) or store.default_channel
    return storefront_logout_url(channel.storefront_url, channel.platform, path)


def _provider(store: StoreSettings, conn: Connection) -> Provider:
    return runtime().provider(store.key, conn.key)


def _start(
    store: StoreSettings,
    conn: Connection,
    redirect_to: str,
    link_customer_id: int | None,
    channel_id: int | None,
    trial: bool = False,
    login_hint: str | None = None,
) -> BaseResponse:
    """Begin at the upstream, keep the flow under the key the IdP hands back (OIDC: sealed in
    a cookie of its own; SAML: server-side), and send the browser to the IdP with its id
    cookie (both checked when the answer comes: broker.web.flows)."""
    broker = runtime()
    settings = broker.broker_settings
    provider = _provider(store, conn)
    key = secrets.token_urlsafe(32)
    begun = provider.begin(key=key, return_url=callback_url(store.key, conn.key))
    browser = flows.browser_id(request, settings.cookie_secure)
    pending = PendingSignIn(
        store=store.key,
        connection=conn.key,
        redirect_to=redirect_to,
        browser=flows.digest(browser),
        link_customer_id=link_customer_id,
        nonce=begun.checks.nonce,
        code_verifier=begun.checks.code_verifier,
        request_id=begun.checks.request_id,
        channel_id=channel_id,
        trial=trial,
    )
    now, ttl = int(broker.clock()), settings.flow_ttl_seconds
    carried = isinstance(provider, OIDCProvider)
    if not carried:
        broker.storage.save_pending(keys.saml_relay(key), pending.to_record(), expires_at=now + ttl)
    url = _HINTS.get(type(provider), _no_hints)(begun.url, login_hint, pages.flow_locales())
    response = flows.redirect_binding_browser(url, browser, secure=settings.cookie_secure, ttl=ttl)
    if carried:
        flows.carry_flow(
            response,
            key,
            pending,
            held=request.cookies,
            secret_key=settings.secret_key,
            secure=settings.cookie_secure,
            ttl=ttl,
            now=now,
        )
    return response


def _oidc_hints(url: str, login_hint: str | None, ui_locales: list[str]) -> str:
    """The authorization request with ``login_hint`` and ``ui_locales`` when there are any."""
    extra = {"login_hint": login_hint, "ui_locales": " ".join(ui_locales) or None}
    given = {k: v for k, v in extra.items() if v}
    if not given:
        return url
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(given)}" if parts.query else urlencode(given)
    return urlunsplit(parts._replace(query=query))


def _no_hints(url: str, login_hint: str | None, ui_locales: list[str]) -> str:
    return url


_HINTS: dict[type[Provider], Callable[[str, str | None, list[str]], str]] = {
    OIDCProvider: _oidc_hints,
}


def _oidc_logout(
    store: StoreSettings,
    conn: Connection,
    session: BrokerSession,
    channel_id: int | None,
    path: str | None,
) -> BaseResponse | None:
    """RP-initiated logout with id_token_hint, and a state checked on the way back."""
    broker = runtime()
    state = secrets.token_urlsafe(32)
    url = broker.oidc(store.key, conn.key).end_session_url(
        id_token_hint=session.id_token,
        post_logout_redirect_uri=f"{broker.broker_settings.base_url}/{store.key}/logout/done",
        state=state,
    )
    if url is None:
        return None
    now = int(broker.clock())
    broker.storage.save_pending(
        keys.oidc_logout(state),
        {"store": store.key, "connection": conn.key, "channel_id": channel_id, "path": path},
        expires_at=now + LOGOUT_TTL_SECONDS,
    )
    return redirect(url, code=303)


def _saml_logout(
    store: StoreSettings,
    conn: Connection,
    session: BrokerSession,
    channel_id: int | None,
    path: str | None,
) -> BaseResponse | None:
    """SP-initiated single logout: a signed LogoutRequest to the IdP (None: it has no SLO)."""
    broker = runtime()
    provider = broker.saml(store.key, conn.key)
    if not session.name_id or not provider.has_single_logout():
        return None
    relay_state = secrets.token_urlsafe(32)
    message = provider.logout_request(
        name_id=session.name_id,
        name_id_format=session.name_id_format,
        session_index=session.session_index,
        relay_state=relay_state,
    )
    now = int(broker.clock())
    broker.storage.save_pending(
        keys.saml_logout(relay_state),
        {
            "store": store.key,
            "connection": conn.key,
            "request_id": message.request_id,
            "channel_id": channel_id,
            "path": path,
        },
        expires_at=now + broker.broker_settings.flow_ttl_seconds,
    )
    return send_saml(message)


_LOGOUT: dict[type[Provider], LogoutStart] = {
    OIDCProvider: _oidc_logout,
    SAMLProvider: _saml_logout,
}
