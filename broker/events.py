"""Structured log lines: one JSON object per line, the broker's events and everything else.

Every line has ``time`` (ISO 8601, UTC, milliseconds: ``2026-12-02T10:00:00.123Z``), ``ts``
(the same instant in Unix seconds, kept for the scripts that read it), ``level`` (``INFO``,
``WARNING``, ``ERROR``) and ``event``; a line written while a request is handled also has that
request's ``request_id`` (the reference id its error page would show). The broker's own events
come from :func:`log_event` on the ``broker`` logger. Other loggers (gunicorn's, alembic's)
are written as JSON by :class:`JSONFormatter` with ``event = "log"``, their ``logger`` and
``message``: :func:`gunicorn_logconfig` gives gunicorn that formatter, so no plain-text line
is mixed in.

Callers pass only fields that are safe to keep: store and connection keys, customer ids,
outcomes, reference ids. Never tokens, secrets, codes, assertions, e-mail addresses or names.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger("broker")

#: The id of the request being handled in this thread (set by :mod:`broker.web.tracing`).
REQUEST_ID: ContextVar[str | None] = ContextVar("broker_request_id", default=None)


#: The last second formatted, and its text: lines come many to a second.
_last_second: tuple[int, str] = (-1, "")


def iso_time(ts: float) -> str:
    """``ts`` as ISO 8601 in UTC with milliseconds, e.g. ``2026-12-02T10:00:00.123Z``."""
    global _last_second
    millis = round(ts * 1000)
    seconds, ms = divmod(millis, 1000)
    known, text = _last_second  # one tuple, read and replaced whole: safe across threads
    if known != seconds:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, text)
    return f"{text}.{ms:03d}Z"


_LEVEL_NAMES = {level: logging.getLevelName(level) for level in (10, 20, 30, 40, 50)}


def _head(level: int, event: str, now: float) -> dict[str, Any]:
    record: dict[str, Any] = {
        "time": iso_time(now),
        "ts": round(now, 3),
        "level": _LEVEL_NAMES.get(level) or logging.getLevelName(level),
        "event": event,
    }
    request_id = REQUEST_ID.get()
    if request_id is not None:
        record["request_id"] = request_id
    return record


def log_event(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    record = _head(level, event, time.time())
    record.update({k: v for k, v in fields.items() if v is not None})
    logger.log(level, json.dumps(record, default=str, sort_keys=False))


class JSONFormatter(logging.Formatter):
    """Any logger's record as one JSON line (``event = "log"``). An exception is named with
    the last frames it passed through, never its message (it may quote a token)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "broker":  # already a JSON line of log_event
            return record.getMessage()
        line = _head(record.levelno, "log", record.created)
        line["logger"] = record.name
        line["message"] = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            frames = traceback.extract_tb(error.__traceback__)[-5:]
            line["error"] = type(error).__name__
            line["where"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in frames]
        return json.dumps(line, default=str)


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


#: Libraries whose INFO lines say nothing an operator needs (alembic's "setup plugin ...").
QUIET_LOGGERS = {
    "alembic.runtime.plugins": logging.WARNING,
    # httpx and httpcore write every request's URL at INFO (DEBUG): a customer lookup's
    # query names the shopper's e-mail address. Their warnings still come through.
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
}


def configure_json_root(level: int = logging.INFO) -> None:
    """Every other logger of the process (alembic at start-up, libraries) as JSON on stderr:
    ``broker serve`` calls this, so its output holds no plain-text line (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_broker", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    handler._broker = True  # type: ignore[attr-defined]
    root.handlers = [handler]
    root.setLevel(level)
    for name, quieter in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quieter)


def gunicorn_logger_class() -> type:
    """gunicorn's logger with its access log off for good. gunicorn builds every request's
    access-log fields (a dict of each header and environ entry) whenever ``logconfig_dict`` is
    set, even with the access logger silenced; this one never does: no access log is written
    anyway, since callback URLs carry authorization codes."""
    from gunicorn.glogging import Logger

    class NoAccessLog(Logger):  # type: ignore[misc]
        access_log_enabled = False  # in place of gunicorn's property: read on every request

    return NoAccessLog


def gunicorn_logconfig() -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log (start-up, workers booting and exiting) as
    JSON lines on stderr; its access log off (callback URLs carry authorization codes)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "broker.events.JSONFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            **{
                name: {"level": logging.getLevelName(quieter)}
                for name, quieter in QUIET_LOGGERS.items()
            },
        },
    }
