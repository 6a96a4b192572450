"""gunicorn settings for running the broker with plain gunicorn, as ``broker serve`` sets
them: ``gunicorn -c python:broker.gunicorn_conf 'broker.app:create_app()'``.

gunicorn's own lines (start-up, workers) as JSON like the broker's (:mod:`broker.events`), no
access log (callback URLs carry authorization codes), and in Prometheus multi-process mode
(``PROMETHEUS_MULTIPROC_DIR``) a dead worker's files marked as such (:mod:`broker.metrics`).
Empty that directory before gunicorn starts: ``broker serve`` does.
"""

from __future__ import annotations

from typing import Any

from broker import metrics
from broker.events import gunicorn_logconfig

logconfig_dict = gunicorn_logconfig()
accesslog = None
worker_class = "gthread"
# Every gunicorn on a host shares one default control socket path; not ours.
control_socket_disable = True


def child_exit(_server: Any, worker: Any) -> None:
    metrics.mark_worker_dead(worker.pid)
