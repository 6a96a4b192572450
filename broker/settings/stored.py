"""Stores held in the database: their document, and what the file's rules read of it.

A stored store's document is shaped like a ``[stores.X]`` table, with three differences:

- secret values are sealed (:mod:`broker.settings.secrets`);
- it names no file of the broker's host: a SAML connection's SP key pair is held in the
  document itself (``sp_key_pem``, sealed, and ``sp_cert_pem``), and the IdP metadata comes
  from a URL or inline (``idp_metadata_xml``). Before the file's rules read it, the pair is
  written to files in a private directory of this process (0700, files 0600), named by their
  digest, deleted when the store stops using them and when the process exits;
- a store installed as an app has no API account of its own: the app's client id and secret
  sign its login JWTs (docs/bigcommerce-api.md, "App install").
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from broker.settings.secrets import SecretBox, open_document
from broker.settings.values import AppSettings

#: Keys that name files of the broker's host: only the operator's file may use them.
FILE_KEYS = ("idp_metadata_file", "sp_key_file", "sp_cert_file")
PEM_KEYS = ("sp_key_pem", "sp_cert_pem")

_key_dir: Path | None = None
_key_lock = threading.Lock()
#: The key files written for each stored store (by its key), so they go with it.
_files_by_store: dict[str, set[Path]] = {}


def readable_document(
    document: Mapping[str, Any],
    box: SecretBox | None,
    app: AppSettings | None,
    *,
    store_key: str | None = None,
) -> dict[str, Any]:
    """What :func:`~broker.settings.file.parse_store_document` reads of a stored document.
    With ``store_key``, key files the store no longer uses are deleted."""
    opened = open_document(document, box)
    if app is not None and "client_id" not in opened:
        opened = {
            **opened,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "api_url": opened.get("api_url", app.api_url),
        }
    written: set[Path] = set()
    connections = opened.get("connections")
    if isinstance(connections, Mapping):
        opened["connections"] = {
            key: _with_key_files(conn, written) if isinstance(conn, Mapping) else conn
            for key, conn in connections.items()
        }
    if store_key is not None:
        with _key_lock:
            stale = _files_by_store.get(store_key, set()) - written
            _files_by_store[store_key] = written
        _unlink(stale)
    return opened


def release_key_files(store_key: str) -> None:
    """Delete the key files of a store that is no longer served (removed, uninstalled)."""
    with _key_lock:
        stale = _files_by_store.pop(store_key, set())
    _unlink(stale)


def _with_key_files(conn: Mapping[str, Any], written: set[Path]) -> dict[str, Any]:
    out = {k: v for k, v in conn.items() if k not in PEM_KEYS}
    key_pem, cert_pem = conn.get("sp_key_pem"), conn.get("sp_cert_pem")
    if isinstance(key_pem, str) and isinstance(cert_pem, str):
        key_file, cert_file = private_file(key_pem, ".key"), private_file(cert_pem, ".crt")
        written.update((key_file, cert_file))
        out["sp_key_file"], out["sp_cert_file"] = str(key_file), str(cert_file)
    return out


def private_file(pem: str, suffix: str) -> Path:
    """``pem`` in a file of this process's private directory (0700; the file 0600), named by
    its digest: written once, removed when the process exits."""
    global _key_dir
    with _key_lock:
        if _key_dir is None or not _key_dir.is_dir():
            _key_dir = Path(tempfile.mkdtemp(prefix="broker-keys-"))  # 0700
            atexit.register(shutil.rmtree, _key_dir, True)
        path = _key_dir / (hashlib.sha256(pem.encode()).hexdigest()[:32] + suffix)
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(pem)
    return path


def _unlink(paths: set[Path]) -> None:
    with _key_lock:
        in_use = set().union(*_files_by_store.values()) if _files_by_store else set()
    for path in paths - in_use:  # two stores may share a pair (same digest): keep it
        path.unlink(missing_ok=True)
