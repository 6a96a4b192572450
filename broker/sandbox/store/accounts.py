"""Accounts of the GraphQL Account API: who may use the control panel of which store.

No IO, no framework: pure functions of an :class:`AccountRegistry` (every account of a
sandbox, and one global id per person) and of the stores' data, which
:class:`~broker.sandbox.store.account_desk.AccountDesk` runs under the state's lock; the
GraphQL schema over them is :mod:`~broker.sandbox.store.account_graphql`. Facts followed
(``docs/bigcommerce-api.md``, "GraphQL Account API"):

- an account owns stores and has users; ``POST /accounts/{account_uuid}/graphql`` with an
  account-level token in ``X-Auth-Token`` reads them and adds or removes users, to the account
  and to its stores (by user id, when the user is in the account, or by e-mail);
- ids are global ids: ``bc/account/account/{uuid}``, ``bc/account/user/{n}``,
  ``bc/account/store/{store_hash}``;
- at most 70 requests an hour for everything under ``/accounts`` (:data:`HOUR_MS`,
  :data:`DEFAULT_REQUESTS_PER_HOUR`), over it HTTP 429.

Where the sandbox decides (not verified BigCommerce behaviour):

- a store's users *are* its control-panel users
  (:attr:`~broker.sandbox.store.installs.StoreApps.users`, the owner user 1 with
  ``owner@{hash}.example``): adding one to a store makes them a control-panel user of it,
  removing one takes them out (and every app granted to them; no ``remove_user`` callback is
  sent). Every control-panel user of an account's store is a user of the account
  (:func:`sync`), so removing a user from the account removes them from its stores too;
- the owner of any of the account's stores is always a user of the account and of that
  store: removing them is ``FORBIDDEN``;
- a person has one id across the sandbox, given the first time their e-mail is seen; e-mails
  are compared case-insensitively and kept as first given; a user added by e-mail alone has
  empty names;
- errors carry a code (:class:`AccountError`, GraphQL's ``extensions.code``):
  ``ALREADY_EXISTS`` adding a user already in the account or store; ``NOT_FOUND`` an unknown
  user or store, or removing one who is not a member; ``FORBIDDEN`` a token without the
  scope, the store owner, a store of another account; ``BAD_USER_INPUT`` a malformed e-mail
  (or cursor, or ``first``);
- ``addUserToStore`` by e-mail adds the user to the account as well when missing; by id the
  user must be in the account (else ``NOT_FOUND``);
- a token has scopes among :data:`ACCOUNT_SCOPES` (all three by default): reading users needs
  ``account_users_read``, adding ``account_users_write``, removing ``account_users_delete``;
- a store belongs to at most one account of the sandbox.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.sandbox.store import installs
from broker.sandbox.store.data import StoreData
from broker.sandbox.store.faults import Faults, RateWindow
from broker.sandbox.store.installs import OWNER_ID
from broker.sandbox.store.model import (
    JSONDict,
    SandboxConflict,
    SandboxError,
    SandboxNotFound,
    is_int,
)

HOUR_MS = 3_600_000
DEFAULT_REQUESTS_PER_HOUR = 70
USERS_READ = "account_users_read"
USERS_WRITE = "account_users_write"
USERS_DELETE = "account_users_delete"
ACCOUNT_SCOPES = (USERS_READ, USERS_WRITE, USERS_DELETE)

# The codes of AccountError (GraphQL's extensions.code).
ALREADY_EXISTS = "ALREADY_EXISTS"
NOT_FOUND = "NOT_FOUND"
FORBIDDEN = "FORBIDDEN"
BAD_USER_INPUT = "BAD_USER_INPUT"

ACCOUNT_ID_PREFIX = "bc/account/account/"
USER_ID_PREFIX = "bc/account/user/"
STORE_ID_PREFIX = "bc/account/store/"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ACCOUNT_FIELDS = frozenset({"uuid", "name", "token", "scopes", "stores", "requests_per_hour"})


class AccountError(Exception):
    """A refusal of the Account API: a GraphQL error with ``extensions.code`` = ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class AccountUser:
    """One user of an account (``id`` is the person's global number)."""

    id: int
    email: str
    first_name: str = ""
    last_name: str = ""
    updated_at: float = 0.0


def hour_window() -> RateWindow:
    return RateWindow(window_ms=HOUR_MS)


@dataclass
class Account:
    """One account: its token, its stores, its users, its hourly window and fault switches."""

    uuid: str
    name: str
    token: str
    scopes: tuple[str, ...]
    store_hashes: tuple[str, ...]
    requests_per_hour: int = DEFAULT_REQUESTS_PER_HOUR
    users: dict[int, AccountUser] = field(default_factory=dict)  # by global id
    window: RateWindow = field(default_factory=hour_window)
    faults: Faults = field(default_factory=Faults)
    requests: list[JSONDict] = field(default_factory=list)  # time, operation, status, codes

    @property
    def limit(self) -> int:
        """Requests an hour: the ``quota`` fault switch while set, else requests_per_hour."""
        return self.faults.quota if "quota" in self.faults.switches else self.requests_per_hour


@dataclass
class AccountRegistry:
    """Every account of a sandbox, and each person's global id (by lowercased e-mail)."""

    accounts: dict[str, Account] = field(default_factory=dict)  # by uuid
    user_ids: dict[str, int] = field(default_factory=dict)
    store_accounts: dict[str, str] = field(default_factory=dict)  # store hash -> uuid


# -- global ids --------------------------------------------------------------------------------


def account_gid(account: Account) -> str:
    return f"{ACCOUNT_ID_PREFIX}{account.uuid}"


def user_gid(user_id: int) -> str:
    return f"{USER_ID_PREFIX}{user_id}"


def store_gid(store_hash: str) -> str:
    return f"{STORE_ID_PREFIX}{store_hash}"


def _user_number(value: object) -> int | None:
    if not isinstance(value, str) or not value.startswith(USER_ID_PREFIX):
        return None
    digits = value.removeprefix(USER_ID_PREFIX)
    return int(digits) if digits.isascii() and digits.isdigit() else None


def _person_id(registry: AccountRegistry, email: str) -> int:
    """The person's global id, given now if their e-mail is new to the sandbox."""
    key = email.lower()
    if key not in registry.user_ids:
        registry.user_ids[key] = len(registry.user_ids) + 1
    return registry.user_ids[key]


# -- accounts ----------------------------------------------------------------------------------


def new_account(values: Mapping[str, Any]) -> Account:
    """The account a control API body describes; SandboxError names a bad field (the stores
    are checked by :func:`register`)."""
    unknown = sorted(set(values) - _ACCOUNT_FIELDS)
    if unknown:
        raise SandboxError(f"unknown fields: {', '.join(unknown)}")
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SandboxError("name must be a non-empty string")
    account_uuid = values.get("uuid")
    if account_uuid is None:
        account_uuid = str(uuid.uuid4())
    elif not isinstance(account_uuid, str) or not _is_uuid(account_uuid):
        raise SandboxError("uuid must be a UUID")
    token = values.get("token")
    if token is None:
        token = secrets.token_urlsafe(24)
    elif not isinstance(token, str) or not token:
        raise SandboxError("token must be a non-empty string")
    scopes = values.get("scopes", list(ACCOUNT_SCOPES))
    if not isinstance(scopes, list) or not all(s in ACCOUNT_SCOPES for s in scopes):
        raise SandboxError(f"scopes must be a list of {', '.join(ACCOUNT_SCOPES)}")
    stores = values.get("stores")
    if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
        raise SandboxError("stores must be a list of store hashes")
    if len(set(stores)) != len(stores):
        raise SandboxError("stores must not repeat a store")
    limit = values.get("requests_per_hour", DEFAULT_REQUESTS_PER_HOUR)
    if not is_int(limit) or limit < 1:
        raise SandboxError("requests_per_hour must be an integer >= 1")
    return Account(
        uuid=account_uuid.lower(),
        name=name,
        token=token,
        scopes=tuple(s for s in ACCOUNT_SCOPES if s in scopes),
        store_hashes=tuple(stores),
        requests_per_hour=limit,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def register(
    registry: AccountRegistry, account: Account, stores: Mapping[str, StoreData], now: float
) -> None:
    """Add the account: its stores must exist and belong to no other account."""
    if account.uuid in registry.accounts:
        raise SandboxConflict(f"account {account.uuid!r} already exists")
    for store_hash in account.store_hashes:
        if store_hash not in stores:
            raise SandboxNotFound(f"no sandbox store {store_hash!r}")
        if store_hash in registry.store_accounts:
            raise SandboxConflict(f"store {store_hash!r} already belongs to an account")
    registry.accounts[account.uuid] = account
    for store_hash in account.store_hashes:
        registry.store_accounts[store_hash] = account.uuid
    sync(registry, account, stores, now)


def get_account(registry: AccountRegistry, account_uuid: str) -> Account:
    found = registry.accounts.get(account_uuid.lower())
    if found is None:
        raise SandboxNotFound(f"no account {account_uuid!r}")
    return found


def sync(
    registry: AccountRegistry, account: Account, stores: Mapping[str, StoreData], now: float
) -> None:
    """Make every control-panel user of the account's stores a user of the account (those
    seeded through the stores' own control API since)."""
    for store_hash in account.store_hashes:
        for email in stores[store_hash].apps.users.values():
            person = _person_id(registry, email)
            if person not in account.users:
                account.users[person] = AccountUser(person, email, updated_at=now)


def check_scope(account: Account, scope: str) -> None:
    if scope not in account.scopes:
        raise AccountError(FORBIDDEN, f"the token lacks the scope {scope}")


def account_users(account: Account) -> list[AccountUser]:
    return [user for _, user in sorted(account.users.items())]


def account_stores(account: Account, stores: Mapping[str, StoreData]) -> list[StoreData]:
    return [stores[store_hash] for store_hash in account.store_hashes]


def store_users(registry: AccountRegistry, account: Account, st: StoreData) -> list[AccountUser]:
    """The users of one of the account's stores (its control-panel users), by id."""
    people = {_person_id(registry, email) for email in st.apps.users.values()}
    return [account.users[person] for person in sorted(people) if person in account.users]


def _owners(account: Account, stores: Mapping[str, StoreData]) -> set[str]:
    """The lowercased e-mails of the owners of the account's stores."""
    return {st.apps.users[OWNER_ID].lower() for st in account_stores(account, stores)}


def _find_by_email(account: Account, email: str) -> AccountUser | None:
    wanted = email.lower()
    return next((u for u in account.users.values() if u.email.lower() == wanted), None)


def _checked_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email):
        raise AccountError(BAD_USER_INPUT, f"{email!r} is not an e-mail address")
    return email


# -- the account's users ----------------------------------------------------------------------


def add_to_account(
    registry: AccountRegistry,
    account: Account,
    email: object,
    now: float,
    first_name: str = "",
    last_name: str = "",
) -> AccountUser:
    """A new user of the account; ALREADY_EXISTS when the e-mail is one already."""
    address = _checked_email(email)
    if _find_by_email(account, address) is not None:
        raise AccountError(ALREADY_EXISTS, f"{address} is already a user of the account")
    person = _person_id(registry, address)
    user = AccountUser(person, address, first_name, last_name, updated_at=now)
    account.users[person] = user
    return user


def remove_from_account(
    account: Account, stores: Mapping[str, StoreData], email: object
) -> AccountUser:
    """Take a user out of the account and of every one of its stores; never a store owner."""
    address = _checked_email(email)
    user = _find_by_email(account, address)
    if user is None:
        raise AccountError(NOT_FOUND, f"{address} is not a user of the account")
    if user.email.lower() in _owners(account, stores):
        raise AccountError(FORBIDDEN, "a store owner cannot be removed from the account")
    for st in account_stores(account, stores):
        local_id = installs.user_id_of(st.apps, user.email)
        if local_id is not None:
            installs.remove_user(st.apps, local_id)
    del account.users[user.id]
    return user


# -- the stores' users ------------------------------------------------------------------------


def account_store(account: Account, stores: Mapping[str, StoreData], store_id: object) -> StoreData:
    """The account's store a global store id names: NOT_FOUND for no store, FORBIDDEN for
    another account's."""
    if not isinstance(store_id, str) or not store_id.startswith(STORE_ID_PREFIX):
        raise AccountError(NOT_FOUND, f"no store {store_id!r}")
    store_hash = store_id.removeprefix(STORE_ID_PREFIX)
    if store_hash not in stores:
        raise AccountError(NOT_FOUND, f"no store {store_id!r}")
    if store_hash not in account.store_hashes:
        raise AccountError(FORBIDDEN, f"store {store_id!r} is not a store of this account")
    return stores[store_hash]


def add_to_store(
    registry: AccountRegistry,
    account: Account,
    stores: Mapping[str, StoreData],
    store_id: object,
    user: Mapping[str, Any],
    now: float,
) -> tuple[StoreData, AccountUser]:
    """Make a user (``{"id"}`` of an account user, or ``{"email"}``, who joins the account too
    when missing) a control-panel user of one of the account's stores."""
    st = account_store(account, stores, store_id)
    chosen = [key for key in ("id", "email") if user.get(key) is not None]
    if len(chosen) != 1:
        raise AccountError(BAD_USER_INPUT, "name the user by exactly one of id and email")
    if chosen == ["id"]:
        number = _user_number(user["id"])
        found = account.users.get(number) if number is not None else None
        if found is None:
            raise AccountError(NOT_FOUND, f"no user {user['id']!r} in the account")
    else:
        address = _checked_email(user["email"])
        found = _find_by_email(account, address) or add_to_account(registry, account, address, now)
    if installs.user_id_of(st.apps, found.email) is not None:
        raise AccountError(ALREADY_EXISTS, f"{found.email} is already a user of the store")
    installs.add_user(st.apps, found.email)
    found.updated_at = now
    return st, found


def remove_from_store(
    account: Account, stores: Mapping[str, StoreData], store_id: object, user_id: object, now: float
) -> tuple[StoreData, AccountUser]:
    """Take a user out of one of the account's stores (they stay in the account); never its
    owner."""
    st = account_store(account, stores, store_id)
    number = _user_number(user_id)
    found = account.users.get(number) if number is not None else None
    if found is None:
        raise AccountError(NOT_FOUND, f"no user {user_id!r} in the account")
    local_id = installs.user_id_of(st.apps, found.email)
    if local_id is None:
        raise AccountError(NOT_FOUND, f"{found.email} is not a user of the store")
    if local_id == OWNER_ID:
        raise AccountError(FORBIDDEN, "the store owner cannot be removed from the store")
    installs.remove_user(st.apps, local_id)
    found.updated_at = now
    return st, found


# -- the control API's views -------------------------------------------------------------------


def user_json(user: AccountUser) -> JSONDict:
    return {
        "id": user_gid(user.id),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    }


def account_json(
    registry: AccountRegistry, account: Account, stores: Mapping[str, StoreData]
) -> JSONDict:
    """The account as ``GET /_sandbox/accounts/<uuid>`` shows it (without its token)."""
    return {
        "uuid": account.uuid,
        "id": account_gid(account),
        "name": account.name,
        "scopes": list(account.scopes),
        "requests_per_hour": account.requests_per_hour,
        "users": [user_json(u) for u in account_users(account)],
        "stores": [
            {
                "store_hash": st.settings.store_hash,
                "id": store_gid(st.settings.store_hash),
                "users": [user_json(u) for u in store_users(registry, account, st)],
            }
            for st in account_stores(account, stores)
        ],
        "requests": [dict(entry) for entry in account.requests],
    }


def created_json(account: Account) -> JSONDict:
    """The answer to ``POST /_sandbox/accounts``: the account with its token."""
    return {
        "uuid": account.uuid,
        "id": account_gid(account),
        "name": account.name,
        "token": account.token,
        "scopes": list(account.scopes),
        "stores": list(account.store_hashes),
        "requests_per_hour": account.requests_per_hour,
    }
