"""Bearer tokens of the admin API (and of SCIM): shown once, stored as their SHA-256.

A token is ``bka_`` (admin) or ``bks_`` (SCIM) and 32 random bytes: the prefix lets secret
scanners recognise a leaked one. Only its digest is stored, so the database cannot be used
to call the API.
"""

from __future__ import annotations

import secrets

from broker.errors import AdminDenied
from broker.storage.keys import digest
from broker.storage.model import ApiToken, AppStore

PREFIXES = {"admin": "bka_", "scim": "bks_"}


def issue_token(
    storage: AppStore,
    *,
    store: str,
    kind: str,
    label: str,
    now: int,
    connection: str | None = None,
) -> tuple[str, int]:
    """A new token (to show once) and its id."""
    token = PREFIXES[kind] + secrets.token_urlsafe(32)
    token_id = storage.create_api_token(
        store=store, kind=kind, digest=digest(token), label=label, now=now, connection=connection
    )
    return token, token_id


def authenticate(
    storage: AppStore, authorization: str | None, *, store: str, kind: str
) -> ApiToken:
    """The live token an ``Authorization: Bearer`` header names, for this store and kind."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(PREFIXES[kind]):
        raise AdminDenied(
            "This API needs an Authorization: Bearer token (make one with `broker admin token`).",
            detail="no bearer token",
        )
    found = storage.find_api_token(digest(token))
    if found is None or found.store != store or found.kind != kind:
        raise AdminDenied("This token is not valid for this store.", detail="unknown token")
    return found
