"""The Scripts API (``/v3/content/scripts``) and the tags storefront pages render from it.

No IO, no framework: pure functions of a :class:`ScriptBook`; refusals are
:class:`~broker.sandbox.store.v3.ApiError` in the v3 shape. Facts followed
(``docs/bigcommerce-api.md``, "App install"; BigCommerce's Scripts API reference):

- a script has ``name``, ``description``, ``src`` (kind ``src``) or ``html`` (kind
  ``script_tag``), ``auto_uninstall``, ``load_method`` (default | async | defer),
  ``location`` (head | footer), ``visibility`` (storefront | all_pages | checkout |
  order_confirmation), ``consent_category`` (essential | functional | analytics | targeting),
  ``enabled``, ``channel_id`` (default 1) and ``integrity_hashes``; the store adds ``uuid``,
  ``api_client_id``, ``date_created`` and ``date_modified``;
- ``POST`` creates one script (``{"data": {...}, "meta": {}}``); ``GET`` lists them (paged as
  every v3 list); ``GET``, ``PUT`` and ``DELETE /content/scripts/{uuid}``;
- a script belongs to the API client that created it; ``auto_uninstall`` scripts go when the
  app is uninstalled.

Where the sandbox decides: ``name`` and ``kind`` are required, with ``src`` (an http(s) URL)
for kind ``src`` and ``html`` for kind ``script_tag``, and the other of the two refused;
unknown and read-only fields are 422; an API client sees, changes and deletes only its own
scripts (another's uuid is 404); ``api_client_id`` is the app's client id, or the store
API account's own (``SandboxStore.client_id``) for the store's token; defaults are
``load_method`` default, ``location`` head, ``visibility`` storefront, ``consent_category``
essential, ``enabled`` true, ``auto_uninstall`` false; the sandbox has no checkout, so every
storefront page is both "storefront" and "all_pages".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict

from broker.sandbox.store.model import JSONDict, SandboxStore, copy_json, is_int, iso
from broker.sandbox.store.v3 import (
    ApiError,
    int_list,
    json_body,
    page_of,
    paging,
    reject_unknown_params,
)

LOAD_METHODS = ("default", "async", "defer")
LOCATIONS = ("head", "footer")
VISIBILITIES = ("storefront", "all_pages", "checkout", "order_confirmation")
KINDS = ("src", "script_tag")
CONSENT_CATEGORIES = ("essential", "functional", "analytics", "targeting")
STOREFRONT_VISIBILITIES = frozenset({"storefront", "all_pages"})

_INVALID = "JSON data is missing or invalid"
_CHOICES = {
    "load_method": LOAD_METHODS,
    "location": LOCATIONS,
    "visibility": VISIBILITIES,
    "kind": KINDS,
    "consent_category": CONSENT_CATEGORIES,
}
_DEFAULTS: JSONDict = {
    "description": "",
    "html": "",
    "src": "",
    "auto_uninstall": False,
    "load_method": "default",
    "location": "head",
    "visibility": "storefront",
    "consent_category": "essential",
    "enabled": True,
    "channel_id": 1,
    "integrity_hashes": [],
}
_WRITABLE = frozenset({"name", "kind", *_DEFAULTS})
_READ_ONLY = frozenset({"uuid", "api_client_id", "date_created", "date_modified"})
_LIST_PARAMS = frozenset({"page", "limit", "channel_id:in"})
MAX_HTML = 65536


@dataclass
class ScriptBook:
    """One store's scripts by uuid, oldest first, each with the API client that owns it."""

    scripts: dict[str, JSONDict] = field(default_factory=dict)


# -- the API ---------------------------------------------------------------------------------


def create(
    book: ScriptBook, settings: SandboxStore, owner: str | None, raw: bytes, now: float
) -> JSONDict:
    """``POST /content/scripts`` by ``owner`` (an app's client id, None: the store's token)."""
    values = _clean(json_body(raw), settings, creating=True)
    stamp = iso(now)
    record: JSONDict = {
        "uuid": str(uuid.uuid4()),
        **copy_json(_DEFAULTS),
        **values,
        "api_client_id": _client_id(settings, owner),
        "date_created": stamp,
        "date_modified": stamp,
    }
    _check_kind(record)
    book.scripts[record["uuid"]] = record
    return copy_json(record)


def update(
    book: ScriptBook,
    settings: SandboxStore,
    owner: str | None,
    script_uuid: str,
    raw: bytes,
    now: float,
) -> JSONDict:
    """``PUT /content/scripts/{uuid}``: the fields given change, the rest stay."""
    current = get(book, settings, owner, script_uuid)
    values = _clean(json_body(raw), settings, creating=False)
    record = {**current, **values, "date_modified": iso(now)}
    _check_kind(record)
    book.scripts[script_uuid] = record
    return copy_json(record)


def get(book: ScriptBook, settings: SandboxStore, owner: str | None, script_uuid: str) -> JSONDict:
    found = book.scripts.get(script_uuid)
    if found is None or found["api_client_id"] != _client_id(settings, owner):
        raise ApiError(404, f"Script with uuid {script_uuid} not found")
    return copy_json(found)


def delete(book: ScriptBook, settings: SandboxStore, owner: str | None, script_uuid: str) -> None:
    get(book, settings, owner, script_uuid)
    del book.scripts[script_uuid]


def search(
    book: ScriptBook, settings: SandboxStore, owner: str | None, args: MultiDict[str, str]
) -> JSONDict:
    """``GET /content/scripts``: the owner's scripts, paged."""
    reject_unknown_params(args, _LIST_PARAMS)
    page, limit = paging(args)
    channels = int_list(args, "channel_id:in") if "channel_id:in" in args else None
    mine = _client_id(settings, owner)
    matches = [
        s
        for s in book.scripts.values()
        if s["api_client_id"] == mine and (channels is None or s["channel_id"] in channels)
    ]
    return page_of(matches, args, page, limit)


def remove_on_uninstall(book: ScriptBook, client_id: str) -> list[str]:
    """Delete the app's ``auto_uninstall`` scripts; their uuids."""
    gone = [
        u
        for u, s in book.scripts.items()
        if s["api_client_id"] == client_id and s["auto_uninstall"]
    ]
    for script_uuid in gone:
        del book.scripts[script_uuid]
    return gone


def _client_id(settings: SandboxStore, owner: str | None) -> str:
    return owner if owner is not None else settings.client_id


# -- checks ----------------------------------------------------------------------------------


def _clean(body: Any, settings: SandboxStore, *, creating: bool) -> JSONDict:
    """The checked fields of a POST or PUT body; 422 with every problem at once."""
    if not isinstance(body, dict):
        raise ApiError(422, _INVALID, {"": "the body must be a JSON object"})
    errors: JSONDict = {}
    for name in sorted(set(body) - _WRITABLE):
        errors[name] = "read-only field" if name in _READ_ONLY else "unknown field"
    if creating:
        for name in ("name", "kind"):
            if name not in body:
                errors[name] = f"{name} is required"
    values: JSONDict = {}
    for name, value in body.items():
        if name in _WRITABLE:
            problem = _field_problem(name, value, settings)
            if problem:
                errors[name] = problem
            else:
                values[name] = value
    if errors:
        raise ApiError(422, _INVALID, errors)
    return values


def _field_problem(name: str, value: Any, settings: SandboxStore) -> str | None:
    if name in _CHOICES:
        allowed = _CHOICES[name]
        return None if value in allowed else f"{name} must be one of {', '.join(allowed)}"
    if name == "name":
        ok = isinstance(value, str) and value.strip() and len(value) <= 255
        return None if ok else "name must be a non-empty string of at most 255 characters"
    if name == "description":
        return None if isinstance(value, str) and len(value) <= 65535 else "must be a string"
    if name in ("auto_uninstall", "enabled"):
        return None if isinstance(value, bool) else f"{name} must be a boolean"
    if name == "channel_id":
        ok = is_int(value) and value in settings.channel_ids
        return None if ok else "channel_id must be one of the store's channels"
    if name == "src":
        return None if value == "" or _is_http_url(value) else "src must be an http(s) URL"
    if name == "html":
        ok = isinstance(value, str) and len(value) <= MAX_HTML
        return None if ok else f"html must be a string of at most {MAX_HTML} characters"
    if name == "integrity_hashes":
        ok = isinstance(value, list) and all(isinstance(h, str) and h for h in value)
        return None if ok else "integrity_hashes must be a list of strings"
    return "unknown field"


def _check_kind(record: JSONDict) -> None:
    """A ``src`` script has a src and no html; a ``script_tag`` script the reverse."""
    errors: JSONDict = {}
    if record["kind"] == "src":
        if not record["src"]:
            errors["src"] = "src is required for kind src"
        if record["html"]:
            errors["html"] = "html is only for kind script_tag"
    else:
        if not record["html"]:
            errors["html"] = "html is required for kind script_tag"
        if record["src"]:
            errors["src"] = "src is only for kind src"
    if errors:
        raise ApiError(422, _INVALID, errors)


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 2048:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# -- the storefront --------------------------------------------------------------------------


def storefront_tags(book: ScriptBook, channel_id: int) -> tuple[Markup, Markup]:
    """The HTML a storefront page of ``channel_id`` puts in its head and before ``</body>``:
    its enabled storefront and all-pages scripts, oldest first."""
    placed: dict[str, list[str]] = {"head": [], "footer": []}
    for script in book.scripts.values():
        if (
            script["enabled"]
            and script["channel_id"] == channel_id
            and script["visibility"] in STOREFRONT_VISIBILITIES
        ):
            placed[script["location"]].append(_tag(script))
    # Raw on purpose: a script_tag's html is the API client's own markup, as on BigCommerce;
    # every attribute of a src tag is escaped by _tag.
    head, footer = "\n".join(placed["head"]), "\n".join(placed["footer"])
    return Markup(head), Markup(footer)  # noqa: S704


def _tag(script: JSONDict) -> str:
    if script["kind"] == "script_tag":
        return str(script["html"])  # the merchant's (or app's) own markup, as BigCommerce does
    attributes = [f'src="{escape(script["src"])}"']
    if script["load_method"] in ("async", "defer"):
        attributes.append(script["load_method"])
    if script["integrity_hashes"]:
        attributes.append(f'integrity="{escape(" ".join(script["integrity_hashes"]))}"')
        attributes.append('crossorigin="anonymous"')
    attributes.append(f'data-script-uuid="{escape(script["uuid"])}"')
    return f"<script {' '.join(attributes)}></script>"
