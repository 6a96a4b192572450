"""B2B Edition's management API for the sandbox store: companies and company users.

The real service lives at ``https://api-b2b.bigcommerce.com/api/v3/io``; the sandbox serves the
same paths at ``<sandbox root>/api/v3/io`` (see :mod:`broker.sandbox.store.management`, which
authenticates, applies the fault switches and B2B Edition's rate window and then calls
:func:`handle`; :mod:`broker.sandbox.store.state` logs the request). This module does no IO
and imports no web framework: it keeps one store's :class:`B2BBook` (companies and company
users) and reaches the store's customers only through the :class:`CustomerDirectory` it is
handed.

Facts followed (``docs/bigcommerce-api.md``, "B2B Edition"):

- every answer is the envelope ``{"code", "data", "meta": {"message", "pagination"}}``, with
  ``pagination`` = ``{"totalCount", "limit", "offset"}`` on lists; ``limit`` is 1-250 and
  defaults to 10, ``offset`` defaults to 0;
- a company user has ``id, companyId, customerId, firstName, lastName, email, phoneNumber,
  role, companyRoleId, companyRoleName, channelList, uuid, extraFields, createdAt, updatedAt``
  (timestamps in Unix seconds); roles are 0 admin, 1 senior buyer, 2 junior buyer;
- ``GET /users`` filters: ``email`` (the whole address), ``companyId``, ``roles`` (a list:
  ``roles=0&roles=1`` or ``roles=0,1``), ``q``, ``channelId``, ``min/maxCreated``,
  ``min/maxModified``; ``GET /users/customer/{customerId}`` is 404 when that customer is no
  company user;
- ``POST /users`` creates the BigCommerce customer too and answers ``{userId, bcId}``; when a
  customer with that e-mail exists (on the requested channels) and has no company user yet, it
  is linked instead; an e-mail that already belongs to a company user is 422 "Email already
  exists"; ``POST /users/bulk`` takes at most 10;
- a company has ``companyId, companyName, companyStatus, companyEmail, companyPhone,
  bcGroupId, bcGroupName, createdAt, updatedAt, extraFields``; status codes 0 pending,
  1 approved, 2 rejected, 3 inactive; ``GET /companies`` takes ``q`` (part of the name),
  ``customerId``, ``companyStatus``, paging, and lists the newest company first; a company with
  no admin left (its admin's customer deleted in BigCommerce) becomes inactive.

Where the documents are silent, the sandbox decides:

- unknown query parameters and unknown body fields are ignored; wrong types are 422 (ids and
  roles must be JSON integers, not numeric strings);
- ``email`` matches without regard to case, as BigCommerce's own duplicate check does;
- a company that is not approved refuses new users (422) unless the store's
  ``b2b_approved_companies_only`` switch is off; then an admin added to an inactive company
  approves it again;
- the last admin of a company may not be demoted or deleted, and its last user not deleted
  (422);
- ``PUT /users/{id}`` changes names, ``phoneNumber``, ``role``, ``companyRoleId`` and
  ``channelIds`` (names, phone and channels are copied to the customer); a different
  ``companyId`` or ``email`` is 422, never a silent move; it answers the updated user;
- ``DELETE /users/{id}`` keeps the BigCommerce customer;
- the built-in company roles have ``companyRoleId`` 0, 1 and 2 (the role's own number); any
  other id is a custom role named "Custom role <id>", whose ``role`` is the one sent (junior
  buyer when none is), and a ``companyRoleId`` overrides ``role``;
- a bulk create is validated whole and then made whole, or not at all; its data is the list of
  ``{userId, bcId}`` in request order;
- the new customer gets the company's ``bcGroupId`` as its customer group (0: no group), no
  password, the requested ``channelIds`` or else the store's default channel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from werkzeug.datastructures import MultiDict

JSONDict = dict[str, Any]

BASE_PATH = "/api/v3/io"
SUCCESS = "Success"  # the v3 list example's meta.message
UNAUTHORIZED = "Unauthorized: missing or invalid X-Auth-Token or X-Store-Hash"
EMAIL_EXISTS = "Email already exists"
LAST_ADMIN = "A company must keep at least one admin: its last admin cannot be demoted or deleted"
LAST_USER = "A company must keep at least one user: its last user cannot be deleted"
MAX_BULK = 10
DEFAULT_LIMIT = 10
MAX_LIMIT = 250
MAX_TEXT = 255

ROLE_ADMIN = 0
ROLE_SENIOR_BUYER = 1
ROLE_JUNIOR_BUYER = 2
ROLE_NAMES = {
    ROLE_ADMIN: "Admin",
    ROLE_SENIOR_BUYER: "Senior Buyer",
    ROLE_JUNIOR_BUYER: "Junior Buyer",
}

COMPANY_PENDING = 0
COMPANY_APPROVED = 1
COMPANY_REJECTED = 2
COMPANY_INACTIVE = 3
COMPANY_STATUSES = {
    "pending": COMPANY_PENDING,
    "approved": COMPANY_APPROVED,
    "rejected": COMPANY_REJECTED,
    "inactive": COMPANY_INACTIVE,
}


class B2BApiError(Exception):
    """An API answer other than success: its HTTP status and ``meta.message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DirectoryRefused(Exception):
    """The store refused a customer change (its own 422); the message says why."""


class CustomerDirectory(Protocol):
    """The one store's customers, as B2B Edition reaches them."""

    @property
    def channel_ids(self) -> tuple[int, ...]: ...

    @property
    def default_channel(self) -> int: ...

    def channel_name(self, channel_id: int) -> str: ...

    def customer(self, customer_id: int) -> JSONDict | None: ...

    def find_customer(self, email: str, channel_ids: list[int]) -> JSONDict | None:
        """The first customer with this e-mail (any case) who may use one of these channels."""
        ...

    def create_customer(self, values: JSONDict) -> JSONDict:
        """Create one customer from V3 fields; raises DirectoryRefused."""
        ...

    def update_customer(self, customer_id: int, values: JSONDict) -> JSONDict:
        """Change some V3 fields of one customer; raises DirectoryRefused."""
        ...


@dataclass
class B2BBook:
    """One store's B2B Edition data."""

    approved_companies_only: bool = True
    companies: dict[int, JSONDict] = field(default_factory=dict)
    users: dict[int, JSONDict] = field(default_factory=dict)
    next_company_id: int = 1
    next_user_id: int = 1


@dataclass(frozen=True)
class B2BRequest:
    method: str
    path: str  # after /api/v3/io/, without the leading slash
    args: MultiDict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Call:
    book: B2BBook
    directory: CustomerDirectory
    req: B2BRequest
    now: float
    item_id: int  # the number in the path, or 0


@dataclass(frozen=True)
class _NewUser:
    first_name: str
    last_name: str
    email: str
    company_id: int
    role: int
    company_role_id: int
    company_role_name: str
    phone: str
    channel_ids: list[int]
    origin_channel_id: int | None
    uuid: str
    link_to: int | None  # the existing customer to link, else None: create one


# -- the envelope --------------------------------------------------------------------------------


def envelope(
    status: int, data: Any, message: str = SUCCESS, pagination: JSONDict | None = None
) -> JSONDict:
    """B2B Edition's answer shape, for successes and errors alike."""
    meta: JSONDict = {"message": message}
    if pagination is not None:
        meta["pagination"] = pagination
    return {"code": status, "data": data, "meta": meta}


def error_envelope(status: int, message: str) -> JSONDict:
    return envelope(status, {}, message)


# -- dispatch ------------------------------------------------------------------------------------

_Handler = Callable[[_Call], tuple[int, JSONDict]]
_USER = re.compile(r"^users/(\d+)$")
_USER_BY_CUSTOMER = re.compile(r"^users/customer/(\d+)$")
_COMPANY = re.compile(r"^companies/(\d+)$")


def handle(
    book: B2BBook, directory: CustomerDirectory, req: B2BRequest, now: float
) -> tuple[int, JSONDict]:
    """The status and envelope of one authenticated request."""
    path = req.path.strip("/")
    try:
        handlers, item_id = _route(path)
        handler = handlers.get(req.method)
        if handler is None:
            raise B2BApiError(405, "Method not allowed")
        return handler(_Call(book, directory, req, now, item_id))
    except B2BApiError as exc:
        return exc.status, error_envelope(exc.status, exc.message)


def _route(path: str) -> tuple[dict[str, _Handler], int]:
    if path == "users":
        return {"GET": _list_users, "POST": _post_user}, 0
    if path == "users/bulk":
        return {"POST": _post_users_bulk}, 0
    if match := _USER.match(path):
        return {"GET": _get_user, "PUT": _put_user, "DELETE": _delete_user}, int(match[1])
    if match := _USER_BY_CUSTOMER.match(path):
        return {"GET": _get_user_by_customer}, int(match[1])
    if path == "companies":
        return {"GET": _list_companies}, 0
    if match := _COMPANY.match(path):
        return {"GET": _get_company}, int(match[1])
    raise B2BApiError(404, "Route not found")


# -- companies -------------------------------------------------------------------------------


def _list_companies(call: _Call) -> tuple[int, JSONDict]:
    args = call.req.args
    limit, offset = _paging(args)
    query = args.get("q", "").strip().lower()
    customer_id = _int_arg(args, "customerId")
    status = _int_arg(args, "companyStatus")
    if status is not None and status not in COMPANY_STATUSES.values():
        raise B2BApiError(422, "companyStatus must be 0, 1, 2 or 3")
    of_customer = {
        u["companyId"] for u in call.book.users.values() if u["customerId"] == customer_id
    }
    matches = [
        company
        for _, company in sorted(call.book.companies.items(), reverse=True)
        if query in company["companyName"].lower()
        and (customer_id is None or company["companyId"] in of_customer)
        and (status is None or company["companyStatus"] == status)
    ]
    return _page(matches, limit, offset)


def _get_company(call: _Call) -> tuple[int, JSONDict]:
    company = call.book.companies.get(call.item_id)
    if company is None:
        raise B2BApiError(404, "Company not found")
    return 200, envelope(200, _copy(company))


# -- users: reading --------------------------------------------------------------------------


def _list_users(call: _Call) -> tuple[int, JSONDict]:
    args = call.req.args
    limit, offset = _paging(args)
    email = args.get("email")
    company_id = _int_arg(args, "companyId")
    channel_id = _int_arg(args, "channelId")
    roles = _roles_arg(args)
    query = args.get("q", "").strip().lower()
    in_time = _time_filter(args)

    def matches(user: JSONDict) -> bool:
        company = call.book.companies.get(user["companyId"], {})
        searched = (user["firstName"], user["lastName"], user["email"], company.get("companyName"))
        return (
            (email is None or user["email"].lower() == email.strip().lower())
            and (company_id is None or user["companyId"] == company_id)
            and (roles is None or user["role"] in roles)
            and (
                channel_id is None or any(c["channelId"] == channel_id for c in user["channelList"])
            )
            and (not query or any(query in str(text or "").lower() for text in searched))
            and in_time(user)
        )

    return _page([u for _, u in sorted(call.book.users.items()) if matches(u)], limit, offset)


def _get_user(call: _Call) -> tuple[int, JSONDict]:
    return 200, envelope(200, _copy(_user(call.book, call.item_id)))


def _get_user_by_customer(call: _Call) -> tuple[int, JSONDict]:
    user = user_of_customer(call.book, call.item_id)
    if user is None:
        raise B2BApiError(404, "This customer is not a company user")
    return 200, envelope(200, user)


def user_of_customer(book: B2BBook, customer_id: int) -> JSONDict | None:
    """A copy of the company user of this BigCommerce customer, if there is one."""
    for user in book.users.values():
        if user["customerId"] == customer_id:
            return _copy(user)
    return None


# -- users: creating -------------------------------------------------------------------------


def _post_user(call: _Call) -> tuple[int, JSONDict]:
    body = _json_body(call.req.body)
    if not isinstance(body, dict):
        raise B2BApiError(422, "The request body must be a JSON object")
    new = _clean_new_user(call.book, call.directory, body, taken=set())
    return 200, envelope(200, _make_user(call.book, call.directory, new, call.now))


def _post_users_bulk(call: _Call) -> tuple[int, JSONDict]:
    body = _json_body(call.req.body)
    if not isinstance(body, list) or not body:
        raise B2BApiError(422, "The request body must be a non-empty JSON array of users")
    if len(body) > MAX_BULK:
        raise B2BApiError(422, f"At most {MAX_BULK} users per request")
    news: list[_NewUser] = []
    taken: set[str] = set()
    problems: list[str] = []
    for index, item in enumerate(body):
        try:
            if not isinstance(item, dict):
                raise B2BApiError(422, "each user must be a JSON object")
            new = _clean_new_user(call.book, call.directory, item, taken=taken)
        except B2BApiError as exc:
            problems.append(f"[{index}] {exc.message}")
            continue
        taken.add(new.email.lower())
        news.append(new)
    if problems:
        raise B2BApiError(422, "; ".join(problems))
    made = [_make_user(call.book, call.directory, new, call.now) for new in news]
    return 200, envelope(200, made)


def _clean_new_user(
    book: B2BBook, directory: CustomerDirectory, body: JSONDict, *, taken: set[str]
) -> _NewUser:
    """The checked fields of one new user, or B2BApiError (422) naming the first problem."""
    first_name = _text(body, "firstName", required=True)
    last_name = _text(body, "lastName", required=True)
    email = _text(body, "email", required=True)
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise B2BApiError(422, "email must be a valid e-mail address")
    phone = _text(body, "phoneNumber", required=False)
    uuid = _text(body, "uuid", required=False)
    company_id = _integer(body, "companyId", required=True)
    company = book.companies.get(company_id or 0)
    if company is None:
        raise B2BApiError(422, f"Company {company_id} does not exist")
    role, role_id, role_name = _resolve_role(body, current=None)
    channels = _channels(body, directory) or [directory.default_channel]
    origin = _integer(body, "originChannelId", required=False)
    if origin is not None and origin not in channels:
        raise B2BApiError(422, "originChannelId must be one of channelIds")
    if book.approved_companies_only and company["companyStatus"] != COMPANY_APPROVED:
        raise B2BApiError(422, "The company is not approved: it takes no new users")
    lowered = email.lower()
    if lowered in taken or any(u["email"].lower() == lowered for u in book.users.values()):
        raise B2BApiError(422, EMAIL_EXISTS)
    existing = directory.find_customer(email, channels)
    if existing is not None and user_of_customer(book, existing["id"]) is not None:
        raise B2BApiError(422, EMAIL_EXISTS)
    return _NewUser(
        first_name=first_name,
        last_name=last_name,
        email=email,
        company_id=company["companyId"],
        role=role,
        company_role_id=role_id,
        company_role_name=role_name,
        phone=phone,
        channel_ids=channels,
        origin_channel_id=origin,
        uuid=uuid,
        link_to=existing["id"] if existing is not None else None,
    )


def _make_user(book: B2BBook, directory: CustomerDirectory, new: _NewUser, now: float) -> JSONDict:
    """Create (or link) the customer, then the company user: ``{userId, bcId}``."""
    company = book.companies[new.company_id]
    group = company["bcGroupId"]
    try:
        if new.link_to is None:
            values: JSONDict = {
                "email": new.email,
                "first_name": new.first_name,
                "last_name": new.last_name,
                "phone": new.phone,
                "channel_ids": new.channel_ids,
                "customer_group_id": group,
            }
            if new.origin_channel_id is not None:
                values["origin_channel_id"] = new.origin_channel_id
            customer_id: int = directory.create_customer(values)["id"]
        else:
            customer_id = new.link_to
            if group:
                directory.update_customer(customer_id, {"customer_group_id": group})
    except DirectoryRefused as exc:
        raise B2BApiError(422, str(exc)) from None
    user = _store_user(
        book,
        directory,
        customer_id=customer_id,
        company_id=new.company_id,
        names=(new.first_name, new.last_name, new.email, new.phone),
        role=(new.role, new.company_role_id, new.company_role_name),
        channel_ids=new.channel_ids,
        uuid=new.uuid,
        now=now,
    )
    if (
        new.role == ROLE_ADMIN
        and company["companyStatus"] == COMPANY_INACTIVE
        and not book.approved_companies_only
    ):
        company.update(companyStatus=COMPANY_APPROVED, updatedAt=int(now))
    return {"userId": user["id"], "bcId": customer_id}


def _store_user(
    book: B2BBook,
    directory: CustomerDirectory,
    *,
    customer_id: int,
    company_id: int,
    names: tuple[str, str, str, str],
    role: tuple[int, int, str],
    channel_ids: list[int],
    uuid: str,
    now: float,
) -> JSONDict:
    first_name, last_name, email, phone = names
    stamp = int(now)
    user: JSONDict = {
        "id": book.next_user_id,
        "companyId": company_id,
        "customerId": customer_id,
        "firstName": first_name,
        "lastName": last_name,
        "email": email,
        "phoneNumber": phone,
        "role": role[0],
        "companyRoleId": role[1],
        "companyRoleName": role[2],
        "channelList": _channel_list(directory, channel_ids),
        "uuid": uuid,
        "extraFields": [],
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    book.users[user["id"]] = user
    book.next_user_id += 1
    return user


# -- users: changing and deleting ------------------------------------------------------------

_READ_ONLY = ("companyId", "email", "customerId")


def _put_user(call: _Call) -> tuple[int, JSONDict]:
    user = _user(call.book, call.item_id)
    body = _json_body(call.req.body)
    if not isinstance(body, dict):
        raise B2BApiError(422, "The request body must be a JSON object")
    for name in _READ_ONLY:
        if name in body and body[name] != user[name]:
            raise B2BApiError(422, f"{name} cannot be changed")
    changes: JSONDict = {}
    customer_changes: JSONDict = {}
    for name, bc_name in (("firstName", "first_name"), ("lastName", "last_name")):
        if name in body:
            changes[name] = customer_changes[bc_name] = _text(body, name, required=True)
    if "phoneNumber" in body:
        changes["phoneNumber"] = customer_changes["phone"] = _text(
            body, "phoneNumber", required=False
        )
    channels = _channels(body, call.directory)
    if channels is not None:
        changes["channelList"] = _channel_list(call.directory, channels)
        customer_changes["channel_ids"] = channels
    role, role_id, role_name = _resolve_role(body, current=user)
    if user["role"] == ROLE_ADMIN and role != ROLE_ADMIN and _is_last_admin(call.book, user):
        raise B2BApiError(422, LAST_ADMIN)
    changes.update(role=role, companyRoleId=role_id, companyRoleName=role_name)
    if customer_changes and call.directory.customer(user["customerId"]) is not None:
        try:
            call.directory.update_customer(user["customerId"], customer_changes)
        except DirectoryRefused as exc:
            raise B2BApiError(422, str(exc)) from None
    user.update(changes, updatedAt=int(call.now))
    return 200, envelope(200, _copy(user))


def _delete_user(call: _Call) -> tuple[int, JSONDict]:
    user = _user(call.book, call.item_id)
    others = [
        u for u in call.book.users.values() if u["companyId"] == user["companyId"] and u != user
    ]
    if not others:
        raise B2BApiError(422, LAST_USER)
    if user["role"] == ROLE_ADMIN and _is_last_admin(call.book, user):
        raise B2BApiError(422, LAST_ADMIN)
    del call.book.users[user["id"]]
    return 200, envelope(200, {})


def _is_last_admin(book: B2BBook, user: JSONDict) -> bool:
    return not any(
        u["companyId"] == user["companyId"] and u["role"] == ROLE_ADMIN and u["id"] != user["id"]
        for u in book.users.values()
    )


def customers_removed(book: B2BBook, customer_ids: Iterable[int], now: float) -> None:
    """BigCommerce customers were deleted: their company users go, and a company left with
    no admin becomes inactive."""
    gone = set(customer_ids)
    touched = {u["companyId"] for u in book.users.values() if u["customerId"] in gone}
    book.users = {i: u for i, u in book.users.items() if u["customerId"] not in gone}
    for company_id in touched:
        company = book.companies.get(company_id)
        has_admin = any(
            u["companyId"] == company_id and u["role"] == ROLE_ADMIN for u in book.users.values()
        )
        if company is not None and not has_admin and company["companyStatus"] == COMPANY_APPROVED:
            company.update(companyStatus=COMPANY_INACTIVE, updatedAt=int(now))


# -- seeding (the sandbox's own Python and control API) ------------------------------------------


def add_company(
    book: B2BBook,
    name: str,
    status: str | int,
    now: float,
    *,
    email: str = "",
    phone: str = "",
    bc_group_id: int = 0,
) -> JSONDict:
    """A new company; ValueError on bad input."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_TEXT:
        raise ValueError("name must be a non-empty string of at most 255 characters")
    code = company_status(status)
    if not isinstance(email, str) or not isinstance(phone, str):
        raise ValueError("email and phone must be strings")
    if not _is_int(bc_group_id) or bc_group_id < 0:
        raise ValueError("bc_group_id must be a non-negative integer")
    stamp = int(now)
    company: JSONDict = {
        "companyId": book.next_company_id,
        "companyName": name,
        "companyStatus": code,
        "companyEmail": email,
        "companyPhone": phone,
        "bcGroupId": bc_group_id,
        "bcGroupName": name if bc_group_id else "",
        "extraFields": [],
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    book.companies[company["companyId"]] = company
    book.next_company_id += 1
    return _copy(company)


def company_status(status: str | int) -> int:
    """The status code of a status name ("approved"...) or code (0-3); ValueError if neither."""
    if isinstance(status, str) and status in COMPANY_STATUSES:
        return COMPANY_STATUSES[status]
    if _is_int(status) and status in COMPANY_STATUSES.values():
        return int(status)
    raise ValueError(f"status must be one of {', '.join(COMPANY_STATUSES)} (or 0-3)")


def set_company_status(book: B2BBook, company_id: int, status: str | int, now: float) -> JSONDict:
    """Change a company's status, as the control panel can; LookupError if there is none."""
    company = book.companies.get(company_id) if _is_int(company_id) else None
    if company is None:
        raise LookupError(f"no company {company_id!r}")
    company.update(companyStatus=company_status(status), updatedAt=int(now))
    return _copy(company)


def add_company_user(
    book: B2BBook,
    directory: CustomerDirectory,
    customer_id: int,
    company_id: int,
    role: int,
    now: float,
) -> JSONDict:
    """Make an existing customer a user of a company, in any status (seeding sets up the world,
    so the approval switch does not apply); LookupError or ValueError."""
    customer = directory.customer(customer_id) if _is_int(customer_id) else None
    if customer is None:
        raise LookupError(f"no customer {customer_id!r}")
    company = book.companies.get(company_id) if _is_int(company_id) else None
    if company is None:
        raise LookupError(f"no company {company_id!r}")
    if not _is_int(role) or role not in ROLE_NAMES:
        raise ValueError("role must be 0 (admin), 1 (senior buyer) or 2 (junior buyer)")
    lowered = customer["email"].lower()
    if any(
        u["customerId"] == customer_id or u["email"].lower() == lowered for u in book.users.values()
    ):
        raise ValueError(EMAIL_EXISTS)
    channels = customer["channel_ids"] or list(directory.channel_ids)
    user = _store_user(
        book,
        directory,
        customer_id=customer_id,
        company_id=company_id,
        names=(customer["first_name"], customer["last_name"], customer["email"], customer["phone"]),
        role=(role, role, ROLE_NAMES[role]),
        channel_ids=channels,
        uuid="",
        now=now,
    )
    return _copy(user)


def users(book: B2BBook) -> list[JSONDict]:
    return [_copy(u) for _, u in sorted(book.users.items())]


def companies(book: B2BBook) -> list[JSONDict]:
    return [_copy(c) for _, c in sorted(book.companies.items())]


# -- checks and small helpers --------------------------------------------------------------------


def _user(book: B2BBook, user_id: int) -> JSONDict:
    user = book.users.get(user_id)
    if user is None:
        raise B2BApiError(404, f"User {user_id} not found")
    return user


def _resolve_role(body: JSONDict, current: JSONDict | None) -> tuple[int, int, str]:
    """(role, companyRoleId, companyRoleName) from a body; a companyRoleId overrides role."""
    role = _integer(body, "role", required=False)
    role_id = _integer(body, "companyRoleId", required=False)
    if role is not None and role not in ROLE_NAMES:
        raise B2BApiError(422, "role must be 0 (admin), 1 (senior buyer) or 2 (junior buyer)")
    if role_id is not None and role_id < 0:
        raise B2BApiError(422, "companyRoleId must be a non-negative integer")
    if role_id is not None:
        if role_id in ROLE_NAMES:
            return role_id, role_id, ROLE_NAMES[role_id]
        return (
            role if role is not None else ROLE_JUNIOR_BUYER,
            role_id,
            f"Custom role {role_id}",
        )
    if role is not None:
        return role, role, ROLE_NAMES[role]
    if current is None:
        raise B2BApiError(422, "role is required")
    return current["role"], current["companyRoleId"], current["companyRoleName"]


def _channels(body: JSONDict, directory: CustomerDirectory) -> list[int] | None:
    if "channelIds" not in body or body["channelIds"] is None:
        return None
    channels = body["channelIds"]
    if (
        not isinstance(channels, list)
        or not channels
        or not all(_is_int(c) and c in directory.channel_ids for c in channels)
    ):
        raise B2BApiError(422, "channelIds must be a non-empty list of the store's channel ids")
    return list(dict.fromkeys(channels))


def _channel_list(directory: CustomerDirectory, channel_ids: list[int]) -> list[JSONDict]:
    return [
        {"channelId": c, "channelName": directory.channel_name(c), "iconUrl": ""}
        for c in channel_ids
    ]


def _text(body: JSONDict, name: str, *, required: bool) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise B2BApiError(422, f"{name} must be a string of at most {MAX_TEXT} characters")
    if required and not value.strip():
        raise B2BApiError(422, f"{name} is required")
    return value


def _integer(body: JSONDict, name: str, *, required: bool) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise B2BApiError(422, f"{name} is required")
        return None
    if not _is_int(value):
        raise B2BApiError(422, f"{name} must be an integer")
    return int(value)


def _paging(args: MultiDict[str, str]) -> tuple[int, int]:
    limit = _int_arg(args, "limit")
    offset = _int_arg(args, "offset")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise B2BApiError(422, f"limit must be between 1 and {MAX_LIMIT}")
    return (DEFAULT_LIMIT if limit is None else limit), (offset or 0)


def _int_arg(args: MultiDict[str, str], name: str) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    if not re.fullmatch(r"\d{1,18}", raw.strip()):
        raise B2BApiError(422, f"{name} must be a non-negative integer")
    return int(raw)


def _roles_arg(args: MultiDict[str, str]) -> set[int] | None:
    raw = [v.strip() for value in args.getlist("roles") for v in value.split(",") if v.strip()]
    if not raw:
        return None
    if not all(v in ("0", "1", "2") for v in raw):
        raise B2BApiError(422, "roles may hold only 0 (admin), 1 (senior buyer), 2 (junior buyer)")
    return {int(v) for v in raw}


def _time_filter(args: MultiDict[str, str]) -> Callable[[JSONDict], bool]:
    bounds = [
        (field_name, name, later)
        for field_name, prefix in (("createdAt", "Created"), ("updatedAt", "Modified"))
        for name, later in ((f"min{prefix}", True), (f"max{prefix}", False))
    ]
    limits = [(f, _int_arg(args, name), later) for f, name, later in bounds]

    def accept(item: JSONDict) -> bool:
        return all(
            value is None or (item[f] > value if later else item[f] < value)
            for f, value, later in limits
        )

    return accept


def _page(items: list[JSONDict], limit: int, offset: int) -> tuple[int, JSONDict]:
    data = [_copy(item) for item in items[offset : offset + limit]]
    pagination = {"totalCount": len(items), "limit": limit, "offset": offset}
    return 200, envelope(200, data, pagination=pagination)


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise B2BApiError(400, "The request body is not valid JSON") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _copy(value: JSONDict) -> JSONDict:
    copied: JSONDict = json.loads(json.dumps(value))
    return copied
