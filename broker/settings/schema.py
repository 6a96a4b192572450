"""One schema for every place a setting is written: each key once, with its type, default,
bounds and one-line documentation.

One pydantic model per table of the file (``[broker]``, ``[stores.X]``, its ``[b2b]``, each
``[stores.X.connections.Y]``, its ``[b2b]`` and its ``[scim]``). The TOML file is read through
them now (:mod:`broker.settings.file`); database rows, admin forms and admin API bodies are
next, and ``Model.model_json_schema()`` gives them the keys, defaults and bounds. Sub-tables
(``connections``, ``b2b``, ``scim``) are validated as tables of their own, so one bad table
hides no other.

Each type's validator raises our own wording (``must be an integer``), so the lines an operator
reads do not change with pydantic's; :mod:`broker.settings.problems` turns the rest (missing,
unknown, out of bounds) into lines. Values are checked as the file gives them: a string from the
environment may stand for an integer or a boolean. Rules across keys (a secret needed by a token
method, exactly one SAML metadata source, files that exist, ...) are in
:mod:`broker.settings.file`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from broker.settings.values import DEFAULT_ID_TOKEN_ALGORITHMS, SHOPPER_LANGUAGES

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: The error type of every problem worded here (its message is the line's text).
PROBLEM = "config"


def _problem(text: str) -> PydanticCustomError:
    return PydanticCustomError(PROBLEM, text)  # no context: the text is not formatted


def as_string(value: Any) -> Any:
    """A string, and not a blank one (None passes: the type says whether it may be)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _problem("must be a string")
    if not value.strip():
        raise _problem("must not be empty")
    return value


def _matching(pattern: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        value = as_string(value)
        if isinstance(value, str) and not re.match(pattern, value):
            raise _problem(f"{value!r} does not look right (expected {pattern})")
        return value

    return check


def _url(*, verbatim: bool) -> Callable[[Any], Any]:
    """An http(s) URL without query or fragment; a trailing ``/`` is dropped unless
    ``verbatim`` (an OIDC issuer is an identifier: its trailing ``/`` is part of it)."""

    def check(value: Any) -> Any:
        value = as_string(value)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _problem(f"{value!r} is not an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise _problem("must use https (http is allowed only on 127.0.0.1/localhost)")
        if parts.query or parts.fragment:
            raise _problem("must not have a query or fragment")
        return value if verbatim else value.rstrip("/")

    return check


def _choice(*allowed: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        value = as_string(value)
        if value is not None and value not in allowed:
            raise _problem(f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    return check


def _boolean(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"  # from the environment
    if value is not None and not isinstance(value, bool):
        raise _problem("must be true or false")
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        with contextlib.suppress(ValueError):  # "²" is a digit, yet no int
            value = int(value)  # from the environment
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _problem("must be an integer")
    return value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)  # from the environment
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _problem("must be a number")
    return float(value)


def _string_list(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise _problem("must be a list of non-empty strings")
    return tuple(value)


def _id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _id_list(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(_id(v) and v > 0 for v in value):
        raise _problem("must be a list of ids, e.g. [101, 102]")
    return tuple(value)


def _id_map(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(_id(v) and v >= 0 for v in value.values()):
        raise _problem('must be a table of name = id, e.g. { "wholesale" = 2 }')
    return dict(value)


def _fernet_keys(value: Any) -> Any:
    """Fernet keys: a list, or one string (from the environment: comma-separated)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    keys = _string_list(value)
    if keys is not None:
        if not keys:
            raise _problem("needs at least one key")
        for number, key in enumerate(keys, 1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise _problem(
                    f"key {number} is not a Fernet key (URL-safe base64 of 32 random bytes; "
                    'make one with python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())")'
                ) from None
    return keys


Str = Annotated[str, BeforeValidator(as_string)]
OptStr = Annotated[str | None, BeforeValidator(as_string)]
Url = Annotated[str, BeforeValidator(_url(verbatim=False))]
OptUrl = Annotated[str | None, BeforeValidator(_url(verbatim=False))]
Issuer = Annotated[str, BeforeValidator(_url(verbatim=True))]
Bool = Annotated[bool, BeforeValidator(_boolean)]
OptBool = Annotated[bool | None, BeforeValidator(_boolean)]
Int = Annotated[int, BeforeValidator(_integer)]
OptInt = Annotated[int | None, BeforeValidator(_integer)]
Number = Annotated[float, BeforeValidator(_number)]
StrList = Annotated[tuple[str, ...], BeforeValidator(_string_list)]
FernetKeys = Annotated[tuple[str, ...], BeforeValidator(_fernet_keys)]
IdList = Annotated[tuple[int, ...], BeforeValidator(_id_list)]
IdMap = Annotated[dict[str, int], BeforeValidator(_id_map)]
StoreHash = Annotated[str, BeforeValidator(_matching(r"^[a-z0-9]{1,32}$"))]
AccountUuid = Annotated[str, BeforeValidator(_matching(r"^[0-9a-fA-F-]{8,64}$"))]
Link = Annotated[
    Literal["auto", "confirm", "deny"], BeforeValidator(_choice("auto", "confirm", "deny"))
]
TokenMethod = Annotated[
    Literal["client_secret_basic", "client_secret_post", "none"] | None,
    BeforeValidator(_choice("client_secret_basic", "client_secret_post", "none")),
]
Platform = Annotated[
    Literal["stencil", "catalyst"], BeforeValidator(_choice("stencil", "catalyst"))
]
NoCompany = Annotated[Literal["refuse", "customer"], BeforeValidator(_choice("refuse", "customer"))]
Deprovision = Annotated[Literal["block", "delete"], BeforeValidator(_choice("block", "delete"))]
ScimSubject = Annotated[
    Literal["externalId", "userName", "emails"] | None,
    BeforeValidator(_choice("externalId", "userName", "emails")),
]
GroupsOverage = Annotated[Literal["refuse", "graph"], BeforeValidator(_choice("refuse", "graph"))]
NameIdFormat = Annotated[
    Literal["emailAddress", "persistent", "unspecified"],
    BeforeValidator(_choice("emailAddress", "persistent", "unspecified")),
]


class Table(BaseModel):
    """A table of the file: unknown keys are problems, defaults are not re-validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class BrokerTable(Table):
    """``[broker]``: the broker itself."""

    base_url: Url = Field(
        description="Public URL of the broker (https; http only on localhost)",
    )
    secret_key: Str = Field(repr=False, description="32+ random characters")
    database_url: Str = Field(
        "sqlite:///broker.db",
        description="Or postgresql+psycopg://user@host/db for several instances",
    )
    trusted_proxies: Int = Field(
        0, ge=0, le=5, description="Reverse proxies in front that set X-Forwarded-*"
    )
    flow_ttl_seconds: Int = Field(
        600, ge=60, le=3600, description="How long a started sign-in may take"
    )
    saml_key_file: OptStr = Field(None, description="SP key shared by SAML connections without one")
    saml_cert_file: OptStr = Field(
        None, description="SP certificate shared by SAML connections without one"
    )
    audit_retention_days: Int = Field(
        180, ge=0, le=3650, description="broker gc deletes older audit rows (0 keeps them)"
    )
    metrics_token: OptStr = Field(
        None,
        repr=False,
        description="GET /metrics asks for Authorization: Bearer <this> (default: open)",
    )


class AppTable(Table):
    """``[app]``: the broker as a BigCommerce app, serving every store that installs it."""

    client_id: Str = Field(description="The app's client ID: signs installed stores' login JWTs")
    client_secret: Str = Field(repr=False, description="The app's client secret")
    login_url: Url = Field(
        "https://login.bigcommerce.com", description="Where install codes are exchanged"
    )
    api_url: Url = Field("https://api.bigcommerce.com", description="BigCommerce's API")
    encryption_key: FernetKeys = Field(
        repr=False,
        description="Fernet keys for secrets at rest; the first encrypts, every one decrypts",
    )
    frame_ancestors: StrList = Field(
        ("https://*.bigcommerce.com", "https://*.mybigcommerce.com"),
        description="Origins that may frame the admin (CSP frame-ancestors)",
    )
    admin_session_minutes: Int = Field(
        60, ge=5, le=1440, description="How long an admin page stays usable after a load"
    )


class StoreTable(Table):
    """``[stores.X]``: one BigCommerce store (its ``connections`` and ``b2b`` are tables)."""

    store_hash: StoreHash = Field(description="The part after /stores/ in the store's API path")
    api_url: Url = Field("https://api.bigcommerce.com", description="BigCommerce's API")
    access_token: Str = Field(repr=False, description="The store-level API account's token")
    client_id: Str = Field(description="The store-level API account's client ID")
    client_secret: Str = Field(
        repr=False, description="The API account's client secret (signs the login JWTs)"
    )
    storefront_url: Url = Field(description="The default channel's storefront domain")
    channel_id: Int = Field(1, ge=1, description="The default channel (more in [channels])")
    platform: Platform = Field(
        "stencil", description="The default channel's storefront: stencil or catalyst (headless)"
    )
    default_redirect: Str = Field(
        "/account.php", description="Where shoppers land when no redirect_to is given"
    )
    bind_request_ip: Bool = Field(
        False, description="Put the browser's IP in the login JWT (request_ip)"
    )
    use_store_clock: Bool = Field(
        False, description="Take iat from the store's clock (GET /v2/time)"
    )
    api_timeout_seconds: Number = Field(
        10.0, ge=1, le=60, description="How long a store API request may take"
    )
    webhook_secret: OptStr = Field(
        None, repr=False, description="24+ random characters; enables webhooks"
    )
    verify_link_after_hours: Int = Field(
        24, ge=0, le=24 * 365, description="Re-check a linked customer exists this often (0: never)"
    )
    follow_idp_logout: Bool = Field(
        False, description="The storefront follows an IdP-side logout (a status token)"
    )


class ChannelTable(Table):
    """``[stores.X.channels.N]``: one more storefront of the store, on channel N."""

    storefront_url: Url = Field(description="The channel's storefront domain")
    platform: Platform = Field(
        "stencil", description="The channel's storefront: stencil or catalyst (headless)"
    )
    default_redirect: OptStr = Field(
        None,
        description="Where shoppers land on this channel (default: the store's "
        "default_redirect if it sets one, else /account.php, or /account/orders on catalyst)",
    )


class _B2BMaps(Table):
    company_claim: OptStr = Field(
        None, description="A claim or SAML attribute carrying the B2B company id"
    )
    companies_by_domain: IdMap = Field(
        default_factory=dict, description="E-mail domain -> company id"
    )
    companies_by_group: IdMap = Field(
        default_factory=dict, description="IdP group -> company id (first match, file order)"
    )
    roles_by_group: IdMap = Field(
        default_factory=dict,
        description="IdP group -> role: 0 admin, 1 senior buyer, 2 junior buyer (first match)",
    )
    company_roles_by_group: IdMap = Field(
        default_factory=dict, description="IdP group -> a custom company role id (wins)"
    )


class B2BTable(_B2BMaps):
    """``[stores.X.b2b]``: B2B Edition for the store."""

    enabled: Bool = Field(True, description="false: the table is ignored")
    api_url: Url = Field("https://api-b2b.bigcommerce.com", description="B2B Edition's API")
    access_token: Str = Field(repr=False, description="A B2B Edition management API token")
    no_company: NoCompany = Field(
        "refuse", description="No company found: refuse, or customer (a plain customer)"
    )
    default_role: Int = Field(2, ge=0, le=2, description="The role when no group names one")
    sync_role: Bool = Field(True, description="Bring the role in line with the IdP at each sign-in")
    company_user_cache_hours: Int = Field(
        24,
        ge=0,
        le=24 * 365,
        description="Trust a company user checked at B2B Edition this long for sign-ins with the "
        "same company and role (0: ask at every sign-in)",
    )


class ConnectionB2BTable(_B2BMaps):
    """``[stores.X.connections.Y.b2b]``: the only companies a connection may place users in."""

    companies: IdList = Field(
        (), description="Every company this connection may place users in (company_claim's ids)"
    )
    default_role: OptInt = Field(
        None, ge=0, le=2, description="The role when no group names one (else the store's)"
    )


class ConnectionScimTable(Table):
    """``[stores.X.connections.Y.scim]``: SCIM 2.0 provisioning from this connection's IdP."""

    enabled: Bool = Field(False, description="Serve SCIM for this connection (with a token)")
    deprovision: Deprovision = Field(
        "block", description="An inactive user: block (sign-in refused) | delete the customer"
    )
    delete_after_days: Int = Field(
        30, ge=1, le=3650, description="With deprovision = delete: days blocked before deletion"
    )
    customer_groups_by_group: IdMap = Field(
        default_factory=dict, description="SCIM group displayName -> customer group id"
    )
    subject_attribute: ScimSubject = Field(
        None,
        description="The SCIM attribute that is the IdP subject (OIDC sub, SAML NameID): "
        "externalId (default), userName or emails",
    )


class _ConnectionTable(Table):
    """What every connection type has: its name and its account policy."""

    display_name: OptStr = Field(
        None, description='Shown as "Sign in with ..." (default: the key, title-cased)'
    )
    jit: Bool = Field(True, description="Create a customer who does not exist yet")
    link: Link = Field(
        "confirm",
        description="An e-mail that matches an unlinked customer: confirm | auto | deny",
    )
    allowed_domains: StrList = Field((), description="Only these e-mail domains (empty: any)")
    require_verified_email: Bool = Field(
        True, description="Refuse an e-mail the IdP does not assert verified"
    )
    customer_groups_by_group: IdMap = Field(
        default_factory=dict, description="IdP group -> customer group, first match"
    )
    clock_skew_seconds: Int = Field(
        60, ge=0, le=300, description="Clock difference tolerated with the IdP"
    )
    sync_email: Bool = Field(
        False, description="Let an IdP e-mail change rewrite the BigCommerce e-mail"
    )
    idp_logout: Bool = Field(False, description="Sign out of the IdP too at a store logout")
    channels: IdList = Field(
        (), description="The channels this connection is offered on (empty: all the store's)"
    )


class OIDCTable(_ConnectionTable):
    """``[stores.X.connections.Y]`` with ``type = "oidc"``."""

    type: Literal["oidc"] = Field(description="oidc or saml")
    issuer: Issuer = Field(
        description="Discovery: issuer + /.well-known/openid-configuration (kept verbatim)"
    )
    client_id: Str = Field(description="The client registered at the IdP")
    client_secret: OptStr = Field(
        None, repr=False, description="Omit for a public client (PKCE only)"
    )
    token_endpoint_auth_method: TokenMethod = Field(
        None,
        description="client_secret_basic (with a secret), client_secret_post, or none (without)",
    )
    scopes: StrList = Field(("openid", "email", "profile"), description="Must include openid")
    algorithms: StrList = Field(
        DEFAULT_ID_TOKEN_ALGORITHMS,
        description="ID token algorithms accepted; never HS*/none",
    )
    groups_claim: Str = Field(
        "groups",
        description="The claim carrying the IdP's groups: a claim name (also one with dots, "
        "https://example.com/groups), else a dotted path into nested claims (realm_access.roles)",
    )
    email_claim: Str = Field(
        "email", description="The claim carrying the e-mail (a name, else a dotted path)"
    )
    email_verified_claim: Str = Field(
        "email_verified",
        description="The claim saying the e-mail is verified (Entra ID: xms_edov, the e-mail's "
        "domain owner verified)",
    )
    first_name_claim: Str = Field(
        "given_name", description="The claim carrying the given name (a name, else a path)"
    )
    last_name_claim: Str = Field(
        "family_name", description="The claim carrying the family name (a name, else a path)"
    )
    groups_overage: GroupsOverage = Field(
        "refuse",
        description="Entra ID with too many groups for the token: refuse (naming the fix), or "
        "graph (read them from Microsoft Graph with the access token)",
    )
    graph_url: Url = Field(
        "https://graph.microsoft.com",
        description="Microsoft Graph, for groups_overage = graph",
    )
    tenants: StrList = Field(
        (),
        description="Entra ID multi-tenant (issuer .../organizations/v2.0): the tenant ids "
        "(tid) accepted; the subject is then tid:sub",
    )
    hosted_domains: StrList = Field(
        (),
        description="Google Workspace: only these hd (hosted domain) values (empty: not checked)",
    )
    frontchannel_logout_session_required: Bool = Field(
        True,
        description="Front-channel logout needs the IdP's sid (and iss, when it sends one)",
    )


class SAMLTable(_ConnectionTable):
    """``[stores.X.connections.Y]`` with ``type = "saml"``."""

    type: Literal["saml"] = Field(description="oidc or saml")
    idp_metadata_url: OptUrl = Field(
        None, description="The IdP's metadata (or idp_metadata_file, or idp_metadata_xml)"
    )
    idp_metadata_file: OptStr = Field(None, description="The IdP's metadata in a file")
    idp_metadata_xml: OptStr = Field(None, repr=False, description="The IdP's metadata itself")
    idp_entity_id: OptStr = Field(
        None, description="Which IdP in the metadata, when it describes several"
    )
    metadata_refresh_hours: Int = Field(
        24, ge=1, le=24 * 30, description="The last good copy is kept when a refresh fails"
    )
    idp_metadata_signing_cert: OptStr = Field(
        None, repr=False, description="A certificate (PEM) the metadata must be signed with"
    )
    allow_idp_initiated: Bool = Field(
        False, description="Accept sign-ins started from the IdP's portal"
    )
    require_signed_assertion: Bool = Field(
        True, description="false: a signed Response alone is enough"
    )
    sign_authn_requests: OptBool = Field(
        None, description="Sign AuthnRequests (default: when the IdP's metadata asks)"
    )
    allow_sha1: Bool = Field(False, description="Accept SHA-1 signatures")
    name_id_format: NameIdFormat = Field(
        "emailAddress", description="emailAddress, persistent or unspecified"
    )
    sp_key_file: OptStr = Field(None, description="SP key (default: [broker] saml_key_file)")
    sp_cert_file: OptStr = Field(
        None, description="SP certificate (default: [broker] saml_cert_file)"
    )
    trust_email: Bool = Field(
        True, description="The IdP's e-mails count as verified (link = auto reads it)"
    )
    email_attribute: OptStr = Field(
        None, description="Else the NameID, else the usual attribute names"
    )
    first_name_attribute: OptStr = Field(None, description="Else the usual attribute names")
    last_name_attribute: OptStr = Field(None, description="Else the usual attribute names")
    groups_attribute: OptStr = Field(None, description="Else the usual attribute names")


def _color(value: Any) -> Any:
    value = as_string(value)
    if isinstance(value, str) and not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
        raise _problem(f"{value!r} is not a colour as #rrggbb (e.g. #0a6e4f)")
    return value.lower() if isinstance(value, str) else value


def _image_url(value: Any) -> Any:
    """An https image URL (http only on localhost); a query is allowed (CDNs use one)."""
    value = as_string(value)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _problem(f"{value!r} is not an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise _problem("must use https (http is allowed only on 127.0.0.1/localhost)")
    return value


def _support(value: Any) -> Any:
    """mailto:address, or an https page."""
    value = as_string(value)
    if value is None:
        return None
    if value.startswith("mailto:"):
        if not re.fullmatch(r"mailto:[^@\s?]+@[^@\s?]+\.[^@\s?]+", value):
            raise _problem(f"{value!r} is not mailto:someone@example.com")
        return value
    try:
        return _image_url(value)
    except PydanticCustomError:
        raise _problem(f"{value!r} is neither mailto:address nor an https URL") from None


def _languages(value: Any) -> Any:
    languages = _string_list(value)
    if languages is None:
        return None
    if not languages:
        raise _problem(f"needs at least one language (of {', '.join(SHOPPER_LANGUAGES)})")
    unknown = [lang for lang in languages if lang not in SHOPPER_LANGUAGES]
    if unknown:
        raise _problem(
            f"{', '.join(repr(u) for u in unknown)}: the broker's pages come in "
            f"{', '.join(SHOPPER_LANGUAGES)}"
        )
    return tuple(dict.fromkeys(languages))


Color = Annotated[str, BeforeValidator(_color)]
OptImageUrl = Annotated[str | None, BeforeValidator(_image_url)]
OptSupport = Annotated[str | None, BeforeValidator(_support)]
Languages = Annotated[tuple[str, ...], BeforeValidator(_languages)]


class BrandingTable(Table):
    """``[stores.X.branding]``: how the store's shopper pages look and speak."""

    name: OptStr = Field(
        None, description="Headings and titles (default: the storefront's host name)"
    )
    logo_url: OptImageUrl = Field(None, description="A logo shown above each page (https)")
    favicon_url: OptImageUrl = Field(None, description="The pages' favicon (https)")
    primary_color: Color = Field(
        "#2a5bd7", description="Buttons and links, as #rrggbb (text on it keeps AA contrast)"
    )
    support: OptSupport = Field(
        None, description="mailto:address or an https page, shown on error pages"
    )
    languages: Languages = Field(
        ("en",), description="Offered languages of en, de, fr, es, nl; the first is the default"
    )
    template_dir: OptStr = Field(
        None,
        description="A folder of templates that override the broker's, page by page (the "
        "file only)",
    )


class StaffTable(Table):
    """``[stores.X.staff]``: IdP groups that grant the store's control panel (Account API)."""

    enabled: Bool = Field(True, description="false: the table is ignored")
    account_uuid: AccountUuid = Field(
        description="The BigCommerce account's UUID (the Account API path's part)"
    )
    account_token: Str = Field(
        repr=False, description="An account-level API account's token (Account Users scopes)"
    )
    api_url: Url = Field("https://api.bigcommerce.com", description="The Account API")
    groups: StrList = Field(description="Members of these IdP groups get the control panel")
    connections: StrList = Field(
        description="The connections whose groups count (no default: another company's IdP "
        "could name the same group)"
    )
    requests_per_hour: Int = Field(
        70, ge=2, le=10000, description="The account's Account API budget (BigCommerce: 70)"
    )
    sign_in_days: Int = Field(
        30,
        ge=1,
        description="Groups seen at a sign-in (no SCIM) count this many days after it",
    )
    remove_unmanaged: Bool = Field(
        False, description="Also remove store users the broker did not add (needs keep)"
    )
    keep: StrList = Field((), description="E-mails never removed (the store owner, ...)")


#: The keys of each table that are tables of their own.
SUBTABLES: dict[type[Table], tuple[str, ...]] = {
    StoreTable: ("connections", "b2b", "channels", "branding", "staff"),
    OIDCTable: ("b2b", "scim"),
    SAMLTable: ("b2b", "scim"),
}
