"""The leaf accessor of the web layer: the runtime of the app handling this request.

Blueprints import this, never ``broker.app`` (which imports them), so the import graph has no
cycle; as flaskr's views import ``flaskr.db``.
"""

from __future__ import annotations

from flask import current_app

from broker.runtime import Runtime


def runtime() -> Runtime:
    """The runtime ``create_app`` built for the current app."""
    found: Runtime = current_app.extensions["broker"]
    return found
