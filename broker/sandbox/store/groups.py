"""Customer groups (``/v2/customer_groups``) of the sandbox store.

No IO, no framework: pure functions of a :class:`GroupBook`. Facts followed (BigCommerce's
Customer Groups V2 reference): a group is ``{id, name, is_default, category_access {type},
discount_rules, is_group_for_guests}``; ``GET /v2/customer_groups`` answers a bare JSON array,
paged by ``page`` and ``limit``, and like every V2 list answers 204 with no body when there
is nothing to list; ``GET /v2/customer_groups/{id}``; a customer's ``customer_group_id`` 0
means no group.

Where the sandbox decides: groups are seeded through the control API only (no POST here); at
most one group is the default (seeding a new default moves it); ``category_access`` is always
``{"type": "all"}``; an unknown ``customer_group_id`` on a customer is 422 only once the store
has any group at all, so stores seeded without groups accept any id, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from broker.sandbox.store.model import JSONDict, SandboxError, copy_json
from broker.sandbox.store.v3 import ApiError, paging, reject_unknown_params


@dataclass
class GroupBook:
    """One store's customer groups by id."""

    groups: dict[int, JSONDict] = field(default_factory=dict)
    next_id: int = 1


def add_group(book: GroupBook, name: Any, is_default: Any = False) -> JSONDict:
    """Seed a group; the new record."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise SandboxError("name must be a non-empty string of at most 255 characters")
    if not isinstance(is_default, bool):
        raise SandboxError("is_default must be a boolean")
    if any(g["name"] == name for g in book.groups.values()):
        raise SandboxError(f"a customer group named {name!r} exists")
    if is_default:
        for group in book.groups.values():
            group["is_default"] = False
    record: JSONDict = {
        "id": book.next_id,
        "name": name,
        "is_default": is_default,
        "category_access": {"type": "all"},
        "discount_rules": [],
        "is_group_for_guests": False,
    }
    book.groups[record["id"]] = record
    book.next_id += 1
    return copy_json(record)


def listing(book: GroupBook, args: MultiDict[str, str]) -> tuple[int, Any]:
    """``GET /v2/customer_groups``: 200 and a page of groups, or 204 when it is empty."""
    reject_unknown_params(args, frozenset({"page", "limit"}))
    page, limit = paging(args)
    records = [g for _, g in sorted(book.groups.items())][(page - 1) * limit : page * limit]
    if not records:
        return 204, None
    return 200, [copy_json(g) for g in records]


def get_group(book: GroupBook, group_id: int) -> JSONDict:
    found = book.groups.get(group_id)
    if found is None:
        raise ApiError(404, "The requested resource was not found.")
    return copy_json(found)


def checked_ids(book: GroupBook) -> frozenset[int] | None:
    """The ids a customer's ``customer_group_id`` may take besides 0; None: any (no groups)."""
    return frozenset(book.groups) if book.groups else None
