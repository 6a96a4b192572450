"""``GET /metrics`` (Prometheus text format) and the JSON log lines, over real HTTP.

The broker runs in a thread (its metrics are the process's: counts are compared before and
after) and, for the multi-process mode and gunicorn's own log lines, under ``broker serve``
with two workers. Labels carry only configured keys and codes, never an e-mail.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from broker.sandbox.idp import DevClient, DevUser
from tests.conftest import BrokerServer, DevIdP, Sandbox, World
from tests.support.broker_log import LogLines
from tests.support.flows import Outcome, dev_idp_sign_in, sign_in, start_login
from tests.support.serve import broker_serve
from tests.support.settings import document as settings_document
from tests.support.settings import oidc_connection, store_table

ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(http: httpx.Client, url: str, **headers: str) -> str:
    response = http.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


SIGNED_IN = {"store": "acme", "connection": "corp", "outcome": "signed_in"}


def test_a_sign_in_increments_the_counters_and_histograms(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    url = world.broker.url
    before = scrape(browser_http, url)
    outcome = sign_in(browser_http, url, "alice@example.com")
    assert outcome.status == 302, outcome.response.text
    after = scrape(browser_http, url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("broker_signins_total", **SIGNED_IN) == 1
    assert grew("broker_signin_duration_seconds_count", outcome="signed_in") == 1
    # A new shopper: a lookup, then a create, each one request to the store's API.
    requests = [r for r in world.sandbox.state.requests("abc123") if r.status < 300]
    assert grew("broker_bigcommerce_requests_total", store="acme", api="store", status="200") + (
        grew("broker_bigcommerce_requests_total", store="acme", api="store", status="201")
    ) == len(requests)
    assert grew("broker_bigcommerce_request_duration_seconds_count", api="store") >= 2
    assert "alice" not in after  # no personal data in any label


def test_a_refused_sign_in_counts_its_code(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    url = world.broker.url
    before = scrape(browser_http, url)
    refused = Outcome(browser_http.get(f"{url}/acme/oidc/corp/callback?state=forged&code=x"))
    assert refused.status == 400
    after = scrape(browser_http, url)
    assert (
        value(after, "broker_refusals_total", code="flow_expired")
        - value(before, "broker_refusals_total", code="flow_expired")
        == 1
    )
    labels = {"store": "acme", "connection": "corp", "outcome": "refused"}
    assert (
        value(after, "broker_signins_total", **labels)
        - value(before, "broker_signins_total", **labels)
        == 1
    )
    assert value(after, "broker_signins_total", **SIGNED_IN) == value(
        before, "broker_signins_total", **SIGNED_IN
    )


def test_names_from_the_url_never_become_labels(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    url = world.broker.url
    for path in ("/acme/oidc/made-up/callback?state=x", "/nostore/oidc/corp/callback?state=x"):
        assert browser_http.get(url + path).status_code == 404
    text = scrape(browser_http, url)
    assert "made-up" not in text
    assert "nostore" not in text


def test_429s_from_the_store_are_counted(
    make_world: Callable[..., World], browser_http: httpx.Client
) -> None:
    world = make_world()
    url = world.broker.url
    world.sandbox.state.set_faults("abc123", status=429, count=1, reset_ms=10)
    before = scrape(browser_http, url)
    outcome = sign_in(browser_http, url, "alice@example.com")
    assert outcome.status == 302, outcome.response.text  # retried after the reset
    after = scrape(browser_http, url)
    name = "broker_bigcommerce_rate_limited_total"
    assert (
        value(after, name, store="acme", api="store")
        - value(before, name, store="acme", api="store")
        == 1
    )


def test_metrics_token_is_required_when_set(
    sandbox: Sandbox,
    dev_idp: DevIdP,
    make_broker: Callable[..., BrokerServer],
    browser_http: httpx.Client,
) -> None:
    token = secrets.token_urlsafe(16)
    store = sandbox.add_store("abc123")
    corp = oidc_connection(dev_idp.url, "secret")
    broker = make_broker(
        lambda base_url: settings_document(
            base_url,
            {"acme": store_table(sandbox.url, store, connections={"corp": corp})},
            metrics_token=token,
        )
    )
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        refused = browser_http.get(f"{broker.url}/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "broker_signins" not in refused.text
    assert "broker_signins" in scrape(browser_http, broker.url, Authorization=f"Bearer {token}")


# -- the log lines ---------------------------------------------------------------------------


def test_log_lines_carry_the_request_id_and_the_sign_in_duration(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    url = world.broker.url
    outcome = sign_in(browser_http, url, "alice@example.com")
    assert outcome.status == 302
    request_id = outcome.response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{8}", request_id)
    [completed] = broker_log.events("signin.completed")
    assert completed["outcome"] == "signed_in"
    assert completed["store"] == "acme"
    assert completed["connection"] == "corp"
    assert isinstance(completed["duration_ms"], float)
    assert completed["duration_ms"] >= 0
    assert completed["request_id"] == request_id
    [ok] = broker_log.events("signin.ok")
    assert ok["request_id"] == request_id  # every line of that request carries it
    for line in broker_log.lines:
        assert ISO_TIME.match(line["time"]), line
        assert line["level"] in ("INFO", "WARNING", "ERROR")
        assert isinstance(line["ts"], float)
    assert "alice@example.com" not in "".join(broker_log.raw)


def test_the_reference_on_an_error_page_is_the_request_id(
    make_world: Callable[..., World], browser_http: httpx.Client, broker_log: LogLines
) -> None:
    world = make_world()
    refused = Outcome(browser_http.get(f"{world.broker.url}/acme/oidc/corp/callback?state=x"))
    assert refused.status == 400
    ref = refused.error_ref
    assert ref == refused.response.headers["X-Request-Id"]
    line = broker_log.for_ref(ref)
    assert line["event"] == "request.refused"
    assert line["request_id"] == ref
    assert line["level"] == "WARNING"
    [completed] = broker_log.events("signin.completed")
    assert completed["outcome"] == "refused"
    assert completed["code"] == "flow_expired"
    assert completed["request_id"] == ref
    # Another request, another id.
    again = Outcome(browser_http.get(f"{world.broker.url}/acme/oidc/corp/callback?state=y"))
    assert again.error_ref not in (None, ref)


# -- under gunicorn ------------------------------------------------------------------------


def test_broker_serve_logs_json_only_and_adds_up_its_workers_metrics(
    sandbox: Sandbox, dev_idp: DevIdP, tmp_path: Path
) -> None:
    store = sandbox.add_store("serve1")
    secret = secrets.token_urlsafe(24)

    def document(base_url: str) -> dict[str, Any]:
        dev_idp.state.add_client(
            DevClient("broker", secret, (f"{base_url}/acme/oidc/corp/callback",))
        )
        corp = oidc_connection(dev_idp.url, secret, link="auto")
        return settings_document(
            base_url,
            {"acme": store_table(sandbox.url, store, connections={"corp": corp})},
            database_url=f"sqlite:///{tmp_path / 'broker.db'}",
        )

    metrics_dir = tmp_path / "metrics"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    # Two people the IdP names (one without names would be asked them first).
    dev_idp.state.add_user(
        DevUser(
            sub="dev-dora",
            email="dora@example.com",
            password="password",
            given_name="Dora",
            family_name="Diaz",
        )
    )
    emails = ["alice@example.com", "dora@example.com"]
    with broker_serve(tmp_path, document, env=env, workers=2, threads=2) as url:
        for email in emails:  # a client each: new connections, spread over the workers
            with httpx.Client(follow_redirects=False, timeout=20) as http:
                authorize = start_login(http, url, "/acme/login/corp")
                landed = http.get(dev_idp_sign_in(http, authorize, email))
                assert landed.status_code == 302, landed.text
        with httpx.Client(timeout=20) as http:
            text = scrape(http, url)
    assert value(text, "broker_signins_total", **SIGNED_IN) == len(emails)
    assert list(metrics_dir.glob("*.db"))  # the workers' values, in files

    lines = (tmp_path / "server.log").read_text().splitlines()
    assert lines
    parsed = [json.loads(line) for line in lines]  # not one plain-text line
    for line in parsed:
        assert ISO_TIME.match(line["time"]), line
        assert "level" in line
    [start] = [line for line in parsed if line["event"] == "broker.starting"]
    assert start["stores"] == ["acme"]
    assert start["connections"] == ["acme/corp"]
    assert start["database"] == f"sqlite:///{tmp_path / 'broker.db'}"
    assert start["migrations_applied"][0] == "0001"  # a new database: every migration
    assert start["metrics_multiprocess"] is True
    gunicorn = [line for line in parsed if line.get("logger") == "gunicorn.error"]
    assert any("Booting worker" in line["message"] for line in gunicorn), gunicorn
    assert "alice@example.com" not in "\n".join(lines)
