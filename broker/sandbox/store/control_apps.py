"""The control API of the app side, under ``/_sandbox/``: what a developer does in the
Developer Portal and a merchant in the control panel, as JSON. Not part of BigCommerce.

Each route is one :class:`~broker.sandbox.store.app_desk.AppDesk` method:

- ``POST /_sandbox/apps`` ``{client_id, client_secret, callback_base, scopes}`` registers an
  app (201, without its secret; 409 if it exists); ``GET /_sandbox/apps/<client_id>``;
  ``GET .../exchanges`` (the token exchanges), ``GET .../callbacks`` (uninstall and
  remove_user calls);
- ``POST /_sandbox/apps/<client_id>/payload`` ``{store_hash, user_id, kind (load | uninstall
  | remove_user), expires_in?, not_before_offset?, secret?, aud?, sub?}`` →
  ``{"signed_payload_jwt"}``, calling nothing and checking no access;
- ``POST /_sandbox/stores/<hash>/users`` ``{id?, email}`` (201 ``{id, email}``), ``GET``;
- ``/_sandbox/stores/<hash>/apps/<client_id>``: ``GET`` (installed?, scope, granted users);
  ``POST .../install`` ``{user_id?}`` → ``{"auth_url"}``; ``POST .../load`` ``{user_id?,
  url?, channel_id?}`` → ``{"load_url"}``; ``POST .../uninstall`` ``{user_id?}`` and
  ``POST .../revoke`` ``{user_id}`` → ``{"status", "body"}`` of the app's answer (``"error"``
  when it could not be reached); ``POST .../grant`` ``{user_id}``;
- ``POST /_sandbox/stores/<hash>/customer_groups`` ``{name, is_default?}`` (201), ``GET``;
- ``GET /_sandbox/stores/<hash>/scripts``: every script, whoever created it.

``user_id`` defaults to the store owner (1) where it is optional. Errors as the rest of the
control API (:func:`~broker.sandbox.store.web.control_error`): 404 unknown store, app or
user; 409 an app or user that exists; 403 an app not installed, or not granted to the user;
422 any other bad input.
"""

from __future__ import annotations

from flask import Blueprint, Response

from broker.sandbox.store import payloads
from broker.sandbox.store.apps import app_from_json
from broker.sandbox.store.installs import OWNER_ID
from broker.sandbox.store.model import JSONDict, SandboxError, as_int
from broker.sandbox.store.web import control_error, json_fields, json_response, sandbox_state

control_apps = Blueprint("control_apps", __name__, url_prefix="/_sandbox")

_PAYLOAD_FIELDS = (
    "store_hash",
    "user_id",
    "kind",
    "expires_in",
    "not_before_offset",
    "secret",
    "aud",
    "sub",
)


@control_apps.errorhandler(SandboxError)
def _sandbox_error(error: SandboxError) -> Response:
    return control_error(error)


# apps ----------------------------------------------------------------------------------------


@control_apps.post("/apps")
def add_app() -> Response:
    return json_response(sandbox_state().add_app(app_from_json(json_fields())), 201)


@control_apps.get("/apps/<client_id>")
def get_app(client_id: str) -> Response:
    return json_response(sandbox_state().app(client_id).public_json())


@control_apps.get("/apps/<client_id>/exchanges")
def exchanges(client_id: str) -> Response:
    return json_response(sandbox_state().exchanges(client_id))


@control_apps.get("/apps/<client_id>/callbacks")
def callbacks(client_id: str) -> Response:
    return json_response(sandbox_state().app_callbacks(client_id))


@control_apps.post("/apps/<client_id>/payload")
def mint_payload(client_id: str) -> Response:
    values = json_fields(_PAYLOAD_FIELDS)
    store_hash, kind = values.get("store_hash"), values.get("kind")
    if not isinstance(store_hash, str) or not isinstance(kind, str):
        raise SandboxError("store_hash and kind are required")
    faults = payloads.faults_from_json(values)
    token = sandbox_state().mint_payload(
        client_id, store_hash, _user_id(values, required=True), kind, faults
    )
    return json_response({"signed_payload_jwt": token})


# control-panel users -------------------------------------------------------------------------


@control_apps.post("/stores/<store_hash>/users")
def add_user(store_hash: str) -> Response:
    values = json_fields(("id", "email"))
    user = sandbox_state().add_user(store_hash, values.get("email"), values.get("id"))
    return json_response(user, 201)


@control_apps.get("/stores/<store_hash>/users")
def users(store_hash: str) -> Response:
    return json_response(sandbox_state().users(store_hash))


# one app on one store ------------------------------------------------------------------------


@control_apps.get("/stores/<store_hash>/apps/<client_id>")
def app_status(store_hash: str, client_id: str) -> Response:
    return json_response(sandbox_state().app_status(store_hash, client_id))


@control_apps.post("/stores/<store_hash>/apps/<client_id>/install")
def install(store_hash: str, client_id: str) -> Response:
    user_id = _user_id(json_fields(("user_id",)))
    return json_response({"auth_url": sandbox_state().install_url(store_hash, client_id, user_id)})


@control_apps.post("/stores/<store_hash>/apps/<client_id>/load")
def load(store_hash: str, client_id: str) -> Response:
    values = json_fields(("user_id", "url", "channel_id"))
    url = sandbox_state().load_url(
        store_hash, client_id, _user_id(values), values.get("url"), values.get("channel_id")
    )
    return json_response({"load_url": url})


@control_apps.post("/stores/<store_hash>/apps/<client_id>/uninstall")
def uninstall(store_hash: str, client_id: str) -> Response:
    user_id = _user_id(json_fields(("user_id",)))
    return json_response(sandbox_state().uninstall_app(store_hash, client_id, user_id))


@control_apps.post("/stores/<store_hash>/apps/<client_id>/grant")
def grant(store_hash: str, client_id: str) -> Response:
    state = sandbox_state()
    state.grant_app(store_hash, client_id, _user_id(json_fields(("user_id",)), required=True))
    return json_response(state.app_status(store_hash, client_id))


@control_apps.post("/stores/<store_hash>/apps/<client_id>/revoke")
def revoke(store_hash: str, client_id: str) -> Response:
    user_id = _user_id(json_fields(("user_id",)), required=True)
    return json_response(sandbox_state().revoke_app(store_hash, client_id, user_id))


# customer groups and scripts -----------------------------------------------------------------


@control_apps.post("/stores/<store_hash>/customer_groups")
def add_customer_group(store_hash: str) -> Response:
    values = json_fields(("name", "is_default"))
    group = sandbox_state().add_customer_group(
        store_hash, values.get("name"), values.get("is_default", False)
    )
    return json_response(group, 201)


@control_apps.get("/stores/<store_hash>/customer_groups")
def customer_groups(store_hash: str) -> Response:
    return json_response(sandbox_state().customer_groups(store_hash))


@control_apps.get("/stores/<store_hash>/scripts")
def all_scripts(store_hash: str) -> Response:
    return json_response(sandbox_state().scripts(store_hash))


# -- helpers -----------------------------------------------------------------------------------


def _user_id(values: JSONDict, *, required: bool = False) -> int:
    if "user_id" not in values and not required:
        return OWNER_ID
    user_id = as_int(values.get("user_id"))
    if user_id is None:
        raise SandboxError("user_id must be an integer")
    return user_id
