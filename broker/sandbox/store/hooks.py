"""Webhooks for the sandbox store: the ``/v3/hooks`` registrations and their deliveries.

Pure functions of a :class:`HookBook` (the hooks, the delivery log, the outbox of deliveries to
start), except :func:`send`, the one function here that does IO: the POST of one delivery,
which :class:`~broker.sandbox.store.state.SandboxState` runs in a thread of its own, outside
its lock. Facts followed (``docs/bigcommerce-api.md``, "Webhooks"):

- ``POST /v3/hooks`` takes ``scope``, ``destination`` (https on port 443), ``is_active`` and
  ``headers`` (sent with every delivery: hooks carry no signature, a secret header stands in);
  ``GET``, ``PUT`` and ``DELETE /v3/hooks/{id}`` (``DELETE`` answers the hook it deleted);
  an unknown id is 404 "Webhook with id [...] not found";
- at most one hook per scope and destination, ten per scope (BigCommerce's platform limits);
- a payload is ``{"scope", "store_id", "data", "hash", "created_at", "producer"}``, ``data``
  = ``{"type": "customer", "id"}``, plus ``channel_ids`` on created and updated; ``hash`` is
  a SHA-1 of the payload; deliveries repeat (retries) with the same body, so receivers
  deduplicate on ``hash``.

Where the sandbox differs or decides: it fires only the customer scopes
(:data:`HOOK_SCOPES`), and also takes plain ``http://127.0.0.1`` destinations on any port, so
that tests and ``broker demo`` can receive hooks; an omitted ``is_active`` means true; there
are no automatic retries, :func:`redeliver` sends a delivery again on request; the store id is
a stable number derived from the store hash; a nonce makes two events alike in every field
still differ in ``hash``.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from werkzeug.datastructures import MultiDict

from broker.sandbox.store.model import JSONDict, SandboxStore, copy_json, is_int
from broker.sandbox.store.v3 import ApiError, json_body, page_of, paging, reject_unknown_params

CUSTOMER_CREATED = "store/customer/created"
CUSTOMER_UPDATED = "store/customer/updated"
CUSTOMER_DELETED = "store/customer/deleted"
# The scopes the sandbox can fire; BigCommerce has many more (orders, products, carts...).
HOOK_SCOPES = frozenset({CUSTOMER_CREATED, CUSTOMER_UPDATED, CUSTOMER_DELETED, "store/customer/*"})
MAX_HOOKS_PER_SCOPE = 10
DELIVERY_TIMEOUT = 2.0  # seconds a receiver has to answer a delivery

_HOOK_FIELDS = frozenset({"scope", "destination", "is_active", "headers", "events_history_enabled"})
_HOOK_LIST_PARAMS = frozenset({"page", "limit", "is_active", "scope", "destination"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_INVALID_HOOK = "JSON data is missing or invalid"


@dataclass
class Delivery:
    """One POST of a webhook payload to a hook's destination (a first try or a redelivery)."""

    index: int
    hook_id: int
    scope: str
    destination: str
    payload: JSONDict
    headers: dict[str, str]  # the hook's headers; not shown in the delivery log
    time: float
    redelivery_of: int | None = None
    status: int | None = None  # the receiver's HTTP status
    error: str | None = None  # why no status: connection refused, timeout...
    done: bool = False

    def body(self) -> bytes:
        """What the POST carries: the payload as JSON (the same bytes on every redelivery)."""
        return json.dumps(self.payload).encode()

    def to_json(self) -> JSONDict:
        return {
            "index": self.index,
            "hook_id": self.hook_id,
            "scope": self.scope,
            "destination": self.destination,
            "payload": copy_json(self.payload),
            "status": self.status,
            "error": self.error,
            "done": self.done,
            "redelivery_of": self.redelivery_of,
            "time": self.time,
        }


@dataclass
class HookBook:
    """One store's webhooks and every delivery made for them."""

    registered: dict[int, JSONDict] = field(default_factory=dict)
    next_id: int = 1
    deliveries: list[Delivery] = field(default_factory=list)
    outbox: list[int] = field(default_factory=list)  # deliveries to start once the lock is free


# -- the /v3/hooks API -----------------------------------------------------------------------


def list_hooks(book: HookBook, args: MultiDict[str, str]) -> JSONDict:
    """The answer of ``GET /v3/hooks``: filtered by ``is_active``, ``scope``, ``destination``."""
    # BigCommerce lists the hooks of the token's client_id; a sandbox store has one token.
    reject_unknown_params(args, _HOOK_LIST_PARAMS)
    page, limit = paging(args)
    active = args.get("is_active")
    if active not in (None, "true", "false"):
        raise ApiError(422, "The filter(s) are not valid", {"is_active": "true or false"})
    matches = [
        hook
        for _, hook in sorted(book.registered.items())
        if (active is None or hook["is_active"] == (active == "true"))
        and args.get("scope", hook["scope"]) == hook["scope"]
        and args.get("destination", hook["destination"]) == hook["destination"]
    ]
    return page_of(matches, args, page, limit)


def create_hook(book: HookBook, settings: SandboxStore, raw: bytes, now: float) -> JSONDict:
    """Register the hook a ``POST /v3/hooks`` body describes; a copy of it."""
    values = _clean_hook(json_body(raw), creating=True)
    stamp = int(now)
    hook: JSONDict = {
        "id": book.next_id,
        "client_id": settings.client_id,
        "store_hash": settings.store_hash,
        "scope": values["scope"],
        "destination": values["destination"],
        "headers": values.get("headers"),
        # Unconfirmed whether an omitted is_active means true; the Admin API's hook list
        # documents a default of true.
        "is_active": values.get("is_active", True),
        "created_at": stamp,
        "updated_at": stamp,
    }
    _check_hook_limits(book, hook)
    book.registered[hook["id"]] = hook
    book.next_id += 1
    return copy_json(hook)


def get_hook(book: HookBook, raw_id: str) -> JSONDict:
    return copy_json(book.registered[_hook_id(book, raw_id)])


def update_hook(book: HookBook, raw_id: str, raw: bytes, now: float) -> JSONDict:
    """Apply a ``PUT /v3/hooks/{id}`` body; a copy of the changed hook."""
    hook_id = _hook_id(book, raw_id)
    values = _clean_hook(json_body(raw), creating=False)
    hook = {**book.registered[hook_id], **values, "updated_at": int(now)}
    _check_hook_limits(book, hook)
    book.registered[hook_id] = hook
    return copy_json(hook)


def delete_hook(book: HookBook, raw_id: str) -> JSONDict:
    """Delete a hook; the hook deleted (BigCommerce answers 200 with it)."""
    return book.registered.pop(_hook_id(book, raw_id))


def _hook_id(book: HookBook, raw: str) -> int:
    if not raw.isdigit() or int(raw) not in book.registered:
        raise ApiError(404, f"Webhook with id [{raw}] not found")
    return int(raw)


def _clean_hook(body: Any, *, creating: bool) -> JSONDict:
    """The checked fields of a create (scope and destination required) or an update."""
    if not isinstance(body, dict):
        raise ApiError(422, _INVALID_HOOK, {"body": "must be a JSON object"})
    errors: JSONDict = {name: "unknown field" for name in sorted(set(body) - _HOOK_FIELDS)}
    values: JSONDict = {}
    if creating or "scope" in body:
        scope = body.get("scope")
        if not isinstance(scope, str) or not scope:
            errors["scope"] = "error.path.missing"
        elif scope not in HOOK_SCOPES:
            errors["scope"] = f"the sandbox fires only {', '.join(sorted(HOOK_SCOPES))}"
        else:
            values["scope"] = scope
    if creating or "destination" in body:
        problem = _destination_problem(body.get("destination"))
        if problem:
            errors["destination"] = problem
        else:
            values["destination"] = body["destination"]
    for name in ("is_active", "events_history_enabled"):  # the latter is deprecated: ignored
        if name in body and not isinstance(body[name], bool):
            errors[name] = f"{name} must be a boolean"
    if isinstance(body.get("is_active"), bool):
        values["is_active"] = body["is_active"]
    if "headers" in body:
        headers = body["headers"]
        if headers is not None and not (
            isinstance(headers, dict)
            and all(
                isinstance(k, str)
                and _HEADER_NAME.match(k)
                and isinstance(v, str)
                and not set(v) & {"\r", "\n", "\0"}
                for k, v in headers.items()
            )
        ):
            errors["headers"] = "headers must be null or an object of header names to strings"
        else:
            values["headers"] = dict(headers) if headers is not None else None
    if errors:
        raise ApiError(422, _INVALID_HOOK, errors)
    return values


def _destination_problem(destination: Any) -> str | None:
    if not isinstance(destination, str) or not destination:
        return "error.path.missing"
    parts = urlsplit(destination)
    try:
        port = parts.port
    except ValueError:
        return "destination must be a URL"
    if parts.scheme == "https" and parts.hostname and port in (None, 443):
        return None
    # Not BigCommerce: it demands https on port 443. The sandbox also accepts plain http to a
    # receiver on this machine (any port), so that tests and `broker demo` can receive hooks.
    if parts.scheme == "http" and parts.hostname == "127.0.0.1":
        return None
    return "destination must be an https URL on port 443 (the sandbox also takes http://127.0.0.1)"


def _check_hook_limits(book: HookBook, hook: JSONDict) -> None:
    """BigCommerce's platform limits: one hook per scope and destination, ten per scope."""
    others = [h for h in book.registered.values() if h["id"] != hook["id"]]
    if any(h["scope"] == hook["scope"] and h["destination"] == hook["destination"] for h in others):
        errors = {"destination": "a webhook with this scope and destination already exists"}
        raise ApiError(422, _INVALID_HOOK, errors)
    if sum(h["scope"] == hook["scope"] for h in others) >= MAX_HOOKS_PER_SCOPE:
        errors = {"scope": f"at most {MAX_HOOKS_PER_SCOPE} webhooks per scope"}
        raise ApiError(422, _INVALID_HOOK, errors)


# -- events and deliveries -------------------------------------------------------------------


def raise_event(book: HookBook, store_hash: str, scope: str, data: JSONDict, now: float) -> None:
    """Queue one delivery of this event to every active hook whose scope covers it."""
    payload: JSONDict = {
        "scope": scope,
        "store_id": store_id(store_hash),
        "data": data,
        "hash": "",
        "created_at": int(now),
        "producer": f"stores/{store_hash}",
    }
    # BigCommerce: a SHA-1 of the JSON-encoded payload. A nonce makes two events alike in
    # every field (the same customer updated twice in a second) still differ, as they do there.
    seed = json.dumps({**payload, "nonce": secrets.token_hex(16)}, sort_keys=True)
    payload["hash"] = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
    for hook_id, hook in sorted(book.registered.items()):
        if not hook["is_active"] or not _scope_covers(hook["scope"], scope):
            continue
        delivery = Delivery(
            index=len(book.deliveries),
            hook_id=hook_id,
            scope=scope,
            destination=hook["destination"],
            payload=copy_json(payload),
            headers=dict(hook["headers"] or {}),
            time=now,
        )
        book.deliveries.append(delivery)
        book.outbox.append(delivery.index)


def redeliver(book: HookBook, index: int, now: float) -> Delivery | None:
    """Queue delivery ``index``'s exact payload again (the same ``hash``), as BigCommerce's
    retries do: the new delivery, or None when there is no delivery ``index``."""
    if not is_int(index) or not 0 <= index < len(book.deliveries):
        return None
    original = book.deliveries[index]
    again = Delivery(
        index=len(book.deliveries),
        hook_id=original.hook_id,
        scope=original.scope,
        destination=original.destination,
        payload=original.payload,
        headers=dict(original.headers),
        time=now,
        redelivery_of=index,
    )
    book.deliveries.append(again)
    book.outbox.append(again.index)
    return again


def take_outbox(book: HookBook) -> list[int]:
    """The deliveries to start now (the outbox empties)."""
    pending, book.outbox = book.outbox, []
    return pending


def send(destination: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str | None]:
    """POST one delivery: the receiver's status, or why there is none (never raises)."""
    merged = httpx.Headers({"Content-Type": "application/json"})
    merged.update(headers)
    try:
        response = httpx.post(
            destination,
            content=body,
            headers=merged,
            timeout=DELIVERY_TIMEOUT,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment between us and 127.0.0.1
        )
    except Exception as exc:  # any failure is the delivery's outcome, never a crash
        return None, f"{type(exc).__name__}: {exc}"
    return response.status_code, None


def _scope_covers(hook_scope: str, scope: str) -> bool:
    if hook_scope.endswith("/*"):
        return scope.startswith(hook_scope[:-1])
    return hook_scope == scope


def store_id(store_hash: str) -> str:
    """The numeric store id of webhook payloads: stable per store hash."""
    digest = hashlib.sha1(store_hash.encode(), usedforsecurity=False).hexdigest()
    return str(1_000_000 + int(digest[:8], 16) % 9_000_000)
