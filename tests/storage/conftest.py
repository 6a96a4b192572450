"""The database every storage test runs on: SQLite, and PostgreSQL.

PostgreSQL runs when BROKER_TEST_POSTGRES_URL names a database (scripts/test sets it to the
local server); without it those cases are skipped with the reason shown.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from broker.storage import SQLStorage, open_storage

POSTGRES_URL = os.environ.get("BROKER_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a PostgreSQL database made for the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'broker.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set BROKER_TEST_POSTGRES_URL to run the storage suite on PostgreSQL")
    name = f"broker_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def storage(database_url: str) -> Iterator[SQLStorage]:
    store = open_storage(database_url)
    yield store
    store.close()
