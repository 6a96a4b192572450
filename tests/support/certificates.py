"""Key pairs the tests make for themselves (nothing is checked in)."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed(common_name: str = "idp", *, days: int = 30) -> tuple[str, str]:
    """A new RSA key (PKCS#8 PEM) and its self-signed certificate (PEM), valid until ``days``
    from now (negative: expired that long ago), from a day before."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=min(days, 0) - 1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode(), cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pair(days: int = 30) -> tuple[bytes, str]:
    """A private key (PEM) and its self-signed certificate (base64 DER, as metadata has it),
    valid until ``days`` from now (negative: expired that long ago)."""
    key_pem, cert_pem = self_signed(days=days)
    der = x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
    return key_pem.encode(), base64.b64encode(der).decode()
