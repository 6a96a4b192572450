"""BigCommerce's REST conventions, shared by every endpoint of the sandbox's management API.

No IO, no framework. Facts followed (``docs/bigcommerce-api.md``, "Customers V3"):

- an error answer is ``{"status", "title", "type", "errors": {...}}`` (the sandbox never sends
  the optional ``instance``);
- an unknown query parameter is 422 ("The filter(s) are not valid"), as are empty or
  non-numeric ``:in`` lists; ``:in`` filters take comma-separated values, repeated or not;
- lists are paged by ``page`` (from 1) and ``limit`` (default 50, at most 250: "most likely",
  the documents say) and answer ``meta.pagination`` = ``{total, count, per_page,
  current_page, total_pages, links}``, ``links`` holding ``current`` and, where there is one,
  ``previous`` and ``next`` (query strings that keep the other parameters).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from broker.sandbox.store.model import JSONDict, copy_json

ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
INVALID_FILTERS = "The filter(s) are not valid"
DEFAULT_LIMIT = 50
MAX_LIMIT = 250


class ApiError(Exception):
    """An API answer in BigCommerce's error shape, with the headers it carries."""

    def __init__(
        self,
        status: int,
        title: str,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})


def error_body(error: ApiError) -> JSONDict:
    return {
        "status": error.status,
        "title": error.title,
        "type": ERROR_TYPE,
        "errors": error.errors,
    }


@dataclass(frozen=True)
class ApiRequest:
    """One request to the management API, as the HTTP layer hands it over."""

    method: str
    version: str  # "v2" or "v3"
    rest: str  # the path after /stores/<hash>/<version>/
    args: MultiDict[str, str]
    body: bytes
    token: str | None  # X-Auth-Token
    host_url: str  # the sandbox's own root URL, for the storefront URLs of /v3/sites
    # whose X-Auth-Token it is (set once checked): an installed app's client id, None for
    # the store's own token
    client_id: str | None = None


@dataclass
class ApiReply:
    """A successful answer (errors are :class:`ApiError`): status, JSON body, headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON") from None


# -- query parameters ------------------------------------------------------------------------


def reject_unknown_params(args: MultiDict[str, str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        errors = {name: "unknown query parameter" for name in unknown}
        raise ApiError(422, INVALID_FILTERS, errors)


def str_list(args: MultiDict[str, str], name: str) -> list[str]:
    values = [v.strip() for raw in args.getlist(name) for v in raw.split(",") if v.strip()]
    if not values:
        raise ApiError(422, INVALID_FILTERS, {name: "must not be empty"})
    return values


def int_list(args: MultiDict[str, str], name: str) -> list[int]:
    values = str_list(args, name)
    if not all(re.fullmatch(r"\d+", v) for v in values):
        raise ApiError(422, INVALID_FILTERS, {name: "must be integers"})
    return [int(v) for v in values]


def int_param(
    args: MultiDict[str, str], name: str, default: int, minimum: int, maximum: int | None
) -> int:
    raw = args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or int(raw) < minimum or (maximum and int(raw) > maximum):
        bound = f" and at most {maximum}" if maximum else ""
        raise ApiError(422, INVALID_FILTERS, {name: f"must be >= {minimum}{bound}"})
    return int(raw)


# -- pagination ------------------------------------------------------------------------------


def paging(args: MultiDict[str, str]) -> tuple[int, int]:
    """The ``page`` and ``limit`` asked for, checked."""
    page = int_param(args, "page", 1, 1, None)
    limit = int_param(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return page, limit


def page_of(matches: list[JSONDict], args: MultiDict[str, str], page: int, limit: int) -> JSONDict:
    """One page of ``matches`` as a list answer: copies of its items, and the pagination."""
    total_pages = math.ceil(len(matches) / limit)
    data = [copy_json(item) for item in matches[(page - 1) * limit : page * limit]]
    pagination = {
        "total": len(matches),
        "count": len(data),
        "per_page": limit,
        "current_page": page,
        "total_pages": total_pages,
        "links": _page_links(args, page, limit, total_pages),
    }
    return {"data": data, "meta": {"pagination": pagination}}


def _page_links(args: MultiDict[str, str], page: int, limit: int, pages: int) -> JSONDict:
    kept = [(k, v) for k, v in args.items(multi=True) if k not in ("page", "limit")]

    def link(number: int) -> str:
        return "?" + urlencode([*kept, ("page", str(number)), ("limit", str(limit))])

    links: JSONDict = {"current": link(page)}
    if page > 1:
        links["previous"] = link(page - 1)
    if page < pages:
        links["next"] = link(page + 1)
    return links
