"""Control-panel staff from IdP groups: plan, queue and carry out the Account API changes.

Who is wanted: the active SCIM users in the mapped groups of the connections the mapping
names, and for those connections without SCIM, identities whose latest sign-in (within
``sign_in_days``) showed a mapped group. Who is there: the store's users, read from the
Account API. :func:`~broker.provisioning.staff.plan.make_plan` says what changes; the changes
go to a queue in the database (:mod:`broker.storage.sql.staff`) and run as the account's
budget allows.

The budget: BigCommerce allows 70 requests an hour for everything under ``/accounts``, for
the whole account. Every request the broker makes (a page of users, a change) takes a slot of
a leaky bucket held in the database: ``burst`` requests at once, then one per ``interval``,
so that in any hour there are at most ``requests_per_hour`` whatever the number of workers
and stores. A 429 holds the bucket until BigCommerce's window resets; the item goes back to
the queue, unchanged. A change whose answer never came (a timeout) is tried again: adding a
user who is there already, or removing one who is gone, counts as done.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

import httpx

from broker.bigcommerce.account import AccountClient, AccountHTTPError, AccountRefused, StoreUser
from broker.errors import BigCommerceError, RateLimited
from broker.events import log_event
from broker.provisioning.staff.plan import ADD, ADD_ACCOUNT, REMOVE, StaffPlan, make_plan
from broker.settings.values import StaffSettings, StoreSettings
from broker.storage.model import AuditEntry, StaffItem, Storage

#: How long a claimed item is a worker's before another may take it over, in seconds.
LEASE_SECONDS = 300
#: An item that failed this many times (not counting 429s) is given up as failed.
MAX_FAILURES = 5
#: The answers that mean the change is there already (a retry after a lost answer).
_ALREADY = {ADD_ACCOUNT: "ALREADY_EXISTS", ADD: "ALREADY_EXISTS", REMOVE: "NOT_FOUND"}


class BudgetSpent(Exception):
    """No request of the account's budget is free for ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the Account API budget is spent for {math.ceil(wait)} s")
        self.wait = wait


@dataclass(frozen=True)
class Budget:
    """The account's leaky bucket: ``burst`` requests at once, then one per interval."""

    burst: int
    interval_ms: int

    @classmethod
    def of(cls, staff: StaffSettings) -> Budget:
        burst = max(1, staff.requests_per_hour // 7)
        return cls(
            burst=burst, interval_ms=math.ceil(3_600_000 / (staff.requests_per_hour - burst))
        )


@dataclass
class Report:
    """What one plan or run did and what is left."""

    plan: StaffPlan | None = None
    wanted: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    done: list[StaffItem] = field(default_factory=list)
    failed: list[StaffItem] = field(default_factory=list)
    #: Open items with the time each is expected to run (Unix seconds).
    pending: list[tuple[StaffItem, int]] = field(default_factory=list)
    #: Set when the budget stopped the work: when the next request may go.
    next_request_at: int | None = None
    #: Why the store's users could not be read (the Account API refused or failed), if so.
    problem: str | None = None


class StaffService:
    """Staff for the stores whose settings have ``[staff]``. Thread-safe, Flask-free."""

    def __init__(
        self,
        storage: Storage,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self._transport = transport

    # -- who ----------------------------------------------------------------------------------

    def wanted(self, store: StoreSettings) -> dict[str, str]:
        """The e-mails the groups grant, each with where it was seen (``scim:corp``)."""
        staff = _staff(store)
        wanted: dict[str, str] = {}
        since = int(self.clock()) - staff.sign_in_days * 86400
        for key in staff.connections:
            conn = store.connections.get(key)
            if conn is None:
                continue
            domains = conn.allowed_domains
            if conn.scim is not None and conn.scim.enabled:
                found = [
                    (e.strip().lower(), f"scim:{key}")
                    for e, _ in self.storage.scim_group_members(store.key, key, staff.groups)
                ]
            else:
                found = [
                    (seen.email, f"sign-in:{key}")
                    for seen in self.storage.staff_sightings(store.key, (key,), since=since)
                    if seen.in_group
                ]
            for email, source in found:
                # A connection limited to some domains grants no one outside them.
                if not domains or email.rsplit("@", 1)[-1] in domains:
                    wanted.setdefault(email, source)
        return wanted

    def store_users(
        self, store: StoreSettings, report: Report | None = None, *, account: bool = False
    ) -> list[StoreUser]:
        """Every user of the store (or, with ``account``, of the account), a page of 50 per
        request of the budget."""
        users: list[StoreUser] = []
        cursor: str | None = None
        with self._client(store) as client:
            read = client.account_users_page if account else client.store_users_page
            while True:
                self._take_slot(store)
                if report is not None:
                    report.requests += 1
                try:
                    page, cursor = read(cursor)
                except RateLimited as exc:
                    wait = self._hold(store, exc)
                    raise BudgetSpent(wait) from None
                users.extend(page)
                if cursor is None:
                    return users

    # -- plan and apply -----------------------------------------------------------------------

    def plan(self, store: StoreSettings) -> Report:
        """What would change (a dry run: nothing is queued or changed but the budget)."""
        report = Report(wanted=self.wanted(store))
        try:
            users = self.store_users(store, report)
            emails = {u.email for u in users}
            joining = [e for e in report.wanted if e not in emails]
            # The account's users matter only when someone is to join the store.
            account = self.store_users(store, report, account=True) if joining else []
        except BudgetSpent as spent:
            report.next_request_at = int(self.clock() + spent.wait)
        except BigCommerceError as exc:
            report.problem = _problem(exc)
        else:
            report.plan = make_plan(
                _staff(store),
                wanted=report.wanted,
                users=users,
                account_users=account,
                grants=self.storage.staff_grants(store.key),
                queued=self.storage.staff_items(store.key),
            )
        report.pending = self.schedule(store)
        return report

    def apply(self, store: StoreSettings, *, limit: int | None = None) -> Report:
        """Plan, queue the plan, and run what is due while the budget lasts."""
        report = self.plan(store)
        if report.plan is not None:
            self.enqueue(store, report.plan)
        if report.next_request_at is None and report.problem is None:
            self.run_due(store, report, limit=limit)
        report.pending = self.schedule(store)
        return report

    def enqueue(self, store: StoreSettings, plan: StaffPlan) -> None:
        now = int(self.clock())
        for item in plan.cancel:
            self.storage.cancel_staff(store.key, item.action, item.email, now=now)
        for email in plan.add_to_account:  # first: a store add waits for its account add
            self.storage.enqueue_staff(store.key, ADD_ACCOUNT, email, user_id=None, now=now)
        for email in plan.add:
            self.storage.enqueue_staff(store.key, ADD, email, user_id=None, now=now)
        for removal in plan.remove:
            self.storage.enqueue_staff(
                store.key, REMOVE, removal.email, user_id=removal.user_id, now=now
            )

    def run_due(
        self, store: StoreSettings, report: Report | None = None, *, limit: int | None = None
    ) -> Report:
        """Carry out the due items, one request of the budget each, until none is due, the
        budget is spent or ``limit`` items ran."""
        report = report or Report()
        ran = 0
        with self._client(store) as client:
            while limit is None or ran < limit:
                now = int(self.clock())
                item = self.storage.claim_staff_item(store.key, now=now, lease=LEASE_SECONDS)
                if item is None:
                    break
                wait = self._slot_wait(store)
                if wait:
                    self.storage.release_staff_item(
                        item,
                        run_at=item.run_at,
                        error=item.error,
                        failed=False,
                        now=now,
                        unsent=True,
                    )
                    report.next_request_at = now + math.ceil(wait / 1000)
                    break
                report.requests += 1
                ran += 1
                if not self._carry_out(store, client, item, report):
                    break
        return report

    def schedule(self, store: StoreSettings) -> list[tuple[StaffItem, int]]:
        """The store's open items, each with when it is expected to run: the bucket played
        forward, one request per item (other stores of the account share the budget, so
        this is the earliest)."""
        staff = _staff(store)
        budget = Budget.of(staff)
        now_ms = int(self.clock() * 1000)
        tat = self.storage.staff_budget_tat(staff.account_uuid) or now_ms
        scheduled: list[tuple[StaffItem, int]] = []
        for item in self.storage.staff_items(store.key):
            at = max(now_ms, tat - (budget.burst - 1) * budget.interval_ms, item.run_at * 1000)
            tat = max(tat, at) + budget.interval_ms
            scheduled.append((item, math.ceil(at / 1000)))
        return scheduled

    # -- one item -----------------------------------------------------------------------------

    def _carry_out(
        self, store: StoreSettings, client: AccountClient, item: StaffItem, report: Report
    ) -> bool:
        """Send one change; False when the budget says stop."""
        now = int(self.clock())
        try:
            if item.action == ADD_ACCOUNT:
                client.add_to_account(item.email)
            elif item.action == ADD:
                client.add_to_store(item.email)
            else:
                client.remove_from_store(item.user_id or "")
        except RateLimited as exc:
            wait = self._hold(store, exc)
            self.storage.release_staff_item(
                item, run_at=item.run_at, error="429", failed=False, now=now, unsent=True
            )
            report.next_request_at = now + wait
            return False
        except AccountRefused as exc:
            if exc.error_code != _ALREADY[item.action]:
                self._close(store, item, report, failed=f"{exc.error_code}: {exc.detail}")
                return True
            # There already. On a first attempt someone else did it: no grant of ours. An
            # earlier attempt that may have reached BigCommerce (it failed, or its worker
            # died) may have done it: ours.
            ours = item.attempts > 1 or item.failures > 0
            self._close(store, item, report, failed=None, grant=ours)
            return True
        except BigCommerceError as exc:
            failures = item.failures + 1
            error = _problem(exc)
            if failures >= MAX_FAILURES:
                self._close(store, item, report, failed=error, counted=True)
            else:
                self.storage.release_staff_item(
                    item, run_at=now + 30 * 2**failures, error=error, failed=True, now=now
                )
            return True
        self._close(store, item, report, failed=None)
        return True

    def _close(
        self,
        store: StoreSettings,
        item: StaffItem,
        report: Report,
        *,
        failed: str | None,
        grant: bool = True,
        counted: bool = False,
    ) -> None:
        now = int(self.clock())
        state = "failed" if failed else "done"
        if not self.storage.finish_staff_item(
            item, state=state, error=failed, now=now, failure=counted
        ):
            return  # the lease ran out and another worker has it now
        if failed is None and grant and item.action != ADD_ACCOUNT:
            if item.action == ADD:
                self.storage.add_staff_grant(store.key, item.email, now=now)
            else:
                self.storage.remove_staff_grant(store.key, item.email)
        (report.failed if failed else report.done).append(item)
        self.storage.record_audit(
            AuditEntry(
                at=now,
                store=store.key,
                event=f"staff.{item.action}",
                outcome="failed" if failed else "ok",
                subject=item.email,
                detail=failed,
            )
        )
        log_event(
            f"staff.{item.action}",
            store=store.key,
            item=item.id,
            outcome=state,
            attempts=item.attempts,
        )

    # -- the budget ---------------------------------------------------------------------------

    def _slot_wait(self, store: StoreSettings) -> int:
        """0 when a request of the budget was taken, else the milliseconds until one is."""
        staff = _staff(store)
        budget = Budget.of(staff)
        return self.storage.take_staff_slot(
            staff.account_uuid,
            now_ms=int(self.clock() * 1000),
            interval_ms=budget.interval_ms,
            burst=budget.burst,
        )

    def _take_slot(self, store: StoreSettings) -> None:
        wait = self._slot_wait(store)
        if wait:
            raise BudgetSpent(wait / 1000)

    def _hold(self, store: StoreSettings, refused: RateLimited) -> int:
        """Hold the budget until BigCommerce's window resets; the seconds until then."""
        seconds = refused.retry_after or 60
        staff = _staff(store)
        budget = Budget.of(staff)
        self.storage.hold_staff_budget(
            staff.account_uuid,
            until_ms=int((self.clock() + seconds) * 1000),
            interval_ms=budget.interval_ms,
            burst=budget.burst,
        )
        log_event("staff.rate_limited", store=store.key, retry_after=seconds)
        return seconds

    def _client(self, store: StoreSettings) -> closing[AccountClient]:
        return closing(
            AccountClient(
                _staff(store),
                store_key=store.key,
                store_hash=store.store_hash,
                transport=self._transport,
            )
        )


def _problem(exc: BigCommerceError) -> str:
    """A refusal in words an operator can act on (no secret: ``detail`` names the request)."""
    if isinstance(exc, AccountHTTPError) and exc.status in (401, 403):
        return (
            f"the Account API refused the token ({exc.detail}): check account_token and its scopes"
        )
    return f"{exc.code}: {exc.detail or exc}"


def _staff(store: StoreSettings) -> StaffSettings:
    if store.staff is None:
        raise ValueError(f"store {store.key} has no [staff]")
    return store.staff
