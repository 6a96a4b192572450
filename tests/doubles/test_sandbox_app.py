"""The sandbox BigCommerce as an app meets it, over real HTTP: install (auth callback and token
exchange), signed payloads, uninstall and remove_user callbacks, the control-panel page, the
Scripts API and customer groups.

One sandbox server and one app receiver serve the module; each test gets a fresh sandbox app
with a settable clock. The receiver stands for the app's callbacks: it records every request
and answers 200.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from werkzeug.wrappers import Request, Response

from broker.sandbox.store import SandboxState, SandboxStore, create_sandbox_app
from tests.support.clock import Clock
from tests.support.serve import free_port
from tests.support.servers import serve_in_thread

HASH = "app123"
STORE_TOKEN = "store-token-0123456789"
STORE_CLIENT = "store-client-id"
STORE_SECRET = "store-client-secret-0123456789abcdef"
APP_CLIENT = "sso-broker-app"
APP_SECRET = "app-client-secret-0123456789abcdef012345"
SCOPES = ["store_v2_customers", "store_v2_customers_login", "store_content_checkout"]
START = 1_700_000_000.0


# -- servers -----------------------------------------------------------------------------------


@dataclass
class Receiver:
    """The app's side: every request it got, answered 200 with a small JSON body."""

    url: str
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        req = Request(environ)
        with self.lock:
            self.seen.append((req.path, dict(req.args)))
        return Response('{"ok": true}', 200, mimetype="application/json")(environ, start_response)

    def take(self) -> list[tuple[str, dict[str, str]]]:
        with self.lock:
            seen, self.seen = self.seen, []
            return seen


class SwappableApp:
    """One server for the module; a fresh sandbox app per test."""

    app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, SwappableApp, Receiver]]:
    target = SwappableApp()
    receiver = Receiver(url="")
    with (
        serve_in_thread(target) as sandbox_server,
        serve_in_thread(receiver, port=free_port()) as app_server,
    ):
        receiver.url = app_server.url
        yield sandbox_server.url, target, receiver


@dataclass
class World:
    url: str
    state: SandboxState
    clock: Clock
    receiver: Receiver
    http: httpx.Client  # the sandbox's origin, no redirects followed

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/stores/{HASH}", headers={"X-Auth-Token": token}, timeout=5
        )

    def control(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(f"/_sandbox{path}", json=body if body is not None else {})

    def app_control(self, action: str, body: Any = None) -> httpx.Response:
        return self.control(f"/stores/{HASH}/apps/{APP_CLIENT}/{action}", body)


@pytest.fixture
def world(servers: tuple[str, SwappableApp, Receiver]) -> Iterator[World]:
    url, target, receiver = servers
    clock = Clock(START)
    app = create_sandbox_app(clock=clock)
    state: SandboxState = app.extensions["sandbox"]
    state.add_store(
        SandboxStore(
            store_hash=HASH,
            access_token=STORE_TOKEN,
            client_id=STORE_CLIENT,
            client_secret=STORE_SECRET,
            channel_ids=(1, 2),
            name="App shop",
        )
    )
    target.app = app
    receiver.take()
    with httpx.Client(base_url=url, timeout=10) as http:
        registered = http.post(
            "/_sandbox/apps",
            json={
                "client_id": APP_CLIENT,
                "client_secret": APP_SECRET,
                "callback_base": receiver.url + "/",
                "scopes": SCOPES,
            },
        )
        assert registered.status_code == 201, registered.text
        yield World(url, state, clock, receiver, http)


# -- helpers -----------------------------------------------------------------------------------


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def exchange_form(auth_url: str, receiver: Receiver, **changes: str) -> dict[str, str]:
    params = query(auth_url)
    form = {
        "client_id": APP_CLIENT,
        "client_secret": APP_SECRET,
        "code": params["code"],
        "context": params["context"],
        "scope": params["scope"],
        "grant_type": "authorization_code",
        "redirect_uri": f"{receiver.url}/bigcommerce/auth",
    }
    form.update(changes)
    return form


def install(world: World, user_id: int | None = None) -> str:
    """Install the app (as ``user_id``, default the owner); its access token."""
    body = {} if user_id is None else {"user_id": user_id}
    auth_url = world.app_control("install", body).json()["auth_url"]
    answer = world.http.post("/oauth2/token", data=exchange_form(auth_url, world.receiver))
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def verified_claims(token: str, secret: str = APP_SECRET) -> dict[str, Any]:
    decoded = jwt.decode(token, OctKey.import_key(secret), algorithms=["HS256"])
    assert decoded.header == {"typ": "JWT", "alg": "HS256"}
    return dict(decoded.claims)


def login_jwt(customer_id: int, *, iss: str = APP_CLIENT, secret: str = APP_SECRET) -> str:
    claims = {
        "iss": iss,
        "iat": int(START),
        "jti": str(uuid.uuid4()),
        "operation": "customer_login",
        "store_hash": HASH,
        "customer_id": customer_id,
    }
    header = {"typ": "JWT", "alg": "HS256"}
    return jwt.encode(header, claims, OctKey.import_key(secret), default_type=None)


def script(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "SSO button",
        "kind": "src",
        "src": "https://broker.test/sso.js",
        "location": "footer",
        "visibility": "storefront",
    }
    body.update(fields)
    return body


# -- install and the token exchange ------------------------------------------------------------


def test_install_exchange_and_the_token_works_on_the_api(world: World) -> None:
    world.control(f"/stores/{HASH}/users", {"email": "clerk@example.com"})
    auth_url = world.app_control("install").json()["auth_url"]
    assert auth_url.startswith(f"{world.receiver.url}/bigcommerce/auth?")
    params = query(auth_url)
    assert params["context"] == f"stores/{HASH}"
    assert params["scope"] == " ".join(SCOPES)
    assert re.fullmatch(r"[0-9a-f-]{36}", params["account_uuid"])

    answer = world.http.post("/oauth2/token", data=exchange_form(auth_url, world.receiver))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "scope", "user", "owner", "context", "account_uuid"}
    assert body["context"] == f"stores/{HASH}"
    assert body["scope"] == " ".join(SCOPES)
    assert body["account_uuid"] == params["account_uuid"]
    owner = {"id": 1, "username": f"owner@{HASH}.example", "email": f"owner@{HASH}.example"}
    assert body["user"] == body["owner"] == owner

    with world.api(body["access_token"]) as as_app, world.api(STORE_TOKEN) as as_store:
        assert as_app.get("/v3/customers").status_code == 200
        assert as_store.get("/v3/customers").status_code == 200
    with world.api("not-a-token") as nobody:
        assert nobody.get("/v3/customers").status_code == 401

    status = world.http.get(f"/_sandbox/stores/{HASH}/apps/{APP_CLIENT}").json()
    assert (status["installed"], status["user_id"]) == (True, 1)
    replay = world.http.post("/oauth2/token", data=exchange_form(auth_url, world.receiver))
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "access_token" not in replay.text


def test_refused_exchanges_leave_the_code_usable_and_a_used_code_stays_refused(
    world: World,
) -> None:
    auth_url = world.app_control("install").json()["auth_url"]
    cases = {
        "invalid_client": {"client_secret": "wrong-secret"},
        "invalid_grant": {"redirect_uri": f"{world.receiver.url}/bigcommerce/auth/"},
        "unsupported_grant_type": {"grant_type": "client_credentials"},
        "invalid_scope": {"scope": "store_v2_customers"},
    }
    for error, change in cases.items():
        refused = world.http.post(
            "/oauth2/token", data=exchange_form(auth_url, world.receiver, **change)
        )
        assert refused.status_code == 400, change
        assert refused.json()["error"] == error
        assert refused.json()["error_description"]
    wrong_store = exchange_form(auth_url, world.receiver, context="stores/other")
    assert world.http.post("/oauth2/token", data=wrong_store).json()["error"] == "invalid_grant"
    unknown = exchange_form(auth_url, world.receiver, code="made-up")
    assert world.http.post("/oauth2/token", data=unknown).json()["error"] == "invalid_grant"
    missing = {k: v for k, v in exchange_form(auth_url, world.receiver).items() if k != "scope"}
    assert world.http.post("/oauth2/token", data=missing).json()["error"] == "invalid_request"

    good = exchange_form(auth_url, world.receiver)
    assert world.http.post("/oauth2/token", data=good).status_code == 200
    for _ in range(2):
        again = world.http.post("/oauth2/token", data=good)
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
    log = world.http.get(f"/_sandbox/apps/{APP_CLIENT}/exchanges").json()
    assert [e["ok"] for e in log].count(True) == 1
    assert APP_SECRET not in str(log)


def test_a_code_expires_after_ten_minutes_on_the_sandbox_clock(world: World) -> None:
    late = world.app_control("install").json()["auth_url"]
    in_time = world.app_control("install").json()["auth_url"]
    world.clock.advance(599)
    assert world.http.post("/oauth2/token", data=exchange_form(in_time, world.receiver)).is_success
    world.clock.advance(1)
    expired = world.http.post("/oauth2/token", data=exchange_form(late, world.receiver))
    assert expired.status_code == 400
    assert "expired" in expired.json()["error_description"]


def test_the_exchange_also_takes_json(world: World) -> None:
    auth_url = world.app_control("install").json()["auth_url"]
    answer = world.http.post("/oauth2/token", json=exchange_form(auth_url, world.receiver))
    assert answer.status_code == 200


def test_a_reinstall_issues_a_new_token_and_revokes_the_old_one(world: World) -> None:
    first = install(world)
    second = install(world)
    assert first != second
    with world.api(first) as old, world.api(second) as new:
        assert old.get("/v3/customers").status_code == 401
        assert new.get("/v3/customers").status_code == 200


def test_an_install_by_another_user_names_them_and_grants_them_the_app(world: World) -> None:
    clerk = world.control(f"/stores/{HASH}/users", {"id": 7, "email": "clerk@example.com"})
    assert clerk.json() == {"id": 7, "email": "clerk@example.com"}
    auth_url = world.app_control("install", {"user_id": 7}).json()["auth_url"]
    body = world.http.post("/oauth2/token", data=exchange_form(auth_url, world.receiver)).json()
    assert body["user"] == {"id": 7, "username": "clerk@example.com", "email": "clerk@example.com"}
    assert body["owner"]["id"] == 1
    assert world.app_control("load", {"user_id": 7}).status_code == 200


# -- signed payloads, access, uninstall --------------------------------------------------------


def test_load_payload_is_signed_with_the_app_secret_and_has_the_claims(world: World) -> None:
    assert world.app_control("load").status_code == 403  # not installed yet
    install(world)
    load_url = world.app_control("load").json()["load_url"]
    assert load_url.startswith(f"{world.receiver.url}/bigcommerce/load?signed_payload_jwt=")
    claims = verified_claims(query(load_url)["signed_payload_jwt"])
    assert claims["aud"] == APP_CLIENT
    assert claims["iss"] == "bc"
    assert claims["sub"] == f"stores/{HASH}"
    assert claims["iat"] == claims["nbf"] == int(START)
    assert claims["exp"] == claims["nbf"] + 24 * 3600
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])
    owner_email = f"owner@{HASH}.example"
    assert claims["user"] == {"id": 1, "email": owner_email, "locale": "en-US"}
    assert claims["owner"] == {"id": 1, "email": owner_email}
    assert (claims["url"], claims["channel_id"]) == ("/", None)
    with pytest.raises(JoseError):
        verified_claims(query(load_url)["signed_payload_jwt"], secret=STORE_SECRET)

    deep = world.app_control("load", {"url": "/connections/okta", "channel_id": 2}).json()
    deep_claims = verified_claims(query(deep["load_url"])["signed_payload_jwt"])
    assert (deep_claims["url"], deep_claims["channel_id"]) == ("/connections/okta", 2)
    assert deep_claims["jti"] != claims["jti"]


def test_only_the_owner_and_granted_users_get_a_load_payload(world: World) -> None:
    install(world)
    world.control(f"/stores/{HASH}/users", {"id": 2, "email": "clerk@example.com"})
    assert world.app_control("load", {"user_id": 2}).status_code == 403
    assert world.app_control("load", {"user_id": 99}).status_code == 404
    assert world.app_control("grant", {"user_id": 2}).json()["granted_user_ids"] == [2]
    load_url = world.app_control("load", {"user_id": 2}).json()["load_url"]
    claims = verified_claims(query(load_url)["signed_payload_jwt"])
    assert claims["user"] == {"id": 2, "email": "clerk@example.com", "locale": "en-US"}

    revoked = world.app_control("revoke", {"user_id": 2})
    assert revoked.json() == {"status": 200, "body": '{"ok": true}'}
    [(path, args)] = world.receiver.take()
    assert path == "/bigcommerce/remove_user"
    removed = verified_claims(args["signed_payload_jwt"])
    assert removed["user"]["id"] == 2
    assert removed["owner"]["id"] == 1
    assert world.app_control("load", {"user_id": 2}).status_code == 403
    assert world.app_control("revoke", {"user_id": 1}).status_code == 422


def test_uninstall_calls_the_app_revokes_the_token_and_drops_auto_uninstall_scripts(
    world: World,
) -> None:
    token = install(world)
    with world.api(token) as as_app:
        kept = as_app.post("/v3/content/scripts", json=script(name="kept")).json()["data"]
        dropped = as_app.post(
            "/v3/content/scripts", json=script(name="dropped", auto_uninstall=True)
        ).json()["data"]
    world.receiver.take()

    outcome = world.app_control("uninstall")
    assert outcome.status_code == 200
    assert outcome.json() == {"status": 200, "body": '{"ok": true}'}
    [(path, args)] = world.receiver.take()
    assert path == "/bigcommerce/uninstall"
    claims = verified_claims(args["signed_payload_jwt"])
    assert (claims["sub"], claims["user"]["id"]) == (f"stores/{HASH}", 1)

    with world.api(token) as as_app:
        assert as_app.get("/v3/customers").status_code == 401
    uuids = [s["uuid"] for s in world.http.get(f"/_sandbox/stores/{HASH}/scripts").json()]
    assert uuids == [kept["uuid"]]
    assert dropped["uuid"] not in uuids
    assert world.app_control("load").status_code == 403
    assert world.app_control("uninstall").status_code == 403
    calls = world.http.get(f"/_sandbox/apps/{APP_CLIENT}/callbacks").json()
    assert [(c["kind"], c["status"]) for c in calls] == [("uninstall", 200)]


def test_an_unreachable_app_is_reported_not_raised(world: World) -> None:
    secret, base = "dead-secret-0123456789abcdef0123", f"http://127.0.0.1:{free_port()}"
    dead = {
        "client_id": "dead-app",
        "client_secret": secret,
        "callback_base": base,
        "scopes": SCOPES,
    }
    assert world.control("/apps", dead).status_code == 201
    assert world.control("/apps", dead).status_code == 409
    auth_url = world.control(f"/stores/{HASH}/apps/dead-app/install").json()["auth_url"]
    form = exchange_form(
        auth_url,
        world.receiver,
        client_id="dead-app",
        client_secret=secret,
        redirect_uri=f"{base}/bigcommerce/auth",
    )
    assert world.http.post("/oauth2/token", data=form).status_code == 200
    outcome = world.control(f"/stores/{HASH}/apps/dead-app/uninstall").json()
    assert outcome["status"] is None
    assert outcome["error"]
    assert world.state.is_installed(HASH, "dead-app") is False


def test_minted_payloads_bend_what_negative_tests_need(world: World) -> None:
    minted = world.control(
        f"/apps/{APP_CLIENT}/payload",
        {"store_hash": HASH, "user_id": 1, "kind": "load", "expires_in": -10, "aud": "other"},
    )
    claims = verified_claims(minted.json()["signed_payload_jwt"])
    assert claims["exp"] == claims["nbf"] - 10
    assert claims["aud"] == "other"
    forged = world.control(
        f"/apps/{APP_CLIENT}/payload",
        {"store_hash": HASH, "user_id": 1, "kind": "uninstall", "secret": "s" * 32},
    ).json()["signed_payload_jwt"]
    assert verified_claims(forged, secret="s" * 32)["sub"] == f"stores/{HASH}"
    with pytest.raises(JoseError):
        verified_claims(forged)
    bad_kind = {"store_hash": HASH, "user_id": 1, "kind": "install"}
    assert world.control(f"/apps/{APP_CLIENT}/payload", bad_kind).status_code == 422
    assert world.receiver.take() == []


def test_bad_registrations_and_users_are_refused(world: World) -> None:
    base = {"client_id": "x1", "client_secret": "s", "scopes": SCOPES}
    for callback_base in ("ftp://x", "not a url", "https://x.test/?a=1"):
        answer = world.control("/apps", {**base, "callback_base": callback_base})
        assert answer.status_code == 422
    no_scopes = {**base, "callback_base": "https://x.test", "scopes": []}
    assert world.control("/apps", no_scopes).status_code == 422
    assert world.control(f"/stores/{HASH}/users", {"id": 1, "email": "a@b.c"}).status_code == 409
    assert world.control(f"/stores/{HASH}/users", {"email": "nope"}).status_code == 422
    assert world.control("/stores/nope/apps/x1/install").status_code == 404


# -- the storefront's JWTs for an installed app ------------------------------------------------


def test_login_jwts_and_current_customer_jwts_of_an_installed_app(world: World) -> None:
    customer = world.state.add_customer(HASH, email="ada@example.com")
    browser = httpx.Client(base_url=world.url, timeout=5)
    before = browser.get(f"/s/{HASH}/login/token/{login_jwt(customer['id'])}")
    assert "invalid_login" in before.headers["location"]

    install(world)
    signed_in = browser.get(f"/s/{HASH}/login/token/{login_jwt(customer['id'])}")
    assert signed_in.headers["location"] == f"/s/{HASH}/account.php"
    own = browser.get(
        f"/s/{HASH}/login/token/{login_jwt(customer['id'], iss=STORE_CLIENT, secret=STORE_SECRET)}"
    )
    assert own.headers["location"] == f"/s/{HASH}/account.php"
    crossed = browser.get(f"/s/{HASH}/login/token/{login_jwt(customer['id'], iss=STORE_CLIENT)}")
    assert "invalid_login" in crossed.headers["location"]

    current = browser.get(f"/s/{HASH}/customer/current.jwt", params={"app_client_id": APP_CLIENT})
    assert current.status_code == 200
    claims = verified_claims(current.text)
    assert claims["aud"] == claims["application_id"] == APP_CLIENT
    assert claims["customer"]["id"] == customer["id"]
    mine = browser.get(f"/s/{HASH}/customer/current.jwt", params={"app_client_id": STORE_CLIENT})
    assert verified_claims(mine.text, secret=STORE_SECRET)["aud"] == STORE_CLIENT
    other = browser.get(f"/s/{HASH}/customer/current.jwt", params={"app_client_id": "other"})
    assert other.status_code == 404

    world.app_control("uninstall")
    after = browser.get(f"/s/{HASH}/login/token/{login_jwt(customer['id'])}")
    assert "invalid_login" in after.headers["location"]
    gone = browser.get(f"/s/{HASH}/customer/current.jwt", params={"app_client_id": APP_CLIENT})
    assert gone.status_code == 404
    browser.close()


# -- the control-panel page --------------------------------------------------------------------


def frame_src(html: str) -> str | None:
    match = re.search(r'<iframe id="app-frame" title="App" src="([^"]+)"', html)
    return unescape(match.group(1)) if match else None


def test_the_control_panel_page_frames_install_then_load_then_uninstalls(world: World) -> None:
    page = f"/manage/{HASH}/apps/{APP_CLIENT}"
    first = world.http.get(page)
    assert first.status_code == 200
    assert "Control panel — App shop" in first.text
    assert "set-cookie" not in first.headers
    assert "x-frame-options" not in first.headers
    install_src = frame_src(first.text)
    assert install_src is not None
    assert install_src.startswith(f"{world.receiver.url}/bigcommerce/auth?")
    second_src = frame_src(world.http.get(page).text)
    assert second_src is not None
    assert query(second_src)["code"] != query(install_src)["code"]

    form = exchange_form(install_src, world.receiver)
    assert world.http.post("/oauth2/token", data=form).status_code == 200
    installed = world.http.get(page, params={"user": 1}).text
    load_src = frame_src(installed)
    assert load_src is not None
    assert load_src.startswith(f"{world.receiver.url}/bigcommerce/load?")
    assert verified_claims(query(load_src)["signed_payload_jwt"])["user"]["id"] == 1
    assert 'id="uninstall-app"' in installed
    assert "Uninstall app" in installed

    world.control(f"/stores/{HASH}/users", {"id": 2, "email": "clerk@example.com"})
    not_granted = world.http.get(page, params={"user": 2}).text
    assert frame_src(not_granted) is None
    assert 'id="no-access"' in not_granted
    assert world.http.get(page, params={"user": 5}).status_code == 404
    assert world.http.get(f"/manage/{HASH}/apps/unknown").status_code == 404

    world.receiver.take()
    action = re.search(r'<form method="post" action="([^"]+)"', installed)
    assert action is not None
    done = world.http.post(unescape(action.group(1)))
    assert done.status_code == 303
    assert [p for p, _ in world.receiver.take()] == ["/bigcommerce/uninstall"]
    again = world.http.get(done.headers["location"]).text
    assert 'id="uninstall-notice"' in again
    # Right after an uninstall the page does not install the app again by itself.
    assert frame_src(again) is None
    assert 'id="reinstall"' in again
    src = frame_src(world.http.get(page, params={"user": 1}).text)
    assert src is not None
    assert "/bigcommerce/auth?" in src


# -- the Scripts API ---------------------------------------------------------------------------


def test_scripts_crud_belongs_to_the_app_and_renders_on_the_storefront(world: World) -> None:
    token = install(world)
    with world.api(token) as as_app, world.api(STORE_TOKEN) as as_store:
        created = as_app.post("/v3/content/scripts", json=script(load_method="defer"))
        assert created.status_code == 200
        record = created.json()["data"]
        assert record["api_client_id"] == APP_CLIENT
        assert (record["channel_id"], record["enabled"], record["auto_uninstall"]) == (
            1,
            True,
            False,
        )
        assert record["consent_category"] == "essential"
        inline = as_app.post(
            "/v3/content/scripts",
            json={
                "name": "inline",
                "kind": "script_tag",
                "html": "<script>window.sso = 1;</script>",
                "location": "head",
                "visibility": "all_pages",
            },
        ).json()["data"]
        as_app.post(
            "/v3/content/scripts",
            json=script(name="off", src="https://x.test/off.js", enabled=False),
        )
        as_app.post(
            "/v3/content/scripts",
            json=script(name="checkout", src="https://x.test/checkout.js", visibility="checkout"),
        )
        as_app.post(
            "/v3/content/scripts",
            json=script(name="ch2", src="https://x.test/ch2.js", channel_id=2),
        )

        listed = as_app.get("/v3/content/scripts", params={"limit": 2}).json()
        assert listed["meta"]["pagination"]["total"] == 5
        assert listed["meta"]["pagination"]["total_pages"] == 3
        assert len(listed["data"]) == 2
        assert as_store.get("/v3/content/scripts").json()["data"] == []
        assert as_store.get(f"/v3/content/scripts/{record['uuid']}").status_code == 404
        assert as_app.get(f"/v3/content/scripts/{record['uuid']}").json()["data"] == record

        home = world.http.get(f"/s/{HASH}/").text
        head, body = home.split("</head>", 1)
        assert "<script>window.sso = 1;</script>" in head
        assert (
            f'<script src="https://broker.test/sso.js" defer data-script-uuid="{record["uuid"]}">'
            in body
        )
        assert "off.js" not in home
        assert "checkout.js" not in home
        assert "ch2.js" not in home

        changed = as_app.put(
            f"/v3/content/scripts/{record['uuid']}",
            json={"src": "https://broker.test/sso-v2.js", "location": "head"},
        )
        assert changed.status_code == 200
        assert changed.json()["data"]["name"] == "SSO button"
        head = world.http.get(f"/s/{HASH}/login.php").text.split("</head>", 1)[0]
        assert "sso-v2.js" in head

        assert as_app.delete(f"/v3/content/scripts/{inline['uuid']}").status_code == 204
        assert as_app.delete(f"/v3/content/scripts/{inline['uuid']}").status_code == 404
        assert "window.sso" not in world.http.get(f"/s/{HASH}/").text


def test_bad_script_bodies_are_422_in_the_v3_shape(world: World) -> None:
    with world.api(STORE_TOKEN) as api:
        cases = [
            ({**script(), "colour": "red"}, "colour"),
            ({k: v for k, v in script().items() if k != "name"}, "name"),
            ({k: v for k, v in script().items() if k != "kind"}, "kind"),
            (script(src=""), "src"),
            (script(kind="script_tag"), "html"),
            (script(load_method="lazy"), "load_method"),
            (script(location="body"), "location"),
            (script(visibility="everywhere"), "visibility"),
            (script(consent_category="marketing"), "consent_category"),
            (script(channel_id=9), "channel_id"),
            (script(enabled="yes"), "enabled"),
            (script(src="javascript:alert(1)"), "src"),
        ]
        for body, key in cases:
            answer = api.post("/v3/content/scripts", json=body)
            assert answer.status_code == 422, body
            error = answer.json()
            assert set(error) >= {"status", "title", "type", "errors"}
            assert key in error["errors"], (key, error)
        assert api.post("/v3/content/scripts", json=[script()]).status_code == 422
        created = api.post("/v3/content/scripts", json=script()).json()["data"]
        assert created["api_client_id"] == STORE_CLIENT
        put = api.put(f"/v3/content/scripts/{created['uuid']}", json={"uuid": "x"})
        assert put.status_code == 422
        assert "uuid" in put.json()["errors"]
        assert world.state.scripts(HASH)[0]["src"] == "https://broker.test/sso.js"


# -- customer groups ---------------------------------------------------------------------------


def test_customer_groups_list_and_check_customers(world: World) -> None:
    with world.api(STORE_TOKEN) as api:
        assert api.get("/v2/customer_groups").status_code == 204  # V2: nothing to list
        # A store with no groups takes any customer_group_id (as stores seeded before groups).
        free = [
            {"email": "a@example.com", "first_name": "A", "last_name": "B", "customer_group_id": 5}
        ]
        assert api.post("/v3/customers", json=free).status_code == 200

        wholesale = world.control(f"/stores/{HASH}/customer_groups", {"name": "Wholesale"}).json()
        vip = world.control(
            f"/stores/{HASH}/customer_groups", {"name": "VIP", "is_default": True}
        ).json()
        listed = api.get("/v2/customer_groups")
        assert listed.status_code == 200
        assert listed.json() == [wholesale, vip]
        assert vip == {
            "id": 2,
            "name": "VIP",
            "is_default": True,
            "category_access": {"type": "all"},
            "discount_rules": [],
            "is_group_for_guests": False,
        }
        assert api.get("/v2/customer_groups/1").json()["name"] == "Wholesale"
        assert api.get("/v2/customer_groups/9").status_code == 404
        assert api.get("/v2/customer_groups", params={"page": 2}).status_code == 204

        unknown = [
            {"email": "c@example.com", "first_name": "C", "last_name": "D", "customer_group_id": 7}
        ]
        refused = api.post("/v3/customers", json=unknown)
        assert refused.status_code == 422
        assert "[0].customer_group_id" in refused.json()["errors"]
        known = [{**unknown[0], "customer_group_id": vip["id"]}]
        assert api.post("/v3/customers", json=known).status_code == 200
        moved = api.put("/v3/customers", json=[{"id": 1, "customer_group_id": 8}])
        assert moved.status_code == 422
        assert world.control(f"/stores/{HASH}/customer_groups", {"name": ""}).status_code == 422
