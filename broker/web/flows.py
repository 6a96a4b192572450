"""Pending sign-ins: the state, nonce and PKCE verifier of a started flow, and the checks its
answer must pass.

**OIDC** flows travel with the browser: the record is sealed (AES-SIV, RFC 5297: encrypted and
authenticated, with a key HKDF-derived from ``[broker] secret_key`` for this purpose alone;
the time it was sealed rides in clear, authenticated as associated data) into a cookie named
after a hash of the flow's ``state``, readable only by the broker, for at most
``flow_ttl_seconds``. AES-SIV is one call into OpenSSL each way, where Fernet (which sealed
flows before, and whose cookies are still opened until the last of them expires) builds a
cipher, a padder and an HMAC in Python for each, a tenth of a millisecond a sign-in in a
request; and it needs no nonce that must never repeat under one long-lived key.

Starting a sign-in then writes nothing. The callback opens the cookie whose name its ``state``
gives and spends the flow once in the one-time store (one INSERT, first, before anything else:
of any number of callbacks with that state, in any number of processes, one goes on). The
record still carries a hash of the browser's id cookie, and the callback checks it with the
store and connection, as before.

**SAML** flows (and OIDC flows a broker before this one started) are kept server-side under a
hash of the state or RelayState: the ACS is a cross-site POST, which brings no ``Lax``
cookie. Taking one deletes it, once.

Either way a callback URL replayed, shared, forged or completed in another browser (login
CSRF) is refused, across every broker process sharing the storage.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from flask import Request, after_this_request, redirect
from werkzeug.wrappers import Response

from broker.errors import FlowExpired, StateMismatch
from broker.settings.secrets import derived_bytes, derived_key
from broker.signin.flows import PendingSignIn
from broker.storage import Storage, keys
from broker.storage.keys import digest as digest
from broker.web import cookies

_COOKIE = "broker_browser"
#: An OIDC flow's cookie: this prefix and the first 16 hex digits of its state's hash, so two
#: sign-ins started in two tabs each keep their own.
_FLOW_COOKIE = "broker_flow_"
_FLOW_PURPOSE = "oidc-flow-cookie"
_SIV_PURPOSE = "oidc-flow-cookie-aes-siv"
#: The flows one browser carries at once (tabs); starting another drops the oldest, so a
#: shopper who clicks "Sign in" again and again never grows a Cookie header past what a
#: server accepts (gunicorn: 8190 bytes a header).
MAX_FLOWS = 4
_STATE_LIMIT = 256


def cookie_name(secure: bool) -> str:
    return cookies.cookie_name(_COOKIE, secure)


def redirect_binding_browser(url: str, browser: str, *, secure: bool, ttl: int) -> Response:
    """A redirect to the IdP that also gives the browser its id cookie."""
    response = redirect(url, code=302)
    set_browser_cookie(response, browser, secure=secure, ttl=ttl)
    return response


def set_browser_cookie(response: Response, value: str, *, secure: bool, ttl: int) -> None:
    cookies.give(response, _COOKIE, value, secure=secure, max_age=ttl)


def flow_cookie_name(state: str, secure: bool) -> str:
    return cookies.cookie_name(_flow_base(state), secure)


def carry_flow(
    response: Response,
    state: str,
    pending: PendingSignIn,
    *,
    held: Mapping[str, str],
    secret_key: str,
    secure: bool,
    ttl: int,
    now: int,
) -> Response:
    """Give the browser the OIDC flow ``state`` names, sealed, for ``ttl`` seconds; of the
    flows it already carries (``held``: the request's cookies), drop the oldest beyond
    :data:`MAX_FLOWS`."""
    prefix = cookies.cookie_name(_FLOW_COOKIE, secure)
    carried = [(n, v) for n, v in held.items() if n.startswith(prefix)]
    if len(carried) >= MAX_FLOWS:
        carried.sort(key=lambda cookie: _issued_at(secret_key, cookie[1]))
        for name, _ in carried[: len(carried) - MAX_FLOWS + 1]:
            cookies.drop(response, name, secure=secure)
    record = {**pending.to_record(), "state": keys.digest(state), "expires_at": now + ttl}
    sealed = _seal(secret_key, json.dumps(record, separators=(",", ":")).encode(), now)
    cookies.give(response, _flow_base(state), sealed, secure=secure, max_age=ttl)
    return response


def complete(
    storage: Storage,
    request: Request,
    *,
    store: str,
    connection: str,
    now: int,
    secure: bool,
    secret_key: str,
) -> PendingSignIn:
    """The flow named by the callback's ``state``, spent; refuse anything that does not fit."""
    state = request.args.get("state", "")
    if not state or len(state) > _STATE_LIMIT:
        raise FlowExpired(
            "This sign-in link is incomplete. Please start signing in again.",
            detail="callback without state",
        )
    name = flow_cookie_name(state, secure)
    sealed = request.cookies.get(name)
    if sealed is None:
        data = storage.take_pending(keys.oidc_flow(state), now)
    else:
        forget_cookie(name, secure)
        data = _carried_flow(storage, sealed, state, secret_key, now)
    if data is None:
        # Without its cookie a flow cannot be told from one started in another browser.
        raise FlowExpired(
            "This sign-in has expired, was already used, or was started in another browser. "
            "Please start signing in again from the store.",
            detail="state unknown, expired or used" if sealed else "no flow for this state",
        )
    flow = PendingSignIn.from_record(data)
    if not same_browser(request, flow.browser, secure) or not flow.belongs_to(store, connection):
        raise StateMismatch(
            "This sign-in was started in another browser or for another store. "
            "Please start signing in again from the store.",
            detail="browser binding or store/connection mismatch",
        )
    return flow


def browser_id(request: Request, secure: bool) -> str:
    """This browser's random id (the cookie's value), a new one if it has none yet."""
    browser = request.cookies.get(cookie_name(secure), "")
    if len(browser) != 43:  # token_urlsafe(32); anything else is not ours
        browser = secrets.token_urlsafe(32)
    return browser


def same_browser(request: Request, browser_digest: str, secure: bool) -> bool:
    """Whether this request comes from the browser whose id hashes to ``browser_digest``."""
    browser = request.cookies.get(cookie_name(secure), "")
    return bool(browser) and hmac.compare_digest(browser_digest, digest(browser))


def forget_cookie(name: str, secure: bool) -> None:
    """Clear cookie ``name`` with the answer to this request, whatever that answer is."""

    @after_this_request
    def clear(response: Response) -> Response:
        cookies.drop(response, name, secure=secure)
        return response


def _carried_flow(
    storage: Storage, sealed: str, state: str, secret_key: str, now: int
) -> dict[str, Any] | None:
    """The record in a flow cookie, if it is the broker's, for this state, unexpired, and
    not spent before; spent now (the one-time store's INSERT, first of all)."""
    opened = _unseal(secret_key, sealed)
    if opened is None:
        return None
    try:
        record = json.loads(opened[1])
    except ValueError:
        return None
    if not isinstance(record, dict) or not _names_state(record, state):
        return None
    expires_at = record.get("expires_at")
    if not isinstance(expires_at, int) or expires_at <= now:
        return None
    if not storage.use_once(keys.oidc_flow_spent(state), expires_at, now):
        return None
    return record


def _names_state(record: Mapping[str, Any], state: str) -> bool:
    named = record.get("state")
    return isinstance(named, str) and hmac.compare_digest(named, keys.digest(state))


def _flow_base(state: str) -> str:
    return _FLOW_COOKIE + keys.digest(state)[:16]


#: A flow cookie's first byte (its format), then when it was sealed (8 bytes, big-endian
#: seconds): AES-SIV's associated data, in clear and authenticated; then AES-SIV's output.
_SEALED = b"\x02"
_HEAD = 9


def _seal(secret_key: str, plaintext: bytes, now: int) -> str:
    head = _SEALED + now.to_bytes(8, "big")
    body = _siv(secret_key).encrypt(plaintext, [head])
    return base64.urlsafe_b64encode(head + body).rstrip(b"=").decode()


def _unseal(secret_key: str, sealed: str) -> tuple[int, bytes] | None:
    """(when it was sealed, the plaintext) of a flow cookie the broker sealed; else None."""
    try:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    except (ValueError, binascii.Error):
        return None
    if raw[:1] == _SEALED:
        try:
            plaintext = _siv(secret_key).decrypt(raw[_HEAD:], [raw[:_HEAD]])
        except (InvalidTag, ValueError):
            return None
        return int.from_bytes(raw[1:_HEAD], "big"), plaintext
    # Sealed with Fernet by a broker before this one: opened as such until it has expired.
    fernet = _fernet(secret_key)
    try:
        return fernet.extract_timestamp(sealed.encode()), fernet.decrypt(sealed.encode())
    except InvalidToken:
        return None


def _issued_at(secret_key: str, sealed: str) -> int:
    """When a flow cookie was sealed; one not the broker's: never."""
    opened = _unseal(secret_key, sealed)
    return -1 if opened is None else opened[0]


@functools.lru_cache(maxsize=4)
def _siv(secret_key: str) -> AESSIV:
    """AES-256-SIV under a 512-bit key HKDF-derived from ``secret_key`` for flow cookies."""
    return AESSIV(derived_bytes(secret_key, purpose=_SIV_PURPOSE, length=64))


@functools.lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    return Fernet(derived_key(secret_key, purpose=_FLOW_PURPOSE))
