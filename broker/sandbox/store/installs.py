"""One sandbox store's side of its apps: control-panel users, installs, tokens, access.

No IO, no framework: pure functions of a :class:`StoreApps`. Facts followed
(``docs/bigcommerce-api.md``, "App install"):

- a store has control-panel users; the owner (user id 1 in the sandbox) may use every app
  and grants an app to other users, or revokes it (BigCommerce then sends ``remove_user``);
- a token belongs to the store, not to the user who installed; a new install (a new auth
  callback) replaces the token, and uninstalling revokes it;
- the token exchange answers ``{access_token, scope, user {id, username, email}, owner {id,
  username, email}, context, account_uuid}``.

Where the sandbox decides: ``username`` is the user's e-mail; the owner's e-mail is
``owner@{hash}.example``; a user who installs the app is granted it; a re-install keeps the
users granted; uninstalling forgets them. The GraphQL Account API
(:mod:`~broker.sandbox.store.accounts`) adds and removes these same users; removing one takes
every app granted to them away.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field

from broker.sandbox.store.apps import AuthCode, SandboxApp
from broker.sandbox.store.model import (
    JSONDict,
    SandboxConflict,
    SandboxError,
    SandboxForbidden,
    SandboxNotFound,
    is_int,
)

OWNER_ID = 1
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass
class Install:
    """One app installed on the store."""

    client_id: str
    access_token: str
    scope: str
    user_id: int  # who installed (the last time)
    installed_at: float
    granted: set[int] = field(default_factory=set)  # users besides the owner


@dataclass
class StoreApps:
    """A store's control-panel users and the apps installed on it."""

    users: dict[int, str] = field(default_factory=dict)  # user id -> e-mail
    installs: dict[str, Install] = field(default_factory=dict)  # by the app's client id

    @classmethod
    def for_store(cls, store_hash: str) -> StoreApps:
        """A store with only its owner."""
        return cls(users={OWNER_ID: f"owner@{store_hash.lower()}.example"})


# -- users -----------------------------------------------------------------------------------


def add_user(book: StoreApps, email: object, user_id: object = None) -> JSONDict:
    """A new control-panel user (the next free id unless one is given)."""
    if not isinstance(email, str) or not _EMAIL.match(email):
        raise SandboxError("email must be an e-mail address")
    if user_id is None:
        user_id = max(book.users, default=0) + 1
    if not is_int(user_id) or not isinstance(user_id, int) or user_id < 1:
        raise SandboxError("id must be a positive integer")
    if user_id in book.users:
        raise SandboxConflict(f"user {user_id} already exists")
    book.users[user_id] = email
    return {"id": user_id, "email": email}


def user_json(book: StoreApps, user_id: int) -> JSONDict:
    """``{id, username, email}`` of a user, as the token answer shows them."""
    email = _email(book, user_id)
    return {"id": user_id, "username": email, "email": email}


def _email(book: StoreApps, user_id: int) -> str:
    email = book.users.get(user_id)
    if email is None:
        raise SandboxNotFound(f"no control-panel user {user_id!r}")
    return email


def users(book: StoreApps) -> list[JSONDict]:
    return [{"id": uid, "email": email} for uid, email in sorted(book.users.items())]


def user_id_of(book: StoreApps, email: str) -> int | None:
    """The id of the control-panel user with this e-mail (case-insensitive), or None."""
    wanted = email.lower()
    return next((uid for uid, known in sorted(book.users.items()) if known.lower() == wanted), None)


def remove_user(book: StoreApps, user_id: int) -> None:
    """Take a user out of the store, and every app granted to them; never the owner."""
    _email(book, user_id)
    if user_id == OWNER_ID:
        raise SandboxForbidden("the store owner cannot be removed from the store")
    del book.users[user_id]
    for found in book.installs.values():
        found.granted.discard(user_id)


# -- installs --------------------------------------------------------------------------------


def install(book: StoreApps, app: SandboxApp, code: AuthCode, now: float) -> JSONDict:
    """Install (or re-install) from a redeemed code: a new token, the old one revoked. The
    token answer."""
    previous = book.installs.get(app.client_id)
    granted = set(previous.granted) if previous else set()
    if code.user_id != OWNER_ID:
        granted.add(code.user_id)
    token = secrets.token_urlsafe(24)
    book.installs[app.client_id] = Install(
        client_id=app.client_id,
        access_token=token,
        scope=code.scope,
        user_id=code.user_id,
        installed_at=now,
        granted=granted,
    )
    return {
        "access_token": token,
        "scope": code.scope,
        "user": user_json(book, code.user_id),
        "owner": user_json(book, OWNER_ID),
        "context": f"stores/{code.store_hash}",
        "account_uuid": app.account_uuid,
    }


def installed(book: StoreApps, client_id: str) -> Install:
    """The app's install; SandboxForbidden when it is not installed."""
    found = book.installs.get(client_id)
    if found is None:
        raise SandboxForbidden(f"app {client_id!r} is not installed on this store")
    return found


def uninstall(book: StoreApps, client_id: str) -> Install:
    """Remove the install: its token stops working at once."""
    found = installed(book, client_id)
    del book.installs[client_id]
    return found


def status(book: StoreApps, client_id: str) -> JSONDict:
    """Whether the app is installed, its scope, who installed, who is granted (no token)."""
    found = book.installs.get(client_id)
    if found is None:
        return {"installed": False, "scope": None, "user_id": None, "granted_user_ids": []}
    return {
        "installed": True,
        "scope": found.scope,
        "user_id": found.user_id,
        "installed_at": found.installed_at,
        "granted_user_ids": sorted(found.granted),
    }


# -- access ----------------------------------------------------------------------------------


def grant(book: StoreApps, client_id: str, user_id: int) -> None:
    _email(book, user_id)
    found = installed(book, client_id)
    if user_id != OWNER_ID:
        found.granted.add(user_id)


def revoke(book: StoreApps, client_id: str, user_id: int) -> None:
    """The owner takes the app away from a user; the owner's own access cannot be revoked."""
    _email(book, user_id)
    found = installed(book, client_id)
    if user_id == OWNER_ID:
        raise SandboxError("the store owner's access cannot be revoked")
    if user_id not in found.granted:
        raise SandboxError(f"user {user_id} was not granted the app")
    found.granted.discard(user_id)


def check_access(book: StoreApps, client_id: str, user_id: int) -> None:
    """SandboxForbidden unless the app is installed and the user is the owner or granted it."""
    _email(book, user_id)
    found = installed(book, client_id)
    if user_id != OWNER_ID and user_id not in found.granted:
        raise SandboxForbidden(f"user {user_id} may not use app {client_id!r}")


def may_use(book: StoreApps, client_id: str, user_id: int) -> bool:
    found = book.installs.get(client_id)
    return found is not None and (user_id == OWNER_ID or user_id in found.granted)


def token_owner(book: StoreApps, store_token: str, token: str | None) -> tuple[bool, str | None]:
    """Whether the X-Auth-Token is valid, and whose it is: None for the store's own token,
    else the client id of the installed app it was issued to."""
    if token is None:
        return False, None
    if hmac.compare_digest(token.encode(), store_token.encode()):
        return True, None
    for found in book.installs.values():
        if hmac.compare_digest(token.encode(), found.access_token.encode()):
            return True, found.client_id
    return False, None


def owner_and_user(book: StoreApps, user_id: int) -> tuple[JSONDict, JSONDict]:
    """The ``owner`` and ``user`` of a signed payload."""
    owner = {"id": OWNER_ID, "email": _email(book, OWNER_ID)}
    return owner, {"id": user_id, "email": _email(book, user_id), "locale": "en-US"}
