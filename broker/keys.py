"""Make a SAML SP key pair: an RSA private key and a self-signed certificate (PEM files).

SAML uses the certificate only as a carrier of the public key (IdPs pin it from our
metadata), so self-signed is the norm. The key file is written readable by its owner only.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def make_pem_pair(*, common_name: str = "sso-broker", days: int = 3650) -> tuple[str, str]:
    """A new RSA key (PKCS#8 PEM) and its self-signed certificate (PEM), as text."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode(), cert.public_bytes(serialization.Encoding.PEM).decode()


def make_key_pair(
    out_dir: Path, *, name: str = "saml-sp", common_name: str = "sso-broker", days: int = 3650
) -> tuple[Path, Path]:
    """Write ``<name>.key`` and ``<name>.crt`` in ``out_dir``; refuse to overwrite."""
    key_path, cert_path = out_dir / f"{name}.key", out_dir / f"{name}.crt"
    for path in (key_path, cert_path):
        if path.exists():
            raise FileExistsError(f"{path} exists; move it away or choose another --name")
    out_dir.mkdir(parents=True, exist_ok=True)
    pem, cert = make_pem_pair(common_name=common_name, days=days)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem.encode())
    cert_path.write_text(cert, encoding="ascii")
    return key_path, cert_path
