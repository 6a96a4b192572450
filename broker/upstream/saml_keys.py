"""The SP key pairs a SAML connection signs and decrypts with, at one moment.

Either the connection's own files (``sp_key_file``/``sp_cert_file``: one pair) or the broker's
own pairs (:mod:`broker.sp_keys`: the active one, a next one published before it signs, and
previous ones that still decrypt).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyFiles:
    """One pair as files pysaml2 and :class:`~broker.upstream.saml_crypto.InProcessCrypto`
    read."""

    key_file: str
    cert_file: str
    cert_pem: str


@dataclass(frozen=True)
class SPKeySet:
    """The pairs a SAML connection uses at one moment."""

    #: Signs (AuthnRequests, logout messages); published first.
    active: KeyFiles
    #: Published beside the active one, not signing yet.
    upcoming: tuple[KeyFiles, ...]
    #: Decrypt only.
    previous: tuple[KeyFiles, ...]

    @property
    def published(self) -> tuple[KeyFiles, ...]:
        return (self.active, *self.upcoming)

    @property
    def decrypting(self) -> tuple[KeyFiles, ...]:
        return (self.active, *self.upcoming, *self.previous)

    @classmethod
    def of_files(cls, key_file: str, cert_file: str) -> SPKeySet:
        """A connection's own pair."""
        with open(cert_file, encoding="ascii") as handle:
            cert_pem = handle.read()
        return cls(active=KeyFiles(key_file, cert_file, cert_pem), upcoming=(), previous=())
