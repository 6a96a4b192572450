"""``broker demo``: the broker, a sandbox store and a development IdP, wired together locally.

Everything listens on 127.0.0.1: the broker on the chosen port, the sandbox store and the IdP
on free ports the system picks. Secrets are random per run; the database is a temporary file.
The one URL to open is the sandbox storefront, whose "Sign in with SSO" link starts it all.

``broker demo --app`` runs the broker as a BigCommerce app instead (an ``[app]`` table, no
store in the file): the app is registered in the sandbox, whose control panel frames it. The
broker's URL names ``localhost`` and the sandbox's ``127.0.0.1``, two sites, so the admin in
the iframe meets what it meets in a real control panel (third-party cookies blocked,
``frame-ancestors``). The merchant installs the app, adds the development IdP as a connection
with the values printed, and a shopper signs in.
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

from cryptography.fernet import Fernet
from flask import Flask

from broker.app import create_app
from broker.config import parse_settings
from broker.sandbox.idp import DEFAULT_USERS, DevClient, create_idp_app
from broker.sandbox.serving import serve_in_thread
from broker.sandbox.store import OWNER_ID, SandboxApp, SandboxStore, create_sandbox_app

HOST = "127.0.0.1"
STORE_KEY = "demo"
STORE_HASH = "demo1"
CONNECTION = "dev"

#: ``broker demo --app``: the connection key the merchant is told to type in the admin.
APP_CONNECTION = "corp"
#: The scopes the app asks for (README, "Register the app").
APP_SCOPES = (
    "store_v2_customers",
    "store_v2_customers_login",
    "store_v2_information_read_only",
    "store_channel_settings_read_only",
    "store_sites_read_only",
    "store_v2_content",
)


@dataclass(frozen=True)
class DemoURLs:
    storefront: str
    broker: str
    idp: str
    sandbox: str


@dataclass(frozen=True)
class AppDemo:
    """What ``broker demo --app`` tells the merchant: where to go, and what to type."""

    broker: str  # http://localhost:PORT: a site of its own
    sandbox: str  # http://127.0.0.1:PORT2: the "BigCommerce" that frames the app
    idp: str  # the issuer to enter in the admin
    store_hash: str
    app_client_id: str
    connection: str  # the connection key to enter
    idp_client_id: str
    idp_client_secret: str

    @property
    def control_panel(self) -> str:
        """The control-panel page that frames the app (the owner, user 1)."""
        return f"{self.sandbox}/manage/{self.store_hash}/apps/{self.app_client_id}?user={OWNER_ID}"

    @property
    def shopper_login(self) -> str:
        return f"{self.broker}/{self.store_hash}/login/{self.connection}"

    @property
    def storefront(self) -> str:
        return f"{self.sandbox}/s/{self.store_hash}/"


def _start_sandbox_and_idp(stack: ExitStack) -> tuple[Flask, str, Flask, str]:
    sandbox_app = create_sandbox_app()
    idp_app = create_idp_app(clients=())
    sandbox_url = stack.enter_context(serve_in_thread(sandbox_app, HOST)).url
    idp_url = stack.enter_context(serve_in_thread(idp_app, HOST)).url
    idp_app.extensions["dev_idp"].issuer = idp_url
    return sandbox_app, sandbox_url, idp_app, idp_url


@contextmanager
def running_demo(port: int = 5000) -> Iterator[DemoURLs]:
    """Start the three servers in threads; stop them when the block ends."""
    with ExitStack() as stack:
        sandbox_app, sandbox_url, idp_app, idp_url = _start_sandbox_and_idp(stack)
        broker_url = f"http://{HOST}:{port}"
        storefront = f"{sandbox_url}/s/{STORE_HASH}"

        client_id, client_secret = "demo-broker", secrets.token_urlsafe(32)
        idp_app.extensions["dev_idp"].add_client(
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


@contextmanager
def running_app_demo(port: int = 5000) -> Iterator[AppDemo]:
    """The broker as a BigCommerce app, the sandbox with the app registered and a store of two
    channels to install it on, and the development IdP with a client for the connection the
    merchant will add; the servers stop when the block ends."""
    with ExitStack() as stack:
        sandbox_app, sandbox_url, idp_app, idp_url = _start_sandbox_and_idp(stack)
        # The broker listens on 127.0.0.1 too, but is addressed as localhost: another site
        # than the sandbox's control panel, as an app and BigCommerce are.
        broker_url = f"http://localhost:{port}"

        # Random per run; short enough for the control panel's list of apps.
        app_id, app_secret = secrets.token_hex(8), secrets.token_hex(32)
        sandbox = sandbox_app.extensions["sandbox"]
        sandbox.add_app(SandboxApp(app_id, app_secret, broker_url, APP_SCOPES))
        sandbox.add_store(
            SandboxStore(
                store_hash=STORE_HASH,
                access_token=secrets.token_urlsafe(24),
                client_id=secrets.token_hex(16),
                client_secret=secrets.token_hex(32),
                channel_ids=(1, 2),
                name="Demo store",
                channel_names=("Demo store", "Demo wholesale"),
                catalyst_channels=(2,),
                sso_login_url=f"{broker_url}/{STORE_HASH}/login/{APP_CONNECTION}",
            )
        )
        idp_client_id, idp_client_secret = "demo-app-store", secrets.token_urlsafe(24)
        idp_app.extensions["dev_idp"].add_client(
            DevClient(
                client_id=idp_client_id,
                client_secret=idp_client_secret,
                redirect_uris=(f"{broker_url}/{STORE_HASH}/oidc/{APP_CONNECTION}/callback",),
            )
        )

        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="broker-demo-")))
        settings = parse_settings(
            {
                "broker": {
                    "base_url": broker_url,
                    "secret_key": secrets.token_urlsafe(32),
                    "database_url": f"sqlite:///{workdir / 'broker.db'}",
                },
                "app": {
                    "client_id": app_id,
                    "client_secret": app_secret,
                    "login_url": sandbox_url,
                    "api_url": sandbox_url,
                    "encryption_key": [Fernet.generate_key().decode()],
                    "frame_ancestors": [sandbox_url],
                },
            },
            env={},
        )
        stack.enter_context(serve_in_thread(create_app(settings), HOST, port))
        yield AppDemo(
            broker=broker_url,
            sandbox=sandbox_url,
            idp=idp_url,
            store_hash=STORE_HASH,
            app_client_id=app_id,
            connection=APP_CONNECTION,
            idp_client_id=idp_client_id,
            idp_client_secret=idp_client_secret,
        )


def run_demo(port: int = 5000, *, app: bool = False) -> None:
    """Run until interrupted, printing the URL to open (with ``app``, the steps to follow) and
    the test users."""
    # werkzeug's request log would print authorization codes and login tokens.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if app:
        with running_app_demo(port) as demo:
            print(app_steps(demo), flush=True)
            threading.Event().wait()
        return
    with running_demo(port) as urls:
        users = ", ".join(u.email for u in DEFAULT_USERS)
        print(f"Storefront SSO broker demo\n\n  Open {urls.storefront}\n", flush=True)
        print(f"  Test users (password 'password'): {users}", flush=True)
        print(f"  Broker {urls.broker}  IdP {urls.idp}  Sandbox {urls.sandbox}", flush=True)
        print("  Press Ctrl-C to stop.", flush=True)
        threading.Event().wait()


def app_steps(demo: AppDemo) -> str:
    """What ``broker demo --app`` prints: the steps, one value per line to copy."""
    users = ", ".join(u.email for u in DEFAULT_USERS)
    return "\n".join(
        [
            "Storefront SSO broker demo, as a BigCommerce app",
            "",
            f"  The broker runs at {demo.broker}, a site of its own; the sandbox BigCommerce",
            f"  at {demo.sandbox} frames it in its control panel.",
            "",
            "  1. Open the control panel:",
            f"       Control panel  {demo.control_panel}",
            "     The app installs itself in the frame and opens its admin.",
            "  2. Click 'Add an OpenID Connect IdP' and enter (the rest may stay as it is):",
            f"       Key            {demo.connection}",
            f"       Issuer         {demo.idp}",
            f"       Client ID      {demo.idp_client_id}",
            f"       Client secret  {demo.idp_client_secret}",
            "     then Save.",
            f"  3. Click 'Test' beside {demo.connection}: it says 'ready' when every check passes.",
            "  4. In another window, open",
            f"       Shopper sign-in  {demo.shopper_login}",
            f"     (or the storefront {demo.storefront} and 'Sign in with SSO'),",
            "     sign in as alice@example.com with password 'password', and you land on the",
            "     storefront's account page as that customer, created on the spot.",
            "",
            f"  Test users (password 'password'): {users}",
            f"  Broker {demo.broker}  IdP {demo.idp}  Sandbox {demo.sandbox}",
            "  Press Ctrl-C to stop.",
        ]
    )
