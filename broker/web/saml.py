"""SAML views: SP metadata, the start of an SP-initiated sign-in, and the ACS.

The ACS is a cross-site POST, which carries no SameSite=Lax cookie, so the browser check of
an SP-initiated sign-in happens one step later: the POST verifies the Response (signature,
conditions, InResponseTo against the request stored under its RelayState, the assertion id
against the replay cache), stores the verified identity for a minute, and answers 303 to
``acs/continue``. That GET is a top-level navigation, so the browser's cookie comes along and
must match the one that started the sign-in. An IdP-initiated Response (only when the
connection allows it) has no browser to match; its RelayState is an untrusted redirect path.
"""

from __future__ import annotations

import logging
import secrets

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from broker.app import get_broker
from broker.config import SAMLConnection, StoreSettings
from broker.errors import BrokerError, FlowExpired, InvalidResponse, NotFound, StateMismatch
from broker.events import log_event
from broker.identity import Identity, UpstreamSession
from broker.storage import BrokerSession
from broker.upstream.saml import POST, REDIRECT, OutboundMessage
from broker.web import flows, sessions
from broker.web.signin import audit, finish_sign_in, link_to_signed_in_customer

bp = Blueprint("saml", __name__)

#: How long the verified identity waits between the ACS POST and its continuation GET.
CONTINUE_TTL_SECONDS = 60


@bp.get("/<store_key>/saml/<conn_key>/metadata")
def metadata(store_key: str, conn_key: str) -> Response:
    broker = get_broker()
    _, conn = _saml_connection(store_key, conn_key)
    xml = broker.saml(store_key, conn.key).sp_metadata()
    response = Response(xml, mimetype="application/samlmetadata+xml")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def start_sign_in(
    store: StoreSettings,
    conn: SAMLConnection,
    *,
    redirect_to: str,
    link_customer_id: int | None = None,
) -> BaseResponse:
    """An AuthnRequest over HTTP-Redirect, remembered under an opaque RelayState."""
    broker = get_broker()
    settings = broker.settings.broker
    relay_state = secrets.token_urlsafe(32)
    request_id, url = broker.saml(store.key, conn.key).authn_request(relay_state=relay_state)
    browser = flows.browser_id(request, settings.cookie_secure)
    now = int(broker.clock())
    broker.storage.save_pending(
        _relay_key(relay_state),
        {
            "store": store.key,
            "connection": conn.key,
            "request_id": request_id,
            "redirect_to": redirect_to,
            "browser": flows.digest(browser),
            "link_customer_id": link_customer_id,
        },
        expires_at=now + settings.flow_ttl_seconds,
    )
    return flows.redirect_binding_browser(
        url, browser, secure=settings.cookie_secure, ttl=settings.flow_ttl_seconds
    )


@bp.post("/<store_key>/saml/<conn_key>/acs")
def acs(store_key: str, conn_key: str) -> BaseResponse:
    broker = get_broker()
    store, conn = _saml_connection(store_key, conn_key)
    encoded = request.form.get("SAMLResponse", "")
    relay_state = request.form.get("RelayState", "")
    now = int(broker.clock())
    pending = broker.storage.take_pending(_relay_key(relay_state), now) if relay_state else None
    if pending is not None and (pending["store"], pending["connection"]) != (store.key, conn.key):
        raise StateMismatch("This sign-in was started for another store.", detail="relay store")
    expected = pending["request_id"] if pending is not None else None
    assertion = broker.saml(store.key, conn.key).handle_response(
        encoded, expected_request_id=expected
    )
    # One use per assertion, across every broker process, until it could no longer be valid.
    replay_key = f"saml:{store.key}:{conn.key}:{assertion.assertion_id}"
    expires = assertion.not_on_or_after + conn.clock_skew_seconds
    if not broker.storage.use_once(replay_key, expires_at=max(expires, now + 60), now=now):
        raise InvalidResponse(
            "This sign-in answer was already used. Please start signing in again.",
            detail="replayed assertion id",
        )
    upstream = UpstreamSession(
        name_id=assertion.name_id or None,
        name_id_format=assertion.name_id_format,
        session_index=assertion.session_index,
    )
    if pending is None:  # IdP-initiated: RelayState is at most a path on the store
        redirect_to = sessions.landing_redirect(store, relay_state)
        return finish_sign_in(store, conn, assertion.identity, redirect_to, upstream)
    key = secrets.token_urlsafe(32)
    broker.storage.save_pending(
        _continue_key(key),
        {
            **pending,
            "identity": assertion.identity.to_record(),
            "upstream": upstream.to_record(),
        },
        expires_at=now + CONTINUE_TTL_SECONDS,
    )
    return redirect(f"/{store.key}/saml/{conn.key}/acs/continue?k={key}", code=303)


@bp.get("/<store_key>/saml/<conn_key>/acs/continue")
def acs_continue(store_key: str, conn_key: str) -> BaseResponse:
    broker = get_broker()
    store, conn = _saml_connection(store_key, conn_key)
    record = broker.storage.take_pending(
        _continue_key(request.args.get("k", "")), int(broker.clock())
    )
    if record is None or (record["store"], record["connection"]) != (store.key, conn.key):
        raise FlowExpired(
            "This sign-in has expired or was already used. Please start signing in again.",
            detail="no verified saml sign-in under that key",
        )
    if not flows.same_browser(request, record["browser"], broker.settings.broker.cookie_secure):
        raise StateMismatch(
            "This sign-in was started in another browser. Please start signing in again "
            "from the store.",
            detail="saml browser binding mismatch",
        )
    identity = Identity.from_record(record["identity"])
    if record.get("link_customer_id") is not None:
        return link_to_signed_in_customer(store, conn, identity, int(record["link_customer_id"]))
    upstream = UpstreamSession.from_record(record.get("upstream"))
    return finish_sign_in(store, conn, identity, record["redirect_to"], upstream)


def start_logout(
    store: StoreSettings, conn: SAMLConnection, session: BrokerSession
) -> BaseResponse | None:
    """SP-initiated single logout: a signed LogoutRequest to the IdP (None: it has no SLO)."""
    broker = get_broker()
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
        _logout_key(relay_state),
        {"store": store.key, "connection": conn.key, "request_id": message.request_id},
        expires_at=now + broker.settings.broker.flow_ttl_seconds,
    )
    return _send(message)


@bp.route("/<store_key>/saml/<conn_key>/slo", methods=["GET", "POST"])
def slo(store_key: str, conn_key: str) -> BaseResponse:
    """Single logout: the IdP's LogoutResponse to our request, or its own LogoutRequest."""
    broker = get_broker()
    store, conn = _saml_connection(store_key, conn_key)
    provider = broker.saml(store.key, conn.key)
    binding = REDIRECT if request.method == "GET" else POST
    params = dict(request.args if request.method == "GET" else request.form)
    query = request.query_string.decode() if request.method == "GET" else None
    now = int(broker.clock())
    if "SAMLResponse" in params:
        # The end of our own sign-out: the broker session ended before the browser went to the
        # IdP, so whatever the IdP answers, the shopper goes on to the storefront's logout. A
        # refused answer (unsigned, as SimpleSAMLphp sends by default; forged; stale) is only
        # logged: it must not leave the shopper signed in to the storefront.
        try:
            _check_logout_response(store, conn, binding, params, query, now)
        except BrokerError as error:
            log_event(
                "logout.idp_answer_refused",
                level=logging.WARNING,
                store=store.key,
                connection=conn.key,
                code=error.code,
                detail=error.detail,
            )
            audit(store, "logout", "idp_answer_refused", conn=conn.key, detail=error.code)
        return redirect(f"{store.storefront_url}/login.php?action=logout", code=303)
    if "SAMLRequest" not in params:
        raise InvalidResponse("This is not a SAML logout message.", detail="no SAMLRequest")
    info = provider.handle_logout_request(binding=binding, params=params, query_string=query)
    if not broker.storage.use_once(
        f"saml-logout:{store.key}:{conn.key}:{info.request_id}", info.not_on_or_after, now
    ):
        raise InvalidResponse("This logout request was already used.", detail="replayed")
    ended = broker.storage.end_saml_sessions(
        store.key,
        conn.key,
        name_id=info.name_id,
        session_indexes=info.session_indexes,
        now=now,
    )
    audit(store, "logout", "saml_idp_initiated", conn=conn.key, detail=f"sessions ended: {ended}")
    return _send(
        provider.logout_response(in_response_to=info.request_id, relay_state=info.relay_state)
    )


def _check_logout_response(
    store: StoreSettings,
    conn: SAMLConnection,
    binding: str,
    params: dict[str, str],
    query: str | None,
    now: int,
) -> None:
    """The IdP's LogoutResponse answers the LogoutRequest this RelayState stands for."""
    broker = get_broker()
    relay_state = params.get("RelayState", "")
    pending = broker.storage.take_pending(_logout_key(relay_state), now) if relay_state else None
    if pending is None or (pending["store"], pending["connection"]) != (store.key, conn.key):
        raise FlowExpired(
            "This sign-out could not be confirmed.",
            detail="saml logout relay state unknown, expired or used",
        )
    broker.saml(store.key, conn.key).handle_logout_response(
        binding=binding,
        params=params,
        expected_request_id=pending["request_id"],
        query_string=query,
    )


def _send(message: OutboundMessage) -> BaseResponse:
    if message.url is not None:
        return redirect(message.url, code=303)
    response = Response(message.html or "", mimetype="text/html")
    # The auto-submitting form posts to the IdP: allow exactly that script-free form.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; form-action *; script-src 'unsafe-inline'"
    )
    return response


def _logout_key(relay_state: str) -> str:
    return "saml-logout:" + flows.digest(relay_state)


def _saml_connection(store_key: str, conn_key: str) -> tuple[StoreSettings, SAMLConnection]:
    store, conn = get_broker().connection(store_key, conn_key)
    if not isinstance(conn, SAMLConnection):
        raise NotFound("This store has no such SAML connection.", detail=f"conn={conn_key!r}")
    return store, conn


def _relay_key(relay_state: str) -> str:
    return "saml-relay:" + flows.digest(relay_state)


def _continue_key(key: str) -> str:
    return "saml-continue:" + flows.digest(key)
