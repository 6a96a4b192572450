"""PATCH (RFC 7644 §3.5.2) on stored user and group documents, as Okta and Entra ID send it.

What the identity providers really send, beyond the RFC's examples:

- Okta: ``{"op": "replace", "value": {"active": false}}`` (no path, the value an object of
  attributes), ``name.givenName`` paths, group members removed with
  ``members[value eq "id"]``, group renames as ``{"op": "replace", "value": {"id": ...,
  "displayName": ...}}``.
- Entra ID: ``"Replace"``/``"Add"``/``"Remove"`` capitalised, ``"True"``/``"False"`` strings
  for booleans, path-less values whose keys are paths (``{"name.givenName": "Pat",
  "emails[type eq \\"work\\"].value": "pat@example.com"}``), ``emails[type eq "work"].value``
  paths for an address that may not exist yet, members removed with path ``members`` and a
  value list, and attributes of the enterprise extension
  (``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``).

Attributes the broker does not keep (the enterprise extension, ``title``, ``phoneNumbers``,
...) are ignored, as ``parse_user`` ignores them in a POST, rather than failing the whole
request. The result is revalidated and canonicalised (``parse_user``/``parse_group``), so a
PATCH can never store what a PUT could not.

scim2-models' own PatchOp is not used. Tried with 0.12.3 on the shapes above, it applies
Okta's path-less ``{"active": false}``, Entra's ``"False"`` and ``name.givenName`` keys and
``emails[type eq "work"].value`` for an existing address, but refuses a path-less key holding
a filter (``{"emails[type eq \"work\"].value": ...}``: "not declared by the resource
schema") and answers ``noTarget`` for a filtered path that matches no address, both of which
Entra sends; it also works on its full User model, not on our stored subset.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from broker.provisioning.scim.errors import ScimError
from broker.provisioning.scim.resources import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    boolean,
    group_document,
    lookup,
    member_ids,
    parse_group,
    parse_user,
    user_document,
)

__all__ = ["apply_group_patch", "apply_user_patch"]

_PATH = re.compile(
    r"""^(?P<attr>[A-Za-z$][\w$-]*)
        (?:\[\s*(?P<fattr>[A-Za-z$][\w$-]*)\s+(?P<op>[A-Za-z]+)\s+
               (?P<fvalue>"(?:[^"\\]|\\.)*"|[^\s\]]+)\s*\])?
        (?:\.(?P<sub>[A-Za-z$][\w$-]*))?$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Path:
    """A parsed ``path``: ``attr[filter_attr eq filter_value].sub``, lower-cased names.

    ``ignored`` marks a path into a schema the broker does not keep (an extension).
    """

    attr: str
    filter_attr: str | None = None
    filter_value: Any = None
    sub: str | None = None
    ignored: bool = False


def _parse_path(text: Any, core_schema: str) -> _Path:
    if not isinstance(text, str) or not text.strip():
        raise ScimError(400, "path must be a non-empty string", "invalidPath")
    text = text.strip()
    lowered = text.lower()
    core = core_schema.lower()
    if lowered == core:
        return _Path(attr="")  # the whole resource: the value is an object of attributes
    if lowered.startswith(core + ":"):
        text = text[len(core) + 1 :]
    elif lowered.startswith("urn:"):
        return _Path(attr=lowered, ignored=True)  # an extension's attribute, not kept
    match = _PATH.match(text)
    if match is None:
        raise ScimError(400, f"cannot read the path {text!r}", "invalidPath")
    filter_value: Any = None
    if match["fattr"] is not None:
        if match["op"].lower() != "eq":
            raise ScimError(
                400, f"only eq is supported in a path filter, not {match['op']!r}", "invalidFilter"
            )
        raw = match["fvalue"]
        if raw.lower() in ("true", "false"):
            raw = raw.lower()
        try:
            filter_value = json.loads(raw)
        except ValueError:
            raise ScimError(400, f"bad value {raw} in the path filter", "invalidPath") from None
    return _Path(
        attr=match["attr"].lower(),
        filter_attr=match["fattr"].lower() if match["fattr"] else None,
        filter_value=filter_value,
        sub=match["sub"].lower() if match["sub"] else None,
    )


def _operations(body: Any) -> list[tuple[str, Any, Any, bool]]:
    """``(op, path, value, has_value)`` of each operation, ``op`` lower-cased."""
    if not isinstance(body, dict):
        raise ScimError(400, "the PATCH body must be a JSON object", "invalidSyntax")
    declared = lookup(body, "schemas")
    if not isinstance(declared, list) or PATCH_SCHEMA.lower() not in {
        s.lower() for s in declared if isinstance(s, str)
    }:
        raise ScimError(400, f'"schemas" must list {PATCH_SCHEMA}', "invalidSyntax")
    operations = lookup(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a list of one or more operations", "invalidSyntax")
    found: list[tuple[str, Any, Any, bool]] = []
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "each operation must be a JSON object", "invalidSyntax")
        op = lookup(operation, "op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise ScimError(400, f"op must be add, replace or remove, not {op!r}", "invalidSyntax")
        has_value = any(isinstance(k, str) and k.lower() == "value" for k in operation)
        value = lookup(operation, "value")
        if op.lower() != "remove" and not has_value:
            raise ScimError(400, f"{op} needs a value", "invalidSyntax")
        found.append((op.lower(), lookup(operation, "path"), value, has_value))
    return found


def _is_null(value: Any) -> bool:
    """RFC 7643 §2.5: null, an empty string and an empty list are "unassigned"."""
    return value is None or value == "" or value == []


# -- users ---------------------------------------------------------------------------------

_USER_SIMPLE = {
    "username": "userName",
    "externalid": "externalId",
    "displayname": "displayName",
    "active": "active",
}
_NAME_SUBS = {"givenname": "givenName", "familyname": "familyName"}
_EMAIL_SUBS = {"value": "value", "type": "type", "primary": "primary"}
_READ_ONLY = {"id", "meta", "schemas"}


def apply_user_patch(document: dict[str, Any], body: Any) -> dict[str, Any]:
    """The stored user ``document`` with the PatchOp ``body`` applied (RFC 7644 §3.5.2).

    Operations apply in order, all or none (the input is not changed). The result is
    canonical: ``user_document(parse_user(result))`` is ``result``.
    """
    operations = _operations(body)
    working = copy.deepcopy(document)
    working["schemas"] = [USER_SCHEMA]
    for op, path, value, has_value in operations:
        if path is None:
            if op == "remove":
                raise ScimError(400, "remove needs a path", "noTarget")
            _user_attributes(working, op, value)
        else:
            _user_operation(
                working, op, _parse_path(path, USER_SCHEMA), value, has_value, explicit=True
            )
    return user_document(parse_user(working))


def _user_attributes(working: dict[str, Any], op: str, value: Any) -> None:
    """A path-less add or replace: every key of the value object is a path (RFC 7644
    §3.5.2.1, §3.5.2.3; Entra writes keys such as ``name.givenName``)."""
    if not isinstance(value, dict):
        raise ScimError(400, f"{op} without a path needs an object value", "invalidValue")
    for key, item in value.items():
        path = _parse_path(key, USER_SCHEMA)
        _user_operation(working, op, path, item, True, explicit=False)


def _user_operation(
    working: dict[str, Any], op: str, path: _Path, value: Any, has_value: bool, *, explicit: bool
) -> None:
    if path.ignored:
        return
    if path.attr == "":
        if op == "remove":
            raise ScimError(400, "cannot remove the whole resource", "noTarget")
        _user_attributes(working, op, value)
        return
    if path.attr in _READ_ONLY:
        if explicit:
            raise ScimError(400, f"{path.attr} is read-only", "mutability")
        return  # Okta repeats id in path-less values
    if path.attr in _USER_SIMPLE:
        if path.filter_attr is not None or path.sub is not None:
            raise ScimError(400, f"{path.attr} has no sub-attributes", "invalidPath")
        key = _USER_SIMPLE[path.attr]
        if op == "remove" or _is_null(value):
            if key == "userName":
                raise ScimError(400, f"{key} is required and cannot be removed", "mutability")
            working.pop(key, None)
        else:
            working[key] = boolean(value, "active") if key == "active" else value
    elif path.attr == "name":
        _name_operation(working, op, path, value)
    elif path.attr == "emails":
        _email_operation(working, op, path, value, has_value)
    # Anything else is an attribute the broker does not keep: ignored (see the docstring).


def _name_operation(working: dict[str, Any], op: str, path: _Path, value: Any) -> None:
    if path.filter_attr is not None:
        raise ScimError(400, "name is not multi-valued", "invalidPath")
    name = working.get("name")
    name = dict(name) if isinstance(name, dict) else {}
    if path.sub is None:
        if op == "remove" or _is_null(value):
            working.pop("name", None)
            return
        if not isinstance(value, dict):
            raise ScimError(400, "name must be an object", "invalidValue")
        # A complex value replaces the sub-attributes it names, the others stay (§3.5.2.3).
        changes = {k.lower(): v for k, v in value.items() if isinstance(k, str)}
    else:
        changes = {path.sub: None if op == "remove" else value}
    for sub, item in changes.items():
        if sub not in _NAME_SUBS:
            continue  # formatted is derived; middleName and the honorifics are not kept
        if _is_null(item):
            name.pop(_NAME_SUBS[sub], None)
        else:
            name[_NAME_SUBS[sub]] = item
    name.pop("formatted", None)
    if any(k in name for k in _NAME_SUBS.values()):
        working["name"] = name
    else:
        working.pop("name", None)


def _matches(element: dict[str, Any], attr: str, expected: Any) -> bool:
    actual = lookup(element, attr)
    if attr == "primary":
        try:
            return bool(boolean(actual if actual is not None else False, "primary") == expected)
        except ScimError:
            return False
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()  # type and value are not case-exact
    return bool(actual == expected)


def _email_values(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScimError(400, "emails must be a list of objects", "invalidValue")
    return [
        {_EMAIL_SUBS[k.lower()]: v for k, v in item.items() if k.lower() in _EMAIL_SUBS}
        for item in value
    ]


def _email_operation(
    working: dict[str, Any], op: str, path: _Path, value: Any, has_value: bool
) -> None:
    emails: list[dict[str, Any]] = [dict(e) for e in working.get("emails") or []]
    touched: list[dict[str, Any]] = []
    if path.sub is not None and path.sub not in _EMAIL_SUBS:
        return  # emails[...].display and the like: not kept
    sub = _EMAIL_SUBS[path.sub] if path.sub is not None else None
    if path.filter_attr is not None:
        selected = [e for e in emails if _matches(e, path.filter_attr, path.filter_value)]
    else:
        selected = list(emails)

    if op == "remove":
        if path.filter_attr is None and sub is None:
            if has_value and value is not None:  # Entra: remove these values
                doomed = [v.get("value") for v in _email_values(value)]
                emails = [e for e in emails if not any(_matches(e, "value", d) for d in doomed)]
            else:
                emails = []
        elif sub is None or sub == "value":  # an address without its value is no address
            emails = [e for e in emails if not any(e is s for s in selected)]
        else:
            for element in selected:
                element.pop(sub, None)
    elif path.filter_attr is None and sub is None:
        values = _email_values(value)
        if op == "replace":
            emails = values
            touched = list(values)
        else:  # add: new addresses appended, known ones updated (RFC 7644 §3.5.2.1)
            for item in values:
                known = [e for e in emails if _matches(e, "value", item.get("value"))]
                if known:
                    known[0].update(item)
                    touched.append(known[0])
                else:
                    emails.append(item)
                    touched.append(item)
    else:
        if sub is None:
            changes = _email_values(value)
            if len(changes) != 1:
                raise ScimError(400, "a filtered emails path takes one object", "invalidValue")
            change = changes[0]
        else:
            change = {sub: value}
        if not selected:
            # Entra replaces emails[type eq "work"].value for a user without a work address:
            # the filter names the element to create (RFC 7644 §3.5.2.3 would say noTarget).
            created: dict[str, Any] = {}
            if path.filter_attr in _EMAIL_SUBS:
                created[_EMAIL_SUBS[path.filter_attr]] = path.filter_value
            emails.append(created)
            selected = [created]
        for element in selected:
            element.update(change)
            touched.append(element)
    # A value made primary takes the flag from the others (RFC 7643 §2.4).
    primaries = [e for e in touched if _flag(e.get("primary"))]
    if primaries:
        for element in emails:
            if element is not primaries[0] and "primary" in element:
                element["primary"] = False
    emails = [e for e in emails if not _is_null(e.get("value"))]
    if emails:
        working["emails"] = emails
    else:
        working.pop("emails", None)


def _flag(value: Any) -> bool:
    try:
        return value is not None and boolean(value, "primary")
    except ScimError:
        return False


# -- groups --------------------------------------------------------------------------------


def apply_group_patch(
    document: dict[str, Any], members: list[str], body: Any
) -> tuple[dict[str, Any], list[str]]:
    """The stored group ``document`` and its ``members`` (user ids) with the PatchOp
    ``body`` applied: ``(new document, new member ids)``, in order, without repeats.

    The input is not changed; the document comes back canonical (``group_document``).
    """
    operations = _operations(body)
    working = copy.deepcopy(document)
    working["schemas"] = [GROUP_SCHEMA]
    ids = list(dict.fromkeys(members))
    for op, path, value, has_value in operations:
        if path is None:
            if op == "remove":
                raise ScimError(400, "remove needs a path", "noTarget")
            ids = _group_attributes(working, ids, op, value)
        else:
            ids = _group_operation(
                working, ids, op, _parse_path(path, GROUP_SCHEMA), value, has_value, explicit=True
            )
    group = parse_group({**working, "members": [{"value": i} for i in ids]})
    return group_document(group), list(group.member_ids)


def _group_attributes(working: dict[str, Any], ids: list[str], op: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        raise ScimError(400, f"{op} without a path needs an object value", "invalidValue")
    for key, item in value.items():
        ids = _group_operation(
            working, ids, op, _parse_path(key, GROUP_SCHEMA), item, True, explicit=False
        )
    return ids


def _group_operation(
    working: dict[str, Any],
    ids: list[str],
    op: str,
    path: _Path,
    value: Any,
    has_value: bool,
    *,
    explicit: bool,
) -> list[str]:
    if path.ignored:
        return ids
    if path.attr == "":
        if op == "remove":
            raise ScimError(400, "cannot remove the whole resource", "noTarget")
        return _group_attributes(working, ids, op, value)
    if path.attr in _READ_ONLY:
        if explicit:
            raise ScimError(400, f"{path.attr} is read-only", "mutability")
        return ids  # Okta sends {"id": ..., "displayName": ...} as a path-less value
    if path.attr in ("displayname", "externalid"):
        if path.filter_attr is not None or path.sub is not None:
            raise ScimError(400, f"{path.attr} has no sub-attributes", "invalidPath")
        key = "displayName" if path.attr == "displayname" else "externalId"
        if op == "remove" or _is_null(value):
            if key == "displayName":
                raise ScimError(400, "displayName is required and cannot be removed", "mutability")
            working.pop(key, None)
        else:
            working[key] = value
        return ids
    if path.attr != "members":
        return ids  # not kept
    if path.sub is not None and path.sub != "value":
        return ids  # members[...].display: not kept
    if path.filter_attr is not None and path.filter_attr != "value":
        raise ScimError(400, "members can only be filtered by value", "invalidFilter")
    targeted = (
        [str(path.filter_value)] if path.filter_attr is not None else None
    )  # members[value eq "id"]

    if op == "remove":
        if targeted is not None:
            doomed = set(targeted)
        elif has_value and value is not None:  # Entra: path "members", value [{value}]
            doomed = set(member_ids(value))
        else:
            return []  # path "members" alone: every member
        return [i for i in ids if i not in doomed]
    if targeted is not None:
        # replace members[value eq "a"] with {"value": "b"}: swap a for b
        if path.sub is not None:
            value = {"value": value}
        added = list(member_ids(value))
        ids = [i for i in ids if i not in targeted] if op == "replace" else ids
    else:
        added = list(member_ids(value))
        if op == "replace":
            ids = []
    return list(dict.fromkeys([*ids, *added]))
