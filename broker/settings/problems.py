"""Problems as the operator reads them: one line per problem, naming its key, in file order.

:class:`Table` gathers one table's problems (from ``env:`` look-ups, from pydantic's
``ValidationError``, from the rules across keys) and gives them back as lines: unknown keys
first, then the others in the order their keys appear in the document (keys the document
lacks after those, in the schema's order; problems of the table as a whole last).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from broker.settings.schema import PROBLEM

UNKNOWN = "unknown key (check the spelling)"

_TYPE_WORDS = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "dict_type": 'must be a table of name = id, e.g. { "wholesale" = 2 }',
}
_BOUNDS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


def line(path: str, key: str, text: str) -> str:
    """``stores.acme.channel_id: must be an integer``."""
    name = ".".join(p for p in (path, key) if p)
    return f"{name or '(top level)'}: {text}"


def unknown_key(key: str, known: Iterable[str]) -> str:
    """The line's text for a key no table has, with the nearest known key if one is close."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"{UNKNOWN}, did you mean {close[0]!r}?" if close else UNKNOWN


def bounds(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """The ``Field(ge=, le=)`` bounds of one field (None where it has none)."""
    low = high = None
    for item in model.model_fields[name].metadata:
        low = getattr(item, "ge", low)
        high = getattr(item, "le", high)
    return low, high


def _text(model: type[BaseModel], error: ErrorDetails, known: Collection[str]) -> str:
    kind = error["type"]
    key = str(error["loc"][0]) if error["loc"] else ""
    if kind == PROBLEM:
        return error["msg"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return unknown_key(key, known)
    if kind in _BOUNDS and key in model.model_fields:
        low, high = bounds(model, key)
        return f"must be between {low} and {high}"
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"must be one of {expected}"
    return _TYPE_WORDS.get(kind, error["msg"])


@dataclass
class Table:
    """One table being read: where it is, what the document gives, and its problems."""

    path: str
    document: Mapping[str, Any]
    #: The keys of this table's model, in the schema's order.
    fields: tuple[str, ...] = ()
    #: (key, text, rank): 0 the table as a whole, first; 1 an unknown key; 2 any other.
    entries: list[tuple[str, str, int]] = field(default_factory=list)

    def first(self, text: str) -> None:
        """A problem of the whole table told before any of its keys' (not a table, a bad key)."""
        self.entries.append(("", text, 0))

    def problem(self, key: str, text: str) -> None:
        self.entries.append((key, text, 2))

    def unknown(self, key: str, text: str) -> None:
        self.entries.append((key, text, 1))

    def has_problems(self) -> bool:
        return bool(self.entries)

    def from_validation_error(
        self,
        error: ValidationError,
        model: type[BaseModel],
        known: Collection[str],
        quiet: Collection[str] = (),
    ) -> set[str]:
        """Record every error of one model's validation; return the keys that failed.
        ``quiet``: keys whose problem is already told (an ``env:`` variable not set)."""
        failed: set[str] = set()
        for item in error.errors(include_url=False):
            key = ".".join(str(p) for p in item["loc"][:1])
            if key in quiet:
                continue
            failed.add(key)
            text = _text(model, item, known)
            if item["type"] == "extra_forbidden":
                self.unknown(key, text)
            else:
                self.problem(key, text)
        return failed

    def lines(self) -> list[str]:
        order = {key: i for i, key in enumerate(self.document)}
        after = len(order)
        schema = {key: after + i for i, key in enumerate(self.fields)}
        last = after + len(schema)

        def position(entry: tuple[str, str, int]) -> tuple[int, int]:
            key, _, rank = entry
            head = key.split(".")[0]
            if not key or rank < 2:
                return (rank, last + 1 if key else order.get(head, last))
            return (rank, order.get(head, schema.get(head, last)))

        return [line(self.path, key, text) for key, text, _ in sorted(self.entries, key=position)]
