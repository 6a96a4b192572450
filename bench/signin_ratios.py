"""The figures of issue 16 in one run: SAML vs OIDC, OIDC vs its floor, B2B requests, SQL per
sign-in, and two broker instances on one PostgreSQL database.

    .venv/bin/python bench/signin_ratios.py                 # about 3 minutes on 2 cores
    .venv/bin/python bench/signin_ratios.py --rounds 3 --per-round 20 --no-scale
    .venv/bin/python bench/signin_ratios.py --src DIR       # another broker tree
    .venv/bin/python bench/signin_ratios.py --strip all     # the broker without its guarantees

Every figure is for a RETURNING shopper (linked already: each shopper signs in once, untimed,
before anything is measured). Printed, no timing asserted:

(a) **SAML ACS + continue / OIDC callback**: flows are staged untimed (the broker's /login and
    the IdP's form: the dev IdP for OIDC, the samlify IdP of the tests for SAML), then the
    broker's part of the answer is fired one request at a time: OIDC's callback GET; SAML's ACS
    POST and its continue GET. CPU per sign-in of the broker's gunicorn processes, each read
    from /proc/<pid>/stat as utime + stime + cutime + cstime (cutime/cstime: children the
    process has reaped, which is where an ``xmlsec1`` program's CPU lands), and the p50
    latency. Rounds alternate which protocol goes first.
(b) **OIDC whole sign-in / the floor**: whole sign-ins (broker /login -> IdP form -> broker
    callback) against the same dance through ``bench/floor.py``'s ``/floor/login`` and
    ``/floor/callback`` (state in a signed cookie, code redeemed, ID token verified, login JWT
    minted: nothing stored), same gunicorn settings; broker CPU / floor CPU per sign-in, and the
    p50 latency of the whole sign-in (which includes the IdP's steps, the same for both).
(b2) **the broker's own work**: a third server (``bench/broker_and_floor.py``: a broker with the
    floor's two routes in front of it, in one gunicorn worker, 1 x 4) serves broker sign-ins
    and floor sign-ins alternately; broker ÷ floor in that one worker is what the broker's own
    steps cost, and the floor there ÷ the floor in its own process is what being in a broker's
    process adds to the same code (skipped for a ``--src`` tree without that file).
(c) **B2B Edition requests per returning sign-in**, ``sync_role`` true and false, counted by
    the sandbox store (``/_sandbox/stores/H/requests``, paths under ``/api/v3/io``).
(d) **SQL statements and write transactions per returning sign-in**, OIDC and SAML, counted in
    this process: the same broker (``create_app`` on the same file and database) driven through
    Flask's test client against the same upstreams, with SQLAlchemy's ``before_cursor_execute``
    and ``commit`` events on its engine; on SQLite and on PostgreSQL.
(f) **what the guarantees cost** (``--step-costs``): in this process, two brokers on the same
    file and database, one of them stripped of one part of a sign-in (``bench/stripped.py``:
    the one-time store, the session and audit rows, Flask's session cookie, the request
    hooks), then of all of them; blocks of whole OIDC sign-ins alternate between the two, and
    the difference of this thread's CPU per sign-in (``/login`` and callback, Flask's test
    client included, the same for both) is what that part costs.
(e) **scale**: two ``broker serve`` instances (1 worker x 4 threads each) on one PostgreSQL
    database made for the run (``bench_<random>``, dropped at the end) on the server
    ``--postgres`` names; C shoppers at a time sign in, alternating instances: sign-ins per
    second, and database round trips per sign-in, counted by a small proxy between the brokers
    and PostgreSQL that reads the client's side of the wire protocol (one round trip per
    ``Sync`` of the extended protocol or per simple ``Query``; statements = ``Execute`` +
    ``Query``).

``--strip PARTS`` runs the brokers of (a)-(d) without those parts (``bench/stripped.py``: not
safe to sign anyone in with), to see how far from the floor a broker that keeps no guarantee
would be.

The broker runs under gunicorn, ``-w 1 --threads 4`` for (a)-(c). Everything listens on
127.0.0.1; the upstreams (sandbox store with B2B Edition, dev IdP) are a child process under
gunicorn as in ``bench/login.py``, whose plumbing this script imports.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
try:
    import httpx
except ImportError:
    VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
    if not VENV_PYTHON.exists() or Path(sys.executable) == VENV_PYTHON:
        raise
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # noqa: S606

from bench import login as lb  # noqa: E402 - after the virtualenv check
from bench import stripped  # noqa: E402

HOST = lb.HOST
SAML_CONN = "saml"
#: The broker's B2B stores: key -> (sandbox store hash, sync_role).
B2B_STORES = {"b2bsync": ("bench2", True), "b2bkeep": ("bench3", False)}
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def shopper(i: int) -> str:
    return f"shopper{i:05d}"


# -- the upstreams child: sandbox store (with B2B Edition) and development IdP ---------------


def build_upstreams(spec: dict[str, Any], idp_url: str | None) -> tuple[Any, Any]:
    """The sandbox stores (bench1 plain, bench2/bench3 with B2B Edition and one company) and
    the dev IdP with one client whose redirect URIs are every broker's and the floor's."""
    from broker.sandbox.idp import DevClient, DevUser, create_idp_app
    from broker.sandbox.store import SandboxStore, create_sandbox_app

    sandbox_app = create_sandbox_app()
    idp_app = create_idp_app(clients=(), users=(), issuer=idp_url)
    idp_state = idp_app.extensions["dev_idp"]
    idp_state.add_client(
        DevClient(
            client_id=lb.IDP_CLIENT_ID,
            client_secret=spec["idp_client_secret"],
            redirect_uris=tuple(spec["redirect_uris"]),
        )
    )
    for i in range(spec["users"]):
        idp_state.add_user(
            DevUser(
                sub=f"bench-{i:05d}",
                email=lb.user_email(i),
                password=lb.PASSWORD,
                given_name="Bench",
                family_name=f"Shopper{i}",
                groups=("buyers",),
            )
        )
    store_state = sandbox_app.extensions["sandbox"]
    for store_hash in (lb.STORE_HASH, *(h for h, _ in B2B_STORES.values())):
        b2b = store_hash != lb.STORE_HASH
        store_state.add_store(
            SandboxStore(
                store_hash=store_hash,
                access_token=spec["store_token"],
                client_id=spec["store_client_id"],
                client_secret=spec["store_secret"],
                name=f"Bench store {store_hash}",
                b2b_token=spec["b2b_token"] if b2b else None,
            )
        )
        store_state.set_faults(store_hash, quota=10**9)
        if b2b:
            store_state.add_company(store_hash, "Bench Buyers Inc")
    return sandbox_app, idp_app


@contextlib.contextmanager
def upstreams(
    workdir: Path, users: int, redirect_uris: list[str], env: dict[str, str]
) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """bench/login.py's upstreams child, with this script's stores and client."""
    secrets_ = {
        "store_token": secrets.token_urlsafe(24),
        "store_client_id": secrets.token_hex(16),
        "store_secret": secrets.token_hex(32),
        "idp_client_secret": secrets.token_urlsafe(32),
        "b2b_token": secrets.token_urlsafe(24),
    }
    log = workdir / "upstreams.log"
    with log.open("w") as log_file:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--upstreams"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=ROOT,
            env={**os.environ, **env},
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            spec = {**secrets_, "users": users, "redirect_uris": redirect_uris, "werkzeug": False}
            child.stdin.write((json.dumps(spec) + "\n").encode())
            child.stdin.flush()
            line = child.stdout.readline()
            if not line:
                raise SystemExit(f"the upstreams process failed:\n{log.read_text()[-3000:]}")
            urls = json.loads(line)
            lb.wait_ready(f"{urls['idp']}/.well-known/openid-configuration", child, log)
            lb.wait_ready(f"{urls['sandbox']}/_sandbox/stores/{lb.STORE_HASH}/faults", child, log)
            yield urls, {**secrets_, "pid": child.pid}
        finally:
            with contextlib.suppress(OSError):
                child.stdin.close()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


# -- CPU, counting reaped children ------------------------------------------------------------


def cpu_with_reaped(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (/proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def server_cpu(pids: Sequence[int]) -> float:
    """A gunicorn master and its live workers, each with what it reaped."""
    total = 0.0
    for pid in pids:
        total += cpu_with_reaped(pid) + sum(cpu_with_reaped(c) for c in lb.children(pid))
    return total


# -- the shopper's side -----------------------------------------------------------------------


@dataclass
class Timed:
    seconds: list[float] = field(default_factory=list)
    cpu: float = 0.0
    count: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Timed) -> None:
        self.seconds += other.seconds
        self.cpu += other.cpu
        self.count += other.count
        self.errors += other.errors

    def p50_ms(self) -> float:
        return lb.percentile(self.seconds, 50) * 1000 if self.seconds else float("nan")

    def cpu_ms(self) -> float:
        return self.cpu / self.count * 1000 if self.count else float("nan")


@dataclass
class Site:
    """One broker (or the floor) as the shoppers meet it."""

    url: str
    pids: list[int]

    def storefront(self, sandbox_url: str, store_hash: str = lb.STORE_HASH) -> str:
        return f"{sandbox_url}/s/{store_hash}"


def expect(
    response: httpx.Response, prefix: str, step: str, codes: tuple[int, ...] = (302,)
) -> str:
    location = str(response.headers.get("location", ""))
    if response.status_code not in codes or not location.startswith(prefix):
        raise lb.StepError(f"{step}: {response.status_code} {location[:80]!r}")
    return location


def oidc_start(http: httpx.Client, broker: str, store: str, idp: str, email: str) -> str:
    """/login and the IdP's form: the callback URL."""
    authorize = expect(
        http.get(f"{broker}/{store}/login/{lb.CONN}", params={"redirect_to": lb.REDIRECT_TO}),
        f"{idp}/authorize?",
        "login",
    )
    return expect(
        http.post(authorize, data={"email": email, "password": lb.PASSWORD}),
        f"{broker}/{store}/oidc/{lb.CONN}/callback?",
        "idp",
    )


def whole_oidc(broker: str, store: str, idp: str, storefront: str, email: str) -> float:
    with lb.new_browser() as http:
        start = time.perf_counter()
        callback = oidc_start(http, broker, store, idp, email)
        expect(http.get(callback), f"{storefront}/login/token/", "callback")
        return time.perf_counter() - start


def whole_floor(floor: str, idp: str, email: str) -> float:
    with lb.new_browser() as http:
        start = time.perf_counter()
        authorize = expect(http.get(f"{floor}/floor/login"), f"{idp}/authorize?", "floor login")
        callback = expect(
            http.post(authorize, data={"email": email, "password": lb.PASSWORD}),
            f"{floor}/floor/callback?",
            "idp",
        )
        expect(http.get(callback), "http://127.0.0.1/s/floor1/login/token/", "floor callback")
        return time.perf_counter() - start


@dataclass
class StagedSaml:
    acs: str
    form: dict[str, str]
    cookies: str


def saml_stage(broker: str, login: str) -> StagedSaml:
    from tests.support.saml_idp import complete_sso

    with lb.new_browser() as http:
        start = http.get(f"{broker}/{lb.STORE_KEY}/login/{SAML_CONN}")
        if start.status_code not in (302, 303):
            raise lb.StepError(f"saml login: {start.status_code}")
        acs, form = complete_sso(http, start.headers["location"], login)
        cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)
        return StagedSaml(acs=acs, form=form, cookies=cookies)


def saml_fire(broker: str, storefront: str, staged: StagedSaml) -> float:
    """The ACS POST and its continue GET, on a fresh connection each (the POST comes from the
    IdP's page, the GET is the browser following the 303)."""
    headers = {"Cookie": staged.cookies}
    with lb.new_browser() as http:
        start = time.perf_counter()
        location = expect(
            http.post(staged.acs, data=staged.form, headers=headers),
            f"/{lb.STORE_KEY}/saml/{SAML_CONN}/acs/continue?",
            "acs",
            (303,),
        )
        expect(
            http.get(broker + location, headers=headers), f"{storefront}/login/token/", "continue"
        )
        return time.perf_counter() - start


def oidc_stage(broker: str, idp: str, email: str) -> lb.Staged:
    with lb.new_browser() as http:
        callback = oidc_start(http, broker, lb.STORE_KEY, idp, email)
        cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)
        return lb.Staged(callback=callback, cookies=cookies)


def oidc_fire(storefront: str, staged: lb.Staged) -> float:
    with lb.new_browser() as http:
        start = time.perf_counter()
        expect(
            http.get(staged.callback, headers={"Cookie": staged.cookies}),
            f"{storefront}/login/token/",
            "callback",
        )
        return time.perf_counter() - start


def measured(pids: Sequence[int], jobs: Sequence[Any], fn: Callable[[Any], float]) -> Timed:
    """Run ``fn`` on each job, one at a time; the latencies and the servers' CPU per job."""
    out = Timed()
    before = server_cpu(pids)
    for job in jobs:
        try:
            out.seconds.append(fn(job))
        except (lb.StepError, httpx.HTTPError, AssertionError) as exc:
            out.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    out.cpu = server_cpu(pids) - before
    out.count = len(jobs)
    return out


# -- (d): statements and transactions, counted in process ------------------------------------


@dataclass
class SqlCount:
    statements: int = 0
    #: Write transactions: COMMITs after a write, and writes on their own (autocommit).
    commits: int = 0
    signins: int = 0
    verbs: Counter[str] = field(default_factory=Counter)


def count_sql_in_process(
    config: Path,
    env: dict[str, str],
    urls: dict[str, str],
    emails: list[str],
    logins: list[str],
    strip: Sequence[str] = (),
) -> dict[str, SqlCount]:
    """The broker of ``config`` in this process (its database as the servers use it), returning
    sign-ins through Flask's test client: statements and write transactions per sign-in, as
    the database driver ran them (tests.support.sql_trace: SQLAlchemy's statements and the
    storage's own on the driver alike)."""
    from broker.app import create_app
    from broker.settings.file import load_settings
    from tests.support.saml_idp import complete_sso

    # This checkout's tracer, whichever tree --src benchmarks (an older one may have none).
    spec = importlib.util.spec_from_file_location("sql_trace", ROOT / "tests/support/sql_trace.py")
    assert spec is not None
    assert spec.loader is not None
    sql_trace = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sql_trace  # before it runs: its dataclass looks itself up there
    spec.loader.exec_module(sql_trace)
    traced = sql_trace.traced

    app = stripped.strip(create_app(load_settings(config, {**os.environ, **env})), strip)
    logging.getLogger("broker").setLevel(logging.ERROR)  # no event lines in the report
    engine = app.extensions["broker"].storage.engine
    counts = {"oidc": SqlCount(), "saml": SqlCount()}

    def add(count: SqlCount, found: Any) -> None:
        count.signins += 1
        count.statements += len(found.statements)
        count.commits += found.write_transactions
        count.verbs.update(sql.split()[0].upper() for sql in found.statements)

    try:
        for email in emails:
            with lb.new_browser() as http, traced(engine) as found:
                _in_process_sign_in(app, http, email)
            add(counts["oidc"], found)
        for login in logins:
            client = app.test_client()
            with lb.new_browser() as http, traced(engine) as found:
                start = client.get(f"/{lb.STORE_KEY}/login/{SAML_CONN}")
                acs, form = complete_sso(http, start.headers["location"], login)
                posted = client.post(urlsplit(acs).path, data=form)
                done = client.get(posted.headers["location"])
            if done.status_code != 302:
                raise SystemExit(f"in-process SAML sign-in failed: {done.status_code}")
            add(counts["saml"], found)
    finally:
        app.extensions["broker"].storage.close()
    return counts


# -- (e): a PostgreSQL wire-protocol counting proxy (a child process) -------------------------


def proxy_main(listen_port: int, target_port: int, stats_port: int) -> int:
    """Forward 127.0.0.1:listen_port to PostgreSQL at 127.0.0.1:target_port; count, on the
    client's side of each connection, simple Queries, Executes and Syncs. ``stats_port``
    answers the counts as JSON to whoever connects."""
    counts = Counter[str]()
    lock = threading.Lock()

    def pump(src: socket.socket, dst: socket.socket, parse: bool) -> None:
        buffer = b""
        startup = True
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if not parse:
                    continue
                buffer += data
                while True:
                    if startup:
                        if len(buffer) < 8:
                            break
                        (length,) = struct.unpack("!I", buffer[:4])
                        if len(buffer) < length:
                            break
                        (code,) = struct.unpack("!I", buffer[4:8])
                        buffer = buffer[length:]
                        # SSLRequest / GSSENCRequest are followed by another startup packet.
                        startup = code in (80877103, 80877104)
                        continue
                    if len(buffer) < 5:
                        break
                    kind = chr(buffer[0])
                    (length,) = struct.unpack("!I", buffer[1:5])
                    if len(buffer) < 1 + length:
                        break
                    buffer = buffer[1 + length :]
                    if kind in "QES":
                        with lock:
                            counts[kind] += 1
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def serve_client(client: socket.socket) -> None:
        upstream = socket.create_connection((HOST, target_port))
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()
        pump(client, upstream, True)

    def serve_stats() -> None:
        with socket.create_server((HOST, stats_port)) as server:
            while True:
                conn, _ = server.accept()
                with conn, lock:
                    conn.sendall(json.dumps(dict(counts)).encode())

    threading.Thread(target=serve_stats, daemon=True).start()
    with socket.create_server((HOST, listen_port)) as server:
        print("ready", flush=True)
        while True:
            client, _ = server.accept()
            threading.Thread(target=serve_client, args=(client,), daemon=True).start()


def proxy_counts(stats_port: int) -> Counter[str]:
    with socket.create_connection((HOST, stats_port)) as conn:
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return Counter(json.loads(data))


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A database of its own for the run, dropped afterwards (with its connections)."""
    from sqlalchemy import create_engine, make_url, text

    name = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


# -- configuration ----------------------------------------------------------------------------


def broker_config(
    base_url: str, database_url: str, urls: dict[str, str], saml: dict[str, str] | None,
    companies: dict[str, int],
) -> str:  # fmt: skip
    def store(key: str, store_hash: str) -> str:
        return f"""
[stores.{key}]
store_hash = "{store_hash}"
api_url = "{urls["sandbox"]}"
access_token = "env:BENCH_STORE_TOKEN"
client_id = "env:BENCH_STORE_CLIENT_ID"
client_secret = "env:BENCH_STORE_SECRET"
storefront_url = "{urls["sandbox"]}/s/{store_hash}"

[stores.{key}.connections.{lb.CONN}]
type = "oidc"
display_name = "Bench IdP"
issuer = "{urls["idp"]}"
client_id = "{lb.IDP_CLIENT_ID}"
client_secret = "env:BENCH_IDP_SECRET"
scopes = ["openid", "email", "profile", "groups"]
link = "auto"
"""

    text = f"""
[broker]
base_url = "{base_url}"
secret_key = "env:BENCH_SECRET_KEY"
database_url = "{database_url}"
""" + store(lb.STORE_KEY, lb.STORE_HASH)
    if saml is not None:
        text += f"""
[stores.{lb.STORE_KEY}.connections.{SAML_CONN}]
type = "saml"
display_name = "Bench SAML"
idp_metadata_url = "{saml["metadata_url"]}"
sp_key_file = "{saml["key_file"]}"
sp_cert_file = "{saml["cert_file"]}"
link = "auto"
trust_email = true
"""
    for key, (store_hash, sync_role) in B2B_STORES.items():
        if store_hash not in companies:
            continue
        text += (
            store(key, store_hash)
            + f"""
[stores.{key}.b2b]
access_token = "env:BENCH_B2B_TOKEN"
api_url = "{urls["sandbox"]}"
companies_by_domain = {{ "bench.example" = {companies[store_hash]} }}
sync_role = {"true" if sync_role else "false"}
"""
        )
    return text


def broker_env(secrets_: dict[str, Any]) -> dict[str, str]:
    return {**lb.broker_env(secrets_), "BENCH_B2B_TOKEN": secrets_["b2b_token"]}


def serve_argv(
    config: Path, port: int, workers: int, threads: int, module: str = "broker.cli"
) -> list[str]:
    return [sys.executable, "-m", module, "serve", "--config", str(config),
            "--port", str(port), "--workers", str(workers), "--threads", str(threads)]  # fmt: skip


def company_ids(urls: dict[str, str], token: str) -> dict[str, int]:
    """Each B2B sandbox store's company, asked of B2B Edition's API as a store admin would."""
    ids = {}
    for store_hash, _ in B2B_STORES.values():
        answer = httpx.get(
            f"{urls['sandbox']}/api/v3/io/companies",
            headers={"X-Auth-Token": token, "X-Store-Hash": store_hash},
            trust_env=False,
        )
        answer.raise_for_status()
        ids[store_hash] = int(answer.json()["data"][0]["companyId"])
    return ids


class StoreRequests:
    """A sandbox store's request log (what the broker asked of BigCommerce and B2B Edition)."""

    def __init__(self, sandbox_url: str, store_hash: str) -> None:
        self.url = f"{sandbox_url}/_sandbox/stores/{store_hash}/requests"

    def clear(self) -> None:
        httpx.delete(self.url, trust_env=False).raise_for_status()

    def counted(self) -> Counter[str]:
        answer = httpx.get(self.url, trust_env=False)
        answer.raise_for_status()
        return Counter(f"{r['method']} {r['path']}" for r in answer.json())


# -- the run ----------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def run(args: argparse.Namespace) -> int:
    src, child_env = lb.source(args)
    workdir = Path(tempfile.mkdtemp(prefix="broker-ratios-"))
    child_env = {**child_env, "XDG_RUNTIME_DIR": str(workdir)}
    n, rounds = args.per_round, args.rounds
    users = max(n, args.scale_signins)
    broker_port, floor_port = lb.free_port(), lb.free_port()
    scale_ports = [lb.free_port(), lb.free_port()]
    inside_port = lb.free_port()
    compare_port = lb.free_port()
    compare_url = f"http://{HOST}:{compare_port}"
    broker_url, floor_url = f"http://{HOST}:{broker_port}", f"http://{HOST}:{floor_port}"
    inside_url = f"http://{HOST}:{inside_port}"
    scale_urls = [f"http://{HOST}:{p}" for p in scale_ports]
    print("Storefront SSO broker: the sign-in ratios of issue 16 (bench/signin_ratios.py)")
    for line in lb.machine():
        print(line)
    print(f"source:  {lb.source_state(src, child_env)}")
    print(
        f"settings: broker and floor under gunicorn gthread 1 worker x 4 threads; SQLite for "
        f"(a)-(d); {rounds} rounds x {n} returning sign-ins per figure, one at a time"
    )
    if args.strip:
        print(f"STRIPPED (not a broker to sign anyone in with): {', '.join(args.strip)}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    failed = 0
    redirects = [
        *(f"{url}/{key}/oidc/{lb.CONN}/callback"
          for url in (broker_url, *scale_urls) for key in (lb.STORE_KEY, *B2B_STORES)),
        f"{floor_url}/floor/callback",
        f"{inside_url}/{lb.STORE_KEY}/oidc/{lb.CONN}/callback",
        f"{inside_url}/floor/callback",
        f"{compare_url}/{lb.STORE_KEY}/oidc/{lb.CONN}/callback",
    ]  # fmt: skip
    from broker.keys import make_key_pair
    from tests.support.saml_idp import start_saml_idp

    key_file, cert_file = make_key_pair(workdir)
    cert_pem = cert_file.read_text()
    saml_users = {
        shopper(i): {"email": lb.user_email(i), "first_name": "Bench", "last_name": f"S{i}",
                     "groups": ["buyers"]}
        for i in range(n)
    }  # fmt: skip
    sp = {
        "entity_id": f"{broker_url}/{lb.STORE_KEY}/saml/{SAML_CONN}/metadata",
        "acs_url": f"{broker_url}/{lb.STORE_KEY}/saml/{SAML_CONN}/acs",
        "encryption_cert_pem": cert_pem,
        "signing_cert_pem": cert_pem,
    }
    with (
        upstreams(workdir, users, redirects, child_env) as (urls, secrets_),
        start_saml_idp(sp=sp, users=saml_users) as saml_idp,
    ):
        companies = company_ids(urls, secrets_["b2b_token"])
        saml = {"metadata_url": saml_idp.metadata_url, "key_file": str(key_file),
                "cert_file": str(cert_file)}  # fmt: skip
        config = workdir / "broker.toml"
        db = f"sqlite:///{workdir / 'broker.db'}"
        config.write_text(broker_config(broker_url, db, urls, saml, companies))
        env = {**child_env, **broker_env(secrets_)}
        floor_env = {
            **child_env,
            "FLOOR_IDP_URL": urls["idp"],
            "FLOOR_CLIENT_ID": lb.IDP_CLIENT_ID,
            "FLOOR_CLIENT_SECRET": secrets_["idp_client_secret"],
            "FLOOR_BASE_URL": floor_url,
        }
        floor_argv = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
                      "--workers", "1", "--threads", "4", "--timeout", "30",
                      "--graceful-timeout", "10", "--no-control-socket",
                      "--bind", f"{HOST}:{floor_port}", "bench.floor:app"]  # fmt: skip
        inside_config = workdir / "inside.toml"
        inside_config.write_text(
            broker_config(inside_url, f"sqlite:///{workdir / 'inside.db'}", urls, None, {})
        )
        inside_argv = [*floor_argv[:-3], "--logger-class", "bench.broker_and_floor.Logger",
                       "--bind", f"{HOST}:{inside_port}", "bench.broker_and_floor:app"]  # fmt: skip
        inside_env = {**env, **floor_env, "FLOOR_BASE_URL": inside_url,
                      "BENCH_BROKER_CONFIG": str(inside_config)}  # fmt: skip
        # (b2) needs this script's bench/broker_and_floor.py in the tree benchmarked (--src).
        has_inside = (src / "bench" / "broker_and_floor.py").exists()
        # --strip: the broker of (a)-(b2) from bench/stripped.py (this checkout's bench/).
        stripped_module = "bench.stripped" if args.strip else "broker.cli"
        strip_env = {
            "BENCH_STRIP": ",".join(args.strip),
            "PYTHONPATH": os.pathsep.join([child_env.get("PYTHONPATH", str(src)), str(ROOT)]),
        } if args.strip else {}  # fmt: skip
        compare_src = Path(args.compare).resolve() if args.compare else None
        compare_config = workdir / "compare.toml"
        compare_config.write_text(
            broker_config(compare_url, f"sqlite:///{workdir / 'compare.db'}", urls, None, {})
        )
        with (
            lb.gunicorn_process(
                serve_argv(compare_config, compare_port, 1, 4), compare_src,
                workdir / "compare.log", f"{compare_url}/readyz",
                {**env, "PYTHONPATH": str(compare_src)},
            ) if compare_src else contextlib.nullcontext(None) as compare_pid,
            lb.gunicorn_process(
                serve_argv(config, broker_port, 1, 4, stripped_module), src,
                workdir / "broker.log", f"{broker_url}/readyz", {**env, **strip_env},
            ) as broker_pid,
            lb.gunicorn_process(
                floor_argv, ROOT, workdir / "floor.log", f"{floor_url}/healthz",
                {**floor_env, "PYTHONPATH": str(ROOT)},
            ) as floor_pid,
            lb.gunicorn_process(
                inside_argv, src, workdir / "inside.log", f"{inside_url}/readyz",
                {**inside_env, **strip_env},
            ) if has_inside else contextlib.nullcontext(None) as inside_pid,
        ):  # fmt: skip
            inside = None if inside_pid is None else Site(inside_url, [inside_pid])
            compare = None if compare_pid is None else Site(compare_url, [compare_pid])
            failed += ratios(
                args, urls, broker_url, floor_url, broker_pid, floor_pid, inside, compare
            )
            if not args.no_sql:
                failed += sql_counts(config, env, urls, n, "SQLite", args.strip)
            if args.step_costs:
                failed += step_costs(config, env, args.step_costs)
        if not args.no_scale:
            failed += scale(args, workdir, urls, secrets_, scale_ports, src, child_env)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.keep:
        print(f"kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def warm(jobs: Sequence[Any], fn: Callable[[Any], Any]) -> int:
    """Untimed first sign-ins (customers created and linked); the number that failed."""
    failures = 0
    for job in jobs:
        try:
            fn(job)
        except (lb.StepError, httpx.HTTPError, AssertionError) as exc:
            failures += 1
            print(f"  warm-up failed: {type(exc).__name__}: {str(exc)[:200]}")
    return failures


def ratios(
    args: argparse.Namespace,
    urls: dict[str, str],
    broker_url: str,
    floor_url: str,
    broker_pid: int,
    floor_pid: int,
    inside: Site | None = None,
    compare: Site | None = None,
) -> int:
    n, rounds = args.per_round, args.rounds
    sandbox, idp = urls["sandbox"], urls["idp"]
    storefront = f"{sandbox}/s/{lb.STORE_HASH}"
    emails = [lb.user_email(i) for i in range(n)]
    logins = [shopper(i) for i in range(n)]
    failures = warm(emails, lambda e: whole_oidc(broker_url, lb.STORE_KEY, idp, storefront, e))
    failures += warm(logins, lambda s: saml_fire(broker_url, storefront, saml_stage(broker_url, s)))
    failures += warm(range(3), lambda _: whole_floor(floor_url, idp, emails[0]))
    oidc, saml, whole, floor = Timed(), Timed(), Timed(), Timed()
    own, floor_inside, other = Timed(), Timed(), Timed()
    if compare is not None:
        failures += warm(
            emails, lambda e: whole_oidc(compare.url, lb.STORE_KEY, idp, storefront, e)
        )
    if inside is not None:
        failures += warm(emails, lambda e: whole_oidc(inside.url, lb.STORE_KEY, idp, storefront, e))
        failures += warm(range(3), lambda _: whole_floor(inside.url, idp, emails[0]))

    def fire_oidc(staged: lb.Staged) -> float:
        return oidc_fire(storefront, staged)

    def fire_saml(staged: StagedSaml) -> float:
        return saml_fire(broker_url, storefront, staged)

    def broker_sign_in(email: str) -> float:
        return whole_oidc(broker_url, lb.STORE_KEY, idp, storefront, email)

    def floor_sign_in(email: str) -> float:
        return whole_floor(floor_url, idp, email)

    for r in range(rounds):
        staged_oidc = [oidc_stage(broker_url, idp, e) for e in emails]
        staged_saml = [saml_stage(broker_url, s) for s in logins]
        first = r % 2 == 0  # which goes first alternates
        answers = [
            (oidc, [broker_pid], staged_oidc, fire_oidc),
            (saml, [broker_pid], staged_saml, fire_saml),
        ]
        sign_ins = [
            (whole, [broker_pid], emails, broker_sign_in),
            (floor, [floor_pid], emails, floor_sign_in),
        ]
        if inside is not None:
            sign_ins += [
                (own, inside.pids, emails,
                 lambda e: whole_oidc(inside.url, lb.STORE_KEY, idp, storefront, e)),
                (floor_inside, inside.pids, emails, lambda e: whole_floor(inside.url, idp, e)),
            ]  # fmt: skip
        if compare is not None:
            sign_ins.append(
                (other, compare.pids, emails,
                 lambda e: whole_oidc(compare.url, lb.STORE_KEY, idp, storefront, e))
            )  # fmt: skip
        plans: list[list[tuple[Timed, list[int], Sequence[Any], Callable[[Any], float]]]] = [
            answers,
            sign_ins,
        ]
        for plan in plans:
            for into, pids, jobs, fn in plan if first else plan[::-1]:
                into.add(measured(pids, jobs, fn))
        print(f"  round {r + 1} of {rounds}: done")
    b2b = b2b_requests(args, urls, broker_url, idp)
    for timed in (oidc, saml, whole, floor, own, floor_inside, other):
        failures += len(timed.errors)
        for error in timed.errors[:3]:
            print(f"  error: {error}")
    print()
    print("(a) SAML ACS + continue / OIDC callback, per returning sign-in (broker, 1x4)")
    print(f"    {'':24} {'n':>5} {'CPU ms':>8} {'p50 ms':>8}")
    print(f"    {'OIDC callback':24} {oidc.count:5d} {oidc.cpu_ms():8.2f} {oidc.p50_ms():8.2f}")
    print(
        f"    {'SAML ACS + continue':24} {saml.count:5d} {saml.cpu_ms():8.2f} {saml.p50_ms():8.2f}"
    )
    print(
        f"    SAML / OIDC: CPU {ratio(saml.cpu_ms(), oidc.cpu_ms())}, "
        f"p50 {ratio(saml.p50_ms(), oidc.p50_ms())}"
    )
    print()
    print("(b) OIDC whole sign-in / the floor's whole sign-in (same IdP, same gunicorn 1x4)")
    print(f"    {'':24} {'n':>5} {'CPU ms':>8} {'p50 ms':>8}")
    print(f"    {'broker':24} {whole.count:5d} {whole.cpu_ms():8.2f} {whole.p50_ms():8.2f}")
    print(f"    {'floor':24} {floor.count:5d} {floor.cpu_ms():8.2f} {floor.p50_ms():8.2f}")
    print(
        f"    broker / floor: CPU {ratio(whole.cpu_ms(), floor.cpu_ms())} (server processes "
        f"only), p50 {ratio(whole.p50_ms(), floor.p50_ms())} (the whole sign-in, IdP steps "
        f"included)"
    )
    if inside is not None:
        print()
        print("(b2) the broker's own work: the floor's routes in front of a broker, one worker")
        print(f"    {'':24} {'n':>5} {'CPU ms':>8} {'p50 ms':>8}")
        for name, timed in (("broker sign-in", own), ("floor sign-in, same", floor_inside)):
            print(f"    {name:24} {timed.count:5d} {timed.cpu_ms():8.2f} {timed.p50_ms():8.2f}")
        print(
            f"    broker / floor in the same worker: CPU "
            f"{ratio(own.cpu_ms(), floor_inside.cpu_ms())}; the floor in a broker's worker / "
            f"in its own process: {ratio(floor_inside.cpu_ms(), floor.cpu_ms())}"
        )
    if compare is not None:
        print()
        print(f"(b3) this tree against --compare {args.compare}, the same rounds")
        print(f"    {'':24} {'n':>5} {'CPU ms':>8} {'p50 ms':>8}")
        for name, timed in (("this tree", whole), ("--compare tree", other)):
            print(f"    {name:24} {timed.count:5d} {timed.cpu_ms():8.2f} {timed.p50_ms():8.2f}")
        print(
            f"    this / --compare: CPU {ratio(whole.cpu_ms(), other.cpu_ms())}; "
            f"--compare / floor: CPU {ratio(other.cpu_ms(), floor.cpu_ms())}"
        )
    print()
    print("(c) B2B Edition requests per returning sign-in (OIDC, counted by the sandbox store)")
    for key, (per, other, kinds) in b2b.items():
        print(
            f"    {key:24} sync_role = {str(B2B_STORES[key][1]).lower():5}  B2B {per:.2f}, "
            f"other BigCommerce {other:.2f}  {_per_sign_in(kinds, args.per_round)}"
        )
    return failures


def _per_sign_in(kinds: Counter[str], signins: int) -> str:
    return ", ".join(f"{kind} {number / signins:.2f}" for kind, number in sorted(kinds.items()))


def b2b_requests(
    args: argparse.Namespace, urls: dict[str, str], broker_url: str, idp: str
) -> dict[str, tuple[float, float, Counter[str]]]:
    out = {}
    emails = [lb.user_email(i) for i in range(args.per_round)]
    for key, (store_hash, _) in B2B_STORES.items():
        storefront = f"{urls['sandbox']}/s/{store_hash}"
        log = StoreRequests(urls["sandbox"], store_hash)
        warm(emails, lambda e: whole_oidc(broker_url, key, idp, storefront, e))  # noqa: B023
        log.clear()
        done = 0
        for e in emails:
            whole_oidc(broker_url, key, idp, storefront, e)
            done += 1
        counted = log.counted()
        b2b = Counter[str]()
        for kind, number in counted.items():
            if " /api/v3/io" in kind:
                b2b[re.sub(r"/\d+", "/{id}", kind.replace("/api/v3/io", ""))] += number
        other = sum(counted.values()) - sum(b2b.values())
        out[key] = (sum(b2b.values()) / done, other / done, b2b)
    return out


def sql_counts(
    config: Path,
    env: dict[str, str],
    urls: dict[str, str],
    n: int,
    database: str,
    strip: Sequence[str] = (),
) -> int:
    count = min(n, 10)
    emails = [lb.user_email(i) for i in range(count)]
    logins = [shopper(i) for i in range(count)] if database == "SQLite" else []
    counts = count_sql_in_process(config, env, urls, emails, logins, strip)
    print()
    print(f"(d) SQL per returning sign-in (in process, same database: {database})")
    print(f"    {'':24} {'sign-ins':>8} {'statements':>10} {'write txns':>10}  statements by verb")
    for name, c in counts.items():
        if not c.signins:
            continue
        per = {k: round(v / c.signins, 2) for k, v in sorted(c.verbs.items())}
        print(
            f"    {name.upper() + ' /login ... sign-in':24} {c.signins:8d} "
            f"{c.statements / c.signins:10.2f} {c.commits / c.signins:10.2f}  {per}"
        )
    return 0


#: Whole sign-ins per block in (f): the two brokers take turns, block by block.
STEP_BLOCK = 20


def step_costs(config: Path, env: dict[str, str], n: int) -> int:
    """(f): for each part of bench/stripped.py, and all of them, the CPU per returning OIDC
    sign-in it costs, as a broker with it against the same broker without it, in turns."""
    from broker.app import create_app
    from broker.settings.file import load_settings

    def build(parts: Sequence[str]) -> Any:
        return stripped.strip(create_app(load_settings(config, {**os.environ, **env})), parts)

    emails = [lb.user_email(i) for i in range(STEP_BLOCK)]
    print()
    print(f"(f) what each part costs, per returning OIDC sign-in (in process, SQLite; {n} each)")
    print(f"    {'part taken out':16} {'with ms':>8} {'without':>8} {'saves ms':>9}")
    variants = [[part] for part in stripped.PARTS] + [list(stripped.PARTS)]
    with lb.new_browser() as http:
        for parts in variants:
            apps = {"with": build([]), "without": build(parts)}
            logging.getLogger("broker").setLevel(logging.ERROR)
            cpu = {name: 0.0 for name in apps}
            for app in apps.values():  # warm: caches, pools, compiled statements
                for email in emails:
                    _in_process_sign_in(app, http, email)
            done = 0
            while done < n:
                order = list(apps) if (done // STEP_BLOCK) % 2 == 0 else list(reversed(apps))
                for name in order:
                    for email in emails:
                        cpu[name] += _in_process_sign_in(apps[name], http, email)
                done += STEP_BLOCK
            with_ms, without_ms = (1000 * cpu[k] / done for k in ("with", "without"))
            label = "all" if len(parts) > 1 else parts[0]
            print(f"    {label:16} {with_ms:8.3f} {without_ms:8.3f} {with_ms - without_ms:9.3f}")
            for app in apps.values():
                app.extensions["broker"].storage.close()
    return 0


def _in_process_sign_in(app: Any, http: httpx.Client, email: str) -> float:
    """One whole OIDC sign-in through Flask's test client (the IdP over HTTP): this thread's
    CPU in the broker's two requests, the IdP's form left out."""
    client = app.test_client()
    started = time.thread_time()
    start = client.get(f"/{lb.STORE_KEY}/login/{lb.CONN}")
    cpu = time.thread_time() - started
    callback = expect(
        http.post(start.headers["location"], data={"email": email, "password": lb.PASSWORD}),
        "",
        "idp",
    )
    parts = urlsplit(callback)
    started = time.thread_time()
    done = client.get(f"{parts.path}?{parts.query}")
    cpu += time.thread_time() - started
    if done.status_code != 302:
        raise SystemExit(f"in-process OIDC sign-in failed: {done.status_code}")
    return cpu


def scale(
    args: argparse.Namespace,
    workdir: Path,
    urls: dict[str, str],
    secrets_: dict[str, Any],
    ports: list[int],
    src: Path,
    child_env: dict[str, str],
) -> int:
    from sqlalchemy import make_url

    server = make_url(args.postgres)
    proxy_port, stats_port = lb.free_port(), lb.free_port()
    brokers = [f"http://{HOST}:{p}" for p in ports]
    with postgres_database(args.postgres) as db_url:
        proxied = make_url(db_url).set(host=HOST, port=proxy_port)
        database = proxied.render_as_string(hide_password=False)
        proxy = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--pg-proxy",
                str(proxy_port),
                str(server.port or 5432),
                str(stats_port),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            assert proxy.stdout is not None
            proxy.stdout.readline()
            env = {**child_env, **broker_env(secrets_)}
            with contextlib.ExitStack() as stack:
                pids = []
                for i, (port, url) in enumerate(zip(ports, brokers, strict=True)):
                    config = workdir / f"scale{i}.toml"
                    config.write_text(broker_config(url, database, urls, None, {}))
                    pids.append(
                        stack.enter_context(
                            lb.gunicorn_process(
                                serve_argv(config, port, 1, 4),
                                src,
                                workdir / f"scale{i}.log",
                                f"{url}/readyz",
                                env,
                            )
                        )
                    )
                failed = scale_run(args, urls, brokers, pids, stats_port)
                if not args.no_sql:
                    failed += sql_counts(workdir / "scale0.toml", env, urls, 10, "PostgreSQL")
                return failed
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=10)


def scale_run(
    args: argparse.Namespace,
    urls: dict[str, str],
    brokers: list[str],
    pids: list[int],
    stats_port: int,
) -> int:
    idp, storefront = urls["idp"], f"{urls['sandbox']}/s/{lb.STORE_HASH}"
    count, concurrency = args.scale_signins, args.scale_concurrency
    jobs = [(brokers[i % 2], lb.user_email(i)) for i in range(count)]

    def one(job: tuple[str, str]) -> float | str:
        try:
            return whole_oidc(job[0], lb.STORE_KEY, idp, storefront, job[1])
        except (lb.StepError, httpx.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}"

    first, _ = lb.run_concurrently(concurrency, jobs, one)  # new shoppers: created, linked
    before, cpu = proxy_counts(stats_port), server_cpu(pids)
    results, elapsed = lb.run_concurrently(concurrency, jobs, one)
    after, cpu = proxy_counts(stats_port), server_cpu(pids) - cpu
    errors = [r for r in (*first, *results) if isinstance(r, str)]
    ok = [r for r in results if isinstance(r, float)]
    trips = (after["S"] + after["Q"]) - (before["S"] + before["Q"])
    statements = (after["E"] + after["Q"]) - (before["E"] + before["Q"])
    print()
    print(
        f"(e) scale: two broker instances (1x4 each) on one PostgreSQL database, "
        f"{concurrency} shoppers at a time, {count} returning OIDC sign-ins alternating"
    )
    print(
        f"    sign-ins/s {len(ok) / elapsed:.1f}; whole sign-in p50 "
        f"{lb.percentile(ok, 50) * 1000:.1f} ms, p99 {lb.percentile(ok, 99) * 1000:.1f} ms; "
        f"broker CPU {cpu / max(len(ok), 1) * 1000:.2f} ms per sign-in (both instances)"
    )
    print(
        f"    database round trips per sign-in {trips / max(len(ok), 1):.2f} "
        f"(statements {statements / max(len(ok), 1):.2f}); errors {len(errors)}"
    )
    for error in errors[:3]:
        print(f"    error: {error}")
    return len(errors)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--per-round", type=int, default=40, help="sign-ins per figure per round")
    parser.add_argument("--scale-signins", type=int, default=200, help="(e): returning sign-ins")
    parser.add_argument("--scale-concurrency", type=int, default=8, help="(e): shoppers at once")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="(e): the server's URL")
    parser.add_argument("--no-scale", action="store_true", help="skip (e)")
    parser.add_argument("--no-sql", action="store_true", help="skip (d)")
    parser.add_argument("--src", help="benchmark the broker tree in this directory")
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="(b3): also serve the broker tree in DIR, its whole sign-ins in the same rounds",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--strip",
        type=stripped.parse_parts,
        default=[],
        help=f"run the brokers of (a)-(d) without these parts: {', '.join(stripped.PARTS)}, all",
    )
    parser.add_argument(
        "--step-costs", type=int, default=0, metavar="N", help="(f): N sign-ins per variant"
    )
    parser.add_argument("--upstreams", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pg-proxy", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.upstreams:
        lb.build_upstreams = build_upstreams  # the child serves this script's stores
        return lb.upstreams_main()
    if args.pg_proxy:
        return proxy_main(*args.pg_proxy)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
