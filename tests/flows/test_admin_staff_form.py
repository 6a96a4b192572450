"""The admin's staff form (``/{store}/admin/staff``) over real HTTP: ``[stores.X.staff]``
edited without a file, through the admin API's own PATCH (its rules, the token sealed, the
document edited as read); a mistake is named next to its field and changes nothing; a forged
or foreign POST and a store of the broker's file change nothing."""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.admin.sessions import AdminSessions, csrf_for
from broker.settings.secrets import open_document, seal_document
from tests.conftest import BrokerServer, DevIdP, Sandbox
from tests.flows.test_admin_api import STORE, AppWorld, build_app_world

UUID = "5a1e0c6e-2f4b-4c1d-9e8a-0b7c6d5e4f3a"
Form = Mapping[str, str | list[str]]


@pytest.fixture
def world(sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer]) -> AppWorld:
    """test_admin_api's app world: the installed store STORE, and the file's store "filed"."""
    return build_app_world(sandbox, dev_idp, make_broker)


def _ctx(world: AppWorld, store: str = STORE) -> str:
    sessions = AdminSessions(world.runtime.broker_settings.secret_key, minutes=60)
    return sessions.open(store, 1).token


def _page(world: AppWorld, store: str = STORE) -> httpx.Response:
    return httpx.get(f"{world.broker.url}/{store}/admin/staff", params={"ctx": _ctx(world, store)})


def _post(
    world: AppWorld,
    form: Form,
    *,
    store: str = STORE,
    csrf: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    ctx = _ctx(world, store)
    data = {"ctx": ctx, "csrf": csrf_for(ctx) if csrf is None else csrf, **form}
    return httpx.post(f"{world.broker.url}/{store}/admin/staff", data=data, headers=headers)


def _form(token: str, **overrides: str | list[str]) -> dict[str, str | list[str]]:
    form: dict[str, str | list[str]] = {
        "enabled": "on",
        "account_uuid": UUID,
        "account_token": token,
        "groups": "BC Admins\r\nCN=Sales, OU=EMEA",
        "connections": ["corp"],
        "api_url": "",
        "requests_per_hour": "50",
        "sign_in_days": "7",
        "remove_unmanaged": "on",
        "keep": "Owner@App123.example\r\n",
    }
    form.update(overrides)
    return form


def _document(world: AppWorld, store: str = STORE) -> dict[str, Any]:
    """The store's document as stored (secrets sealed)."""
    row = world.runtime.storage.tenant_document(store)
    assert row is not None
    return dict(row.document)


def _help(page: str, field: str) -> str:
    """The text next to a field: its help, and its problem when there is one."""
    found = re.search(rf'<p class="help" id="h-{field}">(.*?)</p>', page, re.DOTALL)
    assert found is not None, f"no help for {field}"
    return html.unescape(found.group(1))


def _with_a_connection(world: AppWorld) -> None:
    assert world.api("PUT", "/connections/corp", json=world.oidc_body()).status_code == 201
    saml = {"type": "saml", "idp_metadata_url": "https://idp.partner.example/metadata"}
    assert world.api("PUT", "/connections/partner", json=saml).status_code == 201


def test_the_staff_form_saves_the_settings_with_the_token_sealed(world: AppWorld) -> None:
    _with_a_connection(world)
    empty = _page(world)
    assert empty.status_code == 200
    assert 'id="staff-form"' in empty.text
    assert 'name="connections" value="corp"' in empty.text
    assert 'name="connections" value="partner"' in empty.text
    assert "No token is saved yet." in _help(empty.text, "account_token")

    token = "acct-" + secrets.token_urlsafe(24)
    saved = _post(world, _form(token))
    assert saved.status_code == 200, saved.text
    assert '<p class="notice" role="status">Saved.</p>' in saved.text
    assert 'id="form-errors"' not in saved.text
    assert token not in saved.text
    assert "A token is saved." in _help(saved.text, "account_token")

    status = world.api("GET", "/staff").json()
    assert status["enabled"] is True
    assert status["groups"] == ["BC Admins", "CN=Sales, OU=EMEA"]
    assert status["connections"] == ["corp"]
    assert status["remove_unmanaged"] is True
    assert status["budget"]["requests_per_hour"] == 50
    settings = world.api("GET", "/settings")
    staff = settings.json()["staff"]
    assert (staff["sign_in_days"], staff["keep"]) == (7, ["owner@app123.example"])
    assert staff["api_url"] == "https://api.bigcommerce.com"
    assert staff["account_token_set"] is True
    assert token not in settings.text

    stored = _document(world)["staff"]
    assert set(stored["account_token"]) == {"$sealed"}
    assert token not in json.dumps(stored)
    path = Path(world.runtime.broker_settings.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert token.encode() not in raw

    again = _page(world)
    assert token not in again.text
    assert stored["account_token"]["$sealed"] not in again.text
    assert 'id="f-account_token" name="account_token" value=""' in again.text
    assert "CN=Sales, OU=EMEA</textarea>" in again.text
    assert re.search(r'value="corp" checked', again.text)
    assert not re.search(r'value="partner" checked', again.text)
    assert "Members of <strong>BC Admins, CN=Sales, OU=EMEA</strong> through" in again.text


def test_an_empty_token_field_keeps_the_saved_token(world: AppWorld) -> None:
    _with_a_connection(world)
    token = "acct-" + secrets.token_urlsafe(24)
    assert "Saved." in _post(world, _form(token)).text

    kept = _post(world, _form("", groups="Store Admins", connections=["corp", "partner"]))
    assert kept.status_code == 200
    assert '<p class="notice" role="status">Saved.</p>' in kept.text, kept.text
    opened = open_document(_document(world), world.runtime.secrets)
    assert opened["staff"]["account_token"] == token
    assert opened["staff"]["groups"] == ["Store Admins"]
    staff = world.runtime.store(STORE).staff
    assert staff is not None
    assert (staff.account_token, staff.connections) == (token, ("corp", "partner"))


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    [
        ("connections", {"connections": []}, "name the connections whose groups count"),
        (
            "connections",
            {"connections": ["corp", "elsewhere"]},
            "'elsewhere' is not a connection of the store",
        ),
        ("keep", {"keep": ""}, "name the store owner's e-mail"),
        ("requests_per_hour", {"requests_per_hour": "lots"}, "must be an integer"),
        ("requests_per_hour", {"requests_per_hour": "1"}, "must be between 2 and 10000"),
        ("sign_in_days", {"sign_in_days": "a week"}, "must be an integer"),
        ("account_uuid", {"account_uuid": "not a uuid"}, "does not look right"),
        ("groups", {"groups": " \r\n "}, "name at least one IdP group"),
        ("api_url", {"api_url": "http://accounts.example"}, "must use https"),
    ],
)
def test_a_mistake_is_named_next_to_its_field_and_changes_nothing(
    world: AppWorld, field: str, overrides: dict[str, str | list[str]], message: str
) -> None:
    _with_a_connection(world)
    token = "acct-" + secrets.token_urlsafe(24)
    assert "Saved." in _post(world, _form(token)).text
    before = world.runtime.storage.tenant_document(STORE)
    status_before = world.api("GET", "/staff").json()

    typed = {"groups": "Typed Group", **overrides}
    refused = _post(world, _form("new-" + token, **typed))
    assert refused.status_code == 200
    assert 'id="form-errors"' in refused.text
    assert "Saved." not in refused.text
    assert message in _help(refused.text, field), refused.text
    described = 'aria-describedby="h-connections"'
    if field != "connections":
        described = f'id="f-{field}" name="{field}"'
        tag = re.search(rf"<(?:input|textarea) [^>]*{described}[^>]*>", refused.text)
        assert tag is not None
        assert f'aria-describedby="h-{field}"' in tag.group(0)
        assert 'aria-invalid="true"' in tag.group(0)
    else:
        assert described in refused.text
    assert "new-" + token not in refused.text  # a token typed is not sent back either
    if field != "groups":
        assert "Typed Group</textarea>" in refused.text  # what was typed stays

    after = world.runtime.storage.tenant_document(STORE)
    assert after is not None
    assert before is not None
    assert (after.version, after.document) == (before.version, before.document)
    assert world.api("GET", "/staff").json() == status_before


def test_the_number_fields_tell_the_browser_the_range_the_server_checks(
    world: AppWorld,
) -> None:
    _with_a_connection(world)
    page = _page(world).text
    for field, bounds in (("requests_per_hour", ("2", "10000")), ("sign_in_days", ("1", None))):
        tag = re.search(rf'<input type="number" id="f-{field}" [^>]*>', page)
        assert tag is not None, field
        low = re.search(r' min="([^"]*)"', tag.group(0))
        high = re.search(r' max="([^"]*)"', tag.group(0))
        assert (low and low.group(1), high and high.group(1)) == bounds, tag.group(0)


def test_a_first_save_needs_the_token(world: AppWorld) -> None:
    _with_a_connection(world)
    refused = _post(world, _form(""))
    assert 'id="form-errors"' in refused.text
    assert "is required" in _help(refused.text, "account_token")
    assert "staff" not in _document(world)
    assert world.api("GET", "/staff").json() == {"enabled": False}


def test_the_staff_form_refuses_a_wrong_csrf_value_or_another_origin(
    world: AppWorld,
) -> None:
    _with_a_connection(world)
    form = _form("acct-" + secrets.token_urlsafe(24))
    assert _post(world, form, csrf="").status_code == 403
    assert _post(world, form, csrf="0" * 32).status_code == 403
    other = _ctx(world)  # another session's value
    assert _post(world, form, csrf=csrf_for(other)).status_code == 403
    foreign = _post(world, form, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert "staff" not in _document(world)
    assert world.runtime.store(STORE).staff is None
    # The same form, sent rightly, is saved: the refusals were the checks'.
    assert "Saved." in _post(world, form, headers={"Origin": world.broker.url}).text
    assert world.runtime.store(STORE).staff is not None


FILE_TOKEN = "file-acct-" + secrets.token_hex(12)


@pytest.fixture
def filed_world(
    sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer]
) -> AppWorld:
    """The app world, its file store with a staff table and installed (so it has an admin)."""
    staff = {
        "account_uuid": UUID,
        "account_token": FILE_TOKEN,
        "groups": ["File Admins"],
        "connections": ["corp"],
    }
    world = build_app_world(sandbox, dev_idp, make_broker, file_store={"staff": staff})
    runtime = world.runtime
    runtime.storage.install_store(
        "filed",
        seal_document({"store_hash": "filed", "connections": {}}, runtime.secrets),
        scope="store_v2_customers",
        owner_id=1,
        user_id=1,
        name="Filed Store",
        now=1000,
    )
    runtime.refresh()
    return world


def test_a_store_of_the_file_shows_its_staff_settings_without_a_form(
    filed_world: AppWorld,
) -> None:
    page = _page(filed_world, "filed")
    assert page.status_code == 200, page.text
    assert 'id="read-only"' in page.text
    assert "configured in the broker's file" in page.text
    assert 'id="staff-form"' not in page.text
    assert "<input" not in page.text
    assert "<textarea" not in page.text
    assert "<td>File Admins</td>" in page.text
    assert "<td>Set</td>" in page.text
    assert FILE_TOKEN not in page.text

    before = filed_world.runtime.storage.tenant_document("filed")
    refused = _post(filed_world, _form("acct-x", groups="Other Admins"), store="filed")
    assert refused.status_code == 409
    staff = filed_world.runtime.store("filed").staff
    assert staff is not None
    assert (staff.groups, staff.account_token) == (("File Admins",), FILE_TOKEN)
    after = filed_world.runtime.storage.tenant_document("filed")
    assert after is not None
    assert before is not None
    assert (after.version, after.document) == (before.version, before.document)
