"""The runtime over real servers: stores held in the database, changed while the broker runs.

Two `broker serve` instances (gunicorn, two workers each) share one PostgreSQL database, as
two hosts behind a load balancer would; a store is added, its connection changed and the store
removed through the storage layer (what the app install and the admin write), and both
instances serve each change within seconds, with no restart.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.sandbox.idp import DevClient
from broker.storage import open_storage
from tests.conftest import DevIdP, Sandbox
from tests.support.databases import POSTGRES_URL, new_postgres_database
from tests.support.flows import dev_idp_sign_in, start_login, visit_storefront
from tests.support.serve import broker_serve, free_port
from tests.support.settings import document as settings_document
from tests.support.settings import oidc_connection
from tests.support.settings import store_table as store_settings


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("set BROKER_TEST_POSTGRES_URL to run two instances on one PostgreSQL")
    with new_postgres_database(POSTGRES_URL) as url:
        yield url


def wait_for(check: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_two_instances_serve_stores_changed_in_the_database(
    sandbox: Sandbox,
    dev_idp: DevIdP,
    make_dev_idp: Callable[[], DevIdP],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    file_store = sandbox.add_store("file01")
    installed = sandbox.add_store("inst01", name="Installed Shop")
    secret = secrets.token_urlsafe(24)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    dev_idp.state.add_client(
        DevClient(
            "broker",
            secret,
            tuple(f"{url}/{key}/oidc/corp/callback" for url in urls for key in ("acme", "inst01")),
        )
    )
    second_idp = make_dev_idp()
    second_idp.state.add_client(
        DevClient("broker", secret, tuple(f"{url}/inst01/oidc/second/callback" for url in urls))
    )

    def store_table(store: Any) -> dict[str, Any]:
        corp = oidc_connection(dev_idp.url, secret, display_name="Corp SSO", link="auto")
        return store_settings(sandbox.url, store, connections={"corp": corp})

    def document(base_url: str) -> dict[str, Any]:
        return settings_document(
            base_url,
            {"acme": store_table(file_store)},
            secret_key="k" * 40,
            database_url=postgres_url,
        )

    with ExitStack() as stack:
        for n, port in enumerate(ports):
            workdir = tmp_path / f"instance{n}"
            workdir.mkdir()
            stack.enter_context(broker_serve(workdir, document, workers=2, threads=2, port=port))
        storage = open_storage(postgres_url)
        stack.callback(storage.close)
        http = stack.enter_context(httpx.Client(follow_redirects=False, timeout=20))

        def login_status(url: str, path: str) -> int:
            return http.get(f"{url}{path}").status_code

        def chooser(url: str) -> str:
            # A browser of its own: this one remembers the connection it signed in with, and
            # the chooser then offers that one first (the others behind "Not you?").
            return httpx.get(f"{url}/inst01/login", timeout=10).text

        # Not there yet: 404 on both.
        assert [login_status(url, "/inst01/login/corp") for url in urls] == [404, 404]

        # Installed: both instances serve it, and a shopper signs in through instance 2.
        storage.put_tenant("inst01", store_table(installed), now=int(time.time()))
        for url in urls:
            wait_for(lambda url=url: login_status(url, "/inst01/login/corp") == 302, url)
        authorize = start_login(http, urls[1], "/inst01/login/corp")
        callback = dev_idp_sign_in(http, authorize, "alice@example.com")
        landed = http.get(callback)
        assert landed.status_code == 302, landed.text
        page = visit_storefront(http, landed.headers["location"])
        assert ">alice@example.com<" in page.text
        assert len(sandbox.state.customers(installed.store_hash)) == 1

        # A connection changed and one added: both serve the change.
        changed = store_table(installed)
        changed["connections"]["corp"]["display_name"] = "Renamed SSO"
        changed["connections"]["second"] = {
            **changed["connections"]["corp"],
            "display_name": "Second IdP",
            "issuer": second_idp.url,  # its own IdP: two connections never share one
        }
        storage.put_tenant("inst01", changed, now=int(time.time()))

        # Each instance runs two workers, each refreshing on its own within refresh_seconds:
        # wait until what a shopper sees is the change, whichever worker answers.
        def serves_the_change(url: str) -> bool:
            page = chooser(url)
            return (
                "Renamed SSO" in page
                and "Second IdP" in page
                and login_status(url, "/inst01/login/second") == 302
            )

        for url in urls:
            wait_for(lambda url=url: serves_the_change(url), f"{url}: changed")

        # Removed: 404 everywhere, its sign-in URLs too; the file's store goes on.
        assert storage.delete_tenant("inst01")

        def serves_the_removal(url: str) -> bool:
            return (
                login_status(url, "/inst01/login/corp") == 404
                and login_status(url, "/inst01/login") == 404
            )

        for url in urls:
            wait_for(lambda url=url: serves_the_removal(url), f"{url}: removed")
            assert login_status(url, "/acme/login/corp") == 302
