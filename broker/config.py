"""Settings: the broker, its stores and each store's named connections, from a TOML file.

The file's shape is a public interface (docs/design.md, "Interfaces"): operators' files depend on
it. Any string value may be ``"env:NAME"`` to read it from the environment. Loading gathers
every problem into one :class:`ConfigError`, one line per problem, each naming its key, so an
operator fixes the file in one pass. Secrets have no defaults.

The schema (each key once: type, default, bounds, documentation), the reading of the file and
the wording of problems live in :mod:`broker.settings`; this module keeps the names every
consumer imports.
"""

from __future__ import annotations

from broker.settings import (
    ALLOWED_ID_TOKEN_ALGORITHMS,
    DEFAULT_ID_TOKEN_ALGORITHMS,
    KEY_PATTERN,
    NAME_ID_FORMATS,
    B2BSettings,
    BrokerSettings,
    Connection,
    ConnectionB2B,
    ConnectionPolicy,
    LinkPolicy,
    OIDCConnection,
    SAMLConnection,
    Settings,
    StoreSettings,
    TokenAuthMethod,
    load_settings,
    parse_settings,
    parse_store_document,
)

__all__ = [
    "ALLOWED_ID_TOKEN_ALGORITHMS",
    "DEFAULT_ID_TOKEN_ALGORITHMS",
    "KEY_PATTERN",
    "NAME_ID_FORMATS",
    "B2BSettings",
    "BrokerSettings",
    "Connection",
    "ConnectionB2B",
    "ConnectionPolicy",
    "LinkPolicy",
    "OIDCConnection",
    "SAMLConnection",
    "Settings",
    "StoreSettings",
    "TokenAuthMethod",
    "load_settings",
    "parse_settings",
    "parse_store_document",
]
