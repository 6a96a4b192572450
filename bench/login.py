"""Benchmark complete OIDC sign-ins through the broker, run as operators run it (gunicorn).

    .venv/bin/python bench/login.py                # the benchmark, about a minute on 2 cores
    .venv/bin/python bench/login.py --profile 300  # where one callback's time goes, in-process
    .venv/bin/python bench/login.py --src DIR      # the same against another broker tree

Three kinds of process, all on 127.0.0.1:

- the broker: ``broker serve --config <tmp>/broker.toml --workers N --threads T`` (gunicorn,
  gthread), SQLite in a temporary directory; beside it the floor (``bench/floor.py``) under
  gunicorn with the same settings;
- the upstreams: this script re-run as a child (``--upstreams``) serving the sandbox store and
  the development IdP (``broker.sandbox``) under gunicorn, one gthread worker (their state is
  in memory) with keep-alive. A separate process so that the IdP's RSA signing and the
  sandbox's JSON work never hold the load generator's GIL (which would show up as latency in
  the load generator's timestamps), and so that each side's CPU can be read apart in /proc.
  ``--werkzeug`` serves them as the tests do instead (werkzeug closes every connection);
- the load generator: this process, C threads ("virtual shoppers"), plain httpx.

What it measures, for each concurrency level C:

1. Full sign-ins, closed loop: C shoppers each sign in (GET broker /login -> POST the IdP's
   login form to the authorize URL -> GET the broker callback), then the next one starts.
   First every shopper is NEW (the broker creates the customer), then the same shoppers sign in
   again as RETURNING ones. Each sign-in is a new browser: a fresh httpx client, so a fresh
   connection and cookie jar, reused within the sign-in as a browser would. Reported:
   sign-ins/s, p50/p99 of the callback request and of the whole sign-in, the BigCommerce API
   requests per sign-in counted by the sandbox store, and CPU per sign-in of each process.
2. The callback alone: flows are staged first (login + IdP form, untimed), then C threads
   fire only the callbacks, each on a fresh connection. The floor (bench/floor.py: verify one
   RS256 ID token, mint one HS256 login JWT, nothing else) is driven the same way at the same
   C, and "callback / floor" compares the two.

Latencies are what the load generator sees over loopback (client-side round trips). CPU per
request is read from /proc for each process group, which on a small machine is the sturdier
number: everything shares the same cores. No timing is asserted; the exit status is 1 only
when a sign-in failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
# Appended, not inserted: PYTHONPATH (set by --src for the child processes) must win.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
try:
    import httpx
except ImportError:  # run with a Python that lacks the project: use the project's virtualenv
    VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
    if not VENV_PYTHON.exists() or Path(sys.executable) == VENV_PYTHON:
        raise
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # noqa: S606

STORE_KEY = "bench"
STORE_HASH = "bench1"
CONN = "dev"
IDP_CLIENT_ID = "bench-broker"
PASSWORD = "bench-password"
REDIRECT_TO = "/account.php"
HOST = "127.0.0.1"
#: One TLS context for every client the load generator makes: httpx builds (and loads the CA
#: bundle into) a new one per client otherwise, which costs milliseconds of load-generator CPU.
_SSL = ssl.create_default_context()


def user_email(i: int) -> str:
    return f"shopper{i:05d}@bench.example"


# -- the upstreams child: sandbox store and development IdP -----------------------------------


def build_upstreams(spec: dict[str, Any], idp_url: str | None) -> tuple[Any, Any]:
    """The sandbox store and the dev IdP apps, with the bench's store, client and users."""
    from broker.sandbox.idp import DevClient, DevUser, create_idp_app
    from broker.sandbox.store import SandboxStore, create_sandbox_app

    sandbox_app = create_sandbox_app()
    idp_app = create_idp_app(clients=(), users=(), issuer=idp_url)
    idp_state = idp_app.extensions["dev_idp"]
    idp_state.add_client(
        DevClient(
            client_id=IDP_CLIENT_ID,
            client_secret=spec["idp_client_secret"],
            redirect_uris=tuple(
                f"{url}/{STORE_KEY}/oidc/{CONN}/callback" for url in spec["brokers"]
            ),
        )
    )
    for i in range(spec["users"]):
        idp_state.add_user(
            DevUser(
                sub=f"bench-{i:05d}",
                email=user_email(i),
                password=PASSWORD,
                given_name="Bench",
                family_name=f"Shopper{i}",
                groups=("buyers",),
            )
        )
    store_state = sandbox_app.extensions["sandbox"]
    store_state.add_store(
        SandboxStore(
            store_hash=STORE_HASH,
            access_token=spec["store_token"],
            client_id=spec["store_client_id"],
            client_secret=spec["store_secret"],
            name="Bench store",
        )
    )
    # The real per-store quota (150 per 30 s) would turn a load test into a 429 test.
    store_state.set_faults(STORE_HASH, quota=10**9)
    return sandbox_app, idp_app


def upstreams_main() -> int:
    """Serve the sandbox store and the dev IdP until stdin closes (the parent is done).

    By default under gunicorn (one gthread worker: the sandbox and the IdP keep their state
    in memory), because werkzeug's server answers every request with ``Connection: close``:
    each broker -> IdP and broker -> store request would open a new TCP connection and a new
    server thread, which real IdPs and api.bigcommerce.com do not make it do. ``--werkzeug``
    serves them as the tests and ``broker demo`` do, with ``broker.sandbox.serving``.
    """
    import logging
    import signal

    spec = json.loads(sys.stdin.readline())
    # werkzeug's request log would cost a line of stderr per request and print codes.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if spec["werkzeug"]:
        from broker.sandbox.serving import serve_in_thread

        sandbox_app, idp_app = build_upstreams(spec, None)
        with serve_in_thread(sandbox_app, HOST) as sandbox, serve_in_thread(idp_app, HOST) as idp:
            idp_app.extensions["dev_idp"].issuer = idp.url
            print(json.dumps({"sandbox": sandbox.url, "idp": idp.url}), flush=True)
            sys.stdin.read()
        return 0

    from gunicorn.app.base import BaseApplication

    sandbox_port, idp_port = free_port(), free_port()
    sandbox_url, idp_url = f"http://{HOST}:{sandbox_port}", f"http://{HOST}:{idp_port}"

    class Upstreams(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", [f"{HOST}:{sandbox_port}", f"{HOST}:{idp_port}"])
            self.cfg.set("workers", 1)
            self.cfg.set("threads", 16)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            sandbox_app, idp_app = build_upstreams(spec, idp_url)
            idp_host = f"{HOST}:{idp_port}"

            def by_port(environ: dict[str, Any], start_response: Any) -> Any:
                app = idp_app if environ.get("HTTP_HOST") == idp_host else sandbox_app
                return app(environ, start_response)

            return by_port

    def parent_gone() -> None:
        sys.stdin.read()
        os.kill(os.getpid(), signal.SIGTERM)

    print(json.dumps({"sandbox": sandbox_url, "idp": idp_url}), flush=True)
    threading.Thread(target=parent_gone, daemon=True).start()
    Upstreams().run()
    return 0


# -- process plumbing -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """user + system CPU of one process (all its threads), from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def tree_cpu(pid: int) -> float:
    """CPU of a gunicorn master and its live workers."""
    return cpu_seconds(pid) + sum(cpu_seconds(c) for c in children(pid))


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 40
    with new_browser() as http:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if http.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise SystemExit(
        f"{' '.join(argv_of(process))} did not become ready:\n{log.read_text()[-3000:]}"
    )


def argv_of(process: subprocess.Popen[bytes]) -> list[str]:
    args = process.args
    return [str(a) for a in args] if isinstance(args, list | tuple) else [str(args)]


@dataclass
class Deployment:
    workdir: Path
    broker_url: str
    floor_url: str
    sandbox_url: str
    idp_url: str
    store_token: str
    broker_pid: int = 0
    floor_pid: int = 0
    upstreams_pid: int = 0

    @property
    def storefront(self) -> str:
        return f"{self.sandbox_url}/s/{STORE_HASH}"

    @property
    def callback_prefix(self) -> str:
        return f"{self.broker_url}/{STORE_KEY}/oidc/{CONN}/callback?"


@contextlib.contextmanager
def upstreams(
    workdir: Path, users: int, brokers: Sequence[str], env: dict[str, str], werkzeug: bool
) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    secrets_ = {
        "store_token": secrets.token_urlsafe(24),
        "store_client_id": secrets.token_hex(16),
        "store_secret": secrets.token_hex(32),
        "idp_client_secret": secrets.token_urlsafe(32),
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
            spec = {**secrets_, "users": users, "brokers": list(brokers), "werkzeug": werkzeug}
            child.stdin.write((json.dumps(spec) + "\n").encode())
            child.stdin.flush()
            line = child.stdout.readline()
            if not line:
                raise SystemExit(f"the upstreams process failed:\n{log.read_text()[-3000:]}")
            urls = json.loads(line)
            wait_ready(f"{urls['idp']}/.well-known/openid-configuration", child, log)
            wait_ready(f"{urls['sandbox']}/_sandbox/stores/{STORE_HASH}/faults", child, log)
            yield urls, {**secrets_, "pid": child.pid}
        finally:
            with contextlib.suppress(OSError):
                child.stdin.close()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def broker_config(d: Deployment, broker_port: int, urls: dict[str, str]) -> str:
    return f"""
[broker]
base_url = "http://{HOST}:{broker_port}"
secret_key = "env:BENCH_SECRET_KEY"
database_url = "sqlite:///{d.workdir / "broker.db"}"

[stores.{STORE_KEY}]
store_hash = "{STORE_HASH}"
api_url = "{urls["sandbox"]}"
access_token = "env:BENCH_STORE_TOKEN"
client_id = "env:BENCH_STORE_CLIENT_ID"
client_secret = "env:BENCH_STORE_SECRET"
storefront_url = "{urls["sandbox"]}/s/{STORE_HASH}"

[stores.{STORE_KEY}.connections.{CONN}]
type = "oidc"
display_name = "Bench IdP"
issuer = "{urls["idp"]}"
client_id = "{IDP_CLIENT_ID}"
client_secret = "env:BENCH_IDP_SECRET"
scopes = ["openid", "email", "profile", "groups"]
customer_groups_by_group = {{ "buyers" = 2 }}
"""


def broker_env(secrets_: dict[str, Any]) -> dict[str, str]:
    return {
        "BENCH_SECRET_KEY": secrets.token_urlsafe(32),
        "BENCH_STORE_TOKEN": secrets_["store_token"],
        "BENCH_STORE_CLIENT_ID": secrets_["store_client_id"],
        "BENCH_STORE_SECRET": secrets_["store_secret"],
        "BENCH_IDP_SECRET": secrets_["idp_client_secret"],
    }


@contextlib.contextmanager
def gunicorn_process(
    argv: list[str], cwd: Path, log: Path, ready_url: str, env: dict[str, str]
) -> Iterator[int]:
    with log.open("w") as log_file:
        process = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd, env={**os.environ, **env}
        )
        try:
            wait_ready(ready_url, process, log)
            yield process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the shopper's side -----------------------------------------------------------------------


def new_browser() -> httpx.Client:
    return httpx.Client(follow_redirects=False, timeout=30, verify=_SSL, trust_env=False)


@dataclass
class Sample:
    login: float = 0.0  # GET broker /login -> 302 to the IdP
    idp: float = 0.0  # POST the IdP's login form -> 302 to the callback
    callback: float = 0.0  # GET broker callback -> 302 to /login/token/<jwt>
    whole: float = 0.0
    error: str | None = None


def expect(response: httpx.Response, prefix: str, step: str) -> str:
    location = str(response.headers.get("location", ""))
    if response.status_code != 302 or not location.startswith(prefix):
        raise StepError(f"{step}: {response.status_code} {location[:80]!r}")
    return location


class StepError(Exception):
    pass


def start_flow(d: Deployment, http: httpx.Client, email: str) -> tuple[str, float, float]:
    """/login and the IdP form: the callback URL, and the two steps' durations."""
    t0 = time.perf_counter()
    authorize = expect(
        http.get(f"{d.broker_url}/{STORE_KEY}/login/{CONN}", params={"redirect_to": REDIRECT_TO}),
        f"{d.idp_url}/authorize?",
        "login",
    )
    t1 = time.perf_counter()
    callback = expect(
        http.post(authorize, data={"email": email, "password": PASSWORD}),
        d.callback_prefix,
        "idp",
    )
    return callback, t1 - t0, time.perf_counter() - t1


def sign_in(d: Deployment, email: str) -> Sample:
    sample = Sample()
    try:
        with new_browser() as http:
            start = time.perf_counter()
            callback, sample.login, sample.idp = start_flow(d, http, email)
            t2 = time.perf_counter()
            expect(http.get(callback), f"{d.storefront}/login/token/", "callback")
            end = time.perf_counter()
            sample.callback, sample.whole = end - t2, end - start
    except (StepError, httpx.HTTPError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
    return sample


@dataclass
class Staged:
    callback: str
    cookies: str


def stage(d: Deployment, email: str) -> Staged | str:
    try:
        with new_browser() as http:
            callback, _, _ = start_flow(d, http, email)
            cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies.jar)
            return Staged(callback=callback, cookies=cookies)
    except (StepError, httpx.HTTPError) as exc:
        return f"{type(exc).__name__}: {exc}"


def timed_get(url: str, prefix: str, headers: dict[str, str] | None = None) -> Sample:
    """One GET on a fresh connection, as a browser arriving from elsewhere makes it."""
    sample = Sample()
    try:
        with new_browser() as http:
            t0 = time.perf_counter()
            expect(http.get(url, headers=headers), prefix, "callback")
            sample.callback = sample.whole = time.perf_counter() - t0
    except (StepError, httpx.HTTPError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
    return sample


def run_concurrently(
    concurrency: int, jobs: Sequence[Any], fn: Callable[[Any], Any]
) -> tuple[list[Any], float]:
    """Closed loop: ``concurrency`` threads take the next job as soon as they finish one."""
    results: list[Any] = [None] * len(jobs)
    next_job = iter(range(len(jobs)))
    lock = threading.Lock()
    gate = threading.Barrier(concurrency + 1)

    def worker() -> None:
        gate.wait()
        while True:
            with lock:
                i = next(next_job, None)
            if i is None:
                return
            results[i] = fn(jobs[i])

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return results, time.perf_counter() - start


# -- measurements -----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class CPU:
    broker: float = 0.0
    upstreams: float = 0.0
    loadgen: float = 0.0
    floor: float = 0.0
    machine: float = 0.0  # every CPU's busy time, whoever used it

    @property
    def others(self) -> float:
        """CPU used meanwhile by processes not part of the benchmark (tests, builds...)."""
        ours = self.broker + self.upstreams + self.loadgen + self.floor
        return max(0.0, self.machine - ours)


CPU_PARTS = ("broker", "upstreams", "loadgen", "floor", "machine")


def machine_busy() -> float:
    """Busy seconds of all CPUs since boot, from /proc/stat."""
    with contextlib.suppress(OSError):
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        # user, nice, system, steal. Not irq/softirq: the kernel's loopback networking for our
        # own processes lands there and in no process's time. Guest time is already in user.
        busy = values[0] + values[1] + values[2] + (values[7] if len(values) > 7 else 0)
        return busy / os.sysconf("SC_CLK_TCK")
    return 0.0


def cpu_now(d: Deployment) -> CPU:
    return CPU(
        broker=tree_cpu(d.broker_pid),
        upstreams=tree_cpu(d.upstreams_pid),
        loadgen=self_cpu(),
        floor=tree_cpu(d.floor_pid),
        machine=machine_busy(),
    )


def cpu_delta(a: CPU, b: CPU) -> CPU:
    return CPU(*(getattr(b, f) - getattr(a, f) for f in CPU_PARTS))


@dataclass
class Batch:
    label: str
    concurrency: int
    samples: list[Sample]
    elapsed: float
    cpu: CPU
    api: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.samples if s.error is not None]

    @property
    def rate(self) -> float:
        return len(self.ok) / self.elapsed if self.elapsed else math.nan

    def ms(self, step: str, p: float) -> float:
        return percentile([getattr(s, step) for s in self.ok], p) * 1000

    @property
    def others_percent(self) -> float:
        """Share of the machine other processes used during the batch."""
        capacity = self.elapsed * len(os.sched_getaffinity(0))
        return 100 * self.cpu.others / capacity if capacity else math.nan

    def cpu_ms(self, part: str) -> float:
        seconds: float = getattr(self.cpu, part)
        return seconds / max(1, len(self.ok)) * 1000

    @property
    def api_per_signin(self) -> float:
        return sum(self.api.values()) / max(1, len(self.ok))


class Sandbox:
    """The sandbox store's control API, for counting the broker's BigCommerce requests."""

    def __init__(self, d: Deployment) -> None:
        base = f"{d.sandbox_url}/_sandbox/stores/{STORE_HASH}"
        self.http = httpx.Client(base_url=base, timeout=30)

    def clear(self) -> None:
        self.http.delete("/requests").raise_for_status()

    def counted(self) -> Counter[str]:
        response = self.http.get("/requests")
        response.raise_for_status()
        return Counter(f"{r['method']} {r['path']}" for r in response.json())


def signin_batch(
    d: Deployment, sandbox: Sandbox, label: str, concurrency: int, emails: list[str]
) -> Batch:
    sandbox.clear()
    before = cpu_now(d)
    samples, elapsed = run_concurrently(concurrency, emails, lambda e: sign_in(d, e))
    cpu = cpu_delta(before, cpu_now(d))
    return Batch(label, concurrency, samples, elapsed, cpu, sandbox.counted())


def callback_batch(d: Deployment, concurrency: int, emails: list[str]) -> Batch:
    staged_or_errors, _ = run_concurrently(2, emails, lambda e: stage(d, e))
    staged = [s for s in staged_or_errors if isinstance(s, Staged)]
    failed = [Sample(error=s) for s in staged_or_errors if isinstance(s, str)]
    before = cpu_now(d)
    samples, elapsed = run_concurrently(
        concurrency,
        staged,
        lambda s: timed_get(s.callback, f"{d.storefront}/login/token/", {"Cookie": s.cookies}),
    )
    return Batch("callback", concurrency, samples + failed, elapsed, cpu_delta(before, cpu_now(d)))


def floor_batch(d: Deployment, concurrency: int, count: int) -> Batch:
    url = f"{d.floor_url}/{STORE_KEY}/oidc/{CONN}/callback?code={'c' * 43}&state={'s' * 43}"
    before = cpu_now(d)
    samples, elapsed = run_concurrently(
        concurrency,
        range(count),
        lambda _: timed_get(url, "http://127.0.0.1/s/floor1/login/token/"),
    )
    return Batch("floor", concurrency, samples, elapsed, cpu_delta(before, cpu_now(d)))


def check_storefront_once(d: Deployment, email: str) -> str:
    """Follow one sign-in to the storefront: the login JWT must be accepted."""
    with new_browser() as http:
        callback, _, _ = start_flow(d, http, email)
        token_url = expect(http.get(callback), f"{d.storefront}/login/token/", "callback")
        page = http.get(token_url, follow_redirects=True)
    path = urlsplit(str(page.url)).path
    if page.status_code != 200 or not path.endswith(REDIRECT_TO) or email not in page.text:
        return f"FAILED: storefront answered {page.status_code} at {path}"
    return f"ok: landed on {path} signed in as {email}"


# -- output -----------------------------------------------------------------------------------


def machine() -> list[str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    libs = ", ".join(
        f"{name} {version(name)}"
        for name in ("flask", "gunicorn", "authlib", "httpx", "joserfc", "sqlalchemy")
    )
    return [
        f"machine: nproc {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), {model}, "
        f"{platform.system()} {platform.release()}",
        f"python:  {platform.python_implementation()} {platform.python_version()}; {libs}",
    ]


def fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def print_signins(batches: list[Batch]) -> None:
    print("\nFull sign-ins, closed loop (ms as the shopper's client sees them over loopback)")
    header = (
        f"{'conc':>4} {'shoppers':<9} {'n':>4} {'sign-ins/s':>10}"
        f"  {'callback p50':>12} {'p99':>6}  {'whole p50':>9} {'p99':>6}"
        f"  {'login p50':>9} {'IdP p50':>7}  {'API req':>7}"
        f"  {'CPU ms/sign-in: broker':>22} {'upstr':>5} {'loadgen':>7}  {'others':>6} {'err':>3}"
    )
    print(header)
    print("-" * len(header))
    for b in batches:
        print(
            f"{b.concurrency:>4} {b.label:<9} {len(b.ok):>4} {fmt(b.rate):>10}"
            f"  {fmt(b.ms('callback', 50)):>12} {fmt(b.ms('callback', 99)):>6}"
            f"  {fmt(b.ms('whole', 50)):>9} {fmt(b.ms('whole', 99)):>6}"
            f"  {fmt(b.ms('login', 50)):>9} {fmt(b.ms('idp', 50)):>7}"
            f"  {fmt(b.api_per_signin, 2):>7}  {fmt(b.cpu_ms('broker')):>22}"
            f" {fmt(b.cpu_ms('upstreams')):>5} {fmt(b.cpu_ms('loadgen')):>7}"
            f"  {fmt(b.others_percent, 0) + '%':>6} {len(b.errors):>3}"
        )
    for kind in ("new", "returning"):
        mix: Counter[str] = Counter()
        n = 0
        for b in batches:
            if b.label == kind:
                mix.update(b.api)
                n += len(b.ok)
        if n:
            parts = ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(mix.items())) or "none"
            total = sum(mix.values()) / n
            print(f"  BigCommerce API requests per {kind} sign-in: {total:.2f} ({parts})")
    for kind in ("new", "returning"):
        cpu = [b.cpu_ms("broker") for b in batches if b.label == kind]
        if cpu:
            ms = sorted(cpu)[len(cpu) // 2]
            print(
                f"  broker CPU per {kind} sign-in {ms:.1f} ms (median of the levels): the broker"
                f" alone could do ~{1000 / ms:.0f} a second per core"
            )


def print_ratios(pairs: list[tuple[Batch, Batch]]) -> None:
    print("\nThe callback alone vs the floor, same gunicorn settings, fresh connection per request")
    header = (
        f"{'conc':>4} {'n':>4}  {'callback/s':>10} {'p50 ms':>6} {'p99':>6} {'CPU ms':>6}"
        f"  {'floor/s':>7} {'p50 ms':>6} {'p99':>5} {'CPU ms':>6}"
        f"  {'callback / floor: p50':>21} {'p99':>5} {'1/rate':>6} {'CPU':>5}  {'others':>6}"
        f" {'err':>3}"
    )
    print(header)
    print("-" * len(header))
    for cb, fl in pairs:
        cb_cpu, fl_cpu = cb.cpu_ms("broker"), fl.cpu_ms("floor")
        print(
            f"{cb.concurrency:>4} {len(cb.ok):>4}  {fmt(cb.rate):>10}"
            f" {fmt(cb.ms('callback', 50)):>6} {fmt(cb.ms('callback', 99)):>6} {fmt(cb_cpu):>6}"
            f"  {fmt(fl.rate):>7} {fmt(fl.ms('callback', 50), 2):>6}"
            f" {fmt(fl.ms('callback', 99)):>5} {fmt(fl_cpu, 2):>6}"
            f"  {fmt(cb.ms('callback', 50) / fl.ms('callback', 50)):>21}"
            f" {fmt(cb.ms('callback', 99) / fl.ms('callback', 99)):>5}"
            f" {fmt(fl.rate / cb.rate):>6} {fmt(cb_cpu / fl_cpu if fl_cpu else math.nan):>5}"
            f"  {fmt(max(cb.others_percent, fl.others_percent), 0) + '%':>6}"
            f" {len(cb.errors) + len(fl.errors):>3}"
        )
    print(
        "  CPU ms: the broker's (or the floor's) gunicorn processes, per request. The callback\n"
        "  also waits for the IdP's token endpoint (one RSA signature) and the store's API, which\n"
        "  run in the upstreams process on the same cores. others: the share of the machine that\n"
        "  processes outside the benchmark used meanwhile (the higher, the noisier the row)."
    )


# -- the benchmark ----------------------------------------------------------------------------


def source_state(src: Path, env: dict[str, str]) -> str:
    """Which broker the child processes import, and its git state (others edit it meanwhile)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import broker; print(broker.__file__)"],
        capture_output=True,
        text=True,
        cwd=src,
        env={**os.environ, **env},
        check=False,
    )
    where = str(Path(probe.stdout.strip()).parent) if probe.returncode == 0 else "?"
    git = ["git", "-C", str(src)]
    head = subprocess.run([*git, "log", "-1", "--format=%h %cs"], capture_output=True, text=True)
    if head.returncode != 0:
        return f"broker from {where} (not a git checkout)"
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "broker"], capture_output=True, text=True
    ).stdout.splitlines()
    changes = f" + {len(dirty)} uncommitted change(s) in broker/" if dirty else ", clean"
    return f"broker from {where}: commit {head.stdout.strip()}{changes}"


def source(args: argparse.Namespace) -> tuple[Path, dict[str, str]]:
    """The broker tree to benchmark, and the environment that makes children import it."""
    if not args.src:
        return ROOT, {}
    src = Path(args.src).resolve()
    sys.path.insert(0, str(src))  # for --profile, which imports the broker here
    return src, {"PYTHONPATH": str(src)}


def bench(args: argparse.Namespace) -> int:
    levels = [int(c) for c in args.levels.split(",")]
    n = args.signins
    src, child_env = source(args)
    workdir = Path(tempfile.mkdtemp(prefix="broker-bench-"))
    # gunicorn (25+) opens a control socket at $XDG_RUNTIME_DIR/gunicorn.ctl, else at
    # ~/.gunicorn/gunicorn.ctl: one path for every gunicorn of the user. The broker's goes in
    # workdir (`broker serve` has no option for it); the floor and the upstreams open none.
    child_env = {**child_env, "XDG_RUNTIME_DIR": str(workdir)}
    broker_port, floor_port = free_port(), free_port()
    broker_url = f"http://{HOST}:{broker_port}"
    print("Storefront SSO broker: sign-in benchmark (bench/login.py)")
    for line in machine():
        print(line)
    print(f"source:  {source_state(src, child_env)}")
    print(
        f"settings: gunicorn gthread, {args.workers} workers x {args.threads} threads (broker and"
        f" floor); SQLite in a temporary directory; IdP and store under"
        f" {'werkzeug' if args.werkzeug else 'gunicorn (1 worker x 16 threads)'};\n"
        f"          concurrency {args.levels}; per level {n} new + {n} returning sign-ins,"
        f" {n} lone callbacks, {args.floor} floor requests; warm-up {args.warmup} sign-ins"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    users = 1 + args.warmup + n * len(levels)
    try:
        with upstreams(workdir, users, [broker_url], child_env, args.werkzeug) as (urls, secrets_):
            d = Deployment(
                workdir=workdir,
                broker_url=broker_url,
                floor_url=f"http://{HOST}:{floor_port}",
                sandbox_url=urls["sandbox"],
                idp_url=urls["idp"],
                store_token=secrets_["store_token"],
                upstreams_pid=secrets_["pid"],
            )
            config = workdir / "broker.toml"
            config.write_text(broker_config(d, broker_port, urls))
            py, workers, threads = sys.executable, str(args.workers), str(args.threads)
            serve = [
                py,
                "-m",
                "broker.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                str(broker_port),
                "--workers",
                workers,
                "--threads",
                threads,
            ]
            # What `broker serve` sets (broker/cli.py), on the command line.
            floor = [py, "-m", "gunicorn", "--worker-class", "gthread",
                     "--workers", workers, "--threads", threads, "--timeout", "30",
                     "--graceful-timeout", "10", "--bind", f"{HOST}:{floor_port}",
                     "--no-control-socket",
                     "bench.floor:app"]  # fmt: skip
            broker_env_ = {**child_env, **broker_env(secrets_)}
            with (
                gunicorn_process(serve, src, workdir / "broker.log", f"{broker_url}/readyz",
                                 broker_env_) as d.broker_pid,
                gunicorn_process(floor, ROOT, workdir / "floor.log", f"{d.floor_url}/healthz",
                                 {}) as d.floor_pid,
            ):  # fmt: skip
                return run_levels(d, args, levels, n)
    finally:
        took = time.perf_counter() - started
        print(f"\ntotal {took:.0f} s; load average after: {os.getloadavg()[0]:.2f}")
        if args.keep:
            print(f"kept {workdir} (broker.log, upstreams.log, floor.log, broker.toml)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_levels(d: Deployment, args: argparse.Namespace, levels: list[int], n: int) -> int:
    sandbox = Sandbox(d)
    next_user = 0

    def take(count: int) -> list[str]:
        nonlocal next_user
        emails = [user_email(i) for i in range(next_user, next_user + count)]
        next_user += count
        return emails

    print(f"storefront check: {check_storefront_once(d, take(1)[0])}")
    # Warm-up: every gunicorn worker fetches discovery and JWKS, fills its pools, imports all.
    warm = signin_batch(d, sandbox, "warm-up", 2, take(args.warmup))
    warm_floor = floor_batch(d, 2, max(20, args.floor // 4))
    for batch in (warm, warm_floor):
        if batch.errors:
            print(f"warm-up errors: {len(batch.errors)}, e.g. {batch.errors[0]}")

    batches: list[Batch] = []
    pairs: list[tuple[Batch, Batch]] = []
    for c in levels:
        emails = take(n)
        batches.append(signin_batch(d, sandbox, "new", c, emails))
        batches.append(signin_batch(d, sandbox, "returning", c, emails))
        pairs.append((callback_batch(d, c, emails), floor_batch(d, c, args.floor)))
        print(f"  concurrency {c}: done", flush=True)
    print_signins(batches)
    print_ratios(pairs)
    errors = [e for b in batches + [x for p in pairs for x in p] for e in b.errors]
    if errors:
        print(f"\nerrors: {len(errors)}; most common: {Counter(errors).most_common(3)}")
    return 1 if errors else 0


# -- the profile --------------------------------------------------------------------------------


class Timings:
    """Wall and CPU time (this thread) spent in instrumented functions, per label."""

    def __init__(self) -> None:
        self.active = False
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    def take(self) -> Timings:
        """What was recorded so far; start again from zero."""
        taken = Timings()
        taken.wall, taken.cpu, taken.calls = self.wall, self.cpu, self.calls
        self.wall, self.cpu, self.calls = defaultdict(float), defaultdict(float), Counter()
        return taken

    def add(self, label: str, wall: float, cpu: float) -> None:
        self.wall[label] += wall
        self.cpu[label] += cpu
        self.calls[label] += 1

    def wrap(self, label: str | Callable[..., str], function: Callable[..., Any]) -> Any:
        """``function`` timed under ``label`` (or under ``label(*args)``) while active."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return function(*args, **kwargs)
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                name = label(*args) if callable(label) else label
                self.add(name, time.perf_counter() - w0, time.thread_time() - c0)

        timed.__wrapped__ = function  # type: ignore[attr-defined]
        return timed


def instrument(timings: Timings, app: Any, ports: dict[int, str]) -> None:
    """Wrap the callback's parts where the broker looks them up (classes, module globals)."""
    import authlib.oidc.core
    import httpx as httpx_module
    import joserfc.jwt
    from sqlalchemy.engine.default import DefaultDialect

    from broker.bigcommerce.api import BigCommerceClient
    from broker.storage import SQLStorage
    from broker.upstream.oidc import OIDCProvider

    def patch_function(module_name: str, name: str, label: str) -> None:
        module = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        original = getattr(module, name, None)
        if original is None:
            return
        wrapped = timings.wrap(label, original)
        for mod_name, mod in list(sys.modules.items()):
            if mod_name.startswith("broker") or mod is module:
                for attr, value in list(vars(mod).items()):
                    if value is original:
                        setattr(mod, attr, wrapped)

    def patch_method(cls: type, name: str, label: str) -> None:
        original = getattr(cls, name, None)
        if original is not None:
            setattr(cls, name, timings.wrap(label, original))

    for endpoint, view in list(app.view_functions.items()):
        if endpoint.endswith("oidc_callback"):
            app.view_functions[endpoint] = timings.wrap("view", view)
    patch_function("broker.web.flows", "complete", "flows.complete")
    for name in ("handle_callback", "_oauth_client", "_redeem", "verify_id_token", "_userinfo"):
        patch_method(OIDCProvider, name, f"oidc.{name}")
    patch_method(authlib.oidc.core.CodeIDToken, "validate", "CodeIDToken.validate")
    joserfc.jwt.decode = timings.wrap("jwt.decode", joserfc.jwt.decode)
    joserfc.jwt.encode = timings.wrap("jwt.encode", joserfc.jwt.encode)
    patch_function("broker.web.signin", "finish_sign_in", "finish_sign_in")
    patch_function("broker.accounts", "resolve_customer", "resolve_customer")
    patch_function("broker.bigcommerce.login_token", "mint_login_token", "mint_login_token")
    patch_function("broker.events", "log_event", "log_event")
    for name in dir(SQLStorage):  # its verbs come from one repository class per aggregate
        if callable(getattr(SQLStorage, name)) and not name.startswith("_"):
            patch_method(SQLStorage, name, f"storage.{name}")
    for name, value in list(vars(BigCommerceClient).items()):
        if callable(value) and not name.startswith("_") and name != "close":
            patch_method(BigCommerceClient, name, f"store API {name}")
    patch_method(DefaultDialect, "do_commit", "sqlite COMMIT")
    patch_method(DefaultDialect, "do_execute", "sqlite execute")
    patch_method(DefaultDialect, "do_execute_no_params", "sqlite execute")

    def peer(_transport: Any, request: Any) -> str:
        return f"HTTP to the {ports.get(request.url.port, 'other')}"

    patch_method(httpx_module.HTTPTransport, "handle_request", peer)  # type: ignore[arg-type]


#: The rows of the breakdown: (label in Timings, how to show it). Indented as the calls nest.
BREAKDOWN = [
    ("whole", "callback request, whole (Flask test client)"),
    ("view", "  the view, sso.oidc_callback"),
    ("flows.complete", "    flows.complete (take the pending flow)"),
    ("oidc.handle_callback", "    OIDCProvider.handle_callback"),
    ("oidc._oauth_client", "      building Authlib's OAuth2Client"),
    ("oidc._redeem", "      redeem the code (Authlib fetch_token)"),
    ("oidc.verify_id_token", "      verify_id_token"),
    ("jwt.decode", "        joserfc jwt.decode (RS256 verify)"),
    ("CodeIDToken.validate", "        Authlib CodeIDToken.validate"),
    ("oidc._userinfo", "      userinfo"),
    ("finish_sign_in", "    finish_sign_in"),
    ("resolve_customer", "      resolve_customer"),
    ("mint_login_token", "      mint_login_token"),
    ("jwt.encode", "        joserfc jwt.encode (HS256)"),
    ("log_event", "      log_event (one JSON log line)"),
]


def profile(args: argparse.Namespace) -> int:
    """The broker in this process (Flask test client): where a callback's time goes."""
    import cProfile
    import logging
    import pstats

    src, child_env = source(args)
    from broker.app import create_app
    from broker.config import load_settings

    count = args.profile
    workdir = Path(tempfile.mkdtemp(prefix="broker-profile-"))
    child_env = {**child_env, "XDG_RUNTIME_DIR": str(workdir)}
    broker_port = free_port()  # nothing listens there: the test client needs no server
    broker_url = f"http://{HOST}:{broker_port}"
    print("Storefront SSO broker: where the OIDC callback's time goes (bench/login.py --profile)")
    for line in machine():
        print(line)
    print(f"source:  {source_state(src, child_env)}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    users = 20 + count
    try:
        with contextlib.ExitStack() as stack:
            urls, secrets_ = stack.enter_context(
                upstreams(workdir, users, [broker_url], child_env, args.werkzeug)
            )
            d = Deployment(
                workdir, broker_url, "", urls["sandbox"], urls["idp"], secrets_["store_token"]
            )
            config = workdir / "broker.toml"
            config.write_text(broker_config(d, broker_port, urls))
            os.environ.update(broker_env(secrets_))
            app = create_app(load_settings(config))
            # The broker's JSON log lines are still formatted and written, to /dev/null.
            devnull = stack.enter_context(open(os.devnull, "w"))
            for handler in logging.getLogger("broker").handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(devnull)
            timings = Timings()
            ports = {urlsplit(urls["idp"]).port: "IdP", urlsplit(urls["sandbox"]).port: "store"}
            instrument(timings, app, ports)  # type: ignore[arg-type]
            idp = stack.enter_context(new_browser())

            def one(email: str, profiler: cProfile.Profile | None = None) -> None:
                client = app.test_client()
                login = client.get(f"/{STORE_KEY}/login/{CONN}?redirect_to={REDIRECT_TO}")
                authorize = login.headers["location"]
                answer = idp.post(authorize, data={"email": email, "password": PASSWORD})
                path = expect(answer, d.callback_prefix, "idp")[len(broker_url) :]
                timings.active = profiler is None  # the timers stay out of cProfile's pass
                if profiler:
                    profiler.enable()
                w0, c0 = time.perf_counter(), time.thread_time()
                response = client.get(path)
                timings.add("whole", time.perf_counter() - w0, time.thread_time() - c0)
                if profiler:
                    profiler.disable()
                timings.active = False
                if response.status_code != 302 or "/login/token/" not in response.location:
                    raise StepError(f"callback: {response.status_code}")

            for i in range(20):  # warm-up: discovery, JWKS, pools, imports
                one(user_email(i))
            timings.take()
            results: dict[str, Timings] = {}
            for kind in ("new", "returning"):
                for i in range(20, 20 + count):
                    one(user_email(i))
                results[kind] = timings.take()
            profiler = cProfile.Profile()
            for i in range(20, 20 + count):
                one(user_email(i), profiler)
            report_profile(results, count, profiler, pstats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


def report_profile(results: dict[str, Timings], count: int, profiler: Any, pstats: Any) -> None:
    print(f"\n{count} callbacks of NEW shoppers, then the same {count} as RETURNING shoppers.")
    print("Per callback: calls, wall ms, CPU ms of this thread (thread_time); timers around")
    print("the functions themselves, no profiler running. Nested rows are part of their parent.")
    header = (
        f"{'':<48} {'NEW: calls':>10} {'wall':>6} {'CPU':>6}"
        f"  {'RET: calls':>10} {'wall':>6} {'CPU':>6}"
    )
    print(header)
    print("-" * len(header))
    new, ret = results["new"], results["returning"]

    def row(label: str, key: str) -> None:
        cells = []
        for t in (new, ret):
            calls = t.calls[key] / count
            wall, cpu = t.wall[key] / count * 1000, t.cpu[key] / count * 1000
            cells.append(
                f"{fmt(calls, 1):>10} {wall:>6.2f} {cpu:>6.2f}" if calls else f"{'-':>10} {'':>13}"
            )
        print(f"{label:<48} {cells[0]}  {cells[1]}")

    for key, label in BREAKDOWN:
        if new.calls[key] or ret.calls[key]:
            row(label, key)
    print("Storage (SQLAlchemy Core on SQLite), every call:")
    storage = sorted({k for t in (new, ret) for k in t.calls if k.startswith("storage.")})
    for key in storage:
        row(f"  {key}", key)
    for key in ("sqlite execute", "sqlite COMMIT"):
        row(f"  of which {key} (the driver)", key)
    print("HTTP out (httpx transport: connect, send, wait, parse), every call:")
    for key in sorted({k for t in (new, ret) for k in t.calls if k.startswith("HTTP to")}):
        row(f"  {key}", key)
    for key in sorted({k for t in (new, ret) for k in t.calls if k.startswith("store API")}):
        row(f"  {key}", key)
    for kind, t in (("NEW", new), ("RETURNING", ret)):
        whole_cpu = t.cpu["whole"]
        sql = sum(v for k, v in t.cpu.items() if k.startswith("storage."))
        http = sum(v for k, v in t.cpu.items() if k.startswith("HTTP to"))
        print(
            f"  {kind}: CPU in storage {100 * sql / whole_cpu:.0f}%, in HTTP out"
            f" {100 * http / whole_cpu:.0f}% of the callback's {whole_cpu / count * 1000:.2f} ms"
        )
    print(f"\ncProfile, {count} RETURNING callbacks again, top 25 by own time (profiler inflates")
    print("Python-heavy code about 2x; use it for where, not how much):")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--levels", default="1,4,16", help="concurrency levels (default 1,4,16)")
    add("--signins", type=int, default=200, help="sign-ins per batch (default 200)")
    add("--floor", type=int, default=600, help="floor requests per level (default 600)")
    add("--warmup", type=int, default=30, help="warm-up sign-ins (default 30)")
    add("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    add("--threads", type=int, default=4, help="threads per worker (default 4)")
    add("--src", help="benchmark the broker in this source tree (default: this checkout)")
    add(
        "--werkzeug",
        action="store_true",
        help="serve the IdP and store with werkzeug (no keep-alive)",
    )
    add("--keep", action="store_true", help="keep the temporary directory and the logs")
    add("--profile", type=int, metavar="N", help="instead: break down N callbacks in-process")
    add("--upstreams", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.upstreams:
        return upstreams_main()
    if args.profile:
        return profile(args)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
