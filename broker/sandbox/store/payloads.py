"""The ``signed_payload_jwt`` of the ``load``, ``uninstall`` and ``remove_user`` callbacks.

No IO, no framework. Facts followed (``docs/bigcommerce-api.md``, "App install"): an HS256 JWT
signed with the app's client secret; claims ``aud`` = the client id, ``iss`` = ``"bc"``,
``iat``, ``nbf``, ``exp`` (24 hours after ``nbf``), ``jti``, ``sub`` = ``"stores/{hash}"``,
``user {id, email, locale}``, ``owner {id, email}``, ``url`` (the deep link, ``/`` from the
Apps menu) and ``channel_id`` (null from the Apps menu).

Where the sandbox decides: the three kinds carry the same claims (for ``remove_user``,
``user`` is the user removed); :class:`PayloadFaults` bends any of them for negative tests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey

from broker.sandbox.store.model import JSONDict, SandboxError, is_int

PAYLOAD_LIFETIME = 24 * 3600
KINDS = ("load", "uninstall", "remove_user")
_FAULT_FIELDS = frozenset({"expires_in", "not_before_offset", "secret", "aud", "sub"})


@dataclass(frozen=True)
class PayloadFaults:
    """What a negative test changes in a payload (None: as BigCommerce signs it)."""

    expires_in: int | None = None  # seconds from nbf to exp
    not_before_offset: int | None = None  # nbf = now + this
    secret: str | None = None  # sign with this instead of the app's secret
    aud: str | None = None
    sub: str | None = None


def faults_from_json(values: JSONDict) -> PayloadFaults:
    """The faults named in a control API body (other keys are the caller's)."""
    faults = {k: v for k, v in values.items() if k in _FAULT_FIELDS and v is not None}
    for name in ("expires_in", "not_before_offset"):
        if name in faults and not is_int(faults[name]):
            raise SandboxError(f"{name} must be an integer")
    for name in ("secret", "aud", "sub"):
        if name in faults and (not isinstance(faults[name], str) or not faults[name]):
            raise SandboxError(f"{name} must be a non-empty string")
    return PayloadFaults(**faults)


def claims(
    client_id: str,
    store_hash: str,
    owner: JSONDict,
    user: JSONDict,
    now: float,
    *,
    url: str = "/",
    channel_id: int | None = None,
    faults: PayloadFaults = PayloadFaults(),
) -> JSONDict:
    """The claims of one signed payload issued at ``now``."""
    issued = int(now)
    nbf = issued + (faults.not_before_offset or 0)
    lifetime = PAYLOAD_LIFETIME if faults.expires_in is None else faults.expires_in
    return {
        "aud": faults.aud or client_id,
        "iss": "bc",
        "iat": issued,
        "nbf": nbf,
        "exp": nbf + lifetime,
        "jti": secrets.token_hex(16),
        "sub": faults.sub or f"stores/{store_hash}",
        "user": dict(user),
        "owner": dict(owner),
        "url": url,
        "channel_id": channel_id,
    }


def sign(values: JSONDict, secret: str) -> str:
    """An HS256 JWT of these claims."""
    header = {"typ": "JWT", "alg": "HS256"}
    return jwt.encode(header, values, OctKey.import_key(secret), algorithms=["HS256"])


def check_load_options(url: Any, channel_id: Any) -> tuple[str, int | None]:
    """The ``url`` (a path, default ``/``) and ``channel_id`` (null or an integer) of a load."""
    if url is None:
        url = "/"
    if not isinstance(url, str) or not url.startswith("/"):
        raise SandboxError("url must be a path starting with '/'")
    if channel_id is not None and not is_int(channel_id):
        raise SandboxError("channel_id must be an integer or null")
    return url, channel_id
