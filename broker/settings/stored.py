"""Stores held in the database: their document, and what the file's rules read of it.

A stored store's document is shaped like a ``[stores.X]`` table, with three differences:

- secret values are sealed (:mod:`broker.settings.secrets`);
- it names no file of the broker's host: a SAML connection's SP key pair is held in the
  document itself (``sp_key_pem``, sealed, and ``sp_cert_pem``), and the IdP metadata comes
  from a URL or inline (``idp_metadata_xml``). Before the file's rules read it, the pair is
  written to files in a private directory of this process (0600), named by their digest;
- a store installed as an app has no API account of its own: the app's client id and secret
  sign its login JWTs (docs/bigcommerce-api.md, "App install").
"""

from __future__ import annotations

import hashlib
import os
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
_key_dir_lock = threading.Lock()


def readable_document(
    document: Mapping[str, Any], box: SecretBox | None, app: AppSettings | None
) -> dict[str, Any]:
    """What :func:`~broker.settings.file.parse_store_document` reads of a stored document."""
    opened = open_document(document, box)
    if app is not None and "client_id" not in opened:
        opened = {
            **opened,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "api_url": opened.get("api_url", app.api_url),
        }
    connections = opened.get("connections")
    if isinstance(connections, Mapping):
        opened["connections"] = {
            key: _with_key_files(conn) if isinstance(conn, Mapping) else conn
            for key, conn in connections.items()
        }
    return opened


def _with_key_files(conn: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in conn.items() if k not in PEM_KEYS}
    key_pem, cert_pem = conn.get("sp_key_pem"), conn.get("sp_cert_pem")
    if isinstance(key_pem, str) and isinstance(cert_pem, str):
        out["sp_key_file"] = str(_private_file(key_pem, ".key"))
        out["sp_cert_file"] = str(_private_file(cert_pem, ".crt"))
    return out


def _private_file(pem: str, suffix: str) -> Path:
    global _key_dir
    with _key_dir_lock:
        if _key_dir is None or not _key_dir.is_dir():
            _key_dir = Path(tempfile.mkdtemp(prefix="broker-keys-"))  # 0700
        path = _key_dir / (hashlib.sha256(pem.encode()).hexdigest()[:32] + suffix)
        if not path.exists():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(pem)
    return path
