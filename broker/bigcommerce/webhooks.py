"""The broker's BigCommerce webhooks: which it listens to, and registering them once.

Deliveries carry :data:`AUTH_HEADER` with the store's ``webhook_secret`` (BigCommerce sends
the custom headers given at registration), which :mod:`broker.web.hooks` checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.bigcommerce.api import BigCommerceClient

AUTH_HEADER = "X-Broker-Webhook-Secret"
#: The scopes the broker listens to: a deleted customer's links must go.
WEBHOOK_SCOPES = ("store/customer/deleted",)


@dataclass(frozen=True)
class Registration:
    scope: str
    hook_id: int | None  # None: it was registered already


def destination(base_url: str, store_key: str) -> str:
    return f"{base_url}/{store_key}/webhooks/bigcommerce"


def missing_scopes(client: BigCommerceClient, url: str) -> list[str]:
    existing = {(h.get("scope"), h.get("destination")) for h in client.hooks()}
    return [scope for scope in WEBHOOK_SCOPES if (scope, url) not in existing]


def register_webhooks(client: BigCommerceClient, url: str, secret: str) -> list[Registration]:
    """Register the scopes not registered yet for ``url``."""
    missing = set(missing_scopes(client, url))
    done: list[Registration] = []
    for scope in WEBHOOK_SCOPES:
        if scope not in missing:
            done.append(Registration(scope, None))
            continue
        hook_id = client.create_hook(scope=scope, destination=url, headers={AUTH_HEADER: secret})
        done.append(Registration(scope, hook_id))
    return done
