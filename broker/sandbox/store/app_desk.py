"""The app side of :class:`~broker.sandbox.store.state.SandboxState`: what tests, ``broker
demo`` and the blueprints do with apps, control-panel users, scripts and customer groups.

:class:`AppDesk` is a mixin of ``SandboxState``: each method takes the state's one lock and
runs the pure rules of :mod:`~broker.sandbox.store.apps` (registration, codes, the token
exchange), :mod:`~broker.sandbox.store.installs` (users, installs, tokens),
:mod:`~broker.sandbox.store.payloads`, :mod:`~broker.sandbox.store.scripts` and
:mod:`~broker.sandbox.store.groups`. The one IO is the ``uninstall`` and ``remove_user``
callback: a GET from the sandbox to the app, server to server, made once the lock is
released (the app may well call the sandbox back while it answers).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import httpx
from markupsafe import Markup

from broker.sandbox.store import apps, groups, installs, payloads, scripts
from broker.sandbox.store.apps import AppRegistry, SandboxApp
from broker.sandbox.store.data import StoreData
from broker.sandbox.store.installs import OWNER_ID
from broker.sandbox.store.model import Clock, JSONDict, SandboxError, copy_json, is_int
from broker.sandbox.store.payloads import PayloadFaults

CALLBACK_TIMEOUT = 5.0  # seconds the app has to answer uninstall and remove_user


class AppDesk:
    """Apps, control-panel users, scripts and customer groups (a mixin of SandboxState)."""

    _lock: threading.Lock
    _clock: Clock
    _apps: AppRegistry

    def _get(self, store_hash: str) -> StoreData:  # SandboxState's
        raise NotImplementedError

    # apps --------------------------------------------------------------------------------------

    def add_app(self, app: SandboxApp) -> JSONDict:
        """Register an app (every store may install it); SandboxConflict if it exists."""
        with self._lock:
            apps.register(self._apps, app)
            return app.public_json()

    def app(self, client_id: str) -> SandboxApp:
        with self._lock:
            return apps.get_app(self._apps, client_id)

    def exchanges(self, client_id: str | None = None) -> list[JSONDict]:
        """Every ``POST /oauth2/token`` (of one app): client_id, store_hash, ok, error, time."""
        with self._lock:
            return [
                copy_json(e)
                for e in self._apps.exchanges
                if client_id is None or e["client_id"] == client_id
            ]

    def app_callbacks(self, client_id: str | None = None) -> list[JSONDict]:
        """Every uninstall and remove_user call made: kind, store_hash, client_id, user_id,
        url, status, error, time."""
        with self._lock:
            return [
                copy_json(c)
                for c in self._apps.callbacks
                if client_id is None or c["client_id"] == client_id
            ]

    # control-panel users ---------------------------------------------------------------------

    def add_user(self, store_hash: str, email: Any, user_id: Any = None) -> JSONDict:
        with self._lock:
            return installs.add_user(self._get(store_hash).apps, email, user_id)

    def users(self, store_hash: str) -> list[JSONDict]:
        with self._lock:
            return installs.users(self._get(store_hash).apps)

    # install, the token exchange, access -----------------------------------------------------

    def install_url(self, store_hash: str, client_id: str, user_id: int = OWNER_ID) -> str:
        """The auth callback URL, with a fresh code, that starts installing the app."""
        with self._lock:
            st = self._get(store_hash)
            installs.user_json(st.apps, user_id)  # the user exists
            app = apps.get_app(self._apps, client_id)
            return apps.issue_code(self._apps, app, store_hash, user_id, self._clock())

    def exchange_token(self, form: Mapping[str, str]) -> JSONDict:
        """``POST /oauth2/token``: the token answer; OAuthError when refused."""
        with self._lock:
            now = self._clock()
            code = apps.redeem_code(self._apps, form, now)
            st = self._get(code.store_hash)
            app = self._apps.apps[code.client_id]
            return installs.install(st.apps, app, code, now)

    def app_status(self, store_hash: str, client_id: str) -> JSONDict:
        with self._lock:
            st = self._get(store_hash)
            apps.get_app(self._apps, client_id)
            return installs.status(st.apps, client_id)

    def is_installed(self, store_hash: str, client_id: str) -> bool:
        with self._lock:
            return client_id in self._get(store_hash).apps.installs

    def may_use(self, store_hash: str, client_id: str, user_id: int) -> bool:
        """Whether the app is installed and the user is the owner or was granted it."""
        with self._lock:
            return installs.may_use(self._get(store_hash).apps, client_id, user_id)

    def grant_app(self, store_hash: str, client_id: str, user_id: int) -> None:
        with self._lock:
            apps.get_app(self._apps, client_id)
            installs.grant(self._get(store_hash).apps, client_id, user_id)

    def load_url(
        self,
        store_hash: str,
        client_id: str,
        user_id: int = OWNER_ID,
        url: Any = None,
        channel_id: Any = None,
    ) -> str:
        """The load callback URL with its signed payload, for a user who may use the app."""
        path, channel = payloads.check_load_options(url, channel_id)
        with self._lock:
            st = self._get(store_hash)
            app = apps.get_app(self._apps, client_id)
            installs.check_access(st.apps, client_id, user_id)
            token = self._payload(st, app, user_id, url=path, channel_id=channel)
        return f"{app.callback('load')}?signed_payload_jwt={token}"

    def uninstall_app(self, store_hash: str, client_id: str, user_id: int = OWNER_ID) -> JSONDict:
        """Uninstall: the token is revoked and the app's auto_uninstall scripts deleted, then
        the app's uninstall callback is called; ``{"status", "body"}`` (and ``"error"`` when
        the app could not be reached)."""
        with self._lock:
            st = self._get(store_hash)
            app = apps.get_app(self._apps, client_id)
            installs.check_access(st.apps, client_id, user_id)
            token = self._payload(st, app, user_id)
            installs.uninstall(st.apps, client_id)
            scripts.remove_on_uninstall(st.scripts, client_id)
        return self._call_app(app, store_hash, "uninstall", user_id, token)

    def revoke_app(self, store_hash: str, client_id: str, user_id: int) -> JSONDict:
        """The owner takes the app from a user; the app's remove_user callback is called."""
        with self._lock:
            st = self._get(store_hash)
            app = apps.get_app(self._apps, client_id)
            installs.revoke(st.apps, client_id, user_id)
            token = self._payload(st, app, user_id)
        return self._call_app(app, store_hash, "remove_user", user_id, token)

    def mint_payload(
        self,
        client_id: str,
        store_hash: str,
        user_id: int,
        kind: str,
        faults: PayloadFaults = PayloadFaults(),  # noqa: B008 - frozen, never changed
    ) -> str:
        """A signed payload as a callback would carry it, bent by ``faults``, calling nothing
        and checking no access (negative tests need payloads BigCommerce would never send)."""
        if kind not in payloads.KINDS:
            raise SandboxError(f"kind must be one of {', '.join(payloads.KINDS)}")
        with self._lock:
            st = self._get(store_hash)
            app = apps.get_app(self._apps, client_id)
            return self._payload(st, app, user_id, faults=faults)

    def app_secrets(self, store_hash: str) -> dict[str, str]:
        """Client id -> secret of the apps installed on the store."""
        with self._lock:
            return self._app_secrets(self._get(store_hash))

    def _app_secrets(self, st: StoreData) -> dict[str, str]:
        known = self._apps.apps
        return {cid: known[cid].client_secret for cid in st.apps.installs if cid in known}

    def _payload(
        self,
        st: StoreData,
        app: SandboxApp,
        user_id: int,
        *,
        url: str = "/",
        channel_id: int | None = None,
        faults: PayloadFaults = PayloadFaults(),  # noqa: B008 - frozen, never changed
    ) -> str:
        if not is_int(user_id):
            raise SandboxError("user_id must be an integer")
        owner, user = installs.owner_and_user(st.apps, user_id)
        claims = payloads.claims(
            app.client_id,
            st.settings.store_hash,
            owner,
            user,
            self._clock(),
            url=url,
            channel_id=channel_id,
            faults=faults,
        )
        return payloads.sign(claims, faults.secret or app.client_secret)

    def _call_app(
        self, app: SandboxApp, store_hash: str, kind: str, user_id: int, token: str
    ) -> JSONDict:
        """GET one callback server to server (outside the lock); never raises."""
        url = app.callback(kind)
        result: JSONDict = {"status": None, "body": ""}
        try:
            response = httpx.get(
                url,
                params={"signed_payload_jwt": token},
                timeout=CALLBACK_TIMEOUT,
                follow_redirects=False,
                trust_env=False,  # no proxy from the environment between us and 127.0.0.1
            )
            result.update(status=response.status_code, body=response.text)
        except Exception as exc:  # an unreachable app is the call's outcome, never a crash
            result["error"] = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._apps.callbacks.append(
                {
                    "kind": kind,
                    "store_hash": store_hash,
                    "client_id": app.client_id,
                    "user_id": user_id,
                    "url": url,
                    "status": result["status"],
                    "error": result.get("error"),
                    "time": self._clock(),
                }
            )
        return result

    # scripts and customer groups -------------------------------------------------------------

    def scripts(self, store_hash: str) -> list[JSONDict]:
        """Every script of the store, whoever created it, oldest first."""
        with self._lock:
            return [copy_json(s) for s in self._get(store_hash).scripts.scripts.values()]

    def storefront_scripts(self, store_hash: str, channel_id: int) -> tuple[Markup, Markup]:
        """The script tags of a storefront page of this channel: (head, footer)."""
        with self._lock:
            return scripts.storefront_tags(self._get(store_hash).scripts, channel_id)

    def add_customer_group(self, store_hash: str, name: Any, is_default: Any = False) -> JSONDict:
        with self._lock:
            return groups.add_group(self._get(store_hash).groups, name, is_default)

    def customer_groups(self, store_hash: str) -> list[JSONDict]:
        with self._lock:
            book = self._get(store_hash).groups
            return [copy_json(g) for _, g in sorted(book.groups.items())]
