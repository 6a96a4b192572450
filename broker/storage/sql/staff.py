"""Control-panel staff on SQL (:class:`~broker.storage.model.StaffStore`): the queue of
Account API changes, the grants the broker made, each account's request budget, and the group
memberships seen at sign-in.

Every step that two workers could take at once is one conditional statement: an item is
claimed by the worker whose ``UPDATE ... WHERE state = 'pending'`` changed the row, and only
the worker holding the claim (its ``attempts`` number) may finish it; a slot of the budget is
taken by an ``UPDATE`` that only succeeds while the budget allows it. So any number of
processes share one queue and one budget without doing an item twice or overspending.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, case, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from broker.errors import StorageError
from broker.storage.model import StaffItem, StaffSighting
from broker.storage.schema import (
    scim_groups,
    scim_members,
    scim_users,
    staff_budget,
    staff_grants,
    staff_queue,
    staff_sightings,
)
from broker.storage.sql.base import SQLBase, storage_error

OPEN = ("pending", "running")


def _open_key(store: str, action: str, email: str) -> str:
    return f"{store}\x1f{action}\x1f{email}"


class SQLStaffStore(SQLBase):
    # -- the queue ----------------------------------------------------------------------------

    def enqueue_staff(
        self, store: str, action: str, email: str, *, user_id: str | None, now: int
    ) -> bool:
        """Queue one change; False when the same change is queued already (open)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(staff_queue).values(
                        store=store,
                        action=action,
                        email=email,
                        user_id=user_id,
                        state="pending",
                        open_key=_open_key(store, action, email),
                        run_at=now,
                        attempts=0,
                        failures=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None
        return True

    def cancel_staff(self, store: str, action: str, email: str, *, now: int) -> bool:
        """Cancel a pending change (one already running finishes)."""
        return (
            self._execute(
                update(staff_queue)
                .where(
                    staff_queue.c.open_key == _open_key(store, action, email),
                    staff_queue.c.state == "pending",
                )
                .values(state="cancelled", open_key=None, updated_at=now)
            )
            > 0
        )

    def staff_items(self, store: str, *, states: Iterable[str] = OPEN) -> list[StaffItem]:
        """The store's items in these states, in the order they run."""
        query = (
            select(staff_queue)
            .where(staff_queue.c.store == store, staff_queue.c.state.in_(tuple(states)))
            .order_by(staff_queue.c.run_at, staff_queue.c.id)
        )
        try:
            with self.engine.connect() as conn:
                return [_item(row) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def claim_staff_item(self, store: str, *, now: int, lease: int) -> StaffItem | None:
        """Take the next due item: pending and due, or running on a lease that ran out (its
        worker died), and for a store add, no add of the same e-mail to the account still
        open. None when nothing is due. The claim raises ``attempts``: the number the
        worker must show to finish the item."""
        first = staff_queue.alias("first")
        waits = exists().where(  # a store add waits for the same e-mail's account add
            staff_queue.c.action == "add_to_store",
            first.c.store == staff_queue.c.store,
            first.c.email == staff_queue.c.email,
            first.c.action == "add_to_account",
            first.c.state.in_(OPEN),
        )
        due = and_(
            staff_queue.c.store == store,
            or_(
                and_(staff_queue.c.state == "pending", staff_queue.c.run_at <= now),
                and_(staff_queue.c.state == "running", staff_queue.c.lease_until <= now),
            ),
            ~waits,
        )
        for _ in range(20):
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(
                        select(staff_queue.c.id)
                        .where(due)
                        .order_by(staff_queue.c.run_at, staff_queue.c.id)
                        .limit(1)
                    ).first()
                    if row is None:
                        return None
                    claimed = conn.execute(
                        update(staff_queue)
                        .where(staff_queue.c.id == row.id, due)
                        .values(
                            state="running",
                            lease_until=now + lease,
                            attempts=staff_queue.c.attempts + 1,
                            updated_at=now,
                        )
                        .returning(*staff_queue.c)
                    ).first()
                    if claimed is not None:
                        return _item(claimed)
            except SQLAlchemyError as exc:
                raise storage_error(exc) from None
            # another worker claimed it between the two statements: look again
        raise StorageError(
            "The staff queue is very busy. Please try again shortly.",
            detail="staff queue contended",
        )

    def finish_staff_item(
        self, item: StaffItem, *, state: str, error: str | None, now: int, failure: bool = False
    ) -> bool:
        """Close a claimed item (``done``, ``failed``; ``failure``: counting this failure);
        False when the claim was lost."""
        failures = staff_queue.c.failures + (1 if failure else 0)
        return self._settle(item, now, state=state, open_key=None, error=error, failures=failures)

    def release_staff_item(
        self,
        item: StaffItem,
        *,
        run_at: int,
        error: str | None,
        failed: bool,
        now: int,
        unsent: bool = False,
    ) -> bool:
        """Put a claimed item back, to run at ``run_at``; ``failed`` counts a failure of the
        item itself (not of the budget); ``unsent``: the claim changed nothing at BigCommerce
        (no request, or one refused with a 429), so it does not count as an attempt. False
        when the claim was lost."""
        return self._settle(
            item,
            now,
            state="pending",
            run_at=run_at,
            error=error,
            failures=staff_queue.c.failures + (1 if failed else 0),
            attempts=staff_queue.c.attempts - (1 if unsent else 0),
            lease_until=None,
        )

    def _settle(self, item: StaffItem, now: int, **values: object) -> bool:
        return (
            self._execute(
                update(staff_queue)
                .where(
                    staff_queue.c.id == item.id,
                    staff_queue.c.state == "running",
                    staff_queue.c.attempts == item.attempts,
                )
                .values(updated_at=now, **values)
            )
            > 0
        )

    # -- grants -------------------------------------------------------------------------------

    def add_staff_grant(self, store: str, email: str, *, now: int) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(staff_grants).values(store=store, email=email, granted_at=now))
        except IntegrityError:
            return  # granted before
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def remove_staff_grant(self, store: str, email: str) -> None:
        self._execute(
            delete(staff_grants).where(staff_grants.c.store == store, staff_grants.c.email == email)
        )

    def staff_grants(self, store: str) -> set[str]:
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(staff_grants.c.email).where(staff_grants.c.store == store)
                )
                return {row.email for row in rows}
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    # -- the budget ---------------------------------------------------------------------------

    def take_staff_slot(self, account: str, *, now_ms: int, interval_ms: int, burst: int) -> int:
        """Take one request of the account's budget: 0 when taken, else the milliseconds
        until one is free. A GCRA (a leaky bucket of ``burst`` requests that drains one per
        ``interval_ms``): ``burst`` at once, then one per interval, so in any stretch of time
        T at most ``burst + T / interval_ms`` requests, whatever the number of workers."""
        limit = (burst - 1) * interval_ms
        take = (
            update(staff_budget)
            .where(staff_budget.c.account == account, staff_budget.c.tat_ms - now_ms <= limit)
            .values(
                tat_ms=case((staff_budget.c.tat_ms > now_ms, staff_budget.c.tat_ms), else_=now_ms)
                + interval_ms
            )
            .returning(staff_budget.c.tat_ms)
        )
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    if conn.execute(take).first() is not None:
                        return 0
                    row = conn.execute(
                        select(staff_budget.c.tat_ms).where(staff_budget.c.account == account)
                    ).first()
                    if row is not None:
                        return max(1, int(row.tat_ms) - limit - now_ms)
                    conn.execute(
                        insert(staff_budget).values(account=account, tat_ms=now_ms + interval_ms)
                    )
                    return 0
            except IntegrityError:
                continue  # another worker made the row first: take again
            except SQLAlchemyError as exc:
                raise storage_error(exc) from None
        raise StorageError("The staff budget is contended.", detail="staff budget contended")

    def hold_staff_budget(
        self, account: str, *, until_ms: int, interval_ms: int, burst: int
    ) -> None:
        """No request before ``until_ms`` (BigCommerce answered 429), then one per interval."""
        tat = until_ms + (burst - 1) * interval_ms
        try:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    update(staff_budget)
                    .where(staff_budget.c.account == account, staff_budget.c.tat_ms < tat)
                    .values(tat_ms=tat)
                ).rowcount
                if (
                    not moved
                    and conn.execute(
                        select(staff_budget.c.account).where(staff_budget.c.account == account)
                    ).first()
                    is None
                ):
                    conn.execute(insert(staff_budget).values(account=account, tat_ms=tat))
        except IntegrityError:
            self.hold_staff_budget(account, until_ms=until_ms, interval_ms=interval_ms, burst=burst)
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def staff_budget_tat(self, account: str) -> int | None:
        """The budget's theoretical arrival time in milliseconds (None: never used)."""
        row = self._first(select(staff_budget.c.tat_ms).where(staff_budget.c.account == account))
        return None if row is None else int(row.tat_ms)

    # -- who is in the groups -----------------------------------------------------------------

    def scim_group_members(
        self, store: str, connection: str, groups: Iterable[str]
    ) -> list[tuple[str, str]]:
        """(e-mail, SCIM user id) of the active users with an e-mail in any of the named
        groups of one connection (names without regard to case)."""
        names = tuple(g.lower() for g in groups)
        query = (
            select(scim_users.c.email, scim_users.c.id)
            .select_from(
                scim_groups.join(
                    scim_members,
                    and_(
                        scim_members.c.store == scim_groups.c.store,
                        scim_members.c.connection == scim_groups.c.connection,
                        scim_members.c.group_id == scim_groups.c.id,
                    ),
                ).join(
                    scim_users,
                    and_(
                        scim_users.c.store == scim_members.c.store,
                        scim_users.c.connection == scim_members.c.connection,
                        scim_users.c.id == scim_members.c.user_id,
                    ),
                )
            )
            .where(
                scim_groups.c.store == store,
                scim_groups.c.connection == connection,
                scim_groups.c.display_name_key.in_(names),
                scim_users.c.active.is_(True),
                scim_users.c.email.is_not(None),
            )
            .distinct()
        )
        try:
            with self.engine.connect() as conn:
                return [(row.email, row.id) for row in conn.execute(query)]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def record_staff_sighting(self, sighting: StaffSighting, *, create: bool = True) -> None:
        """Keep the latest membership seen at a sign-in, per identity; with ``create`` false,
        only an identity seen before is updated (one statement, no row for everyone else)."""
        key = and_(
            staff_sightings.c.store == sighting.store,
            staff_sightings.c.connection == sighting.connection,
            staff_sightings.c.subject == sighting.subject,
        )
        values = {
            "email": sighting.email,
            "in_group": sighting.in_group,
            "seen_at": sighting.seen_at,
        }
        try:
            with self.engine.begin() as conn:
                if conn.execute(update(staff_sightings).where(key).values(**values)).rowcount:
                    return
                if not create:
                    return
                conn.execute(
                    insert(staff_sightings).values(
                        store=sighting.store,
                        connection=sighting.connection,
                        subject=sighting.subject,
                        **values,
                    )
                )
        except IntegrityError:
            self._execute(update(staff_sightings).where(key).values(**values))
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None

    def staff_sightings(
        self, store: str, connections: Iterable[str], *, since: int
    ) -> list[StaffSighting]:
        """The memberships seen at sign-ins since ``since``, through these connections."""
        query = select(staff_sightings).where(
            staff_sightings.c.store == store,
            staff_sightings.c.connection.in_(tuple(connections)),
            staff_sightings.c.seen_at >= since,
        )
        try:
            with self.engine.connect() as conn:
                return [
                    StaffSighting(
                        store=row.store,
                        connection=row.connection,
                        subject=row.subject,
                        email=row.email,
                        in_group=bool(row.in_group),
                        seen_at=int(row.seen_at),
                    )
                    for row in conn.execute(query)
                ]
        except SQLAlchemyError as exc:
            raise storage_error(exc) from None


def _item(row: object) -> StaffItem:
    r = row._mapping  # type: ignore[attr-defined]
    return StaffItem(
        id=int(r["id"]),
        store=r["store"],
        action=r["action"],
        email=r["email"],
        user_id=r["user_id"],
        state=r["state"],
        run_at=int(r["run_at"]),
        attempts=int(r["attempts"]),
        failures=int(r["failures"]),
        created_at=int(r["created_at"]),
        updated_at=int(r["updated_at"]),
        error=r["error"],
    )
