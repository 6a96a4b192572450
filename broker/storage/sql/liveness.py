"""Checking a pooled PostgreSQL connection is alive only when it may not be.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` at every checkout: a round trip to the
server, and about 0.2 ms of CPU in the broker, before each statement of a sign-in (three of the
six round trips a returning OIDC sign-in made). A connection handed back to the pool a moment
ago was alive a moment ago; the ping matters for one that sat idle, long enough for the server
to have restarted, a failover to have happened, or a firewall or ``idle_session_timeout`` to
have closed it.

So :func:`ping_when_idle` pings a connection at checkout only when it has been back in the pool
for ``idle_seconds`` or more (half a second by default, as HikariCP's ``aliveBypassWindowMs``);
a ping that fails makes the pool drop that connection and hand out another (SQLAlchemy's
``DisconnectionError`` from a ``checkout`` event). A fresh connection is not pinged: it was
just made. What this gives up: a server restart less than ``idle_seconds`` after a connection
was last used reaches the next statement on it, which fails as a lost connection does in a
statement (a ``StorageError``, the connection dropped, the next one new), once per pooled
connection at most. A broker busy enough to reuse its connections within the window saves the
ping on every statement; a quiet one pings as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

#: Back in the pool for less than this: alive, no ping.
IDLE_SECONDS = 0.5

_RETURNED_AT = "broker_returned_at"


def ping_when_idle(
    engine: Engine,
    idle_seconds: float = IDLE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Make ``engine``'s pool ping a connection at checkout when it has been idle for
    ``idle_seconds`` (0: after every return, as ``pool_pre_ping``)."""
    dialect = engine.dialect
    errors = dialect.loaded_dbapi.Error

    def returned(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_RETURNED_AT] = clock()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_RETURNED_AT, None)
        if since is None or clock() - since < idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except errors as exc:
            # The pool invalidates this connection and checks out a new one in its place.
            raise DisconnectionError(f"idle connection lost: {type(exc).__name__}") from exc

    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", checked_out)
