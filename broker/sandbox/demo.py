"""``broker demo``: the broker, a sandbox store and a development IdP, wired together locally.

Everything listens on 127.0.0.1, on fixed ports so the printed URL stays the same from run to
run: the broker on 8000, the sandbox store on 8001, the IdP on 8002 (``--port`` moves the
broker, and the other two with it unless ``--sandbox-port``/``--idp-port`` say otherwise; 0
lets the system pick). Secrets are random per run; the database is a temporary file. Nothing
here needs npm or a browser download. The one URL to open is the sandbox storefront, whose
"Sign in with SSO" link starts it all; its pages load the broker's storefront script, so the
account page's "Manage company sign-in" link works too.

Other flows (:class:`DemoOptions`): ``--link auto|confirm|deny`` seeds the store with a
customer who has alice@example.com and a store password, and sets that link policy, so her
first SSO sign-in meets an existing account; ``--b2b`` turns on B2B Edition in the sandbox,
with a company that example.com users join on signing in.

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
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
#: ``--link``: the customer the store already has, and the store password she set there.
EXISTING_EMAIL = "alice@example.com"
EXISTING_PASSWORD = "shop-password"  # noqa: S105 - a published demo credential
#: ``--b2b``: the company example.com users are placed in, and the role of IdP group buyers.
B2B_COMPANY = "Example Corp Buyers"

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
class DemoOptions:
    """What ``broker demo`` runs: its ports (the sandbox's and the IdP's default to the
    broker's + 1 and + 2; 0: any free port) and the flows to try."""

    port: int = 8000
    sandbox_port: int | None = None
    idp_port: int | None = None
    #: A link policy to try with an existing customer (None: no customer exists yet).
    link: str | None = None
    b2b: bool = False

    def __post_init__(self) -> None:
        if self.sandbox_port is None:
            object.__setattr__(self, "sandbox_port", self.port + 1 if self.port else 0)
        if self.idp_port is None:
            object.__setattr__(self, "idp_port", self.port + 2 if self.port else 0)


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


def _start_sandbox_and_idp(stack: ExitStack, options: DemoOptions) -> tuple[Flask, str, Flask, str]:
    sandbox_app = create_sandbox_app()
    idp_app = create_idp_app(clients=())
    sandbox_url = stack.enter_context(
        serve_in_thread(sandbox_app, HOST, options.sandbox_port or 0)
    ).url
    idp_url = stack.enter_context(serve_in_thread(idp_app, HOST, options.idp_port or 0)).url
    idp_app.extensions["dev_idp"].issuer = idp_url
    return sandbox_app, sandbox_url, idp_app, idp_url


@contextmanager
def running_demo(options: DemoOptions | None = None) -> Iterator[DemoURLs]:
    """Start the three servers in threads; stop them when the block ends."""
    options = options or DemoOptions()
    with ExitStack() as stack:
        sandbox_app, sandbox_url, idp_app, idp_url = _start_sandbox_and_idp(stack, options)
        # The broker's URL is in its settings: its port is known before it listens.
        port = options.port or _free_port()
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
            theme_script_url=f"{broker_url}/{STORE_KEY}/storefront.js",
            b2b_token=secrets.token_urlsafe(24) if options.b2b else None,
        )
        sandbox = sandbox_app.extensions["sandbox"]
        sandbox.add_store(store)
        connection: dict[str, Any] = {
            "type": "oidc",
            "display_name": "Example Corp",
            "issuer": idp_url,
            "client_id": client_id,
            "client_secret": client_secret,
            "scopes": ["openid", "email", "profile", "groups"],
        }
        if options.link is not None:
            sandbox.add_customer(
                STORE_HASH,
                email=EXISTING_EMAIL,
                first_name="Alice",
                last_name="Anderson",
                password=EXISTING_PASSWORD,
            )
            connection["link"] = options.link
        store_table: dict[str, Any] = {
            "store_hash": STORE_HASH,
            "api_url": sandbox_url,
            "access_token": store.access_token,
            "client_id": store.client_id,
            "client_secret": store.client_secret,
            "storefront_url": storefront,
            "connections": {CONNECTION: connection},
        }
        if options.b2b:
            company = sandbox.add_company(STORE_HASH, B2B_COMPANY)
            store_table["b2b"] = {
                "api_url": sandbox_url,
                "access_token": store.b2b_token,
                "companies_by_domain": {"example.com": company["companyId"]},
                "roles_by_group": {"buyers": 1},
            }

        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="broker-demo-")))
        settings = parse_settings(
            {
                "broker": {
                    "base_url": broker_url,
                    "secret_key": secrets.token_urlsafe(32),
                    "database_url": f"sqlite:///{workdir / 'broker.db'}",
                },
                "stores": {STORE_KEY: store_table},
            },
            env={},
        )
        stack.enter_context(serve_in_thread(create_app(settings), HOST, port))
        yield DemoURLs(
            storefront=storefront + "/", broker=broker_url, idp=idp_url, sandbox=sandbox_url
        )


@contextmanager
def running_app_demo(options: DemoOptions | None = None) -> Iterator[AppDemo]:
    """The broker as a BigCommerce app, the sandbox with the app registered and a store of two
    channels to install it on, and the development IdP with a client for the connection the
    merchant will add; the servers stop when the block ends."""
    options = options or DemoOptions()
    with ExitStack() as stack:
        sandbox_app, sandbox_url, idp_app, idp_url = _start_sandbox_and_idp(stack, options)
        port = options.port or _free_port()
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


def run_demo(options: DemoOptions | None = None, *, app: bool = False) -> None:
    """Run until interrupted, printing the URL to open (with ``app``, the steps to follow) and
    the test users."""
    options = options or DemoOptions()
    # werkzeug's request log would print authorization codes and login tokens.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if app:
        with running_app_demo(options) as demo:
            print(app_steps(demo), flush=True)
            threading.Event().wait()
        return
    with running_demo(options) as urls:
        print(demo_text(urls, options), flush=True)
        threading.Event().wait()


def demo_text(urls: DemoURLs, options: DemoOptions) -> str:
    """What ``broker demo`` prints: the one URL to open, who may sign in, what to expect."""
    users = ", ".join(u.email for u in DEFAULT_USERS)
    lines = [
        "Storefront SSO broker demo",
        "",
        f"  Open {urls.storefront}",
        "",
        "  Click 'Sign in with SSO' and sign in at the development IdP.",
        f"  Test users (password 'password'): {users}",
    ]
    if options.link == "confirm":
        lines.append(
            f"  {EXISTING_EMAIL} already has a store account (store password "
            f"'{EXISTING_PASSWORD}'): link = confirm asks for it once, then links them."
        )
    elif options.link == "auto":
        lines.append(
            f"  {EXISTING_EMAIL} already has a store account: link = auto links it at once "
            "(the IdP says the e-mail is verified)."
        )
    elif options.link == "deny":
        lines.append(
            f"  {EXISTING_EMAIL} already has a store account: link = deny refuses SSO for it "
            f"(the store password '{EXISTING_PASSWORD}' still works)."
        )
    if options.b2b:
        lines.append(
            f"  B2B Edition: example.com users become company users of {B2B_COMPANY} "
            "(the IdP group buyers: senior buyer)."
        )
    ports = (urlsplit(u).port for u in (urls.broker, urls.sandbox, urls.idp))
    broker_port, sandbox_port, idp_port = ports
    lines += [
        f"  (The broker listens on port {broker_port}, the sandbox store on {sandbox_port}, "
        f"the IdP on {idp_port}.)",
        "  Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


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
