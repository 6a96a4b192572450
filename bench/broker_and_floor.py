"""The broker with the floor's two routes in front of it, in one gunicorn worker: row (b2) of
``bench/signin_ratios.py``.

    BENCH_BROKER_CONFIG=broker.toml FLOOR_IDP_URL=... FLOOR_CLIENT_ID=... \\
    FLOOR_CLIENT_SECRET=... FLOOR_BASE_URL=http://127.0.0.1:PORT \\
    python -m gunicorn --worker-class gthread --workers 1 --threads 4 \\
        --logger-class bench.broker_and_floor.Logger bench.broker_and_floor:app

``/floor/login`` and ``/floor/callback`` go to :mod:`bench.floor`, everything else to the
broker (``create_app`` on the file, as ``broker serve`` builds it: its JSON log lines on
stderr, its objects frozen for the collector). A floor sign-in served here costs what the
floor's own process would, plus whatever the broker's process adds to the same code (its
heap, its threads, the broker's requests in between); a broker sign-in here, less the
floor's here, is the broker's own work.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from typing import Any

from bench.floor import create_app as create_floor
from bench.stripped import strip_from_env
from broker.app import create_app
from broker.events import configure_json_root, configure_logging, gunicorn_logger_class
from broker.settings.file import load_settings

#: gunicorn's logger as ``broker serve`` sets it (no access-log fields built).
Logger = gunicorn_logger_class()


def _dispatcher() -> Callable[..., Iterable[bytes]]:
    configure_logging()  # the broker's event lines written as broker serve writes them
    configure_json_root()
    # BENCH_STRIP (signin_ratios.py --strip): the broker without those parts.
    broker = strip_from_env(create_app(load_settings(os.environ["BENCH_BROKER_CONFIG"])))
    floor = create_floor()
    gc.collect()
    gc.freeze()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = floor if environ.get("PATH_INFO", "").startswith("/floor/") else broker
        return target(environ, start_response)

    return app


app = _dispatcher()
