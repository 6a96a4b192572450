"""The control API of the GraphQL Account API's accounts, under ``/_sandbox/``: what a
merchant does in the Developer Portal and the account's settings, as JSON. Not part of
BigCommerce.

Each route is one :class:`~broker.sandbox.store.account_desk.AccountDesk` method:

- ``POST /_sandbox/accounts`` ``{uuid?, name, token?, scopes?, stores: [hash, ...],
  requests_per_hour?}`` registers an account (201 ``{uuid, id, name, token, scopes, stores,
  requests_per_hour}``; the uuid and token are made when absent; ``scopes`` among
  ``account_users_read``, ``account_users_write``, ``account_users_delete``, all three by
  default; ``requests_per_hour`` 70 by default); 404 for an unknown store, 409 for a uuid
  taken or a store of another account;
- ``GET /_sandbox/accounts/<uuid>``: ``{uuid, id, name, scopes, requests_per_hour, users:
  [{id, email, first_name, last_name}], stores: [{store_hash, id, users: [...]}], requests:
  [{time, operation, status, codes}]}`` (never the token);
- ``POST /_sandbox/accounts/<uuid>/users`` ``{email, first_name?, last_name?}`` seeds a user
  of the account (201 ``{id, email, first_name, last_name}``; 409 if the e-mail is one);
- ``GET`` and ``POST /_sandbox/accounts/<uuid>/faults``: the switches of
  :mod:`broker.sandbox.store.faults` (``latency_ms``, ``status`` with ``count``,
  ``rate_limit_for_ms``, ``timeout_ms``, ``resets``, ``quota`` (the hourly limit while set),
  ``reset_ms``, ``rate_limit_headers``, ``only`` "account"); setting them restarts the hourly
  window.

Errors as the rest of the control API (:func:`~broker.sandbox.store.web.control_error`).
"""

from __future__ import annotations

from flask import Blueprint, Response

from broker.sandbox.store.model import SandboxError
from broker.sandbox.store.web import control_error, json_fields, json_response, sandbox_state

control_accounts = Blueprint("control_accounts", __name__, url_prefix="/_sandbox")


@control_accounts.errorhandler(SandboxError)
def _sandbox_error(error: SandboxError) -> Response:
    return control_error(error)


@control_accounts.post("/accounts")
def add_account() -> Response:
    return json_response(sandbox_state().add_account(**json_fields()), 201)


@control_accounts.get("/accounts/<account_uuid>")
def get_account(account_uuid: str) -> Response:
    return json_response(sandbox_state().account(account_uuid))


@control_accounts.post("/accounts/<account_uuid>/users")
def add_account_user(account_uuid: str) -> Response:
    values = json_fields(("email", "first_name", "last_name"))
    user = sandbox_state().add_account_user(
        account_uuid,
        values.get("email"),
        values.get("first_name", ""),
        values.get("last_name", ""),
    )
    return json_response(user, 201)


@control_accounts.get("/accounts/<account_uuid>/faults")
def get_faults(account_uuid: str) -> Response:
    return json_response(sandbox_state().account_faults(account_uuid))


@control_accounts.post("/accounts/<account_uuid>/faults")
def set_faults(account_uuid: str) -> Response:
    state = sandbox_state()
    state.set_account_faults(account_uuid, **json_fields())
    return json_response(state.account_faults(account_uuid))
