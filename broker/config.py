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

from broker.settings import *  # noqa: F403 - the same public names, under their old module
from broker.settings import __all__ as __all__
