"""The SCIM protocol layer (RFC 7643/7644): bodies, filters, PATCH and the served documents,
with the request shapes Okta and Entra ID send (written after their public docs' examples)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from broker.provisioning.scim.errors import ScimError
from broker.provisioning.scim.filters import NO_MATCH, matches_nothing, parse_filter
from broker.provisioning.scim.patch import apply_group_patch, apply_user_patch
from broker.provisioning.scim.resources import (
    ENTERPRISE_USER_SCHEMA,
    ERROR_SCHEMA,
    GROUP_SCHEMA,
    LIST_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    Email,
    GroupInput,
    UserInput,
    group_document,
    group_resource,
    list_response,
    paging,
    parse_group,
    parse_user,
    primary_email,
    resource_types,
    schemas,
    service_provider_config,
    user_document,
    user_resource,
)


@contextmanager
def _raises(scim_type: str | None, status: int = 400) -> Iterator[None]:
    """Assert a ScimError with this status and scimType."""
    with pytest.raises(ScimError) as caught:
        yield
    assert (caught.value.status, caught.value.scim_type) == (status, scim_type), caught.value


def _user(**extra: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": "pat@example.com", **extra}


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


#: What Okta POSTs to /Users (its SCIM 2.0 guide's "Create the user" body).
OKTA_USER = {
    "schemas": [USER_SCHEMA],
    "userName": "pat.doe@example.com",
    "name": {"givenName": "Pat", "familyName": "Doe"},
    "emails": [{"primary": True, "value": "pat.doe@example.com", "type": "work"}],
    "displayName": "Pat Doe",
    "locale": "en-US",
    "externalId": "00u1abcd",
    "groups": [],
    "password": "1mP@ssw0rd",
    "active": True,
}

#: What Entra ID POSTs to /Users (its provisioning reference's "Create User" body).
ENTRA_USER = {
    "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
    "active": "True",
    "emails": [{"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "G"},
    "roles": [],
    ENTERPRISE_USER_SCHEMA: {"department": "Sales", "manager": {"value": "x"}},
    "title": "Buyer",
}


def _stored(body: dict[str, Any] = OKTA_USER) -> dict[str, Any]:
    return user_document(parse_user(body))


# -- errors --------------------------------------------------------------------------------


def test_error_body_has_status_as_a_string_and_scim_type() -> None:
    error = ScimError(409, "userName taken", "uniqueness")
    assert error.body() == {
        "schemas": [ERROR_SCHEMA],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "userName taken",
    }
    assert (error.status, error.detail, error.scim_type) == (409, "userName taken", "uniqueness")


def test_error_body_leaves_out_a_missing_scim_type() -> None:
    assert ScimError(404, "no such user").body() == {
        "schemas": [ERROR_SCHEMA],
        "status": "404",
        "detail": "no such user",
    }


# -- users ---------------------------------------------------------------------------------


def test_okta_user_body() -> None:
    user = parse_user(OKTA_USER)
    assert user == UserInput(
        user_name="pat.doe@example.com",
        external_id="00u1abcd",
        given_name="Pat",
        family_name="Doe",
        display_name="Pat Doe",
        emails=(Email("pat.doe@example.com", "work", True),),
        active=True,
    )


def test_entra_user_body_with_string_active_and_the_enterprise_extension() -> None:
    user = parse_user(ENTRA_USER)
    assert user.active is True
    assert user.user_name == "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"
    assert user.external_id == "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
    assert (user.given_name, user.family_name) == ("G", "familyName")
    assert primary_email(user) == "Test_User_fd0ea19b@testuser.com"


@pytest.mark.parametrize(
    ("sent", "active"),
    [("true", True), ("True", True), ("false", False), ("False", False), (False, False)],
)
def test_active_accepts_booleans_and_their_strings(sent: Any, active: bool) -> None:
    assert parse_user(_user(active=sent)).active is active


def test_active_defaults_to_true() -> None:
    assert parse_user(_user()).active is True


def test_attribute_names_are_case_insensitive() -> None:
    user = parse_user({"SCHEMAS": [USER_SCHEMA], "USERNAME": "pat", "Name": {"GIVENNAME": "P"}})
    assert (user.user_name, user.given_name) == ("pat", "P")


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ([], "invalidSyntax"),
        ("pat", "invalidSyntax"),
        ({"userName": "pat"}, "invalidSyntax"),
        ({"schemas": [GROUP_SCHEMA], "userName": "pat"}, "invalidSyntax"),
        ({"schemas": USER_SCHEMA, "userName": "pat"}, "invalidSyntax"),
        (_user(userName=None), "invalidValue"),
        ({"schemas": [USER_SCHEMA]}, "invalidValue"),
        (_user(userName=""), "invalidValue"),
        (_user(userName="   "), "invalidValue"),
        (_user(userName=42), "invalidValue"),
        (_user(userName="x" * 256), "invalidValue"),
        (_user(userName="a\x00b"), "invalidValue"),
        (_user(active="yes"), "invalidValue"),
        (_user(active=1), "invalidValue"),
        (_user(emails="pat@example.com"), "invalidValue"),
        (_user(emails=["pat@example.com"]), "invalidValue"),
        (_user(emails=[{"type": "work"}]), "invalidValue"),
        (_user(emails=[{"value": "a@x", "primary": "maybe"}]), "invalidValue"),
        (_user(name="Pat Doe"), "invalidValue"),
        (_user(name={"givenName": 3}), "invalidValue"),
        (_user(externalId=7), "invalidValue"),
        (_user(displayName=["x"]), "invalidValue"),
    ],
)
def test_bad_user_bodies(body: Any, scim_type: str) -> None:
    with _raises(scim_type):
        parse_user(body)


def test_user_name_of_255_characters_is_kept() -> None:
    assert parse_user(_user(userName="x" * 255)).user_name == "x" * 255


def test_unknown_attributes_are_ignored() -> None:
    user = parse_user(_user(nickName="P", phoneNumbers=[{"value": "1"}], id="abc", meta={}))
    assert user == UserInput(
        user_name="pat@example.com",
        external_id=None,
        given_name=None,
        family_name=None,
        display_name=None,
        emails=(),
        active_given=False,
    )


def test_emails_keep_one_primary_and_one_of_each_address() -> None:
    user = parse_user(
        _user(
            emails=[
                {"value": "a@x.com", "type": "Home", "primary": "True"},
                {"value": "b@x.com", "type": "work", "primary": True},
                {"value": "A@X.com", "type": "other"},
            ]
        )
    )
    assert user.emails == (Email("a@x.com", "home", True), Email("b@x.com", "work", False))


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        ([], None),
        ([{"value": "a@x"}, {"value": "b@x", "type": "work"}], "b@x"),
        ([{"value": "a@x", "type": "home"}, {"value": "b@x", "primary": True}], "b@x"),
        ([{"value": "a@x", "type": "home"}, {"value": "c@x"}], "a@x"),
    ],
)
def test_primary_email(emails: list[dict[str, Any]], expected: str | None) -> None:
    assert primary_email(parse_user(_user(emails=emails))) == expected


def test_user_document_is_canonical_and_round_trips() -> None:
    document = _stored(OKTA_USER)
    assert document == {
        "schemas": [USER_SCHEMA],
        "userName": "pat.doe@example.com",
        "externalId": "00u1abcd",
        "name": {"givenName": "Pat", "familyName": "Doe"},
        "displayName": "Pat Doe",
        "emails": [{"value": "pat.doe@example.com", "type": "work", "primary": True}],
        "active": True,
    }
    assert user_document(parse_user(document)) == document
    # Unassigned, ``active`` is not served back (the user counts as active).
    assert _stored(_user()) == {"schemas": [USER_SCHEMA], "userName": "pat@example.com"}
    assert parse_user(_user()).active is True


def test_user_resource_adds_id_and_meta() -> None:
    resource = user_resource(
        _stored(),
        id="u1",
        created=0,
        updated=1_700_000_000,
        version=3,
        location="https://b.example/acme/scim/corp/v2/Users/u1",
    )
    assert resource["id"] == "u1"
    assert list(resource)[:2] == ["schemas", "id"]
    assert resource["meta"] == {
        "resourceType": "User",
        "created": "1970-01-01T00:00:00Z",
        "lastModified": "2023-11-14T22:13:20Z",
        "location": "https://b.example/acme/scim/corp/v2/Users/u1",
        "version": 'W/"3"',
    }
    assert resource["userName"] == "pat.doe@example.com"


# -- groups --------------------------------------------------------------------------------


def test_group_body_and_document() -> None:
    group = parse_group(
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Buyers",
            "externalId": "g-1",
            "members": [
                {"value": "u1", "display": "Pat"},
                {"value": "u2", "$ref": "https://x/Users/u2"},
                {"value": "u1"},
            ],
        }
    )
    assert group == GroupInput(display_name="Buyers", external_id="g-1", member_ids=("u1", "u2"))
    assert group_document(group) == {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Buyers",
        "externalId": "g-1",
    }


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"displayName": "x"}, "invalidSyntax"),
        ({"schemas": [USER_SCHEMA], "displayName": "x"}, "invalidSyntax"),
        ({"schemas": [GROUP_SCHEMA]}, "invalidValue"),
        ({"schemas": [GROUP_SCHEMA], "displayName": ""}, "invalidValue"),
        ({"schemas": [GROUP_SCHEMA], "displayName": "x", "members": "u1"}, "invalidValue"),
        ({"schemas": [GROUP_SCHEMA], "displayName": "x", "members": ["u1"]}, "invalidValue"),
        ({"schemas": [GROUP_SCHEMA], "displayName": "x", "members": [{"v": 1}]}, "invalidValue"),
    ],
)
def test_bad_group_bodies(body: Any, scim_type: str) -> None:
    with _raises(scim_type):
        parse_group(body)


def test_group_resource_with_members() -> None:
    members = [{"value": "u1", "display": "Pat", "$ref": "https://x/Users/u1"}]
    resource = group_resource(
        {"schemas": [GROUP_SCHEMA], "displayName": "Buyers"},
        id="g1",
        created=1,
        updated=2,
        version=1,
        location="https://x/Groups/g1",
        members=members,
    )
    assert resource["members"] == members
    assert resource["meta"]["resourceType"] == "Group"
    assert resource["meta"]["version"] == 'W/"1"'
    assert (resource["id"], resource["displayName"]) == ("g1", "Buyers")
    empty = group_resource(
        {"schemas": [GROUP_SCHEMA], "displayName": "B"},
        id="g2",
        created=1,
        updated=2,
        version=1,
        location="l",
        members=[],
    )
    assert "members" not in empty


# -- lists, paging, discovery --------------------------------------------------------------


def test_list_response() -> None:
    assert list_response([{"id": "a"}], total=7, start_index=3) == {
        "schemas": [LIST_SCHEMA],
        "totalResults": 7,
        "itemsPerPage": 1,
        "startIndex": 3,
        "Resources": [{"id": "a"}],
    }
    assert list_response([], total=0, start_index=1)["Resources"] == []


@pytest.mark.parametrize(
    ("start_index", "count", "expected"),
    [
        (None, None, (1, 200)),
        ("", "", (1, 200)),
        ("1", "100", (1, 100)),  # Okta
        ("101", "100", (101, 100)),
        ("0", "10", (1, 10)),
        ("-5", "10", (1, 10)),
        ("1", "0", (1, 0)),
        ("1", "-1", (1, 0)),
        ("1", "1000", (1, 200)),
        (" 2 ", " 3 ", (2, 3)),
    ],
)
def test_paging(start_index: str | None, count: str | None, expected: tuple[int, int]) -> None:
    assert paging(start_index, count) == expected


def test_paging_max_count() -> None:
    assert paging(None, None, max_count=50) == (1, 50)
    assert paging("1", "60", max_count=50) == (1, 50)


@pytest.mark.parametrize(("start_index", "count"), [("a", None), (None, "1.5"), ("1e3", "1")])
def test_paging_refuses_non_integers(start_index: str | None, count: str | None) -> None:
    with _raises("invalidValue"):
        paging(start_index, count)


def test_service_provider_config() -> None:
    config = service_provider_config("https://b.example/acme/scim/corp/v2/")
    assert config["patch"] == {"supported": True}
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["bulk"]["supported"] is False
    assert config["changePassword"] == {"supported": False}
    assert config["sort"] == {"supported": False}
    assert config["etag"] == {"supported": True}
    assert [s["type"] for s in config["authenticationSchemes"]] == ["oauthbearertoken"]
    assert config["meta"]["location"] == "https://b.example/acme/scim/corp/v2/ServiceProviderConfig"


def test_resource_types() -> None:
    listed = resource_types("https://x/v2")
    assert listed["schemas"] == [LIST_SCHEMA]
    assert listed["totalResults"] == 2
    by_id = {r["id"]: r for r in listed["Resources"]}
    assert by_id["User"]["endpoint"] == "/Users"
    assert by_id["User"]["schema"] == USER_SCHEMA
    assert by_id["Group"]["schema"] == GROUP_SCHEMA
    assert by_id["Group"]["meta"]["location"] == "https://x/v2/ResourceTypes/Group"


def test_schemas_advertise_what_is_kept() -> None:
    listed = schemas("https://x/v2")
    assert listed["totalResults"] == 2
    by_id = {s["id"]: s for s in listed["Resources"]}
    user = {a["name"]: a for a in by_id[USER_SCHEMA]["attributes"]}
    assert set(user) == {"userName", "name", "displayName", "emails", "active", "externalId"}
    assert user["userName"]["required"] is True
    assert user["userName"]["uniqueness"] == "server"
    assert {s["name"] for s in user["emails"]["subAttributes"]} == {"value", "type", "primary"}
    assert {s["name"] for s in user["name"]["subAttributes"]} == {"givenName", "familyName"}
    members = {a["name"]: a for a in by_id[GROUP_SCHEMA]["attributes"]}["members"]
    assert {s["name"] for s in members["subAttributes"]} == {"value", "$ref"}
    group = {a["name"]: a for a in by_id[GROUP_SCHEMA]["attributes"]}
    assert set(group) == {"displayName", "members", "externalId"}
    assert by_id[USER_SCHEMA]["meta"]["location"] == f"https://x/v2/Schemas/{USER_SCHEMA}"
    assert "meta" not in schemas()["Resources"][0]


# -- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {}),
        ("", {}),
        ("  ", {}),
        ('userName eq "pat@example.com"', {"user_name": "pat@example.com"}),  # Okta
        ('externalId eq "0a21f0f2"', {"external_id": "0a21f0f2"}),  # Entra
        ('id eq "u1"', {"id": "u1"}),
        ('emails.value eq "a@x.com"', {"email": "a@x.com"}),
        ('emails[type eq "work"].value eq "a@x.com"', {"email": "a@x.com"}),
        ('emails[value eq "a@x.com"]', {"email": "a@x.com"}),
        ('displayName eq "Pat"', {"display_name": "Pat"}),
        ('USERNAME EQ "pat"', {"user_name": "pat"}),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "pat"', {"user_name": "pat"}),
        (
            'userName eq "pat" AND externalId eq "e1"',
            {"user_name": "pat", "external_id": "e1"},
        ),
        (
            'userName eq "a b" and emails[Type EQ "Work"].Value eq "p@x"',
            {"user_name": "a b", "email": "p@x"},
        ),
        (r'userName eq "quote\" and \\ slash \u00e9"', {"user_name": 'quote" and \\ slash é'}),
        ('userName eq "Pat" and userName eq "pat"', {"user_name": "Pat"}),
    ],
)
def test_user_filters(text: str | None, expected: dict[str, str]) -> None:
    assert parse_filter(text, resource="User") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('displayName eq "Buyers"', {"display_name": "Buyers"}),  # Okta, Entra
        ('externalId eq "g1"', {"external_id": "g1"}),
        ('id eq "g1"', {"id": "g1"}),
        ('members.value eq "u1"', {"member": "u1"}),
        ('members[value eq "u1"]', {"member": "u1"}),
        ('id eq "g1" and members[value eq "u1"]', {"id": "g1", "member": "u1"}),  # Entra
    ],
)
def test_group_filters(text: str, expected: dict[str, str]) -> None:
    assert parse_filter(text, resource="Group") == expected


def test_contradictory_and_matches_nothing() -> None:
    found = parse_filter('userName eq "a" and userName eq "b"', resource="User")
    assert found == {"user_name": NO_MATCH}
    assert matches_nothing(found)
    assert not matches_nothing(parse_filter('userName eq "a"', resource="User"))
    # externalId is case-exact: a and A contradict
    found = parse_filter('externalId eq "a" and externalId eq "A"', resource="User")
    assert found == {"external_id": NO_MATCH}


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "a" or userName eq "b"',
        'not (userName eq "a")',
        '(userName eq "a")',
        'userName ne "a"',
        'userName co "a"',
        'userName sw "a"',
        "userName pr",
        'meta.lastModified gt "2024-01-01T00:00:00Z"',
        'title eq "x"',
        'emails[type eq "home"].value eq "a@x"',
        'emails.value eq "a@x" and emails.value eq "b@x"',
        "userName eq pat",
        "userName eq 42",
        "userName eq true",
        'userName eq "unterminated',
        'userName eq "a" and',
        'userName eq "a" userName eq "b"',
        "userName eq",
        "userName",
        'members[value eq "u1"]',  # a Group filter on Users
        'userName eq "bad \\x escape"',
    ],
)
def test_unsupported_user_filters(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text, resource="User")
    assert (caught.value.status, caught.value.scim_type) == (400, "invalidFilter")
    assert "userName eq" in caught.value.detail  # says what is supported


@pytest.mark.parametrize(
    "text",
    ['userName eq "a"', 'members[display eq "x"]', 'displayName sw "B"', 'members eq "u1"'],
)
def test_unsupported_group_filters(text: str) -> None:
    with _raises("invalidFilter"):
        parse_filter(text, resource="Group")


# -- PATCH users -----------------------------------------------------------------------------


def test_okta_deactivates_with_a_pathless_value() -> None:
    document = _stored()
    patched = apply_user_patch(document, _patch({"op": "replace", "value": {"active": False}}))
    assert patched == {**document, "active": False}
    assert document["active"] is True  # the input is not changed


def test_okta_replaces_name_parts() -> None:
    patched = apply_user_patch(
        _stored(),
        _patch(
            {"op": "replace", "path": "name.givenName", "value": "Robin"},
            {"op": "replace", "path": "name.familyName", "value": "Roe"},
        ),
    )
    assert patched["name"] == {"givenName": "Robin", "familyName": "Roe"}


def test_entra_capitalised_ops_string_booleans_and_dotted_keys() -> None:
    patched = apply_user_patch(
        _stored(ENTRA_USER),
        _patch(
            {"op": "Replace", "path": "active", "value": "False"},
            {
                "op": "Add",
                "value": {
                    "name.givenName": "Pat",
                    'emails[type eq "work"].value': "pat@x.com",
                    "displayName": "Pat X",
                    f"{ENTERPRISE_USER_SCHEMA}:department": "Sales",
                },
            },
        ),
    )
    assert patched["active"] is False
    assert patched["name"]["givenName"] == "Pat"
    assert patched["displayName"] == "Pat X"
    assert patched["emails"] == [{"value": "pat@x.com", "type": "work", "primary": True}]


def test_entra_reactivates_with_true_string() -> None:
    document = {**_stored(), "active": False}
    patched = apply_user_patch(
        document, _patch({"op": "Replace", "path": "active", "value": "True"})
    )
    assert patched["active"] is True


@pytest.mark.parametrize(
    ("path", "value", "key", "expected"),
    [
        ("userName", "new@example.com", "userName", "new@example.com"),
        ("externalId", "e-2", "externalId", "e-2"),
        ("displayName", "P D", "displayName", "P D"),
        (f"{USER_SCHEMA}:userName", "urn@example.com", "userName", "urn@example.com"),
        ("USERNAME", "caps@example.com", "userName", "caps@example.com"),
    ],
)
def test_entra_replaces_simple_paths(path: str, value: str, key: str, expected: str) -> None:
    patched = apply_user_patch(_stored(), _patch({"op": "Replace", "path": path, "value": value}))
    assert patched[key] == expected


def test_entra_ignores_attributes_not_kept() -> None:
    document = _stored()
    patched = apply_user_patch(
        document,
        _patch(
            {"op": "Add", "path": f"{ENTERPRISE_USER_SCHEMA}:employeeNumber", "value": "7"},
            {"op": "Replace", "path": f"{ENTERPRISE_USER_SCHEMA}:manager", "value": {"value": "m"}},
            {"op": "Remove", "path": f"{ENTERPRISE_USER_SCHEMA}:department"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555"},
            {"op": "Replace", "path": "title", "value": "Buyer"},
            {"op": "Replace", "path": "name.middleName", "value": "Q"},
            {"op": "Add", "value": {ENTERPRISE_USER_SCHEMA: {"department": "x"}, "locale": "en"}},
        ),
    )
    assert patched == document


def test_replace_of_a_missing_email_type_adds_it() -> None:
    patched = apply_user_patch(
        _stored(),
        _patch({"op": "replace", "path": 'emails[type eq "home"].value', "value": "h@x.com"}),
    )
    assert patched["emails"] == [
        {"value": "pat.doe@example.com", "type": "work", "primary": True},
        {"value": "h@x.com", "type": "home", "primary": False},
    ]


def test_replace_of_an_existing_work_email() -> None:
    patched = apply_user_patch(
        _stored(),
        _patch({"op": "Replace", "path": 'emails[type eq "work"].value', "value": "n@x.com"}),
    )
    assert patched["emails"] == [{"value": "n@x.com", "type": "work", "primary": True}]


def test_emails_add_replace_and_remove() -> None:
    document = _stored()
    added = apply_user_patch(
        document,
        _patch({"op": "add", "path": "emails", "value": [{"value": "b@x.com", "primary": True}]}),
    )
    assert added["emails"] == [
        {"value": "pat.doe@example.com", "type": "work", "primary": False},
        {"value": "b@x.com", "primary": True},
    ]
    replaced = apply_user_patch(
        document, _patch({"op": "replace", "path": "emails", "value": [{"value": "c@x.com"}]})
    )
    assert replaced["emails"] == [{"value": "c@x.com", "primary": False}]
    removed = apply_user_patch(added, _patch({"op": "remove", "path": 'emails[type eq "work"]'}))
    assert removed["emails"] == [{"value": "b@x.com", "primary": True}]
    by_value = apply_user_patch(
        added, _patch({"op": "Remove", "path": "emails", "value": [{"value": "B@X.com"}]})
    )
    assert [e["value"] for e in by_value["emails"]] == ["pat.doe@example.com"]
    assert "emails" not in apply_user_patch(added, _patch({"op": "remove", "path": "emails"}))
    nothing = apply_user_patch(document, _patch({"op": "remove", "path": 'emails[type eq "x"]'}))
    assert nothing == document


def test_active_may_be_removed_and_then_counts_as_active() -> None:
    patched = apply_user_patch(_stored(), _patch({"op": "remove", "path": "active"}))
    assert "active" not in patched
    assert parse_user(patched).active is True


def test_remove_of_optional_attributes() -> None:
    document = _stored()
    patched = apply_user_patch(
        document,
        _patch(
            {"op": "remove", "path": "displayName"},
            {"op": "remove", "path": "name.givenName"},
            {"op": "Remove", "path": "externalId"},
        ),
    )
    assert "displayName" not in patched
    assert "externalId" not in patched
    assert patched["name"] == {"familyName": "Doe"}
    gone = apply_user_patch(patched, _patch({"op": "remove", "path": "name.familyName"}))
    assert "name" not in gone
    assert "name" not in apply_user_patch(document, _patch({"op": "remove", "path": "name"}))


def test_replace_with_null_unassigns() -> None:
    patched = apply_user_patch(
        _stored(),
        _patch({"op": "replace", "value": {"displayName": None, "name": {"givenName": ""}}}),
    )
    assert "displayName" not in patched
    assert patched["name"] == {"familyName": "Doe"}


def test_replace_of_name_keeps_unnamed_parts() -> None:
    patched = apply_user_patch(
        _stored(), _patch({"op": "replace", "path": "name", "value": {"givenName": "Robin"}})
    )
    assert patched["name"] == {"givenName": "Robin", "familyName": "Doe"}


def test_pathless_replace_of_a_whole_user_okta_style() -> None:
    patched = apply_user_patch(
        _stored(),
        _patch(
            {
                "op": "replace",
                "value": {
                    "id": "u1",
                    "userName": "robin@example.com",
                    "name": {"givenName": "Robin", "familyName": "Roe"},
                    "emails": [{"value": "robin@example.com", "type": "work", "primary": True}],
                    "active": True,
                },
            }
        ),
    )
    assert patched["userName"] == "robin@example.com"
    assert patched["emails"] == [{"value": "robin@example.com", "type": "work", "primary": True}]


def test_patch_result_is_canonical() -> None:
    patched = apply_user_patch(
        _stored(),
        _patch(
            {
                "op": "replace",
                "path": 'emails[value eq "pat.doe@example.com"].type',
                "value": "Home",
            }
        ),
    )
    assert user_document(parse_user(patched)) == patched
    assert patched["emails"][0]["type"] == "home"


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "remove", "path": "userName"}, "mutability"),
        ({"op": "replace", "path": "userName", "value": ""}, "mutability"),
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "move", "path": "userName", "value": "x"}, "invalidSyntax"),
        ({"op": 3, "path": "userName", "value": "x"}, "invalidSyntax"),
        ({"path": "userName", "value": "x"}, "invalidSyntax"),
        ({"op": "replace", "path": "userName"}, "invalidSyntax"),
        ({"op": "replace", "value": "x"}, "invalidValue"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
        ({"op": "replace", "path": "userName", "value": 5}, "invalidValue"),
        ({"op": "replace", "path": "emails", "value": "a@x"}, "invalidValue"),
        ({"op": "replace", "path": "emails[type eq", "value": "a@x"}, "invalidPath"),
        ({"op": "replace", "path": "", "value": "a@x"}, "invalidPath"),
        ({"op": "replace", "path": "userName.x", "value": "a"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type ne "work"].value', "value": "a"}, "invalidFilter"),
    ],
)
def test_bad_user_patches(operation: dict[str, Any], scim_type: str) -> None:
    document = _stored()
    before = copy.deepcopy(document)
    with _raises(scim_type):
        apply_user_patch(document, _patch(operation))
    assert document == before


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"Operations": [{"op": "add", "path": "displayName", "value": "x"}]},
        {"schemas": [PATCH_SCHEMA]},
        {"schemas": [PATCH_SCHEMA], "Operations": []},
        {"schemas": [PATCH_SCHEMA], "Operations": {"op": "add"}},
        {"schemas": [PATCH_SCHEMA], "Operations": ["add"]},
    ],
)
def test_bad_patch_bodies(body: Any) -> None:
    with _raises("invalidSyntax"):
        apply_user_patch(_stored(), body)


# -- PATCH groups ----------------------------------------------------------------------------

GROUP = {"schemas": [GROUP_SCHEMA], "displayName": "Buyers", "externalId": "g-ext"}


def test_add_members_keeps_one_of_each() -> None:
    document, members = apply_group_patch(
        GROUP,
        ["u1"],
        _patch({"op": "add", "path": "members", "value": [{"value": "u2"}, {"value": "u1"}]}),
    )
    assert (document, members) == (GROUP, ["u1", "u2"])


def test_okta_removes_a_member_by_filter() -> None:
    _, members = apply_group_patch(
        GROUP, ["u1", "u2"], _patch({"op": "remove", "path": 'members[value eq "u1"]'})
    )
    assert members == ["u2"]


def test_entra_removes_members_with_a_value_list() -> None:
    _, members = apply_group_patch(
        GROUP,
        ["u1", "u2", "u3"],
        _patch({"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u3"}]}),
    )
    assert members == ["u2"]


def test_entra_adds_members_capitalised() -> None:
    _, members = apply_group_patch(
        GROUP, [], _patch({"op": "Add", "path": "members", "value": [{"value": "u9"}]})
    )
    assert members == ["u9"]


def test_remove_all_members() -> None:
    _, members = apply_group_patch(GROUP, ["u1", "u2"], _patch({"op": "remove", "path": "members"}))
    assert members == []


def test_replace_members() -> None:
    _, members = apply_group_patch(
        GROUP,
        ["u1", "u2"],
        _patch({"op": "replace", "path": "members", "value": [{"value": "u3"}, {"value": "u3"}]}),
    )
    assert members == ["u3"]


def test_okta_renames_with_a_pathless_value_holding_the_id() -> None:
    document, members = apply_group_patch(
        GROUP,
        ["u1"],
        _patch({"op": "replace", "value": {"id": "g1", "displayName": "Wholesale"}}),
    )
    assert document == {**GROUP, "displayName": "Wholesale"}
    assert members == ["u1"]


def test_rename_with_a_path_and_externalid() -> None:
    document, _ = apply_group_patch(
        GROUP,
        [],
        _patch(
            {"op": "Replace", "path": "displayName", "value": "Retail"},
            {"op": "Remove", "path": "externalId"},
        ),
    )
    assert document == {"schemas": [GROUP_SCHEMA], "displayName": "Retail"}


def test_pathless_add_of_members() -> None:
    _, members = apply_group_patch(
        GROUP, ["u1"], _patch({"op": "add", "value": {"members": [{"value": "u2"}]}})
    )
    assert members == ["u1", "u2"]


def test_remove_of_an_absent_member_is_no_change() -> None:
    document, members = apply_group_patch(
        GROUP, ["u1"], _patch({"op": "remove", "path": 'members[value eq "u7"]'})
    )
    assert (document, members) == (GROUP, ["u1"])


def test_group_patch_does_not_change_its_inputs() -> None:
    document, members = copy.deepcopy(GROUP), ["u1"]
    apply_group_patch(
        document,
        members,
        _patch(
            {"op": "replace", "path": "displayName", "value": "X"},
            {"op": "add", "path": "members", "value": [{"value": "u2"}]},
        ),
    )
    assert (document, members) == (GROUP, ["u1"])


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "remove", "path": "displayName"}, "mutability"),
        ({"op": "replace", "path": "id", "value": "g2"}, "mutability"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "delete", "path": "members"}, "invalidSyntax"),
        ({"op": "add", "path": "members", "value": ["u1"]}, "invalidValue"),
        ({"op": "add", "path": "members", "value": [{"value": ""}]}, "invalidValue"),
        ({"op": "replace", "path": "displayName", "value": 3}, "invalidValue"),
        ({"op": "remove", "path": 'members[display eq "Pat"]'}, "invalidFilter"),
        ({"op": "remove", "path": "members[value eq]"}, "invalidPath"),
    ],
)
def test_bad_group_patches(operation: dict[str, Any], scim_type: str) -> None:
    with _raises(scim_type):
        apply_group_patch(GROUP, ["u1"], _patch(operation))
