"""What every module of the sandbox store shares: a store's settings, its errors, JSON helpers.

No IO, no framework. A :class:`SandboxStore` is one fake store as a test or ``broker demo``
registers it: the credentials BigCommerce would issue (``X-Auth-Token``, the app's client id
and secret, B2B Edition's token), its channels, and the switches for behaviour the documents
leave open (``docs/bigcommerce-api.md``: whether ``email:in`` is case-sensitive, whether B2B
Edition takes users into companies that are not approved).

Errors of the sandbox's own Python and control API::

    SandboxError (ValueError)    bad input: 422 on the control API
     +-- SandboxNotFound         no such store, customer, company or delivery: 404
     +-- SandboxConflict         the store, app or user already exists: 409
     +-- SandboxForbidden        the app is not installed, or not granted to the user: 403

(Errors of the emulated BigCommerce APIs are :class:`broker.sandbox.store.v3.ApiError`.)
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Clock = Callable[[], float]
JSONDict = dict[str, Any]

_STORE_HASH = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class SandboxStore:
    """The settings of one fake store."""

    store_hash: str
    access_token: str  # X-Auth-Token the API accepts
    client_id: str  # the app's client id: the `iss` of Customer Login JWTs
    client_secret: str  # HS256 key of Customer Login JWTs and Current Customer JWTs
    channel_ids: tuple[int, ...] = (1,)
    name: str = "Sandbox store"
    # Channel metadata (broker.sandbox.store.channels): a name per channel, in channel_ids'
    # order (empty: the store's name, then "<name> channel N"); the channels whose
    # storefront is headless Catalyst (the others are Stencil).
    channel_names: tuple[str, ...] = ()
    catalyst_channels: tuple[int, ...] = ()
    sso_login_url: str | None = None  # where the storefront's "Sign in with SSO" link points
    email_case_sensitive: bool = False  # whether `email:in` matches case-sensitively
    # A script every storefront page loads (as a theme or Script Manager script would); when
    # set, the account page also shows a `data-sso-link` link for that script to drive.
    theme_script_url: str | None = None
    # X-Auth-Token of B2B Edition's API (/api/v3/io); None: B2B Edition is not enabled, and
    # every B2B call naming this store is 401, as for an unknown store.
    b2b_token: str | None = None
    # Whether POST /users refuses companies that are not approved (422). The documents do not
    # say; when off, an admin added to an inactive company approves it again.
    b2b_approved_companies_only: bool = True

    def public_json(self) -> JSONDict:
        """The settings without the secrets."""
        return {
            "store_hash": self.store_hash,
            "client_id": self.client_id,
            "channel_ids": list(self.channel_ids),
            "name": self.name,
            "channel_names": list(self.channel_names),
            "catalyst_channels": list(self.catalyst_channels),
            "sso_login_url": self.sso_login_url,
            "email_case_sensitive": self.email_case_sensitive,
            "theme_script_url": self.theme_script_url,
            "b2b_enabled": self.b2b_token is not None,
            "b2b_approved_companies_only": self.b2b_approved_companies_only,
        }


@dataclass(frozen=True)
class RecordedRequest:
    """One management API request the sandbox received, and the status it answered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = None  # the JSON body with passwords redacted, or None
    time: float = 0.0

    def to_json(self) -> JSONDict:
        return dataclasses.asdict(self)


class SandboxError(ValueError):
    """Bad input to the sandbox's own Python or control API (unknown store, bad switch...)."""


class SandboxNotFound(SandboxError):
    """The store, customer or delivery named does not exist (404 on the control API)."""


class SandboxConflict(SandboxError):
    """The store to register already exists (409 on the control API)."""


class SandboxForbidden(SandboxError):
    """The app is not installed, or the user may not use it (403 on the control API)."""


# -- store settings ----------------------------------------------------------------------------


def check_store(store: SandboxStore) -> None:
    """SandboxError unless every setting has its type and form."""
    if not isinstance(store.store_hash, str) or not _STORE_HASH.match(store.store_hash):
        raise SandboxError("store_hash must be 1-64 letters, digits, '-' or '_'")
    for name in ("access_token", "client_id", "client_secret"):
        if not isinstance(getattr(store, name), str) or not getattr(store, name):
            raise SandboxError(f"{name} must be a non-empty string")
    if not store.channel_ids or not all(is_int(c) and c > 0 for c in store.channel_ids):
        raise SandboxError("channel_ids must be a non-empty list of positive integers")
    if not isinstance(store.name, str):
        raise SandboxError("name must be a string")
    if store.channel_names and (
        len(store.channel_names) != len(store.channel_ids)
        or not all(isinstance(n, str) and n for n in store.channel_names)
    ):
        raise SandboxError("channel_names must name every channel of channel_ids, in order")
    if not all(c in store.channel_ids for c in store.catalyst_channels):
        raise SandboxError("catalyst_channels must be channels of channel_ids")
    if store.sso_login_url is not None and not isinstance(store.sso_login_url, str):
        raise SandboxError("sso_login_url must be a string or null")
    if not isinstance(store.email_case_sensitive, bool):
        raise SandboxError("email_case_sensitive must be a boolean")
    if store.theme_script_url is not None and not _is_script_url(store.theme_script_url):
        raise SandboxError("theme_script_url must be an http(s) URL, a /path or null")
    if store.b2b_token is not None and (
        not isinstance(store.b2b_token, str) or not store.b2b_token
    ):
        raise SandboxError("b2b_token must be a non-empty string or null")
    if not isinstance(store.b2b_approved_companies_only, bool):
        raise SandboxError("b2b_approved_companies_only must be a boolean")


def _is_script_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc)
    return not parts.scheme and url.startswith("/") and not url.startswith("//")


def store_from_json(body: Any) -> SandboxStore:
    """The settings a control API body describes (checked by :func:`check_store` later)."""
    if not isinstance(body, dict):
        raise SandboxError("the body must be a JSON object")
    known = {f.name for f in dataclasses.fields(SandboxStore)}
    unknown = sorted(set(body) - known)
    if unknown:
        raise SandboxError(f"unknown fields: {', '.join(unknown)}")
    values = dict(body)
    for name in ("channel_ids", "channel_names", "catalyst_channels"):
        if name in values:
            if not isinstance(values[name], list):
                raise SandboxError(f"{name} must be a list")
            values[name] = tuple(values[name])
    try:
        return SandboxStore(**values)
    except TypeError as exc:
        raise SandboxError(str(exc)) from None


def default_channel(settings: SandboxStore) -> int:
    """Channel 1 when the store has it, else its first: the channel of /s/<hash>/ forms."""
    return 1 if 1 in settings.channel_ids else settings.channel_ids[0]


# -- small helpers -----------------------------------------------------------------------------


def is_int(value: Any) -> bool:
    """A JSON integer (``True`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def copy_json(value: JSONDict) -> JSONDict:
    """A deep copy, as a JSON round trip makes it: callers never share the state's dicts."""
    copied: JSONDict = json.loads(json.dumps(value))
    return copied


def iso(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
