"""``[stores.X.staff]``: control-panel users from IdP groups; every rule an operator can get
wrong is a problem naming its key, and the token never shows in a repr."""

from __future__ import annotations

from typing import Any

import pytest

from broker.config import parse_settings
from broker.errors import ConfigError
from broker.settings import StaffSettings
from tests.unit.settings.test_scim_settings import BROKER, store

UUID = "5a1e0c6e-2f4b-4c1d-9e8a-0b7c6d5e4f3a"


def with_staff(**staff: Any) -> dict[str, Any]:
    document = store()
    document["staff"] = {
        "account_uuid": UUID,
        "account_token": "secret-token",
        "groups": ["BC Admins"],
        "connections": ["corp"],
        **staff,
    }
    return document


def staff_of(document: dict[str, Any]) -> StaffSettings | None:
    return (
        parse_settings({"broker": BROKER, "stores": {"acme": document}}, env={})
        .stores["acme"]
        .staff
    )


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"broker": BROKER, "stores": {"acme": document}}, env={})
    return [str(line) for line in caught.value.problems]


def test_a_table_with_its_defaults_and_no_token_in_its_repr() -> None:
    staff = staff_of(with_staff(keep=["Owner@Acme.com"]))
    assert staff == StaffSettings(
        account_uuid=UUID,
        account_token="secret-token",
        groups=("BC Admins",),
        connections=("corp",),
        keep=("owner@acme.com",),
    )
    assert (staff.requests_per_hour, staff.sign_in_days, staff.remove_unmanaged) == (70, 30, False)
    assert "secret-token" not in repr(staff)
    assert staff_of(store()) is None
    assert staff_of(with_staff(enabled=False, groups=[])) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"groups": []}, "stores.acme.staff.groups: name at least one IdP group"),
        ({"connections": []}, "stores.acme.staff.connections: name the connections"),
        ({"connections": ["partner"]}, "stores.acme.staff.connections: 'partner' is not a"),
        ({"remove_unmanaged": True}, "stores.acme.staff.keep: with remove_unmanaged = true"),
        ({"requests_per_hour": 1}, "stores.acme.staff.requests_per_hour"),
        ({"account_uuid": "not a uuid"}, "stores.acme.staff.account_uuid"),
        ({"account_token": None}, "stores.acme.staff.account_token"),
    ],
)
def test_each_mistake_is_a_problem_naming_its_key(change: dict[str, Any], expected: str) -> None:
    document = with_staff(**change)
    document["staff"] = {k: v for k, v in document["staff"].items() if v is not None}
    found = problems(document)
    assert any(line.startswith(expected) for line in found), found
