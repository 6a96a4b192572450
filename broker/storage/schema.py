"""The broker's tables, as SQLAlchemy Core ``Table`` objects on one ``metadata``.

The Alembic migrations (``broker/migrations``) create and change them; ``env.py`` compares
against this ``metadata``. Each table belongs to one aggregate of :mod:`broker.storage.sql`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

pending_flows = Table(
    "pending_flows",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("data", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

used_once = Table(
    "used_once",
    metadata,
    Column("key", Text, primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)


links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("store", String(64), nullable=False),
    Column("issuer", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("connection", String(64), nullable=False),
    Column("email", String(320)),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger),
    Column("verified_at", BigInteger, nullable=False),
    # The channel the link signs in on: e-mails, and so customers, are per channel. 0 is the
    # store's default channel (its ``channel_id``, whichever it is): every link made before
    # channels existed, and every one made on that channel since.
    Column("channel_id", Integer, nullable=False, server_default="0"),
    # B2B Edition: the company plan (company, role, role sync) last reconciled with B2B Edition
    # for this link's customer, and when; a sign-in within the store's
    # ``company_user_cache_hours`` with the same plan asks B2B Edition nothing.
    Column("company_plan", String(64)),
    Column("company_checked_at", BigInteger),
    # An identity belongs to the connection it came through, never to the issuer it declares;
    # on each channel it signs in as one customer.
    UniqueConstraint(
        "store", "connection", "channel_id", "subject", name="uq_links_channel_subject"
    ),
    # One identity per connection per customer: two people of one IdP never share an account,
    # even when their sign-ins race (on one channel by this constraint; across channels, a
    # customer allowed on several, by the check in ``create_link``).
    UniqueConstraint(
        "store", "connection", "channel_id", "customer_id", name="uq_links_channel_customer"
    ),
    Index("ix_links_store_customer", "store", "customer_id"),
)

#: Identities a customer unlinked: the next automatic link must not undo their choice.
unlinks = Table(
    "unlinks",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("connection", String(64), primary_key=True),
    Column("subject", Text, primary_key=True),
    Column("customer_id", BigInteger, primary_key=True),
    Column("at", BigInteger, nullable=False),
)

#: Customers the broker set out to create, by e-mail: a customer found after an uncertain
#: create (a timeout after the store committed) or a concurrent one is recognised as ours.
creations = Table(
    "creations",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("email_key", Text, primary_key=True),
    Column("connection", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("customer_id", BigInteger),
    Column("started_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)

counters = Table(
    "counters",
    metadata,
    Column("key", Text, primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("store", String(64), nullable=False),
    Column("connection", String(64)),
    Column("event", String(32), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("subject", String(255)),
    Column("customer_id", BigInteger),
    Column("ip", String(64)),
    Column("detail", String(255)),
    Index("ix_audit_log_store_at", "store", "at"),
)


sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status_key", String(64), nullable=False, unique=True),
    Column("store", String(64), nullable=False),
    Column("connection", String(64), nullable=False),
    Column("customer_id", BigInteger, nullable=False),
    Column("issuer", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("sid", Text),
    Column("name_id", Text),
    Column("name_id_format", Text),
    Column("session_index", Text),
    Column("id_token", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Index("ix_sessions_identity", "store", "connection", "subject"),
    Index("ix_sessions_sid", "store", "connection", "sid"),
)

#: Stores held in the database (the app stage: installed stores), each a document shaped like
#: a ``[stores.X]`` table of the file, with the version of its last change.
tenant_stores = Table(
    "tenant_stores",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("document", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: One row: a counter raised by every change of ``tenant_stores``, read cheaply by every
#: worker and instance to notice a change.
tenant_changes = Table(
    "tenant_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

#: The broker's own SAML SP key pairs (for connections that name none): the private key sealed,
#: each active from ``activates_at`` (a next one is published before then), docs/design.md.
sp_keys = Table(
    "sp_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("key_pem", Text, nullable=False),
    Column("cert_pem", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("activates_at", BigInteger, nullable=False),
)

#: Stores that installed the broker as a BigCommerce app: what the install granted. The
#: store's settings (its API token sealed) are its ``tenant_stores`` document.
app_installs = Table(
    "app_installs",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("scope", Text, nullable=False),
    Column("owner_id", BigInteger),
    Column("name", String(255)),
    Column("installed_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

#: Control-panel users who may administer a store's broker (BigCommerce sends ``load`` only
#: for users the store granted the app; ``remove_user`` ends it).
admin_users = Table(
    "admin_users",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("added_at", BigInteger, nullable=False),
)

#: Bearer tokens of the admin API (``kind`` "admin") and of SCIM ("scim", per connection),
#: stored as the SHA-256 of the token: a database reader cannot use them.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("store", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("connection", String(64)),
    Column("label", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Index("ix_api_tokens_store", "store", "kind"),
)

#: SCIM users, per connection: the IdP's record of a shopper (``document``, the SCIM JSON as
#: last written), with what filters and uniqueness need beside it. ``user_name_key`` is the
#: user name lower-cased: unique per connection, so two creates racing see one winner.
scim_users = Table(
    "scim_users",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("connection", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("user_name", Text, nullable=False),
    Column("user_name_key", Text, nullable=False),
    Column("external_id", Text),
    Column("email", String(320)),
    Column("email_key", String(320)),
    Column("customer_id", BigInteger),
    Column("active", Boolean, nullable=False),
    Column("document", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("store", "connection", "user_name_key", name="uq_scim_users_user_name"),
    UniqueConstraint("store", "connection", "external_id", name="uq_scim_users_external_id"),
    Index("ix_scim_users_email", "store", "connection", "email_key"),
    Index("ix_scim_users_customer", "store", "customer_id"),
)

#: SCIM groups, per connection (display names may repeat: Entra ID allows it).
scim_groups = Table(
    "scim_groups",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("connection", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("display_name_key", Text, nullable=False),
    Column("external_id", Text),
    Column("document", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("store", "connection", "external_id", name="uq_scim_groups_external_id"),
    Index("ix_scim_groups_display_name", "store", "connection", "display_name_key"),
)

#: The members of each SCIM group (user ids of the same connection), in the order given.
scim_members = Table(
    "scim_members",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("connection", String(64), primary_key=True),
    Column("group_id", String(64), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_scim_members_user", "store", "connection", "user_id"),
)

#: Customers who may not sign in through any connection of the store, each block by the
#: source that put it (``scim:{connection}``), since when.
scim_blocks = Table(
    "scim_blocks",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("customer_id", BigInteger, primary_key=True),
    Column("source", String(80), primary_key=True),
    Column("since", BigInteger, nullable=False),
)

#: Control-panel work for the GraphQL Account API (``[stores.X.staff]``): one row per change
#: to make. Open items (pending, running) are unique per store, action and e-mail, so planning
#: twice, or in two processes, queues nothing twice; ``lease_until`` lets another worker take
#: over an item whose worker died mid-request.
staff_queue = Table(
    "staff_queue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("store", String(64), nullable=False),
    Column("action", String(20), nullable=False),
    Column("email", String(320), nullable=False),
    Column("user_id", String(120)),
    Column("state", String(12), nullable=False),
    Column("open_key", String(420)),
    Column("run_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("lease_until", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("error", Text),
    UniqueConstraint("open_key", name="uq_staff_queue_open"),
    Index("ix_staff_queue_store_state", "store", "state", "run_at"),
)

#: The store users the broker added (only those are removed, unless the store says otherwise).
staff_grants = Table(
    "staff_grants",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("email", String(320), primary_key=True),
    Column("granted_at", BigInteger, nullable=False),
)

#: Each account's Account API budget as a GCRA's theoretical arrival time, in milliseconds.
staff_budget = Table(
    "staff_budget",
    metadata,
    Column("account", String(64), primary_key=True),
    Column("tat_ms", BigInteger, nullable=False),
)

#: Group memberships seen at sign-in, for connections without SCIM: the latest per identity.
staff_sightings = Table(
    "staff_sightings",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("connection", String(64), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("in_group", Boolean, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
)
