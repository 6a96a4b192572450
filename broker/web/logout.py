"""Logout: the storefront, the broker's own record, and (per connection) the IdP.

- ``GET /{store}/logout``: ends this browser's broker session (a visit another site's page
  sent the browser on gets a "Sign out of ...?" page instead, whose form posts to
  ``POST /{store}/logout`` with a CSRF token: no site can sign a shopper out); with the
  connection's ``idp_logout`` on, sends the browser to the IdP's logout (OIDC RP-initiated
  logout with ``id_token_hint``, ``post_logout_redirect_uri`` and a ``state`` checked on
  return; SAML single logout, answered at ``/{store}/saml/{conn}/slo``), and in every case
  ends at the storefront's logout, which BigCommerce offers no API for: the logout of the
  channel the shopper signs out of (``channel=ID``, else the storefront the Referer names,
  else the default channel), ``/login.php?action=logout`` on Stencil,
  ``/logout?redirectTo=<path>`` on Catalyst (the path of ``redirect_to``, else ``/``).
- ``POST /{store}/oidc/{conn}/backchannel-logout``: an IdP ends a person's sessions (OpenID
  Connect Back-Channel Logout 1.0): 200, or 400 with an error body.
- ``GET /{store}/oidc/{conn}/frontchannel-logout?iss=...&sid=...``: the same from the IdP's
  logout page, which loads it in an iframe (OpenID Connect Front-Channel Logout 1.0): the
  sessions of that ``sid`` end (the connection's only; without a ``sid``, when the connection
  does not require one, the session this browser's cookie names, if the iframe sends it). An
  ``iss``, when given, must be the connection's issuer (Entra ID sends none: the URL names the
  connection already). The page may be framed by the IdP's origins only, is never cached, and
  needs no CSRF token: it can only sign out, and only the sessions whose ``sid`` it knows.
- ``GET|POST /{store}/session/status``: whether the storefront script's session is still
  alive. ``false`` (on which the script signs the storefront out: an IdP-side logout) only
  when the POST also carries the storefront's Current Customer JWT naming the session's own
  customer; anything that cannot be told apart is ``"unknown"``, and the script drops it.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from broker.bigcommerce.current_customer import verify_current_customer
from broker.bigcommerce.login_token import safe_redirect_path
from broker.config import Channel, StoreSettings
from broker.errors import BrokerError, FlowExpired, InvalidResponse
from broker.events import log_event
from broker.signin.channels import channel_of_url, chooser_channel
from broker.storage import keys
from broker.web import flows, pages, sessions, starts
from broker.web.context import runtime
from broker.web.csrf import NONCE_FRAGMENT, check_csrf, origin_of
from broker.web.signin import audit

bp = Blueprint("logout", __name__)


@bp.get("/<store_key>/logout")
@bp.post("/<store_key>/logout")
def logout(store_key: str) -> BaseResponse:
    broker = runtime()
    store = broker.store(store_key)
    channel = _logout_channel(store)
    values = request.form if request.method == "POST" else request.args
    path = safe_redirect_path(values.get("redirect_to"), "") or None
    if request.method == "POST":
        check_csrf()
    elif _sent_by_another_site(store):
        # A shopper page like the others: the store's look, language and own templates.
        page = pages.render(
            "logout_confirm.html",
            store,
            channel=channel,
            channel_parameter=None if channel.id == store.channel_id else channel.id,
            redirect_to=path,
        )
        return Response(page, mimetype="text/html")
    session = sessions.current(store)
    landing = starts.storefront_logout(store, channel.id, path)
    target: BaseResponse = redirect(landing, code=303)
    if session is not None:
        broker.storage.end_session(session.id, int(broker.clock()))
        audit(store, "logout", "ok", conn=session.connection, customer_id=session.customer_id)
        conn = store.connections.get(session.connection)
        try:
            if conn is not None and conn.idp_logout:
                target = (
                    starts.idp_logout(store, conn, session, channel_id=channel.id, path=path)
                    or target
                )
        except BrokerError as error:
            # The IdP cannot be reached or its connection is misconfigured: the shopper is
            # signed out of the broker already, and still goes to the storefront's logout.
            log_event(
                "logout.idp_skipped",
                level=logging.WARNING,
                store=store.key,
                connection=session.connection,
                code=error.code,
                detail=error.detail,
            )
    sessions.clear_cookie(target)
    return target


@bp.get("/<store_key>/logout/done")
def logout_done(store_key: str) -> BaseResponse:
    """The IdP's way back: check ``state``, then sign out of the storefront.

    The broker session ended before the browser went to the IdP, so the storefront's logout
    follows whatever the state says: an unknown, expired or used one is logged, and must not
    leave the shopper signed in to the storefront (no error page)."""
    broker = runtime()
    store = broker.store(store_key)
    state = request.args.get("state", "")
    pending = (
        broker.storage.take_pending(keys.oidc_logout(state), int(broker.clock())) if state else None
    )
    if pending is None or pending.get("store") != store.key:
        log_event(
            "logout.return_refused",
            level=logging.WARNING,
            store=store.key,
            code=FlowExpired.code,
            detail="logout state missing, unknown, expired or used",
        )
        audit(store, "logout", "return_state_refused")
        pending = {}
    landing = starts.storefront_logout(store, pending.get("channel_id"), pending.get("path"))
    return redirect(landing, code=303)


@bp.post("/<store_key>/oidc/<conn_key>/backchannel-logout")
def backchannel_logout(store_key: str, conn_key: str) -> tuple[Response, int]:
    broker = runtime()
    store = broker.find_store(store_key)
    conn = store.connections.get(conn_key) if store else None
    if store is None or conn is None or conn.type != "oidc":
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
    # Per connection: a jti is unique only at its issuer, and one connection's must not block
    # another's.
    jti_key = keys.logout_jti(store.key, conn.key, str(claims["jti"]))
    if not broker.storage.use_once(jti_key, now + 3600, now):
        return _logout_error("invalid_request", "this logout token was already used", 400)
    provider = broker.oidc(store.key, conn.key)
    ended = broker.storage.end_sessions(
        store.key,
        conn.key,
        # The identity's subject (a multi-tenant connection's is tenant-qualified).
        subject=provider.subject_of(claims) if isinstance(claims.get("sub"), str) else None,
        sid=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
        now=now,
    )
    audit(store, "logout", "backchannel", conn=conn.key, detail=f"sessions ended: {ended}")
    response = jsonify(status="ok", sessions_ended=ended)
    response.headers["Cache-Control"] = "no-store"
    return response, 200


@bp.get("/<store_key>/oidc/<conn_key>/frontchannel-logout")
def frontchannel_logout(store_key: str, conn_key: str) -> Response:
    """OpenID Connect Front-Channel Logout 1.0, section 2 and 4: the RP's logout page in the
    IdP's iframe. Refusals (another ``iss``, no ``sid`` when one is required) are 400 pages and
    end nothing."""
    broker = runtime()
    store, conn = broker.connection(store_key, conn_key)
    provider = broker.oidc(store.key, conn.key)
    iss, sid = request.args.get("iss"), request.args.get("sid")
    refused = "This sign-out request from your identity provider was not accepted."
    if iss is not None and not provider.accepts_issuer(iss):
        raise InvalidResponse(refused, detail="frontchannel logout: iss is not the issuer")
    if not sid and provider.connection.frontchannel_logout_session_required:
        raise InvalidResponse(
            refused,
            detail="frontchannel logout: no sid (the IdP must send it: its sid claim in the ID "
            "token; or frontchannel_logout_session_required = false)",
        )
    now = int(broker.clock())
    if sid:
        ended = broker.storage.end_sessions(store.key, conn.key, subject=None, sid=sid, now=now)
    else:
        # Only a same-site IdP's iframe carries the SameSite=Lax cookie.
        session = sessions.current(store)
        ended = 0
        if session is not None and session.connection == conn.key:
            broker.storage.end_session(session.id, now)
            ended = 1
    if ended:
        # Anyone can call this URL with any sid: only calls that ended something are audited.
        audit(store, "logout", "frontchannel", conn=conn.key, detail=f"sessions ended: {ended}")
    else:
        log_event("logout.frontchannel_nothing", store=store.key, connection=conn.key)
    page = pages.render("frontchannel_logout.html", store, ended=ended)
    response = Response(page, mimetype="text/html")
    ancestors = " ".join(provider.frame_origins()) or "'none'"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"frame-ancestors {ancestors}; base-uri 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<store_key>/session/status")
@bp.post("/<store_key>/session/status")
def session_status(store_key: str) -> Response:
    """Cheap on purpose: one indexed read (and, for a POST, an HMAC check).

    ``{"active": true}`` for a live session of this store. ``{"active": false}`` only for an
    ended one whose customer the POST's ``customer_jwt`` (the storefront's Current Customer
    JWT) names: a token planted through a link (``?sso_session=`` of someone else's ended
    session) must not sign this shopper out. Everything else, forged tokens included, is
    ``{"active": "unknown"}``. A JWT naming another customer than a live session's is
    ``"unknown"`` too, so the script never keeps another person's token."""
    broker = runtime()
    store = broker.store(store_key)
    values = request.form if request.method == "POST" else request.args
    token = values.get("s", "")
    session = broker.storage.session_by_status_key(flows.digest(token)) if token else None
    if session is not None and session.store != store.key:
        session = None
    alive = session is not None and session.active(int(broker.clock()))
    answer: bool | str = True if alive else "unknown"
    customer_jwt = request.form.get("customer_jwt", "") if request.method == "POST" else ""
    if customer_jwt:
        try:
            customer = verify_current_customer(
                customer_jwt,
                client_id=store.client_id,
                client_secret=store.client_secret,
                store_hash=store.store_hash,
                now=int(broker.clock()),
            )
        except BrokerError:
            customer = None
        same = customer is not None and session is not None and customer.id == session.customer_id
        answer = alive if same else "unknown"
    response = jsonify(active=answer)
    response.headers["Access-Control-Allow-Origin"] = _storefront_origin(store)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Origin"
    return response


@bp.get("/<store_key>/storefront.js")
@bp.get("/<store_key>/link/script.js")  # its first name, from the account-linking release
def storefront_script(store_key: str) -> Response:
    """The script a theme includes: account linking buttons and following IdP-side logouts."""
    broker = runtime()
    store = broker.store(store_key)
    # One script per storefront: ``?channel=ID`` for a channel other than the default.
    channel = chooser_channel(store, requested=request.args.get("channel"), redirect_to=None)
    base = f"{broker.broker_settings.base_url}/{store.key}"
    # The linking URLs name this channel, so linking starts and ends on this storefront.
    suffix = "" if channel.id == store.channel_id else f"?channel={channel.id}"
    body = render_template(
        "storefront.js",
        script_url=f"{base}/storefront.js{suffix}",
        start_url=f"{base}/link/start{suffix}",
        login_url=f"{base}/login",
        status_url=f"{base}/session/status",
        nonce_url=f"{base}/link/nonce{suffix}",
        nonce_fragment=NONCE_FRAGMENT,
        storefront_url=channel.storefront_url,
        client_id=store.client_id,
        status_parameter=sessions.STATUS_PARAMETER,
    )
    response = Response(body, mimetype="application/javascript")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _logout_channel(store: StoreSettings) -> Channel:
    """The channel signing out: ``channel=ID`` (the query, or the confirmation page's form),
    else the storefront the Referer (or Origin) names, else the default channel. Only a
    storefront logout follows from it, so an unknown id is the default channel, not an error."""
    values = request.form if request.method == "POST" else request.args
    requested = values.get("channel", "")
    if requested.isdigit() and (channel := store.channel(int(requested))) is not None:
        return channel
    for header in ("Referer", "Origin"):
        named = request.headers.get(header)
        if named and (channel := channel_of_url(store, named)) is not None:
            return channel
    return store.default_channel


def _storefront_origin(store: StoreSettings) -> str:
    """The CORS origin of a status answer: the asking storefront's, if it is one of the
    store's channels, else the default channel's."""
    asking = request.headers.get("Origin", "")
    origins = [_origin(c.storefront_url) for c in store.channels.values()]
    return asking if asking in origins else origins[0]


def _sent_by_another_site(store: StoreSettings) -> bool:
    """Whether this GET is a navigation another site's page started (logout CSRF): a
    cross-site or same-site visit whose Referer (or Origin) is neither the storefront's nor
    the broker's. A visit saying nothing of where it came from (older browsers, no
    Sec-Fetch-Site and no Referer) is taken as the theme's link, as before."""
    site = request.headers.get("Sec-Fetch-Site")
    if site in ("same-origin", "none"):
        return False  # the broker's own pages, or typed in / bookmarked
    referer = request.headers.get("Origin") or request.headers.get("Referer")
    if site is None and not referer:
        return False
    ours = {origin_of(c.storefront_url) for c in store.channels.values()}
    ours.add(origin_of(runtime().broker_settings.base_url))
    return not referer or origin_of(referer) not in ours


def _logout_error(error: str, description: str, status: int) -> tuple[Response, int]:
    response = jsonify(error=error, error_description=description)
    response.headers["Cache-Control"] = "no-store"
    return response, status


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
