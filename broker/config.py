"""Settings: the broker, its stores and each store's named connections, from a TOML file.

The file's shape is a public interface (docs/design.md, "Interfaces"): operators' files depend on
it. Any string value may be ``"env:NAME"`` to read it from the environment. Loading gathers
every problem into one :class:`ConfigError`, one line per problem, each naming its key, so an
operator fixes the file in one pass. Secrets have no defaults.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from broker.errors import ConfigError

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LinkPolicy = Literal["auto", "confirm", "deny"]
TokenAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
#: Asymmetric JWS algorithms an ID token may use. HS* and "none" are never accepted: an
#: HMAC "signature" keyed with a public key proves nothing.
ALLOWED_ID_TOKEN_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ID_TOKEN_ALGORITHMS = ("RS256", "PS256", "ES256")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
_MISSING: Any = object()
T = TypeVar("T")


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
    #: B2B Edition companies and roles bound to this connection (None: the store's maps,
    #: where they cannot cross connections).
    b2b: ConnectionB2B | None = None


@dataclass(frozen=True, kw_only=True)
class OIDCConnection(ConnectionPolicy):
    issuer: str
    client_id: str
    client_secret: str | None = field(repr=False)
    token_endpoint_auth_method: TokenAuthMethod
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    algorithms: tuple[str, ...] = DEFAULT_ID_TOKEN_ALGORITHMS
    groups_claim: str = "groups"
    type: Literal["oidc"] = "oidc"


@dataclass(frozen=True, kw_only=True)
class SAMLConnection(ConnectionPolicy):
    sp_key_file: str
    sp_cert_file: str
    idp_metadata_url: str | None = None
    idp_metadata_file: str | None = None
    idp_metadata_xml: str | None = field(default=None, repr=False)
    #: Which IdP in the metadata, when it describes several (else the only one).
    idp_entity_id: str | None = None
    metadata_refresh_hours: int = 24
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

    @property
    def api_base(self) -> str:
        return f"{self.api_url.rstrip('/')}/stores/{self.store_hash}"


@dataclass(frozen=True)
class Settings:
    broker: BrokerSettings
    stores: Mapping[str, StoreSettings]

    def store(self, key: str) -> StoreSettings | None:
        return self.stores.get(key)


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a TOML file; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_settings(data, os.environ if env is None else env)


def parse_settings(data: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Validate an already-parsed document (the TOML file's tables)."""
    problems: list[str] = []
    root = _Section(data, "", problems, env)
    root.reject_unknown({"broker", "stores"})
    broker = _parse_broker(root.section("broker"))
    stores: dict[str, StoreSettings] = {}
    stores_section = root.section("stores")
    if not stores_section.data:
        problems.append("stores: at least one store is required, e.g. [stores.acme]")
    for key in stores_section.data:
        store = _parse_store(key, stores_section.section(key), broker)
        if store is not None:
            stores[key] = store
    if problems or broker is None:
        raise ConfigError(problems)
    return Settings(broker=broker, stores=MappingProxyType(stores))


def parse_store_document(
    key: str,
    document: Mapping[str, Any],
    broker: BrokerSettings,
    env: Mapping[str, str] | None = None,
) -> StoreSettings:
    """Validate one store given as data (a store held in the database) by the very rules of a
    ``[stores.X]`` table of the file; raise ConfigError listing every problem. Without ``env``,
    ``env:`` values are refused (a stored store holds its values itself)."""
    problems: list[str] = []
    section = _Section(document, f"stores.{key}", problems, env or {})
    store = _parse_store(key, section, broker)
    if problems or store is None:
        raise ConfigError(problems or [f"stores.{key}: not a valid store"])
    return store


def _parse_broker(s: _Section) -> BrokerSettings | None:
    s.reject_unknown(
        {
            "base_url",
            "secret_key",
            "database_url",
            "trusted_proxies",
            "flow_ttl_seconds",
            "saml_key_file",
            "saml_cert_file",
            "audit_retention_days",
        }
    )
    base_url = s.url("base_url")
    secret_key = s.string("secret_key")
    if secret_key is not None and len(secret_key) < 32:
        s.problem("secret_key", "must be at least 32 characters (use a random value)")
        secret_key = None
    database_url = s.string("database_url", default="sqlite:///broker.db")
    trusted_proxies = s.integer("trusted_proxies", default=0, minimum=0, maximum=5)
    flow_ttl = s.integer("flow_ttl_seconds", default=600, minimum=60, maximum=3600)
    retention = s.integer("audit_retention_days", default=180, minimum=0, maximum=3650)
    if (
        base_url is None
        or secret_key is None
        or database_url is None
        or trusted_proxies is None
        or flow_ttl is None
        or retention is None
    ):
        return None
    return BrokerSettings(
        base_url=base_url.rstrip("/"),
        secret_key=secret_key,
        database_url=database_url,
        trusted_proxies=trusted_proxies,
        flow_ttl_seconds=flow_ttl,
        saml_key_file=s.string("saml_key_file", default=None),
        saml_cert_file=s.string("saml_cert_file", default=None),
        audit_retention_days=retention,
    )


_STORE_KEYS = {
    "store_hash",
    "api_url",
    "access_token",
    "client_id",
    "client_secret",
    "storefront_url",
    "channel_id",
    "default_redirect",
    "bind_request_ip",
    "use_store_clock",
    "api_timeout_seconds",
    "webhook_secret",
    "verify_link_after_hours",
    "follow_idp_logout",
    "connections",
    "b2b",
}


def _parse_store(key: str, s: _Section, broker: BrokerSettings | None) -> StoreSettings | None:
    if not KEY_PATTERN.match(key):
        s.problem("", "store keys are lower-case letters, digits, '-' and '_' (used in URLs)")
    s.reject_unknown(_STORE_KEYS)
    conn_tables = s.data.get("connections")
    per_connection = isinstance(conn_tables, Mapping) and any(
        isinstance(c, Mapping) and "b2b" in c for c in conn_tables.values()
    )
    b2b = _parse_b2b(s.section("b2b"), per_connection=per_connection) if "b2b" in s.data else None
    values: dict[str, Any] = {
        "store_hash": s.string("store_hash", pattern=r"^[a-z0-9]{1,32}$"),
        "api_url": s.url("api_url", default="https://api.bigcommerce.com"),
        "access_token": s.string("access_token"),
        "client_id": s.string("client_id"),
        "client_secret": s.string("client_secret"),
        "storefront_url": s.url("storefront_url"),
        "channel_id": s.integer("channel_id", default=1, minimum=1),
        "default_redirect": s.string("default_redirect", default="/account.php"),
        "bind_request_ip": s.boolean("bind_request_ip", default=False),
        "use_store_clock": s.boolean("use_store_clock", default=False),
        "api_timeout_seconds": s.number("api_timeout_seconds", default=10.0, minimum=1, maximum=60),
        "verify_link_after_hours": s.integer(
            "verify_link_after_hours", default=24, minimum=0, maximum=24 * 365
        ),
        "follow_idp_logout": s.boolean("follow_idp_logout", default=False),
    }
    webhook_secret = s.string("webhook_secret", default=None)
    if webhook_secret is not None and len(webhook_secret) < 24:
        s.problem("webhook_secret", "must be at least 24 characters (use a random value)")
    redirect = values["default_redirect"]
    if isinstance(redirect, str) and not (redirect.startswith("/") and "//" not in redirect):
        s.problem("default_redirect", "must be a path on the store, such as /account.php")
        values["default_redirect"] = None
    connections: dict[str, Connection] = {}
    conn_section = s.section("connections")
    if not conn_section.data:
        s.problem(
            "connections", "at least one connection is required, e.g. [stores.X.connections.okta]"
        )
    for conn_key in conn_section.data:
        conn = _parse_connection(conn_key, conn_section.section(conn_key), broker)
        if conn is not None:
            connections[conn_key] = conn
    _check_b2b_bindings(s, b2b, connections, len(conn_section.data))
    if any(v is None for v in values.values()) or len(connections) != len(conn_section.data):
        return None
    return StoreSettings(
        key=key,
        connections=MappingProxyType(connections),
        webhook_secret=webhook_secret,
        b2b=b2b,
        **values,
    )


def _check_b2b_bindings(
    s: _Section, b2b: B2BSettings | None, connections: Mapping[str, Connection], count: int
) -> None:
    """Store-wide company maps must not let one connection's IdP reach another's companies."""
    for conn in connections.values():
        if conn.b2b is not None and b2b is None:
            s.problem(
                f"connections.{conn.key}.b2b",
                "needs the store's [b2b] table (access_token) to be enabled",
            )
    if b2b is None or count < 2:
        return
    for name in ("company_claim", "companies_by_group"):
        if getattr(b2b, name) and any(c.b2b is None for c in connections.values()):
            s.problem(
                f"b2b.{name}",
                "with several connections, any of them could assert another's company: move "
                "it into [stores.X.connections.Y.b2b] of the connection it belongs to",
            )


_B2B_KEYS = {
    "enabled",
    "api_url",
    "access_token",
    "company_claim",
    "companies_by_domain",
    "companies_by_group",
    "no_company",
    "roles_by_group",
    "company_roles_by_group",
    "default_role",
    "sync_role",
}


def _parse_b2b(s: _Section, *, per_connection: bool) -> B2BSettings | None:
    """The store's [b2b] table; ``per_connection``: some connection has a [b2b] of its own."""
    s.reject_unknown(_B2B_KEYS)
    if not s.boolean("enabled", default=True):
        return None
    roles = s.int_map("roles_by_group")
    if roles is not None and any(r not in (0, 1, 2) for r in roles.values()):
        s.problem("roles_by_group", "roles are 0 (admin), 1 (senior buyer) or 2 (junior buyer)")
    default_role = s.integer("default_role", default=2, minimum=0, maximum=2)
    values: dict[str, Any] = {
        "access_token": s.string("access_token"),
        "api_url": s.url("api_url", default="https://api-b2b.bigcommerce.com"),
        "company_claim": s.string("company_claim", default=None),
        "companies_by_domain": s.int_map("companies_by_domain"),
        "companies_by_group": s.int_map("companies_by_group"),
        "no_company": s.choice("no_company", ("refuse", "customer"), default="refuse"),
        "roles_by_group": roles,
        "company_roles_by_group": s.int_map("company_roles_by_group"),
        "default_role": default_role,
        "sync_role": s.boolean("sync_role", default=True),
    }
    if (
        not (
            values["company_claim"] or values["companies_by_domain"] or values["companies_by_group"]
        )
        and not per_connection
    ):
        s.problem(
            "",
            "say how the company is found: company_claim, companies_by_domain "
            "or companies_by_group (here, or per connection in [stores.X.connections.Y.b2b])",
        )
    if s.has_problems() or any(v is None for k, v in values.items() if k != "company_claim"):
        return None
    for name in (
        "companies_by_domain",
        "companies_by_group",
        "roles_by_group",
        "company_roles_by_group",
    ):
        mapping = values[name]
        if name == "companies_by_domain":
            mapping = {k.lower().lstrip("@"): v for k, v in mapping.items()}
        values[name] = MappingProxyType(dict(mapping))
    return B2BSettings(**values)


_CONNECTION_B2B_KEYS = {
    "company_claim",
    "companies",
    "companies_by_domain",
    "companies_by_group",
    "roles_by_group",
    "company_roles_by_group",
    "default_role",
}


def _parse_connection_b2b(s: _Section) -> ConnectionB2B | None:
    s.reject_unknown(_CONNECTION_B2B_KEYS)
    roles = s.int_map("roles_by_group")
    if roles is not None and any(r not in (0, 1, 2) for r in roles.values()):
        s.problem("roles_by_group", "roles are 0 (admin), 1 (senior buyer) or 2 (junior buyer)")
    companies = s.int_list("companies", default=[])
    by_domain = s.int_map("companies_by_domain")
    by_group = s.int_map("companies_by_group")
    claim = s.string("company_claim", default=None)
    values: dict[str, Any] = {
        "company_claim": claim,
        "companies": None if companies is None else tuple(companies),
        "companies_by_domain": None
        if by_domain is None
        else MappingProxyType({k.lower().lstrip("@"): v for k, v in by_domain.items()}),
        "companies_by_group": None if by_group is None else MappingProxyType(by_group),
        "roles_by_group": None if roles is None else MappingProxyType(roles),
        "company_roles_by_group": _frozen(s.int_map("company_roles_by_group")),
        "default_role": s.integer("default_role", default=None, minimum=0, maximum=2),
    }
    if claim and not companies and not by_domain and not by_group:
        s.problem(
            "companies",
            "list the companies company_claim may name for this connection, e.g. companies = [101]",
        )
    if not (claim or by_domain or by_group):
        s.problem(
            "", "say how the company is found: company_claim, companies_by_domain or _by_group"
        )
    if s.has_problems() or any(
        v is None for k, v in values.items() if k not in ("company_claim", "default_role")
    ):
        return None
    return ConnectionB2B(**values)


def _frozen(mapping: dict[str, int] | None) -> Mapping[str, int] | None:
    return None if mapping is None else MappingProxyType(mapping)


_POLICY_KEYS = {
    "type",
    "display_name",
    "jit",
    "link",
    "allowed_domains",
    "require_verified_email",
    "customer_groups_by_group",
    "clock_skew_seconds",
    "sync_email",
    "idp_logout",
    "b2b",
}
_OIDC_KEYS = _POLICY_KEYS | {
    "issuer",
    "client_id",
    "client_secret",
    "token_endpoint_auth_method",
    "scopes",
    "algorithms",
    "groups_claim",
}


def _parse_connection(key: str, s: _Section, broker: BrokerSettings | None) -> Connection | None:
    if not KEY_PATTERN.match(key):
        s.problem("", "connection keys are lower-case letters, digits, '-' and '_' (used in URLs)")
        return None
    kind = s.string("type")
    if kind == "saml":
        return _parse_saml(key, s, broker)
    if kind != "oidc":
        if kind is not None:
            s.problem("type", f"must be 'oidc' or 'saml', not {kind!r}")
        return None
    return _parse_oidc(key, s)


def _parse_oidc(key: str, s: _Section) -> OIDCConnection | None:
    s.reject_unknown(_OIDC_KEYS)
    client_secret = s.string("client_secret", default=None)
    default_method = "client_secret_basic" if client_secret else "none"
    method = s.choice(
        "token_endpoint_auth_method",
        ("client_secret_basic", "client_secret_post", "none"),
        default=default_method,
    )
    if method == "none" and client_secret:
        s.problem("token_endpoint_auth_method", "'none' is for public clients: drop client_secret")
    elif method in ("client_secret_basic", "client_secret_post") and not client_secret:
        s.problem("client_secret", f"required with token_endpoint_auth_method = {method!r}")
    scopes = s.string_list("scopes", default=["openid", "email", "profile"])
    if scopes is not None and "openid" not in scopes:
        s.problem("scopes", "must include 'openid'")
    algorithms = s.string_list("algorithms", default=list(DEFAULT_ID_TOKEN_ALGORITHMS))
    if algorithms is not None:
        bad = [a for a in algorithms if a not in ALLOWED_ID_TOKEN_ALGORITHMS]
        if bad or not algorithms:
            allowed = ", ".join(sorted(ALLOWED_ID_TOKEN_ALGORITHMS))
            s.problem("algorithms", f"{bad or 'empty'} not allowed; choose from {allowed}")
    values: dict[str, Any] = {
        **_parse_policy(key, s),
        "issuer": s.url("issuer", verbatim=True),
        "client_id": s.string("client_id"),
        "groups_claim": s.string("groups_claim", default="groups"),
    }
    if s.has_problems() or any(v is None for k, v in values.items() if k != "b2b"):
        return None
    return OIDCConnection(
        key=key,
        client_secret=client_secret,
        token_endpoint_auth_method=method,  # type: ignore[arg-type]
        scopes=tuple(scopes or ()),
        algorithms=tuple(algorithms or ()),
        **values,
    )


def _parse_policy(key: str, s: _Section) -> dict[str, Any]:
    """The keys every connection type shares: its name and its account policy."""
    domains = s.string_list("allowed_domains", default=[])
    groups_map = s.int_map("customer_groups_by_group")
    b2b = _parse_connection_b2b(s.section("b2b")) if "b2b" in s.data else None
    return {
        "b2b": b2b,
        "display_name": s.string("display_name", default=key.replace("-", " ").title()),
        "jit": s.boolean("jit", default=True),
        "link": s.choice("link", ("auto", "confirm", "deny"), default="confirm"),
        "require_verified_email": s.boolean("require_verified_email", default=True),
        "sync_email": s.boolean("sync_email", default=False),
        "idp_logout": s.boolean("idp_logout", default=False),
        "clock_skew_seconds": s.integer("clock_skew_seconds", default=60, minimum=0, maximum=300),
        "allowed_domains": None
        if domains is None
        else tuple(d.lower().lstrip("@") for d in domains),
        "customer_groups_by_group": None
        if groups_map is None
        else MappingProxyType(dict(groups_map)),
    }


_SAML_KEYS = _POLICY_KEYS | {
    "idp_metadata_url",
    "idp_metadata_file",
    "idp_metadata_xml",
    "idp_entity_id",
    "metadata_refresh_hours",
    "allow_idp_initiated",
    "require_signed_assertion",
    "sign_authn_requests",
    "allow_sha1",
    "name_id_format",
    "sp_key_file",
    "sp_cert_file",
    "trust_email",
    "email_attribute",
    "first_name_attribute",
    "last_name_attribute",
    "groups_attribute",
}
NAME_ID_FORMATS = {
    "emailAddress": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "persistent": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
}


def _parse_saml(key: str, s: _Section, broker: BrokerSettings | None) -> SAMLConnection | None:
    s.reject_unknown(_SAML_KEYS)
    sources = [
        k for k in ("idp_metadata_url", "idp_metadata_file", "idp_metadata_xml") if k in s.data
    ]
    if len(sources) != 1:
        s.problem("idp_metadata_url", "give exactly one of idp_metadata_url, _file or _xml")
    metadata_url = s.url("idp_metadata_url", default=None)
    metadata_file = s.string("idp_metadata_file", default=None)
    if metadata_file is not None and not Path(metadata_file).is_file():
        s.problem("idp_metadata_file", f"no such file: {metadata_file}")
    key_file = s.string("sp_key_file", default=broker.saml_key_file if broker else None)
    cert_file = s.string("sp_cert_file", default=broker.saml_cert_file if broker else None)
    if not key_file or not cert_file:
        s.problem(
            "sp_key_file",
            "SAML needs an SP key pair: set sp_key_file and sp_cert_file here or "
            "saml_key_file and saml_cert_file in [broker] (make one with `broker keys`)",
        )
    for name, path in (("sp_key_file", key_file), ("sp_cert_file", cert_file)):
        if path and not Path(path).is_file():
            s.problem(name, f"no such file: {path}")
    name_id = s.choice("name_id_format", tuple(NAME_ID_FORMATS), default="emailAddress")
    if s.data.get("link") == "auto" and "trust_email" not in s.data:
        s.problem(
            "link",
            "'auto' links existing accounts on the e-mail the IdP asserts, and SAML has no "
            "standard way to say it is verified: set trust_email = true if the IdP's e-mail "
            "attribute is managed by the directory (users cannot change it), or use "
            "link = 'confirm'",
        )
    values: dict[str, Any] = {
        **_parse_policy(key, s),
        "idp_metadata_url": metadata_url,
        "idp_metadata_file": metadata_file,
        "idp_metadata_xml": s.string("idp_metadata_xml", default=None),
        "idp_entity_id": s.string("idp_entity_id", default=None),
        "metadata_refresh_hours": s.integer(
            "metadata_refresh_hours", default=24, minimum=1, maximum=24 * 30
        ),
        "allow_idp_initiated": s.boolean("allow_idp_initiated", default=False),
        "require_signed_assertion": s.boolean("require_signed_assertion", default=True),
        "sign_authn_requests": s.boolean("sign_authn_requests", default=None),
        "allow_sha1": s.boolean("allow_sha1", default=False),
        "trust_email": s.boolean("trust_email", default=True),
        "email_attribute": s.string("email_attribute", default=None),
        "first_name_attribute": s.string("first_name_attribute", default=None),
        "last_name_attribute": s.string("last_name_attribute", default=None),
        "groups_attribute": s.string("groups_attribute", default=None),
    }
    optional = {
        "b2b",
        "idp_metadata_url",
        "idp_metadata_file",
        "idp_metadata_xml",
        "idp_entity_id",
        "sign_authn_requests",
        "email_attribute",
        "first_name_attribute",
        "last_name_attribute",
        "groups_attribute",
    }
    required = [v for k, v in values.items() if k not in optional]
    if s.has_problems() or any(v is None for v in required) or name_id is None:
        return None
    return SAMLConnection(
        key=key,
        name_id_format=NAME_ID_FORMATS[name_id],
        sp_key_file=str(key_file),
        sp_cert_file=str(cert_file),
        **values,
    )


class _Section:
    """One TOML table being read: typed getters that record problems instead of raising."""

    def __init__(self, data: Any, path: str, problems: list[str], env: Mapping[str, str]) -> None:
        self.data: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        self.path = path
        self.problems = problems
        self.env = env
        self._start = len(problems)
        if data is not None and not isinstance(data, Mapping):
            self.problem("", "must be a table")

    def name(self, key: str) -> str:
        return ".".join(p for p in (self.path, key) if p)

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.name(key) or '(top level)'}: {text}")

    def has_problems(self) -> bool:
        return len(self.problems) > self._start

    def section(self, key: str) -> _Section:
        return _Section(self.data.get(key), self.name(key), self.problems, self.env)

    def reject_unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.problem(key, "unknown key (check the spelling)")

    def _raw(self, key: str, default: Any) -> Any:
        if key not in self.data:
            if default is _MISSING:
                self.problem(key, "is required")
                return None
            return default
        value = self.data[key]
        if isinstance(value, str) and value.startswith("env:"):
            name = value[4:]
            if name not in self.env or self.env[name] == "":
                self.problem(key, f"environment variable {name} is not set")
                return None
            return self.env[name]
        return value

    def _typed(self, key: str, default: Any, kind: type[T], label: str) -> T | None:
        value = self._raw(key, default)
        if value is None or value is default:
            return value
        if kind is int and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)  # from the environment
        if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(key, f"must be {label}")
            return None
        return value

    def string(self, key: str, default: Any = _MISSING, pattern: str | None = None) -> str | None:
        value = self._typed(key, default, str, "a string")
        if isinstance(value, str) and not value.strip():
            self.problem(key, "must not be empty")
            return None
        if isinstance(value, str) and pattern and not re.match(pattern, value):
            self.problem(key, f"{value!r} does not look right (expected {pattern})")
            return None
        return value

    def url(self, key: str, default: Any = _MISSING, *, verbatim: bool = False) -> str | None:
        """An http(s) URL without query or fragment; a trailing ``/`` is dropped unless
        ``verbatim`` (an OIDC issuer is an identifier: its trailing ``/`` is part of it)."""
        value = self.string(key, default)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(key, f"{value!r} is not an http(s) URL")
            return None
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
            self.problem(key, "must use https (http is allowed only on 127.0.0.1/localhost)")
            return None
        if parts.query or parts.fragment:
            self.problem(key, "must not have a query or fragment")
            return None
        return value if verbatim else value.rstrip("/")

    def boolean(self, key: str, default: Any = _MISSING) -> bool | None:
        return self._typed(key, default, bool, "true or false")

    def integer(
        self,
        key: str,
        default: Any = _MISSING,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self._typed(key, default, int, "an integer")
        checked: int | None = self._in_range(key, value, minimum, maximum)
        return checked

    def number(
        self, key: str, default: Any = _MISSING, minimum: float = 0, maximum: float = 1e9
    ) -> float | None:
        value = self._raw(key, default)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, "must be a number")
            return None
        checked: float | None = self._in_range(key, float(value), minimum, maximum)
        return checked

    def _in_range(self, key: str, value: Any, minimum: Any, maximum: Any) -> Any:
        if value is None:
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.problem(key, f"must be between {minimum} and {maximum}")
            return None
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: Any = _MISSING) -> str | None:
        value = self.string(key, default)
        if value is not None and value not in allowed:
            self.problem(key, f"must be one of {', '.join(allowed)}, not {value!r}")
            return None
        return value

    def string_list(self, key: str, default: Any = _MISSING) -> list[str] | None:
        value = self._raw(key, default)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(key, "must be a list of non-empty strings")
            return None
        return value

    def int_list(self, key: str, default: Any = _MISSING) -> list[int] | None:
        value = self._raw(key, default)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        ):
            self.problem(key, "must be a list of ids, e.g. [101, 102]")
            return None
        return value

    def int_map(self, key: str) -> dict[str, int] | None:
        value = self._raw(key, {})
        if value is None:
            return None
        if not isinstance(value, Mapping) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value.values()
        ):
            self.problem(key, 'must be a table of name = id, e.g. { "wholesale" = 2 }')
            return None
        return dict(value)
