"""SCIM 2.0 over HTTP (RFC 7644): ``/{store}/scim/{conn}/v2/...``, each request with
``Authorization: Bearer <token>`` made for that connection (``broker scim token``). Bodies
and answers are ``application/scim+json``; every error is a SCIM error body with its
``scimType``. The work is :class:`broker.provisioning.service.ScimService`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, g, request

from broker.admin.tokens import authenticate
from broker.errors import BrokerError, RateLimited
from broker.events import log_event
from broker.provisioning.scim.errors import ScimError
from broker.provisioning.scim.resources import (
    attribute_list,
    one_of,
    project,
    resource_types,
    schemas,
    service_provider_config,
)
from broker.provisioning.service import Operations, ScimService
from broker.web.context import runtime

bp = Blueprint("scim", __name__, url_prefix="/<store_key>/scim/<conn_key>/v2")

SCIM_JSON = "application/scim+json"


def _answer(body: Any, status: int = 200, etag: str | None = None) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=SCIM_JSON)
    if etag:
        response.headers["ETag"] = etag
    if status == 201 and isinstance(body, dict):
        location = body.get("meta", {}).get("location")
        if location:
            response.headers["Location"] = location
    return response


@bp.errorhandler(ScimError)
def _scim_error(error: ScimError) -> Response:
    return _answer(error.body(), error.status)


@bp.errorhandler(BrokerError)
def _broker_error(error: BrokerError) -> Response:
    log_event(
        "scim.refused",
        level=logging.WARNING if error.status < 500 else logging.ERROR,
        code=error.code,
        status=error.status,
        detail=error.detail,
    )
    # A store too busy for provisioning is 429 to a SCIM client (Okta and Entra back off on
    # it and honour Retry-After), though a busy page is a 503 to a shopper.
    status = 429 if isinstance(error, RateLimited) else error.status
    response = _scim_error(ScimError(status, error.message))
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


@bp.before_request
def _authenticate() -> None:
    args = request.view_args or {}
    store_key, conn_key = args.get("store_key", ""), args.get("conn_key", "")
    broker = runtime()
    broker.connection(store_key, conn_key)  # 404 for an unknown store or connection
    token = authenticate(
        broker.storage, request.headers.get("Authorization"), store=store_key, kind="scim"
    )
    if token.connection != conn_key:
        raise ScimError(401, "This token is not valid for this connection.")
    base = f"{broker.broker_settings.base_url}/{store_key}/scim/{conn_key}/v2"
    g.scim = ScimService(broker, store_key, conn_key, base=base)
    g.scim_base = base


def _service() -> ScimService:
    found: ScimService = g.scim
    return found


def _body() -> Any:
    try:
        return json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        raise ScimError(400, "The body is not JSON.", "invalidSyntax") from None


@bp.get("/ServiceProviderConfig")
def provider_config(store_key: str, conn_key: str) -> Response:
    return _answer(service_provider_config(g.scim_base))


@bp.get("/ResourceTypes")
def types(store_key: str, conn_key: str) -> Response:
    return _answer(resource_types(g.scim_base))


@bp.get("/ResourceTypes/<name>")
def one_type(store_key: str, conn_key: str, name: str) -> Response:
    return _answer(_one(resource_types(g.scim_base), name, "resource type"))


@bp.get("/Schemas")
def schema_list(store_key: str, conn_key: str) -> Response:
    return _answer(schemas(g.scim_base))


@bp.get("/Schemas/<urn>")
def one_schema(store_key: str, conn_key: str, urn: str) -> Response:
    return _answer(_one(schemas(g.scim_base), urn, "schema"))


def _one(listing: dict[str, Any], wanted: str, what: str) -> dict[str, Any]:
    found = one_of(listing, wanted)
    if found is None:
        raise ScimError(404, f"No such {what}.")
    return found


def _shaped(body: dict[str, Any], source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``attributes`` / ``excludedAttributes`` applied (to each resource of a list)."""
    values = source if source is not None else request.args
    attributes = attribute_list(_text_of(values.get("attributes")))
    excluded = attribute_list(_text_of(values.get("excludedAttributes")))
    if not attributes and not excluded:
        return body
    if "Resources" in body:
        resources = [
            project(r, attributes=attributes, excluded=excluded) for r in body["Resources"]
        ]
        return {**body, "Resources": resources}
    return project(body, attributes=attributes, excluded=excluded)


def _text_of(value: Any) -> str | None:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return None if value is None else str(value)


def _search(body: Any) -> tuple[Mapping[str, Any], str | None, str | None, str | None]:
    """A ``POST /.search`` body (RFC 7644 3.4.3) as the query parameters of a GET."""
    if not isinstance(body, dict):
        raise ScimError(400, "The search request must be a JSON object.", "invalidSyntax")
    number = {k: None if body.get(k) is None else str(body[k]) for k in ("startIndex", "count")}
    return body, body.get("filter"), number["startIndex"], number["count"]


#: Users and Groups have the same verbs (RFC 7644 3.2): one view each, for both.
RESOURCES = "<any(Users, Groups):resource>"


def _ops(resource: str) -> Operations:
    return _service().operations(resource)


@bp.post("/.search")
def search_everything(store_key: str, conn_key: str) -> Response:
    """Across resource types at once (RFC 7644 3.4.3): not offered; per type it is."""
    raise ScimError(501, "Search each resource type: POST /Users/.search or /Groups/.search.")


@bp.get(f"/{RESOURCES}")
def listing(store_key: str, conn_key: str, resource: str) -> Response:
    args = request.args
    found = _ops(resource).list(args.get("filter"), args.get("startIndex"), args.get("count"))
    return _answer(_shaped(found))


@bp.post(f"/{RESOURCES}/.search")
def search(store_key: str, conn_key: str, resource: str) -> Response:
    body, filter_text, start, count = _search(_body())
    return _answer(_shaped(_ops(resource).list(filter_text, start, count), body))


@bp.post(f"/{RESOURCES}")
def create(store_key: str, conn_key: str, resource: str) -> Response:
    created, tag = _ops(resource).create(_body())
    return _answer(created, 201, tag)


@bp.get(f"/{RESOURCES}/<item_id>")
def get(store_key: str, conn_key: str, resource: str, item_id: str) -> Response:
    found, tag = _ops(resource).get(item_id)
    return _answer(_shaped(found), etag=tag)


@bp.put(f"/{RESOURCES}/<item_id>")
def replace(store_key: str, conn_key: str, resource: str, item_id: str) -> Response:
    written, tag = _ops(resource).replace(item_id, _body(), request.headers.get("If-Match"))
    return _answer(written, etag=tag)


@bp.patch(f"/{RESOURCES}/<item_id>")
def patch(store_key: str, conn_key: str, resource: str, item_id: str) -> Response:
    written, tag = _ops(resource).patch(item_id, _body(), request.headers.get("If-Match"))
    return _answer(written, etag=tag)


@bp.delete(f"/{RESOURCES}/<item_id>")
def delete(store_key: str, conn_key: str, resource: str, item_id: str) -> Response:
    _ops(resource).delete(item_id)
    return Response(status=204)
