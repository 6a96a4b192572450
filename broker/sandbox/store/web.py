"""What the sandbox store's blueprints share: the state of the app handling the request, and
JSON answers.

The blueprints import this, never :mod:`broker.sandbox.store.app` (which imports them), as the
broker's own blueprints use ``broker/web/context.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Response, current_app

from broker.sandbox.store.model import (
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
