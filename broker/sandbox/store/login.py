"""Signing in to the sandbox storefront: the Customer Login JWT, the password form, sessions,
and the Current Customer JWT.

No IO, no framework: pure functions of a :class:`LoginBook` (sessions, spent ``jti``s, the
login logs), the store's settings and its customers; :mod:`broker.sandbox.store.storefront`
turns their outcomes into redirects and cookies. Facts followed (``docs/bigcommerce-api.md``,
"Customer Login JWT", "Current Customer JWT" and "Logout"):

- the login JWT's header is exactly ``{"typ": "JWT", "alg": "HS256"}``, signed with the client
  secret of the store's API account or of an app installed on the store; ``iss`` is that
  client id, ``operation`` ``customer_login``, ``store_hash``
  this store, ``customer_id`` an integer of an existing customer; ``iat`` an integer no older
  than 30 seconds and not in the future, on the store's clock; ``jti`` single use;
  ``channel_id`` (default 1) one of the store's channels that the customer may use;
  ``request_ip``, when present, the browser's address;
- ``redirect_to`` (default ``/account.php``) is a relative path: an absolute URL sends the
  browser there but loses the session; a refusal lands on ``/login.php`` with "Invalid login";
- the Current Customer JWT is HS256 with the client secret of the app it is asked for:
  ``customer {id, email, group_id}`` (``group_id`` a string), ``iss`` "bc/apps", ``sub`` and
  ``store_hash`` the store, ``aud`` and ``application_id`` the client id, ``operation``
  ``current_customer``, ``exp`` = ``iat`` + 900; a guest has none.

Where the sandbox decides: a validly signed token's ``jti`` is spent whatever else is wrong
with it; the password form makes the check ``validate-credentials`` makes, on the storefront's
channel (channel 1 when the store has it, else its first); every sign-in replaces the
browser's session (no fixation).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from broker.sandbox.store import customers
from broker.sandbox.store.customers import CustomerBook
from broker.sandbox.store.model import JSONDict, SandboxStore, as_int, default_channel, is_int

LOGIN_JWT_MAX_AGE = 30
CURRENT_JWT_LIFETIME = 900
DEFAULT_REDIRECT = "/account.php"


@dataclass
class LoginBook:
    """One store's storefront sessions, spent ``jti``s and sign-in logs."""

    sessions: dict[str, int] = field(default_factory=dict)  # session id -> customer id
    used_jtis: set[str] = field(default_factory=set)
    logins: list[JSONDict] = field(default_factory=list)  # /login/token attempts
    password_logins: list[JSONDict] = field(default_factory=list)  # password form attempts


@dataclass(frozen=True)
class LoginOutcome:
    """Where to send the browser, and its new session (None: no session started)."""

    location: str
    session_id: str | None


class LoginRefused(Exception):
    """A login JWT the storefront refuses; ``reason`` goes to the login log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- /login/token/<jwt> ----------------------------------------------------------------------


def attempt_login(
    book: LoginBook,
    settings: SandboxStore,
    people: CustomerBook,
    token: str,
    remote_addr: str | None,
    old_session: str | None,
    now: float,
    app_secrets: Mapping[str, str] | None = None,
) -> LoginOutcome:
    """Check a Customer Login JWT at ``now`` (the store's clock), log the attempt, and sign
    the customer in when it passes.

    ``app_secrets``: the client id and secret of each app installed on the store; a token
    whose ``iss`` names one must be signed with its secret, any other with the store's.
    """
    base = f"/s/{settings.store_hash}"
    entry: JSONDict = {"ok": False, "reason": "", "customer_id": None, "claims": None, "time": now}
    book.logins.append(entry)
    try:
        header, claims = _split_jwt(token)
        entry["claims"] = claims
        signers = signing_keys(settings, app_secrets)
        issuer = claims.get("iss")
        secret = signers.get(issuer) if isinstance(issuer, str) else None
        _verify_signature(token, header, secret or settings.client_secret)
        _remember_jti(book, claims)
        if secret is None:
            raise LoginRefused("iss is not the client id of the store or of an installed app")
        customer_id, target = _check_login_claims(settings, people, claims, remote_addr, now)
    except LoginRefused as refused:
        entry["reason"] = refused.reason
        return LoginOutcome(f"{base}/login.php?error=invalid_login", None)
    entry["customer_id"] = customer_id
    if _is_absolute(target):
        entry["reason"] = "redirect_to is absolute: the session is lost"
        return LoginOutcome(target, None)
    session_id = _start_session(book, customer_id, old_session)
    entry.update(ok=True, reason="ok")
    return LoginOutcome(base + (target if target.startswith("/") else "/" + target), session_id)


def signing_keys(settings: SandboxStore, app_secrets: Mapping[str, str] | None) -> dict[str, str]:
    """Client id -> secret of everyone who may sign for the store: its own API account and
    the apps installed on it."""
    return {**(app_secrets or {}), settings.client_id: settings.client_secret}


def _split_jwt(token: str) -> tuple[JSONDict, JSONDict]:
    """The header and claims of a compact JWS, unverified."""
    parts = token.split(".")
    if len(parts) != 3:
        raise LoginRefused("malformed token")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except (ValueError, binascii.Error):
        raise LoginRefused("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise LoginRefused("malformed token")
    return header, claims


def _verify_signature(token: str, header: JSONDict, secret: str) -> None:
    if header != {"typ": "JWT", "alg": "HS256"}:
        raise LoginRefused('header must be exactly {"typ": "JWT", "alg": "HS256"}')
    try:
        jwt.decode(token, OctKey.import_key(secret), algorithms=["HS256"])
    except (JoseError, ValueError):
        raise LoginRefused("bad signature") from None


def _remember_jti(book: LoginBook, claims: JSONDict) -> None:
    """Single use: a validly signed token's jti is spent, whatever else is wrong with it."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise LoginRefused("jti missing")
    if jti in book.used_jtis:
        raise LoginRefused("jti already used")
    book.used_jtis.add(jti)


def _check_login_claims(
    settings: SandboxStore,
    people: CustomerBook,
    claims: JSONDict,
    remote_addr: str | None,
    now: float,
) -> tuple[int, str]:
    """The customer id and redirect target of a valid token, else LoginRefused."""
    if claims.get("operation") != "customer_login":
        raise LoginRefused("operation is not customer_login")
    if claims.get("store_hash") != settings.store_hash:
        raise LoginRefused("store_hash is not this store")
    _check_iat(claims.get("iat"), now)
    customer_id = as_int(claims.get("customer_id"))
    if customer_id is None:
        raise LoginRefused("customer_id must be an integer")
    customer = people.records.get(customer_id)
    if customer is None:
        raise LoginRefused("no such customer")
    channel_id = claims.get("channel_id", 1)
    if not is_int(channel_id) or channel_id not in settings.channel_ids:
        raise LoginRefused("channel_id is not a channel of this store")
    if not customers.allows_channel(customer, channel_id):
        raise LoginRefused("the customer may not sign in on this channel")
    if "request_ip" in claims and claims["request_ip"] != remote_addr:
        raise LoginRefused("request_ip is not the browser's address")
    target = claims.get("redirect_to", DEFAULT_REDIRECT)
    if not isinstance(target, str) or not target:
        raise LoginRefused("redirect_to must be a string")
    return customer_id, target


def _check_iat(iat: Any, now: float) -> None:
    if not is_int(iat):
        raise LoginRefused("iat must be an integer")
    if iat > now:
        raise LoginRefused("iat is in the future")
    if iat < now - LOGIN_JWT_MAX_AGE:
        raise LoginRefused(f"iat is older than {LOGIN_JWT_MAX_AGE} seconds")


def _is_absolute(target: str) -> bool:
    parts = urlsplit(target)
    return bool(parts.scheme or parts.netloc) or target.startswith(("//", "/\\", "\\"))


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# -- the password form -----------------------------------------------------------------------


def password_login(
    book: LoginBook,
    settings: SandboxStore,
    people: CustomerBook,
    email: str,
    password: str,
    old_session: str | None,
    now: float,
) -> LoginOutcome:
    """``POST /login.php?action=check_login``: the form's e-mail and password."""
    base = f"/s/{settings.store_hash}"
    channel_id = default_channel(settings)
    entry: JSONDict = {
        "method": "password",
        "ok": False,
        "reason": "",
        "email": email,
        "customer_id": None,
        "channel_id": channel_id,
        "time": now,
    }
    book.password_logins.append(entry)
    customer_id = (
        customers.check_credentials(people, email, password, channel_id) if email else None
    )
    if customer_id is None:
        entry["reason"] = "email or password incorrect"
        return LoginOutcome(f"{base}/login.php", None)
    session_id = _start_session(book, customer_id, old_session)
    entry.update(ok=True, reason="ok", customer_id=customer_id)
    return LoginOutcome(base + DEFAULT_REDIRECT, session_id)


# -- sessions --------------------------------------------------------------------------------


def _start_session(book: LoginBook, customer_id: int, old_session: str | None) -> str:
    """A new session id for the customer; the browser's old one ends (no fixation)."""
    book.sessions.pop(old_session or "", None)
    session_id = secrets.token_urlsafe(32)
    book.sessions[session_id] = customer_id
    return session_id


def session_customer(
    book: LoginBook, people: CustomerBook, session_id: str | None
) -> JSONDict | None:
    """The customer signed in with this session (the record itself, not a copy), or None."""
    customer_id = book.sessions.get(session_id or "")
    return people.records.get(customer_id) if customer_id is not None else None


def end_session(book: LoginBook, session_id: str | None) -> None:
    book.sessions.pop(session_id or "", None)


def end_sessions_of(book: LoginBook, customer_ids: list[int]) -> None:
    """Every session of these (deleted) customers ends."""
    book.sessions = {sid: cid for sid, cid in book.sessions.items() if cid not in customer_ids}


# -- /customer/current.jwt -------------------------------------------------------------------


def current_customer_jwt(
    settings: SandboxStore,
    customer: JSONDict,
    now: int,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> str:
    """The Current Customer JWT of a signed-in customer, issued at ``now``, for the store's
    own API account or (``client_id``, ``client_secret``) an app installed on it."""
    client_id = client_id or settings.client_id
    client_secret = client_secret or settings.client_secret
    claims = {
        "customer": {
            "id": customer["id"],
            "email": customer["email"],
            "group_id": str(customer["customer_group_id"]),
        },
        "iss": "bc/apps",
        "sub": settings.store_hash,
        "iat": now,
        "exp": now + CURRENT_JWT_LIFETIME,
        "version": 1,
        "aud": client_id,
        "application_id": client_id,
        "store_hash": settings.store_hash,
        "operation": "current_customer",
    }
    header = {"typ": "JWT", "alg": "HS256"}
    return jwt.encode(header, claims, OctKey.import_key(client_secret), algorithms=["HS256"])
