"""The app's install and its callbacks, Flask-free (docs/bigcommerce-api.md, "App install").

- :meth:`AppInstaller.install`: an install code → the store's token (sealed), the store's
  facts, its document in the database, the installing user as its first admin; then the app.
- :meth:`AppInstaller.load`: a verified payload for an installed store → an admin session for
  that control-panel user (any user the store grants the app may administer it).
- :meth:`AppInstaller.uninstall`: everything of the store is deleted; one audit row says so.
- :meth:`AppInstaller.remove_user`: that user's admin access ends at once.

Every payload is used once (its ``jti``) and every install code once: a replay is refused
and changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from broker.admin.sessions import AdminSession, AdminSessions
from broker.bigcommerce.app_install import (
    InstallGrant,
    SignedPayload,
    StoreFacts,
    exchange_code,
    learn_store,
    store_from_context,
    verify_signed_payload,
)
from broker.bigcommerce.webhooks import destination, register_webhooks
from broker.errors import AppCallbackRefused, BrokerError, ConfigError
from broker.events import log_event
from broker.runtime import Runtime
from broker.settings.secrets import open_document, seal_document
from broker.settings.values import AppSettings
from broker.storage import keys
from broker.storage.model import AuditEntry

#: An install code is worth nothing after BigCommerce's few minutes; remember it for an hour.
CODE_MEMORY_SECONDS = 3600


class AppInstaller:
    def __init__(self, runtime: Runtime, *, redirect_uri: str) -> None:
        if runtime.app is None:
            raise ConfigError(["[app]: the broker is not configured as a BigCommerce app"])
        self.runtime = runtime
        self.app: AppSettings = runtime.app
        self.redirect_uri = redirect_uri
        self.storage = runtime.storage
        self.sessions = AdminSessions(
            runtime.broker_settings.secret_key, minutes=self.app.admin_session_minutes
        )
        self._clock: Callable[[], float] = runtime.clock

    def _now(self) -> int:
        return int(self._clock())

    # -- install ----------------------------------------------------------------------------

    def install(self, *, code: str, scope: str, context: str) -> AdminSession:
        store_hash = store_from_context(context)
        self._refuse_file_store(store_hash)
        if not code:
            raise AppCallbackRefused("This install link has no code.", detail="code missing")
        now = self._now()
        if not self.storage.use_once(keys.app_install_code(code), now + CODE_MEMORY_SECONDS, now):
            raise AppCallbackRefused(
                "This install link was used already. Install the app again from the control panel.",
                detail="install code replayed",
            )
        grant = exchange_code(
            self.app,
            code=code,
            scope=scope,
            context=context,
            redirect_uri=self.redirect_uri,
            transport=self.runtime.transport,
        )
        facts = learn_store(
            self.app, grant.store_hash, grant.access_token, transport=self.runtime.transport
        )
        previous = self.storage.tenant_document(grant.store_hash)
        document = store_document(
            grant,
            facts,
            open_document(previous.document, self.runtime.secrets) if previous else None,
        )
        self.storage.install_store(
            grant.store_hash,
            seal_document(document, self.runtime.secrets),
            scope=grant.scope,
            owner_id=grant.owner_id,
            user_id=grant.user_id,
            name=facts.name[:255],
            now=now,
        )
        self._audit(grant.store_hash, "app.installed", "reinstalled" if previous else "installed")
        log_event("app.installed", store=grant.store_hash, reinstall=previous is not None)
        self.runtime.refresh()
        self.register_webhooks(grant.store_hash)
        user_id = grant.user_id if grant.user_id is not None else grant.owner_id
        if user_id is None:
            raise AppCallbackRefused(
                "BigCommerce did not say who installed the app.", detail="no user in the grant"
            )
        return self.sessions.open(grant.store_hash, user_id)

    def register_webhooks(self, store_key: str) -> bool:
        """Register the broker's webhooks for an installed store (a deleted customer's links
        go at once); a failure leaves the install in place, the admin shows it."""
        store = self.runtime.store(store_key)
        url = destination(self.runtime.broker_settings.base_url, store_key)
        try:
            register_webhooks(self.runtime.store_api(store_key), url, store.webhook_secret or "")
        except BrokerError as error:
            self._audit(store_key, "app.webhooks", "failed", detail=error.code)
            log_event("app.webhooks_failed", store=store_key, detail=error.detail)
            return False
        self._audit(store_key, "app.webhooks", "registered")
        return True

    def _refuse_file_store(self, store_hash: str) -> None:
        for key, store in self.runtime.file_stores().items():
            if store_hash in (key, store.store_hash):
                raise AppCallbackRefused(
                    "This store is configured in the broker's file by its operator, so it "
                    "cannot also be installed as an app here.",
                    detail=f"file store {key!r} has this store hash",
                )

    # -- callbacks --------------------------------------------------------------------------

    def _payload(self, token: str) -> SignedPayload:
        now = self._now()
        payload = verify_signed_payload(self.app, token, now=now)
        if self.storage.get_install(payload.store_hash) is None:
            raise AppCallbackRefused(
                "The app is not installed on this store.", detail="unknown store"
            )
        if not self.storage.use_once(
            keys.app_payload(payload.store_hash, payload.jti), payload.expires_at + 120, now
        ):
            raise AppCallbackRefused(
                "This link from the control panel was used already. Open the app again.",
                detail="payload replayed",
            )
        return payload

    def load(self, token: str) -> AdminSession:
        payload = self._payload(token)
        self.storage.add_admin_user(payload.store_hash, payload.user_id, self._now())
        return self.sessions.open(payload.store_hash, payload.user_id)

    def uninstall(self, token: str) -> str:
        payload = self._payload(token)
        removed = self.storage.remove_store(payload.store_hash)
        self._audit(payload.store_hash, "app.uninstalled", "removed", detail=f"rows={removed}")
        log_event("app.uninstalled", store=payload.store_hash, rows=removed)
        self.runtime.refresh()
        return payload.store_hash

    def remove_user(self, token: str) -> str:
        payload = self._payload(token)
        removed = self.storage.remove_admin_user(payload.store_hash, payload.user_id)
        self._audit(
            payload.store_hash,
            "app.user_removed",
            "removed" if removed else "not_admin",
            detail=f"user={payload.user_id}",
        )
        return payload.store_hash

    # -- every admin request ----------------------------------------------------------------

    def admin_session(self, token: str | None, store: str) -> AdminSession:
        """The admin session of a request, if its user may still administer the store."""
        from broker.errors import AdminDenied

        session = self.sessions.verify(token, store=store)
        if self.storage.get_install(store) is None or not self.storage.is_admin_user(
            store, session.user_id
        ):
            raise AdminDenied(
                "You no longer have access to this app for this store. Ask the store owner.",
                detail="not an admin user",
            )
        return session

    def _audit(self, store: str, event: str, outcome: str, *, detail: str | None = None) -> None:
        self.storage.record_audit(
            AuditEntry(at=self._now(), store=store, event=event, outcome=outcome, detail=detail)
        )


def store_document(
    grant: InstallGrant, facts: StoreFacts, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """An installed store's document: what BigCommerce told us, over what the merchant set
    (a reinstall, when the app's scopes change, keeps the store's connections)."""
    document: dict[str, Any] = dict(previous or {})
    default = next((c for c in facts.channels if c.id == 1), None) or (
        facts.channels[0] if facts.channels else None
    )
    document.update(
        store_hash=grant.store_hash,
        access_token=grant.access_token,
        storefront_url=(default.storefront_url if default and default.storefront_url else None)
        or facts.storefront_url,
        channel_id=default.id if default else 1,
    )
    document.setdefault("connections", {})
    # The header BigCommerce's webhook deliveries carry (sealed like every secret).
    document.setdefault("webhook_secret", secrets.token_urlsafe(32))
    # Every other storefront channel with a storefront URL: ``[stores.X.channels.N]``.
    others = {
        str(c.id): {
            "storefront_url": c.storefront_url,
            "platform": "catalyst" if c.platform in ("catalyst", "next") else "stencil",
        }
        for c in facts.channels
        if c.storefront_url and (default is None or c.id != default.id)
    }
    if others:
        kept = document.get("channels") if isinstance(document.get("channels"), dict) else {}
        document["channels"] = {
            key: {**(kept or {}).get(key, {}), **value} for key, value in others.items()
        }
    else:
        document.pop("channels", None)
    return document
