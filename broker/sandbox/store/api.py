"""The HTTP side of the sandbox store's APIs: three blueprints, one per API.

- :data:`bigcommerce_api`: BigCommerce's own API, at the paths of ``api.bigcommerce.com``:
  ``/stores/<hash>/v2/...`` and ``/stores/<hash>/v3/...``;
- :data:`b2b_api`: B2B Edition's, at the paths of ``api-b2b.bigcommerce.com``:
  ``/api/v3/io/...``, the store chosen by the ``X-Store-Hash`` header;
- :data:`accounts_api`: the GraphQL Account API, at ``/accounts/<account_uuid>/graphql``
  (every path under ``/accounts/<uuid>/`` counts against the account's hourly window).

The views are thin: they apply the fault switches only HTTP can apply (a TCP reset instead of
an answer, latency before the store acts, a timeout after it), hand the request to
:class:`~broker.sandbox.store.state.SandboxState`, and send back its answer. Each blueprint's
error handler turns an :class:`~broker.sandbox.store.v3.ApiError` into its API's error shape
(``docs/bigcommerce-api.md``): ``{"status", "title", "type", "errors"}`` for BigCommerce's,
the envelope ``{"code", "data", "meta": {"message"}}`` for B2B Edition's, ``{"status",
"title"}`` for the Account API's (its GraphQL errors are answers, HTTP 200), with the error's
``X-Rate-Limit-*`` headers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from broker.sandbox import b2b
from broker.sandbox.store.faults import B2B_API, BIGCOMMERCE_API
from broker.sandbox.store.v3 import ApiError, ApiRequest, error_body
from broker.sandbox.store.web import json_response, reset_connection, sandbox_state

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]

bigcommerce_api = Blueprint("bigcommerce_api", __name__)
b2b_api = Blueprint("b2b_api", __name__)
accounts_api = Blueprint("accounts_api", __name__)


@bigcommerce_api.errorhandler(ApiError)
def _bigcommerce_error(error: ApiError) -> Response:
    return json_response(error_body(error), error.status, error.headers)


@b2b_api.errorhandler(ApiError)
def _b2b_error(error: ApiError) -> Response:
    return json_response(b2b.error_envelope(error.status, error.title), error.status, error.headers)


@accounts_api.errorhandler(ApiError)
def _account_error(error: ApiError) -> Response:
    body = {"status": error.status, "title": error.title}
    return json_response(body, error.status, error.headers)


@bigcommerce_api.route("/stores/<store_hash>/<any(v2, v3):version>/<path:rest>", methods=_METHODS)
def management_api(store_hash: str, version: str, rest: str) -> Response:
    state = sandbox_state()
    if state.take_reset(store_hash):
        return reset_connection()
    with _delayed(state.api_delay(store_hash, BIGCOMMERCE_API)):
        req = ApiRequest(
            method=request.method,
            version=version,
            rest=rest,
            args=MultiDict(request.args.items(multi=True)),
            body=request.get_data(),
            token=request.headers.get("X-Auth-Token"),
            host_url=request.host_url,
        )
        reply = state.handle_api(store_hash, req)
    body = None if reply.status == 204 else reply.body
    return json_response(body, reply.status, reply.headers)


@b2b_api.route(f"{b2b.BASE_PATH}/<path:rest>", methods=_METHODS)
def b2b_edition_api(rest: str) -> Response:
    state = sandbox_state()
    store_hash = request.headers.get("X-Store-Hash")
    with _delayed(state.api_delay(store_hash or "", B2B_API)):
        req = b2b.B2BRequest(
            method=request.method,
            path=rest,
            args=MultiDict(request.args.items(multi=True)),
            body=request.get_data(),
        )
        reply = state.handle_b2b(store_hash, request.headers.get("X-Auth-Token"), req)
    return json_response(reply.body, reply.status, reply.headers)


@accounts_api.route("/accounts/<account_uuid>/<path:rest>", methods=_METHODS)
def account_api(account_uuid: str, rest: str) -> Response:
    state = sandbox_state()
    if state.take_account_reset(account_uuid):
        return reset_connection()
    with _delayed(state.account_delay(account_uuid)):
        reply = state.handle_account(
            account_uuid,
            request.method,
            rest,
            request.headers.get("X-Auth-Token"),
            request.get_data(),
        )
    return json_response(reply.body, reply.status, reply.headers)


@contextmanager
def _delayed(delays: tuple[float, float]) -> Iterator[None]:
    """The ``latency_ms`` fault before the block, the ``timeout_ms`` fault after it (whether
    the store answered or refused): a client that gives up cannot tell what happened.
    ``delays`` is the state's answer (``api_delay``, ``account_delay``), in seconds."""
    before, after = delays
    if before:
        time.sleep(before)
    try:
        yield
    finally:
        if after:
            time.sleep(after)
