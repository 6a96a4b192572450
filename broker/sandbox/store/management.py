"""The sandbox store's two management APIs as pure functions: which checks a request meets,
in which order, and which handler answers it.

No IO, no framework: :class:`~broker.sandbox.store.state.SandboxState` calls
:func:`answer_api` and :func:`answer_b2b` under its lock and logs what they answer; the
blueprints of :mod:`broker.sandbox.store.api` do the HTTP. Every error answer is raised as an
:class:`~broker.sandbox.store.v3.ApiError` carrying its headers. Facts followed
(``docs/bigcommerce-api.md``, "Customers V3", "Rate limits", "Webhooks", "B2B Edition",
"Customer Login JWT" for ``/v2/time``, "Multi-storefront and headless" for sites):

- BigCommerce's API (``/stores/<hash>/v2|v3``): the fault switches first, then the
  ``X-Auth-Token`` (401), then the store's rate window (429), then the route (404 for an
  unknown path, 405 for a method the path does not take); every answer but a forced fault
  carries the window's ``X-Rate-Limit-*`` headers;
- the X-Auth-Token is the store's own or the token of an app installed on it (the handlers
  see whose in ``ApiRequest.client_id``);
- the routes: ``GET /v2/time``; ``GET /v2/customer_groups`` and ``/v2/customer_groups/{id}``;
  ``/v3/content/scripts`` and ``/v3/content/scripts/{uuid}``; ``/v3/customers`` (``GET``,
  ``POST``, ``PUT``, ``DELETE``);
  ``POST /v3/customers/validate-credentials`` (with its own stricter window);
  ``GET /v3/sites`` (one site per channel, its URLs the sandbox's storefront);
  ``GET /v3/customers/settings/channels/{id}``; ``/v3/hooks`` and ``/v3/hooks/{id}``;
- B2B Edition (``/api/v3/io``): the store named by ``X-Store-Hash``, the fault switches,
  then the store's ``b2b_token`` (401 for a wrong token, an unknown store, or a store without
  B2B Edition), then B2B Edition's own window (429), then :func:`broker.sandbox.b2b.handle`.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
from collections.abc import Callable
from typing import Any

from broker.sandbox import b2b
from broker.sandbox.store import channels, customers, groups, hooks, installs, scripts
from broker.sandbox.store.data import Directory, StoreData, announce, remove_customers
from broker.sandbox.store.faults import B2B_API, BIGCOMMERCE_API, forced_error
from broker.sandbox.store.model import copy_json
from broker.sandbox.store.v3 import (
    ApiError,
    ApiReply,
    ApiRequest,
)

# -- BigCommerce's own API -------------------------------------------------------------------


def answer_api(st: StoreData, req: ApiRequest, now: float) -> ApiReply:
    """The answer to one request to BigCommerce's API; ApiError for an error answer."""
    forced = forced_error(st.faults, st.api_window, now, BIGCOMMERCE_API)
    if forced is not None:
        raise forced
    window, quota = st.api_window, st.faults.quota
    valid, client_id = installs.token_owner(st.apps, st.settings.access_token, req.token)
    if not valid:
        raise ApiError(
            401, "Unauthorized: missing or invalid X-Auth-Token", headers=window.headers(now, quota)
        )
    req = dataclasses.replace(req, client_id=client_id)
    if not window.consume(now, quota):
        raise ApiError(429, "Too many requests", headers=window.headers(now, quota))
    try:
        status, body = _dispatch(st, req, now)
    except ApiError as error:
        error.headers = {**window.headers(now, quota), **error.headers}
        raise
    return ApiReply(status, body, window.headers(now, quota))


_Handler = Callable[[StoreData, ApiRequest, float], tuple[int, Any]]
_CHANNEL_SETTINGS = re.compile(r"^customers/settings/channels/(\d+)$")
_HOOK = re.compile(r"^hooks/([^/]+)$")
_SCRIPT = re.compile(r"^content/scripts/([^/]+)$")
_GROUP = re.compile(r"^customer_groups/(\d+)$")


def _dispatch(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    handlers = _handlers_for(req.version, req.rest)
    if handlers is None:
        raise ApiError(404, "The route is not found, check the URL")
    handler = handlers.get(req.method)
    if handler is None:
        raise ApiError(405, "Method not allowed")
    return handler(st, req, now)


def _handlers_for(version: str, rest: str) -> dict[str, _Handler] | None:
    if version == "v2":
        return _v2_handlers_for(rest)
    if rest == "content/scripts":
        return {"GET": _list_scripts, "POST": _post_script}
    if _SCRIPT.match(rest):
        return {"GET": _get_script, "PUT": _put_script, "DELETE": _delete_script}
    if rest == "hooks":
        return {"GET": _list_hooks, "POST": _post_hook}
    if _HOOK.match(rest):
        return {"GET": _get_hook, "PUT": _put_hook, "DELETE": _delete_hook}
    if rest == "customers":
        return {
            "GET": _list_customers,
            "POST": _post_customers,
            "PUT": _put_customers,
            "DELETE": _delete_customers,
        }
    if rest == "customers/validate-credentials":
        return {"POST": _validate_credentials}
    if rest == "sites":
        return {"GET": channels.list_sites}
    if rest == "channels":
        return {"GET": channels.list_channels}
    if _CHANNEL_SETTINGS.match(rest):
        return {"GET": _channel_settings}
    return None


def _v2_handlers_for(rest: str) -> dict[str, _Handler] | None:
    if rest == "time":
        return {"GET": _get_time}
    if rest == "store":
        return {"GET": channels.get_store}
    if rest == "customer_groups":
        return {"GET": _list_groups}
    if _GROUP.match(rest):
        return {"GET": _get_group}
    return None


def _get_time(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return 200, {"time": int(now + st.faults.clock_offset)}


# customers -------------------------------------------------------------------------------------


def _list_customers(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return 200, customers.search(st.customers, st.settings, req.args)


def _post_customers(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    items = customers.batch(req.body)
    created = customers.create(st.customers, st.settings, items, now, _group_ids(st))
    for customer in created:  # a batch fires one event per customer, as bulk imports do
        announce(st, hooks.CUSTOMER_CREATED, customer, now)
    return 200, {"data": [copy_json(c) for c in created], "meta": {}}


def _put_customers(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    items = customers.batch(req.body)
    updated = customers.update(st.customers, st.settings, items, now, _group_ids(st))
    for customer in updated:
        announce(st, hooks.CUSTOMER_UPDATED, customer, now)
    return 200, {"data": [copy_json(c) for c in updated], "meta": {}}


def _group_ids(st: StoreData) -> frozenset[int] | None:
    return groups.checked_ids(st.groups)


def _delete_customers(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    remove_customers(st, customers.delete_filter(req.args), now)
    return 204, None


def _validate_credentials(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    window, quota = st.credentials_window, st.faults.credentials_quota
    if not window.consume(now, quota):
        headers = window.headers(now, quota)
        raise ApiError(429, "Too many credential validation requests", headers=headers)
    email, password, channel_id = customers.credentials_request(req.body)
    customer_id = customers.check_credentials(st.customers, email, password, channel_id)
    return 200, {"is_valid": customer_id is not None, "customer_id": customer_id}


# channels and sites ----------------------------------------------------------------------------


def _channel_settings(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    match = _CHANNEL_SETTINGS.match(req.rest)
    if match is None or int(match.group(1)) not in st.settings.channel_ids:
        raise ApiError(404, "Channel not found")
    data = {
        "privacy_settings": {"ask_shopper_for_tracking_consent": False, "policy_url": ""},
        "customer_group_settings": {"guest_customer_group_id": 0, "default_customer_group_id": 0},
        "allow_global_logins": True,
    }
    return 200, {"data": data, "meta": {}}


# webhooks --------------------------------------------------------------------------------------


def _list_hooks(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return 200, hooks.list_hooks(st.hooks, req.args)


def _post_hook(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return 200, {"data": hooks.create_hook(st.hooks, st.settings, req.body, now), "meta": {}}


def _get_hook(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return 200, {"data": hooks.get_hook(st.hooks, _hook_id(req)), "meta": {}}


def _put_hook(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    raw_id = _hook_id(req)
    return 200, {"data": hooks.update_hook(st.hooks, raw_id, req.body, now), "meta": {}}


def _delete_hook(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return 200, {"data": hooks.delete_hook(st.hooks, _hook_id(req)), "meta": {}}


def _hook_id(req: ApiRequest) -> str:
    """The id in ``hooks/{id}``, as sent (hooks.py says whether it names a hook)."""
    match = _HOOK.match(req.rest)
    return match.group(1) if match else ""


# customer groups and scripts ---------------------------------------------------------------


def _list_groups(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return groups.listing(st.groups, req.args)


def _get_group(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    match = _GROUP.match(req.rest)
    return 200, groups.get_group(st.groups, int(match.group(1)) if match else 0)


def _list_scripts(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    return 200, scripts.search(st.scripts, st.settings, req.client_id, req.args)


def _post_script(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    created = scripts.create(st.scripts, st.settings, req.client_id, req.body, now)
    return 200, {"data": created, "meta": {}}


def _get_script(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    found = scripts.get(st.scripts, st.settings, req.client_id, _script_uuid(req))
    return 200, {"data": found, "meta": {}}


def _put_script(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    uuid = _script_uuid(req)
    changed = scripts.update(st.scripts, st.settings, req.client_id, uuid, req.body, now)
    return 200, {"data": changed, "meta": {}}


def _delete_script(st: StoreData, req: ApiRequest, now: float) -> tuple[int, Any]:
    scripts.delete(st.scripts, st.settings, req.client_id, _script_uuid(req))
    return 204, None


def _script_uuid(req: ApiRequest) -> str:
    match = _SCRIPT.match(req.rest)
    return match.group(1) if match else ""


# -- B2B Edition's API -----------------------------------------------------------------------


def answer_b2b(st: StoreData, token: str | None, req: b2b.B2BRequest, now: float) -> ApiReply:
    """Faults, then the token, then B2B Edition's own rate window, then the request itself.

    B2B Edition's own refusals (404, 422...) are answers in its envelope; ApiError is for the
    checks before them.
    """
    window, quota = st.b2b_window, st.faults.quota
    forced = forced_error(st.faults, window, now, B2B_API)
    if forced is not None:
        raise forced
    expected = st.settings.b2b_token
    if (
        expected is None
        or token is None
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        raise ApiError(401, b2b.UNAUTHORIZED, headers=window.headers(now, quota))
    if not window.consume(now, quota):
        raise ApiError(429, "Too many requests", headers=window.headers(now, quota))
    status, body = b2b.handle(st.b2b_book, Directory(st, now), req, now)
    return ApiReply(status, body, window.headers(now, quota))
