"""A small development OpenID Connect provider: a test double, NOT for production.

It backs ``broker demo`` (a newcomer signs in as a test user in a browser) and the broker's
negative tests, which need an identity provider that can misbehave on purpose through the hooks
on :class:`DevIdPState` (``app.extensions["dev_idp"]``).

It follows OpenID Connect Core 1.0 (authorization code flow, ID token, UserInfo), OpenID Connect
Discovery 1.0, RFC 6749 (OAuth 2.0 endpoints and error responses) and RFC 7636 (PKCE, S256 only,
always required).  Signing keys are RSA keys generated in memory when the app is created and on
:meth:`DevIdPState.rotate_key`; they are never written anywhere.

What it deliberately does not do: persistent sessions (every authorization request shows the login
page), consent, refresh tokens, dynamic registration, request objects.  Its discovery document
advertises ``id_token_signing_alg_values_supported: ["RS256", "HS256", "none"]`` on purpose: a
relying party must not take its algorithm allow-list from the provider.

Each client can be taught the quirks of a real IdP (:class:`IdPQuirks`, docs/idps/): no
``email_verified`` and an ``xms_edov`` instead (Entra ID), a groups overage with
``_claim_names``/``_claim_sources`` and a Microsoft Graph double at
``/_graph/v1.0/me/getMemberObjects`` (Entra ID), a multi-tenant issuer with ``{tenantid}``
and a ``tid`` per user (Entra ID), an authorization server under a path (Okta's
``/oauth2/default``), ``hd`` (Google), namespaced claims (Auth0), ``realm_access.roles``
(Keycloak), a clock that is off. A client with a ``frontchannel_logout_uri`` gets a ``sid`` in
its ID tokens, and ``GET /_frontchannel-logout?sub=...`` is the IdP's logout page that loads
each of that user's RPs in an iframe (OpenID Connect Front-Channel Logout 1.0).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from flask import (
    Flask,
    after_this_request,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from jinja2 import DictLoader
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

__all__ = [
    "DEFAULT_USERS",
    "DevClient",
    "DevIdPState",
    "DevUser",
    "DiscoveryOverride",
    "IdPQuirks",
    "IdTokenTamper",
    "UserinfoOverride",
    "create_idp_app",
    "encode_hs256",
    "encode_unsecured",
    "flip_signature",
]

log = logging.getLogger(__name__)

EXTENSION_KEY = "dev_idp"
CODE_LIFETIME_SECONDS = 60
ID_TOKEN_LIFETIME_SECONDS = 300
ACCESS_TOKEN_LIFETIME_SECONDS = 3600
SIGNING_ALG = "RS256"
RSA_KEY_BITS = 2048

SUPPORTED_SCOPES: tuple[str, ...] = ("openid", "email", "profile", "groups")
AUTH_METHODS: tuple[str, ...] = ("client_secret_basic", "client_secret_post", "none")
PROTOCOL_CLAIMS: tuple[str, ...] = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce")
USER_CLAIMS: tuple[str, ...] = (
    "email",
    "email_verified",
    "given_name",
    "family_name",
    "name",
    "groups",
)
# Parameters of an authorization request that the login form carries through to its POST.
AUTHORIZE_PARAMS: tuple[str, ...] = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "prompt",
    "max_age",
    "response_mode",
)
# RFC 7636 section 4.1: code_verifier = 43*128unreserved; a S256 challenge is 43 base64url chars.
_PKCE_VALUE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_SECRET_FORM_FIELDS = frozenset({"client_secret", "password"})


@dataclass(frozen=True)
class DevUser:
    """A test user who can sign in at the development IdP."""

    sub: str
    email: str
    password: str
    email_verified: bool = True
    given_name: str | None = None
    family_name: str | None = None
    groups: tuple[str, ...] = ()
    #: More claims of this user (``tid``, ``hd``, ``preferred_username``, ...), in every token
    #: and userinfo answer; they win over the client's :attr:`IdPQuirks.claims`.
    claims: Mapping[str, Any] = field(default_factory=dict, hash=False)


#: Where Entra ID's overage claim points (the retired Azure AD Graph): never to be called.
OVERAGE_ENDPOINT = "https://graph.windows.net/{tid}/users/{oid}/getMemberObjects"


@dataclass(frozen=True)
class IdPQuirks:
    """How one client's tokens bend the standards, the way a real IdP's do (docs/idps/).

    - ``send_email_verified`` False: the ``email_verified`` claim is never sent (Entra ID;
      Okta, often).
    - ``claims``: more claims for every user of this client (``{"xms_edov": True}``).
    - ``groups_claim``: where the user's groups go: a string is one claim of exactly that
      name (Auth0's ``"https://example.com/groups"``), a tuple a path into nested objects
      (Keycloak's ``("realm_access", "roles")``).
    - ``groups_overage_above``: with more groups than this, Entra ID's overage instead of the
      groups: ``_claim_names``/``_claim_sources`` (the groups are then only in the Graph
      double).
    - ``issuer_path``: this client's authorization server, under the IdP's root: its tokens'
      ``iss`` is the root plus this path (``/oauth2/default``, Okta's custom server), with
      ``{tenantid}`` replaced by the user's ``tid`` claim (``/{tenantid}/v2.0``, Entra ID
      multi-tenant); its discovery document is served at the path (any one segment in place
      of ``{tenantid}``: ``/organizations/v2.0``) and names the path verbatim as its issuer.
    - ``clock_offset_seconds``: the IdP's clock is this far ahead (negative: behind) in the
      tokens it issues (``iat``, ``exp``, ``auth_time``).
    """

    send_email_verified: bool = True
    claims: Mapping[str, Any] = field(default_factory=dict, hash=False)
    groups_claim: str | tuple[str, ...] = "groups"
    groups_overage_above: int | None = None
    issuer_path: str | None = None
    clock_offset_seconds: int = 0


@dataclass(frozen=True)
class DevClient:
    """A registered relying party.

    ``client_secret`` None means a public client, which authenticates with PKCE only; its
    ``token_endpoint_auth_method`` is then always ``"none"``. ``quirks`` shape its tokens
    (:class:`IdPQuirks`). With a ``frontchannel_logout_uri`` its ID tokens carry a ``sid``,
    and the IdP's logout page frames that URI with ``iss`` and ``sid`` (with only ``sid`` when
    ``frontchannel_logout_iss`` is False, as Entra ID does; with neither when
    ``frontchannel_logout_session_required`` is False).
    """

    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105 - or _post, none
    quirks: IdPQuirks = field(default_factory=IdPQuirks)
    frontchannel_logout_uri: str | None = None
    frontchannel_logout_session_required: bool = True
    frontchannel_logout_iss: bool = True

    def __post_init__(self) -> None:
        if self.client_secret is None:
            # A public client can only ever authenticate with "none".
            object.__setattr__(self, "token_endpoint_auth_method", "none")
        if self.token_endpoint_auth_method not in AUTH_METHODS:
            raise ValueError(
                f"unsupported token_endpoint_auth_method {self.token_endpoint_auth_method!r}"
            )
        if self.client_secret is not None and self.token_endpoint_auth_method == "none":  # noqa: S105
            raise ValueError("a confidential client cannot use token_endpoint_auth_method 'none'")
        if not self.redirect_uris:
            raise ValueError("a client needs at least one redirect URI")


DEFAULT_USERS: tuple[DevUser, ...] = (
    DevUser(
        sub="dev-alice",
        email="alice@example.com",
        password="password",  # noqa: S106 - a published test credential
        given_name="Alice",
        family_name="Anderson",
        groups=("buyers",),
    ),
    # No names: exercises the relying party's name fallbacks.
    DevUser(sub="dev-bob", email="bob@example.com", password="password"),  # noqa: S106
    DevUser(
        sub="dev-carol",
        email="carol@example.com",
        password="password",  # noqa: S106
        email_verified=False,
        given_name="Carol",
        family_name="Chen",
    ),
)

IdTokenTamper = Callable[[dict[str, Any], dict[str, Any], "DevIdPState"], str]
UserinfoOverride = Callable[[dict[str, Any]], dict[str, Any]]
DiscoveryOverride = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: tuple[str, ...]
    sub: str
    auth_time: int
    expires_at: float
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)
    #: The IdP session of this sign-in, for a client with front-channel logout.
    sid: str | None = None


@dataclass
class _AccessGrant:
    sub: str
    client_id: str
    scope: tuple[str, ...]
    expires_at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def encode_unsecured(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """An unsecured JWT (``alg: none``, empty signature) for negative tests."""
    return f"{_json_segment({**header, 'alg': 'none'})}.{_json_segment(claims)}."


def encode_hs256(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes) -> str:
    """An HS256 JWT with ``secret`` as HMAC key, e.g. the IdP's public key PEM (key confusion).

    Done by hand because JOSE libraries rightly refuse PEM text as an HMAC key.
    """
    signing_input = f"{_json_segment({**header, 'alg': 'HS256'})}.{_json_segment(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(mac)}"


def flip_signature(token: str) -> str:
    """The same compact JWS with one bit of its signature flipped."""
    signing_input, _, signature = token.rpartition(".")
    padded = signature + "=" * (-len(signature) % 4)
    raw = bytearray(base64.urlsafe_b64decode(padded))
    if not raw:
        raise ValueError("token has no signature to flip")
    raw[len(raw) // 2] ^= 0x01
    return f"{signing_input}.{_b64url(bytes(raw))}"


def _new_signing_key() -> RSAKey:
    key = RSAKey.generate_key(RSA_KEY_BITS, parameters={"use": "sig", "alg": SIGNING_ALG})
    key.ensure_kid()  # RFC 7638 thumbprint: a fresh key always has a fresh kid
    return key


class DevIdPState:
    """Everything the development IdP knows, plus hooks for tests.  Thread-safe.

    Test hooks (plain attributes, set them directly):

    - ``issuer``: None derives it from each request (``request.url_root`` without ``/``).
      Kept verbatim: ``"http://127.0.0.1:5555/"`` (Auth0's style, a trailing ``/``) is served
      as the discovery ``issuer`` and the ID tokens' ``iss``, the endpoints hanging off it
      without a doubled ``/``.
    - ``id_token_claims_in_token``: False leaves only protocol claims in the ID token, so the
      relying party must call userinfo for e-mail, names and groups.
    - ``tamper``: ``tamper(header, claims, state) -> str`` replaces the normal ID token signing.
    - ``userinfo_override``: ``override(claims) -> claims`` transforms the userinfo answer.
    - ``token_error``: a dict makes the token endpoint answer 400 with it as the JSON body.
    - ``token_fault``: ``(status, text)`` makes it answer that status with that body as
      ``text/html`` instead (a gateway's error page, a 200 that is not JSON).
    - ``discovery_override``: ``override(document) -> document`` transforms the discovery
      document (an endpoint pointed elsewhere, say).
    - ``graph_fault``: an HTTP status the Microsoft Graph double answers with instead (500,
      401); ``graph_page_size``: its answer in pages of that many ids (``@odata.nextLink``).

    Like an IdP behind a load balancer, every token answer sets a cookie
    (``dev_idp_affinity``, a new random value each time).

    Records: ``authorize_requests`` (one query dict per authorization request received),
    ``token_requests`` (form dicts without ``client_secret``), ``token_cookies`` (the
    ``Cookie`` header each token request brought, "" without one), ``token_auth_methods`` (how each
    token request authenticated its client), ``end_session_requests``, ``graph_requests``
    (the Graph double's, as ``(method, access token)``), ``sessions`` (sid -> (client_id,
    sub), for front-channel logout), and the counters ``jwks_requests`` and
    ``userinfo_requests``.
    """

    def __init__(
        self,
        *,
        clients: Iterable[DevClient],
        users: Iterable[DevUser],
        issuer: str | None,
        clock: Callable[[], float],
    ) -> None:
        self._lock = threading.RLock()
        self._clients: dict[str, DevClient] = {}
        self._users: dict[str, DevUser] = {}
        self._codes: dict[str, _AuthCode] = {}
        self._access_tokens: dict[str, _AccessGrant] = {}
        self._key = _new_signing_key()
        self.clock = clock
        self.issuer: str | None = issuer or None
        self.id_token_claims_in_token: bool = True
        self.tamper: IdTokenTamper | None = None
        self.userinfo_override: UserinfoOverride | None = None
        self.token_error: dict[str, Any] | None = None
        self.token_fault: tuple[int, str] | None = None
        self.discovery_override: DiscoveryOverride | None = None
        self.graph_fault: int | None = None
        self.graph_page_size: int | None = None
        self.graph_requests: list[tuple[str, str]] = []
        self.sessions: dict[str, tuple[str, str]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.token_cookies: list[str] = []
        self.token_auth_methods: list[str] = []
        self.end_session_requests: list[dict[str, str]] = []
        self.jwks_requests: int = 0
        self.userinfo_requests: int = 0
        for client in clients:
            self.add_client(client)
        for user in users:
            self.add_user(user)

    # -- registry -------------------------------------------------------------------------

    def add_client(self, client: DevClient) -> None:
        """Register (or replace) a relying party."""
        with self._lock:
            self._clients[client.client_id] = client

    def add_user(self, user: DevUser) -> None:
        """Add (or replace, by e-mail) a test user."""
        with self._lock:
            self._users[user.email.casefold()] = user

    @property
    def clients(self) -> dict[str, DevClient]:
        """A snapshot of the registered clients by client_id."""
        with self._lock:
            return dict(self._clients)

    @property
    def users(self) -> tuple[DevUser, ...]:
        """A snapshot of the test users."""
        with self._lock:
            return tuple(self._users.values())

    def client(self, client_id: str) -> DevClient | None:
        with self._lock:
            return self._clients.get(client_id)

    def authenticate_user(self, email: str, password: str) -> DevUser | None:
        with self._lock:
            user = self._users.get(email.strip().casefold())
        if user is None:
            return None
        if not hmac.compare_digest(user.password.encode(), password.encode()):
            return None
        return user

    def user_by_sub(self, sub: str) -> DevUser | None:
        with self._lock:
            return next((u for u in self._users.values() if u.sub == sub), None)

    def server_path(self, requested: str) -> str | None:
        """The ``issuer_path`` of a client's authorization server whose discovery document is
        at ``requested`` (a ``{tenantid}`` segment matches any one segment), if any."""
        wanted = requested.rstrip("/").split("/")
        for client in self.clients.values():
            path = client.quirks.issuer_path
            if path is None:
                continue
            mine = path.rstrip("/").split("/")
            if len(mine) == len(wanted) and all(
                a in (b, TENANT_PLACEHOLDER) for a, b in zip(mine, wanted, strict=True)
            ):
                return path
        return None

    def start_session(self, client_id: str, sub: str) -> str:
        """A new IdP session id (``sid``) of ``sub`` at a front-channel client."""
        sid = secrets.token_urlsafe(16)
        with self._lock:
            self.sessions[sid] = (client_id, sub)
        return sid

    def end_sessions_of(self, sub: str) -> list[tuple[str, str]]:
        """End every IdP session of ``sub``: their (sid, client_id)."""
        with self._lock:
            ended = [(sid, c) for sid, (c, owner) in self.sessions.items() if owner == sub]
            for sid, _ in ended:
                del self.sessions[sid]
        return ended

    # -- keys -----------------------------------------------------------------------------

    @property
    def private_key(self) -> RSAKey:
        """The current signing key (a private joserfc ``RSAKey``; ``.private_key`` is the
        cryptography object)."""
        with self._lock:
            return self._key

    @property
    def kid(self) -> str:
        with self._lock:
            return self._key.kid or ""

    def rotate_key(self) -> str:
        """Replace the signing key by a new one with a new kid; the JWKS then serves only the
        new key.  Returns the new kid."""
        key = _new_signing_key()
        with self._lock:
            self._key = key
        return key.kid or ""

    def public_jwk(self) -> dict[str, Any]:
        """The current public key as a JWK with kid, use ``sig`` and alg ``RS256``."""
        return dict(self.private_key.as_dict(private=False))

    def public_pem(self) -> bytes:
        """The current public key as PEM (SubjectPublicKeyInfo)."""
        return self.private_key.as_pem(private=False)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def sign(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        """Sign ``claims`` with the current key.  ``alg`` defaults to RS256 and ``kid`` to the
        current key's kid when ``header`` lacks them."""
        key = self.private_key
        full_header: dict[str, Any] = {"alg": SIGNING_ALG, "kid": key.kid, **header}
        return jwt.encode(full_header, dict(claims), key, algorithms=[full_header["alg"]])

    # -- codes and tokens -----------------------------------------------------------------

    def issue_code(self, grant: _AuthCode) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._purge()
            self._codes[code] = grant
        return code

    def redeem_code(self, code: str) -> _AuthCode | None:
        """Return the grant of a code once; reuse revokes the tokens issued from it
        (RFC 6749 section 4.1.2) and returns None."""
        with self._lock:
            grant = self._codes.get(code)
            if grant is None:
                return None
            if grant.used:
                for token in grant.access_tokens:
                    self._access_tokens.pop(token, None)
                log.info("authorization code reused; revoked the tokens issued from it")
                return None
            grant.used = True
            return grant

    def issue_access_token(self, grant: _AuthCode) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[token] = _AccessGrant(
                sub=grant.sub,
                client_id=grant.client_id,
                scope=grant.scope,
                expires_at=self.clock() + ACCESS_TOKEN_LIFETIME_SECONDS,
            )
            grant.access_tokens.append(token)
        return token

    def access_grant(self, token: str) -> _AccessGrant | None:
        with self._lock:
            grant = self._access_tokens.get(token)
        if grant is None or grant.expires_at <= self.clock():
            return None
        return grant

    def _purge(self) -> None:
        # Used codes are kept until they expire so that reuse can be detected.
        now = self.clock()
        for code in [c for c, g in self._codes.items() if g.expires_at <= now]:
            del self._codes[code]
        for token in [t for t, g in self._access_tokens.items() if g.expires_at <= now]:
            del self._access_tokens[token]

    # -- records --------------------------------------------------------------------------

    def record(self, records: list[dict[str, str]], values: Mapping[str, str]) -> None:
        clean = {k: v for k, v in values.items() if k not in _SECRET_FORM_FIELDS}
        with self._lock:
            records.append(clean)

    def record_token_cookie(self, header: str) -> None:
        with self._lock:
            self.token_cookies.append(header)

    def record_token_auth(self, method: str) -> None:
        with self._lock:
            self.token_auth_methods.append(method)

    def record_graph(self, method: str, token: str) -> None:
        with self._lock:
            self.graph_requests.append((method, token))

    def count_jwks_request(self) -> None:
        with self._lock:
            self.jwks_requests += 1

    def count_userinfo_request(self) -> None:
        with self._lock:
            self.userinfo_requests += 1


# -- templates ------------------------------------------------------------------------------

_LAYOUT = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{% block title %}{% endblock %} · Development identity provider</title>
<style>
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  background: #f3f4f6; color: #111827;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { background: #fff; width: 100%; max-width: 24rem; margin: 1rem; padding: 2rem;
  border-radius: .75rem; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
.badge { display: inline-block; font-size: .75rem; padding: .125rem .5rem; margin: 0 0 1rem;
  border-radius: 999px; background: #fef3c7; color: #92400e; }
.muted { color: #6b7280; margin-top: 0; }
.error { background: #fee2e2; color: #991b1b; padding: .5rem .75rem; border-radius: .375rem; }
label { display: block; font-weight: 600; margin: 1rem 0 .25rem; }
input { box-sizing: border-box; width: 100%; padding: .5rem .75rem; font: inherit;
  border: 1px solid #d1d5db; border-radius: .375rem; }
.actions { display: flex; gap: .5rem; margin-top: 1.5rem; }
button { flex: 1; padding: .6rem 1rem; font: inherit; font-weight: 600; cursor: pointer;
  border-radius: .375rem; border: 1px solid #1d4ed8; background: #2563eb; color: #fff; }
button.secondary { background: #fff; color: #374151; border-color: #d1d5db; }
ul { padding-left: 1.25rem; margin: 0; }
code { font-size: .9em; }
</style>
</head>
<body>
<main>
<p class="badge">Development identity provider &mdash; not for production</p>
{% block content %}{% endblock %}
</main>
</body>
</html>
"""

_LOGIN = """{% extends "idp/layout.html" %}
{% block title %}Sign in{% endblock %}
{% block content %}
<h1>Sign in</h1>
<p class="muted">to continue to <strong>{{ client_id }}</strong></p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="{{ action }}">
<label for="email">E-mail</label>
<input id="email" name="email" type="email" autocomplete="username" value="{{ email }}"
  required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<div class="actions">
<button type="submit" name="action" value="sign_in">Sign in</button>
<button type="submit" name="action" value="cancel" class="secondary" formnovalidate>Cancel</button>
</div>
</form>
{% if users %}
<h2>Test users</h2>
<ul>
{% for user in users %}<li><code>{{ user.email }}</code>
{%- if not user.email_verified %} (e-mail not verified){% endif %}</li>
{% endfor %}
</ul>
{% if password_hint %}<p class="muted">Password for each: <code>{{ password_hint }}</code></p>
{% endif %}
{% endif %}
{% endblock %}
"""

_MESSAGE = """{% extends "idp/layout.html" %}
{% block title %}{{ title }}{% endblock %}
{% block content %}
<h1>{{ title }}</h1>
<p{% if is_error %} class="error" role="alert"{% endif %}>{{ message }}</p>
{% endblock %}
"""

_FRONTCHANNEL = """{% extends "idp/layout.html" %}
{% block title %}Signing out{% endblock %}
{% block content %}
<h1>Signed out</h1>
<p class="muted" id="rp-count">Signing you out of {{ frames|length }} application(s).</p>
{% for src in frames %}<iframe class="rp-logout" src="{{ src }}"
  title="Signing out of an application" width="300" height="120"></iframe>
{% endfor %}
{% endblock %}
"""

_TEMPLATES = {
    "idp/layout.html": _LAYOUT,
    "idp/login.html": _LOGIN,
    "idp/message.html": _MESSAGE,
    "idp/frontchannel.html": _FRONTCHANNEL,
}
_DEFAULT_PASSWORD_HINT = "password"  # noqa: S105 - the published test password
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


# -- helpers --------------------------------------------------------------------------------


def _issuer(state: DevIdPState) -> str:
    return state.issuer or request.url_root.rstrip("/")


#: A CSP source list that allows nothing.
NO_SOURCE = "'none'"
#: The placeholder of a multi-tenant issuer (Entra ID's discovery document names it verbatim).
TENANT_PLACEHOLDER = "{tenantid}"


def _token_issuer(state: DevIdPState, client: DevClient, user: DevUser) -> str:
    """The ``iss`` of a token for ``user`` at ``client``: the IdP's issuer, or its client's
    authorization server's (``{tenantid}`` filled in with the user's ``tid``)."""
    path = client.quirks.issuer_path
    if path is None:
        return _issuer(state)
    tenant = {**client.quirks.claims, **user.claims}.get("tid", "")
    return _issuer(state).rstrip("/") + path.replace(TENANT_PLACEHOLDER, str(tenant))


def _graph_error(status: int, code: str, message: str) -> ResponseReturnValue:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _page(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(template, **context), status, _PAGE_HEADERS


def _message_page(title: str, message: str, status: int = 400) -> ResponseReturnValue:
    return _page("idp/message.html", status, title=title, message=message, is_error=status >= 400)


def _with_query(uri: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((k, v) for k, v in params.items() if v is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _redirect(uri: str, params: Mapping[str, str | None]) -> Response:
    response = redirect(_with_query(uri, params), code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _affinity_cookie(response: Response) -> Response:
    """What a load balancer in front of an IdP adds to its answers: a cookie to come back with."""
    response.set_cookie("dev_idp_affinity", secrets.token_hex(8), httponly=True, path="/")
    return response


def _oauth_error(
    error: str,
    description: str,
    status: int = 400,
    headers: Mapping[str, str] | None = None,
) -> ResponseReturnValue:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _single_values(params: MultiDict[str, str]) -> tuple[dict[str, str], str | None]:
    """Flatten request parameters; RFC 6749 section 3.1 forbids repeating one."""
    repeated = sorted(k for k in params if len(params.getlist(k)) > 1)
    flat = {k: params[k] for k in params}
    if repeated:
        return flat, f"repeated parameter(s): {', '.join(repeated)}"
    return flat, None


def _s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _granted_scope(requested: str) -> tuple[str, ...]:
    asked = requested.split()
    return tuple(s for s in SUPPORTED_SCOPES if s in asked)


def _shaped_claims(user: DevUser, scope: Iterable[str], quirks: IdPQuirks) -> dict[str, Any]:
    """The user's claims as a client with these quirks receives them."""
    claims = _user_claims(user, scope)
    if not quirks.send_email_verified:
        claims.pop("email_verified", None)
    groups = claims.pop("groups", None)
    extra = {**quirks.claims, **user.claims}
    claims.update(extra)
    if groups:
        if quirks.groups_overage_above is not None and len(groups) > quirks.groups_overage_above:
            endpoint = OVERAGE_ENDPOINT.format(tid=extra.get("tid", "common"), oid=user.sub)
            claims["_claim_names"] = {"groups": "src1"}
            claims["_claim_sources"] = {"src1": {"endpoint": endpoint}}
        elif isinstance(quirks.groups_claim, str):
            claims[quirks.groups_claim] = groups
        else:
            *parents, leaf = quirks.groups_claim
            node = claims
            for name in parents:
                child = node.get(name)
                node[name] = child = dict(child) if isinstance(child, Mapping) else {}
                node = child
            node[leaf] = groups
    return claims


def _user_claims(user: DevUser, scope: Iterable[str]) -> dict[str, Any]:
    scope = set(scope)
    claims: dict[str, Any] = {}
    if "email" in scope:
        claims["email"] = user.email
        claims["email_verified"] = user.email_verified
    if "profile" in scope:
        if user.given_name is not None:
            claims["given_name"] = user.given_name
        if user.family_name is not None:
            claims["family_name"] = user.family_name
        full_name = " ".join(n for n in (user.given_name, user.family_name) if n)
        if full_name:
            claims["name"] = full_name
    if user.groups:
        claims["groups"] = list(user.groups)
    return claims


def _client_credentials() -> tuple[str, str | None, str] | str:
    """(client_id, secret, method used) from the token request, or an error description."""
    header = request.headers.get("Authorization", "")
    form_id = request.form.get("client_id")
    form_secret = request.form.get("client_secret")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return "unsupported Authorization scheme at the token endpoint"
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "malformed Basic credentials"
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            return "malformed Basic credentials"
        if form_secret is not None:
            return "more than one client authentication method used"
        # RFC 6749 section 2.3.1: both parts are form-urlencoded before base64.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if form_id is not None and form_id != client_id:
            return "client_id does not match the Basic credentials"
        return client_id, secret, "client_secret_basic"
    if form_id is None:
        return "client authentication required"
    if form_secret is not None:
        return form_id, form_secret, "client_secret_post"
    return form_id, None, "none"


# -- app ------------------------------------------------------------------------------------


def create_idp_app(
    *,
    clients: Iterable[DevClient],
    users: Iterable[DevUser] = DEFAULT_USERS,
    issuer: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """Build the development IdP.  Its state and test hooks are at
    ``app.extensions["dev_idp"]`` (a :class:`DevIdPState`)."""
    app = Flask(__name__)
    app.jinja_loader = DictLoader(_TEMPLATES)
    state = DevIdPState(clients=clients, users=users, issuer=issuer, clock=clock)
    app.extensions[EXTENSION_KEY] = state

    def discovery_document(iss: str, base: str) -> ResponseReturnValue:
        document: dict[str, Any] = {
            "issuer": iss,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks.json",
            "end_session_endpoint": f"{base}/end-session",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            # On purpose: the relying party must pin its own algorithms.
            "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "scopes_supported": list(SUPPORTED_SCOPES),
            "claims_supported": [*PROTOCOL_CLAIMS, *USER_CLAIMS],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }
        if any(c.frontchannel_logout_uri for c in state.clients.values()):
            document["frontchannel_logout_supported"] = True
            document["frontchannel_logout_session_supported"] = True
        override = state.discovery_override
        return jsonify(override(document) if override else document)

    @app.get("/.well-known/openid-configuration")
    def discovery() -> ResponseReturnValue:
        iss = _issuer(state)
        return discovery_document(iss, iss.rstrip("/"))

    @app.get("/<path:prefix>/.well-known/openid-configuration")
    def server_discovery(prefix: str) -> ResponseReturnValue:
        """A client's own authorization server (:attr:`IdPQuirks.issuer_path`): its issuer
        is the path as registered (``{tenantid}`` kept verbatim); its endpoints are the IdP's."""
        path = state.server_path(f"/{prefix}")
        if path is None:
            return _oauth_error("not_found", "no authorization server here", 404)
        root = _issuer(state).rstrip("/")
        return discovery_document(root + path, root)

    @app.get("/jwks.json")
    def jwks() -> ResponseReturnValue:
        state.count_jwks_request()
        response = jsonify(state.jwks())
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize() -> ResponseReturnValue:
        is_login = request.method == "POST" and (
            "email" in request.form or "action" in request.form
        )
        # A login form posts back to the authorization URL, so the query carries the request;
        # an authorization request may itself arrive as a form POST (OIDC Core 3.1.2.1).
        source = request.args if (is_login or request.method == "GET") else request.form
        params, repeated = _single_values(source)
        if not is_login:
            state.record(state.authorize_requests, params)

        # Client and redirect URI first: until both are known good, never redirect.
        if any(len(source.getlist(k)) > 1 for k in ("client_id", "redirect_uri")):
            return _message_page("Invalid request", "client_id or redirect_uri is repeated.")
        client_id = params.get("client_id", "")
        client = state.client(client_id) if client_id else None
        if client is None:
            return _message_page("Unknown client", "The client_id is missing or not registered.")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return _message_page(
                "Invalid redirect URI",
                "The redirect_uri is missing or does not exactly match one registered for "
                "this client.",
            )

        oauth_state = params.get("state")

        def fail(error: str, description: str) -> Response:
            return _redirect(
                redirect_uri,
                {"error": error, "error_description": description, "state": oauth_state},
            )

        if repeated:
            return fail("invalid_request", repeated)
        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "only response_type=code is supported")
        if params.get("response_mode", "query") != "query":
            return fail("invalid_request", "only response_mode=query is supported")
        if "openid" not in params.get("scope", "").split():
            return fail("invalid_scope", "the scope must include openid")
        challenge = params.get("code_challenge")
        if not challenge:
            return fail("invalid_request", "PKCE is required: code_challenge is missing")
        if params.get("code_challenge_method") != "S256":
            return fail("invalid_request", "code_challenge_method must be S256")
        if not _PKCE_VALUE.fullmatch(challenge):
            return fail("invalid_request", "malformed code_challenge")
        if params.get("prompt") == "none":
            return fail("login_required", "the development IdP keeps no sessions")

        users_list = state.users
        passwords = {u.password for u in users_list}
        hint = _DEFAULT_PASSWORD_HINT if passwords == {_DEFAULT_PASSWORD_HINT} else None
        carried = {k: params[k] for k in AUTHORIZE_PARAMS if k in params}
        action = f"{url_for('authorize')}?{urlencode(carried)}"

        def login_page(error: str | None = None, email: str = "") -> ResponseReturnValue:
            return _page(
                "idp/login.html",
                200 if error is None else 401,
                client_id=client_id,
                action=action,
                error=error,
                email=email,
                users=users_list,
                password_hint=hint,
            )

        if not is_login:
            return login_page(email=params.get("login_hint", ""))

        if request.form.get("action") == "cancel":
            return _redirect(redirect_uri, {"error": "access_denied", "state": oauth_state})

        email = request.form.get("email", "")
        user = state.authenticate_user(email, request.form.get("password", ""))
        if user is None:
            return login_page(error="Wrong e-mail or password.", email=email)

        now = state.clock()
        sid = (
            state.start_session(client.client_id, user.sub)
            if client.frontchannel_logout_uri
            else None
        )
        code = state.issue_code(
            _AuthCode(
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                code_challenge=challenge,
                nonce=params.get("nonce"),
                scope=_granted_scope(params.get("scope", "")),
                sub=user.sub,
                auth_time=int(now),
                expires_at=now + CODE_LIFETIME_SECONDS,
                sid=sid,
            )
        )
        log.info("dev IdP: %s signed in for client %s", user.sub, client.client_id)
        return _redirect(redirect_uri, {"code": code, "state": oauth_state})

    @app.post("/token")
    def token() -> ResponseReturnValue:
        form, repeated = _single_values(request.form)
        state.record(state.token_requests, form)
        state.record_token_cookie(request.headers.get("Cookie", ""))
        after_this_request(_affinity_cookie)
        credentials = _client_credentials()
        state.record_token_auth(credentials[2] if isinstance(credentials, tuple) else "invalid")
        if state.token_error is not None:
            response = jsonify(state.token_error)
            response.status_code = 400
            response.headers["Cache-Control"] = "no-store"
            return response
        if state.token_fault is not None:
            status, text = state.token_fault
            return Response(text, status=status, mimetype="text/html")

        basic_challenge = {"WWW-Authenticate": 'Basic realm="dev-idp"'}
        if isinstance(credentials, str):
            return _oauth_error("invalid_client", credentials, 401, basic_challenge)
        client_id, secret, method = credentials
        client = state.client(client_id)
        if client is None:
            return _oauth_error("invalid_client", "unknown client", 401, basic_challenge)
        if method != client.token_endpoint_auth_method:
            return _oauth_error(
                "invalid_client",
                f"this client must authenticate with {client.token_endpoint_auth_method}",
                401,
                basic_challenge,
            )
        if client.client_secret is not None and not hmac.compare_digest(
            client.client_secret.encode(), (secret or "").encode()
        ):
            return _oauth_error("invalid_client", "client authentication failed", 401)

        if repeated:
            return _oauth_error("invalid_request", repeated)
        if form.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type", "only authorization_code is supported")
        code = form.get("code")
        if not code:
            return _oauth_error("invalid_request", "code is missing")
        grant = state.redeem_code(code)  # single use: consumed by any attempt from here on
        if grant is None:
            return _oauth_error("invalid_grant", "unknown, expired or already used code")
        if grant.expires_at <= state.clock():
            return _oauth_error("invalid_grant", "the code has expired")
        if grant.client_id != client.client_id:
            return _oauth_error("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _oauth_error("invalid_grant", "redirect_uri does not match the authorization")
        verifier = form.get("code_verifier")
        if not verifier:
            return _oauth_error("invalid_request", "code_verifier is missing")
        if not _PKCE_VALUE.fullmatch(verifier) or not hmac.compare_digest(
            _s256(verifier), grant.code_challenge
        ):
            return _oauth_error("invalid_grant", "code_verifier does not match code_challenge")
        user = state.user_by_sub(grant.sub)
        if user is None:
            return _oauth_error("invalid_grant", "the user no longer exists")

        offset = client.quirks.clock_offset_seconds
        now = int(state.clock()) + offset
        claims: dict[str, Any] = {
            "iss": _token_issuer(state, client, user),
            "sub": user.sub,
            "aud": client.client_id,
            "exp": now + ID_TOKEN_LIFETIME_SECONDS,
            "iat": now,
            "auth_time": grant.auth_time + offset,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if grant.sid is not None:
            claims["sid"] = grant.sid
        if state.id_token_claims_in_token:
            claims.update(_shaped_claims(user, grant.scope, client.quirks))
        elif "tid" in {**client.quirks.claims, **user.claims}:
            claims["tid"] = {**client.quirks.claims, **user.claims}["tid"]
        header: dict[str, Any] = {"typ": "JWT", "alg": SIGNING_ALG, "kid": state.kid}
        tamper = state.tamper
        id_token = tamper(header, claims, state) if tamper else state.sign(header, claims)

        response = jsonify(
            {
                "access_token": state.issue_access_token(grant),
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME_SECONDS,
                "id_token": id_token,
                "scope": " ".join(grant.scope),
            }
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    @app.route("/userinfo", methods=["GET", "POST"])
    def userinfo() -> ResponseReturnValue:
        state.count_userinfo_request()
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        grant = state.access_grant(value.strip()) if scheme.lower() == "bearer" else None
        user = state.user_by_sub(grant.sub) if grant else None
        if grant is None or user is None:
            return _oauth_error(
                "invalid_token",
                "missing, unknown or expired access token",
                401,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        client = state.client(grant.client_id)
        quirks = client.quirks if client else IdPQuirks()
        claims: dict[str, Any] = {"sub": user.sub, **_shaped_claims(user, grant.scope, quirks)}
        override = state.userinfo_override
        if override is not None:
            claims = override(claims)
        response = jsonify(claims)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.route("/_graph/v1.0/me/getMemberObjects", methods=["GET", "POST"])
    def graph_member_objects() -> ResponseReturnValue:
        """A Microsoft Graph double: the signed-in user's group ids, for the bearer access
        token this IdP issued; ``state.graph_fault`` answers with that status instead."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        state.record_graph(request.method, token)
        if state.graph_fault is not None:
            return _graph_error(state.graph_fault, "ServiceFault", "the Graph double fails")
        grant = state.access_grant(token) if token else None
        user = state.user_by_sub(grant.sub) if grant else None
        if grant is None or user is None:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is invalid.")
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or not isinstance(body.get("securityEnabledOnly"), bool):
                return _graph_error(400, "Request_BadRequest", "securityEnabledOnly is required")
        ids = list(user.groups)
        start = int(request.args.get("skip", "0") or 0)
        size = state.graph_page_size or max(len(ids), 1)
        answer: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
            "value": ids[start : start + size],
        }
        if start + size < len(ids):
            answer["@odata.nextLink"] = (
                f"{request.url_root}_graph/v1.0/me/getMemberObjects?skip={start + size}"
            )
        return jsonify(answer)

    @app.get("/_frontchannel-logout")
    def frontchannel_logout_page() -> ResponseReturnValue:
        """The IdP's logout page (OpenID Connect Front-Channel Logout 1.0, section 3): it ends
        every IdP session of ``sub`` and loads each RP's front-channel logout URI in an
        iframe, with ``iss`` and ``sid`` as each client registered."""
        sub = request.args.get("sub", "")
        user = state.user_by_sub(sub)
        frames: list[str] = []
        for sid, client_id in state.end_sessions_of(sub):
            client = state.client(client_id)
            if client is None or not client.frontchannel_logout_uri or user is None:
                continue
            params: dict[str, str | None] = {}
            if client.frontchannel_logout_session_required:
                if client.frontchannel_logout_iss:
                    params["iss"] = _token_issuer(state, client, user)
                params["sid"] = sid
            frames.append(_with_query(client.frontchannel_logout_uri, params))
        origins = sorted({f"{urlsplit(f).scheme}://{urlsplit(f).netloc}" for f in frames})
        headers = {
            **_PAGE_HEADERS,
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            f"frame-src {' '.join(origins) or NO_SOURCE}; frame-ancestors 'none'; base-uri 'none'",
        }
        body = render_template("idp/frontchannel.html", frames=frames)
        return body, 200, headers

    @app.route("/end-session", methods=["GET", "POST"])
    def end_session() -> ResponseReturnValue:
        params, _ = _single_values(request.args if request.method == "GET" else request.form)
        state.record(state.end_session_requests, params)
        target = params.get("post_logout_redirect_uri")
        if not target:
            return _message_page("Signed out", "You are signed out.", 200)
        client_id = params.get("client_id") or _hint_audience(state, params.get("id_token_hint"))
        candidates = [c] if client_id and (c := state.client(client_id)) else state.clients.values()
        if not any(_same_origin(target, uri) for c in candidates for uri in c.redirect_uris):
            return _message_page(
                "Invalid post-logout redirect URI",
                "The post_logout_redirect_uri does not belong to a registered client.",
            )
        return _redirect(target, {"state": params.get("state")})

    return app


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return bool(pa.scheme and pa.netloc) and (pa.scheme, pa.netloc) == (pb.scheme, pb.netloc)


def _hint_audience(state: DevIdPState, id_token_hint: str | None) -> str | None:
    """The audience of an ID token this IdP signed with its current key, if it is one."""
    if not id_token_hint:
        return None
    try:
        token = jwt.decode(id_token_hint, state.private_key, algorithms=[SIGNING_ALG])
    except (JoseError, ValueError):
        return None
    aud = token.claims.get("aud")
    if isinstance(aud, list):
        aud = aud[0] if len(aud) == 1 else None
    return aud if isinstance(aud, str) else None
