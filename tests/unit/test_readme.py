"""README stays true: every key of the settings schema is in one of its TOML tables (under the
table it belongs to), and every file it names is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from broker.settings import schema

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Which README table headers document which schema table (X, Y, N: any key).
HEADERS: dict[type[schema.Table], re.Pattern[str]] = {
    schema.BrokerTable: re.compile(r"^broker$"),
    schema.AppTable: re.compile(r"^app$"),
    schema.StoreTable: re.compile(r"^stores\.[\w-]+$"),
    schema.ChannelTable: re.compile(r"^stores\.[\w-]+\.channels\.\d+$"),
    schema.BrandingTable: re.compile(r"^stores\.[\w-]+\.branding$"),
    schema.B2BTable: re.compile(r"^stores\.[\w-]+\.b2b$"),
    schema.ConnectionB2BTable: re.compile(r"^stores\.[\w-]+\.connections\.[\w-]+\.b2b$"),
    schema.ConnectionScimTable: re.compile(r"^stores\.[\w-]+\.connections\.[\w-]+\.scim$"),
    schema.OIDCTable: re.compile(r"^stores\.[\w-]+\.connections\.[\w-]+$"),
    schema.SAMLTable: re.compile(r"^stores\.[\w-]+\.connections\.[\w-]+$"),
}


def documented() -> dict[type[schema.Table], set[str]]:
    """The keys README's TOML blocks show under each schema table's headers."""
    found: dict[type[schema.Table], set[str]] = {table: set() for table in HEADERS}
    for block in re.findall(r"```toml\n(.*?)```", README, re.S):
        sections: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            header = re.match(r"^\[([^\]]+)\]", line)
            if header:
                sections.append((header.group(1), []))
            elif sections:
                sections[-1][1].append(line)
        for header, lines in sections:
            keys = set()
            for line in lines:
                key = re.match(r"^([a-z][a-z0-9_]*)\s*=", line)
                if key:
                    keys.add(key.group(1))
                comment = line.partition("#")[2]
                keys.update(re.findall(r"\b([a-z][a-z0-9_]*) = ", comment))
            saml = any(re.match(r'^type\s*=\s*"saml"', line) for line in lines)
            for table, pattern in HEADERS.items():
                if not pattern.match(header):
                    continue
                if (table is schema.OIDCTable and saml) or (table is schema.SAMLTable and not saml):
                    continue
                found[table] |= keys
    return found


@pytest.mark.parametrize("table", list(HEADERS), ids=lambda t: t.__name__)
def test_every_key_is_in_a_readme_table(table: type[schema.Table]) -> None:
    keys = documented()[table]
    missing = sorted(set(table.model_fields) - keys)
    assert missing == [], f"README shows no {missing} under a {HEADERS[table].pattern} table"


def test_every_file_readme_names_is_in_the_repository() -> None:
    named = set(re.findall(r"\b((?:broker|tests|docs|bench|scripts|templates)/[\w./-]*\w)", README))
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == []
    assert len(named) > 5  # the pattern finds them
