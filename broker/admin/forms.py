"""The admin's forms, Flask-free: form fields → the body the admin API takes (so one set of
rules applies), and a table → the form's values.

The connection form: which keys it shows for each type; keys it does not show (set through
the API) are kept: the form's values are laid over the stored table. The staff form
(``[stores.X.staff]``) sends every key it shows. In both, an empty secret field keeps the
stored secret, and a secret is never put back into a page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from broker.settings.schema import StaffTable

LINK_RISKS = {
    "confirm": "Existing customers prove they own the account with their store password "
    "once (recommended).",
    "auto": "Existing customers are linked on the e-mail the IdP asserts: only for an IdP "
    "whose e-mails users cannot change.",
    "deny": "Only new customers: an existing account with that e-mail cannot sign in here.",
}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str  # text | secret | bool | link | list | textarea | url
    help: str = ""
    required: bool = False


COMMON = (
    Field("display_name", "Button label", "text", "What shoppers see: “Sign in with …”"),
    Field("jit", "Create customers who do not exist yet", "bool"),
    Field("link", "Existing customers", "link"),
    Field("allowed_domains", "Allowed e-mail domains", "list", "Comma-separated; empty: any"),
    Field("idp_logout", "Sign out of the IdP too when shoppers sign out", "bool"),
    Field(
        "scim",
        "SCIM provisioning (JSON)",
        "json",
        'e.g. {"enabled": true, "deprovision": "block", "customer_groups_by_group": '
        '{"Wholesale": 2}}; empty: off. The IdP\'s SCIM URL and tokens are below',
    ),
    Field(
        "b2b",
        "B2B Edition companies and roles (JSON)",
        "json",
        'Only with B2B Edition, e.g. {"companies_by_domain": {"globex.com": 101}, '
        '"roles_by_group": {"Purchasing": 1}}; empty: none',
    ),
)
OIDC = (
    Field(
        "issuer",
        "Issuer",
        "url",
        "e.g. https://acme.okta.com. Another issuer is another IdP: the connection's linked "
        "identities are then forgotten",
        required=True,
    ),
    Field("client_id", "Client ID", "text", required=True),
    Field("client_secret", "Client secret", "secret", "Leave empty to keep the saved one"),
    Field("scopes", "Scopes", "list", "Comma-separated; must include openid"),
    Field("groups_claim", "Groups claim", "text"),
)
SAML = (
    Field("idp_metadata_url", "IdP metadata URL", "url", "Or paste the metadata below"),
    Field("idp_metadata_xml", "IdP metadata XML", "textarea", "Paste, or upload a file"),
    Field("idp_entity_id", "IdP entity ID", "text", "Only when the metadata has several IdPs"),
    Field(
        "trust_email",
        "The IdP's e-mail attribute is managed by the directory",
        "bool",
        "Users cannot change it: it may link existing accounts",
    ),
    Field("allow_idp_initiated", "Allow sign-in started at the IdP", "bool"),
)


def fields_for(kind: str) -> tuple[Field, ...]:
    return (*(OIDC if kind == "oidc" else SAML), *COMMON)


def table_from_form(
    kind: str, form: Mapping[str, str], stored: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The connection's table: the stored one (without secrets) with the form laid over."""
    table: dict[str, Any] = dict(stored or {})
    table["type"] = kind
    for field in fields_for(kind):
        raw = form.get(field.name, "")
        if field.kind == "bool":
            table[field.name] = checked(raw)
        elif field.kind == "secret":
            if raw:
                table[field.name] = raw
        elif field.kind == "list":
            entries = items(raw)
            if entries:
                table[field.name] = entries
            else:
                table.pop(field.name, None)
        elif field.kind == "json":
            if raw.strip():
                try:
                    table[field.name] = json.loads(raw)
                except ValueError:
                    table[field.name] = raw  # the rules say what is wrong with it
            else:
                table.pop(field.name, None)
        elif raw.strip():
            table[field.name] = raw.strip() if field.kind != "textarea" else raw
        else:
            table.pop(field.name, None)
    if kind == "saml":
        # One metadata source: what the form gives wins.
        if form.get("idp_metadata_xml", "").strip():
            table.pop("idp_metadata_url", None)
        elif form.get("idp_metadata_url", "").strip():
            table.pop("idp_metadata_xml", None)
    groups = _pairs(form, "group_name", "group_id")
    if groups or "group_name" in form:
        table["customer_groups_by_group"] = groups
    return table


def checked(raw: str | None) -> bool:
    """A checkbox: a browser sends "on" when it is ticked, nothing when it is not."""
    return raw in ("on", "true", "1")


def items(raw: str, *, commas: bool = True) -> list[str]:
    """A list field's entries: one a line, and also comma-separated unless ``commas`` is
    false (an IdP group's name may hold commas: an LDAP DN, "Sales, EMEA")."""
    text = raw.replace("\n", ",") if commas else raw
    return [part.strip() for part in text.split("," if commas else "\n") if part.strip()]


def ticked(form: Mapping[str, Any], name: str) -> list[str]:
    """The values of a group of checkboxes sharing ``name`` (none ticked: none sent)."""
    getlist = getattr(form, "getlist", None)
    values = getlist(name) if getlist is not None else []
    return list(dict.fromkeys(str(v) for v in values if str(v).strip()))


def number(raw: str) -> int | str:
    """A number field as an integer; anything else as typed, for the rules to name
    ("must be an integer") as they do in the file."""
    text = raw.strip()
    return int(text) if text.isascii() and text.isdigit() else text


def number_bounds(name: str) -> Markup:
    """The ``min``/``max`` attributes of a staff number field, from the schema's ``ge``/``le``:
    the browser then says what the server would (which still checks)."""
    attributes = [
        Markup('{}="{}"').format(attribute, getattr(rule, bound))
        for rule in StaffTable.model_fields[name].metadata
        for attribute, bound in (("min", "ge"), ("max", "le"))
        if getattr(rule, bound, None) is not None
    ]
    return Markup(" ").join(attributes)


def _pairs(form: Mapping[str, Any], names: str, ids: str) -> dict[str, int]:
    getlist = getattr(form, "getlist", None)
    if getlist is None:
        return {}
    pairs: dict[str, int] = {}
    for name, value in zip(getlist(names), getlist(ids), strict=False):
        if name.strip() and str(value).isdigit():
            pairs[name.strip()] = int(value)
    return pairs


def form_values(kind: str, described: Mapping[str, Any] | None) -> dict[str, str]:
    """The form's fields filled from a connection as :func:`broker.admin.stores.describe`
    shows it."""
    values: dict[str, str] = {}
    for field in fields_for(kind):
        value = (described or {}).get(field.name)
        if field.kind == "bool":
            values[field.name] = "on" if value else ""
        elif field.kind == "json":
            values[field.name] = json.dumps(value, indent=1) if value else ""
        elif isinstance(value, list | tuple):
            values[field.name] = ", ".join(str(v) for v in value)
        elif value is not None and field.kind != "secret":
            values[field.name] = str(value)
        else:
            values[field.name] = ""
    return values


# -- the staff form ([stores.X.staff]) -------------------------------------------------------

#: The staff form's fields that fall back to the schema's default when left empty.
STAFF_DEFAULTS: dict[str, Any] = {
    name: StaffTable.model_fields[name].default
    for name in ("api_url", "requests_per_hour", "sign_in_days")
}


def staff_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """``[stores.X.staff]`` from the staff form, for ``PATCH settings {"staff": ...}``.

    Every key the form shows is sent (the patch lays a table over the stored one, so a key
    left out would keep its old value): an emptied optional field is its default, an empty
    list is empty. The token alone is left out when empty: the stored one is kept.
    """
    table: dict[str, Any] = {
        "enabled": checked(form.get("enabled")),
        "account_uuid": str(form.get("account_uuid", "")).strip(),
        "groups": items(str(form.get("groups", "")), commas=False),
        "connections": ticked(form, "connections"),
        "remove_unmanaged": checked(form.get("remove_unmanaged")),
        "keep": items(str(form.get("keep", ""))),
    }
    token = str(form.get("account_token", "")).strip()
    if token:
        table["account_token"] = token
    for name, default in STAFF_DEFAULTS.items():
        raw = str(form.get(name, "")).strip()
        if not raw:
            table[name] = default
        else:
            table[name] = raw if name == "api_url" else number(raw)
    return table


def staff_form_values(table: Mapping[str, Any] | None) -> dict[str, Any]:
    """The staff form's fields filled from a ``[stores.X.staff]`` table (stored, read from
    the file, or just sent), the schema's defaults where it has none. Never the token."""
    table = table or {}
    values: dict[str, Any] = {
        "enabled": bool(table.get("enabled", StaffTable.model_fields["enabled"].default)),
        "account_uuid": str(table.get("account_uuid") or ""),
        "groups": "\n".join(_strings(table.get("groups"))),
        "connections": _strings(table.get("connections")),
        "remove_unmanaged": bool(table.get("remove_unmanaged", False)),
        "keep": "\n".join(_strings(table.get("keep"))),
    }
    for name, default in STAFF_DEFAULTS.items():
        value = table.get(name)
        values[name] = str(default if value is None else value)
    return values


def field_errors(errors: list[dict[str, str]], table: str) -> dict[str, str]:
    """The admin API's errors (keys relative to the body) by the form's field names: those of
    ``table`` without its prefix; any other under "" (the form's as a whole)."""
    by_field: dict[str, list[str]] = {}
    for error in errors:
        key = error["key"]
        field = key.removeprefix(f"{table}.") if key.startswith(f"{table}.") else ""
        by_field.setdefault(field, []).append(error["message"])
    return {field: "; ".join(messages) for field, messages in by_field.items()}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []
