"""Real HTTP servers for tests (the demo's own helper, re-exported)."""

from broker.sandbox.serving import RunningServer, serve_in_thread

__all__ = ["RunningServer", "serve_in_thread"]
