"""``broker demo``: the broker, a sandbox store and a development IdP, wired together locally.

Everything listens on 127.0.0.1: the broker on the chosen port, the sandbox store and the IdP
on free ports the system picks. Secrets are random per run; the database is a temporary file.
The one URL to open is the sandbox storefront, whose "Sign in with SSO" link starts it all.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from broker.app import create_app
from broker.config import parse_settings
from broker.sandbox.idp import DEFAULT_USERS, DevClient, create_idp_app
from broker.sandbox.serving import serve_in_thread
from broker.sandbox.store import SandboxStore, create_sandbox_app

HOST = "127.0.0.1"
STORE_KEY = "demo"
STORE_HASH = "demo1"
CONNECTION = "dev"


@dataclass(frozen=True)
class DemoURLs:
    storefront: str
    broker: str
    idp: str
    sandbox: str


@contextmanager
def running_demo(port: int = 5000) -> Iterator[DemoURLs]:
    """Start the three servers in threads; stop them when the block ends."""
    with ExitStack() as stack:
        sandbox_app = create_sandbox_app()
        idp_app = create_idp_app(clients=())
        sandbox_url = stack.enter_context(serve_in_thread(sandbox_app, HOST)).url
        idp_url = stack.enter_context(serve_in_thread(idp_app, HOST)).url
        broker_url = f"http://{HOST}:{port}"
        storefront = f"{sandbox_url}/s/{STORE_HASH}"

        client_id, client_secret = "demo-broker", secrets.token_urlsafe(32)
        idp_state = idp_app.extensions["dev_idp"]
        idp_state.issuer = idp_url
        idp_state.add_client(
            DevClient(
                client_id=client_id,
                client_secret=client_secret,
                redirect_uris=(f"{broker_url}/{STORE_KEY}/oidc/{CONNECTION}/callback",),
            )
        )
        store = SandboxStore(
            store_hash=STORE_HASH,
            access_token=secrets.token_urlsafe(24),
            client_id=secrets.token_hex(16),
            client_secret=secrets.token_hex(32),
            name="Demo store",
            sso_login_url=f"{broker_url}/{STORE_KEY}/login/{CONNECTION}",
        )
        sandbox_app.extensions["sandbox"].add_store(store)

        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="broker-demo-")))
        settings = parse_settings(
            {
                "broker": {
                    "base_url": broker_url,
                    "secret_key": secrets.token_urlsafe(32),
                    "database_url": f"sqlite:///{workdir / 'broker.db'}",
                },
                "stores": {
                    STORE_KEY: {
                        "store_hash": STORE_HASH,
                        "api_url": sandbox_url,
                        "access_token": store.access_token,
                        "client_id": store.client_id,
                        "client_secret": store.client_secret,
                        "storefront_url": storefront,
                        "connections": {
                            CONNECTION: {
                                "type": "oidc",
                                "display_name": "Example Corp",
                                "issuer": idp_url,
                                "client_id": client_id,
                                "client_secret": client_secret,
                                "scopes": ["openid", "email", "profile", "groups"],
                            }
                        },
                    }
                },
            },
            env={},
        )
        stack.enter_context(serve_in_thread(create_app(settings), HOST, port))
        yield DemoURLs(
            storefront=storefront + "/", broker=broker_url, idp=idp_url, sandbox=sandbox_url
        )


def run_demo(port: int = 5000) -> None:
    """Run until interrupted, printing the URL to open and the test users."""
    # werkzeug's request log would print authorization codes and login tokens.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with running_demo(port) as urls:
        users = ", ".join(u.email for u in DEFAULT_USERS)
        print(f"Storefront SSO broker demo\n\n  Open {urls.storefront}\n", flush=True)
        print(f"  Test users (password 'password'): {users}", flush=True)
        print(f"  Broker {urls.broker}  IdP {urls.idp}  Sandbox {urls.sandbox}", flush=True)
        print("  Press Ctrl-C to stop.", flush=True)
        threading.Event().wait()
