"""Sign-in views: the connection chooser, ``/login/<conn>`` and the OIDC callback.

Thin on purpose: parse the request, call upstream -> accounts -> login token, redirect.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from werkzeug.wrappers import Response

from broker.app import get_broker
from broker.config import OIDCConnection, SAMLConnection, StoreSettings
from broker.web import flows, saml, sessions
from broker.web.signin import finish_sign_in, link_to_signed_in_customer

bp = Blueprint("sso", __name__)


@bp.get("/<store_key>/login")
def choose(store_key: str) -> str:
    """A page listing the store's sign-in options, for themes that link one place."""
    store = get_broker().store(store_key)
    redirect_to = sessions.landing_redirect(store, request.args.get("redirect_to"))
    return render_template("choose.html", store=store, redirect_to=redirect_to)


@bp.get("/<store_key>/login/<conn_key>")
def login(store_key: str, conn_key: str) -> Response:
    broker = get_broker()
    store, conn = broker.connection(store_key, conn_key)
    redirect_to = sessions.landing_redirect(store, request.args.get("redirect_to"))
    if isinstance(conn, SAMLConnection):
        return saml.start_sign_in(store, conn, redirect_to=redirect_to)
    return start_flow(store, conn, redirect_to=redirect_to)


def start_flow(
    store: StoreSettings,
    conn: OIDCConnection,
    *,
    redirect_to: str,
    link_customer_id: int | None = None,
) -> Response:
    """Record a new flow and send the browser to the IdP."""
    broker = get_broker()
    settings = broker.settings.broker
    state, flow, browser = flows.begin(
        broker.storage,
        request,
        store=store.key,
        connection=conn.key,
        redirect_to=redirect_to,
        now=int(broker.clock()),
        ttl=settings.flow_ttl_seconds,
        secure=settings.cookie_secure,
        link_customer_id=link_customer_id,
    )
    url = broker.oidc(store.key, conn.key).authorization_url(
        redirect_uri=callback_url(store.key, conn.key),
        state=state,
        nonce=flow.nonce,
        code_verifier=flow.code_verifier,
    )
    return flows.redirect_binding_browser(
        url, browser, secure=settings.cookie_secure, ttl=settings.flow_ttl_seconds
    )


@bp.get("/<store_key>/oidc/<conn_key>/callback")
def oidc_callback(store_key: str, conn_key: str) -> Response:
    broker = get_broker()
    store, conn = broker.connection(store_key, conn_key)
    flow = flows.complete(
        broker.storage,
        request,
        store=store.key,
        connection=conn.key,
        now=int(broker.clock()),
        secure=broker.settings.broker.cookie_secure,
    )
    identity, upstream = broker.oidc(store.key, conn.key).handle_callback(
        request.args,
        redirect_uri=callback_url(store.key, conn.key),
        nonce=flow.nonce,
        code_verifier=flow.code_verifier,
    )
    if flow.link_customer_id is not None:
        return link_to_signed_in_customer(store, conn, identity, flow.link_customer_id)
    return finish_sign_in(store, conn, identity, flow.redirect_to, upstream)


def callback_url(store_key: str, conn_key: str) -> str:
    """The redirect URI to register at the IdP: from ``base_url``, never from the request."""
    return f"{get_broker().settings.broker.base_url}/{store_key}/oidc/{conn_key}/callback"
