"""What to change in a store's control panel, from who is in the IdP groups: pure, no IO.

The rules (README, "Control-panel staff"):

- everyone in a mapped group (through a connection the mapping names) who is not a store user
  is added to the store, and first to the account when not one of its users;
- a store user who is in no mapped group is removed only when the broker added them (a grant)
  or the store says ``remove_unmanaged = true``; never a user named in ``keep``, and never the
  store owner (who is in ``keep`` whenever ``remove_unmanaged`` is on: the settings insist);
- a queued change the groups no longer want is cancelled (an add for someone who left the
  group before it ran, a removal for someone who came back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from broker.bigcommerce.account import StoreUser
from broker.settings.values import StaffSettings
from broker.storage.model import StaffItem

ADD_ACCOUNT = "add_to_account"
ADD = "add_to_store"
REMOVE = "remove_from_store"


@dataclass(frozen=True)
class Removal:
    email: str
    user_id: str


@dataclass(frozen=True)
class StaffPlan:
    """The changes to queue and to cancel, and the store users left alone (with why)."""

    add: tuple[str, ...] = ()
    #: Of ``add``, those to add to the account first (not yet one of its users).
    add_to_account: tuple[str, ...] = ()
    remove: tuple[Removal, ...] = ()
    cancel: tuple[StaffItem, ...] = ()
    #: Store users in no group whom the broker leaves alone: e-mail -> why.
    untouched: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.add or self.remove or self.cancel)


def make_plan(
    staff: StaffSettings,
    *,
    wanted: Iterable[str],
    users: Iterable[StoreUser],
    account_users: Iterable[StoreUser],
    grants: Iterable[str],
    queued: Iterable[StaffItem],
) -> StaffPlan:
    """The plan for one store: ``wanted`` are the e-mails the groups grant (folded),
    ``users`` the store's users now, ``account_users`` the account's, ``grants`` the e-mails
    the broker added, ``queued`` the open items of the store's queue."""
    wanted_set = {e.strip().lower() for e in wanted}
    current = {u.email: u for u in users}
    granted = set(grants)
    open_items = list(queued)
    pending_adds = {i.email for i in open_items if i.action == ADD}
    pending_removes = {i.email for i in open_items if i.action == REMOVE}

    add = sorted(e for e in wanted_set if e not in current and e not in pending_adds)
    in_account = {u.email for u in account_users} | set(current)
    pending_accounts = {i.email for i in open_items if i.action == ADD_ACCOUNT}
    to_account = [e for e in add if e not in in_account and e not in pending_accounts]
    remove: list[Removal] = []
    untouched: dict[str, str] = {}
    for email, user in sorted(current.items()):
        if email in wanted_set:
            continue
        if email in staff.keep:
            untouched[email] = "named in keep"
        elif email not in granted and not staff.remove_unmanaged:
            untouched[email] = "not added by the broker"
        elif email not in pending_removes:
            remove.append(Removal(email=email, user_id=user.id))
    cancel = [
        item
        for item in open_items
        if item.state == "pending"
        and (
            (
                item.action in (ADD, ADD_ACCOUNT)
                and (item.email not in wanted_set or item.email in current)
            )
            or (item.action == REMOVE and (item.email in wanted_set or item.email not in current))
        )
    ]
    return StaffPlan(
        add=tuple(add),
        add_to_account=tuple(to_account),
        remove=tuple(remove),
        cancel=tuple(cancel),
        untouched=untouched,
    )
