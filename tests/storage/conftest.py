"""The database every storage test runs on: SQLite, and PostgreSQL.

PostgreSQL runs when BROKER_TEST_POSTGRES_URL names a database (scripts/test sets it to the
local server); without it those cases are skipped with the reason shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.storage import SQLStorage, open_storage
from tests.support.databases import POSTGRES_URL, new_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a PostgreSQL database made for the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'broker.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set BROKER_TEST_POSTGRES_URL to run the storage suite on PostgreSQL")
    with new_postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def storage(database_url: str) -> Iterator[SQLStorage]:
    store = open_storage(database_url)
    yield store
    store.close()
