"""An IdP's signing certificates as operators read them: subject, expiry, fingerprint, and
whether one expires soon (the admin's connection test, ``broker check`` and the log say so
:data:`EXPIRY_WARNING_DAYS` ahead)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

EXPIRY_WARNING_DAYS = 30


def described(certificates: Iterable[str]) -> list[dict[str, Any]]:
    """Each certificate's (base64 DER) subject, expiry and SHA-256 fingerprint; unreadable
    ones left out."""
    found: list[dict[str, Any]] = []
    for text in certificates:
        try:
            cert = x509.load_der_x509_certificate(base64.b64decode(text))
        except ValueError:
            continue
        after = cert.not_valid_after_utc
        found.append(
            {
                "subject": cert.subject.rfc4514_string()[:200],
                "expires": after.date().isoformat(),
                "not_after": after.timestamp(),
                "sha256": cert.fingerprint(hashes.SHA256()).hex(":"),
            }
        )
    return found


def days_left(certificate: dict[str, Any], now: float) -> int:
    """Whole days until a :func:`described` certificate expires (negative: expired)."""
    return int((certificate["not_after"] - now) // 86400)
