"""Account linking pages under ``/{store}/link``.

- ``script.js``: the storefront script (served by :mod:`broker.web.logout`, also at
  ``/{store}/storefront.js``). On a click on any
  ``[data-sso-link]`` element it fetches the storefront's Current Customer JWT (same origin)
  and posts it to ``start``.
- ``POST start``: verifies that JWT (HS256 with the client secret; aud, operation,
  store_hash, exp) and remembers the customer for 15 minutes in the signed session.
- ``GET /{store}/link``: the customer's linked sign-ins, with Link and Unlink buttons
  (POST, CSRF token). Linking runs an IdP sign-in whose result is tied to that customer.
- ``GET|POST confirm``: the ``link = "confirm"`` policy's page, where a shopper whose e-mail
  matches an existing account enters that account's storefront password once.
"""

from __future__ import annotations

import time

from flask import Blueprint, redirect, render_template, request, session
from werkzeug.wrappers import Response as BaseResponse

from broker.accounts import WrongPassword, confirm_ownership
from broker.app import get_broker
from broker.bigcommerce.api import Customer
from broker.bigcommerce.current_customer import verify_current_customer
from broker.config import SAMLConnection, StoreSettings
from broker.errors import FlowExpired, NotFound
from broker.identity import Identity, UpstreamSession
from broker.web import saml
from broker.web.csrf import check_csrf
from broker.web.signin import (
    audit,
    pending_confirmation,
    redirect_signed_in,
    store_context,
)
from broker.web.sso import start_flow

bp = Blueprint("link", __name__)

#: How long a storefront customer may use the link pages after proving who they are.
LINK_SESSION_SECONDS = 15 * 60


@bp.post("/<store_key>/link/start")
def start(store_key: str) -> BaseResponse:
    broker = get_broker()
    store = broker.store(store_key)
    customer = verify_current_customer(
        request.form.get("customer_jwt", ""),
        client_id=store.client_id,
        client_secret=store.client_secret,
        store_hash=store.store_hash,
        now=int(broker.clock()),
    )
    session.clear()  # a new person: nothing of a previous session carries over
    session["link"] = {
        "store": store.key,
        "customer_id": customer.id,
        "email": customer.email,
        "until": int(broker.clock()) + LINK_SESSION_SECONDS,
    }
    return redirect(f"/{store.key}/link", code=303)


@bp.get("/<store_key>/link")
def manage(store_key: str) -> str:
    broker = get_broker()
    store = broker.store(store_key)
    customer_id, email = _linking_customer(store)
    links = broker.storage.links_for_customer(store.key, customer_id)
    linked_conns = {link.connection for link in links}
    return render_template(
        "link.html",
        store=store,
        email=email,
        links=links,
        available=[c for c in store.connections.values() if c.key not in linked_conns],
        just_linked=store.connections.get(request.args.get("linked", "")),
        just_unlinked=request.args.get("unlinked") == "1",
        when=lambda ts: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)),
    )


@bp.post("/<store_key>/link/connect/<conn_key>")
def connect(store_key: str, conn_key: str) -> BaseResponse:
    check_csrf()
    store, conn = get_broker().connection(store_key, conn_key)
    customer_id, _ = _linking_customer(store)
    if isinstance(conn, SAMLConnection):
        return saml.start_sign_in(
            store, conn, redirect_to=store.default_redirect, link_customer_id=customer_id
        )
    return start_flow(store, conn, redirect_to=store.default_redirect, link_customer_id=customer_id)


@bp.post("/<store_key>/link/unlink/<int:link_id>")
def unlink(store_key: str, link_id: int) -> BaseResponse:
    check_csrf()
    broker = get_broker()
    store = broker.store(store_key)
    customer_id, _ = _linking_customer(store)
    if not broker.storage.delete_link(store.key, link_id, customer_id=customer_id):
        raise NotFound("That sign-in is not linked to your account.", detail=f"link={link_id}")
    audit(store, "unlink", "ok", customer_id=customer_id, detail=f"link {link_id}")
    return redirect(f"/{store.key}/link?unlinked=1", code=303)


@bp.get("/<store_key>/link/confirm")
def confirm_form(store_key: str) -> str:
    store = get_broker().store(store_key)
    record = pending_confirmation(store)
    return _confirm_page(store, record["customer"]["email"], record["connection"])


@bp.post("/<store_key>/link/confirm")
def confirm(store_key: str) -> BaseResponse | tuple[str, int]:
    check_csrf()
    broker = get_broker()
    store = broker.store(store_key)
    record = pending_confirmation(store)
    conn = store.connections[record["connection"]]
    identity = Identity.from_record(record["identity"])
    customer = Customer.from_api(record["customer"])
    try:
        decision = confirm_ownership(
            identity=identity,
            customer=customer,
            password=request.form.get("password", ""),
            client_ip=request.remote_addr,
            directory=broker.stores[store.key],
            links=broker.storage,
            store=store_context(store),
            now=int(broker.clock()),
        )
    except WrongPassword as wrong:
        audit(
            store,
            "link",
            "wrong_password",
            conn=conn.key,
            identity=identity,
            customer_id=customer.id,
        )
        page = _confirm_page(store, customer.email, conn.key, error=wrong.attempts_left)
        return page, wrong.status
    pending_confirmation(store, take=True)  # single use
    audit(store, "link", "confirmed", conn=conn.key, identity=identity, customer_id=customer.id)
    upstream = UpstreamSession.from_record(record.get("upstream"))
    return redirect_signed_in(store, conn, identity, decision, record["redirect_to"], upstream)


def _confirm_page(store: StoreSettings, email: str, conn_key: str, error: int | None = None) -> str:
    return render_template(
        "confirm.html",
        store=store,
        email=email,
        connection=store.connections[conn_key],
        attempts_left=error,
    )


def _linking_customer(store: StoreSettings) -> tuple[int, str]:
    data = session.get("link")
    now = int(get_broker().clock())
    if not isinstance(data, dict) or data.get("store") != store.key or data.get("until", 0) < now:
        raise FlowExpired(
            "Open this page from your account page on the store (you may need to sign in "
            "to the store again).",
            detail="no storefront customer in the link session",
        )
    return int(data["customer_id"]), str(data.get("email") or "")
