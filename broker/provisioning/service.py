"""SCIM 2.0 for one connection of one store, Flask-free: the Users and Groups resources
(RFC 7644) over the SCIM records in storage, with their effects at the store
(:mod:`broker.provisioning.customers`). The web layer parses HTTP and calls one method per
request; every refusal is a :class:`~broker.provisioning.scim.errors.ScimError`.

ETags are the records' versions (``W/"n"``): a PUT or PATCH with ``If-Match`` applies only to
the version it names (412 otherwise), so two writers never lose each other's change.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from broker.accounts import customer_group_for
from broker.companies import binding_for, join_company, plan_for
from broker.config import Connection, OIDCConnection, StoreSettings
from broker.errors import BrokerError, RateLimited
from broker.identity import Identity
from broker.provisioning.customers import CustomerTarget, Person
from broker.provisioning.scim.errors import ScimError
from broker.provisioning.scim.filters import parse_filter
from broker.provisioning.scim.patch import apply_group_patch, apply_user_patch
from broker.provisioning.scim.resources import (
    UserInput,
    etag,
    group_document,
    group_resource,
    list_response,
    paging,
    parse_group,
    parse_user,
    primary_email,
    user_document,
    user_resource,
)
from broker.runtime import Runtime
from broker.storage.model import AlreadyExists, AuditEntry, ScimGroup, ScimUser

#: The share of the store's quota provisioning leaves to shoppers: when less is left in the
#: window, the IdP is told to come back after it (429 with Retry-After, which Okta and Entra
#: honour), so a burst of thousands of users never starves sign-ins.
PROVISIONING_RESERVE = 0.3


Served = tuple[dict[str, Any], str]  # a resource and its ETag


@dataclass(frozen=True)
class Operations:
    """The verbs of one resource type (Users or Groups): one HTTP view serves both."""

    list: Callable[[str | None, str | None, str | None], dict[str, Any]]
    create: Callable[[Any], Served]
    get: Callable[[str], Served]
    replace: Callable[[str, Any, str | None], Served]
    patch: Callable[[str, Any, str | None], Served]
    delete: Callable[[str], None]


def version_of(if_match: str | None) -> int | None:
    """The version an ``If-Match`` names (None: no condition; ``*``: any)."""
    if not if_match or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ScimError(412, "If-Match does not name a version of this resource.")
    return int(text)


class ScimService:
    def __init__(self, runtime: Runtime, store_key: str, conn_key: str, *, base: str) -> None:
        self.runtime = runtime
        self.store: StoreSettings
        self.conn: Connection
        self.store, self.conn = runtime.connection(store_key, conn_key)
        self.storage = runtime.storage
        self.base = base  # .../scim/{conn}/v2
        settings = self.conn.scim
        if settings is None or not settings.enabled:
            raise ScimError(404, "SCIM is not enabled for this connection.")
        self.settings = settings
        self._clock: Callable[[], float] = runtime.clock

    def _now(self) -> int:
        return int(self._clock())

    def operations(self, resource_type: str) -> Operations:
        """The verbs of ``Users`` or ``Groups``."""
        if resource_type == "Users":
            return Operations(
                self.list_users,
                self.create_user,
                self.get_user,
                self.replace_user,
                self.patch_user,
                self.delete_user,
            )
        return Operations(
            self.list_groups,
            self.create_group,
            self.get_group,
            self.replace_group,
            self.patch_group,
            self.delete_group,
        )

    # -- users ------------------------------------------------------------------------------

    def _make_room(self) -> None:
        """Sign-ins first: refuse (for now) work that would eat the shoppers' share."""
        wait = self.runtime.store_api(self.store.key).spare(PROVISIONING_RESERVE)
        if wait is not None:
            raise RateLimited(
                "The store is busy serving shoppers; provisioning waits.",
                retry_after=max(1, math.ceil(wait)),
                detail="scim: quota kept for sign-ins",
            )

    def create_user(self, body: Any) -> tuple[dict[str, Any], str]:
        user = parse_user(body)
        self._make_room()
        now = self._now()
        record = ScimUser(
            store=self.store.key,
            connection=self.conn.key,
            id=uuid.uuid4().hex,
            user_name=user.user_name,
            external_id=user.external_id,
            email=primary_email(user),
            customer_id=None,
            active=user.active,
            document=user_document(user),
            version=1,
            created_at=now,
            updated_at=now,
        )
        try:
            self.storage.create_scim_user(record)
        except AlreadyExists:
            raise ScimError(
                409, "A user with this userName or externalId exists.", "uniqueness"
            ) from None
        try:
            customer_id = self._target(now).provision(self._person(user), None)
        except BrokerError:
            # The store could not take it now (429, 5xx): the IdP retries the POST, which must
            # not meet its own half-made user.
            self.storage.delete_scim_user(self.store.key, self.conn.key, record.id)
            raise
        if customer_id is not None:
            stored = self.storage.replace_scim_user(
                replace(record, customer_id=customer_id), expected_version=1
            )
            record = stored or record
            self._join_company(record, ())
        self._audit("scim.user_created", "active" if user.active else "inactive", record)
        return self._user_resource(record), etag(record.version)

    def get_user(self, user_id: str) -> tuple[dict[str, Any], str]:
        record = self._user(user_id)
        return self._user_resource(record), etag(record.version)

    def list_users(
        self, filter_text: str | None, start_index: str | None, count: str | None
    ) -> dict[str, Any]:
        where = parse_filter(filter_text, resource="User")
        start, size = paging(start_index, count)
        total, page = self.storage.find_scim_users(
            self.store.key, self.conn.key, where=where, start=start, count=size
        )
        return list_response([self._user_resource(r) for r in page], total=total, start_index=start)

    def replace_user(
        self, user_id: str, body: Any, if_match: str | None
    ) -> tuple[dict[str, Any], str]:
        return self._write_user(user_id, lambda _: parse_user(body), if_match)

    def patch_user(
        self, user_id: str, body: Any, if_match: str | None
    ) -> tuple[dict[str, Any], str]:
        return self._write_user(
            user_id, lambda record: parse_user(apply_user_patch(record.document, body)), if_match
        )

    def delete_user(self, user_id: str) -> None:
        record = self._user(user_id)
        self._make_room()
        self.storage.delete_scim_user(self.store.key, self.conn.key, user_id)
        self._target(self._now()).deprovision(record.customer_id)
        self._audit("scim.user_deleted", self.settings.deprovision, record)

    def _write_user(
        self, user_id: str, change: Callable[[ScimUser], UserInput], if_match: str | None
    ) -> tuple[dict[str, Any], str]:
        expected = version_of(if_match)
        record = self._user(user_id)
        if expected is not None and expected != record.version:
            raise ScimError(412, "The user changed since that version.")
        user = change(record)
        self._make_room()
        before = self._person(parse_user(record.document))
        now = self._now()
        customer_id = self._target(now).update(self._person(user), before, record.customer_id)
        updated = replace(
            record,
            user_name=user.user_name,
            external_id=user.external_id,
            email=primary_email(user),
            customer_id=customer_id,
            active=user.active,
            document=user_document(user),
            updated_at=now,
        )
        try:
            stored = self.storage.replace_scim_user(updated, expected_version=record.version)
        except AlreadyExists:
            raise ScimError(
                409, "A user with this userName or externalId exists.", "uniqueness"
            ) from None
        if stored is None:
            raise ScimError(412, "The user changed while this change was written; retry.")
        if before.active != user.active:
            self._audit("scim.user_active" if user.active else "scim.user_blocked", "ok", stored)
        return self._user_resource(stored), etag(stored.version)

    def _user(self, user_id: str) -> ScimUser:
        record = self.storage.get_scim_user(self.store.key, self.conn.key, user_id)
        if record is None:
            raise ScimError(404, "No such user.")
        return record

    def _user_resource(self, record: ScimUser) -> dict[str, Any]:
        return user_resource(
            record.document,
            id=record.id,
            created=record.created_at,
            updated=record.updated_at,
            version=record.version,
            location=f"{self.base}/Users/{record.id}",
        )

    def _person(self, user: UserInput) -> Person:
        return Person(
            subject=self._subject(user),
            email=primary_email(user),
            first_name=user.given_name,
            last_name=user.family_name,
            active=user.active,
            formatted_name=user.formatted_name,
            display_name=user.display_name,
        )

    def _subject(self, user: UserInput) -> str:
        """The connection's IdP subject this user is: ``externalId`` unless told otherwise."""
        attribute = self.settings.subject_attribute or "externalId"
        if attribute == "userName":
            return user.user_name
        if attribute == "emails":
            return primary_email(user) or user.user_name
        if not user.external_id:
            raise ScimError(
                400,
                "externalId is required: it is the user's subject at the identity provider "
                "(or set subject_attribute for this connection).",
                "invalidValue",
            )
        return user.external_id

    def _target(self, now: int) -> CustomerTarget:
        return CustomerTarget(
            storage=self.storage,
            directory=self.runtime.store_api(self.store.key),
            store=self.store,
            conn=self.conn,
            issuer=self._issuer(),
            now=now,
        )

    def _issuer(self) -> str:
        if isinstance(self.conn, OIDCConnection):
            return self.conn.issuer
        try:
            return self.runtime.saml(self.store.key, self.conn.key).idp_entity_id()
        except BrokerError:
            return f"scim:{self.conn.key}"

    # -- groups -----------------------------------------------------------------------------

    def create_group(self, body: Any) -> tuple[dict[str, Any], str]:
        group = parse_group(body)
        self._known_members(group.member_ids)
        now = self._now()
        record = ScimGroup(
            store=self.store.key,
            connection=self.conn.key,
            id=uuid.uuid4().hex,
            display_name=group.display_name,
            external_id=group.external_id,
            document=group_document(group),
            members=tuple(dict.fromkeys(group.member_ids)),
            version=1,
            created_at=now,
            updated_at=now,
        )
        try:
            self.storage.create_scim_group(record)
        except AlreadyExists:
            raise ScimError(409, "A group with this displayName exists.", "uniqueness") from None
        self._regroup(record.members)
        return self._group_resource(record), etag(record.version)

    def get_group(self, group_id: str) -> tuple[dict[str, Any], str]:
        record = self._group(group_id)
        return self._group_resource(record), etag(record.version)

    def list_groups(
        self, filter_text: str | None, start_index: str | None, count: str | None
    ) -> dict[str, Any]:
        where = parse_filter(filter_text, resource="Group")
        start, size = paging(start_index, count)
        total, page = self.storage.find_scim_groups(
            self.store.key, self.conn.key, where=where, start=start, count=size
        )
        return list_response(
            [self._group_resource(r) for r in page], total=total, start_index=start
        )

    def replace_group(
        self, group_id: str, body: Any, if_match: str | None
    ) -> tuple[dict[str, Any], str]:
        def change(record: ScimGroup) -> tuple[dict[str, Any], list[str]]:
            group = parse_group(body)
            return group_document(group), list(group.member_ids)

        return self._write_group(group_id, change, if_match)

    def patch_group(
        self, group_id: str, body: Any, if_match: str | None
    ) -> tuple[dict[str, Any], str]:
        return self._write_group(
            group_id,
            lambda record: apply_group_patch(record.document, list(record.members), body),
            if_match,
        )

    def delete_group(self, group_id: str) -> None:
        record = self._group(group_id)
        self.storage.delete_scim_group(self.store.key, self.conn.key, group_id)
        self._regroup(record.members)

    def _write_group(
        self,
        group_id: str,
        change: Callable[[ScimGroup], tuple[dict[str, Any], list[str]]],
        if_match: str | None,
    ) -> tuple[dict[str, Any], str]:
        expected = version_of(if_match)
        record = self._group(group_id)
        if expected is not None and expected != record.version:
            raise ScimError(412, "The group changed since that version.")
        document, members = change(record)
        group = parse_group({**document, "members": [{"value": m} for m in members]})
        self._known_members(tuple(members))
        updated = replace(
            record,
            display_name=group.display_name,
            external_id=group.external_id,
            document=group_document(group),
            members=tuple(dict.fromkeys(members)),
            updated_at=self._now(),
        )
        try:
            stored = self.storage.replace_scim_group(updated, expected_version=record.version)
        except AlreadyExists:
            raise ScimError(409, "A group with this displayName exists.", "uniqueness") from None
        if stored is None:
            raise ScimError(412, "The group changed while this change was written; retry.")
        self._regroup((*record.members, *stored.members))
        return self._group_resource(stored), etag(stored.version)

    def _regroup(self, member_ids: tuple[str, ...] | list[str]) -> None:
        """Bring these users in line with their SCIM groups: the customer group
        (``customer_groups_by_group``: the first group of the map they are in; none: 0) and,
        with B2B Edition, the company and role the connection's binding gives those groups."""
        mapping = self.settings.customer_groups_by_group
        if not mapping and self.store.b2b is None:
            return
        api = self.runtime.store_api(self.store.key)
        for member in dict.fromkeys(member_ids):
            user = self.storage.get_scim_user(self.store.key, self.conn.key, member)
            if user is None or user.customer_id is None:
                continue
            names = [
                g.display_name
                for g in self.storage.groups_of_scim_user(self.store.key, self.conn.key, member)
            ]
            if mapping:
                api.update_customer_group(user.customer_id, customer_group_for(names, mapping) or 0)
            self._join_company(user, tuple(names))

    def _join_company(self, user: ScimUser, groups: tuple[str, ...]) -> None:
        """The SCIM user as the company user the connection's B2B binding says (the same
        step as at sign-in, with the directory's e-mail and the SCIM groups). No company
        found, or B2B Edition refusing, leaves it to the sign-in's own company step."""
        store = self.store
        if store.b2b is None or user.customer_id is None:
            return
        person = parse_user(user.document)
        identity = Identity(
            connection=self.conn.key,
            issuer=self._issuer(),
            subject=self._subject(person),
            email=user.email,
            email_verified=True,  # the company's directory says so
            first_name=person.given_name,
            last_name=person.family_name,
            groups=groups,
        )
        binding = binding_for(store.b2b, self.conn, connections=len(store.connections))
        plan = plan_for(identity, binding)
        if plan is None:
            return
        try:
            events = join_company(
                self.runtime.b2b_api(store.key),
                customer_id=user.customer_id,
                directory=self.runtime.store_api(store.key),
                identity=identity,
                plan=plan,
                settings=store.b2b,
                channel_ids=[store.channel_id],
            )
        except BrokerError as error:
            self._audit("scim.company", error.code, user)
            return
        if events:
            self._audit("scim.company", ",".join(events), user)

    def _known_members(self, member_ids: tuple[str, ...]) -> None:
        for member in member_ids:
            if self.storage.get_scim_user(self.store.key, self.conn.key, member) is None:
                raise ScimError(400, f"No user {member[:64]!r} of this connection.", "invalidValue")

    def _group(self, group_id: str) -> ScimGroup:
        record = self.storage.get_scim_group(self.store.key, self.conn.key, group_id)
        if record is None:
            raise ScimError(404, "No such group.")
        return record

    def _group_resource(self, record: ScimGroup) -> dict[str, Any]:
        members = [
            {"value": member, "$ref": f"{self.base}/Users/{member}"} for member in record.members
        ]
        return group_resource(
            record.document,
            id=record.id,
            created=record.created_at,
            updated=record.updated_at,
            version=record.version,
            location=f"{self.base}/Groups/{record.id}",
            members=members,
        )

    def _audit(self, event: str, outcome: str, record: ScimUser) -> None:
        self.storage.record_audit(
            AuditEntry(
                at=self._now(),
                store=self.store.key,
                event=event,
                outcome=outcome,
                connection=self.conn.key,
                customer_id=record.customer_id,
                detail=f"scim user {record.id}",
            )
        )


__all__ = ["ScimService", "etag", "version_of"]
