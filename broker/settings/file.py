"""The TOML file and ``env:`` values, read through the schema into the settings consumers use.

Any string value may be ``"env:NAME"`` to read it from the environment: those are resolved
before validation. Each table is validated by its own model (so one bad table hides no other);
the rules across keys are here, in one place; the problems of the whole document come back in
one :class:`ConfigError`, one line per problem, each naming its key, in file order.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from broker.errors import ConfigError
from broker.settings.problems import Table, unknown_key
from broker.settings.schema import (
    AppTable,
    B2BTable,
    BrandingTable,
    BrokerTable,
    ChannelTable,
    ConnectionB2BTable,
    ConnectionScimTable,
    OIDCTable,
    SAMLTable,
    StaffTable,
    StoreTable,
    as_string,
)
from broker.settings.schema import Table as Model
from broker.settings.values import (
    ACCOUNT_PAGES,
    ALLOWED_ID_TOKEN_ALGORITHMS,
    NAME_ID_FORMATS,
    AppSettings,
    B2BSettings,
    Branding,
    BrokerSettings,
    Channel,
    Connection,
    ConnectionB2B,
    ConnectionScim,
    OIDCConnection,
    SAMLConnection,
    Settings,
    StaffSettings,
    StoreSettings,
)

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


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
    reader = _Reader(env)
    root = reader.open(data, "")
    for key in root.document:
        if key not in ("broker", "app", "stores"):
            root.unknown(key, unknown_key(key, ("broker", "app", "stores")))
    reader.close(root)
    broker = reader.broker(reader.open(data.get("broker"), "broker"))
    app = reader.app(reader.open(data["app"], "app")) if "app" in data else None
    stores_table = reader.open(data.get("stores"), "stores")
    if not stores_table.document and "app" not in data:
        stores_table.problem(
            "", "at least one store is required, e.g. [stores.acme] (or an [app] table)"
        )
    reader.close(stores_table)
    stores: dict[str, StoreSettings] = {}
    for key, document in stores_table.document.items():
        store = reader.store(key, reader.open(document, f"stores.{key}"), broker)
        if store is not None:
            stores[key] = store
    if reader.lines or broker is None:
        raise ConfigError(reader.lines)
    return Settings(broker=broker, stores=MappingProxyType(stores), app=app)


def parse_store_document(
    key: str,
    document: Mapping[str, Any],
    broker: BrokerSettings,
    env: Mapping[str, str] | None = None,
) -> StoreSettings:
    """Validate one store given as data (a store held in the database) by the very rules of a
    ``[stores.X]`` table of the file; raise ConfigError listing every problem. Without ``env``,
    ``env:`` values are refused (a stored store holds its values itself)."""
    reader = _Reader(env or {}, stored=True)
    store = reader.store(key, reader.open(document, f"stores.{key}"), broker)
    if reader.lines or store is None:
        raise ConfigError(reader.lines or [f"stores.{key}: not a valid store"])
    return store


@cache
def _adapter(model: type[Model], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    form: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(form)


@dataclass
class _Values:
    """One table's values after validation: None for a key that failed (as before: a key with
    a problem has no value, and the rules across keys skip it)."""

    table: Table
    values: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values.get(name)


class _Reader:
    """Reads one document's tables, gathering their lines in document order."""

    def __init__(self, env: Mapping[str, str], *, stored: bool = False) -> None:
        self.env = env
        #: A store held in the database: it may have no connection yet (just installed).
        self.stored = stored
        self.lines: list[str] = []

    def open(self, data: Any, path: str) -> Table:
        table = Table(path, data if isinstance(data, Mapping) else {})
        if data is not None and not isinstance(data, Mapping):
            table.first("must be a table")
        return table

    def close(self, table: Table) -> None:
        self.lines.extend(table.lines())

    def resolve(self, table: Table, key: str, value: Any) -> tuple[bool, Any]:
        """``env:NAME`` replaced by the variable's value; False when it cannot be."""
        if not (isinstance(value, str) and value.startswith("env:")):
            return True, value
        name = value[4:]
        if not ENV_NAME.fullmatch(name):
            table.problem(
                key, f"`env:` needs a variable name such as env:OKTA_SECRET, not {name!r}"
            )
            return False, None
        if name not in self.env or self.env[name] == "":
            table.problem(key, f"environment variable {name} is not set")
            return False, None
        return True, self.env[name]

    def validate(
        self, model: type[Model], table: Table, subtables: tuple[str, ...] = ()
    ) -> _Values:
        """Validate one table by its model (its sub-tables are left to their own)."""
        names = tuple(model.model_fields)
        table.fields = names
        data: dict[str, Any] = {}
        quiet: set[str] = set()
        for key, value in table.document.items():
            if key in subtables:
                continue
            if key not in model.model_fields:
                data[key] = value  # an unknown key: the model says so
                continue
            ok, value = self.resolve(table, key, value)
            if ok:
                data[key] = value
            else:
                quiet.add(key)
        try:
            valid = model.model_validate(data)
        except ValidationError as error:
            failed = quiet | table.from_validation_error(error, model, (*names, *subtables), quiet)
            values: dict[str, Any] = {}
            for name in names:
                if name in failed:
                    values[name] = None
                elif name in data:
                    values[name] = _adapter(model, name).validate_python(data[name])
                else:
                    values[name] = model.model_fields[name].get_default(call_default_factory=True)
            return _Values(table, values)
        result = _Values(table, {name: getattr(valid, name) for name in names})
        for name in quiet:
            result.values[name] = None
        return result

    # -- the tables -----------------------------------------------------------------------

    def broker(self, table: Table) -> BrokerSettings | None:
        v = self.validate(BrokerTable, table)
        secret_key = v["secret_key"]
        if secret_key is not None and len(secret_key) < 32:
            table.problem("secret_key", "must be at least 32 characters (use a random value)")
            v.values["secret_key"] = None
        self.close(table)
        # The stores are read with any broker table whose own values are good (its shared
        # SAML key pair), so an unknown key here does not hide their problems.
        optional = ("saml_key_file", "saml_cert_file", "metrics_token")
        if any(value is None for name, value in v.values.items() if name not in optional):
            return None
        return BrokerSettings(**v.values)

    def app(self, table: Table) -> AppSettings | None:
        v = self.validate(AppTable, table)
        self.close(table)
        if any(value is None for value in v.values.values()):
            return None
        return AppSettings(**v.values)

    def store(self, key: str, table: Table, broker: BrokerSettings | None) -> StoreSettings | None:
        if not KEY_PATTERN.match(key):
            table.first("store keys are lower-case letters, digits, '-' and '_' (used in URLs)")
        v = self.validate(
            StoreTable, table, ("connections", "b2b", "channels", "branding", "staff")
        )
        if "default_redirect" not in table.document and v["platform"] in ACCOUNT_PAGES:
            v.values["default_redirect"] = ACCOUNT_PAGES[v["platform"]]
        webhook_secret = v["webhook_secret"]
        if webhook_secret is not None and len(webhook_secret) < 24:
            table.problem("webhook_secret", "must be at least 24 characters (use a random value)")
        redirect = v["default_redirect"]
        if isinstance(redirect, str) and not (redirect.startswith("/") and "//" not in redirect):
            table.problem("default_redirect", "must be a path on the store, such as /account.php")
        document = table.document
        connections_document = document.get("connections")
        if connections_document is not None and not isinstance(connections_document, Mapping):
            table.problem("connections", "must be a table")
        conn_tables = self.open(
            connections_document if isinstance(connections_document, Mapping) else {},
            f"{table.path}.connections",
        )
        if not conn_tables.document and not self.stored:
            table.problem(
                "connections",
                "at least one connection is required, e.g. [stores.X.connections.okta]",
            )
        self.close(table)
        per_connection = any(
            isinstance(c, Mapping) and "b2b" in c for c in conn_tables.document.values()
        )
        b2b: B2BSettings | None = None
        connections: dict[str, Connection] = {}
        channels: dict[int, Channel] | None = {}
        branding = Branding()
        staff: StaffSettings | None = None
        staff_table: Table | None = None
        ok = True
        for name in document:  # the sub-tables in the document's order
            if name == "channels":
                channels = self.channels(self.open(document[name], f"{table.path}.channels"), v)
                ok = ok and channels is not None
            if name == "branding":
                branding_table = self.open(document[name], f"{table.path}.branding")
                branding = self.branding(branding_table) or branding
                ok = ok and not branding_table.has_problems()
            if name == "staff":
                staff_table = self.open(document[name], f"{table.path}.staff")
                staff = self.staff(staff_table)
                ok = ok and not staff_table.has_problems()
            if name == "b2b":
                b2b_table = self.open(document["b2b"], f"{table.path}.b2b")
                b2b = self.b2b(b2b_table, per_connection=per_connection)
                ok = ok and not b2b_table.has_problems()
            if name == "connections":
                self.close(conn_tables)
                ok = ok and not conn_tables.has_problems()
                for conn_key, conn_document in conn_tables.document.items():
                    conn_table = self.open(conn_document, f"{conn_tables.path}.{conn_key}")
                    conn = self.connection(conn_key, conn_table, broker)
                    if conn is not None:
                        connections[conn_key] = conn
        bindings = Table(table.path, document)
        self._check_b2b_bindings(bindings, b2b, connections, len(conn_tables.document))
        if staff is not None and staff_table is not None:
            for unknown in sorted(set(staff.connections) - set(conn_tables.document)):
                bindings.problem(
                    "staff.connections", f"{unknown!r} is not a connection of the store"
                )
        if channels is not None and v["channel_id"] is not None:
            self._check_connection_channels(bindings, {v["channel_id"], *channels}, connections)
        self.close(bindings)
        if (
            not ok
            or table.has_problems()
            or bindings.has_problems()
            or len(connections) != len(conn_tables.document)
        ):
            return None
        return StoreSettings(
            key=key,
            connections=MappingProxyType(connections),
            b2b=b2b,
            channels=MappingProxyType(channels or {}),
            branding=branding,
            staff=staff,
            **v.values,
        )

    def staff(self, table: Table) -> StaffSettings | None:
        """``[stores.X.staff]``: who gets the store's control panel from which IdP groups."""
        v = self.validate(StaffTable, table)
        if not v["enabled"]:
            table.entries = [e for e in table.entries if e[2] < 2 or e[0] == "enabled"]
            self.close(table)
            return None
        if v["groups"] == ():
            table.problem("groups", 'name at least one IdP group, e.g. groups = ["BC Admins"]')
        if v["connections"] == ():
            table.problem("connections", "name the connections whose groups count")
        if v["remove_unmanaged"] and not v["keep"]:
            table.problem(
                "keep",
                "with remove_unmanaged = true, name the store owner's e-mail (and any other "
                "user who must stay) in keep",
            )
        self.close(table)
        if table.has_problems():
            return None
        values = dict(v.values)
        del values["enabled"]
        values["keep"] = tuple(dict.fromkeys(e.strip().lower() for e in values["keep"]))
        return StaffSettings(**values)

    def branding(self, table: Table) -> Branding | None:
        """``[stores.X.branding]``; ``template_dir`` names a folder of the broker's host, so
        only the operator's file may set it (as ``idp_metadata_file``)."""
        v = self.validate(BrandingTable, table)
        folder = v["template_dir"]
        if folder is not None and self.stored:
            table.problem(
                "template_dir",
                "a folder on the broker's host is for the operator's file, not the admin",
            )
        elif folder is not None and not Path(folder).is_dir():
            table.problem("template_dir", f"{folder}: no such folder")
        self.close(table)
        if table.has_problems():
            return None
        return Branding(**v.values)

    def channels(self, table: Table, store: _Values) -> dict[int, Channel] | None:
        """``[stores.X.channels]``: the store's other storefronts, by channel id (a TOML key or
        a JSON document's key is a string: "2"). The default channel is the store's own
        ``channel_id`` and ``storefront_url``, stated once: an entry for it is a problem, as is
        a storefront two channels share (a sign-in picks its channel by the storefront)."""
        default_id = store["channel_id"]
        seen: dict[str, str] = {}
        if isinstance(store["storefront_url"], str):
            seen[_storefront_identity(store["storefront_url"])] = "the store's storefront_url"
        result: dict[int, Channel] = {}
        entries: list[Table] = []
        for raw_id, document in table.document.items():
            name = str(raw_id)
            channel_id = _channel_id(raw_id)
            if channel_id is None:
                table.problem(name, "channel ids are positive integers, e.g. [stores.X.channels.2]")
                continue
            if channel_id == default_id:
                table.problem(
                    name,
                    "is the store's default channel (channel_id): its storefront_url and "
                    "platform are the store's own keys, not a [channels] entry",
                )
                continue
            entry = self.open(document, f"{table.path}.{name}")
            entries.append(entry)
            v = self.validate(ChannelTable, entry)
            redirect = v["default_redirect"]
            if isinstance(redirect, str) and not _is_store_path(redirect):
                entry.problem("default_redirect", "must be a path on the store, such as /account")
            url = v["storefront_url"]
            if isinstance(url, str):
                other = seen.setdefault(_storefront_identity(url), f"channel {channel_id}")
                if other != f"channel {channel_id}":
                    entry.problem(
                        "storefront_url", f"is also {other}: each channel has its own storefront"
                    )
            if entry.has_problems() or channel_id in result:
                continue
            if redirect is None:
                given = "default_redirect" in store.table.document and store["default_redirect"]
                redirect = given or ACCOUNT_PAGES[v["platform"]]
            result[channel_id] = Channel(
                id=channel_id,
                storefront_url=url,
                platform=v["platform"],
                default_redirect=redirect,
            )
        self.close(table)
        for entry in entries:
            self.close(entry)
        if table.has_problems() or any(entry.has_problems() for entry in entries):
            return None
        return dict(sorted(result.items()))

    @staticmethod
    def _check_connection_channels(
        table: Table, channel_ids: set[int], connections: Mapping[str, Connection]
    ) -> None:
        """A connection is offered only on channels the store has."""
        known = ", ".join(str(c) for c in sorted(channel_ids))
        for conn in connections.values():
            unknown = [c for c in conn.channels if c not in channel_ids]
            if unknown:
                names = ", ".join(str(c) for c in unknown)
                told = f"channel {names} is" if len(unknown) == 1 else f"channels {names} are"
                table.problem(
                    f"connections.{conn.key}.channels",
                    f"{told} not among the store's channels ({known}; add one as "
                    "[stores.X.channels.N])",
                )

    @staticmethod
    def _check_b2b_bindings(
        table: Table, b2b: B2BSettings | None, connections: Mapping[str, Connection], count: int
    ) -> None:
        """Store-wide company maps must not let one connection's IdP reach another's companies."""
        for conn in connections.values():
            if conn.b2b is not None and b2b is None:
                table.problem(
                    f"connections.{conn.key}.b2b",
                    "needs the store's [b2b] table (access_token) to be enabled",
                )
        if b2b is None or count < 2:
            return
        for name in ("company_claim", "companies_by_group"):
            if getattr(b2b, name) and any(c.b2b is None for c in connections.values()):
                table.problem(
                    f"b2b.{name}",
                    "with several connections, any of them could assert another's company: "
                    "move it into [stores.X.connections.Y.b2b] of the connection it belongs to",
                )

    def b2b(self, table: Table, *, per_connection: bool) -> B2BSettings | None:
        """The store's [b2b] table; ``per_connection``: some connection has a [b2b] of its own."""
        v = self.validate(B2BTable, table)
        if not v["enabled"]:
            # Only its unknown keys and the ``enabled`` key itself are told.
            table.entries = [e for e in table.entries if e[2] < 2 or e[0] == "enabled"]
            self.close(table)
            return None
        roles = v["roles_by_group"]
        if roles is not None and any(r not in (0, 1, 2) for r in roles.values()):
            table.problem(
                "roles_by_group", "roles are 0 (admin), 1 (senior buyer) or 2 (junior buyer)"
            )
        if (
            not (v["company_claim"] or v["companies_by_domain"] or v["companies_by_group"])
            and not per_connection
        ):
            table.problem(
                "",
                "say how the company is found: company_claim, companies_by_domain "
                "or companies_by_group (here, or per connection in [stores.X.connections.Y.b2b])",
            )
        self.close(table)
        if table.has_problems():
            return None
        values = dict(v.values)
        del values["enabled"]
        values["companies_by_domain"] = _domains(values["companies_by_domain"])
        for name in ("companies_by_group", "roles_by_group", "company_roles_by_group"):
            values[name] = MappingProxyType(dict(values[name]))
        return B2BSettings(**values)

    def connection_b2b(self, table: Table) -> ConnectionB2B | None:
        v = self.validate(ConnectionB2BTable, table)
        roles = v["roles_by_group"]
        if roles is not None and any(r not in (0, 1, 2) for r in roles.values()):
            table.problem(
                "roles_by_group", "roles are 0 (admin), 1 (senior buyer) or 2 (junior buyer)"
            )
        claim, by_domain, by_group = (
            v["company_claim"],
            v["companies_by_domain"],
            v["companies_by_group"],
        )
        if claim and not v["companies"] and not by_domain and not by_group:
            table.problem(
                "companies",
                "list the companies company_claim may name for this connection, "
                "e.g. companies = [101]",
            )
        if not (claim or by_domain or by_group):
            table.problem(
                "", "say how the company is found: company_claim, companies_by_domain or _by_group"
            )
        self.close(table)
        if table.has_problems():
            return None
        return ConnectionB2B(
            company_claim=claim,
            companies=tuple(v["companies"]),
            companies_by_domain=_domains(by_domain),
            companies_by_group=MappingProxyType(dict(by_group)),
            roles_by_group=MappingProxyType(dict(roles)),
            company_roles_by_group=MappingProxyType(dict(v["company_roles_by_group"])),
            default_role=v["default_role"],
        )

    def connection_scim(self, table: Table) -> ConnectionScim | None:
        """``[stores.X.connections.Y.scim]``: every key is checked, enabled or not; None
        unless it is enabled."""
        v = self.validate(ConnectionScimTable, table)
        self.close(table)
        if table.has_problems() or not v["enabled"]:
            return None
        return ConnectionScim(
            enabled=True,
            deprovision=v["deprovision"],
            delete_after_days=v["delete_after_days"],
            customer_groups_by_group=MappingProxyType(dict(v["customer_groups_by_group"])),
            subject_attribute=v["subject_attribute"] or "externalId",
        )

    def connection(
        self, key: str, table: Table, broker: BrokerSettings | None
    ) -> Connection | None:
        if not KEY_PATTERN.match(key):
            table.first(
                "connection keys are lower-case letters, digits, '-' and '_' (used in URLs)"
            )
            self.close(table)
            return None
        kind: Any = None
        if "type" not in table.document:
            table.problem("type", "is required")
        else:
            _, kind = self.resolve(table, "type", table.document["type"])
            try:
                kind = as_string(kind)
            except PydanticCustomError as error:
                table.problem("type", error.message())
                kind = None
        if kind not in ("oidc", "saml"):
            if kind is not None:
                table.problem("type", f"must be 'oidc' or 'saml', not {kind!r}")
            self.close(table)
            return None
        model = OIDCTable if kind == "oidc" else SAMLTable
        table.document = document = {**table.document, "type": kind}  # as resolved
        v = self.validate(model, table, ("b2b", "scim"))
        if v["display_name"] is None and "display_name" not in document:
            v.values["display_name"] = key.replace("-", " ").title()
        if v["allowed_domains"] is not None:
            v.values["allowed_domains"] = tuple(d.lower().lstrip("@") for d in v["allowed_domains"])
        if v["customer_groups_by_group"] is not None:
            v.values["customer_groups_by_group"] = MappingProxyType(
                dict(v["customer_groups_by_group"])
            )
        if kind == "oidc":
            self._oidc_rules(v)
        else:
            self._saml_rules(v, broker)
        self.close(table)
        b2b: ConnectionB2B | None = None
        b2b_failed = False
        if "b2b" in document:
            b2b_table = self.open(document["b2b"], f"{table.path}.b2b")
            b2b = self.connection_b2b(b2b_table)
            b2b_failed = b2b_table.has_problems()
        scim: ConnectionScim | None = None
        scim_failed = False
        if "scim" in document:
            scim_table = self.open(document["scim"], f"{table.path}.scim")
            scim = self.connection_scim(scim_table)
            scim_failed = scim_table.has_problems()
        if table.has_problems() or b2b_failed or scim_failed:
            return None
        values = dict(v.values)
        if kind == "oidc":
            return OIDCConnection(key=key, b2b=b2b, scim=scim, **values)
        values["name_id_format"] = NAME_ID_FORMATS[values["name_id_format"]]
        return SAMLConnection(key=key, b2b=b2b, scim=scim, **values)

    @staticmethod
    def _oidc_rules(v: _Values) -> None:
        table = v.table
        client_secret = v["client_secret"]
        method = v["token_endpoint_auth_method"]
        if "token_endpoint_auth_method" not in table.document:
            method = "client_secret_basic" if client_secret else "none"
            v.values["token_endpoint_auth_method"] = method
        if method == "none" and client_secret:
            table.problem(
                "token_endpoint_auth_method", "'none' is for public clients: drop client_secret"
            )
        elif method in _SECRET_METHODS and not client_secret:
            table.problem("client_secret", f"required with token_endpoint_auth_method = {method!r}")
        scopes = v["scopes"]
        if scopes is not None and "openid" not in scopes:
            table.problem("scopes", "must include 'openid'")
        algorithms = v["algorithms"]
        if algorithms is not None:
            bad = [a for a in algorithms if a not in ALLOWED_ID_TOKEN_ALGORITHMS]
            if bad or not algorithms:
                allowed = ", ".join(sorted(ALLOWED_ID_TOKEN_ALGORITHMS))
                table.problem("algorithms", f"{bad or 'empty'} not allowed; choose from {allowed}")

    @staticmethod
    def _saml_rules(v: _Values, broker: BrokerSettings | None) -> None:
        table = v.table
        document = table.document
        sources = [
            k
            for k in ("idp_metadata_url", "idp_metadata_file", "idp_metadata_xml")
            if k in document
        ]
        if len(sources) != 1:
            table.problem("idp_metadata_url", "give exactly one of idp_metadata_url, _file or _xml")
        metadata_file = v["idp_metadata_file"]
        if metadata_file is not None and not Path(metadata_file).is_file():
            table.problem("idp_metadata_file", f"no such file: {metadata_file}")
        for name, shared in (
            ("sp_key_file", broker.saml_key_file if broker else None),
            ("sp_cert_file", broker.saml_cert_file if broker else None),
        ):
            if name not in document:
                v.values[name] = shared
        key_file, cert_file = v["sp_key_file"], v["sp_cert_file"]
        if bool(key_file) != bool(cert_file):
            table.problem(
                "sp_key_file" if not key_file else "sp_cert_file",
                "sp_key_file and sp_cert_file go together: set both (here, or saml_key_file "
                "and saml_cert_file in [broker]), or neither, and the broker uses its own pair "
                "(made and kept in its database)",
            )
        for name, path in (("sp_key_file", key_file), ("sp_cert_file", cert_file)):
            if path and not Path(path).is_file():
                table.problem(name, f"no such file: {path}")
        if document.get("link") == "auto" and "trust_email" not in document:
            table.problem(
                "link",
                "'auto' links existing accounts on the e-mail the IdP asserts, and SAML has no "
                "standard way to say it is verified: set trust_email = true if the IdP's e-mail "
                "attribute is managed by the directory (users cannot change it), or use "
                "link = 'confirm'",
            )


def _is_store_path(value: str) -> bool:
    return value.startswith("/") and "//" not in value


def _channel_id(key: Any) -> int | None:
    """A channel id from a table key: "2" (TOML, JSON) or 2 (a document built in Python)."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key if key > 0 else None
    if isinstance(key, str) and re.fullmatch(r"[1-9][0-9]{0,9}", key):
        return int(key)
    return None


def _storefront_identity(url: str) -> str:
    """A storefront URL as compared with another: scheme and host without regard to case."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _domains(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({k.lower().lstrip("@"): v for k, v in mapping.items()})
