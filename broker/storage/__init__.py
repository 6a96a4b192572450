"""The broker's storage: pending sign-ins, a one-time-use cache, links, creations, counters,
the audit log, sessions and stores held in the database, on SQLAlchemy Core.

SQLite by default (``sqlite:///broker.db``); PostgreSQL (``postgresql+psycopg://...``) when
several broker processes or hosts must share state. Every verb is atomic on its own, so two
workers racing over the same key see one winner.

- :mod:`.model` — the records (:class:`Link`, :class:`Creation`, :class:`AuditEntry`,
  :class:`BrokerSession`, :class:`TenantDocument`), :class:`AlreadyExists`, and one narrow
  Protocol per aggregate, each with its verbs: :class:`PendingStore` (``save_pending`` /
  ``take_pending`` / ``peek_pending``), :class:`OnceStore` (``use_once`` / ``seen_once`` /
  ``forget_once``), :class:`LinkStore` (links and unlinks), :class:`CreationStore`,
  :class:`CounterStore` (``reserve_attempt`` / ``release_attempt``, ``count_failure`` /
  ``failures`` / ``clear_failures``), :class:`AuditStore`, :class:`SessionStore`,
  :class:`TenantStore`, :class:`ScimStore` (SCIM users, groups, and blocks on customers),
  :class:`SignInStore` (a sign-in's session, audit and link touch in one transaction),
  :class:`SPKeyStore` (the broker's own SAML SP key pairs);
  :class:`Storage` is all of them, with ``gc`` and ``ping``. It
  imports no SQLAlchemy: code takes the Protocols it needs.
- :mod:`.keys` — every key of a pending entry, one-time key and counter, in one namespace.
- :mod:`.schema` — the tables and their ``metadata`` (what the Alembic migrations follow).
- :mod:`.sql` — one repository per aggregate, and :class:`SQLStorage`, which composes them
  into the one object callers hold; :func:`open_storage`.
- :mod:`.migrate` — the schema is versioned with Alembic (``broker/migrations``).
  :func:`migrate` brings a database to the newest version under a lock (a PostgreSQL advisory
  lock; a lock file beside a SQLite database), so several workers starting at once migrate it
  exactly once. ``broker migrate`` runs it, and so do ``broker serve`` and ``create_app``.
  :func:`schema_revision` reads the version.

Everything importers use is re-exported here: ``from broker.storage import ...`` keeps working.
"""

from __future__ import annotations

from broker.storage import keys
from broker.storage.migrate import migrate, schema_revision
from broker.storage.model import (
    DEFAULT_CHANNEL,
    AlreadyExists,
    ApiToken,
    AppInstall,
    AppStore,
    AuditEntry,
    AuditStore,
    BrokerSession,
    CounterStore,
    Creation,
    CreationStore,
    Link,
    LinkStore,
    LinkTouch,
    OnceStore,
    PendingStore,
    ScimGroup,
    ScimStore,
    ScimUser,
    SessionStore,
    SignInStore,
    SPKeyStore,
    Storage,
    StoredSPKey,
    TenantDocument,
    TenantStore,
    scim_source,
)
from broker.storage.schema import (
    audit_log,
    counters,
    creations,
    links,
    metadata,
    pending_flows,
    sessions,
    tenant_changes,
    tenant_stores,
    unlinks,
    used_once,
)
from broker.storage.sql import SQLStorage, open_storage

__all__ = [
    "DEFAULT_CHANNEL",
    "AlreadyExists",
    "ApiToken",
    "AppInstall",
    "AppStore",
    "AuditEntry",
    "AuditStore",
    "BrokerSession",
    "CounterStore",
    "Creation",
    "CreationStore",
    "Link",
    "LinkStore",
    "LinkTouch",
    "OnceStore",
    "PendingStore",
    "SPKeyStore",
    "SQLStorage",
    "ScimGroup",
    "ScimStore",
    "ScimUser",
    "SessionStore",
    "SignInStore",
    "Storage",
    "StoredSPKey",
    "TenantDocument",
    "TenantStore",
    "audit_log",
    "counters",
    "creations",
    "keys",
    "links",
    "metadata",
    "migrate",
    "open_storage",
    "pending_flows",
    "schema_revision",
    "scim_source",
    "sessions",
    "tenant_changes",
    "tenant_stores",
    "unlinks",
    "used_once",
]
