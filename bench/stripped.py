"""The broker without the parts of a sign-in that keep its guarantees: what those parts cost.

For measurement only (``bench/signin_ratios.py --strip PARTS`` and ``--step-costs``); a broker
run this way is not safe to sign anyone in with. ``strip(app, parts)`` takes them out of an
app ``create_app`` built; run as a program, this is ``broker`` with every app stripped of the
parts ``BENCH_STRIP`` names (comma-separated, or ``all``):

    BENCH_STRIP=all python -m bench.stripped serve --config broker.toml --workers 1 --threads 4
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSession, SessionInterface

#: What each part is, as ``--strip`` names it.
PARTS = {
    "once": "the one-time store answers yes and writes nothing: flows, assertions and claims "
    "are no longer single-use",
    "record": "no session row, no audit row, no link touch at the end of a sign-in "
    "(record_sign_in does nothing; a B2B company kept on the link is never saved, so row (c) "
    "counts a refresh per sign-in)",
    "session": "Flask's signed session cookie is neither read nor written (no retry link, "
    "no remembered language)",
    "hooks": "no before/after/teardown request hooks (no request id, no security headers) "
    "but the one that lets a request's statements share a connection",
}


def parse_parts(text: str) -> list[str]:
    """``all``, or names from :data:`PARTS` separated by commas (``--strip``'s type)."""
    names = list(PARTS) if text.strip() == "all" else [p for p in text.split(",") if p]
    unknown = [name for name in names if name not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; known: {', '.join(PARTS)}, all")
    return names


class _NoSession(SessionInterface):
    def open_session(self, app: Flask, request: Any) -> SecureCookieSession:
        return SecureCookieSession()

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        return None


def strip(app: Flask, parts: Iterable[str]) -> Flask:
    """Take ``parts`` (names from :data:`PARTS`) out of a broker app, in place."""
    names = set(parts)
    storage = app.extensions["broker"].storage
    if "once" in names:
        storage.use_once = lambda *args, **kwargs: True
    if "record" in names:
        storage.record_sign_in = lambda *args, **kwargs: None
    if "session" in names:
        app.session_interface = _NoSession()
    if "hooks" in names:
        app.before_request_funcs.clear()
        app.after_request_funcs.clear()
        app.teardown_request_funcs.clear()
        # Not a guarantee but a saving: a request's statements share one connection.
        app.before_request(storage.hold_connection)
        app.teardown_request(lambda _error: storage.release_connection())
    return app


def strip_from_env(app: Flask) -> Flask:
    """``app`` stripped of the parts ``BENCH_STRIP`` names (none when it is unset)."""
    return strip(app, parse_parts(os.environ.get("BENCH_STRIP", "")))


def main() -> int:
    import broker.app
    from broker.cli import main as broker_main

    build = broker.app.create_app

    def create_stripped(*args: Any, **kwargs: Any) -> Flask:
        return strip_from_env(build(*args, **kwargs))

    broker.app.create_app = create_stripped  # broker serve imports it when it builds the app
    return broker_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
