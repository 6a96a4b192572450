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

from broker.config import SAMLConnection, StoreSettings
from broker.errors import BrokerError, FlowExpired, InvalidResponse, NotFound, StateMismatch
from broker.events import log_event
from broker.identity import Identity, UpstreamSession
from broker.signin.channels import channel_for
from broker.signin.flows import PendingSignIn
from broker.storage import keys
from broker.upstream.saml import POST, REDIRECT
from broker.web import flows, sessions, starts
from broker.web.context import runtime
from broker.web.signin import audit, finish

bp = Blueprint("saml", __name__)

#: How long the verified identity waits between the ACS POST and its continuation GET.
CONTINUE_TTL_SECONDS = 60


@bp.get("/<store_key>/saml/<conn_key>/metadata")
def metadata(store_key: str, conn_key: str) -> Response:
    broker = runtime()
    _, conn = _saml_connection(store_key, conn_key)
    xml = broker.saml(store_key, conn.key).sp_metadata()
    response = Response(xml, mimetype="application/samlmetadata+xml")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.post("/<store_key>/saml/<conn_key>/acs")
def acs(store_key: str, conn_key: str) -> BaseResponse:
    broker = runtime()
    store, conn = _saml_connection(store_key, conn_key)
    encoded = request.form.get("SAMLResponse", "")
    relay_state = request.form.get("RelayState", "")
    now = int(broker.clock())
    record = broker.storage.take_pending(keys.saml_relay(relay_state), now) if relay_state else None
    pending = None if record is None else PendingSignIn.from_record(record)
    if pending is not None and not pending.belongs_to(store.key, conn.key):
        raise StateMismatch("This sign-in was started for another store.", detail="relay store")
    verified = broker.saml(store.key, conn.key).complete(
        {"SAMLResponse": encoded},
        checks=pending.checks() if pending is not None else None,
        return_url=starts.callback_url(store.key, conn.key),
    )
    # One use per assertion, across every broker process, until it could no longer be valid.
    replay_key = keys.saml_assertion(store.key, conn.key, str(verified.replay_id))
    expires = verified.replay_until or now
    if not broker.storage.use_once(replay_key, expires_at=max(expires, now + 60), now=now):
        raise InvalidResponse(
            "This sign-in answer was already used. Please start signing in again.",
            detail="replayed assertion id",
        )
    identity, upstream = verified.identity, verified.session
    if pending is None:  # IdP-initiated: RelayState is at most a path on the store
        channel = channel_for(store, conn, None)  # the connection's home channel
        redirect_to = sessions.landing_redirect(store, relay_state, channel)
        return finish(store, conn, identity, redirect_to, upstream, channel_id=channel.id)
    key = secrets.token_urlsafe(32)
    broker.storage.save_pending(
        keys.saml_continue(key),
        {
            **pending.to_record(),
            "identity": identity.to_record(),
            "upstream": upstream.to_record(),
        },
        expires_at=now + CONTINUE_TTL_SECONDS,
    )
    return redirect(f"/{store.key}/saml/{conn.key}/acs/continue?k={key}", code=303)


@bp.get("/<store_key>/saml/<conn_key>/acs/continue")
def acs_continue(store_key: str, conn_key: str) -> BaseResponse:
    broker = runtime()
    store, conn = _saml_connection(store_key, conn_key)
    record = broker.storage.take_pending(
        keys.saml_continue(request.args.get("k", "")), int(broker.clock())
    )
    pending = None if record is None else PendingSignIn.from_record(record)
    if record is None or pending is None or not pending.belongs_to(store.key, conn.key):
        raise FlowExpired(
            "This sign-in has expired or was already used. Please start signing in again.",
            detail="no verified saml sign-in under that key",
        )
    if not flows.same_browser(request, pending.browser, broker.broker_settings.cookie_secure):
        raise StateMismatch(
            "This sign-in was started in another browser. Please start signing in again "
            "from the store.",
            detail="saml browser binding mismatch",
        )
    return finish(
        store,
        conn,
        Identity.from_record(record["identity"]),
        pending.redirect_to,
        UpstreamSession.from_record(record.get("upstream")),
        link_customer_id=pending.link_customer_id,
        channel_id=pending.channel_id,
        trial=pending.trial,
    )


@bp.route("/<store_key>/saml/<conn_key>/slo", methods=["GET", "POST"])
def slo(store_key: str, conn_key: str) -> BaseResponse:
    """Single logout: the IdP's LogoutResponse to our request, or its own LogoutRequest."""
    broker = runtime()
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
        relay_state = params.get("RelayState", "")
        ours = broker.storage.peek_pending(keys.saml_logout(relay_state), now) or {}
        if ours.get("store") != store.key:
            ours = {}
        landing = starts.storefront_logout(store, ours.get("channel_id"), ours.get("path"))
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
        return redirect(landing, code=303)
    if "SAMLRequest" not in params:
        raise InvalidResponse("This is not a SAML logout message.", detail="no SAMLRequest")
    info = provider.handle_logout_request(binding=binding, params=params, query_string=query)
    if not broker.storage.use_once(
        keys.saml_logout_request(store.key, conn.key, info.request_id), info.not_on_or_after, now
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
    return starts.send_saml(
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
    broker = runtime()
    relay_state = params.get("RelayState", "")
    pending = (
        broker.storage.take_pending(keys.saml_logout(relay_state), now) if relay_state else None
    )
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


def _saml_connection(store_key: str, conn_key: str) -> tuple[StoreSettings, SAMLConnection]:
    store, conn = runtime().connection(store_key, conn_key)
    if not isinstance(conn, SAMLConnection):
        raise NotFound("This store has no such SAML connection.", detail=f"conn={conn_key!r}")
    return store, conn
