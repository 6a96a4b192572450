"""The GraphQL Account API's schema and its execution: a body in, a GraphQL answer out.

No IO, no framework, no lock (:class:`~broker.sandbox.store.account_desk.AccountDesk` holds
the state's lock while :func:`answer` runs): the schema is SDL (:data:`SDL`) parsed,
validated and executed by graphql-core, its resolvers thin calls to
:mod:`~broker.sandbox.store.accounts`. Facts followed (``docs/bigcommerce-api.md``, "GraphQL
Account API"):

- ``{"query", "variables", "operationName"}`` in, ``{"data", "errors"}`` out; the query
  ``account { id accountInfo { name } users { edges { node { id email firstName lastName } } }
  stores { edges { node { id name storeHash users { ... } } } } }``, a store's users with
  ``locale lastLoginAt permissions status updatedAt`` too;
- the mutations ``account { addUserToAccount(input: {email}) { account }
  removeUserFromAccount(input: {email}) { accountId userId } }`` and ``user {
  addUserToStore(input: {user: {id} | {email}, storeId}) { storeId }
  removeUserFromStore(input: {storeId, userId}) { storeId user } }``;
- standard cursor-based pagination: ``edges { cursor node }``, ``pageInfo``.

Where the sandbox decides (not verified BigCommerce behaviour): a connection takes ``first``
(default 10, at most 50: more is ``BAD_USER_INPUT``) and ``after`` (an opaque cursor), and
answers ``collectionInfo { totalItems }``; users come in the order of their ids, stores in the
account's order; every GraphQL error is HTTP 200 (GraphQL over HTTP) with
``extensions.code``: the codes of :mod:`~broker.sandbox.store.accounts`, and
``GRAPHQL_PARSE_FAILED``, ``GRAPHQL_VALIDATION_FAILED``, ``BAD_USER_INPUT`` (variables that
do not fit), ``INTERNAL_SERVER_ERROR``; a body that is not JSON, not an object, or without a
string ``query`` is HTTP 400 with the same ``errors`` shape (code ``BAD_REQUEST``); a store
user's ``locale`` is "en-US", ``lastLoginAt`` null, ``permissions`` empty, ``status``
"active", ``updatedAt`` the last time the user joined or left one of the account's stores;
the users connections need ``account_users_read``, the account's id, name and stores only a
valid token.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    OperationDefinitionNode,
    build_schema,
    execute_sync,
    parse,
    validate,
)

from broker.sandbox.store import accounts
from broker.sandbox.store.accounts import (
    BAD_USER_INPUT,
    USERS_DELETE,
    USERS_READ,
    USERS_WRITE,
    Account,
    AccountError,
    AccountRegistry,
    AccountUser,
)
from broker.sandbox.store.data import StoreData
from broker.sandbox.store.model import JSONDict, iso

DEFAULT_FIRST = 10
MAX_FIRST = 50
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_ERROR = "INTERNAL_SERVER_ERROR"
BAD_REQUEST = "BAD_REQUEST"

SDL = """
type Query {
  account: Account
}

type Mutation {
  account: AccountMutations
  user: UserMutations
}

type Account {
  id: ID!
  accountInfo: AccountInfo!
  users(first: Int = 10, after: String): UserConnection!
  stores(first: Int = 10, after: String): StoreConnection!
}

type AccountInfo {
  name: String!
}

type User {
  id: ID!
  email: String!
  firstName: String
  lastName: String
  locale: String
  lastLoginAt: String
  permissions: [String!]!
  status: String!
  updatedAt: String
}

type Store {
  id: ID!
  name: String!
  storeHash: String!
  users(first: Int = 10, after: String): UserConnection!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

type CollectionInfo {
  totalItems: Int!
}

type UserEdge {
  cursor: String!
  node: User!
}

type UserConnection {
  edges: [UserEdge!]!
  pageInfo: PageInfo!
  collectionInfo: CollectionInfo!
}

type StoreEdge {
  cursor: String!
  node: Store!
}

type StoreConnection {
  edges: [StoreEdge!]!
  pageInfo: PageInfo!
  collectionInfo: CollectionInfo!
}

type AccountMutations {
  addUserToAccount(input: AddUserToAccountInput!): AddUserToAccountResult
  removeUserFromAccount(input: RemoveUserFromAccountInput!): RemoveUserFromAccountResult
}

input AddUserToAccountInput {
  email: String!
}

type AddUserToAccountResult {
  account: Account!
  user: User!
}

input RemoveUserFromAccountInput {
  email: String!
}

type RemoveUserFromAccountResult {
  accountId: ID!
  userId: ID!
}

type UserMutations {
  addUserToStore(input: AddUserToStoreInput!): AddUserToStoreResult
  removeUserFromStore(input: RemoveUserFromStoreInput!): RemoveUserFromStoreResult
}

input UserReference {
  id: ID
  email: String
}

input AddUserToStoreInput {
  user: UserReference!
  storeId: ID!
}

type AddUserToStoreResult {
  storeId: ID!
  user: User!
}

input RemoveUserFromStoreInput {
  storeId: ID!
  userId: ID!
}

type RemoveUserFromStoreResult {
  storeId: ID!
  user: User!
}
"""

SCHEMA = build_schema(SDL)

_T = TypeVar("_T")


@dataclass(frozen=True)
class AccountCall:
    """What one request's resolvers see: the registry, the account, every store, the time."""

    registry: AccountRegistry
    account: Account
    stores: Mapping[str, StoreData]
    now: float


@dataclass(frozen=True)
class GraphQLAnswer:
    """The HTTP status and JSON body of one request; its operation name and error codes."""

    status: int
    body: JSONDict
    operation: str | None
    codes: tuple[str, ...] = ()


def answer(call: AccountCall, raw: bytes) -> GraphQLAnswer:
    """Parse, validate and execute one request body (a GraphQL error is still HTTP 200)."""
    try:
        payload: Any = json.loads(raw)
    except ValueError:
        return _bad_request("the body is not valid JSON")
    if not isinstance(payload, dict):
        return _bad_request("the body must be a JSON object")
    query, variables = payload.get("query"), payload.get("variables")
    operation_name = payload.get("operationName")
    if not isinstance(query, str):
        return _bad_request("query must be a string")
    if variables is not None and not isinstance(variables, dict):
        return _bad_request("variables must be a JSON object")
    if operation_name is not None and not isinstance(operation_name, str):
        return _bad_request("operationName must be a string")
    try:
        document = parse(query)
    except GraphQLError as error:
        return _failed([error], PARSE_FAILED, operation_name)
    operation = operation_name or _sole_operation(document)
    invalid = validate(SCHEMA, document)
    if invalid:
        return _failed(invalid, VALIDATION_FAILED, operation)
    result = execute_sync(
        SCHEMA,
        document,
        context_value=call,
        variable_values=variables,
        operation_name=operation_name,
    )
    if result.data is None:  # nothing ran: the variables or the operation name do not fit
        return _failed(result.errors or [], BAD_USER_INPUT, operation)
    body: JSONDict = {"data": result.data}
    errors = [_formatted(e, INTERNAL_ERROR) for e in result.errors or []]
    if errors:
        body = {"errors": errors, **body}
    return GraphQLAnswer(200, body, operation, _codes(errors))


def operation_of(raw: bytes) -> str | None:
    """The operation a body names, for the request log of a refused request (best effort)."""
    try:
        payload: Any = json.loads(raw)
        if not isinstance(payload, dict):
            return None
        named = payload.get("operationName")
        if isinstance(named, str):
            return named
        query = payload.get("query")
        return _sole_operation(parse(query)) if isinstance(query, str) else None
    except (ValueError, GraphQLError):
        return None


def _sole_operation(document: DocumentNode) -> str | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None:
        return None
    return operations[0].name.value


def _formatted(error: GraphQLError, default_code: str) -> JSONDict:
    found: JSONDict = dict(error.formatted)
    original = error.original_error
    code = original.code if isinstance(original, AccountError) else default_code
    found["extensions"] = {**(found.get("extensions") or {}), "code": code}
    return found


def _codes(errors: Sequence[JSONDict]) -> tuple[str, ...]:
    return tuple(str(e["extensions"]["code"]) for e in errors)


def _failed(errors: Sequence[GraphQLError], code: str, operation: str | None) -> GraphQLAnswer:
    found = [_formatted(e, code) for e in errors]
    return GraphQLAnswer(200, {"errors": found}, operation, _codes(found))


def _bad_request(message: str) -> GraphQLAnswer:
    error = {"message": message, "extensions": {"code": BAD_REQUEST}}
    return GraphQLAnswer(400, {"errors": [error]}, None, (BAD_REQUEST,))


# -- nodes and connections -------------------------------------------------------------------


def _user_node(user: AccountUser) -> JSONDict:
    return {
        "id": accounts.user_gid(user.id),
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "locale": "en-US",
        "lastLoginAt": None,
        "permissions": [],
        "status": "active",
        "updatedAt": iso(user.updated_at),
    }


def _account_node(call: AccountCall) -> JSONDict:
    return {"id": accounts.account_gid(call.account), "accountInfo": {"name": call.account.name}}


def _store_node(st: StoreData) -> JSONDict:
    store_hash = st.settings.store_hash
    return {"id": accounts.store_gid(store_hash), "name": st.settings.name, "storeHash": store_hash}


def _cursor(key: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{key}".encode()).decode()


def _after_key(after: str) -> int:
    try:
        text = base64.urlsafe_b64decode(after.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    digits = text.removeprefix("cursor:")
    if not text.startswith("cursor:") or not digits.isascii() or not digits.isdigit():
        raise AccountError(BAD_USER_INPUT, f"after: {after!r} is not a cursor")
    return int(digits)


def _connection(
    items: Sequence[_T],
    key: Callable[[_T], int],
    node: Callable[[_T], JSONDict],
    first: int | None,
    after: str | None,
) -> JSONDict:
    """One page of ``items`` (sorted by ``key``): the items after the cursor ``after``."""
    size = DEFAULT_FIRST if first is None else first
    if not 0 <= size <= MAX_FIRST:
        raise AccountError(BAD_USER_INPUT, f"first must be between 0 and {MAX_FIRST}")
    start = None if after is None else _after_key(after)
    rest = [item for item in items if start is None or key(item) > start]
    edges = [{"cursor": _cursor(key(item)), "node": node(item)} for item in rest[:size]]
    return {
        "edges": edges,
        "pageInfo": {
            "hasNextPage": len(rest) > size,
            "hasPreviousPage": len(rest) < len(items),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
        "collectionInfo": {"totalItems": len(items)},
    }


def _user_key(user: AccountUser) -> int:
    return user.id


# -- resolvers -------------------------------------------------------------------------------


def _call(info: GraphQLResolveInfo) -> AccountCall:
    call: AccountCall = info.context
    return call


def _resolve_account(_root: object, info: GraphQLResolveInfo) -> JSONDict:
    return _account_node(_call(info))


def _resolve_account_users(
    _account: JSONDict, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None
) -> JSONDict:
    call = _call(info)
    accounts.check_scope(call.account, USERS_READ)
    users = accounts.account_users(call.account)
    return _connection(users, _user_key, _user_node, first, after)


def _resolve_stores(
    _account: JSONDict, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None
) -> JSONDict:
    call = _call(info)
    order = {h: i for i, h in enumerate(call.account.store_hashes)}
    found = accounts.account_stores(call.account, call.stores)
    return _connection(found, lambda st: order[st.settings.store_hash], _store_node, first, after)


def _resolve_store_users(
    store: JSONDict, info: GraphQLResolveInfo, first: int | None = None, after: str | None = None
) -> JSONDict:
    call = _call(info)
    accounts.check_scope(call.account, USERS_READ)
    st = call.stores[store["storeHash"]]
    users = accounts.store_users(call.registry, call.account, st)
    return _connection(users, _user_key, _user_node, first, after)


def _namespace(_root: object, _info: GraphQLResolveInfo) -> JSONDict:
    """``mutation { account { ... } }`` and ``mutation { user { ... } }``: groups only."""
    return {}


def _add_user_to_account(_ns: JSONDict, info: GraphQLResolveInfo, **args: Any) -> JSONDict:
    call = _call(info)
    accounts.check_scope(call.account, USERS_WRITE)
    user = accounts.add_to_account(call.registry, call.account, args["input"]["email"], call.now)
    return {"account": _account_node(call), "user": _user_node(user)}


def _remove_user_from_account(_ns: JSONDict, info: GraphQLResolveInfo, **args: Any) -> JSONDict:
    call = _call(info)
    accounts.check_scope(call.account, USERS_DELETE)
    user = accounts.remove_from_account(call.account, call.stores, args["input"]["email"])
    return {"accountId": accounts.account_gid(call.account), "userId": accounts.user_gid(user.id)}


def _add_user_to_store(_ns: JSONDict, info: GraphQLResolveInfo, **args: Any) -> JSONDict:
    call = _call(info)
    accounts.check_scope(call.account, USERS_WRITE)
    fields = args["input"]
    st, user = accounts.add_to_store(
        call.registry, call.account, call.stores, fields["storeId"], fields["user"], call.now
    )
    return {"storeId": accounts.store_gid(st.settings.store_hash), "user": _user_node(user)}


def _remove_user_from_store(_ns: JSONDict, info: GraphQLResolveInfo, **args: Any) -> JSONDict:
    call = _call(info)
    accounts.check_scope(call.account, USERS_DELETE)
    fields = args["input"]
    st, user = accounts.remove_from_store(
        call.account, call.stores, fields["storeId"], fields["userId"], call.now
    )
    return {"storeId": accounts.store_gid(st.settings.store_hash), "user": _user_node(user)}


_RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Query": {"account": _resolve_account},
    "Mutation": {"account": _namespace, "user": _namespace},
    "Account": {"users": _resolve_account_users, "stores": _resolve_stores},
    "Store": {"users": _resolve_store_users},
    "AccountMutations": {
        "addUserToAccount": _add_user_to_account,
        "removeUserFromAccount": _remove_user_from_account,
    },
    "UserMutations": {
        "addUserToStore": _add_user_to_store,
        "removeUserFromStore": _remove_user_from_store,
    },
}


def _attach(resolvers: Mapping[str, Mapping[str, Callable[..., Any]]]) -> None:
    """Give the schema's fields their resolvers (the others read the parent's dict)."""
    for type_name, fields in resolvers.items():
        found = SCHEMA.type_map[type_name]
        assert isinstance(found, GraphQLObjectType)
        for name, resolver in fields.items():
            found.fields[name].resolve = resolver


_attach(_RESOLVERS)
