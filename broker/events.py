"""Structured log lines: one JSON object per event on the ``broker`` logger.

Callers pass only fields that are safe to keep: store and connection keys, customer ids,
outcomes, reference ids. Never tokens, secrets, codes, assertions, e-mail addresses or names.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

logger = logging.getLogger("broker")


def log_event(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    record = {"ts": round(time.time(), 3), "event": event}
    record.update({k: v for k, v in fields.items() if v is not None})
    logger.log(level, json.dumps(record, default=str, sort_keys=False))


def configure_logging(level: int = logging.INFO) -> None:
    """Send broker events to stderr as bare JSON lines (idempotent)."""
    if any(getattr(h, "_broker", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._broker = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
