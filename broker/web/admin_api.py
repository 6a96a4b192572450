"""The admin JSON API (docs/design.md, "Interfaces"): ``/{store}/admin/api/...``, each call
with ``Authorization: Bearer <admin token>``. Parse, call :mod:`broker.admin`, answer;
errors are ``application/problem+json`` (:mod:`broker.web.errors`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from broker.admin import staff
from broker.admin.checks import test_connection
from broker.admin.stores import InvalidSettings, StoreAdmin
from broker.admin.tokens import authenticate
from broker.errors import BrokerError
from broker.web.context import runtime

bp = Blueprint("admin_api", __name__, url_prefix="/<store_key>/admin/api")

_MAX_AUDIT = 500


class BadBody(BrokerError):
    status = 400
    title = "The request body is not JSON"
    code = "bad_body"


@bp.before_request
def _authenticate() -> None:
    store_key = (request.view_args or {}).get("store_key", "")
    broker = runtime()
    broker.store(store_key)  # 404 for an unknown store, before the token is looked at
    authenticate(
        broker.storage, request.headers.get("Authorization"), store=store_key, kind="admin"
    )


def _admin(store_key: str) -> StoreAdmin:
    return StoreAdmin(runtime(), store_key)


def _body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise BadBody("Send the settings as a JSON object (Content-Type: application/json).")
    return body


@bp.get("/connections")
def connections(store_key: str) -> Response:
    return jsonify({"connections": _admin(store_key).connections()})


@bp.get("/connections/<conn_key>")
def connection(store_key: str, conn_key: str) -> Response:
    return jsonify(_admin(store_key).connection(conn_key))


@bp.put("/connections/<conn_key>")
def put_connection(store_key: str, conn_key: str) -> tuple[Response, int]:
    stored, created = _admin(store_key).put_connection(conn_key, _body())
    return jsonify(stored), 201 if created else 200


@bp.delete("/connections/<conn_key>")
def delete_connection(store_key: str, conn_key: str) -> tuple[str, int]:
    _admin(store_key).delete_connection(conn_key)
    return "", 204


@bp.post("/connections/<conn_key>/test")
def test(store_key: str, conn_key: str) -> Response:
    return jsonify(test_connection(runtime(), store_key, conn_key))


@bp.get("/settings")
def settings(store_key: str) -> Response:
    return jsonify(_admin(store_key).settings())


@bp.patch("/settings")
def patch_settings(store_key: str) -> Response:
    return jsonify(_admin(store_key).patch_settings(_body()))


@bp.get("/staff")
def staff_status(store_key: str) -> Response:
    """The control-panel mapping, the queue (with when each item runs) and the budget."""
    broker = runtime()
    return jsonify(staff.status(broker.staff, broker.store(store_key)))


@bp.get("/audit")
def audit(store_key: str) -> Response:
    args = request.args
    problems = []
    limit = _int(args.get("limit"), 50)
    since = _int(args.get("since"), None)
    if limit is None or not 1 <= limit <= _MAX_AUDIT:
        problems.append({"key": "limit", "message": f"must be an integer from 1 to {_MAX_AUDIT}"})
    if "since" in args and since is None:
        problems.append({"key": "since", "message": "must be a Unix time in seconds"})
    if problems:
        raise InvalidSettings(problems)
    entries = runtime().storage.search_audit(
        store_key,
        limit=limit or 50,
        event=args.get("event") or None,
        connection=args.get("connection") or None,
        outcome=args.get("outcome") or None,
        since=since,
    )
    return jsonify({"entries": [entry.__dict__ for entry in entries]})


def _int(value: str | None, default: int | None) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return None
