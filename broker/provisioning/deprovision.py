"""The store's policy for people their company's IdP removed, ``deprovision = "delete"``:
customers blocked by a connection's SCIM for ``delete_after_days`` are deleted from the store
(``broker gc`` runs it). ``block`` (the default) keeps them, unable to sign in.

A customer another connection's SCIM still provisions as active is kept: deleting it would
take an account from a company that still vouches for it.
"""

from __future__ import annotations

from broker.errors import BrokerError
from broker.events import log_event
from broker.runtime import Runtime
from broker.storage.model import AuditEntry, scim_source


def delete_deprovisioned(runtime: Runtime, now: int) -> int:
    """Delete the customers due for deletion in every store; how many were deleted."""
    deleted = 0
    storage = runtime.storage
    for store in runtime.all_stores():
        for conn in store.connections.values():
            scim = conn.scim
            if scim is None or scim.deprovision != "delete":
                continue
            cutoff = now - scim.delete_after_days * 86400
            due = [
                customer_id
                for customer_id, _ in storage.blocks_older_than(
                    store.key, cutoff, source=scim_source(conn.key)
                )
                if not any(u.active for u in storage.scim_users_of_customer(store.key, customer_id))
            ]
            if not due:
                continue
            try:
                runtime.store_api(store.key).delete_customers(due)
            except BrokerError as error:
                log_event("scim.delete_failed", store=store.key, detail=error.detail)
                continue
            for customer_id in due:
                storage.delete_links_for_customer(store.key, customer_id)
                storage.unblock_customer(store.key, customer_id, source=scim_source(conn.key))
                storage.record_audit(
                    AuditEntry(
                        at=now,
                        store=store.key,
                        event="scim.customer_deleted",
                        outcome="deprovisioned",
                        connection=conn.key,
                        customer_id=customer_id,
                        detail=f"blocked over {scim.delete_after_days} days",
                    )
                )
            deleted += len(due)
    return deleted
