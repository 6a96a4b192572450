"""The broker as a BigCommerce app in tests: its settings, its registration in the sandbox,
and what the database still holds of a store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from cryptography.fernet import Fernet

from broker.runtime import Runtime
from tests.support.settings import broker_table

SCOPES = ("store_v2_customers", "store_v2_customers_login", "store_v2_information_read_only")


def app_settings(
    sandbox_url: str, app_id: str, app_secret: str, *, other_site: bool = False
) -> Callable[[str], dict[str, Any]]:
    """A broker document with an ``[app]`` table and no file store, for ``make_broker``.
    ``other_site``: the broker is addressed as ``localhost`` (the sandbox is on 127.0.0.1),
    so the control panel frames it from another site, as BigCommerce's does."""

    def document(base_url: str) -> dict[str, Any]:
        return {
            "broker": broker_table(
                base_url.replace("127.0.0.1", "localhost") if other_site else base_url
            ),
            "app": {
                "client_id": app_id,
                "client_secret": app_secret,
                "login_url": sandbox_url,
                "api_url": sandbox_url,
                "encryption_key": [Fernet.generate_key().decode()],
                "frame_ancestors": [sandbox_url],
            },
        }

    return document


def register_app(
    sandbox_url: str,
    app_id: str,
    app_secret: str,
    callback_base: str,
    scopes: Sequence[str] = SCOPES,
) -> None:
    """Register the app at the sandbox (its Developer Portal)."""
    httpx.post(
        f"{sandbox_url}/_sandbox/apps",
        json={
            "client_id": app_id,
            "client_secret": app_secret,
            "callback_base": callback_base,
            "scopes": list(scopes),
        },
    ).raise_for_status()


def store_rows(runtime: Runtime, store: str) -> dict[str, int]:
    """Rows naming the store (a ``store`` column, or a key with ``:{store}:``), per table."""
    path = runtime.broker_settings.database_url.removeprefix("sqlite:///")
    counts: dict[str, int] = {}
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            column = "store" if "store" in columns else "key" if "key" in columns else None
            if column is None:
                continue
            count = db.execute(
                f"SELECT COUNT(*) FROM {table} WHERE {column} = ? OR {column} LIKE ?",  # noqa: S608
                (store, f"%:{store}:%"),
            ).fetchone()[0]
            if count:
                counts[table] = count
    return counts
