"""The broker's own JSON log lines, as an operator reads them: the ``broker_log`` fixture
(tests/conftest.py) collects them while a test runs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class LogLines(logging.Handler):
    """The JSON lines of the ``broker`` logger (not the sandbox's or werkzeug's)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "broker":
            message = record.getMessage()
            self.raw.append(message)
            self.lines.append(json.loads(message))

    def for_ref(self, ref: str | None) -> dict[str, Any]:
        """The one line with this reference id (the one an error page shows)."""
        [line] = [line for line in self.lines if line.get("ref") == ref]
        return line

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]


@contextmanager
def collecting() -> Iterator[LogLines]:
    handler = LogLines()
    logger = logging.getLogger("broker")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
