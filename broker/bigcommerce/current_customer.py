"""The Current Customer JWT: the storefront's proof of who is signed in.

Follows BigCommerce's "Current Customer API" as recorded in docs/bigcommerce-api.md:
storefront JavaScript fetches ``/customer/current.jwt?app_client_id=<client id>`` and hands the
token to the app's server, which verifies it with the app's client secret: HS256 only, ``aud``
the client id, ``operation`` ``current_customer``, ``store_hash`` this store's, ``exp`` in the
future. No IO here.
"""

from __future__ import annotations

from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from broker.errors import InvalidStorefrontToken

#: Tokens live 15 minutes; allow a little clock difference on top.
LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class CurrentCustomer:
    id: int
    email: str


def verify_current_customer(
    token: str, *, client_id: str, client_secret: str, store_hash: str, now: int
) -> CurrentCustomer:
    """Verify the token; raise InvalidStorefrontToken with the reason in its log detail."""
    try:
        decoded = jwt.decode(token, OctKey.import_key(client_secret), algorithms=["HS256"])
        JWTClaimsRegistry(
            now=now,
            leeway=LEEWAY_SECONDS,
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            operation={"essential": True, "value": "current_customer"},
            store_hash={"essential": True, "value": store_hash},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidStorefrontToken(
            "The store could not confirm who you are. Sign in to the store again, then retry "
            "from your account page.",
            detail=f"current customer jwt: {type(exc).__name__}: {exc}",
        ) from None
    customer = decoded.claims.get("customer")
    if not isinstance(customer, dict) or not isinstance(customer.get("id"), int):
        raise InvalidStorefrontToken(
            "The store could not confirm who you are.", detail="current customer jwt: no customer"
        )
    return CurrentCustomer(id=int(customer["id"]), email=str(customer.get("email") or ""))
