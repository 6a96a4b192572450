"""Control-panel staff as the operator sees it: ``broker staff plan|apply|run``, the admin
API's ``GET /{store}/admin/api/staff`` and the admin's staff form (Flask-free).

The plan's lines name e-mails: they are the operator's own output on stdout, never the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from broker.admin.stores import StoreAdmin, describe
from broker.events import log_event
from broker.provisioning.staff.plan import ADD, ADD_ACCOUNT, REMOVE
from broker.provisioning.staff.service import Budget, Report, StaffService
from broker.settings.secrets import SECRET_KEYS
from broker.settings.values import StoreSettings
from broker.storage.model import StaffItem

_VERBS = {
    ADD_ACCOUNT: "add to the account",
    ADD: "add to the store",
    REMOVE: "remove from the store",
}


def when(at: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def report_lines(store: StoreSettings, report: Report, *, applied: bool) -> list[str]:
    """What ``broker staff plan`` (``applied`` false) or ``apply`` prints for one store."""
    staff = store.staff
    assert staff is not None
    groups = ", ".join(staff.groups)
    via = ", ".join(staff.connections)
    lines = [
        f"store {store.key}: {len(report.wanted)} in the groups ({groups}) through {via}; "
        f"{report.requests} Account API request(s) used"
    ]
    plan = report.plan
    if report.problem is not None:
        lines.append(f"  the store's users could not be read: {report.problem}")
    elif plan is None:
        at = report.next_request_at
        lines.append(
            "  the store's users could not be read: the account's budget is spent"
            + (f" until {when(at)}" if at else "")
        )
    else:
        for email in plan.add:
            also = ", to the account first" if email in plan.add_to_account else ""
            lines.append(f"  + {email}: add ({report.wanted.get(email, 'in the groups')}{also})")
        for removal in plan.remove:
            lines.append(f"  - {removal.email}: remove (in none of the groups)")
        for item in plan.cancel:
            lines.append(f"  x {item.email}: cancel the queued {_VERBS[item.action]}")
        for email, why in plan.untouched.items():
            lines.append(f"  = {email}: left alone ({why})")
        if plan.empty:
            lines.append("  nothing to change")
    for item in report.done:
        lines.append(f"  done: {_VERBS[item.action]} {item.email}")
    for item in report.failed:
        lines.append(f"  failed: {_VERBS[item.action]} {item.email}: {item.error}")
    lines.extend(queue_lines(report.pending))
    if applied and report.next_request_at is not None:
        lines.append(f"  the budget is spent: the next request at {when(report.next_request_at)}")
    return lines


def queue_lines(pending: Iterable[tuple[StaffItem, int]]) -> list[str]:
    items = list(pending)
    if not items:
        return ["  queue: empty"]
    lines = [f"  queue: {len(items)} open"]
    for item, at in items:
        retry = f", {item.failures} failure(s): {item.error}" if item.failures else ""
        lines.append(f"    {_VERBS[item.action]} {item.email}: {item.state}, ~{when(at)}{retry}")
    return lines


def status(service: StaffService, store: StoreSettings) -> dict[str, Any]:
    """The admin API's view: the mapping, the queue with when each item runs, the budget,
    recent failures. Makes no Account API request."""
    staff = store.staff
    if staff is None:
        return {"enabled": False}
    budget = Budget.of(staff)
    pending = service.schedule(store)
    failed = service.storage.staff_items(store.key, states=("failed",))[-20:]
    return {
        "enabled": True,
        "groups": list(staff.groups),
        "connections": list(staff.connections),
        "remove_unmanaged": staff.remove_unmanaged,
        "budget": {
            "requests_per_hour": staff.requests_per_hour,
            "burst": budget.burst,
            "interval_seconds": budget.interval_ms / 1000,
        },
        "pending": [_item_json(item, at) for item, at in pending],
        "failed": [_item_json(item, None) for item in failed],
        "wanted": len(service.wanted(store)),
        "granted": len(service.storage.staff_grants(store.key)),
    }


def staff_table(admin: StoreAdmin) -> dict[str, Any] | None:
    """The store's ``[stores.X.staff]`` as the admin's form shows it (None: there is none),
    ``account_token_set`` in place of the token. A stored store's table as written, so a
    disabled one still shows its values; a file store's as the file gives it."""
    if admin.read_only:
        staff = admin.store.staff
        return None if staff is None else describe(staff)
    row = admin.runtime.storage.tenant_document(admin.key)
    table = row.document.get("staff") if row is not None else None
    if not isinstance(table, Mapping):
        return None
    shown = {key: value for key, value in table.items() if key not in SECRET_KEYS}
    shown["account_token_set"] = bool(table.get("account_token"))
    return shown


def _item_json(item: StaffItem, runs_at: int | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": item.id,
        "action": item.action,
        "email": item.email,
        "state": item.state,
        "attempts": item.attempts,
        "failures": item.failures,
        "error": item.error,
        "created_at": item.created_at,
    }
    if runs_at is not None:
        answer["runs_at"] = runs_at
    return answer


def run_forever(
    service: StaffService,
    stores: Callable[[], list[StoreSettings]],
    *,
    every: float,
    plan_every: float,
    stop: threading.Event,
) -> None:
    """The scheduled run: every ``every`` seconds, carry out what is due; every
    ``plan_every`` seconds, plan each store again (a read of its users). Any number of these
    may run against one database: the queue and the budget are shared there."""
    planned: dict[str, float] = {}
    while not stop.is_set():
        for store in stores():
            try:
                if time.monotonic() - planned.get(store.key, float("-inf")) >= plan_every:
                    report = service.apply(store)
                    if report.plan is not None:  # else the budget stopped it: plan again soon
                        planned[store.key] = time.monotonic()
                else:
                    report = service.run_due(store)
                log_event(
                    "staff.run",
                    store=store.key,
                    done=len(report.done),
                    failed=len(report.failed),
                    requests=report.requests,
                    next_request_at=report.next_request_at,
                )
            except Exception as exc:  # one store's trouble stops no other
                log_event("staff.run_failed", store=store.key, error=type(exc).__name__)
        stop.wait(every)
