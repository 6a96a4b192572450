"""Records the storage tests make: unique keys, links and sessions with defaults."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from broker.storage import BrokerSession, Link, SQLStorage


def key() -> str:
    return uuid.uuid4().hex


def new_link(
    storage: SQLStorage, subject: str = "sub-1", customer_id: int = 7, **over: Any
) -> Link:
    values: dict[str, Any] = {
        "store": "acme",
        "issuer": "https://idp.example",
        "subject": subject,
        "customer_id": customer_id,
        "connection": "corp",
        "email": "pat@example.com",
        "now": 1000,
    }
    values.update(over)
    return storage.create_link(**values)


def new_session(storage: SQLStorage, **over: Any) -> BrokerSession:
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "status_key": uuid.uuid4().hex,
        "store": "acme",
        "connection": "corp",
        "customer_id": 7,
        "issuer": "https://idp.example",
        "subject": "sub-1",
        "created_at": 1000,
        "expires_at": 5000,
    }
    values.update(over)
    session = BrokerSession(**values)
    storage.create_session(session)
    return session


T = TypeVar("T")


def race(count: int, act: Callable[[], T]) -> list[T]:
    """``count`` threads doing ``act`` at the same moment; their results."""
    results: list[T] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait()
        result = act()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
