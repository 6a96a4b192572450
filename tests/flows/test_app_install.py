"""The broker as a BigCommerce app, against the sandbox's app side over real HTTP: install
(code exchange), load, remove_user, uninstall, reinstall, and every bad payload refused with
nothing changed."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from broker.admin.tokens import issue_token
from broker.runtime import Runtime
from broker.sandbox.idp import DevClient
from tests.conftest import BrokerServer, DevIdP, Sandbox
from tests.support.app import app_settings, register_app, store_rows
from tests.support.flows import sign_in

HASH = "inst42"
SCOPES = ["store_v2_customers", "store_v2_customers_login", "store_v2_information_read_only"]


@dataclass
class Installed:
    sandbox: Sandbox
    idp: DevIdP
    broker: BrokerServer
    app_id: str
    app_secret: str

    @property
    def runtime(self) -> Runtime:
        found: Runtime = self.broker.app.extensions["broker"]
        return found

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = httpx.post(f"{self.sandbox.url}/_sandbox{path}", json=body or {})
        assert answer.status_code < 300, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def app_path(self, action: str) -> str:
        return f"/stores/{HASH}/apps/{self.app_id}/{action}"

    def payload(self, kind: str, **claims: Any) -> str:
        body = {"store_hash": HASH, "user_id": 1, "kind": kind, **claims}
        token: str = self.control(f"/apps/{self.app_id}/payload", body)["signed_payload_jwt"]
        return token

    def callback(self, kind: str, token: str) -> httpx.Response:
        return httpx.get(
            f"{self.broker.url}/bigcommerce/{kind}", params={"signed_payload_jwt": token}
        )

    def database_rows(self) -> dict[str, int]:
        return store_rows(self.runtime, HASH)


@pytest.fixture
def installed_world(
    sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer]
) -> Installed:
    app_id, app_secret = "sso-broker-app", secrets.token_hex(32)
    sandbox.add_store(HASH, name="Installed Goods")

    broker = make_broker(app_settings(sandbox.url, app_id, app_secret))
    world = Installed(sandbox, dev_idp, broker, app_id, app_secret)
    register_app(sandbox.url, app_id, app_secret, broker.url, SCOPES)
    return world


def install(world: Installed, http: httpx.Client) -> httpx.Response:
    auth_url = world.control(world.app_path("install"))["auth_url"]
    answer = http.get(auth_url)
    assert answer.status_code == 303, answer.text
    return answer


def admin_context(location: str) -> str:
    return parse_qs(urlsplit(location).query)["ctx"][0]


def test_install_stores_the_store_and_opens_its_admin(
    installed_world: Installed, browser_http: httpx.Client
) -> None:
    answer = install(installed_world, browser_http)
    assert urlsplit(answer.headers["location"]).path == f"/{HASH}/admin/"
    page = browser_http.get(installed_world.broker.url + answer.headers["location"])
    assert page.status_code == 200
    assert "Installed Goods" in page.text
    assert (
        "frame-ancestors " + installed_world.sandbox.url in page.headers["content-security-policy"]
    )
    assert "set-cookie" not in page.headers
    assert installed_world.runtime.find_store(HASH) is not None
    install_row = installed_world.runtime.storage.get_install(HASH)
    assert install_row is not None
    assert install_row.owner_id == 1


def test_a_replayed_install_code_is_refused_and_changes_nothing(
    installed_world: Installed, browser_http: httpx.Client
) -> None:
    auth_url = installed_world.control(installed_world.app_path("install"))["auth_url"]
    assert browser_http.get(auth_url).status_code == 303
    version = installed_world.runtime.storage.tenants_version()
    again = browser_http.get(auth_url)
    assert again.status_code == 401
    assert "used already" in again.text
    assert installed_world.runtime.storage.tenants_version() == version


def test_an_install_code_bigcommerce_refuses_installs_nothing(
    installed_world: Installed, browser_http: httpx.Client
) -> None:
    auth_url = installed_world.control(installed_world.app_path("install"))["auth_url"]
    forged = auth_url.replace("code=", "code=forged")
    assert browser_http.get(forged).status_code == 401
    wrong_store = auth_url.replace(f"stores%2F{HASH}", "stores%2Fother9")
    assert wrong_store != auth_url
    assert browser_http.get(wrong_store).status_code == 401
    no_context = auth_url.replace(f"stores%2F{HASH}", "nonsense")
    assert browser_http.get(no_context).status_code == 401
    assert installed_world.runtime.find_store(HASH) is None
    assert installed_world.database_rows() == {}


def test_load_opens_the_admin_for_any_user_the_store_grants(
    installed_world: Installed, browser_http: httpx.Client
) -> None:
    install(installed_world, browser_http)
    user = installed_world.control(f"/stores/{HASH}/users", {"email": "clerk@example.com"})
    installed_world.control(installed_world.app_path("grant"), {"user_id": user["id"]})
    load_url = installed_world.control(installed_world.app_path("load"), {"user_id": user["id"]})[
        "load_url"
    ]
    answer = browser_http.get(load_url)
    assert answer.status_code == 303
    home = browser_http.get(installed_world.broker.url + answer.headers["location"])
    assert home.status_code == 200
    assert browser_http.get(load_url).status_code == 401  # a payload is used once

    # remove_user: that user's admin pages stop at once.
    revoked = installed_world.control(installed_world.app_path("revoke"), {"user_id": user["id"]})
    assert revoked["status"] == 200, revoked
    after = browser_http.get(installed_world.broker.url + answer.headers["location"])
    assert after.status_code == 401
    assert "no longer have access" in after.text


@pytest.mark.parametrize(
    "fault",
    [
        {"secret": "not-the-app-secret-0123456789abcdef"},
        {"expires_in": -3600},
        {"not_before_offset": 3600},
        {"aud": "another-app"},
        {"sub": "stores/nothere"},
    ],
    ids=["wrong-secret", "expired", "not-yet-valid", "wrong-audience", "unknown-store"],
)
def test_a_bad_load_payload_is_refused_and_grants_nothing(
    installed_world: Installed, browser_http: httpx.Client, fault: dict[str, Any]
) -> None:
    install(installed_world, browser_http)
    stranger = installed_world.control(f"/stores/{HASH}/users", {"email": "x@example.com"})
    token = installed_world.payload("load", user_id=stranger["id"], **fault)
    answer = installed_world.callback("load", token)
    assert answer.status_code == 401
    assert not installed_world.runtime.storage.is_admin_user(HASH, stranger["id"])
    bad_uninstall = installed_world.callback("uninstall", token)
    assert bad_uninstall.status_code == 401
    assert bad_uninstall.headers["content-type"] == "application/problem+json"
    assert installed_world.runtime.find_store(HASH) is not None


def test_uninstall_deletes_everything_of_the_store_and_reinstall_works(
    installed_world: Installed, browser_http: httpx.Client
) -> None:
    install(installed_world, browser_http)
    world = installed_world
    token, _ = issue_token(world.runtime.storage, store=HASH, kind="admin", label="t", now=1)
    secret = secrets.token_urlsafe(24)
    world.idp.state.add_client(
        DevClient(
            client_id="shop",
            client_secret=secret,
            redirect_uris=(f"{world.broker.url}/{HASH}/oidc/corp/callback",),
        )
    )
    put = httpx.put(
        f"{world.broker.url}/{HASH}/admin/api/connections/corp",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "type": "oidc",
            "issuer": world.idp.url,
            "client_id": "shop",
            "client_secret": secret,
            "link": "auto",
        },
    )
    assert put.status_code == 201, put.text
    # A shopper signs in: the store accepts the login JWT the app signed.
    outcome = sign_in(
        browser_http, world.broker.url, "alice@example.com", path=f"/{HASH}/login/corp"
    )
    assert outcome.status == 302, outcome.response.text
    landed = browser_http.get(outcome.location)
    assert landed.status_code == 302
    assert "login.php" not in landed.headers["location"]
    assert world.database_rows()  # links, sessions, audit...

    done = world.control(world.app_path("uninstall"))
    assert done["status"] == 200, done
    assert browser_http.get(f"{world.broker.url}/{HASH}/login/corp").status_code == 404
    assert world.database_rows() == {"audit_log": 1}  # "app.uninstalled", and nothing else
    assert world.runtime.storage.search_audit(HASH)[0].event == "app.uninstalled"
    listed = httpx.get(
        f"{world.broker.url}/{HASH}/admin/api/connections",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert listed.status_code == 404

    install(world, browser_http)
    assert world.runtime.find_store(HASH) is not None
    assert world.runtime.store(HASH).connections == {}


def test_remove_user_and_uninstall_of_a_store_that_never_installed_are_refused(
    installed_world: Installed,
) -> None:
    token = installed_world.payload("uninstall")
    assert installed_world.callback("uninstall", token).status_code == 401
    assert installed_world.callback("remove_user", token).status_code == 401
    assert installed_world.callback("load", "").status_code == 401


def test_an_installed_store_learns_its_channels_and_signs_in_on_each(
    sandbox: Sandbox,
    dev_idp: DevIdP,
    make_broker: Callable[..., BrokerServer],
    browser_http: httpx.Client,
) -> None:
    app_id, app_secret = "sso-broker-app", secrets.token_hex(32)
    sandbox.add_store("chan77", channel_ids=(1, 2), catalyst_channels=(2,))

    broker = make_broker(app_settings(sandbox.url, app_id, app_secret))
    world = Installed(sandbox, dev_idp, broker, app_id, app_secret)
    register_app(sandbox.url, app_id, app_secret, broker.url, SCOPES)
    auth_url = world.control(f"/stores/chan77/apps/{app_id}/install")["auth_url"]
    assert browser_http.get(auth_url).status_code == 303
    store = world.runtime.store("chan77")
    assert sorted(store.channels) == [1, 2]
    assert store.channels[2].platform == "catalyst"
    assert store.channels[2].storefront_url != store.channels[1].storefront_url

    token, _ = issue_token(world.runtime.storage, store="chan77", kind="admin", label="t", now=1)
    secret = secrets.token_urlsafe(24)
    dev_idp.state.add_client(
        DevClient(
            client_id="chan",
            client_secret=secret,
            redirect_uris=(f"{broker.url}/chan77/oidc/corp/callback",),
        )
    )
    body = {
        "type": "oidc",
        "issuer": dev_idp.url,
        "client_id": "chan",
        "client_secret": secret,
        "link": "auto",
    }
    put = httpx.put(
        f"{broker.url}/chan77/admin/api/connections/corp",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
    )
    assert put.status_code == 201, put.text
    for channel in (1, 2):
        outcome = sign_in(
            browser_http,
            broker.url,
            "alice@example.com",
            path=f"/chan77/login/corp?channel={channel}",
        )
        assert outcome.status == 302, outcome.response.text
        assert outcome.location.startswith(store.channels[channel].storefront_url + "/login/token/")


@pytest.mark.parametrize(
    "faults",
    [{"status": 500}, {"rate_limit_for_ms": 60000}],
    ids=["store-500", "store-429-storm"],
)
def test_an_install_the_store_api_cannot_finish_stores_nothing_and_says_so(
    installed_world: Installed, browser_http: httpx.Client, faults: dict[str, Any]
) -> None:
    answer = httpx.post(f"{installed_world.sandbox.url}/_sandbox/stores/{HASH}/faults", json=faults)
    assert answer.status_code < 300, answer.text
    auth_url = installed_world.control(installed_world.app_path("install"))["auth_url"]
    page = browser_http.get(auth_url)
    assert page.status_code in (429, 502, 503), page.text
    assert "error-ref" in page.text
    assert installed_world.runtime.find_store(HASH) is None
    assert installed_world.runtime.storage.get_install(HASH) is None
    assert installed_world.database_rows() == {}


def test_an_installed_store_registers_its_webhooks_and_a_deleted_customer_loses_the_link(
    installed_world: Installed, browser_http: httpx.Client
) -> None:
    import time

    world = installed_world
    install(world, browser_http)
    token, _ = issue_token(world.runtime.storage, store=HASH, kind="admin", label="t", now=1)
    secret = secrets.token_urlsafe(24)
    world.idp.state.add_client(
        DevClient(
            client_id="hooks",
            client_secret=secret,
            redirect_uris=(f"{world.broker.url}/{HASH}/oidc/corp/callback",),
        )
    )
    body = {"type": "oidc", "issuer": world.idp.url, "client_id": "hooks", "client_secret": secret}
    put = httpx.put(
        f"{world.broker.url}/{HASH}/admin/api/connections/corp",
        headers={"Authorization": f"Bearer {token}"},
        json=body,
    )
    assert put.status_code == 201, put.text
    outcome = sign_in(
        browser_http, world.broker.url, "alice@example.com", path=f"/{HASH}/login/corp"
    )
    assert outcome.status == 302, outcome.response.text
    customer = world.sandbox.state.customers(HASH)[0]
    assert world.runtime.storage.links_for_customer(HASH, customer["id"])
    events = [e.event for e in world.runtime.storage.search_audit(HASH)]
    assert "app.webhooks" in events

    gone = httpx.delete(f"{world.sandbox.url}/_sandbox/stores/{HASH}/customers/{customer['id']}")
    assert gone.status_code < 300, gone.text
    deadline = time.monotonic() + 10
    while world.runtime.storage.links_for_customer(HASH, customer["id"]):
        assert time.monotonic() < deadline, "the webhook never removed the link"
        time.sleep(0.05)


def _forty_at_once(url: str) -> list[int]:
    """The statuses of 40 browsers opening ``url`` at the same moment, sorted."""
    import threading

    start = threading.Barrier(40)
    statuses: list[int] = []
    lock = threading.Lock()

    def use() -> None:
        with httpx.Client() as http:
            start.wait()
            status = http.get(url).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=use) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


def test_forty_browsers_racing_one_install_link_install_once(
    installed_world: Installed,
) -> None:
    auth_url = installed_world.control(installed_world.app_path("install"))["auth_url"]
    assert _forty_at_once(auth_url) == [303] + [401] * 39
    audit = installed_world.runtime.storage.search_audit(HASH)
    assert [e.event for e in audit].count("app.installed") == 1
    load_url = installed_world.control(installed_world.app_path("load"))["load_url"]
    assert _forty_at_once(load_url) == [303] + [401] * 39
