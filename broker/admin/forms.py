"""The admin's connection form: which keys it shows for each type, and form fields → the
connection's table (the same body the admin API's PUT takes, so one set of rules applies).

Keys the form does not show (set through the API) are kept: the form's values are laid over
the stored table. An empty secret field keeps the stored secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
            table[field.name] = raw in ("on", "true", "1")
        elif field.kind == "secret":
            if raw:
                table[field.name] = raw
        elif field.kind == "list":
            items = [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]
            if items:
                table[field.name] = items
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
