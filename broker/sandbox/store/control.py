"""The sandbox's own control API, under ``/_sandbox/``: JSON over HTTP for what tests, ``bench/``
and a developer's shell do to the sandbox from outside its process. Not part of BigCommerce.

Each route is one :class:`~broker.sandbox.store.state.SandboxState` method:

- ``POST /_sandbox/stores`` registers a store (201, its settings without the secrets; 409 if
  it exists);
- ``/_sandbox/stores/<hash>/customers``: ``POST`` seeds one (201), ``GET`` lists them,
  ``DELETE .../<id>`` deletes one "in the control panel" (204; hooks are notified);
- ``GET .../deliveries``, ``POST .../deliveries/<index>/redeliver`` (202);
- ``GET`` and ``DELETE .../requests``, ``GET .../logins``, ``GET .../password-logins``;
- ``POST`` and ``GET .../b2b/companies``, ``PUT .../b2b/companies/<id>/status``,
  ``POST`` and ``GET .../b2b/users``;
- ``GET`` and ``POST .../faults`` (the switches of :mod:`broker.sandbox.store.faults`);
- apps, control-panel users, installs, signed payloads and customer groups: the routes of
  :mod:`broker.sandbox.store.control_apps`, under the same prefix;
- the GraphQL Account API's accounts: ``POST /_sandbox/accounts`` (201 with its uuid and
  token), ``GET /_sandbox/accounts/<uuid>`` (users, each store's users, the request log),
  ``POST .../users`` (seed an account user), ``GET`` and ``POST .../faults``: the routes of
  :mod:`broker.sandbox.store.control_accounts`.

Errors are ``{"status", "title", "errors": {}}``: 404 for an unknown store, customer, company
or delivery, 409 for a store that exists, 403 for an app not installed or not granted, 422
for any other bad input (the blueprint's error handler for
:class:`~broker.sandbox.store.model.SandboxError`).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request

from broker.sandbox.store.model import JSONDict, SandboxError, as_int, store_from_json
from broker.sandbox.store.web import control_error, json_response, sandbox_state

control = Blueprint("control", __name__, url_prefix="/_sandbox")


@control.errorhandler(SandboxError)
def _sandbox_error(error: SandboxError) -> Response:
    return control_error(error)


@control.post("/stores")
def add_store() -> Response:
    store = store_from_json(_body())
    sandbox_state().add_store(store)
    return json_response(store.public_json(), 201)


@control.post("/stores/<store_hash>/customers")
def add_customer(store_hash: str) -> Response:
    return json_response(sandbox_state().add_customer(store_hash, **_fields()), 201)


@control.get("/stores/<store_hash>/customers")
def customers(store_hash: str) -> Response:
    return json_response(sandbox_state().customers(store_hash))


@control.delete("/stores/<store_hash>/customers/<int:customer_id>")
def delete_customer(store_hash: str, customer_id: int) -> Response:
    sandbox_state().delete_customer(store_hash, customer_id)
    return json_response(None, 204)


@control.get("/stores/<store_hash>/deliveries")
def deliveries(store_hash: str) -> Response:
    return json_response(sandbox_state().deliveries(store_hash))


@control.post("/stores/<store_hash>/deliveries/<int:index>/redeliver")
def redeliver(store_hash: str, index: int) -> Response:
    return json_response({"index": sandbox_state().redeliver(store_hash, index)}, 202)


@control.get("/stores/<store_hash>/requests")
def requests(store_hash: str) -> Response:
    return json_response([r.to_json() for r in sandbox_state().requests(store_hash)])


@control.delete("/stores/<store_hash>/requests")
def clear_requests(store_hash: str) -> Response:
    sandbox_state().clear_requests(store_hash)
    return json_response(None, 204)


@control.get("/stores/<store_hash>/logins")
def logins(store_hash: str) -> Response:
    return json_response(sandbox_state().logins(store_hash))


@control.get("/stores/<store_hash>/password-logins")
def password_logins(store_hash: str) -> Response:
    return json_response(sandbox_state().password_logins(store_hash))


@control.post("/stores/<store_hash>/b2b/companies")
def add_company(store_hash: str) -> Response:
    values = _fields()
    if not isinstance(values.get("name"), str):
        raise SandboxError("name is required")
    try:
        company = sandbox_state().add_company(store_hash, **values)
    except TypeError as exc:  # a field add_company does not take
        raise SandboxError(str(exc)) from None
    return json_response(company, 201)


@control.get("/stores/<store_hash>/b2b/companies")
def companies(store_hash: str) -> Response:
    return json_response(sandbox_state().companies(store_hash))


@control.put("/stores/<store_hash>/b2b/companies/<int:company_id>/status")
def company_status(store_hash: str, company_id: int) -> Response:
    status = _fields().get("status")
    if not isinstance(status, str | int):
        raise SandboxError("status is required")
    return json_response(sandbox_state().set_company_status(store_hash, company_id, status))


@control.post("/stores/<store_hash>/b2b/users")
def add_company_user(store_hash: str) -> Response:
    values = _fields()
    names = ("customer_id", "company_id", "role")
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise SandboxError(f"unknown fields: {', '.join(unknown)}")
    customer_id, company_id, role = (as_int(values.get(n)) for n in names)
    if customer_id is None or company_id is None or role is None:
        raise SandboxError("customer_id, company_id and role must be integers")
    user = sandbox_state().add_company_user(store_hash, customer_id, company_id, role)
    return json_response(user, 201)


@control.get("/stores/<store_hash>/b2b/users")
def b2b_users(store_hash: str) -> Response:
    return json_response(sandbox_state().b2b_users(store_hash))


@control.get("/stores/<store_hash>/faults")
def get_faults(store_hash: str) -> Response:
    return json_response(sandbox_state().faults(store_hash))


@control.post("/stores/<store_hash>/faults")
def set_faults(store_hash: str) -> Response:
    state = sandbox_state()
    state.set_faults(store_hash, **_fields())
    return json_response(state.faults(store_hash))


def _body() -> Any:
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError:
        raise SandboxError("the body is not valid JSON") from None


def _fields() -> JSONDict:
    """The body, which must be a JSON object."""
    values = _body()
    if not isinstance(values, dict):
        raise SandboxError("the body must be a JSON object")
    return values
