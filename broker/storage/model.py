"""What the broker stores, and the narrow Protocols through which it is stored.

This module imports no SQLAlchemy: code that only needs a kind of record (accounts needs
links, claims, creations and counters) depends on that record's Protocol, and a test can give
it anything that offers those verbs. :class:`broker.storage.sql.SQLStorage` offers them all.

Every verb is atomic on its own, so two workers racing over the same key see one winner.

- :class:`PendingStore` — ``save_pending(key, data, expires_at)`` / ``take_pending(key,
  now)``: a started sign-in (state, nonce, PKCE verifier...) kept server-side; taking it
  deletes it, so a callback can be used once. Expired entries are never returned.
  ``peek_pending`` reads without taking.
- :class:`OnceStore` — ``use_once(key, expires_at, now)``: True the first time a key is seen,
  False after, until it expires (replay protection for assertion ids and logout tokens, and
  claims: one creator per e-mail). ``seen_once`` asks without using; ``forget_once`` gives a
  claim back.
- :class:`LinkStore` — links, ``(store, connection, channel, subject) -> customer id``
  (channel :data:`DEFAULT_CHANNEL` is the store's default one): ``get_link``, ``create_link``
  (raises AlreadyExists for an identity already linked on that channel, or a customer already
  linked to another identity of that connection, on any channel), ``touch_link``,
  ``links_for_customer``, ``delete_link``, ``delete_links_for_customer``. An identity is the
  connection it came through and the subject: never the issuer the IdP declares.
  ``record_unlink`` / ``was_unlinked`` / ``clear_unlink``: identities a customer unlinked.
- :class:`SignInStore` — ``record_sign_in(session=, audit=, touch=)``: what a successful
  sign-in writes (its session, its audit rows, a :class:`LinkTouch` on its link), in one
  transaction.
- :class:`CreationStore` — ``begin_creation`` / ``finish_creation`` / ``forget_creation`` /
  ``creation_for``: customers the broker set out to create, by e-mail, to reconcile an
  uncertain create.
- :class:`CounterStore` — ``reserve_attempt(key, limit, window, now)`` / ``release_attempt``:
  attempt limits that hold under any concurrency (reserve, then act); ``count_failure`` /
  ``failures`` / ``clear_failures``: counters that expire.
- :class:`AuditStore` — ``record_audit(entry)`` / ``recent_audit(store, limit)``: the audit log.
- :class:`SessionStore` — ``create_session`` / ``get_session`` / ``session_by_status_key`` /
  ``end_session`` / ``end_sessions`` / ``end_saml_sessions``: the sign-ins the broker made,
  for logout.
- :class:`TenantStore` — ``tenants_version`` / ``tenant_documents`` / ``tenant_document`` /
  ``put_tenant`` / ``replace_tenant`` / ``delete_tenant``: stores held in the database
  (installed as an app), behind one change counter every process reads.
- :class:`AppStore` — ``install_store`` / ``get_install`` / ``remove_store``: stores installed
  as an app (a store's removal deletes every row of it); ``forget_connection`` (every
  identity of a connection that is removed or now stands for another IdP, its SCIM users and
  groups, and the blocks its SCIM put on customers); ``add_admin_user`` /
  ``is_admin_user`` / ``remove_admin_user``; ``create_api_token`` / ``find_api_token`` /
  ``list_api_tokens`` / ``revoke_api_tokens`` (stored as digests).
- :class:`ScimStore` — SCIM 2.0 users and groups per connection (``create_scim_user`` /
  ``get_scim_user`` / ``find_scim_users`` / ``replace_scim_user`` / ``delete_scim_user``, the
  same for groups, ``groups_of_scim_user``, ``scim_users_of_customer``), and the blocks that
  deprovisioning puts on a customer (``block_customer`` / ``unblock_customer`` /
  ``is_blocked`` / ``blocks_older_than``), each by a source (:func:`scim_source`).
- :class:`Storage` — all of the above, and ``gc(now, audit_before=)`` (delete what has
  expired, and audit rows past their retention) and ``ping()``.

The keys of pending entries, one-time keys and counters are built in :mod:`broker.storage.keys`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from broker.errors import StorageError


class AlreadyExists(StorageError):
    code = "already_exists"


#: A link's ``channel_id`` for the store's default channel, whichever channel the store's
#: ``channel_id`` names (links made before channels existed have it too).
DEFAULT_CHANNEL = 0


@dataclass(frozen=True)
class Link:
    """An IdP identity tied to a BigCommerce customer of one store.

    The identity is ``(store, connection, subject)``: the connection it came through, never
    the issuer it declared (``issuer`` is kept as a record of who vouched)."""

    id: int
    store: str
    issuer: str
    subject: str
    customer_id: int
    connection: str
    #: The e-mail the IdP gave at the last sign-in (the link does not depend on it).
    email: str | None
    created_at: int
    last_login_at: int | None
    #: When the customer was last seen to exist at BigCommerce.
    verified_at: int
    #: The channel this link signs in on (:data:`DEFAULT_CHANNEL`: the store's default one).
    channel_id: int = 0
    #: B2B Edition: the company plan last reconciled for the customer (``broker.companies``
    #: ``plan_key``), and when; None: never.
    company_plan: str | None = None
    company_checked_at: int | None = None
    #: Whether a block stood on the customer when the link was read (``get_link`` reads it
    #: with the link, so a sign-in by link asks no second question); None: not read. Not part
    #: of the link's value (two reads of one link compare equal).
    blocked: bool | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LinkTouch:
    """What a sign-in writes on the link it signed in by, in the sign-in's own transaction
    (:meth:`SignInStore.record_sign_in`). A field left None is not written."""

    link_id: int
    #: The sign-in's time and the IdP's e-mail, written together (``last_login_at``, ``email``).
    seen_at: int | None = None
    email: str | None = None
    #: The customer was just checked to exist at BigCommerce.
    verified_at: int | None = None
    #: B2B Edition was just reconciled with this plan (``company_plan``, ``company_checked_at``).
    company_plan: str | None = None
    company_checked_at: int | None = None

    @property
    def writes(self) -> bool:
        return (self.seen_at, self.verified_at, self.company_checked_at) != (None, None, None)


@dataclass(frozen=True)
class Creation:
    """A customer the broker set out to create for one identity (``customer_id`` once known)."""

    store: str
    email_key: str
    connection: str
    subject: str
    started_at: int
    expires_at: int
    customer_id: int | None = None


@dataclass(frozen=True)
class TenantDocument:
    """A store held in the database: its ``[stores.X]`` table as data, and its version."""

    key: str
    document: Mapping[str, Any]
    version: int
    updated_at: int


def flat_row(record: Any) -> dict[str, Any]:
    """A dataclass of plain values (no nested dataclasses or containers) as a dict: a copy of
    its attributes. ``dataclasses.asdict`` deep-copies every value, which the sign-in path
    measurably paid three times per sign-in (bench/)."""
    return dict(vars(record))


@dataclass(frozen=True)
class AuditEntry:
    at: int
    store: str
    event: str
    outcome: str
    connection: str | None = None
    subject: str | None = None
    customer_id: int | None = None
    ip: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BrokerSession:
    """A sign-in the broker made: what logout needs to end it here and at the IdP.

    ``id`` and ``status_key`` are hashes of the browser's cookie and of the storefront
    script's status token; the tokens themselves are never stored."""

    id: str
    status_key: str
    store: str
    connection: str
    customer_id: int
    issuer: str
    subject: str
    created_at: int
    expires_at: int
    sid: str | None = None
    name_id: str | None = None
    name_id_format: str | None = None
    session_index: str | None = None
    #: The OIDC ID token, for id_token_hint at RP-initiated logout. Never logged or shown.
    id_token: str | None = field(default=None, repr=False)
    ended_at: int | None = None

    def active(self, now: int) -> bool:
        return self.ended_at is None and now < self.expires_at


class PendingStore(Protocol):
    """Started flows kept server-side, each taken at most once (keys: :mod:`.keys`)."""

    def save_pending(self, key: str, data: Mapping[str, Any], expires_at: int) -> None: ...
    def take_pending(self, key: str, now: int) -> dict[str, Any] | None: ...
    def peek_pending(self, key: str, now: int) -> dict[str, Any] | None: ...


class OnceStore(Protocol):
    """A one-time-use cache: replay protection, and claims held until given back or expired."""

    def use_once(self, key: str, expires_at: int, now: int) -> bool: ...
    def seen_once(self, key: str, now: int) -> bool: ...
    def forget_once(self, key: str) -> None: ...


class LinkStore(Protocol):
    """Links ``(store, connection, channel, subject) -> customer``, and the identities
    unlinked. ``channel_id`` :data:`DEFAULT_CHANNEL` is the store's default channel."""

    def get_link(
        self, store: str, connection: str, subject: str, channel_id: int = DEFAULT_CHANNEL
    ) -> Link | None: ...
    def create_link(
        self,
        *,
        store: str,
        connection: str,
        subject: str,
        issuer: str,
        customer_id: int,
        email: str | None,
        now: int,
        channel_id: int = DEFAULT_CHANNEL,
    ) -> Link: ...
    def touch_link(self, link_id: int, *, now: int, email: str | None, verified: bool) -> None: ...
    def links_for_customer(self, store: str, customer_id: int) -> list[Link]: ...
    def delete_link(self, store: str, link_id: int, *, customer_id: int | None = None) -> bool: ...
    def delete_links_for_customer(self, store: str, customer_id: int) -> int: ...
    def record_unlink(
        self, store: str, connection: str, subject: str, customer_id: int, now: int
    ) -> None: ...
    def was_unlinked(self, store: str, connection: str, subject: str, customer_id: int) -> bool: ...
    def clear_unlink(self, store: str, connection: str, subject: str) -> None: ...


class SignInStore(Protocol):
    """A successful sign-in's writes, in one transaction: its broker session (None: none to
    keep), its audit rows and what changed on its link. All or nothing."""

    def record_sign_in(
        self,
        *,
        session: BrokerSession | None,
        audit: Sequence[AuditEntry],
        touch: LinkTouch | None = None,
    ) -> None: ...


class CreationStore(Protocol):
    """Customers the broker set out to create, by e-mail."""

    def begin_creation(self, creation: Creation) -> None: ...
    def finish_creation(self, store: str, email_key: str, customer_id: int) -> None: ...
    def forget_creation(self, store: str, email_key: str) -> None: ...
    def creation_for(self, store: str, email_key: str, now: int) -> Creation | None: ...


class CounterStore(Protocol):
    """Attempt limits (reserve, then act) and failure counters, each living a window."""

    def reserve_attempt(self, key: str, *, limit: int, window: int, now: int) -> int | None: ...
    def release_attempt(self, key: str, now: int) -> None: ...
    def count_failure(self, key: str, *, window: int, now: int) -> int: ...
    def failures(self, key: str, now: int) -> int: ...
    def clear_failures(self, key: str) -> None: ...


class AuditStore(Protocol):
    """The audit log, per store."""

    def record_audit(self, entry: AuditEntry) -> None: ...
    def recent_audit(self, store: str, limit: int = 50) -> list[AuditEntry]: ...
    def search_audit(
        self,
        store: str,
        *,
        limit: int = 50,
        event: str | None = None,
        connection: str | None = None,
        outcome: str | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[AuditEntry]: ...


class SessionStore(Protocol):
    """The sign-ins the broker made, and their ending (logout, here or at the IdP)."""

    def create_session(self, session: BrokerSession) -> None: ...
    def get_session(self, session_id: str) -> BrokerSession | None: ...
    def session_by_status_key(self, status_key: str) -> BrokerSession | None: ...
    def end_session(self, session_id: str, now: int) -> bool: ...
    def end_sessions(
        self, store: str, connection: str, *, subject: str | None, sid: str | None, now: int
    ) -> int: ...
    def end_saml_sessions(
        self,
        store: str,
        connection: str,
        *,
        name_id: str,
        session_indexes: Sequence[str],
        now: int,
    ) -> int: ...


class TenantStore(Protocol):
    """Stores held in the database, behind one change counter."""

    def tenants_version(self) -> int: ...
    def tenant_documents(self) -> dict[str, TenantDocument]: ...
    def tenant_document(self, key: str) -> TenantDocument | None: ...
    def put_tenant(self, key: str, document: Mapping[str, Any], now: int) -> int: ...
    def replace_tenant(
        self, key: str, document: Mapping[str, Any], *, expected_version: int, now: int
    ) -> int | None: ...
    def delete_tenant(self, key: str) -> bool: ...


@dataclass(frozen=True)
class StoredSPKey:
    """One of the broker's own SAML SP key pairs: ``key_pem`` as stored (sealed)."""

    id: str
    key_pem: str = field(repr=False)
    cert_pem: str
    created_at: int
    activates_at: int


class SPKeyStore(Protocol):
    """The broker's own SAML SP key pairs."""

    def sp_keys(self) -> list[StoredSPKey]: ...
    def add_sp_key(self, key: StoredSPKey, *, only_if_none: bool = False) -> bool: ...
    def remove_sp_key(self, key_id: str) -> bool: ...


@dataclass(frozen=True)
class AppInstall:
    """A store that installed the broker as a BigCommerce app."""

    store: str
    scope: str
    owner_id: int | None
    name: str | None
    installed_at: int
    updated_at: int


@dataclass(frozen=True)
class ApiToken:
    """A bearer token of the admin API or SCIM (only its digest is stored)."""

    id: int
    store: str
    kind: str
    connection: str | None
    label: str
    created_at: int
    revoked_at: int | None


class AppStore(Protocol):
    """The broker as an app: installs, their admin users, API tokens, removal of a store."""

    def install_store(
        self,
        store: str,
        document: Mapping[str, Any],
        *,
        scope: str,
        owner_id: int | None,
        user_id: int | None,
        name: str | None,
        now: int,
    ) -> int: ...
    def get_install(self, store: str) -> AppInstall | None: ...
    def remove_store(self, store: str) -> int: ...
    def forget_connection(self, store: str, connection: str) -> int: ...
    def add_admin_user(self, store: str, user_id: int, now: int) -> None: ...
    def is_admin_user(self, store: str, user_id: int) -> bool: ...
    def remove_admin_user(self, store: str, user_id: int) -> bool: ...
    def create_api_token(
        self,
        *,
        store: str,
        kind: str,
        digest: str,
        label: str,
        now: int,
        connection: str | None = None,
    ) -> int: ...
    def find_api_token(self, digest: str) -> ApiToken | None: ...
    def list_api_tokens(self, store: str, kind: str) -> list[ApiToken]: ...
    def revoke_api_tokens(
        self,
        store: str,
        kind: str,
        now: int,
        *,
        token_id: int | None = None,
        connection: str | None = None,
    ) -> int: ...


@dataclass(frozen=True)
class ScimUser:
    """A SCIM user of one connection (``/{store}/scim/{conn}/v2/Users``).

    ``user_name`` is kept as given and unique per connection without regard to case, as is
    ``external_id`` (exactly). ``document`` is the SCIM JSON as last written; ``email`` its
    primary e-mail, kept apart for filters; ``customer_id`` the store's customer, once known."""

    store: str
    connection: str
    id: str
    user_name: str
    external_id: str | None
    email: str | None
    customer_id: int | None
    active: bool
    document: dict[str, Any]
    version: int
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class ScimGroup:
    """A SCIM group of one connection; ``members`` are the ids of its users, in order."""

    store: str
    connection: str
    id: str
    display_name: str
    external_id: str | None
    document: dict[str, Any]
    members: tuple[str, ...]
    version: int
    created_at: int
    updated_at: int


def scim_source(connection: str) -> str:
    """The source of the blocks a connection's SCIM puts on customers (``scim:okta``):
    :meth:`AppStore.forget_connection` removes them with the connection."""
    return f"scim:{connection}"


class ScimStore(Protocol):
    """SCIM users and groups per ``(store, connection)``, and blocks on customers.

    ``where`` keys: users ``user_name`` and ``email`` (without regard to case), ``external_id``,
    ``id``; groups ``display_name`` (without regard to case), ``external_id``, ``id``,
    ``member`` (has this user id). ``start`` is 1-based (SCIM's ``startIndex``); a find
    returns the total and one page, ordered by ``created_at`` then ``id``. A replace writes the
    given fields (``created_at`` stays), raises the version by one and returns the record
    stored: None when ``expected_version`` differs or the record is gone. Create and replace
    raise :class:`AlreadyExists` on a ``user_name`` / ``external_id`` taken in the connection.

    A block keeps a customer from signing in through every connection of the store while any
    source holds one."""

    def create_scim_user(self, user: ScimUser) -> None: ...
    def get_scim_user(self, store: str, connection: str, user_id: str) -> ScimUser | None: ...
    def find_scim_users(
        self, store: str, connection: str, *, where: Mapping[str, str], start: int, count: int
    ) -> tuple[int, list[ScimUser]]: ...
    def replace_scim_user(
        self, user: ScimUser, *, expected_version: int | None
    ) -> ScimUser | None: ...
    def delete_scim_user(self, store: str, connection: str, user_id: str) -> bool: ...
    def create_scim_group(self, group: ScimGroup) -> None: ...
    def get_scim_group(self, store: str, connection: str, group_id: str) -> ScimGroup | None: ...
    def find_scim_groups(
        self, store: str, connection: str, *, where: Mapping[str, str], start: int, count: int
    ) -> tuple[int, list[ScimGroup]]: ...
    def replace_scim_group(
        self, group: ScimGroup, *, expected_version: int | None
    ) -> ScimGroup | None: ...
    def delete_scim_group(self, store: str, connection: str, group_id: str) -> bool: ...
    def groups_of_scim_user(self, store: str, connection: str, user_id: str) -> list[ScimGroup]: ...
    def scim_users_of_customer(self, store: str, customer_id: int) -> list[ScimUser]: ...
    def block_customer(self, store: str, customer_id: int, *, source: str, now: int) -> None: ...
    def unblock_customer(self, store: str, customer_id: int, *, source: str) -> bool: ...
    def is_blocked(self, store: str, customer_id: int) -> bool: ...
    def blocks_older_than(
        self, store: str, cutoff: int, *, source: str | None = None
    ) -> list[tuple[int, int]]: ...


@dataclass(frozen=True)
class StaffItem:
    """One change the GraphQL Account API is to make: ``add_to_account`` or ``add_to_store``
    (by e-mail), ``remove_from_store`` (by the user's id). ``state``: pending, running, done,
    failed or cancelled; ``attempts`` counts the claims that may have reached BigCommerce (a
    claim's number; a claim put back unsent gives its number back), ``failures`` the item's
    own failures (a 429 is the budget's, not the item's)."""

    id: int
    store: str
    action: str
    email: str
    user_id: str | None
    state: str
    run_at: int
    attempts: int
    failures: int
    created_at: int
    updated_at: int
    error: str | None


@dataclass(frozen=True)
class StaffSighting:
    """Whether an identity was in the store's staff groups at its latest sign-in."""

    store: str
    connection: str
    subject: str
    email: str
    in_group: bool
    seen_at: int


class StaffStore(Protocol):
    """Control-panel staff: the queue, the grants, the account's budget, who is in the
    groups (:mod:`broker.storage.sql.staff` says how each step stays safe across workers)."""

    def enqueue_staff(
        self, store: str, action: str, email: str, *, user_id: str | None, now: int
    ) -> bool: ...
    def cancel_staff(self, store: str, action: str, email: str, *, now: int) -> bool: ...
    def staff_items(self, store: str, *, states: Iterable[str] = ...) -> list[StaffItem]: ...
    def claim_staff_item(self, store: str, *, now: int, lease: int) -> StaffItem | None: ...
    def finish_staff_item(
        self, item: StaffItem, *, state: str, error: str | None, now: int, failure: bool = ...
    ) -> bool: ...
    def release_staff_item(
        self,
        item: StaffItem,
        *,
        run_at: int,
        error: str | None,
        failed: bool,
        now: int,
        unsent: bool = ...,
    ) -> bool: ...
    def add_staff_grant(self, store: str, email: str, *, now: int) -> None: ...
    def remove_staff_grant(self, store: str, email: str) -> None: ...
    def staff_grants(self, store: str) -> set[str]: ...
    def take_staff_slot(
        self, account: str, *, now_ms: int, interval_ms: int, burst: int
    ) -> int: ...
    def hold_staff_budget(
        self, account: str, *, until_ms: int, interval_ms: int, burst: int
    ) -> None: ...
    def staff_budget_tat(self, account: str) -> int | None: ...
    def scim_group_members(
        self, store: str, connection: str, groups: Iterable[str]
    ) -> list[tuple[str, str]]: ...
    def record_staff_sighting(self, sighting: StaffSighting, *, create: bool = ...) -> None: ...
    def staff_sightings(
        self, store: str, connections: Iterable[str], *, since: int
    ) -> list[StaffSighting]: ...


class Storage(
    PendingStore,
    OnceStore,
    LinkStore,
    CreationStore,
    CounterStore,
    AuditStore,
    SessionStore,
    TenantStore,
    AppStore,
    ScimStore,
    SignInStore,
    SPKeyStore,
    StaffStore,
    Protocol,
):
    """Every store in one object (what the app holds), with upkeep."""

    def gc(self, now: int, *, audit_before: int | None = None) -> int: ...
    def ping(self) -> None: ...
    def hold_connection(self) -> None:
        """From now until :meth:`release_connection`, this thread may keep the database
        connection its first statement takes (a request's statements share it)."""
        ...

    def release_connection(self) -> None: ...
