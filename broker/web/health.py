"""Liveness and readiness: ``/healthz`` (the process answers), ``/readyz`` (it can work)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

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
