"""Settings: the broker, its stores and each store's named connections.

One schema for TOML, database rows, admin forms and API bodies: :mod:`.schema` declares every
key once (type, default, bounds, documentation); :mod:`.file` reads the TOML file and ``env:``
values through it into the frozen settings of :mod:`.values` that consumers read;
:mod:`.problems` words what is wrong, one line per problem naming its key, in file order.
The file's shape is a public interface (docs/design.md, "Interfaces"): operators' files depend
on it. Secrets have no defaults and appear in no ``repr``.
"""

from __future__ import annotations

from broker.settings.file import (
    KEY_PATTERN,
    load_settings,
    parse_settings,
    parse_store_document,
)
from broker.settings.values import (
    ALLOWED_ID_TOKEN_ALGORITHMS,
    DEFAULT_ID_TOKEN_ALGORITHMS,
    NAME_ID_FORMATS,
    AppSettings,
    B2BSettings,
    BrokerSettings,
    Channel,
    Connection,
    ConnectionB2B,
    ConnectionPolicy,
    ConnectionScim,
    LinkPolicy,
    OIDCConnection,
    SAMLConnection,
    Settings,
    StaffSettings,
    StoreSettings,
    TokenAuthMethod,
)

__all__ = [
    "ALLOWED_ID_TOKEN_ALGORITHMS",
    "DEFAULT_ID_TOKEN_ALGORITHMS",
    "KEY_PATTERN",
    "NAME_ID_FORMATS",
    "AppSettings",
    "B2BSettings",
    "BrokerSettings",
    "Channel",
    "Connection",
    "ConnectionB2B",
    "ConnectionPolicy",
    "ConnectionScim",
    "LinkPolicy",
    "OIDCConnection",
    "SAMLConnection",
    "Settings",
    "StaffSettings",
    "StoreSettings",
    "TokenAuthMethod",
    "load_settings",
    "parse_settings",
    "parse_store_document",
]
