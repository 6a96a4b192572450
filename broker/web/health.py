"""Liveness, readiness and metrics: ``/healthz`` (the process answers), ``/readyz`` (it can
work), ``/metrics`` (Prometheus text format, :mod:`broker.metrics`).

``/metrics`` is open unless ``[broker] metrics_token`` is set; then it needs
``Authorization: Bearer <metrics_token>`` (401 otherwise). Its labels hold no personal data,
but store and connection keys say who the broker serves: set the token, or keep the path
from the public at the proxy.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, jsonify, request

from broker import metrics
from broker.errors import StorageError
from broker.web.context import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    broker = runtime()
    try:
        broker.storage.ping()
    except StorageError:
        return jsonify(status="unavailable", storage="unreachable"), 503
    return jsonify(status="ok", storage="ok", stores=len(broker.file_stores())), 200


@bp.get("/metrics")
def metrics_page() -> Response:
    token = runtime().broker_settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = Response("metrics_token required\n", 401, mimetype="text/plain")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    body, content_type = metrics.render()
    return Response(body, 200, content_type=content_type)
