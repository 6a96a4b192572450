"""The admin API over real HTTP: a store held in the database configured without a file.

The store here is put in the database as an install would leave it (the install itself is
tested in test_app_install.py); the broker has an ``[app]`` table and no file store but one,
which the API shows read-only.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from joserfc import jwt
from joserfc.jwk import OctKey

from broker.admin.tokens import issue_token
from broker.cli import main as broker_cli
from broker.runtime import Runtime
from broker.sandbox.idp import DevClient
from broker.settings.secrets import seal_document
from tests.conftest import BrokerServer, DevIdP, Sandbox
from tests.support.flows import query, sign_in
from tests.support.settings import broker_table

STORE = "app123"


@dataclass
class AppWorld:
    sandbox: Sandbox
    idp: DevIdP
    broker: BrokerServer
    app_id: str
    app_secret: str
    access_token: str
    token: str  # an admin API token of STORE

    @property
    def runtime(self) -> Runtime:
        found: Runtime = self.broker.app.extensions["broker"]
        return found

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.broker.url}/{STORE}/admin/api{path}", headers=headers, **kwargs
        )

    def oidc_body(self, **overrides: Any) -> dict[str, Any]:
        secret = secrets.token_urlsafe(24)
        self.idp.state.add_client(
            DevClient(
                client_id=f"shop-{STORE}",
                client_secret=secret,
                redirect_uris=(f"{self.broker.url}/{STORE}/oidc/corp/callback",),
            )
        )
        body = {
            "type": "oidc",
            "issuer": self.idp.url,
            "client_id": f"shop-{STORE}",
            "client_secret": secret,
            "link": "auto",
        }
        body.update(overrides)
        return body


@pytest.fixture
def app_world(
    sandbox: Sandbox, dev_idp: DevIdP, make_broker: Callable[..., BrokerServer]
) -> AppWorld:
    return build_app_world(sandbox, dev_idp, make_broker)


def build_app_world(
    sandbox: Sandbox,
    dev_idp: DevIdP,
    make_broker: Callable[..., BrokerServer],
    *,
    file_store: dict[str, Any] | None = None,
) -> AppWorld:
    """The world of :func:`app_world`; ``file_store``: more keys of the file's store "filed"."""
    app_id, app_secret = secrets.token_hex(8), secrets.token_hex(32)
    # The store knows the app: its login JWTs are signed with the app's secret.
    store = sandbox.add_store(STORE, client_id=app_id, client_secret=app_secret)
    filed = sandbox.add_store("file456")

    def document(base_url: str) -> dict[str, Any]:
        return {
            "broker": broker_table(base_url),
            "app": {
                "client_id": app_id,
                "client_secret": app_secret,
                "login_url": sandbox.url,
                "api_url": sandbox.url,
                "encryption_key": [Fernet.generate_key().decode()],
            },
            "stores": {
                "filed": {
                    "store_hash": filed.store_hash,
                    "api_url": sandbox.url,
                    "access_token": filed.access_token,
                    "client_id": filed.client_id,
                    "client_secret": filed.client_secret,
                    "storefront_url": sandbox.storefront(filed.store_hash),
                    "connections": {
                        "corp": {
                            "type": "oidc",
                            "issuer": dev_idp.url,
                            "client_id": "x",
                            "client_secret": "y",
                        }
                    },
                    **(file_store or {}),
                }
            },
        }

    broker = make_broker(document)
    runtime: Runtime = broker.app.extensions["broker"]
    stored = {
        "store_hash": STORE,
        "access_token": store.access_token,
        "storefront_url": sandbox.storefront(STORE),
        "connections": {},
    }
    runtime.storage.install_store(
        STORE,
        seal_document(stored, runtime.secrets),
        scope="store_v2_customers",
        owner_id=1,
        user_id=1,
        name="App Store",
        now=1000,
    )
    token, _ = issue_token(runtime.storage, store=STORE, kind="admin", label="test", now=1000)
    runtime.refresh()
    return AppWorld(sandbox, dev_idp, broker, app_id, app_secret, store.access_token, token)


def test_a_connection_added_through_the_api_signs_shoppers_in_with_the_apps_key(
    app_world: AppWorld, browser_http: httpx.Client
) -> None:
    created = app_world.api("PUT", "/connections/corp", json=app_world.oidc_body())
    assert created.status_code == 201, created.text
    assert created.json()["issuer"] == app_world.idp.url
    assert "client_secret" not in created.json()
    assert created.json()["client_secret_set"] is True

    listed = app_world.api("GET", "/connections").json()["connections"]
    assert [(c["key"], c["type"]) for c in listed] == [("corp", "oidc")]

    outcome = sign_in(
        browser_http, app_world.broker.url, "alice@example.com", path=f"/{STORE}/login/corp"
    )
    assert outcome.status == 302, outcome.response.text
    assert outcome.location.startswith(app_world.sandbox.storefront(STORE) + "/login/token/")
    token = outcome.location.rsplit("/", 1)[1]
    claims = jwt.decode(token, OctKey.import_key(app_world.app_secret)).claims
    assert claims["iss"] == app_world.app_id
    assert claims["store_hash"] == STORE
    landed = browser_http.get(outcome.location)
    assert landed.status_code == 302
    assert "Invalid" not in landed.headers["location"]

    again = app_world.api("PUT", "/connections/corp", json={**app_world.oidc_body(), "jit": False})
    assert again.status_code == 200
    assert again.json()["jit"] is False
    assert app_world.api("DELETE", "/connections/corp").status_code == 204
    assert browser_http.get(f"{app_world.broker.url}/{STORE}/login/corp").status_code == 404


def test_every_problem_of_a_body_comes_back_at_once_and_nothing_is_saved(
    app_world: AppWorld,
) -> None:
    body = app_world.oidc_body(link="sometimes", clock_skew_seconds="soon", issuer="ftp://x")
    answer = app_world.api("PUT", "/connections/corp", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    keys = {e["key"] for e in answer.json()["errors"]}
    assert {"link", "clock_skew_seconds", "issuer"} <= keys
    assert app_world.api("GET", "/connections").json() == {"connections": []}

    typo = app_world.api("PUT", "/connections/corp", json={**app_world.oidc_body(), "jitt": 1})
    assert typo.status_code == 422
    assert any("jit" in e["message"] for e in typo.json()["errors"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("idp_metadata_file", "/etc/passwd"),
        ("sp_key_file", "/etc/ssl/private/server.key"),
    ],
)
def test_a_body_may_not_name_files_of_the_brokers_host(
    app_world: AppWorld, key: str, value: str
) -> None:
    body = {"type": "saml", key: value, "idp_metadata_url": "https://idp.example/md"}
    answer = app_world.api("PUT", "/connections/corp", json=body)
    assert answer.status_code == 422
    assert key in {e["key"] for e in answer.json()["errors"]}
    assert app_world.api("GET", "/connections").json() == {"connections": []}


def test_two_connections_may_not_share_an_issuer(app_world: AppWorld) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    clash = app_world.api("PUT", "/connections/other", json=app_world.oidc_body())
    assert clash.status_code == 422
    assert [e["key"] for e in clash.json()["errors"]] == ["issuer"]
    assert [c["key"] for c in app_world.api("GET", "/connections").json()["connections"]] == [
        "corp"
    ]


def test_tokens_are_per_store_and_revocable(app_world: AppWorld, tmp_path: Path) -> None:
    assert app_world.api("GET", "/connections", headers={"Authorization": ""}).status_code == 401
    forged = app_world.api(
        "GET", "/connections", headers={"Authorization": "Bearer bka_" + "x" * 43}
    )
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    other = httpx.get(
        f"{app_world.broker.url}/filed/admin/api/connections",
        headers={"Authorization": f"Bearer {app_world.token}"},
    )
    assert other.status_code == 401  # a token of another store

    config = str(app_world.broker.config_path)
    assert broker_cli(["admin", "token", "--config", config, "--store", STORE, "--revoke"]) == 0
    assert app_world.api("GET", "/connections").status_code == 401


def test_the_cli_prints_a_token_alone_on_stdout(
    app_world: AppWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(app_world.broker.config_path)
    assert broker_cli(["admin", "token", "--config", config, "--store", "filed"]) == 0
    token = capsys.readouterr().out
    assert token.count("\n") == 1
    assert token.startswith("bka_")
    filed = httpx.get(
        f"{app_world.broker.url}/filed/admin/api/connections",
        headers={"Authorization": f"Bearer {token.strip()}"},
    )
    assert filed.status_code == 200
    assert [c["key"] for c in filed.json()["connections"]] == ["corp"]
    assert "client_secret" not in filed.json()["connections"][0]
    assert "access_token" not in filed.text
    refused = httpx.put(
        f"{app_world.broker.url}/filed/admin/api/connections/corp",
        headers={"Authorization": f"Bearer {token.strip()}"},
        json={"type": "oidc", "issuer": "https://idp.example", "client_id": "x"},
    )
    assert refused.status_code == 409
    assert broker_cli(["admin", "token", "--config", config, "--store", "nowhere"]) == 2


def test_no_secret_is_readable_in_the_database_file(app_world: AppWorld) -> None:
    body = app_world.oidc_body()
    assert app_world.api("PUT", "/connections/corp", json=body).status_code == 201
    saml = app_world.api(
        "PUT",
        "/connections/partner",
        json={"type": "saml", "idp_metadata_url": "https://idp.partner.example/metadata"},
    )
    assert saml.status_code == 201, saml.text
    path = Path(app_world.runtime.broker_settings.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert body["client_secret"].encode() not in raw
    assert app_world.access_token.encode() not in raw
    assert app_world.token.encode() not in raw
    assert b"PRIVATE KEY" not in raw
    assert b"$sealed" in raw


def test_rotate_keys_reseals_with_the_first_key(app_world: AppWorld, tmp_path: Path) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    config_path = app_world.broker.config_path
    text = config_path.read_text()
    old_key = app_world.runtime.app.encryption_key[0]  # type: ignore[union-attr]
    new_key = Fernet.generate_key().decode()
    config_path.write_text(text.replace(f'"{old_key}"', f'"{new_key}", "{old_key}"'))
    assert broker_cli(["rotate-keys", "--config", str(config_path)]) == 0
    # Only the new key is needed now.
    config_path.write_text(text.replace(f'"{old_key}"', f'"{new_key}"'))
    from broker.config import load_settings
    from broker.settings.secrets import SecretBox, open_document

    settings = load_settings(config_path)
    row = app_world.runtime.storage.tenant_documents()[STORE]
    opened = open_document(row.document, SecretBox(settings.app.encryption_key))  # type: ignore[union-attr]
    assert opened["access_token"] == app_world.access_token
    with pytest.raises(Exception, match="cannot be decrypted"):
        open_document(row.document, SecretBox([old_key]))


def test_two_admins_editing_at_once_both_keep_their_change(app_world: AppWorld) -> None:
    bodies = {}
    for n in range(6):
        bodies[f"c{n}"] = {
            "type": "saml",
            "idp_metadata_url": f"https://idp{n}.example/metadata",
        }
    start = threading.Barrier(len(bodies))
    statuses: list[int] = []

    def put(key: str) -> None:
        start.wait()
        statuses.append(app_world.api("PUT", f"/connections/{key}", json=bodies[key]).status_code)

    threads = [threading.Thread(target=put, args=(key,)) for key in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * len(bodies)
    listed = app_world.api("GET", "/connections").json()["connections"]
    assert sorted(c["key"] for c in listed) == sorted(bodies)


def test_settings_are_patched_with_the_same_rules(app_world: AppWorld) -> None:
    patched = app_world.api("PATCH", "/settings", json={"default_redirect": "/orders.php"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["default_redirect"] == "/orders.php"
    assert app_world.access_token not in patched.text
    assert "access_token" not in patched.json()
    bad = app_world.api(
        "PATCH", "/settings", json={"default_redirect": "https://evil.example/", "store_hash": "x"}
    )
    assert bad.status_code == 422
    assert {e["key"] for e in bad.json()["errors"]} == {"store_hash"}
    bad = app_world.api("PATCH", "/settings", json={"default_redirect": "https://evil.example/"})
    assert [e["key"] for e in bad.json()["errors"]] == ["default_redirect"]
    assert app_world.api("GET", "/settings").json()["default_redirect"] == "/orders.php"
    assert app_world.api("PATCH", "/settings", content="not json").status_code == 400


def test_the_audit_is_filtered(app_world: AppWorld, browser_http: httpx.Client) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    sign_in(browser_http, app_world.broker.url, "alice@example.com", path=f"/{STORE}/login/corp")
    entries = app_world.api("GET", "/audit", params={"limit": 10}).json()["entries"]
    assert entries
    assert all(e["store"] == STORE for e in entries)
    sign_ins = app_world.api("GET", "/audit", params={"event": "signin"}).json()["entries"]
    assert sign_ins
    assert {e["event"] for e in sign_ins} == {"signin"}
    assert app_world.api("GET", "/audit", params={"limit": "lots"}).status_code == 422
    future = app_world.api("GET", "/audit", params={"since": 2**40}).json()
    assert future == {"entries": []}


def test_connection_test_reports_what_the_idp_offers(app_world: AppWorld) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    report = app_world.api("POST", "/connections/corp/test").json()
    assert report["ok"] is True, report
    assert {c["name"] for c in report["checks"]} >= {"discovery", "algorithms", "signing keys"}
    assert report["facts"]["redirect_uri"] == f"{app_world.broker.url}/{STORE}/oidc/corp/callback"
    assert any("plain http" in w for w in report["warnings"])

    broken = {"type": "saml", "idp_metadata_url": "http://127.0.0.1:9/metadata"}
    assert app_world.api("PUT", "/connections/down", json=broken).status_code == 201
    report = app_world.api("POST", "/connections/down/test").json()
    assert report["ok"] is False
    assert report["checks"][0]["name"] == "metadata"
    assert query("http://x/?a=b") == {"a": "b"}


def _admin_ctx(world: AppWorld) -> str:
    from broker.admin.sessions import AdminSessions

    sessions = AdminSessions(world.runtime.broker_settings.secret_key, minutes=60)
    return sessions.open(STORE, 1).token


def test_a_test_sign_in_shows_what_would_happen_and_changes_nothing(
    app_world: AppWorld, browser_http: httpx.Client
) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    ctx = _admin_ctx(app_world)
    start = browser_http.get(
        f"{app_world.broker.url}/{STORE}/admin/connections/corp/trial", params={"ctx": ctx}
    )
    assert start.status_code == 302
    page = browser_http.get(start.headers["location"])
    answer = browser_http.post(
        start.headers["location"], data={"email": "alice@example.com", "password": "password"}
    )
    assert page.status_code == 200
    assert answer.status_code == 302
    flow_cookies = [c for c in browser_http.cookies.jar if c.name.startswith("broker_flow_")]
    assert len(flow_cookies) == 1
    shown = browser_http.get(answer.headers["location"])
    assert shown.status_code == 200, shown.text
    assert 'data-outcome="create"' in shown.text
    assert "alice@example.com" in shown.text
    # Only the flow's cookie is cleared: no session, no storefront cookie is set.
    set_cookies = shown.headers.get_list("set-cookie")
    assert [c.split("=")[0] for c in set_cookies] == [c.name for c in flow_cookies]
    assert all("Max-Age=0" in c for c in set_cookies)
    # Nothing happened: no customer, no link, no storefront sign-in.
    assert app_world.sandbox.state.customers(STORE) == []
    assert app_world.runtime.storage.links_for_customer(STORE, 1) == []
    assert app_world.sandbox.state.logins(STORE) == []
    events = [e.event for e in app_world.runtime.storage.search_audit(STORE)]
    assert "admin.test_signin" in events
    assert "signin" not in events

    # Once alice has really signed in, the test says she would follow her link.
    outcome = sign_in(
        browser_http, app_world.broker.url, "alice@example.com", path=f"/{STORE}/login/corp"
    )
    assert outcome.status == 302
    start = browser_http.get(
        f"{app_world.broker.url}/{STORE}/admin/connections/corp/trial", params={"ctx": ctx}
    )
    answer = browser_http.post(
        start.headers["location"], data={"email": "alice@example.com", "password": "password"}
    )
    assert 'data-outcome="signin"' in browser_http.get(answer.headers["location"]).text


def test_only_an_admin_can_start_a_test_sign_in(app_world: AppWorld) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    url = f"{app_world.broker.url}/{STORE}/admin/connections/corp/trial"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, params={"ctx": "forged.token.value"}).status_code == 401
    elsewhere = f"{app_world.broker.url}/filed/admin/connections/corp/trial"
    assert httpx.get(elsewhere, params={"ctx": _admin_ctx(app_world)}).status_code == 401
    # An admin removed by the store loses it at once.
    app_world.runtime.storage.remove_admin_user(STORE, 1)
    assert httpx.get(url, params={"ctx": _admin_ctx(app_world)}).status_code == 401


def _admin_post(world: AppWorld, path: str, ctx: str, **fields: str) -> httpx.Response:
    from broker.admin.sessions import csrf_for

    data = {"ctx": ctx, "csrf": csrf_for(ctx), **fields}
    return httpx.post(f"{world.broker.url}/{STORE}/admin{path}", data=data)


def test_one_click_puts_the_sign_in_link_on_the_storefront(app_world: AppWorld) -> None:
    ctx = _admin_ctx(app_world)
    added = _admin_post(app_world, "/storefront/scripts", ctx)
    assert added.status_code == 200, added.text
    assert "Added 2 script(s)" in added.text
    again = _admin_post(app_world, "/storefront/scripts", ctx)
    assert "The scripts were there." in again.text
    scripts = httpx.get(f"{app_world.sandbox.url}/_sandbox/stores/{STORE}/scripts").json()
    rows = scripts["data"] if isinstance(scripts, dict) else scripts
    assert sorted(s["kind"] for s in rows) == ["script_tag", "src"]
    assert all(s["auto_uninstall"] for s in rows)
    page = httpx.get(f"{app_world.sandbox.storefront(STORE)}/login.php").text
    assert f"{app_world.broker.url}/{STORE}/storefront.js" in page
    assert f"{app_world.broker.url}/{STORE}/login" in page

    removed = _admin_post(app_world, "/storefront/scripts/remove", ctx)
    assert "Removed 2 script(s)" in removed.text
    assert f"{STORE}/storefront.js" not in httpx.get(app_world.sandbox.storefront(STORE)).text


def test_admin_forms_refuse_a_missing_csrf_value_or_another_origin(app_world: AppWorld) -> None:
    ctx = _admin_ctx(app_world)
    url = f"{app_world.broker.url}/{STORE}/admin/tokens"
    assert httpx.post(url, data={"ctx": ctx}).status_code == 403
    assert httpx.post(url, data={"ctx": ctx, "csrf": "0" * 32}).status_code == 403
    from broker.admin.sessions import csrf_for

    foreign = httpx.post(
        url,
        data={"ctx": ctx, "csrf": csrf_for(ctx)},
        headers={"Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    # The session token in the URL does not count for a POST: it must be in the form.
    assert httpx.post(url, params={"ctx": ctx}, data={"csrf": csrf_for(ctx)}).status_code == 401
    assert app_world.runtime.storage.list_api_tokens(STORE, "admin")[1:] == []
    made = _admin_post(app_world, "/tokens", ctx, label="ci")
    assert made.status_code == 200
    assert len(app_world.runtime.storage.list_api_tokens(STORE, "admin")) == 2


def test_the_connection_form_binds_b2b_companies_with_the_same_rules(app_world: AppWorld) -> None:
    ctx = _admin_ctx(app_world)
    body = app_world.oidc_body()
    form = {
        "type": "oidc",
        "key": "corp",
        "issuer": body["issuer"],
        "client_id": body["client_id"],
        "client_secret": body["client_secret"],
        "link": "confirm",
        "jit": "on",
        "b2b": '{"companies_by_domain": {"globex.com": 101}}',
    }
    refused = _admin_post(app_world, "/connections/new", ctx, **form)
    assert refused.status_code == 200
    assert 'id="form-errors"' in refused.text
    assert "needs the store&#39;s [b2b] table" in refused.text
    assert app_world.api("GET", "/connections").json() == {"connections": []}

    b2b = {
        "access_token": "b2b-" + secrets.token_hex(8),
        "api_url": app_world.sandbox.url,
        "companies_by_domain": {"initech.com": 5},
    }
    patched = app_world.api("PATCH", "/settings", json={"b2b": b2b})
    assert patched.status_code == 200, patched.text
    saved = _admin_post(app_world, "/connections/new", ctx, **form)
    assert "Saved the connection corp." in saved.text
    stored = app_world.api("GET", "/connections/corp").json()
    assert stored["b2b"]["companies_by_domain"] == {"globex.com": 101}
    assert b2b["access_token"] not in app_world.api("GET", "/settings").text

    broken = _admin_post(app_world, "/connections/corp", ctx, **{**form, "b2b": "{not json"})
    assert 'id="form-errors"' in broken.text
    assert app_world.api("GET", "/connections/corp").json()["b2b"] == stored["b2b"]


def test_the_audit_page_filters_by_event_and_date(app_world: AppWorld) -> None:
    from broker.storage import AuditEntry

    storage = app_world.runtime.storage
    storage.record_audit(AuditEntry(at=1_767_225_600, store=STORE, event="signin", outcome="ok"))
    storage.record_audit(AuditEntry(at=1_767_312_000, store=STORE, event="refused", outcome="x"))
    ctx = _admin_ctx(app_world)
    url = f"{app_world.broker.url}/{STORE}/admin/audit"
    day = httpx.get(url, params={"ctx": ctx, "from": "2026-01-01", "to": "2026-01-01"}).text
    assert "2026-01-01 00:00:00" in day
    assert "2026-01-02" not in day
    refused = httpx.get(url, params={"ctx": ctx, "event": "refused"}).text
    assert "2026-01-02 00:00:00" in refused
    assert "2026-01-01 00:00:00" not in refused
    assert httpx.get(url, params={"ctx": ctx, "from": "yesterday"}).status_code == 200


def test_a_connection_pointed_at_another_idp_or_deleted_loses_its_identities(
    app_world: AppWorld, browser_http: httpx.Client
) -> None:
    body = app_world.oidc_body()
    assert app_world.api("PUT", "/connections/corp", json=body).status_code == 201
    outcome = sign_in(
        browser_http, app_world.broker.url, "alice@example.com", path=f"/{STORE}/login/corp"
    )
    assert outcome.status == 302
    customer = app_world.sandbox.state.customers(STORE)[0]["id"]
    storage = app_world.runtime.storage
    assert len(storage.links_for_customer(STORE, customer)) == 1

    # The same IdP with another policy: the links stay.
    same = app_world.api("PUT", "/connections/corp", json={**body, "jit": False})
    assert same.status_code == 200
    assert "links_reset" not in same.json()
    assert len(storage.links_for_customer(STORE, customer)) == 1

    # Another IdP under the same key: its subjects must not reach the old IdP's customers.
    moved = app_world.api("PUT", "/connections/corp", json={**body, "issuer": body["issuer"] + "/"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["links_reset"] is True
    assert storage.links_for_customer(STORE, customer) == []

    assert app_world.api("PUT", "/connections/corp", json=body).status_code == 200
    sign_in(browser_http, app_world.broker.url, "alice@example.com", path=f"/{STORE}/login/corp")
    assert len(storage.links_for_customer(STORE, customer)) == 1
    assert app_world.api("DELETE", "/connections/corp").status_code == 204
    assert storage.links_for_customer(STORE, customer) == []
    events = [e.outcome for e in storage.search_audit(STORE, event="admin.identities_reset")]
    # Newest first: the delete, the way back to the first IdP, the move away from it.
    assert events == [
        "connection deleted",
        "another identity provider",
        "another identity provider",
    ]


def test_deleting_in_the_admin_asks_first(app_world: AppWorld) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    ctx = _admin_ctx(app_world)
    asked = httpx.get(
        f"{app_world.broker.url}/{STORE}/admin/connections/corp/delete", params={"ctx": ctx}
    )
    assert asked.status_code == 200
    assert 'id="confirm-delete"' in asked.text
    assert [c["key"] for c in app_world.api("GET", "/connections").json()["connections"]] == [
        "corp"
    ]
    done = _admin_post(app_world, "/connections/corp/delete", ctx)
    assert "Deleted the connection corp." in done.text
    assert app_world.api("GET", "/connections").json() == {"connections": []}


def test_saving_in_the_admin_shows_what_the_idp_offers(app_world: AppWorld) -> None:
    ctx = _admin_ctx(app_world)
    body = app_world.oidc_body()
    saved = _admin_post(
        app_world,
        "/connections/new",
        ctx,
        type="oidc",
        key="corp",
        issuer=body["issuer"],
        client_id=body["client_id"],
        client_secret=body["client_secret"],
        link="confirm",
        jit="on",
    )
    assert 'id="saved-report"' in saved.text
    assert "authorization_endpoint" in saved.text
    assert f"{app_world.broker.url}/{STORE}/oidc/corp/callback" in saved.text


def test_writes_to_what_does_not_exist_are_problems(app_world: AppWorld) -> None:
    for method, path in [
        ("DELETE", "/connections/nothere"),
        ("POST", "/connections/nothere/test"),
        ("GET", "/connections/nothere"),
    ]:
        answer = app_world.api(method, path)
        assert answer.status_code == 404, (method, path)
        assert answer.headers["content-type"] == "application/problem+json"
    wrong = app_world.api("POST", "/connections")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
    bad_key = app_world.api("PUT", "/connections/Not%20A%20Key", json=app_world.oidc_body())
    assert bad_key.status_code == 422
    assert app_world.api("PUT", "/connections/corp", json=["a list"]).status_code == 422
    nowhere = httpx.get(
        f"{app_world.broker.url}/nostore/admin/api/connections",
        headers={"Authorization": f"Bearer {app_world.token}"},
    )
    assert nowhere.status_code == 404
    assert app_world.api("GET", "/connections").json() == {"connections": []}


def test_scim_is_set_up_from_the_admin(app_world: AppWorld) -> None:
    body = app_world.oidc_body(scim={"enabled": True})
    assert app_world.api("PUT", "/connections/corp", json=body).status_code == 201
    ctx = _admin_ctx(app_world)
    page = _admin_post(app_world, "/connections/corp/scim-token", ctx)
    assert page.status_code == 200
    token = re.search(r'id="scim-token">([^<]+)<', page.text)
    assert token is not None
    base = f"{app_world.broker.url}/{STORE}/scim/corp/v2"
    assert base in page.text
    listed = httpx.get(f"{base}/Users", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert listed.status_code == 200
    assert listed.json()["totalResults"] == 0
    # The admin token is not a SCIM token.
    assert (
        httpx.get(
            f"{base}/Users", headers={"Authorization": f"Bearer {app_world.token}"}
        ).status_code
        == 401
    )


def _idp_metadata(entity: str, *, days: int) -> str:
    import base64
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expiring-idp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{der}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://idp.partner.example/sso"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


def test_a_saml_test_shows_the_idps_certificate_and_warns_before_it_expires(
    app_world: AppWorld,
) -> None:
    body = {
        "type": "saml",
        "idp_metadata_xml": _idp_metadata("https://idp.partner.example", days=10),
    }
    assert app_world.api("PUT", "/connections/partner", json=body).status_code == 201
    report = app_world.api("POST", "/connections/partner/test").json()
    assert report["ok"] is True, report
    [cert] = report["facts"]["certificates"]
    assert cert["subject"] == "CN=expiring-idp"
    assert any("expires in" in w for w in report["warnings"])


def test_an_installed_store_maps_staff_groups_with_the_token_sealed(app_world: AppWorld) -> None:
    assert app_world.api("PUT", "/connections/corp", json=app_world.oidc_body()).status_code == 201
    token = secrets.token_urlsafe(24)
    staff = {
        "account_uuid": "5a1e0c6e-2f4b-4c1d-9e8a-0b7c6d5e4f3a",
        "account_token": token,
        "groups": ["BC Admins"],
        "connections": ["corp"],
    }
    unknown = app_world.api("PATCH", "/settings", json={"staff": {**staff, "connections": ["x"]}})
    assert unknown.status_code == 422
    assert [e["key"] for e in unknown.json()["errors"]] == ["staff.connections"]
    patched = app_world.api("PATCH", "/settings", json={"staff": staff})
    assert patched.status_code == 200, patched.text
    assert patched.json()["staff"]["groups"] == ["BC Admins"]
    assert token not in patched.text
    assert app_world.runtime.store(STORE).staff is not None
    status = app_world.api("GET", "/staff").json()
    assert (status["enabled"], status["pending"]) == (True, [])
    app_world.runtime.storage.enqueue_staff(
        STORE, "add_to_store", "alice@example.com", user_id=None, now=1_767_225_600
    )
    page = httpx.get(
        f"{app_world.broker.url}/{STORE}/admin/staff", params={"ctx": _admin_ctx(app_world)}
    )
    assert page.status_code == 200
    assert "Members of <strong>BC Admins</strong> through" in page.text
    assert "<td>Add to the store</td><td>alice@example.com</td>" in page.text
    assert token not in page.text
    path = Path(app_world.runtime.broker_settings.database_url.removeprefix("sqlite:///"))
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert token.encode() not in raw
