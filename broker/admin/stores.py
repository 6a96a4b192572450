"""A store's admin, Flask-free: its connections and settings, read and edited with the very
rules and messages of ``broker check`` (one schema: :mod:`broker.settings`).

Stores of the operator's file are shown but read-only (:class:`ReadOnlyStore`, 409 in the
API). A stored store's document is edited from what was read: the write succeeds only if no
other edit came in between (compare-and-swap on its version, retried), so two admins editing
two connections at once both keep their change. Secrets are write-only: never in an answer;
a body without one keeps the stored one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from broker.errors import BrokerError, ConfigError, NotFound
from broker.keys import make_pem_pair
from broker.runtime import Runtime
from broker.settings.file import KEY_PATTERN
from broker.settings.secrets import SECRET_KEYS, open_document, seal_document
from broker.settings.stored import FILE_KEYS
from broker.settings.values import Connection, OIDCConnection, StoreSettings
from broker.storage.model import AuditEntry

#: Keys of a stored store the admin never edits: what the install learnt and the app's own.
PROTECTED_STORE_KEYS = frozenset(
    {"store_hash", "access_token", "client_id", "client_secret", "api_url", "connections"}
)
#: Fields never shown: secrets, and where a file store keeps its files.
_HIDDEN = SECRET_KEYS | {"sp_key_file", "sp_cert_file", "sp_key_pem", "idp_metadata_xml"}
_ATTEMPTS = 8


class ReadOnlyStore(BrokerError):
    status = 409
    title = "This store is configured in the broker's file"
    code = "read_only_store"


class InvalidSettings(BrokerError):
    """A body the rules refuse: every problem at once, each naming its key in the body."""

    status = 422
    title = "These settings were not saved"
    code = "invalid_settings"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['key']}: {e['message']}" for e in errors))
        self.errors = errors


class EditConflict(BrokerError):
    status = 409
    title = "Someone else changed this store at the same time"
    code = "edit_conflict"


class StoreAdmin:
    """The admin of one store (the file's or the database's)."""

    def __init__(self, runtime: Runtime, store_key: str) -> None:
        self.runtime = runtime
        self.key = store_key
        self.store: StoreSettings = runtime.store(store_key)
        self.read_only = not runtime.is_stored(store_key)

    # -- reading ----------------------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        return [describe(conn) for conn in self.store.connections.values()]

    def connection(self, conn_key: str) -> dict[str, Any]:
        conn = self.store.connections.get(conn_key)
        if conn is None:
            raise NotFound("This store has no such connection.", detail=f"conn={conn_key[:64]!r}")
        return describe(conn)

    def stored_table(self, conn_key: str) -> dict[str, Any] | None:
        """A stored connection's table as written, without its secrets (None: not stored)."""
        row = self.runtime.storage.tenant_document(self.key)
        if row is None:
            return None
        table = (row.document.get("connections") or {}).get(conn_key)
        if not isinstance(table, Mapping):
            return None
        return {k: v for k, v in table.items() if k not in _HIDDEN or k == "idp_metadata_xml"}

    def settings(self) -> dict[str, Any]:
        fields = describe(self.store)
        hidden = PROTECTED_STORE_KEYS | {"key", "access_token_set", "client_secret_set"}
        return {k: v for k, v in fields.items() if k not in hidden}

    # -- editing ----------------------------------------------------------------------------

    def put_connection(self, conn_key: str, body: Any) -> tuple[dict[str, Any], bool]:
        """Create or replace a connection; (the stored connection, whether it is new)."""
        self._writable()
        if not isinstance(body, Mapping):
            raise InvalidSettings([{"key": "", "message": "the body must be a JSON object"}])
        if not KEY_PATTERN.match(conn_key):
            raise InvalidSettings(
                [
                    {
                        "key": "",
                        "message": "connection keys are lower-case letters, digits, '-' and '_'",
                    }
                ]
            )
        _refuse_file_keys(body)
        created = conn_key not in self.store.connections
        replaced: list[Any] = []
        # Made once, not at each retry of the write (an RSA key takes a moment).
        new_pair = (
            make_pem_pair(common_name=f"{self.key}-{conn_key}")
            if body.get("type") == "saml"
            and "sp_key_pem" not in body
            and not self._has_sp_key(conn_key)
            else None
        )

        def change(document: dict[str, Any]) -> dict[str, Any]:
            connections = dict(document.get("connections") or {})
            previous = connections.get(conn_key)
            replaced[:] = [previous]
            table = dict(body)
            if isinstance(previous, Mapping):
                for name in SECRET_KEYS | {"sp_key_pem", "sp_cert_pem"}:
                    if name not in table and name in previous:
                        table[name] = previous[name]  # write-only: kept unless replaced
            if new_pair is not None and "sp_key_pem" not in table:
                table["sp_key_pem"], table["sp_cert_pem"] = new_pair
            connections[conn_key] = table
            return {**document, "connections": connections}

        store = self._edit(change, prefix=f"stores.{self.key}.connections.{conn_key}.")
        stored = describe(store.connections[conn_key])
        previous = replaced[0] if replaced else None
        if isinstance(previous, Mapping) and idp_of(previous) != idp_of(body):
            self._forget(conn_key, "another identity provider")
            stored["links_reset"] = True
        return stored, created

    def delete_connection(self, conn_key: str) -> None:
        self._writable()
        if conn_key not in self.store.connections:
            raise NotFound("This store has no such connection.", detail=f"conn={conn_key[:64]!r}")

        def change(document: dict[str, Any]) -> dict[str, Any]:
            connections = dict(document.get("connections") or {})
            connections.pop(conn_key, None)
            return {**document, "connections": connections}

        self._edit(change, prefix=f"stores.{self.key}.")
        self._forget(conn_key, "connection deleted")

    def _forget(self, conn_key: str, why: str) -> None:
        removed = self.runtime.storage.forget_connection(self.key, conn_key)
        self.runtime.storage.record_audit(
            AuditEntry(
                at=int(self.runtime.clock()),
                store=self.key,
                event="admin.identities_reset",
                outcome=why,
                connection=conn_key,
                detail=f"rows={removed}",
            )
        )

    def patch_settings(self, body: Any) -> dict[str, Any]:
        self._writable()
        if not isinstance(body, Mapping):
            raise InvalidSettings([{"key": "", "message": "the body must be a JSON object"}])
        protected = [k for k in body if k in PROTECTED_STORE_KEYS]
        if protected:
            raise InvalidSettings(
                [{"key": k, "message": "is set by the app's install, not here"} for k in protected]
            )
        _refuse_file_keys(body)

        def change(document: dict[str, Any]) -> dict[str, Any]:
            merged = dict(document)
            for key, value in body.items():
                if value is None:
                    merged.pop(key, None)  # back to the default
                elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            return merged

        self._edit(change, prefix=f"stores.{self.key}.")
        return self.settings()

    def _has_sp_key(self, conn_key: str) -> bool:
        row = self.runtime.storage.tenant_document(self.key)
        table = (row.document.get("connections") or {}).get(conn_key) if row else None
        return isinstance(table, Mapping) and "sp_key_pem" in table

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStore(
                "This store is configured in the broker's file: change it there.",
                detail=f"file store {self.key!r}",
            )

    def _edit(
        self, change: Callable[[dict[str, Any]], dict[str, Any]], *, prefix: str
    ) -> StoreSettings:
        """Apply ``change`` to the stored document and write it if the rules accept it."""
        storage, box = self.runtime.storage, self.runtime.secrets
        for _ in range(_ATTEMPTS):
            row = storage.tenant_document(self.key)
            if row is None:
                raise NotFound("There is no store here by that name.", detail="store removed")
            document = change(open_document(row.document, box))
            try:
                store = self.runtime.parse_stored(self.key, document, served=False)
            except ConfigError as error:
                raise InvalidSettings(problems_by_key(error.problems, prefix)) from None
            clash = _shared_issuer(store)
            if clash:
                raise InvalidSettings(clash)
            now = int(self.runtime.clock())
            sealed = seal_document(document, box)
            if storage.replace_tenant(self.key, sealed, expected_version=row.version, now=now):
                self.runtime.refresh()
                self.store = self.runtime.store(self.key)
                return self.store
        raise EditConflict(
            "The store changed while saving; please reload and try again.", detail="cas"
        )


def idp_of(table: Mapping[str, Any]) -> tuple[str, str]:
    """Which identity provider a connection's table stands for: its subjects mean nothing at
    another one. OIDC: the issuer; SAML: the configured entity id, else the one of inline
    metadata, else the metadata URL (so a re-pasted metadata with new certificates, a
    rollover, keeps the connection's links)."""
    if table.get("type") == "oidc":
        return ("oidc", str(table.get("issuer")))
    entity = table.get("idp_entity_id")
    if not entity and isinstance(table.get("idp_metadata_xml"), str):
        found = re.search(r'entityID\s*=\s*["\']([^"\']+)', table["idp_metadata_xml"])
        entity = found.group(1) if found else None
    return ("saml", str(entity or table.get("idp_metadata_url")))


def describe(value: Any) -> dict[str, Any]:
    """Settings as JSON: every field but secrets and host files; nested settings as tables."""
    out: dict[str, Any] = {}
    for item in dataclasses.fields(value):
        if item.name in _HIDDEN or item.name == "connections":
            continue
        field_value = getattr(value, item.name)
        if dataclasses.is_dataclass(field_value):
            field_value = describe(field_value)
        elif isinstance(field_value, Mapping):
            field_value = dict(field_value)
        elif isinstance(field_value, tuple):
            field_value = list(field_value)
        out[item.name] = field_value
    if isinstance(value, StoreSettings):
        out["connections"] = sorted(value.connections)
    for name in SECRET_KEYS:
        if any(f.name == name for f in dataclasses.fields(value)):
            out[f"{name}_set"] = bool(getattr(value, name))
    return out


_LINE = re.compile(r"^(?P<key>[^:]*): (?P<message>.*)$", re.DOTALL)


def problems_by_key(lines: list[str], prefix: str) -> list[dict[str, str]]:
    """``broker check``'s lines as ``{"key", "message"}``, keys relative to the body."""
    errors: list[dict[str, str]] = []
    for text in lines:
        match = _LINE.match(text)
        key, message = (match["key"], match["message"]) if match else ("", text)
        if key.startswith(prefix):
            key = key[len(prefix) :]
        elif key == prefix.rstrip("."):
            key = ""
        errors.append({"key": key, "message": message})
    return errors


def _refuse_file_keys(body: Mapping[str, Any]) -> None:
    found = [k for k in FILE_KEYS if k in body]
    if found:
        raise InvalidSettings(
            [
                {
                    "key": k,
                    "message": "files on the broker's host are for the operator's file; give "
                    "idp_metadata_url or idp_metadata_xml (the broker makes the SP keys)",
                }
                for k in found
            ]
        )


def _shared_issuer(store: StoreSettings) -> list[dict[str, str]]:
    seen: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for conn in store.connections.values():
        if isinstance(conn, OIDCConnection):
            other = seen.setdefault(conn.issuer, conn.key)
            if other != conn.key:
                errors.append(
                    {
                        "key": "issuer",
                        "message": f"connection {other!r} already uses this issuer: each "
                        "connection of a store needs its own identity provider",
                    }
                )
    return errors


def connection_type(conn: Connection) -> str:
    return conn.type
