"""Where the broker reads an OpenID Connect identity's claims, and the IdPs' quirks it meets:
claim names and dotted paths (Auth0's namespaced claims, Keycloak's realm roles), what counts
as a verified e-mail, Entra ID's groups overage and multi-tenant issuer, name fallbacks, and a
token refused because a clock is off (the difference named)."""

from __future__ import annotations

from typing import Any

import pytest

from broker.errors import InvalidResponse
from broker.upstream.clock import ClockSkewed, check_times
from broker.upstream.oidc_claims import (
    asserted_true,
    claim_value,
    group_names,
    groups_overaged,
    person_names,
    tenant_issuer,
    tenant_subject,
    tenant_template_of,
)

# -- where a claim is -----------------------------------------------------------------------


def test_a_claim_name_with_dots_is_read_as_that_claim() -> None:
    # Auth0's namespaced custom claims are URLs, dots and all.
    claims = {"https://example.com/groups": ["buyers"], "https://example.com/org": "acme"}
    assert claim_value(claims, "https://example.com/groups") == ["buyers"]
    assert claim_value(claims, "https://example.com/org") == "acme"


def test_a_dotted_path_reads_nested_claims() -> None:
    # Keycloak's realm roles.
    claims = {"realm_access": {"roles": ["offline_access", "wholesale"]}}
    assert claim_value(claims, "realm_access.roles") == ["offline_access", "wholesale"]


def test_the_exact_claim_wins_over_a_path() -> None:
    claims = {"realm_access.roles": ["flat"], "realm_access": {"roles": ["nested"]}}
    assert claim_value(claims, "realm_access.roles") == ["flat"]


def test_a_key_with_dots_inside_a_path_is_found_longest_first() -> None:
    # Keycloak's client roles, under a client id with dots of its own.
    claims = {"resource_access": {"shop.example.com": {"roles": ["buyer"]}, "shop": {}}}
    assert claim_value(claims, "resource_access.shop.example.com.roles") == ["buyer"]
    namespaced = {"https://acme.example": {"roles": ["r"]}}
    assert claim_value(namespaced, "https://acme.example.roles") == ["r"]


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"realm_access": ["roles"]},  # not an object: no path through it
        {"realm_access": {"other": 1}},
        {"realm_access": "roles"},
    ],
)
def test_an_absent_claim_or_path_is_none(claims: dict[str, Any]) -> None:
    assert claim_value(claims, "realm_access.roles") is None


def test_a_path_is_bounded_in_depth() -> None:
    deep: dict[str, Any] = {"x": "found"}
    for _ in range(12):
        deep = {"a": deep}
    assert claim_value(deep, ".".join(["a"] * 12 + ["x"])) is None
    assert claim_value({"a": {"b": {"c": 1}}}, "a.b.c") == 1


def test_groups_are_strings_or_numbers_never_objects_or_booleans() -> None:
    assert group_names(["a", 7, {"x": 1}, None, True]) == ("a", "7")
    assert group_names("solo") == ("solo",)
    assert group_names({"a": 1}) == ()


# -- verified e-mail -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "verified"), [(True, True), ("true", True)])
def test_only_true_says_verified(value: Any, verified: bool) -> None:
    assert asserted_true(value) is verified


@pytest.mark.parametrize("value", [None, False, "false", "True", 1, "1", "yes", [True]])
def test_anything_else_is_not_verified(value: Any) -> None:
    assert asserted_true(value) is False


# -- Entra ID: groups overage ------------------------------------------------------------------

OVERAGE = {
    "_claim_names": {"groups": "src1"},
    "_claim_sources": {
        "src1": {"endpoint": "https://graph.windows.net/t/users/u/getMemberObjects"}
    },
}


def test_the_overage_claims_mark_the_groups_as_left_out() -> None:
    assert groups_overaged(OVERAGE, "groups")
    assert groups_overaged({"hasgroups": True}, "groups")  # the implicit flow's form


def test_no_overage_when_the_groups_are_there_or_another_claim_is_read() -> None:
    assert not groups_overaged({**OVERAGE, "groups": ["g"]}, "groups")
    assert not groups_overaged(OVERAGE, "roles")  # app roles are never left out
    assert not groups_overaged({"groups": []}, "groups")
    assert not groups_overaged({}, "groups")


# -- names -----------------------------------------------------------------------------------


def _names(claims: dict[str, Any]) -> tuple[str | None, str | None]:
    return person_names(claims, first_claim="given_name", last_claim="family_name")


def test_names_fall_back_to_name_then_preferred_username() -> None:
    assert _names({"given_name": " Ada ", "family_name": "Lovelace"}) == ("Ada", "Lovelace")
    assert _names({"name": "Ada King Lovelace"}) == ("Ada", "King Lovelace")
    # Keycloak: a user with no names has a username.
    assert _names({"preferred_username": "ada.l"}) == ("ada.l", None)
    # Entra ID's preferred_username is an e-mail-like UPN: the e-mail fallback does as well.
    assert _names({"preferred_username": "ada@corp.example"}) == (None, None)
    assert _names({"given_name": "", "preferred_username": "  "}) == (None, None)


def test_configured_name_claims_are_read_by_name_or_path() -> None:
    claims = {"https://example.com/first": "Ada", "profile": {"last": "Lovelace"}}
    assert person_names(
        claims, first_claim="https://example.com/first", last_claim="profile.last"
    ) == ("Ada", "Lovelace")


# -- Entra ID: multi-tenant issuers --------------------------------------------------------------

COMMON = "https://login.microsoftonline.com/organizations/v2.0"
TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"


def test_the_tenant_template_is_the_configured_issuer_with_one_segment_replaced() -> None:
    assert tenant_template_of(TEMPLATE, COMMON) == TEMPLATE
    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert tenant_issuer(TEMPLATE, tenant) == f"https://login.microsoftonline.com/{tenant}/v2.0"
    assert tenant_subject(tenant, "AAAsub") == f"{tenant}:AAAsub"


@pytest.mark.parametrize(
    "declared",
    [
        COMMON,  # no placeholder: a single issuer
        "https://login.microsoftonline.com/{tenantid}/v2.0/",  # a trailing "/" is not ours
        "https://evil.example/{tenantid}/v2.0",  # another host
        "https://{tenantid}/organizations/v2.0",  # the host itself
        "https://login.microsoftonline.com/{tenantid}/v1.0",  # two segments differ
        "https://login.microsoftonline.com/{tenantid}/{tenantid}",
        None,
        42,
    ],
)
def test_anything_else_is_no_template(declared: object) -> None:
    assert tenant_template_of(declared, COMMON) is None


# -- clock skew ------------------------------------------------------------------------------

NOW = 1_700_000_000


def test_times_within_the_leeway_pass() -> None:
    check_times({"iat": NOW + 60, "nbf": NOW + 60, "exp": NOW - 59}, now=NOW, leeway=60, what="t")
    check_times({"iat": "soon", "exp": None}, now=NOW, leeway=0, what="t")  # left to the token


def test_a_token_issued_in_the_future_names_how_far_ahead_the_idp_is() -> None:
    with pytest.raises(ClockSkewed) as caught:
        check_times({"iat": NOW + 600, "exp": NOW + 900}, now=NOW, leeway=60, what="id_token")
    error = caught.value
    assert isinstance(error, InvalidResponse)
    assert (error.offset, error.allowed) == (600, 60)
    assert "600 seconds ahead of" in error.message
    assert "the 60 seconds this store allows" in error.message
    assert error.detail is not None
    assert "600 s ahead" in error.detail


def test_a_token_not_valid_yet_is_the_idp_ahead() -> None:
    with pytest.raises(ClockSkewed) as caught:
        check_times({"iat": NOW, "nbf": NOW + 400}, now=NOW, leeway=30, what="t")
    assert caught.value.offset == 400


def test_an_expired_token_is_the_idp_behind_by_its_age() -> None:
    # Minted at the code exchange, a moment ago by the IdP's clock: 900 s ago by ours.
    with pytest.raises(ClockSkewed) as caught:
        check_times({"iat": NOW - 900, "exp": NOW - 600}, now=NOW, leeway=60, what="t")
    assert caught.value.offset == -900
    assert "900 seconds behind" in caught.value.message
    with pytest.raises(ClockSkewed) as without_iat:
        check_times({"exp": NOW - 120}, now=NOW, leeway=60, what="t")
    assert without_iat.value.offset == -120
