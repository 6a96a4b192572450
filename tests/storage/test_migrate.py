"""Migrations on SQLite and PostgreSQL: many workers at once, and older databases brought up."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from broker import migrations
from broker.storage import AlreadyExists, open_storage, schema_revision
from tests.storage.builders import new_link


def _config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    return config


def _head() -> str | None:
    """The newest revision (every older database is brought up to it)."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def _migrate_in_a_process(url: str) -> str | None:
    storage = open_storage(url)
    try:
        return schema_revision(storage.engine)
    finally:
        storage.close()


def test_many_processes_migrating_a_new_database_at_once(database_url: str) -> None:
    # What gunicorn workers do when they start together on a fresh database.
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        revisions = pool.map(_migrate_in_a_process, [database_url] * 4)
    assert len(set(revisions)) == 1
    assert revisions[0] is not None


def test_links_of_an_older_database_are_migrated_to_connections(database_url: str) -> None:
    """0003 -> 0004: links keep their connection and customer; duplicates the new keys forbid
    keep the most recently used one; long identifiers fit afterwards."""
    engine = create_engine(database_url)
    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
    rows = [
        # (issuer, subject, customer, connection, last_login_at)
        ("https://idp.example", "sub-1", 7, "corp", 100),
        ("https://idp.example/", "sub-1", 7, "corp", 300),  # same subject, issuer edited
        ("https://idp.example", "sub-2", 8, "corp", 200),
        ("https://idp.example", "sub-3", 8, "corp", 100),  # two people, one customer
        ("https://other.example", "sub-1", 9, "other", 100),
    ]
    with engine.begin() as conn:
        for issuer, subject, customer, connection, last in rows:
            conn.execute(
                text(
                    "INSERT INTO links (store, issuer, subject, customer_id, connection, "
                    "created_at, last_login_at, verified_at) VALUES "
                    "('acme', :i, :s, :c, :conn, 1, :last, 1)"
                ),
                {"i": issuer, "s": subject, "c": customer, "conn": connection, "last": last},
            )
    engine.dispose()
    storage = open_storage(database_url)
    try:
        assert schema_revision(storage.engine) == _head()
        kept = {
            (link.connection, link.subject): (link.customer_id, link.issuer)
            for customer in (7, 8, 9)
            for link in storage.links_for_customer("acme", customer)
        }
        assert kept == {
            ("corp", "sub-1"): (7, "https://idp.example/"),
            ("corp", "sub-2"): (8, "https://idp.example"),
            ("other", "sub-1"): (9, "https://other.example"),
        }
        long = "n" * 1000
        assert new_link(storage, subject=long, customer_id=10).subject == long
    finally:
        storage.close()


def test_links_of_a_0006_database_sign_in_on_the_default_channel(database_url: str) -> None:
    """0006 -> 0007: existing links get channel 0 (the store's default channel, whichever it
    is) and keep working; other channels' links fit beside them."""
    engine = create_engine(database_url)
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
    with engine.begin() as conn:
        for subject, customer in (("sub-1", 7), ("sub-2", 8)):
            conn.execute(
                text(
                    "INSERT INTO links (store, issuer, subject, customer_id, connection, "
                    "created_at, last_login_at, verified_at) VALUES "
                    "('acme', 'https://idp.example', :s, :c, 'corp', 1, 1, 1)"
                ),
                {"s": subject, "c": customer},
            )
    engine.dispose()
    storage = open_storage(database_url)
    try:
        assert schema_revision(storage.engine) == _head()
        link = storage.get_link("acme", "corp", "sub-1")
        assert link is not None
        assert (link.customer_id, link.channel_id) == (7, 0)
        assert storage.get_link("acme", "corp", "sub-1", 2) is None
        other = new_link(storage, subject="sub-1", customer_id=9, channel_id=2)
        assert storage.get_link("acme", "corp", "sub-1", 2) == other
        with pytest.raises(AlreadyExists):  # the old keys still hold on the default channel
            new_link(storage, subject="sub-1", customer_id=10)
    finally:
        storage.close()
