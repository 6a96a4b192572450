"""The settings consumers read: frozen dataclasses built from the validated tables.

Every consumer reads these attributes (``broker.config`` re-exports them); the keys, their types,
defaults and bounds are declared once, in :mod:`broker.settings.schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

LinkPolicy = Literal["auto", "confirm", "deny"]
#: What serves a channel's storefront: a Stencil theme (BigCommerce-hosted) or Catalyst
#: (headless Next.js); they differ in their logout URL and their account page.
Platform = Literal["stencil", "catalyst"]
#: The account page of each platform: ``default_redirect`` when nothing says otherwise.
ACCOUNT_PAGES: Mapping[str, str] = {"stencil": "/account.php", "catalyst": "/account/orders"}
TokenAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
#: Asymmetric JWS algorithms an ID token may use. HS* and "none" are never accepted: an
#: HMAC "signature" keyed with a public key proves nothing.
ALLOWED_ID_TOKEN_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ID_TOKEN_ALGORITHMS = ("RS256", "PS256", "ES256")
#: The languages the shopper pages are translated into (broker/translations).
SHOPPER_LANGUAGES = ("en", "de", "fr", "es", "nl")
NAME_ID_FORMATS = {
    "emailAddress": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "persistent": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}


@dataclass(frozen=True)
class BrokerSettings:
    base_url: str
    secret_key: str = field(repr=False)
    database_url: str = "sqlite:///broker.db"
    #: How many reverse proxies in front of the broker set X-Forwarded-For/-Proto/-Host.
    trusted_proxies: int = 0
    #: How long a started sign-in may take before its state expires.
    flow_ttl_seconds: int = 600
    #: The SAML SP key pair shared by connections that have none of their own.
    saml_key_file: str | None = None
    saml_cert_file: str | None = None
    #: Audit rows older than this are deleted by ``broker gc`` (0: kept for ever).
    audit_retention_days: int = 180
    #: ``GET /metrics`` needs ``Authorization: Bearer <metrics_token>`` when set.
    metrics_token: str | None = field(default=None, repr=False)

    @property
    def cookie_secure(self) -> bool:
        return self.base_url.startswith("https://")


@dataclass(frozen=True)
class ConnectionB2B:
    """B2B Edition for one connection (``[stores.X.connections.Y.b2b]``): the only companies
    its users may be placed in, and their roles. The company comes from the claim (only an
    id listed here), the e-mail domain or a group; nothing from the store-wide maps."""

    #: A claim or SAML attribute carrying the B2B company id; honoured only for ``companies``.
    company_claim: str | None = None
    #: Every company this connection may place users in (with the two maps' ids).
    companies: tuple[int, ...] = ()
    companies_by_domain: Mapping[str, int] = field(default_factory=dict)
    companies_by_group: Mapping[str, int] = field(default_factory=dict)
    roles_by_group: Mapping[str, int] = field(default_factory=dict)
    company_roles_by_group: Mapping[str, int] = field(default_factory=dict)
    #: None: the store's ``default_role``.
    default_role: int | None = None

    @property
    def allowed_companies(self) -> frozenset[int]:
        return frozenset(
            (*self.companies, *self.companies_by_domain.values(), *self.companies_by_group.values())
        )


ScimSubjectAttribute = Literal["externalId", "userName", "emails"]


@dataclass(frozen=True)
class ConnectionScim:
    """SCIM 2.0 provisioning from one connection's IdP (``[stores.X.connections.Y.scim]``,
    enabled: a table with ``enabled = false`` gives none)."""

    enabled: bool = True
    #: A user made inactive: "block" their sign-in, or "delete" the customer once blocked
    #: ``delete_after_days``.
    deprovision: Literal["block", "delete"] = "block"
    delete_after_days: int = 30
    #: SCIM group displayName -> BigCommerce customer group id.
    customer_groups_by_group: Mapping[str, int] = field(default_factory=dict)
    #: The SCIM attribute whose value is the connection's IdP subject (OIDC ``sub``, SAML
    #: NameID): ``externalId`` unless the table says ``userName`` or ``emails`` (the primary).
    subject_attribute: ScimSubjectAttribute = "externalId"


@dataclass(frozen=True, kw_only=True)
class ConnectionPolicy:
    """What every connection type has: its key and name, and its account policy (the
    fields :class:`broker.accounts.AccountPolicy` reads)."""

    key: str
    display_name: str
    jit: bool = True
    link: LinkPolicy = "confirm"
    allowed_domains: tuple[str, ...] = ()
    require_verified_email: bool = True
    #: IdP group -> BigCommerce customer group id, first match in this order wins.
    customer_groups_by_group: Mapping[str, int] = field(default_factory=dict)
    clock_skew_seconds: int = 60
    #: Bring the BigCommerce e-mail in line when the IdP's changes (off: the link alone counts).
    sync_email: bool = False
    #: Sign the shopper out of the IdP too when they sign out of the store.
    idp_logout: bool = False
    #: The store's channels this connection is offered on (empty: every one of them).
    channels: tuple[int, ...] = ()
    #: B2B Edition companies and roles bound to this connection (None: the store's maps,
    #: where they cannot cross connections).
    b2b: ConnectionB2B | None = None
    #: SCIM provisioning from this connection's IdP (None: not enabled).
    scim: ConnectionScim | None = None

    def offered_on(self, channel_id: int) -> bool:
        """Whether shoppers of this channel may sign in through this connection."""
        return not self.channels or channel_id in self.channels


@dataclass(frozen=True, kw_only=True)
class OIDCConnection(ConnectionPolicy):
    issuer: str
    client_id: str
    client_secret: str | None = field(repr=False)
    token_endpoint_auth_method: TokenAuthMethod
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    algorithms: tuple[str, ...] = DEFAULT_ID_TOKEN_ALGORITHMS
    #: Where each claim is read: a claim of that name, else a dotted path into nested claims
    #: (broker.upstream.oidc_claims, "claim_value").
    groups_claim: str = "groups"
    email_claim: str = "email"
    #: Entra ID never sends email_verified: "xms_edov" (its e-mail domain owner verified) may
    #: stand in for it.
    email_verified_claim: str = "email_verified"
    first_name_claim: str = "given_name"
    last_name_claim: str = "family_name"
    #: Entra ID's groups overage (more groups than fit in the token): "refuse" with a message
    #: naming the fix, or "graph": read them from Microsoft Graph at ``graph_url``.
    groups_overage: Literal["refuse", "graph"] = "refuse"
    graph_url: str = "https://graph.microsoft.com"
    #: Entra ID multi-tenant: the tenant ids accepted (the discovery issuer has "{tenantid}").
    tenants: tuple[str, ...] = ()
    #: Google Workspace: the ``hd`` values accepted (empty: not checked).
    hosted_domains: tuple[str, ...] = ()
    #: Front-channel logout requires the IdP's ``sid``.
    frontchannel_logout_session_required: bool = True
    type: Literal["oidc"] = "oidc"


@dataclass(frozen=True, kw_only=True)
class SAMLConnection(ConnectionPolicy):
    #: The SP key pair's files; None: the broker's own pair (:mod:`broker.sp_keys`).
    sp_key_file: str | None = None
    sp_cert_file: str | None = None
    idp_metadata_url: str | None = None
    idp_metadata_file: str | None = None
    idp_metadata_xml: str | None = field(default=None, repr=False)
    #: Which IdP in the metadata, when it describes several (else the only one).
    idp_entity_id: str | None = None
    metadata_refresh_hours: int = 24
    #: A pinned certificate (PEM) the metadata must be signed with; None: not checked.
    idp_metadata_signing_cert: str | None = field(default=None, repr=False)
    allow_idp_initiated: bool = False
    #: Require the assertion itself signed (else a signed response is enough).
    require_signed_assertion: bool = True
    #: None: sign AuthnRequests when the IdP's metadata asks for it.
    sign_authn_requests: bool | None = None
    allow_sha1: bool = False
    name_id_format: str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    #: Corporate IdPs assert directory e-mails: treat them as verified (the link policy reads it).
    trust_email: bool = True
    email_attribute: str | None = None
    first_name_attribute: str | None = None
    last_name_attribute: str | None = None
    groups_attribute: str | None = None
    type: Literal["saml"] = "saml"


Connection = OIDCConnection | SAMLConnection


@dataclass(frozen=True)
class B2BSettings:
    """B2B Edition: signed-in shoppers are also company users (docs/design.md, flow 7)."""

    access_token: str = field(repr=False)
    api_url: str = "https://api-b2b.bigcommerce.com"
    #: A claim or SAML attribute carrying the B2B company id.
    company_claim: str | None = None
    companies_by_domain: Mapping[str, int] = field(default_factory=dict)
    companies_by_group: Mapping[str, int] = field(default_factory=dict)
    #: No company found: "refuse" with a page, or "customer" (sign in as a plain customer).
    no_company: Literal["refuse", "customer"] = "refuse"
    #: IdP group -> role (0 admin, 1 senior buyer, 2 junior buyer), first match in this order.
    roles_by_group: Mapping[str, int] = field(default_factory=dict)
    #: IdP group -> a custom company role id (wins over roles_by_group).
    company_roles_by_group: Mapping[str, int] = field(default_factory=dict)
    default_role: int = 2
    #: Bring an existing company user's role in line with the IdP at each sign-in.
    sync_role: bool = True
    #: How long a company user reconciled at sign-in is trusted for a sign-in with the same
    #: company plan, with no B2B Edition request (0: ask at every sign-in).
    company_user_cache_hours: int = 24


@dataclass(frozen=True)
class Channel:
    """One storefront of a store: its channel id, domain and platform (docs/bigcommerce-api.md,
    "Multi-storefront and headless"). E-mails, customers and links are per channel."""

    id: int
    storefront_url: str
    platform: Platform = "stencil"
    #: Where a shopper lands when the sign-in names no page.
    default_redirect: str = "/account.php"


@dataclass(frozen=True)
class Branding:
    """``[stores.X.branding]``: the store's shopper pages (docs/templates.md)."""

    #: Headings and titles; None: the storefront's host name.
    name: str | None = None
    logo_url: str | None = None
    favicon_url: str | None = None
    #: ``#rrggbb``, validated: it goes into the pages' CSS as is.
    primary_color: str = "#2a5bd7"
    #: ``mailto:...`` or an https URL, shown on error pages.
    support: str | None = None
    #: Offered languages (of SHOPPER_LANGUAGES); the first is the default.
    languages: tuple[str, ...] = ("en",)
    #: A folder whose templates override the broker's, page by page (the operator's file only).
    template_dir: str | None = None


@dataclass(frozen=True)
class StaffSettings:
    """``[stores.X.staff]``: members of IdP groups get the store's control panel, through the
    GraphQL Account API (docs/bigcommerce-api.md, "GraphQL Account API")."""

    account_uuid: str
    account_token: str = field(repr=False)
    groups: tuple[str, ...]
    #: Only these connections' groups count: another company's IdP could name the same group.
    connections: tuple[str, ...]
    api_url: str = "https://api.bigcommerce.com"
    #: The whole account's Account API budget, shared by every store of the account.
    requests_per_hour: int = 70
    #: A membership seen at a sign-in (connections without SCIM) lasts this long after it.
    sign_in_days: int = 30
    #: Remove store users the broker did not add, too (never those in ``keep``).
    remove_unmanaged: bool = False
    #: E-mails (folded to lower case) never removed from the store.
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoreSettings:
    key: str
    store_hash: str
    api_url: str
    access_token: str = field(repr=False)
    client_id: str
    client_secret: str = field(repr=False)
    storefront_url: str
    connections: Mapping[str, Connection]
    channel_id: int = 1
    default_redirect: str = "/account.php"
    #: Put the browser's IP in the login JWT (`request_ip`): BigCommerce then refuses the
    #: token from any other address. Needs `trusted_proxies` right behind a proxy.
    bind_request_ip: bool = False
    #: Take `iat` from the store's clock (GET /v2/time) instead of ours.
    use_store_clock: bool = False
    api_timeout_seconds: float = 10.0
    #: The secret header value BigCommerce webhook deliveries must carry (None: no webhooks).
    webhook_secret: str | None = field(default=None, repr=False)
    #: Check a linked customer still exists when the last check is older than this (0: never).
    verify_link_after_hours: int = 24
    #: B2B Edition, when the store runs it and the file enables it.
    b2b: B2BSettings | None = None
    #: Hand the storefront script a status token so the storefront follows an IdP-side logout.
    follow_idp_logout: bool = False
    #: The default channel's platform (``channel_id`` and ``storefront_url`` are its others).
    platform: Platform = "stencil"
    #: Every channel of the store by id, the default one (``channel_id``, ``storefront_url``,
    #: ``platform``, ``default_redirect``) first and always present: it is added when absent.
    channels: Mapping[int, Channel] = field(default_factory=dict)
    #: How the shopper pages look and which languages they speak.
    branding: Branding = field(default_factory=Branding)
    #: Control-panel users from IdP groups, when ``[stores.X.staff]`` says so.
    staff: StaffSettings | None = None

    def __post_init__(self) -> None:
        default = Channel(
            id=self.channel_id,
            storefront_url=self.storefront_url,
            platform=self.platform,
            default_redirect=self.default_redirect,
        )
        others = {k: v for k, v in self.channels.items() if k != self.channel_id}
        object.__setattr__(self, "channels", MappingProxyType({default.id: default, **others}))

    @property
    def default_channel(self) -> Channel:
        return self.channels[self.channel_id]

    def channel(self, channel_id: int | None) -> Channel | None:
        """The channel by id (None: the default channel); None for no channel of the store."""
        return self.default_channel if channel_id is None else self.channels.get(channel_id)

    @property
    def api_base(self) -> str:
        return f"{self.api_url.rstrip('/')}/stores/{self.store_hash}"


@dataclass(frozen=True)
class AppSettings:
    """``[app]``: the broker as a BigCommerce app (docs/bigcommerce-api.md, "App install")."""

    client_id: str
    client_secret: str = field(repr=False)
    #: The Fernet keys of secrets at rest: the first encrypts, every one decrypts.
    encryption_key: tuple[str, ...] = field(repr=False)
    login_url: str = "https://login.bigcommerce.com"
    api_url: str = "https://api.bigcommerce.com"
    frame_ancestors: tuple[str, ...] = ("https://*.bigcommerce.com", "https://*.mybigcommerce.com")
    admin_session_minutes: int = 60


@dataclass(frozen=True)
class Settings:
    broker: BrokerSettings
    stores: Mapping[str, StoreSettings]
    #: None: no app; the file's stores only.
    app: AppSettings | None = None

    def store(self, key: str) -> StoreSettings | None:
        return self.stores.get(key)
