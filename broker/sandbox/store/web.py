"""What the sandbox store's blueprints share: the state of the app handling the request, JSON
bodies and answers, and a connection reset.

The blueprints import this, never :mod:`broker.sandbox.store.app` (which imports them), as the
broker's own blueprints use ``broker/web/context.py``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from flask import Response, current_app, request

from broker.sandbox.store.model import (
    JSONDict,
    SandboxConflict,
    SandboxError,
    SandboxForbidden,
    SandboxNotFound,
)
from broker.sandbox.store.state import SandboxState

#: broker/sandbox/templates (the store's pages are its store/ folder).
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

EXTENSION = "sandbox"  # the key of the state in app.extensions


def sandbox_state() -> SandboxState:
    """The state :func:`~broker.sandbox.store.app.create_sandbox_app` made for this app."""
    state: SandboxState = current_app.extensions[EXTENSION]
    return state


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``body`` as JSON (None: an empty body), with these headers."""
    text = "" if body is None else json.dumps(body)
    return Response(text, status, headers=dict(headers or {}), mimetype="application/json")


def error_status(error: SandboxError) -> int:
    """The control API's status for one of the sandbox's own errors."""
    if isinstance(error, SandboxNotFound):
        return 404
    if isinstance(error, SandboxConflict):
        return 409
    if isinstance(error, SandboxForbidden):
        return 403
    return 422


def control_error(error: SandboxError) -> Response:
    """The control API's error answer: ``{"status", "title", "errors": {}}``."""
    status = error_status(error)
    return json_response({"status": status, "title": str(error), "errors": {}}, status)


def json_fields(allowed: Iterable[str] = ()) -> JSONDict:
    """The request's body: a JSON object with only these keys (any key when none is named; an
    empty body is ``{}``)."""
    raw = request.get_data()
    try:
        values: Any = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise SandboxError("the body is not valid JSON") from None
    if not isinstance(values, dict):
        raise SandboxError("the body must be a JSON object")
    known = set(allowed)
    unknown = sorted(set(values) - known) if known else []
    if unknown:
        raise SandboxError(f"unknown fields: {', '.join(unknown)}")
    return values


def reset_connection() -> Response:
    """Drop the client's connection without an answer: it reads nothing (its request failed
    in transit, as on a reset), then gets a TCP RST. Closing this socket object alone would
    do nothing: the server's file objects keep its descriptor open, and would write the
    answer below; shut down, the socket takes no more writes, and the server's own close
    sends the RST (SO_LINGER 0)."""
    connection = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if connection is not None:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
    return Response(status=500)  # written to a shut socket: never reaches the client
