"""``[stores.X.b2b] company_user_cache_hours``: how long a reconciled company user is trusted
(README, "What it costs in B2B Edition requests"); a bad value is one problem naming the key."""

from __future__ import annotations

import tomllib

import pytest

from broker.config import parse_settings
from broker.errors import ConfigError
from tests.unit.test_config import B2B_TABLE, ENV, GOOD

B2B_ENV = {**ENV, "ACME_B2B_TOKEN": "b2b-token"}


def with_b2b(extra: str = "") -> str:
    return GOOD.replace("[stores.beta]", B2B_TABLE + extra + "\n[stores.beta]")


def b2b_of(text: str) -> object:
    return parse_settings(tomllib.loads(text), B2B_ENV).stores["acme"].b2b


def test_a_day_by_default_and_zero_asks_every_time() -> None:
    assert b2b_of(with_b2b()).company_user_cache_hours == 24  # type: ignore[attr-defined]
    zero = b2b_of(with_b2b("company_user_cache_hours = 0\n"))
    assert zero.company_user_cache_hours == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["-1", '"a day"', "9000", "1.5"])
def test_a_bad_value_is_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(tomllib.loads(with_b2b(f"company_user_cache_hours = {value}\n")), B2B_ENV)
    assert any("b2b.company_user_cache_hours" in line for line in caught.value.problems), (
        caught.value.problems
    )
