"""The protocol-neutral end of every sign-in: Identity -> customer -> login JWT -> storefront.

OIDC's callback and (later) SAML's ACS both finish here, so customer resolution and the
login-JWT redirect exist once.
"""

from __future__ import annotations

import uuid

from flask import redirect, request
from werkzeug.wrappers import Response

from broker.accounts import resolve_customer
from broker.app import get_broker
from broker.bigcommerce.login_token import mint_login_token, storefront_login_url
from broker.config import Connection, StoreSettings
from broker.events import log_event
from broker.identity import Identity


def finish_sign_in(
    store: StoreSettings, conn: Connection, identity: Identity, redirect_to: str
) -> Response:
    """Resolve the customer and send the browser to the storefront's login-token URL."""
    broker = get_broker()
    resolution = resolve_customer(
        identity, directory=broker.stores[store.key], channel_id=store.channel_id, policy=conn
    )
    # Minted last, just before the redirect: the token lives 30 seconds.
    token = mint_login_token(
        client_id=store.client_id,
        client_secret=store.client_secret,
        store_hash=store.store_hash,
        customer_id=resolution.customer.id,
        channel_id=store.channel_id,
        redirect_to=redirect_to,
        now=broker.now_for_store(store),
        jti=str(uuid.uuid4()),
        request_ip=request.remote_addr if store.bind_request_ip else None,
    )
    log_event(
        "signin.ok",
        store=store.key,
        connection=conn.key,
        customer_id=resolution.customer.id,
        created=resolution.created,
    )
    response = redirect(storefront_login_url(store.storefront_url, token), code=302)
    return response
