"""A WSGI app served by werkzeug in a thread on 127.0.0.1, for the demo and the tests.

Port 0 lets the OS pick a free port; the returned handle knows its URL and stops the server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

#: How often a serving thread looks for a shutdown request.
SHUTDOWN_POLL_SECONDS = 0.05


@dataclass
class RunningServer:
    url: str
    server: BaseWSGIServer

    @property
    def port(self) -> int:
        return int(self.server.server_port)


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningServer]:
    """Serve ``app`` in a daemon thread until the block ends."""
    server = make_server(host, port, app, threaded=True)
    # socketserver checks for shutdown every poll interval: its default 0.5 s was most of the
    # time of a short test (each stops several servers); 0.05 s costs nothing measurable.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
        name=f"wsgi-{server.server_port}",
    )
    thread.daemon = True
    thread.start()
    try:
        yield RunningServer(url=f"http://{host}:{server.server_port}", server=server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
