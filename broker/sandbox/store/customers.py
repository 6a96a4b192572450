"""Customers V3 for the sandbox store: one store's customers and the rules BigCommerce applies.

No IO, no framework: pure functions of a :class:`CustomerBook` (the records, their password
hashes) and the store's settings; every refusal is an :class:`~broker.sandbox.store.v3.ApiError`.
Changes notify no webhook here: :mod:`broker.sandbox.store.data` does that for the changes an
API makes. Facts followed (``docs/bigcommerce-api.md``, "Customers V3" and "Multi-storefront
and headless"):

- ``GET /customers`` takes the filters ``id:in``, ``email:in``, ``name:in``, ``name:like`` and
  ``customer_group_id:in`` (others are 422; the sandbox has no date filters, no ``include`` and
  no cursors), pages by ``page``/``limit``, and there is no ``GET /customers/{id}``;
- ``POST`` and ``PUT /customers`` take a JSON array of at most 10 (413 beyond); ``email``,
  ``first_name`` and ``last_name`` are required on create, ``id`` on update; a batch is checked
  whole and then made whole, or not at all;
- an e-mail is unique per channel, not per store: a record whose e-mail (any case) meets
  another's on an overlapping channel is 422 ("The customer could not be saved"), and
  ``channel_ids`` null (a global customer) overlaps every channel;
- ``DELETE /customers?id:in=`` deletes what exists; without the filter it deletes nothing;
- ``POST /customers/validate-credentials`` checks e-mail (any case) and password on
  ``channel_id`` (default 1): ``{"is_valid", "customer_id"}``.

Where the documents are silent, the sandbox decides: ``email:in`` is case-insensitive unless
the store says otherwise (``email_case_sensitive``); an ``origin_channel_id`` defaults to the
first of ``channel_ids``, else the store's default channel; unknown fields are 422, and the
documented fields the sandbox does not keep (addresses, attributes...) are accepted and
dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.security import check_password_hash, generate_password_hash

from broker.sandbox.store.model import (
    JSONDict,
    SandboxStore,
    as_int,
    default_channel,
    is_int,
    iso,
)
from broker.sandbox.store.v3 import (
    ApiError,
    int_list,
    json_body,
    page_of,
    paging,
    reject_unknown_params,
    str_list,
)

MAX_BATCH = 10
PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # noqa: S105 - a hash method name; cheap on purpose

_LIST_FILTERS = frozenset({"id:in", "email:in", "name:in", "name:like", "customer_group_id:in"})
_LIST_PARAMS = _LIST_FILTERS | {"page", "limit"}
_TEXT_FIELDS = ("email", "first_name", "last_name", "company", "phone", "notes")
_OPTIONAL_TEXT = ("registration_ip_address", "tax_exempt_category")
_IGNORED_FIELDS = frozenset(
    {
        "attributes",
        "addresses",
        "form_fields",
        "store_credit_amounts",
        "trigger_account_created_notification",
        "accepts_product_review_abandoned_cart_emails",
    }
)
_KNOWN_FIELDS = frozenset(
    {
        *_TEXT_FIELDS,
        *_OPTIONAL_TEXT,
        *_IGNORED_FIELDS,
        "customer_group_id",
        "channel_ids",
        "origin_channel_id",
        "authentication",
    }
)


@dataclass
class CustomerBook:
    """One store's customers: the records as the API shows them, and their password hashes."""

    records: dict[int, JSONDict] = field(default_factory=dict)
    passwords: dict[int, str] = field(default_factory=dict)
    next_id: int = 1


# -- reading ---------------------------------------------------------------------------------


def search(book: CustomerBook, settings: SandboxStore, args: MultiDict[str, str]) -> JSONDict:
    """The answer of ``GET /customers`` with these query parameters."""
    reject_unknown_params(args, _LIST_PARAMS)
    page, limit = paging(args)
    matches = [
        c
        for _, c in sorted(book.records.items())
        if _matches_filters(c, args, settings.email_case_sensitive)
    ]
    return page_of(matches, args, page, limit)


def _matches_filters(customer: JSONDict, args: MultiDict[str, str], case_sensitive: bool) -> bool:
    if "id:in" in args and customer["id"] not in int_list(args, "id:in"):
        return False
    if "customer_group_id:in" in args and customer["customer_group_id"] not in int_list(
        args, "customer_group_id:in"
    ):
        return False
    if "email:in" in args:
        emails = str_list(args, "email:in")
        if case_sensitive:
            if customer["email"] not in emails:
                return False
        elif customer["email"].lower() not in {e.lower() for e in emails}:
            return False
    full_name = f"{customer['first_name']} {customer['last_name']}".lower()
    if "name:in" in args and full_name not in {n.lower() for n in str_list(args, "name:in")}:
        return False
    like = args.get("name:like")
    return like is None or like.lower() in full_name


# -- credentials -----------------------------------------------------------------------------


def credentials_request(raw: bytes) -> tuple[str, str, int]:
    """The e-mail, password and channel of a ``validate-credentials`` body, checked."""
    body = json_body(raw)
    if not isinstance(body, dict):
        raise ApiError(422, "The body must be a JSON object")
    errors = {
        name: f"{name} is required and must be a string"
        for name in ("email", "password")
        if not isinstance(body.get(name), str) or not body.get(name)
    }
    channel_id = body.get("channel_id", 1)
    if not is_int(channel_id):
        errors["channel_id"] = "channel_id must be an integer"
    if errors:
        raise ApiError(422, "Input is invalid", errors)
    return str(body["email"]), str(body["password"]), channel_id


def check_credentials(book: CustomerBook, email: str, password: str, channel_id: int) -> int | None:
    """The customer with this e-mail (any case) and password who may use this channel."""
    wanted = email.lower()
    for customer_id, customer in sorted(book.records.items()):
        if customer["email"].lower() != wanted or not allows_channel(customer, channel_id):
            continue
        hashed = book.passwords.get(customer_id)
        if hashed is not None and check_password_hash(hashed, password):
            return customer_id
    return None


# -- changing --------------------------------------------------------------------------------


def batch(raw: bytes) -> list[Any]:
    """The items of a ``POST`` or ``PUT /customers`` body: a non-empty array of at most 10."""
    body = json_body(raw)
    if not isinstance(body, list):
        raise ApiError(422, "The request body must be a JSON array")
    if not body:
        raise ApiError(422, "The request body must not be empty")
    if len(body) > MAX_BATCH:
        raise ApiError(413, f"At most {MAX_BATCH} customers per request")
    return body


def create(
    book: CustomerBook,
    settings: SandboxStore,
    items: list[Any],
    now: float,
    group_ids: Collection[int] | None = None,
) -> list[JSONDict]:
    """Validate a whole batch, then create all of it or nothing; the new records.

    ``group_ids``: the customer groups ``customer_group_id`` may name besides 0 (None: any).
    """
    cleaned: list[tuple[JSONDict, str | None]] = []
    errors: JSONDict = {}
    for index, item in enumerate(items):
        values, password, item_errors = _clean_customer(item, settings, True, group_ids)
        errors.update({f"[{index}].{k}": v for k, v in item_errors.items()})
        cleaned.append((values, password))
    if errors:
        raise ApiError(422, "Input is invalid", errors)
    records = [_new_record(settings, values, now) for values, _ in cleaned]
    _check_duplicates(book, records)
    created: list[JSONDict] = []
    for record, (_, password) in zip(records, cleaned, strict=True):
        record["id"] = book.next_id
        book.next_id += 1
        book.records[record["id"]] = record
        if password is not None:
            book.passwords[record["id"]] = _hash_password(password)
        created.append(record)
    return created


def update(
    book: CustomerBook,
    settings: SandboxStore,
    items: list[Any],
    now: float,
    group_ids: Collection[int] | None = None,
) -> list[JSONDict]:
    """Validate a whole batch of changes (each naming its ``id``), then make them all."""
    records: list[JSONDict] = []
    passwords: list[str | None] = []
    errors: JSONDict = {}
    for index, item in enumerate(items):
        values, password, item_errors = _clean_customer(item, settings, False, group_ids)
        customer_id = as_int(item.get("id")) if isinstance(item, dict) else None
        if customer_id is None or customer_id not in book.records:
            item_errors["id"] = "id is required and must be an existing customer"
        errors.update({f"[{index}].{k}": v for k, v in item_errors.items()})
        if not item_errors and customer_id is not None:
            record = {**book.records[customer_id], **values, "date_modified": iso(now)}
            records.append(record)
            passwords.append(password)
    if errors:
        raise ApiError(422, "Input is invalid", errors)
    if len({r["id"] for r in records}) != len(records):
        raise ApiError(422, "Input is invalid", {"id": "each id at most once per request"})
    _check_duplicates(book, records)
    for record, password in zip(records, passwords, strict=True):
        book.records[record["id"]] = record
        if password is not None:
            book.passwords[record["id"]] = _hash_password(password)
    return records


def delete_filter(args: MultiDict[str, str]) -> list[int]:
    """The ids a ``DELETE /customers`` names (``id:in``); none without the filter."""
    reject_unknown_params(args, frozenset({"id:in"}))
    return int_list(args, "id:in") if "id:in" in args else []


def remove(book: CustomerBook, ids: Iterable[int]) -> list[int]:
    """Delete the customers that exist; their ids, in the order given, each once."""
    removed = [i for i in dict.fromkeys(ids) if book.records.pop(i, None) is not None]
    for customer_id in removed:
        book.passwords.pop(customer_id, None)
    return removed


# -- records ---------------------------------------------------------------------------------


def _clean_customer(
    item: Any, settings: SandboxStore, creating: bool, group_ids: Collection[int] | None
) -> tuple[JSONDict, str | None, JSONDict]:
    """Checked fields of one customer item, its new password, and errors by field name."""
    if not isinstance(item, dict):
        return {}, None, {"": "each item must be a JSON object"}
    errors: JSONDict = {}
    allowed = _KNOWN_FIELDS if creating else _KNOWN_FIELDS | {"id"}
    for name in sorted(set(item) - allowed):
        errors[name] = "unknown field"
    values: JSONDict = {}
    for name in (*_TEXT_FIELDS, *_OPTIONAL_TEXT):
        if name in item:
            if not isinstance(item[name], str) or len(item[name]) > 255:
                errors[name] = f"{name} must be a string of at most 255 characters"
            else:
                values[name] = item[name]
    for name in ("email", "first_name", "last_name"):
        if (creating or name in item) and not str(item.get(name) or "").strip():
            errors[name] = f"{name} is required"
    if "email" in values and not re.fullmatch(r"[^@\s]+@[^@\s]+", values["email"]):
        errors["email"] = "email must be a valid e-mail address"
    _clean_numbers(item, settings, values, errors)
    group = values.get("customer_group_id", 0)
    if group_ids is not None and group and group not in group_ids:
        errors["customer_group_id"] = "customer_group_id is not a customer group of the store"
    password = _clean_password(item.get("authentication"), errors)
    return values, password, errors


def _clean_numbers(
    item: JSONDict, settings: SandboxStore, values: JSONDict, errors: JSONDict
) -> None:
    if "customer_group_id" in item:
        if is_int(item["customer_group_id"]) and item["customer_group_id"] >= 0:
            values["customer_group_id"] = item["customer_group_id"]
        else:
            errors["customer_group_id"] = "customer_group_id must be a non-negative integer"
    if "channel_ids" in item:
        channels = item["channel_ids"]
        if channels is None:
            values["channel_ids"] = None
        elif (
            isinstance(channels, list)
            and channels
            and all(is_int(c) and c in settings.channel_ids for c in channels)
        ):
            values["channel_ids"] = list(dict.fromkeys(channels))
        else:
            errors["channel_ids"] = (
                "channel_ids must be null or a non-empty list of the store's channels"
            )
    if "origin_channel_id" in item:
        if is_int(item["origin_channel_id"]) and item["origin_channel_id"] in settings.channel_ids:
            values["origin_channel_id"] = item["origin_channel_id"]
        else:
            errors["origin_channel_id"] = "origin_channel_id must be one of the store's channels"


def _clean_password(authentication: Any, errors: JSONDict) -> str | None:
    if authentication is None:
        return None
    if not isinstance(authentication, dict):
        errors["authentication"] = "authentication must be an object"
        return None
    password = authentication.get("new_password")
    if password is not None and (not isinstance(password, str) or not password):
        errors["authentication"] = "new_password must be a non-empty string"
        return None
    return password if isinstance(password, str) else None


def _new_record(settings: SandboxStore, values: JSONDict, now: float) -> JSONDict:
    channels = values.get("channel_ids")
    stamp = iso(now)
    return {
        "id": 0,
        "email": values["email"],
        "first_name": values["first_name"],
        "last_name": values["last_name"],
        "company": values.get("company", ""),
        "phone": values.get("phone", ""),
        "notes": values.get("notes", ""),
        "customer_group_id": values.get("customer_group_id", 0),
        "channel_ids": channels,
        "origin_channel_id": values.get(
            "origin_channel_id", channels[0] if channels else default_channel(settings)
        ),
        "registration_ip_address": values.get("registration_ip_address", ""),
        "tax_exempt_category": values.get("tax_exempt_category", ""),
        "date_created": stamp,
        "date_modified": stamp,
    }


def _check_duplicates(book: CustomerBook, changed: list[JSONDict]) -> None:
    """422 when a changed record's e-mail meets another's in an overlapping channel."""
    changed_ids = {r["id"] for r in changed if r["id"]}
    others = [c for c in book.records.values() if c["id"] not in changed_ids]
    errors: JSONDict = {}
    for index, record in enumerate(changed):
        for other in [*others, *changed[:index]]:
            if other["email"].lower() == record["email"].lower() and channels_overlap(
                other["channel_ids"], record["channel_ids"]
            ):
                errors[f"[{index}].email"] = "The email address is already in use"
                break
    if errors:
        raise ApiError(422, "The customer could not be saved", errors)


def _hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)


# -- channel rules ---------------------------------------------------------------------------


def channels_overlap(a: list[int] | None, b: list[int] | None) -> bool:
    """Whether two customers' ``channel_ids`` share a channel (null: every channel)."""
    return a is None or b is None or bool(set(a) & set(b))


def allows_channel(customer: JSONDict, channel_id: int) -> bool:
    """Whether the customer may sign in on this channel (``channel_ids`` null: any)."""
    channels = customer.get("channel_ids")
    return channels is None or channel_id in channels


def find_by_email(book: CustomerBook, email: str, channel_ids: list[int]) -> JSONDict | None:
    """The first customer with this e-mail (any case) on one of these channels (no copy)."""
    wanted = email.lower()
    for _, customer in sorted(book.records.items()):
        if customer["email"].lower() == wanted and channels_overlap(
            customer["channel_ids"], channel_ids
        ):
            return customer
    return None


def event_data(settings: SandboxStore, customer: JSONDict) -> JSONDict:
    """The ``data`` of a created or updated customer's webhook payload."""
    # Unconfirmed what `channel_ids` says for a global customer (channel_ids null); the
    # sandbox lists every channel of the store, the channels such a customer can use.
    channels = customer["channel_ids"] or list(settings.channel_ids)
    return {"type": "customer", "id": customer["id"], "channel_ids": list(channels)}
