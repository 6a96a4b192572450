"""Fixtures: real servers on 127.0.0.1 — the sandbox store, the development IdP, the broker.

Factories, not shared objects: each test gets fresh servers and its own database, and builds
its world with ``make_world(**overrides)``. The builders are in :mod:`tests.support.world` and
the settings documents in :mod:`tests.support.settings`; what is made once per session (per
xdist worker) is only what no test changes: an empty SQLite database migrated to the newest
schema, copied for each broker; the dev IdPs' RSA keys are handed on to later tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from broker.sandbox import idp as dev_idp_module
from broker.sandbox.idp import create_idp_app
from broker.sandbox.store import create_sandbox_app
from broker.storage import open_storage
from tests.support.broker_log import LogLines, collecting
from tests.support.servers import serve_in_thread
from tests.support.speed import KeyRecycler, use_hashed_trust_store
from tests.support.world import (
    BrokerServer,
    BrokerStarter,
    DevIdP,
    Sandbox,
    World,
    Worlds,
    with_companies,
)

__all__ = ["BrokerServer", "DevIdP", "Sandbox", "World", "with_companies"]

pytest_plugins = ["tests.saml_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    use_hashed_trust_store()  # see tests/support/speed.py


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own broker configuration."""
    monkeypatch.delenv("BROKER_CONFIG", raising=False)


_DEV_IDP_KEYS = KeyRecycler(dev_idp_module._new_signing_key)


@pytest.fixture(autouse=True)
def _recycled_dev_idp_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The dev IdPs of a test get keys of earlier tests, never one another's (see
    tests/support/speed.py)."""
    monkeypatch.setattr(dev_idp_module, "_new_signing_key", _DEV_IDP_KEYS.make)
    yield
    _DEV_IDP_KEYS.end_test()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the newest schema, made once: each broker of ``make_broker``
    starts on a copy (migrating a new file costs more than the rest of a short test)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "broker.db"
    open_storage(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    app = create_sandbox_app()
    with serve_in_thread(app) as server:
        yield Sandbox(url=server.url, app=app)


@pytest.fixture
def make_dev_idp() -> Iterator[Callable[[], DevIdP]]:
    """More development IdPs, for stores with several connections (each its own issuer)."""
    with ExitStack() as stack:

        def start() -> DevIdP:
            app = create_idp_app(clients=())
            server = stack.enter_context(serve_in_thread(app))
            app.extensions["dev_idp"].issuer = server.url
            return DevIdP(url=server.url, app=app)

        yield start


@pytest.fixture
def dev_idp() -> Iterator[DevIdP]:
    app = create_idp_app(clients=())
    with serve_in_thread(app) as server:
        app.extensions["dev_idp"].issuer = server.url
        yield DevIdP(url=server.url, app=app)


@pytest.fixture
def make_broker(tmp_path: Path, sqlite_template: Path) -> Iterator[Callable[..., BrokerServer]]:
    """Start the broker in a thread: ``make_broker(lambda base_url: settings_document)``."""
    with ExitStack() as stack:
        yield BrokerStarter(tmp_path, stack, sqlite_template)


@pytest.fixture
def make_world(
    sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer]
) -> Callable[..., World]:
    """Build a World; keyword arguments override the connection's or the store's settings:
    ``connection``, ``store``, ``sandbox_store``, ``theme_script``, ``defer``, ``app_options``,
    ``more_connections`` (see :meth:`tests.support.world.Worlds.oidc`)."""
    return Worlds(sandbox, make_broker, dev_idp=dev_idp).oidc


@pytest.fixture
def browser_http() -> Iterator[httpx.Client]:
    """A cookie-keeping client that follows nothing by itself, like a careful browser."""
    with httpx.Client(follow_redirects=False, timeout=20) as client:
        yield client


@pytest.fixture
def broker_log() -> Iterator[LogLines]:
    """The broker's JSON log lines while the test runs."""
    with collecting() as lines:
        yield lines
