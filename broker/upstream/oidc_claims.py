"""Reading a person out of the claims real OpenID providers send, and their known quirks.

Pure functions, no IO: :mod:`broker.upstream.oidc` verifies a token, then asks these where each
claim is and what it means. The rules (README "Configure"; docs/idps/):

- **Where a claim is** (:func:`claim_value`): a claim whose name is exactly the configured
  string wins (Auth0's namespaced ``https://example.com/groups``, dots and all); otherwise the
  string is a dotted path into nested objects (Keycloak's ``realm_access.roles``), taking at
  each level the longest key that matches, so a key with dots of its own
  (``resource_access.shop.example.com.roles``) is found too. Nothing else is tried.
- **Verified e-mail** (:func:`asserted_true`): only JSON ``true`` or the string ``"true"``;
  an absent claim is "not verified" (OpenID Connect Core 5.1), never "verified".
- **Groups overage** (:func:`groups_overaged`): Entra ID puts ``_claim_names``/
  ``_claim_sources`` (OpenID Connect Core 5.6.2, distributed claims) in place of a ``groups``
  claim it cannot fit (more than 200 groups in a JWT), or ``hasgroups: true``. The endpoint it
  names (``graph.windows.net``, retired) is never called: see :mod:`broker.upstream.graph`.
- **Multi-tenant issuers** (:func:`tenant_template_of`, :func:`tenant_issuer`): Entra ID's
  ``/organizations/v2.0`` discovery document names ``https://login.microsoftonline.com/
  {tenantid}/v2.0``, a literal placeholder the ``tid`` claim fills in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The literal placeholder in a multi-tenant discovery document's issuer (Entra ID).
TENANT_PLACEHOLDER = "{tenantid}"
#: How deep a dotted claim path may go.
MAX_PATH_DEPTH = 8


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    """The claim ``name``: exactly that key if present, else ``name`` as a dotted path into
    nested objects, the longest matching key first at each level; None when absent."""
    if name in claims:
        return claims[name]
    return _walk(claims, name, MAX_PATH_DEPTH)


def _walk(node: Mapping[str, Any], path: str, depth: int) -> Any:
    if depth <= 0:
        return None
    if path in node:
        return node[path]
    cut = len(path)
    while (cut := path.rfind(".", 0, cut)) > 0:
        head, rest = path[:cut], path[cut + 1 :]
        child = node.get(head)
        if isinstance(child, Mapping) and rest:
            found = _walk(child, rest, depth - 1)
            if found is not None:
                return found
    return None


def asserted_true(value: Any) -> bool:
    """Whether a boolean claim says yes: JSON true, or the string "true" some IdPs send."""
    return value is True or value == "true"


def text(value: Any) -> str | None:
    """A non-blank string claim, stripped; None for anything else."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def group_names(value: Any) -> tuple[str, ...]:
    """A groups claim as names: a list of strings (or numbers), or one string."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value if isinstance(v, str | int) and not isinstance(v, bool))
    return ()


def groups_overaged(claims: Mapping[str, Any], groups_claim: str) -> bool:
    """Whether the IdP left the groups out because there were too many (Entra ID's overage):
    ``_claim_names`` names the groups claim, or ``hasgroups`` is true, and the claim itself is
    absent."""
    if claim_value(claims, groups_claim) is not None:
        return False
    names = claims.get("_claim_names")
    named = isinstance(names, Mapping) and groups_claim in names
    return named or asserted_true(claims.get("hasgroups"))


def person_names(
    claims: Mapping[str, Any], *, first_claim: str, last_claim: str
) -> tuple[str | None, str | None]:
    """(first, last): the configured claims; else ``name`` split at its first space; else
    Keycloak's ``preferred_username`` as the first name, unless it is an e-mail address (the
    e-mail's own fallback is as good). ``preferred_username`` never stands for the e-mail."""
    first = text(claim_value(claims, first_claim))
    last = text(claim_value(claims, last_claim))
    if first or last:
        return first, last
    name = text(claims.get("name"))
    if name:
        given, _, family = name.partition(" ")
        return text(given), text(family)
    username = text(claims.get("preferred_username"))
    if username and "@" not in username:
        return username, None
    return None, None


def tenant_template_of(document_issuer: object, configured: str) -> str | None:
    """The discovery document's issuer when it is the configured issuer with exactly one path
    segment replaced by ``{tenantid}`` (``.../organizations/v2.0`` configured, ``.../{tenantid}
    /v2.0`` declared), compared verbatim otherwise; else None."""
    if not isinstance(document_issuer, str) or document_issuer.count(TENANT_PLACEHOLDER) != 1:
        return None
    declared, ours = document_issuer.split("/"), configured.split("/")
    if len(declared) != len(ours) or TENANT_PLACEHOLDER not in declared:
        return None
    differ = [i for i, (a, b) in enumerate(zip(declared, ours, strict=True)) if a != b]
    if len(differ) != 1 or declared[differ[0]] != TENANT_PLACEHOLDER or differ[0] < 3:
        return None  # one path segment (index 3 on: after "https:", "", the host)
    return document_issuer


def tenant_issuer(template: str, tenant: str) -> str:
    """The issuer of one tenant: the template with ``{tenantid}`` filled in."""
    return template.replace(TENANT_PLACEHOLDER, tenant)


def tenant_subject(tenant: str, subject: str) -> str:
    """A multi-tenant connection's subject: ``sub`` is unique only within one tenant's issuer
    (OpenID Connect Core 2), so it is qualified by the tenant id: ``<tid>:<sub>``."""
    return f"{tenant}:{subject}"
