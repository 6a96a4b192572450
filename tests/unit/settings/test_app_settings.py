"""``[app]``: the broker as a BigCommerce app. A file with it may hold no store; every problem
of the table is told at once, naming its key, and a bad encryption key is never accepted."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from broker.config import parse_settings
from broker.errors import ConfigError

BROKER = {"base_url": "https://sso.example.com", "secret_key": "s" * 40}


def _app(**over: object) -> dict[str, object]:
    table: dict[str, object] = {
        "client_id": "app",
        "client_secret": "secret",
        "encryption_key": [Fernet.generate_key().decode()],
    }
    table.update(over)
    return {key: value for key, value in table.items() if value is not None}


def test_an_app_file_needs_no_store_and_takes_keys_from_the_environment() -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = parse_settings(
        {"broker": BROKER, "app": _app(encryption_key="env:KEYS")},
        env={"KEYS": f"{first}, {second}"},
    )
    assert settings.stores == {}
    assert settings.app is not None
    assert settings.app.encryption_key == (first, second)
    assert settings.app.frame_ancestors == (
        "https://*.bigcommerce.com",
        "https://*.mybigcommerce.com",
    )
    assert first not in repr(settings.app)


def test_without_app_a_file_still_needs_a_store() -> None:
    with pytest.raises(ConfigError, match=r"at least one store is required"):
        parse_settings({"broker": BROKER}, env={})


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"encryption_key": ["not-a-key"]}, "app.encryption_key: key 1 is not a Fernet key"),
        ({"encryption_key": []}, "app.encryption_key: needs at least one key"),
        ({"client_id": None}, "app.client_id"),
        ({"login_url": "http://login.example.com"}, "app.login_url: must use https"),
        ({"admin_session_minutes": 1}, "app.admin_session_minutes"),
        ({"client_secrt": "x"}, "app.client_secrt: unknown key"),
    ],
)
def test_each_problem_names_its_key(over: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"broker": BROKER, "app": _app(**over)}, env={})
    assert any(line.startswith(expected) for line in error.value.problems), error.value.problems
