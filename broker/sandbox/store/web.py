"""What the sandbox store's blueprints share: the state of the app handling the request, and
JSON answers.

The blueprints import this, never :mod:`broker.sandbox.store.app` (which imports them), as the
broker's own blueprints use ``broker/web/context.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Response, current_app

from broker.sandbox.store.state import SandboxState

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
