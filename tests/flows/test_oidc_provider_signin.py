"""Full sign-in against a real third-party OpenID provider (npm ``oidc-provider``), with the
broker run as operators run it: ``broker serve --config FILE`` (gunicorn, two workers).

Two stores in one config file: ``acme`` uses a confidential client (client_secret_basic),
``beta`` a public client (PKCE only). What the sandbox store saw is the proof.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Sandbox
from tests.support.flows import Outcome, page_field, start_login, visit_storefront
from tests.support.oidc_provider import OidcProvider, complete_login, start_oidc_provider
from tests.support.serve import broker_serve, free_port

ACCOUNTS = {
    "alice": {
        "email": "alice@corp.example",
        "email_verified": True,
        "given_name": "Alice",
        "family_name": "Martin",
        "groups": ["buyers"],
    },
    "eve": {"email": "eve@corp.example", "email_verified": False, "name": "Eve Unverified"},
}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The sandbox with two stores, oidc-provider with two clients, the broker under gunicorn."""
    from broker.sandbox.store import create_sandbox_app
    from tests.support.servers import serve_in_thread

    workdir = tmp_path_factory.mktemp("deployment")
    port = free_port()
    broker_url = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(24)
    clients = [
        {
            "client_id": "acme-broker",
            "client_secret": secret,
            "redirect_uris": [f"{broker_url}/acme/oidc/corp/callback"],
            "token_endpoint_auth_method": "client_secret_basic",
        },
        {
            "client_id": "beta-broker",
            "redirect_uris": [f"{broker_url}/beta/oidc/corp/callback"],
            "token_endpoint_auth_method": "none",
        },
    ]
    sandbox_app = create_sandbox_app()
    with (
        serve_in_thread(sandbox_app) as sandbox_server,
        start_oidc_provider(clients=clients, accounts=ACCOUNTS) as provider,
    ):
        sandbox = Sandbox(url=sandbox_server.url, app=sandbox_app)
        acme = sandbox.add_store("acme1")
        beta = sandbox.add_store("beta1")
        env = {
            "BROKER_SECRET_KEY": secrets.token_urlsafe(32),
            "ACME_TOKEN": acme.access_token,
            "ACME_SECRET": acme.client_secret,
            "BETA_TOKEN": beta.access_token,
            "BETA_SECRET": beta.client_secret,
            "CORP_SECRET": secret,
        }

        def document(base_url: str) -> dict[str, Any]:
            assert base_url == broker_url
            return _config(base_url, workdir, sandbox, provider, acme.client_id, beta.client_id)

        with broker_serve(workdir, document, env=env, port=port):
            yield {
                "broker": broker_url,
                "sandbox": sandbox,
                "provider": provider,
                "log": workdir / "server.log",
            }


def _config(
    broker_url: str,
    workdir: Path,
    sandbox: Sandbox,
    provider: OidcProvider,
    acme_client_id: str,
    beta_client_id: str,
) -> dict[str, Any]:
    """The operator's file, secrets as env: references."""
    return {
        "broker": {
            "base_url": broker_url,
            "secret_key": "env:BROKER_SECRET_KEY",
            "database_url": f"sqlite:///{workdir / 'broker.db'}",
        },
        "stores": {
            "acme": {
                "store_hash": "acme1",
                "api_url": sandbox.url,
                "access_token": "env:ACME_TOKEN",
                "client_id": acme_client_id,
                "client_secret": "env:ACME_SECRET",
                "storefront_url": sandbox.storefront("acme1"),
                "connections": {
                    "corp": {
                        "type": "oidc",
                        "issuer": provider.issuer,
                        "client_id": "acme-broker",
                        "client_secret": "env:CORP_SECRET",
                        "scopes": ["openid", "email", "profile", "groups"],
                        "customer_groups_by_group": {"buyers": 2},
                    }
                },
            },
            "beta": {
                "store_hash": "beta1",
                "api_url": sandbox.url,
                "access_token": "env:BETA_TOKEN",
                "client_id": beta_client_id,
                "client_secret": "env:BETA_SECRET",
                "storefront_url": sandbox.storefront("beta1"),
                "connections": {
                    "corp": {"type": "oidc", "issuer": provider.issuer, "client_id": "beta-broker"}
                },
            },
        },
    }


def sign_in(deployment: dict[str, object], store: str, login: str) -> Outcome:
    broker = str(deployment["broker"])
    http = httpx.Client(follow_redirects=False, timeout=20)
    authorize = start_login(http, broker, f"/{store}/login/corp")
    callback = complete_login(
        http, authorize, login, stop_at=f"{broker}/{store}/oidc/corp/callback"
    )
    outcome = Outcome(http.get(callback))
    outcome.response.extensions["client"] = http
    return outcome


def landing(outcome: Outcome) -> httpx.Response:
    http: httpx.Client = outcome.response.extensions["client"]
    return visit_storefront(http, outcome.location)


def test_new_then_returning_shopper_then_second_store(deployment: dict[str, object]) -> None:
    sandbox = deployment["sandbox"]
    assert isinstance(sandbox, Sandbox)

    first = sign_in(deployment, "acme", "alice")
    assert first.status == 302, first.response.text
    page = landing(first)
    assert page_field(page.text, "customer-email") == "alice@corp.example"
    [created] = sandbox.state.customers("acme1")
    assert (created["first_name"], created["last_name"], created["customer_group_id"]) == (
        "Alice",
        "Martin",
        2,
    )

    sandbox.state.clear_requests("acme1")
    again = sign_in(deployment, "acme", "alice")
    assert page_field(landing(again).text, "customer-id") == str(created["id"])
    assert len(sandbox.state.customers("acme1")) == 1
    assert sandbox.state.requests("acme1") == [], "a linked shopper costs no API request"

    other = sign_in(deployment, "beta", "alice")  # the public client, another store
    page = landing(other)
    assert page_field(page.text, "customer-email") == "alice@corp.example"
    assert len(sandbox.state.customers("beta1")) == 1
    assert [login["ok"] for login in sandbox.state.logins("beta1")] == [True]


def test_the_server_log_names_no_shopper(deployment: dict[str, object]) -> None:
    # A first sign-in looks the customer up by e-mail: GET /v3/customers?email:in=... The
    # HTTP client's own request lines (httpx logs each at INFO) would carry that query.
    outcome = sign_in(deployment, "acme", "alice")
    assert outcome.status == 302, outcome.response.text
    log = Path(str(deployment["log"])).read_text()
    assert '"event": "signin.ok"' in log, "the sign-in itself is logged"
    for shown in ("alice@corp.example", "alice%40corp.example", "HTTP Request:"):
        assert shown not in log


def test_unverified_email_from_a_real_provider_is_refused(deployment: dict[str, object]) -> None:
    sandbox = deployment["sandbox"]
    assert isinstance(sandbox, Sandbox)
    before = len(sandbox.state.customers("acme1"))
    outcome = sign_in(deployment, "acme", "eve")
    assert outcome.status == 403
    assert outcome.error_ref
    assert len(sandbox.state.customers("acme1")) == before
