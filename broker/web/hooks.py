"""BigCommerce webhook deliveries: ``POST /{store}/webhooks/bigcommerce``.

BigCommerce signs nothing: a delivery is authenticated by the secret header the broker set
when it registered the hook (``broker webhooks register``). Deliveries repeat, so each is
acted on idempotently and recorded once by its ``hash``. ``store/customer/deleted`` removes
that customer's links. Answers are quick and problem+json on refusal (RFC 9457).
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, jsonify, request

from broker.bigcommerce.webhooks import AUTH_HEADER
from broker.storage import keys
from broker.web.context import runtime
from broker.web.signin import audit

bp = Blueprint("hooks", __name__)

#: The header BigCommerce sends with every delivery, holding the store's webhook_secret.
#: BigCommerce retries for about 48 hours: remember a delivery's hash a little longer.
DEDUPLICATE_SECONDS = 72 * 3600


@bp.post("/<store_key>/webhooks/bigcommerce")
def bigcommerce(store_key: str) -> tuple[Response, int]:
    broker = runtime()
    store = broker.find_store(store_key)
    if store is None or not store.webhook_secret:
        return problem(404, "No webhooks here", "This store does not receive webhooks.")
    given = request.headers.get(AUTH_HEADER, "")
    if not hmac.compare_digest(given.encode(), store.webhook_secret.encode()):
        return problem(401, "Not authenticated", f"The {AUTH_HEADER} header is missing or wrong.")
    payload = request.get_json(silent=True)
    event = _parse(payload)
    if event is None:
        return problem(400, "Not a BigCommerce webhook", "Expected scope, hash and data.id.")
    scope, digest, customer_id = event
    removed = 0
    if scope == "store/customer/deleted":
        removed = broker.storage.delete_links_for_customer(store.key, customer_id)
    now = int(broker.clock())
    first = broker.storage.use_once(
        keys.webhook(store.key, digest), expires_at=now + DEDUPLICATE_SECONDS, now=now
    )
    if first:
        audit(store, "webhook", scope, customer_id=customer_id, detail=f"links removed: {removed}")
    return jsonify(status="ok" if first else "duplicate"), 200


def _parse(payload: Any) -> tuple[str, str, int] | None:
    if not isinstance(payload, dict):
        return None
    scope, digest, data = payload.get("scope"), payload.get("hash"), payload.get("data")
    if not (isinstance(scope, str) and isinstance(digest, str) and 0 < len(digest) <= 128):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), int):
        return None
    return scope, digest, int(data["id"])


def problem(status: int, title: str, detail: str) -> tuple[Response, int]:
    response = jsonify(type="about:blank", title=title, status=status, detail=detail)
    response.mimetype = "application/problem+json"
    return response, status
