"""Sign-in views: the connection chooser, ``/login/<conn>``, the OIDC callback, and the
"What's your name?" step of a sign-in that would create a customer the IdP named no first or
last name for (``/signin/name``, after the OIDC callback and the SAML ACS alike).

Thin on purpose: parse the request, call upstream -> accounts -> login token, redirect.
"""

from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from broker.signin.channels import choose_channel
from broker.web import discovery, flows, sessions, signin, starts
from broker.web.context import runtime
from broker.web.csrf import check_csrf
from broker.web.signin import finish

bp = Blueprint("sso", __name__)


@bp.get("/<store_key>/login")
@bp.post("/<store_key>/login")
def choose(store_key: str) -> Response:
    """A page listing the store's sign-in options, for themes that link one place; with
    ``email=``, straight to the connection that owns its domain (broker.web.discovery; its
    own form posts the e-mail, so it is in no URL)."""
    return discovery.choose(store_key)


@bp.get("/<store_key>/login/<conn_key>")
def login(store_key: str, conn_key: str) -> Response:
    broker = runtime()
    store, conn = broker.connection(store_key, conn_key)
    channel, wanted = choose_channel(
        store,
        conn,
        requested=request.args.get("channel"),
        redirect_to=request.args.get("redirect_to"),
    )
    redirect_to = sessions.landing_redirect(store, wanted, channel)
    return starts.sign_in(store, conn, redirect_to=redirect_to, channel_id=channel.id)


@bp.get("/<store_key>/oidc/<conn_key>/callback")
def oidc_callback(store_key: str, conn_key: str) -> Response:
    broker = runtime()
    store, conn = broker.connection(store_key, conn_key)
    flow = flows.complete(
        broker.storage,
        request,
        store=store.key,
        connection=conn.key,
        now=int(broker.clock()),
        secure=broker.broker_settings.cookie_secure,
        secret_key=broker.broker_settings.secret_key,
    )
    verified = broker.oidc(store.key, conn.key).complete(
        request.args, checks=flow.checks(), return_url=starts.callback_url(store.key, conn.key)
    )
    identity, upstream = verified.identity, verified.session
    return finish(
        store,
        conn,
        identity,
        flow.redirect_to,
        upstream,
        link_customer_id=flow.link_customer_id,
        channel_id=flow.channel_id,
        trial=flow.trial,
    )


@bp.get("/<store_key>/signin/name")
def name_form(store_key: str) -> str:
    return signin.name_page(runtime().store(store_key))


@bp.post("/<store_key>/signin/name")
def name_submit(store_key: str) -> Response | tuple[str, int]:
    check_csrf()
    return signin.name_given(runtime().store(store_key))
