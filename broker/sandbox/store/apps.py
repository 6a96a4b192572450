"""BigCommerce apps in the sandbox: registration, install codes and the OAuth token exchange.

No IO, no framework: pure functions of an :class:`AppRegistry` (the apps, the codes issued,
the log of token exchanges), shared by every store of a sandbox as ``login.bigcommerce.com``
is. What installing does to one store (its token, its users' access) is
:mod:`broker.sandbox.store.installs`. Facts followed (``docs/bigcommerce-api.md``,
"App install"):

- an app has a client id and secret, its scopes, and four callbacks under its base URL:
  ``/bigcommerce/auth``, ``/load``, ``/uninstall`` and ``/remove_user``;
- an install sends the browser to the auth callback with ``account_uuid``, ``code``,
  ``context=stores/{hash}`` and ``scope`` (space separated); the app exchanges the code at
  ``POST /oauth2/token`` with ``client_id, client_secret, code, context, scope,
  grant_type=authorization_code, redirect_uri`` (= the auth callback URL, exactly);
- ``account_uuid`` is the app developer's account: the same for every store.

Where the sandbox decides: a code lives 10 minutes (:data:`CODE_LIFETIME`) on the sandbox's
clock and is spent only by a successful exchange (a refused one leaves it usable; a spent one
stays refused); ``scope`` must name the same scopes as the code (in any order); every refusal
is 400 ``{"error", "error_description"}`` with the RFC 6749 error codes, an unknown client too
(RFC 6749 would allow 401).
"""

from __future__ import annotations

import hmac
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from broker.sandbox.store.model import JSONDict, SandboxConflict, SandboxError, SandboxNotFound

CODE_LIFETIME = 600  # seconds an install code may wait for its exchange
CALLBACKS = ("auth", "load", "uninstall", "remove_user")
TOKEN_FIELDS = ("client_id", "client_secret", "code", "context", "scope", "grant_type")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_SCOPE = re.compile(r"^\S{1,128}$")
_APP_FIELDS = frozenset({"client_id", "client_secret", "callback_base", "scopes"})


@dataclass(frozen=True)
class SandboxApp:
    """One app as its developer registered it."""

    client_id: str
    client_secret: str
    callback_base: str  # the app's base URL, without a trailing "/"
    scopes: tuple[str, ...]

    def callback(self, name: str) -> str:
        """The URL of one of :data:`CALLBACKS`."""
        return f"{self.callback_base}/bigcommerce/{name}"

    @property
    def scope(self) -> str:
        """The scopes as the auth callback and the token answer name them."""
        return " ".join(self.scopes)

    @property
    def account_uuid(self) -> str:
        """The developer's account: stable per app, the same for every store."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-app:{self.client_id}"))

    def public_json(self) -> JSONDict:
        """The app without its secret."""
        return {
            "client_id": self.client_id,
            "callback_base": self.callback_base,
            "scopes": list(self.scopes),
            "account_uuid": self.account_uuid,
            "callbacks": {name: self.callback(name) for name in CALLBACKS},
        }


@dataclass
class AuthCode:
    """An install code, waiting for its one exchange."""

    code: str
    client_id: str
    store_hash: str
    user_id: int  # who installed
    scope: str
    redirect_uri: str
    expires_at: float
    used: bool = False


@dataclass
class AppRegistry:
    """Every app of the sandbox, the codes issued, and the log of token exchanges."""

    apps: dict[str, SandboxApp] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    exchanges: list[JSONDict] = field(default_factory=list)  # no secrets, no tokens
    callbacks: list[JSONDict] = field(default_factory=list)  # uninstall and remove_user calls


class OAuthError(Exception):
    """A refused token exchange: 400 with ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description

    def to_json(self) -> JSONDict:
        return {"error": self.error, "error_description": self.description}


# -- registration ----------------------------------------------------------------------------


def app_from_json(body: Any) -> SandboxApp:
    """The app a control API body describes; SandboxError for a bad one."""
    if not isinstance(body, dict):
        raise SandboxError("the body must be a JSON object")
    unknown = sorted(set(body) - _APP_FIELDS)
    if unknown:
        raise SandboxError(f"unknown fields: {', '.join(unknown)}")
    client_id, secret = body.get("client_id"), body.get("client_secret")
    if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
        raise SandboxError("client_id must be 1-128 letters, digits, '.', '-' or '_'")
    if not isinstance(secret, str) or not secret:
        raise SandboxError("client_secret must be a non-empty string")
    base = body.get("callback_base")
    parts = urlsplit(base) if isinstance(base, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise SandboxError("callback_base must be an http(s) URL without query or fragment")
    scopes = body.get("scopes")
    if (
        not isinstance(scopes, list)
        or not scopes
        or not all(isinstance(s, str) and _SCOPE.match(s) for s in scopes)
    ):
        raise SandboxError("scopes must be a non-empty list of scope names (no spaces)")
    return SandboxApp(client_id, secret, str(base).rstrip("/"), tuple(dict.fromkeys(scopes)))


def register(registry: AppRegistry, app: SandboxApp) -> None:
    if app.client_id in registry.apps:
        raise SandboxConflict(f"app {app.client_id!r} already exists")
    registry.apps[app.client_id] = app


def get_app(registry: AppRegistry, client_id: str) -> SandboxApp:
    app = registry.apps.get(client_id)
    if app is None:
        raise SandboxNotFound(f"no sandbox app {client_id!r}")
    return app


# -- install codes ---------------------------------------------------------------------------


def issue_code(
    registry: AppRegistry, app: SandboxApp, store_hash: str, user_id: int, now: float
) -> str:
    """A fresh code for installing ``app`` on the store: the auth callback URL carrying it."""
    registry.codes = {c: v for c, v in registry.codes.items() if v.expires_at > now}
    code = secrets.token_urlsafe(24)
    registry.codes[code] = AuthCode(
        code=code,
        client_id=app.client_id,
        store_hash=store_hash,
        user_id=user_id,
        scope=app.scope,
        redirect_uri=app.callback("auth"),
        expires_at=now + CODE_LIFETIME,
    )
    query = urlencode(
        {
            "account_uuid": app.account_uuid,
            "code": code,
            "context": f"stores/{store_hash}",
            "scope": app.scope,
        }
    )
    return f"{app.callback('auth')}?{query}"


def redeem_code(registry: AppRegistry, form: Mapping[str, str], now: float) -> AuthCode:
    """Check one ``POST /oauth2/token`` and spend its code; OAuthError when refused.

    The attempt is logged (client id, store, outcome; never the secret or the code).
    """
    entry: JSONDict = {
        "client_id": form.get("client_id"),
        "store_hash": None,
        "ok": False,
        "error": None,
        "time": now,
    }
    registry.exchanges.append(entry)
    try:
        code = _check_exchange(registry, form, now)
    except OAuthError as refused:
        entry["error"] = f"{refused.error}: {refused.description}"
        raise
    code.used = True
    entry.update(ok=True, store_hash=code.store_hash)
    return code


def _check_exchange(registry: AppRegistry, form: Mapping[str, str], now: float) -> AuthCode:
    missing = [name for name in (*TOKEN_FIELDS, "redirect_uri") if not form.get(name)]
    if missing:
        raise OAuthError("invalid_request", f"missing parameters: {', '.join(missing)}")
    if form["grant_type"] != "authorization_code":
        raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code")
    app = registry.apps.get(form["client_id"])
    if app is None or not hmac.compare_digest(
        form["client_secret"].encode(), app.client_secret.encode()
    ):
        raise OAuthError("invalid_client", "unknown client_id or wrong client_secret")
    code = registry.codes.get(form["code"])
    if code is None or code.client_id != app.client_id:
        raise OAuthError("invalid_grant", "the code is not valid")
    if code.used:
        raise OAuthError("invalid_grant", "the code was already used")
    if now >= code.expires_at:
        raise OAuthError("invalid_grant", "the code has expired")
    if form["redirect_uri"] != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri does not match the app's auth callback")
    if form["context"] != f"stores/{code.store_hash}":
        raise OAuthError("invalid_grant", "context does not match the code's store")
    if set(form["scope"].split()) != set(code.scope.split()):
        raise OAuthError("invalid_scope", "scope does not match the scopes granted")
    return code
