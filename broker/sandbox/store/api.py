"""The HTTP side of the sandbox store's two management APIs: two blueprints, one per API.

- :data:`bigcommerce_api`: BigCommerce's own API, at the paths of ``api.bigcommerce.com``:
  ``/stores/<hash>/v2/...`` and ``/stores/<hash>/v3/...``;
- :data:`b2b_api`: B2B Edition's, at the paths of ``api-b2b.bigcommerce.com``:
  ``/api/v3/io/...``, the store chosen by the ``X-Store-Hash`` header.

The views are thin: they apply the fault switches only HTTP can apply (a TCP reset instead of
an answer, latency before the store acts, a timeout after it), hand the request to
:class:`~broker.sandbox.store.state.SandboxState`, and send back its answer. Each blueprint's
error handler turns an :class:`~broker.sandbox.store.v3.ApiError` into its API's error shape
(``docs/bigcommerce-api.md``): ``{"status", "title", "type", "errors"}`` for BigCommerce's,
the envelope ``{"code", "data", "meta": {"message"}}`` for B2B Edition's, with the error's
``X-Rate-Limit-*`` headers.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from broker.sandbox import b2b
from broker.sandbox.store.faults import B2B_API, BIGCOMMERCE_API
from broker.sandbox.store.state import SandboxState
from broker.sandbox.store.v3 import ApiError, ApiRequest, error_body
from broker.sandbox.store.web import json_response, sandbox_state

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]

bigcommerce_api = Blueprint("bigcommerce_api", __name__)
b2b_api = Blueprint("b2b_api", __name__)


@bigcommerce_api.errorhandler(ApiError)
def _bigcommerce_error(error: ApiError) -> Response:
    return json_response(error_body(error), error.status, error.headers)


@b2b_api.errorhandler(ApiError)
def _b2b_error(error: ApiError) -> Response:
    return json_response(b2b.error_envelope(error.status, error.title), error.status, error.headers)


@bigcommerce_api.route("/stores/<store_hash>/<any(v2, v3):version>/<path:rest>", methods=_METHODS)
def management_api(store_hash: str, version: str, rest: str) -> Response:
    state = sandbox_state()
    if state.take_reset(store_hash):
        return _reset_connection()
    with _delayed(state, store_hash, BIGCOMMERCE_API):
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
    with _delayed(state, store_hash or "", B2B_API):
        req = b2b.B2BRequest(
            method=request.method,
            path=rest,
            args=MultiDict(request.args.items(multi=True)),
            body=request.get_data(),
        )
        reply = state.handle_b2b(store_hash, request.headers.get("X-Auth-Token"), req)
    return json_response(reply.body, reply.status, reply.headers)


@contextmanager
def _delayed(state: SandboxState, store_hash: str, api: str) -> Iterator[None]:
    """The ``latency_ms`` fault before the block, the ``timeout_ms`` fault after it (whether
    the store answered or refused): a client that gives up cannot tell what happened."""
    before, after = state.api_delay(store_hash, api)
    if before:
        time.sleep(before)
    try:
        yield
    finally:
        if after:
            time.sleep(after)


def _reset_connection() -> Response:
    """Close the client's connection with a TCP RST, sending no answer at all."""
    connection = request.environ.get("werkzeug.socket")
    if connection is not None:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    return Response(status=500)  # never reaches the client
