"""The broker's Prometheus metrics (prometheus-client), served at ``GET /metrics``.

Labels carry only what the configuration names or the broker's own code decides: store and
connection keys, outcomes, error codes, HTTP status codes, the API asked. Never an e-mail, a
subject, a customer id, a path or anything else a shopper or an IdP can choose, so a flood of
odd requests cannot add series either.

One process (``broker demo``, the tests, one gunicorn worker): the default registry. Several
gunicorn workers: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory the workers may write;
prometheus-client then keeps each worker's values in files there (it decides when the first
metric is made, from the environment), ``broker serve`` empties it at start-up, and
``/metrics`` adds up every worker's files (:func:`render`). Without it, each worker would
answer with its own counts only.

Metrics are process-wide, as prometheus-client's registry is: several apps in one process (the
tests) share them, so tests compare counts before and after.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

#: The environment variable prometheus-client reads for its multi-process mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

SIGNINS = Counter(
    "broker_signins",
    "Sign-ins that reached their end, by store, connection and outcome (signed_in, confirm: "
    "the store password was asked for, name: the shopper's name was asked for, linked: from "
    "the storefront, refused)",
    ("store", "connection", "outcome"),
)
REFUSALS = Counter(
    "broker_refusals",
    "Requests refused with an error page or problem+json, by error code",
    ("code",),
)
BIGCOMMERCE_REQUESTS = Counter(
    "broker_bigcommerce_requests",
    "HTTP requests to BigCommerce (each attempt), by store, API and status (error: no answer)",
    ("store", "api", "status"),
)
BIGCOMMERCE_RATE_LIMITED = Counter(
    "broker_bigcommerce_rate_limited",
    "429 answers from BigCommerce, by store and API",
    ("store", "api"),
)
SIGNIN_SECONDS = Histogram(
    "broker_signin_duration_seconds",
    "Time of the request that completes a sign-in (the OIDC callback, the SAML ACS), by outcome",
    ("outcome",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
)
BIGCOMMERCE_SECONDS = Histogram(
    "broker_bigcommerce_request_duration_seconds",
    "Time of one HTTP request to BigCommerce (each attempt), by API",
    ("api",),
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def signin_finished(store: str, connection: str, outcome: str, seconds: float) -> None:
    SIGNINS.labels(store, connection, outcome).inc()
    SIGNIN_SECONDS.labels(outcome).observe(seconds)


def refused(code: str) -> None:
    REFUSALS.labels(code).inc()


def bigcommerce_answered(store: str, api: str, status: int | None, seconds: float) -> None:
    """One attempt of a request to BigCommerce: its status, or None when none came back."""
    BIGCOMMERCE_REQUESTS.labels(store, api, str(status) if status else "error").inc()
    BIGCOMMERCE_SECONDS.labels(api).observe(seconds)
    if status == 429:
        BIGCOMMERCE_RATE_LIMITED.labels(store, api).inc()


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def clear_multiprocess_dir() -> Path | None:
    """Before gunicorn starts its workers: make the directory, and drop the files of a previous
    run (their counts would be added to this one's)."""
    directory = multiprocess_dir()
    if directory is None:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return directory


def mark_worker_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: a worker's live gauges stop counting (none today; cheap)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def render() -> tuple[bytes, str]:
    """The text exposition of every metric (every worker's, in multi-process mode)."""
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
