"""Real HTTP servers for tests: a WSGI app served by werkzeug in a thread on 127.0.0.1.

The same as the demo's helper (:func:`broker.sandbox.serving.serve_in_thread`), except that it
stops at once: socketserver looks for a shutdown request only between two waits of
``poll_interval`` seconds, so stopping a server cost up to that long, and a test stops several.
Here the serving thread waits ``poll_interval`` (long: it costs nothing while idle) and is woken
by a connection to its own port right after the shutdown request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from werkzeug.serving import make_server

from broker.sandbox.serving import RunningServer

__all__ = ["RunningServer", "serve_in_thread"]

#: How long the serving thread waits between looks at a shutdown request when nothing wakes it.
POLL_SECONDS = 0.5
#: How long stopping may take before the thread is left behind (a daemon thread).
STOP_SECONDS = 5.0


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    """Serve ``app`` in a daemon thread until the block ends; stop it without waiting."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": POLL_SECONDS},
        name=f"wsgi-{server.server_port}",
        daemon=True,
    )
    thread.start()
    try:
        yield RunningServer(url=f"http://{host}:{server.server_port}", server=server)
    finally:
        _stop(server, thread)


def _stop(server: Any, thread: threading.Thread) -> None:
    # shutdown() sets the request and waits for serve_forever to return; run it in a thread and
    # poke the listening socket until it has returned, so the loop's select wakes up at once.
    stopper = threading.Thread(target=server.shutdown, daemon=True)
    stopper.start()
    address = server.server_address[:2]
    for _ in range(int(STOP_SECONDS / 0.01)):
        stopper.join(0.01)
        if not stopper.is_alive():
            break
        with suppress(OSError), socket.create_connection(address, timeout=0.5):
            pass
    server.server_close()
    thread.join(timeout=STOP_SECONDS)
