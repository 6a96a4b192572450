"""SCIM resources (RFC 7643): parsing User and Group bodies, the stored documents, the served
resources, list responses, paging and the discovery documents (RFC 7644 §4).

The broker stores a subset of the core User schema: ``userName``, ``externalId``,
``name.givenName``/``name.familyName``, ``displayName``, ``emails`` (value, type, primary)
and ``active``; of Group, ``displayName``, ``externalId`` and ``members``. Attributes outside
it are ignored rather than refused, because identity providers send extras (Entra ID maps
``title``, phone numbers and the enterprise extension by default), and ``/Schemas`` advertises
only what is kept (RFC 7643 §7), so clients know what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scim2_models import Group as _ScimGroup
from scim2_models import User as _ScimUser

from broker.names import clean
from broker.provisioning.scim.errors import ERROR_SCHEMA, ScimError

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

__all__ = [
    "ENTERPRISE_USER_SCHEMA",
    "ERROR_SCHEMA",
    "GROUP_SCHEMA",
    "LIST_SCHEMA",
    "PATCH_SCHEMA",
    "USER_SCHEMA",
    "Email",
    "GroupInput",
    "UserInput",
    "group_document",
    "group_resource",
    "list_response",
    "paging",
    "parse_group",
    "parse_user",
    "primary_email",
    "resource_types",
    "schemas",
    "service_provider_config",
    "user_document",
    "user_resource",
]

#: Longest userName/displayName/externalId kept (the store's customer fields are shorter
#: still; the service truncates or refuses there).
MAX_TEXT = 255
#: Most e-mail addresses and group members in one body; past it the body is refused.
MAX_EMAILS = 20
MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class Email:
    """One value of ``emails`` (RFC 7643 §4.1.2)."""

    value: str
    type: str | None = None
    primary: bool = False


@dataclass(frozen=True)
class UserInput:
    """A validated User body: what the broker keeps of it."""

    user_name: str
    external_id: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    #: ``name.formatted``: read for a missing given or family name, never stored.
    formatted_name: str | None = None
    emails: tuple[Email, ...] = ()
    active: bool = True
    #: Whether the body said ``active`` at all (unassigned: active, and not served back).
    active_given: bool = True


@dataclass(frozen=True)
class GroupInput:
    """A validated Group body; ``member_ids`` are user ids, in order, without repeats."""

    display_name: str
    external_id: str | None = None
    member_ids: tuple[str, ...] = ()


# -- reading bodies ----------------------------------------------------------------------


def lookup(document: dict[str, Any], name: str) -> Any:
    """The value of attribute ``name``: attribute names are case-insensitive (RFC 7643 §2.1)."""
    if name in document:
        return document[name]
    lowered = name.lower()
    for key, value in document.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _require_schema(body: Any, schema: str, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ScimError(400, f"the {what} body must be a JSON object", "invalidSyntax")
    declared = lookup(body, "schemas")
    if not isinstance(declared, list) or schema.lower() not in {
        s.lower() for s in declared if isinstance(s, str)
    }:
        raise ScimError(400, f'"schemas" must list {schema}', "invalidSyntax")
    return body


def _text(value: Any, attribute: str, *, required: bool = False) -> str | None:
    """A string attribute, stripped; empty counts as unassigned (RFC 7643 §2.5).

    NUL is refused everywhere: ``filters.NO_MATCH`` relies on no stored value holding it.
    """
    if value is None:
        if required:
            raise ScimError(400, f"{attribute} is required", "invalidValue")
        return None
    if not isinstance(value, str):
        raise ScimError(400, f"{attribute} must be a string", "invalidValue")
    stripped = value.strip()
    if not stripped:
        if required:
            raise ScimError(400, f"{attribute} must not be empty", "invalidValue")
        return None
    if len(stripped) > MAX_TEXT:
        raise ScimError(400, f"{attribute} is longer than {MAX_TEXT} characters", "invalidValue")
    if "\x00" in stripped:
        raise ScimError(400, f"{attribute} must not contain NUL", "invalidValue")
    return stripped


def boolean(value: Any, attribute: str) -> bool:
    """A SCIM boolean; also the strings Entra ID sends (``"True"``, ``"False"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ScimError(400, f"{attribute} must be true or false", "invalidValue")


def _emails(value: Any) -> tuple[Email, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):  # one value where a list is due: taken as a list of one
        value = [value]
    if not isinstance(value, list):
        raise ScimError(400, "emails must be a list", "invalidValue")
    if len(value) > MAX_EMAILS:
        raise ScimError(400, f"at most {MAX_EMAILS} emails are kept", "invalidValue")
    found: list[Email] = []
    seen: set[str] = set()
    has_primary = False
    for item in value:
        if not isinstance(item, dict):
            raise ScimError(400, "each of emails must be an object with a value", "invalidValue")
        address = _text(lookup(item, "value"), "emails.value", required=True)
        assert address is not None
        kind = _text(lookup(item, "type"), "emails.type")
        primary_value = lookup(item, "primary")
        primary = False if primary_value is None else boolean(primary_value, "emails.primary")
        # One primary at most (RFC 7643 §2.4): the first one claiming it keeps it.
        primary = primary and not has_primary
        has_primary = has_primary or primary
        # The same address twice is kept once (e-mail addresses compare case-insensitively).
        if address.lower() in seen:
            continue
        seen.add(address.lower())
        found.append(Email(value=address, type=kind.lower() if kind else None, primary=primary))
    return tuple(found)


def parse_user(body: Any) -> UserInput:
    """Validate a POST or PUT ``/Users`` body (RFC 7643 §4.1, RFC 7644 §3.3 and §3.5.1).

    ``id``, ``meta`` and any attribute the broker does not keep are ignored.
    """
    body = _require_schema(body, USER_SCHEMA, "User")
    user_name = _text(lookup(body, "userName"), "userName", required=True)
    assert user_name is not None
    name = lookup(body, "name")
    if name is not None and not isinstance(name, dict):
        raise ScimError(400, "name must be an object", "invalidValue")
    name = name or {}
    active = lookup(body, "active")
    return UserInput(
        user_name=user_name,
        external_id=_text(lookup(body, "externalId"), "externalId"),
        given_name=_text(lookup(name, "givenName"), "name.givenName"),
        family_name=_text(lookup(name, "familyName"), "name.familyName"),
        # Only a hint for a missing name (never stored, never served): not worth a 400.
        formatted_name=clean(lookup(name, "formatted")),
        display_name=_text(lookup(body, "displayName"), "displayName"),
        emails=_emails(lookup(body, "emails")),
        active=True if active is None else boolean(active, "active"),
        active_given=active is not None,
    )


def primary_email(user: UserInput) -> str | None:
    """The address to give the store's customer: the primary, else the work one, else the
    first."""
    for email in user.emails:
        if email.primary:
            return email.value
    for email in user.emails:
        if email.type == "work":
            return email.value
    return user.emails[0].value if user.emails else None


def user_document(user: UserInput) -> dict[str, Any]:
    """The canonical stored JSON of a user, without ``id`` and ``meta``.

    Unassigned attributes are left out (RFC 7643 §2.5), ``active`` too; of ``name``, the
    given and family names are kept (``formatted`` is not: it could disagree with them).
    """
    document: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user.user_name}
    if user.external_id is not None:
        document["externalId"] = user.external_id
    name: dict[str, str] = {}
    if user.given_name is not None:
        name["givenName"] = user.given_name
    if user.family_name is not None:
        name["familyName"] = user.family_name
    if name:
        document["name"] = name
    if user.display_name is not None:
        document["displayName"] = user.display_name
    if user.emails:
        emails: list[dict[str, Any]] = []
        for email in user.emails:
            item: dict[str, Any] = {"value": email.value}
            if email.type is not None:
                item["type"] = email.type
            item["primary"] = email.primary
            emails.append(item)
        document["emails"] = emails
    if user.active_given:
        document["active"] = user.active
    return document


def parse_group(body: Any) -> GroupInput:
    """Validate a POST or PUT ``/Groups`` body (RFC 7643 §4.2).

    Members are user ids (``value``); ``display``, ``$ref`` and ``type`` are ignored, and a
    member listed twice is kept once. Whether the ids exist is the service's to check.
    """
    body = _require_schema(body, GROUP_SCHEMA, "Group")
    display_name = _text(lookup(body, "displayName"), "displayName", required=True)
    assert display_name is not None
    return GroupInput(
        display_name=display_name,
        external_id=_text(lookup(body, "externalId"), "externalId"),
        member_ids=member_ids(lookup(body, "members")),
    )


def member_ids(value: Any) -> tuple[str, ...]:
    """The ids of a ``members`` value: a list of ``{"value": id}`` (one object is taken as a
    list of one), in order, without repeats."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ScimError(400, "members must be a list", "invalidValue")
    if len(value) > MAX_MEMBERS:
        raise ScimError(400, f"at most {MAX_MEMBERS} members in one request", "invalidValue")
    found: dict[str, None] = {}
    for item in value:
        if not isinstance(item, dict):
            raise ScimError(400, "each of members must be an object with a value", "invalidValue")
        member = _text(lookup(item, "value"), "members.value", required=True)
        assert member is not None
        found[member] = None
    return tuple(found)


def group_document(group: GroupInput) -> dict[str, Any]:
    """The canonical stored JSON of a group, without ``id``, ``meta`` and ``members`` (those
    are stored as links to users)."""
    document: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": group.display_name}
    if group.external_id is not None:
        document["externalId"] = group.external_id
    return document


# -- serving resources -------------------------------------------------------------------


def timestamp(seconds: int) -> str:
    """Unix seconds as an RFC 3339 UTC date-time (RFC 7643 §2.3.5, §3.1 ``meta``)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def etag(version: int) -> str:
    """The weak entity tag of a resource version (RFC 7644 §3.14); also ``meta.version``."""
    return f'W/"{version}"'


def _resource(
    document: dict[str, Any],
    resource_type: str,
    *,
    id: str,
    created: int,
    updated: int,
    version: int,
    location: str,
) -> dict[str, Any]:
    served: dict[str, Any] = {"schemas": document.get("schemas", []), "id": id}
    served.update((k, v) for k, v in document.items() if k not in ("schemas", "id", "meta"))
    served["meta"] = {
        "resourceType": resource_type,
        "created": timestamp(created),
        "lastModified": timestamp(updated),
        "location": location,
        "version": etag(version),
    }
    return served


def user_resource(
    document: dict[str, Any], *, id: str, created: int, updated: int, version: int, location: str
) -> dict[str, Any]:
    """A user as served: the stored document with ``id`` and ``meta`` (RFC 7643 §3.1)."""
    return _resource(
        document,
        "User",
        id=id,
        created=created,
        updated=updated,
        version=version,
        location=location,
    )


def group_resource(
    document: dict[str, Any],
    *,
    id: str,
    created: int,
    updated: int,
    version: int,
    location: str,
    members: list[dict[str, Any]],
) -> dict[str, Any]:
    """A group as served, with its ``members`` (``[{"value": user id, "display"?,
    "$ref"?}]``, as the caller builds them; left out when empty, RFC 7643 §2.5)."""
    served = _resource(
        document,
        "Group",
        id=id,
        created=created,
        updated=updated,
        version=version,
        location=location,
    )
    if members:
        meta = served.pop("meta")
        served["members"] = [dict(m) for m in members]
        served["meta"] = meta
    return served


def list_response(
    resources: list[dict[str, Any]], *, total: int, start_index: int
) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2): ``Resources`` is present even when empty, which
    Entra ID's validator expects."""
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "itemsPerPage": len(resources),
        "startIndex": start_index,
        "Resources": resources,
    }


def _integer(text: str, parameter: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ScimError(400, f"{parameter} must be an integer", "invalidValue") from None


def paging(start_index: str | None, count: str | None, *, max_count: int = 200) -> tuple[int, int]:
    """``(startIndex, count)`` from the query parameters (RFC 7644 §3.4.2.4).

    A ``startIndex`` below 1 is read as 1 and a negative ``count`` as 0 (the RFC's words); a
    missing or empty parameter takes its default (1, and ``max_count``); ``count`` above
    ``max_count`` is capped (the server may return fewer, ``itemsPerPage`` says how many).
    """
    start = (
        1 if start_index is None or not start_index.strip() else _integer(start_index, "startIndex")
    )
    size = max_count if count is None or not count.strip() else _integer(count, "count")
    return max(start, 1), min(max(size, 0), max_count)


# -- discovery (RFC 7644 §4) -------------------------------------------------------------


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def service_provider_config(base_url: str) -> dict[str, Any]:
    """``/ServiceProviderConfig`` (RFC 7643 §5)."""
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": 200},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A bearer token made for this connection by the store's admin",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{_base(base_url)}/ServiceProviderConfig",
        },
    }


def resource_types(base_url: str) -> dict[str, Any]:
    """``/ResourceTypes`` (RFC 7643 §6) as a ListResponse of User and Group."""
    base = _base(base_url)
    types = [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": name,
            "name": name,
            "endpoint": endpoint,
            "description": description,
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/{name}"},
        }
        for name, endpoint, description, schema in (
            ("User", "/Users", "A shopper of the store", USER_SCHEMA),
            ("Group", "/Groups", "A group of shoppers", GROUP_SCHEMA),
        )
    ]
    return list_response(types, total=len(types), start_index=1)


#: What ``/Schemas`` advertises: the stored attributes and, for complex ones, sub-attributes.
_USER_ATTRIBUTES: dict[str, tuple[str, ...] | None] = {
    "userName": None,
    "name": ("familyName", "givenName"),
    "displayName": None,
    "active": None,
    "emails": ("value", "type", "primary"),
}
_GROUP_ATTRIBUTES: dict[str, tuple[str, ...] | None] = {
    "displayName": None,
    "members": ("value", "$ref"),
}

#: ``externalId`` is a common attribute (RFC 7643 §3.1), not part of the core schemas;
#: advertised all the same so clients see it is kept.
_EXTERNAL_ID = {
    "name": "externalId",
    "type": "string",
    "multiValued": False,
    "description": "An identifier for the resource as defined by the provisioning client.",
    "required": False,
    "caseExact": True,
    "mutability": "readWrite",
    "returned": "default",
    "uniqueness": "none",
}


def _schema(
    definition: dict[str, Any], keep: dict[str, tuple[str, ...] | None], base: str | None
) -> dict[str, Any]:
    attributes: list[dict[str, Any]] = []
    for attribute in definition["attributes"]:
        if attribute["name"] not in keep:
            continue
        subs = keep[attribute["name"]]
        if subs is not None:
            attribute = {
                **attribute,
                "subAttributes": [s for s in attribute["subAttributes"] if s["name"] in subs],
            }
        attributes.append(attribute)
    attributes.append(dict(_EXTERNAL_ID))
    schema = {**definition, "attributes": attributes}
    if base is not None:
        schema["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema['id']}"}
    return schema


def schemas(base_url: str | None = None) -> dict[str, Any]:
    """``/Schemas`` (RFC 7643 §7) as a ListResponse of the User and Group schemas.

    The definitions (names, types, mutability, descriptions) are RFC 7643 §8.7.1's, taken
    from ``scim2-models`` and cut down to the attributes the broker keeps. With
    ``base_url``, each carries ``meta.location``.
    """
    base = _base(base_url) if base_url is not None else None
    definitions = [
        _schema(_ScimUser.to_schema().model_dump(), _USER_ATTRIBUTES, base),
        _schema(_ScimGroup.to_schema().model_dump(), _GROUP_ATTRIBUTES, base),
    ]
    return list_response(definitions, total=len(definitions), start_index=1)


#: Returned whatever ``attributes`` / ``excludedAttributes`` say (RFC 7643 2.4, 7.2).
ALWAYS_RETURNED = frozenset({"schemas", "id", "meta"})


def attribute_list(text: str | None) -> tuple[str, ...]:
    """``attributes`` or ``excludedAttributes`` (comma-separated, RFC 7644 3.4.2.5), each
    without a core-schema URN prefix, lower-cased for comparison."""
    names: list[str] = []
    for raw in (text or "").split(","):
        name = raw.strip()
        for urn in (USER_SCHEMA, GROUP_SCHEMA):
            if name.lower().startswith(urn.lower() + ":"):
                name = name[len(urn) + 1 :]
        if name:
            names.append(name.lower())
    return tuple(names)


def project(
    resource: dict[str, Any], *, attributes: tuple[str, ...], excluded: tuple[str, ...]
) -> dict[str, Any]:
    """The resource with only ``attributes`` (and what is always returned), or without
    ``excluded``; ``name.givenName``-style sub-attributes narrow a complex attribute."""
    if attributes:
        out: dict[str, Any] = {}
        for key, value in resource.items():
            wanted = [a for a in attributes if a == key.lower() or a.startswith(key.lower() + ".")]
            if key in ALWAYS_RETURNED or key.lower() in attributes:
                out[key] = value
            elif wanted and isinstance(value, dict):
                subs = {a.split(".", 1)[1] for a in wanted}
                picked = {k: v for k, v in value.items() if k.lower() in subs}
                if picked:
                    out[key] = picked
        return out
    if excluded:
        out = {}
        for key, value in resource.items():
            if key in ALWAYS_RETURNED:
                out[key] = value
            elif key.lower() in excluded:
                continue
            elif isinstance(value, dict) and any(e.startswith(key.lower() + ".") for e in excluded):
                subs = {e.split(".", 1)[1] for e in excluded if e.startswith(key.lower() + ".")}
                out[key] = {k: v for k, v in value.items() if k.lower() not in subs}
            else:
                out[key] = value
        return out
    return resource


def one_of(listing: dict[str, Any], wanted: str) -> dict[str, Any] | None:
    """The resource of a discovery ListResponse whose ``id`` (or ``name``) is ``wanted``."""
    for resource in listing.get("Resources", []):
        if wanted in (resource.get("id"), resource.get("name")):
            found: dict[str, Any] = resource
            return found
    return None
