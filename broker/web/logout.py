"""Logout: the storefront, the broker's own record, and (per connection) the IdP.

- ``GET /{store}/logout``: ends this browser's broker session; with the
  connection's ``idp_logout`` on, sends the browser to the IdP's logout (OIDC RP-initiated
  logout with ``id_token_hint``, ``post_logout_redirect_uri`` and a ``state`` checked on
  return; SAML single logout, answered at ``/{store}/saml/{conn}/slo``), and in every case
  ends at the storefront's logout
  (``/login.php?action=logout``), which BigCommerce offers no API for.
- ``POST /{store}/oidc/{conn}/backchannel-logout``: an IdP ends a person's sessions (OpenID
  Connect Back-Channel Logout 1.0): 200, or 400 with an error body.
- ``GET /{store}/session/status?s=<token>``: whether the storefront script's session is still
  alive; the script signs the storefront out when it is not (an IdP-side logout).
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from broker.app import get_broker
from broker.config import OIDCConnection, SAMLConnection, StoreSettings
from broker.errors import BrokerError, FlowExpired
from broker.events import log_event
from broker.web import flows, saml, sessions
from broker.web.signin import audit

bp = Blueprint("logout", __name__)

#: How long the IdP has to send the browser back from its logout page.
LOGOUT_TTL_SECONDS = 600


@bp.get("/<store_key>/logout")
def logout(store_key: str) -> BaseResponse:
    broker = get_broker()
    store = broker.store(store_key)
    session = sessions.current(store)
    target: BaseResponse = redirect(storefront_logout_url(store), code=303)
    if session is not None:
        broker.storage.end_session(session.id, int(broker.clock()))
        audit(store, "logout", "ok", conn=session.connection, customer_id=session.customer_id)
        conn = store.connections.get(session.connection)
        if conn is not None and conn.idp_logout and isinstance(conn, OIDCConnection):
            target = _oidc_logout(store, conn, session.id_token) or target
        elif conn is not None and conn.idp_logout and isinstance(conn, SAMLConnection):
            target = saml.start_logout(store, conn, session) or target
    sessions.clear_cookie(target)
    return target


@bp.get("/<store_key>/logout/done")
def logout_done(store_key: str) -> BaseResponse:
    """The IdP's way back: check ``state``, then sign out of the storefront."""
    broker = get_broker()
    store = broker.store(store_key)
    state = request.args.get("state", "")
    pending = (
        broker.storage.take_pending(_logout_key(state), int(broker.clock())) if state else None
    )
    if pending is None or pending.get("store") != store.key:
        raise FlowExpired(
            "This sign-out could not be confirmed. Finish signing out on the store.",
            detail="logout state unknown, expired or used",
        )
    return redirect(storefront_logout_url(store), code=303)


@bp.post("/<store_key>/oidc/<conn_key>/backchannel-logout")
def backchannel_logout(store_key: str, conn_key: str) -> tuple[Response, int]:
    broker = get_broker()
    store = broker.settings.store(store_key)
    conn = store.connections.get(conn_key) if store else None
    if store is None or not isinstance(conn, OIDCConnection):
        return _logout_error("invalid_request", "unknown store or connection", 400)
    token = request.form.get("logout_token", "")
    if not token:
        return _logout_error("invalid_request", "logout_token is required", 400)
    try:
        claims = broker.oidc(store.key, conn.key).verify_logout_token(token)
    except BrokerError as error:
        log_event(
            "logout.backchannel_refused", store=store.key, connection=conn.key, detail=error.detail
        )
        return _logout_error("invalid_request", "the logout token is not valid", 400)
    now = int(broker.clock())
    if not broker.storage.use_once(f"logout-jti:{store.key}:{claims['jti']}", now + 3600, now):
        return _logout_error("invalid_request", "this logout token was already used", 400)
    ended = broker.storage.end_sessions(
        store.key,
        str(claims["iss"]),
        subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
        sid=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
        now=now,
    )
    audit(store, "logout", "backchannel", conn=conn.key, detail=f"sessions ended: {ended}")
    response = jsonify(status="ok", sessions_ended=ended)
    response.headers["Cache-Control"] = "no-store"
    return response, 200


@bp.get("/<store_key>/session/status")
def session_status(store_key: str) -> Response:
    """Cheap on purpose: one indexed read. Unknown tokens count as ended (fail closed)."""
    broker = get_broker()
    store = broker.store(store_key)
    token = request.args.get("s", "")
    session = broker.storage.session_by_status_key(flows.digest(token)) if token else None
    active = (
        session is not None and session.store == store.key and session.active(int(broker.clock()))
    )
    response = jsonify(active=active)
    response.headers["Access-Control-Allow-Origin"] = _origin(store.storefront_url)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Origin"
    return response


@bp.get("/<store_key>/storefront.js")
@bp.get("/<store_key>/link/script.js")  # its first name, from the account-linking release
def storefront_script(store_key: str) -> Response:
    """The script a theme includes: account linking buttons and following IdP-side logouts."""
    broker = get_broker()
    store = broker.store(store_key)
    base = f"{broker.settings.broker.base_url}/{store.key}"
    body = render_template(
        "storefront.js",
        script_url=f"{base}/storefront.js",
        start_url=f"{base}/link/start",
        status_url=f"{base}/session/status",
        storefront_url=store.storefront_url,
        client_id=store.client_id,
        status_parameter=sessions.STATUS_PARAMETER,
    )
    response = Response(body, mimetype="application/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def storefront_logout_url(store: StoreSettings) -> str:
    return f"{store.storefront_url}/login.php?action=logout"


def _oidc_logout(
    store: StoreSettings, conn: OIDCConnection, id_token: str | None
) -> BaseResponse | None:
    broker = get_broker()
    state = secrets.token_urlsafe(32)
    url = broker.oidc(store.key, conn.key).end_session_url(
        id_token_hint=id_token,
        post_logout_redirect_uri=f"{broker.settings.broker.base_url}/{store.key}/logout/done",
        state=state,
    )
    if url is None:
        return None
    now = int(broker.clock())
    broker.storage.save_pending(
        _logout_key(state),
        {"store": store.key, "connection": conn.key},
        expires_at=now + LOGOUT_TTL_SECONDS,
    )
    return redirect(url, code=303)


def _logout_key(state: str) -> str:
    return "logout:" + flows.digest(state)


def _logout_error(error: str, description: str, status: int) -> tuple[Response, int]:
    response = jsonify(error=error, error_description=description)
    response.headers["Cache-Control"] = "no-store"
    return response, status


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
