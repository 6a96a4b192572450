"""The ``filter`` query parameter (RFC 7644 §3.4.2.2), as far as identity providers use it.

Okta and Entra ID look resources up before creating them (``userName eq "..."``,
``externalId eq "..."``, ``emails[type eq "work"].value eq "..."``, ``displayName eq "..."``
for groups) and nothing else; so the filters compile to equality constraints, one value per
key, which the store can answer with an index. Everything else (``or``, ``not``, operators
other than ``eq``, other attributes, grouping) is refused with ``invalidFilter``, which the
RFC prescribes for a filter the server does not support.

Keys: ``user_name``, ``external_id``, ``id``, ``email``, ``display_name``, ``member``.
``email`` matches any of a user's addresses (case-insensitively: e-mail addresses are not
case-exact), ``member`` a group having that user id among its members. ``user_name``,
``email`` and ``display_name`` compare case-insensitively (``caseExact`` false, RFC 7643
§8.7.1), ``id``, ``external_id`` and ``member`` exactly.

A contradictory ``and`` (``userName eq "a" and userName eq "b"``) is not an error: it matches
nothing, and the key's value is then :data:`NO_MATCH`, a string no stored value can equal
(bodies with NUL are refused), so a lookup by it finds nothing without special handling. Two
different ``email`` or ``member`` values are not contradictory (a user has several
addresses), but one value per key is all this shape can say, so they are refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

from broker.provisioning.scim.errors import ScimError

#: The value of a key whose constraints contradict each other: it matches nothing.
NO_MATCH = "\x00"

_USER_SUPPORTED = (
    'userName eq "…", externalId eq "…", id eq "…", emails.value eq "…", '
    'emails[type eq "work"].value eq "…", emails[value eq "…"], displayName eq "…"'
)
_GROUP_SUPPORTED = (
    'displayName eq "…", externalId eq "…", id eq "…", members.value eq "…", members[value eq "…"]'
)

#: (normalised attribute path) → key; paths are lower-cased and stripped of the core
#: schema URN. ``emails[type eq "work"].value`` is written ``emails[type=work].value``.
_USER_KEYS = {
    "username": "user_name",
    "externalid": "external_id",
    "id": "id",
    "emails.value": "email",
    'emails[type="work"].value': "email",
    "emails[value]": "email",
    "displayname": "display_name",
}
_GROUP_KEYS = {
    "displayname": "display_name",
    "externalid": "external_id",
    "id": "id",
    "members.value": "member",
    "members[value]": "member",
}
_CASE_INSENSITIVE = {"user_name", "email", "display_name"}
_MULTI_VALUED = {"email", "member"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<punct>[\[\]()])
      | (?P<word>[^\s\[\]()"]+)
    )""",
    re.VERBOSE,
)


def _refuse(detail: str, resource: str) -> ScimError:
    supported = _USER_SUPPORTED if resource == "User" else _GROUP_SUPPORTED
    return ScimError(
        400,
        f'{detail}; supported filters: {supported}, combined with "and"',
        "invalidFilter",
    )


def _tokens(text: str, resource: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _refuse(f"cannot read the filter at {text[position:]!r}", resource)
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def _string(token: tuple[str, str] | None, resource: str) -> str:
    if token is None:
        raise _refuse("the filter ends where a value was expected", resource)
    kind, text = token
    if kind != "string":
        raise _refuse(f"only string values are supported, not {text}", resource)
    try:
        value = json.loads(text)
    except ValueError:
        raise _refuse(f"bad string {text}", resource) from None
    assert isinstance(value, str)
    return value


def _attribute(path: str, resource: str) -> str:
    lowered = path.lower()
    prefix = f"urn:ietf:params:scim:schemas:core:2.0:{resource.lower()}:"
    return lowered.removeprefix(prefix)


def parse_filter(text: str | None, *, resource: str) -> dict[str, str]:
    """Compile a ``filter`` for ``resource`` ("User" or "Group") into ``{key: value}``.

    None or blank → ``{}`` (no constraint). Raises ``ScimError(400, …, "invalidFilter")``
    for anything outside the supported shapes listed in the module's docstring.
    """
    if resource not in ("User", "Group"):
        raise ValueError(f"unknown resource {resource!r}")
    if text is None or not text.strip():
        return {}
    keys = _USER_KEYS if resource == "User" else _GROUP_KEYS
    tokens = _tokens(text, resource)
    result: dict[str, str] = {}
    index = 0

    def take() -> tuple[str, str] | None:
        nonlocal index
        if index >= len(tokens):
            return None
        index += 1
        return tokens[index - 1]

    def peek() -> tuple[str, str] | None:
        return tokens[index] if index < len(tokens) else None

    def operator(token: tuple[str, str] | None) -> None:
        if token is None:
            raise _refuse("the filter ends where an operator was expected", resource)
        if token[0] != "word" or token[1].lower() != "eq":
            raise _refuse(f"operator {token[1]!r} is not supported (only eq)", resource)

    while True:
        token = take()
        if token is None:
            raise _refuse("the filter ends where an attribute was expected", resource)
        kind, word = token
        if kind != "word" or word.lower() in ("not", "and", "or"):
            raise _refuse(f"unexpected {word!r} where an attribute was expected", resource)
        path = _attribute(word, resource)
        value: str | None = None
        if peek() == ("punct", "["):
            take()
            inner = take()
            if inner is None or inner[0] != "word":
                raise _refuse(f"a value filter on {word} needs an attribute", resource)
            operator(take())
            inner_value = _string(take(), resource)
            if take() != ("punct", "]"):
                raise _refuse(f"the value filter on {word} is not closed with ]", resource)
            after = peek()
            if after is not None and after[0] == "word" and after[1].startswith("."):
                take()  # emails[type eq "work"].value eq "..."
                sub = after[1].lower()
                if inner[1].lower() != "type" or inner_value.lower() != "work":
                    raise _refuse(f"{word}[{inner[1]} eq ...] is not supported", resource)
                path = f'{path}[type="{inner_value.lower()}"]{sub}'
            else:  # members[value eq "..."]: the value filter is the whole comparison
                path = f"{path}[{inner[1].lower()}]"
                value = inner_value
        if path not in keys:
            raise _refuse(f"filtering on {word} is not supported", resource)
        if value is None:
            operator(take())
            value = _string(take(), resource)
        _constrain(result, keys[path], value, resource)
        following = take()
        if following is None:
            return result
        if following[0] != "word" or following[1].lower() != "and":
            raise _refuse(f"{following[1]!r} is not supported (only and)", resource)


def _constrain(result: dict[str, str], key: str, value: str, resource: str) -> None:
    """Add ``key = value`` to ``result``: equal values merge, different ones contradict."""
    if key not in result:
        result[key] = value
        return

    def same(a: str, b: str) -> bool:
        return a.lower() == b.lower() if key in _CASE_INSENSITIVE else a == b

    current = result[key]
    if current == NO_MATCH or same(current, value):
        return
    if key in _MULTI_VALUED:
        raise _refuse(f"only one {key} value per filter is supported", resource)
    result[key] = NO_MATCH


def matches_nothing(constraints: dict[str, Any]) -> bool:
    """Whether compiled constraints can match no resource (a contradictory ``and``)."""
    return NO_MATCH in constraints.values()
