"""A new, empty PostgreSQL database per test, on the server BROKER_TEST_POSTGRES_URL names.

scripts/test sets it to the local server; without it the PostgreSQL cases are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

POSTGRES_URL = os.environ.get("BROKER_TEST_POSTGRES_URL")


@contextmanager
def new_postgres_database(server_url: str) -> Iterator[str]:
    """Create a database for the block and drop it afterwards (open connections too).

    The name is new each time (a random part), and says which pytest-xdist worker made it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"broker_test_{worker}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
