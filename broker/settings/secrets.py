"""Secrets at rest: the values of a stored store that must never be readable in the database.

A store held in the database is a document shaped like a ``[stores.X]`` table. Before it is
written, every value under a secret key (:data:`SECRET_KEYS`, at any depth: the store's API
token, an IdP client secret, an SP private key, the webhook secret, B2B Edition's token, the
Account API's token) is replaced by ``{"$sealed": "<Fernet token>"}``; reading opens them
again. Fernet (from ``cryptography``) is authenticated encryption (AES-128-CBC with
HMAC-SHA256): a changed token is refused, not decrypted to garbage.

``[app].encryption_key`` is a list: the first key encrypts, every one decrypts, so a key is
rotated by putting a new one first, running ``broker rotate-keys`` (which re-encrypts every
sealed value with the first key), then dropping the old one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from broker.errors import ConfigError

#: Keys whose string values are sealed wherever they appear in a stored document.
SECRET_KEYS = frozenset(
    {"access_token", "client_secret", "webhook_secret", "sp_key_pem", "account_token"}
)
SEALED = "$sealed"


class SecretBox:
    """Seals and opens secret values with ``[app].encryption_key``."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, value: str) -> dict[str, str]:
        return {SEALED: self._fernet.encrypt(value.encode()).decode()}

    def open(self, sealed: Mapping[str, Any]) -> str:
        try:
            return self._fernet.decrypt(str(sealed[SEALED]).encode()).decode()
        except (InvalidToken, UnicodeDecodeError):
            raise ConfigError(
                [
                    "a stored secret cannot be decrypted with [app].encryption_key "
                    "(a key was dropped before `broker rotate-keys` ran?)"
                ]
            ) from None

    def rotate(self, sealed: Mapping[str, Any]) -> dict[str, str]:
        """The same secret under the first key."""
        try:
            return {SEALED: self._fernet.rotate(str(sealed[SEALED]).encode()).decode()}
        except InvalidToken:
            raise ConfigError(
                ["a stored secret cannot be decrypted with any key of [app].encryption_key"]
            ) from None


def derived_bytes(secret_key: str, *, purpose: str, length: int) -> bytes:
    """``length`` bytes of key derived from ``[broker] secret_key`` (HKDF-SHA256, no salt,
    ``purpose`` as the info), one key per purpose."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        secret_key.encode()
    )


def derived_key(secret_key: str, *, purpose: str) -> str:
    """A Fernet key derived from ``[broker] secret_key`` (:func:`derived_bytes`)."""
    return base64.urlsafe_b64encode(derived_bytes(secret_key, purpose=purpose, length=32)).decode()


def derived_box(secret_key: str, *, purpose: str) -> SecretBox:
    """A box whose one key is derived from ``[broker] secret_key`` (:func:`derived_key`), for
    what the broker seals when there is no ``[app] encryption_key``."""
    return SecretBox([derived_key(secret_key, purpose=purpose)])


def is_sealed(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {SEALED}


def seal_document(document: Mapping[str, Any], box: SecretBox | None) -> dict[str, Any]:
    """A copy with every secret value sealed (without a box, as it is: no app, no secrets
    written by the broker)."""
    return _walk(document, lambda v: box.seal(v) if box and isinstance(v, str) else v)


def open_document(document: Mapping[str, Any], box: SecretBox | None) -> dict[str, Any]:
    """A copy with every sealed value opened; ConfigError when one cannot be."""

    def reveal(value: Any) -> Any:
        if not is_sealed(value):
            return value
        if box is None:
            raise ConfigError(["a stored secret is sealed, and [app].encryption_key is not set"])
        return box.open(value)

    return _walk(document, reveal)


def rotate_document(document: Mapping[str, Any], box: SecretBox) -> dict[str, Any]:
    """A copy with every sealed value sealed again under the first key (plain ones sealed)."""
    return _walk(document, lambda v: box.rotate(v) if is_sealed(v) else box.seal(v))


def redact_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without the secret values: what an answer may show (secrets are write-only)."""
    return {
        key: redact_document(value)
        if isinstance(value, Mapping) and not is_sealed(value)
        else value
        for key, value in document.items()
        if key not in SECRET_KEYS
    }


def _walk(document: Mapping[str, Any], change: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in document.items():
        if (
            key in SECRET_KEYS
            and value is not None
            and (isinstance(value, str) or is_sealed(value))
        ):
            out[key] = change(value)
        elif isinstance(value, Mapping) and not is_sealed(value):
            out[key] = _walk(value, change)
        else:
            out[key] = value
    return out
