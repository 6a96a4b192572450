"""Benchmark a SCIM import through the broker while shoppers sign in through the same store.

    .venv/bin/python bench/scim_import.py --users 300      # a few minutes
    .venv/bin/python bench/scim_import.py                  # 2000 users: about 15 minutes

The servers are those of ``bench/login.py`` (whose plumbing this script imports): the broker
as operators run it (``broker serve``, gunicorn gthread, SQLite in a temporary directory) with
SCIM enabled on its connection, and the sandbox store and the development IdP in a child
process under gunicorn. Unlike ``bench/login.py``, the store keeps its real rate window
(BigCommerce's default: 150 requests per 30 s, ``broker/sandbox/store/faults.py``).

Two loads run at once, from this process:

- the import: ``--concurrency`` pushers, each an IdP's SCIM client (one keep-alive httpx
  client with the connection's bearer token, made by ``broker scim token``). For every user,
  as Okta does: ``GET /Users?filter=userName eq "..."``, then ``POST /Users`` with an
  Okta-shaped body (externalId, userName, name, emails, displayName, active). A 429 or a 5xx
  is retried after its ``Retry-After`` (1 s without one), as often as it takes; a 409 after a
  retry is looked up (the earlier try may have made the user).
- shoppers: one OIDC sign-in every ``--signin-every`` seconds (2 by default), open loop (a
  slow sign-in does not delay the next), each a first sign-in of a new shopper at the dev IdP,
  so each costs the store's quota as the import does (lookup + create).

Printed: duration, users created, the store requests of the import and of the sign-ins (from
the sandbox's request log, told apart by the e-mail in the query or body) and their share of
the quota over the run, the 429s the store answered the broker and the 429s the broker
answered the IdP, the sign-ins' success and latency during the import (beside a quiet
baseline), a timeline per 30 s, and whether every user ended as one customer. No timing is
asserted; the exit status is 1 when a user was lost or a count does not match.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
try:
    import httpx
except ImportError:  # run with a Python that lacks the project: use the project's virtualenv
    VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
    if not VENV_PYTHON.exists() or Path(sys.executable) == VENV_PYTHON:
        raise
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # noqa: S606

from bench import login as lb  # noqa: E402 - after the virtualenv check

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
IMPORT_DOMAIN = "import.example"  # SCIM users; shoppers are @bench.example (bench/login.py)
WINDOW_S = 30.0  # the sandbox's window (broker/sandbox/store/faults.py WINDOW_MS)


def import_email(i: int) -> str:
    return f"employee{i:05d}@{IMPORT_DOMAIN}"


def okta_user(i: int) -> dict[str, Any]:
    """A POST /Users body as Okta sends it."""
    email = import_email(i)
    return {
        "schemas": [USER_SCHEMA],
        "userName": email,
        "externalId": f"00u{i:017d}",
        "name": {"givenName": "Imported", "familyName": f"Employee{i}"},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"Imported Employee{i}",
        "locale": "en-US",
        "active": True,
    }


# -- the IdP's SCIM side -------------------------------------------------------------------------


@dataclass
class PushStats:
    created: int = 0
    existed: int = 0  # a 409 whose user the lookup then found (an earlier try made it)
    lost: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)  # every SCIM answer, by request
    retry_after: Counter[str] = field(default_factory=Counter)  # the Retry-After values of 429s
    slept: float = 0.0  # seconds the pushers waited on Retry-After, summed
    events: list[tuple[float, str]] = field(default_factory=list)  # (time.time(), what)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, what: str, status: str) -> None:
        with self.lock:
            self.statuses[f"{what} {status}"] += 1
            self.events.append((time.time(), f"{what} {status}"))


class Pusher:
    """One of the IdP's concurrent SCIM connections."""

    def __init__(self, base: str, token: str, stats: PushStats, max_wait: float) -> None:
        self.base = base
        self.stats = stats
        self.max_wait = max_wait
        self.http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON,
                     "Accept": SCIM_JSON, "User-Agent": "Okta SCIM Client (bench)"},
            timeout=60, verify=lb._SSL, trust_env=False,
        )  # fmt: skip

    def close(self) -> None:
        self.http.close()

    def _send(self, what: str, method: str, path: str, **kw: Any) -> httpx.Response | None:
        """One request; None after a retryable answer (already waited for), to try again."""
        try:
            response = self.http.request(method, self.base + path, **kw)
        except httpx.HTTPError as exc:
            self.stats.note(what, type(exc).__name__)
            self._wait(1.0)
            return None
        status = response.status_code
        self.stats.note(what, str(status))
        if status == 429 or status >= 500:
            header = response.headers.get("Retry-After", "")
            wait = float(header) if header.isdigit() else 1.0
            if status == 429:
                with self.stats.lock:
                    self.stats.retry_after[header or "(none)"] += 1
            self._wait(wait)
            return None
        return response

    def _wait(self, seconds: float) -> None:
        with self.stats.lock:
            self.stats.slept += seconds
        time.sleep(seconds)

    def _find(self, user_name: str) -> bool | None:
        """Whether the broker has this userName (None: not known yet, retry)."""
        found = self._send("GET", "GET", "/Users", params={"filter": f'userName eq "{user_name}"'})
        if found is None:
            return None
        if found.status_code != 200:
            raise RuntimeError(f"lookup answered {found.status_code}: {found.text[:200]}")
        return bool(found.json().get("totalResults"))

    def push(self, i: int) -> None:
        body = okta_user(i)
        give_up = time.monotonic() + self.max_wait
        tried_post = False
        while time.monotonic() < give_up:
            exists = self._find(body["userName"])
            if exists is None:
                continue
            if exists:
                with self.stats.lock:
                    self.stats.existed += 1
                return
            answer = self._send("POST", "POST", "/Users", json=body)
            if answer is None:
                tried_post = True
                continue
            if answer.status_code == 201:
                with self.stats.lock:
                    self.stats.created += 1
                return
            if answer.status_code == 409 and tried_post:
                continue  # the lookup at the top finds what the earlier try made
            raise RuntimeError(f"POST /Users answered {answer.status_code}: {answer.text[:200]}")
        with self.stats.lock:
            self.stats.lost.append(f"{body['userName']}: still refused after {self.max_wait:.0f} s")

    def run(self, work: queue.Queue[int]) -> None:
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                return
            try:
                self.push(i)
            except (RuntimeError, ValueError) as exc:
                with self.stats.lock:
                    self.stats.lost.append(f"{import_email(i)}: {exc}")


# -- shoppers ------------------------------------------------------------------------------------


@dataclass
class SignIn:
    started: float  # time.time()
    sample: lb.Sample


def shopper_loop(
    d: lb.Deployment, first: int, count: int, every: float, stop: threading.Event
) -> list[SignIn]:
    """One sign-in every ``every`` seconds until ``stop``, each in its own thread (open loop)."""
    done: list[SignIn] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []

    def one(email: str) -> None:
        started = time.time()
        sample = lb.sign_in(d, email)
        with lock:
            done.append(SignIn(started, sample))

    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        email = lb.user_email(first + n % count)  # past `count` they come back as returning
        thread = threading.Thread(target=one, args=(email,), daemon=True)
        thread.start()
        threads.append(thread)
        n += 1
        next_at += every
        stop.wait(max(0.0, next_at - time.monotonic()))
    for thread in threads:
        thread.join(timeout=60)
    return sorted(done, key=lambda s: s.started)


# -- the sandbox's side --------------------------------------------------------------------------


def who(record: dict[str, Any]) -> str:
    """Whose request a store request was: "import", "sign-in" or "other"."""
    text = json.dumps([record.get("query"), record.get("body")])
    if f"@{IMPORT_DOMAIN}" in text:
        return "import"
    if "@bench.example" in text:
        return "sign-in"
    return "other"


@dataclass
class StoreView:
    requests: list[dict[str, Any]]
    customers: list[dict[str, Any]]
    faults: dict[str, Any]


def store_view(d: lb.Deployment) -> StoreView:
    base = f"{d.sandbox_url}/_sandbox/stores/{lb.STORE_HASH}"
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as http:
        return StoreView(
            requests=http.get("/requests").raise_for_status().json(),
            customers=http.get("/customers").raise_for_status().json(),
            faults=http.get("/faults").raise_for_status().json(),
        )


# -- output --------------------------------------------------------------------------------------


def ms(values: list[float], p: float) -> str:
    value = lb.percentile(values, p)
    return "-" if value != value else f"{value * 1000:.0f}"  # NaN: no values


def share(requests: int, quota: int, windows: float) -> str:
    return f"{100 * requests / (quota * windows):.0f} %" if windows else "-"


def report(
    args: argparse.Namespace,
    stats: PushStats,
    baseline: list[lb.Sample],
    signins: list[SignIn],
    view: StoreView,
    t0: float,
    t1: float,
    scim_total: int | None,
) -> int:
    duration = t1 - t0
    quota = int(view.faults.get("quota") or 150)
    windows = max(1.0, duration / WINDOW_S)  # the first window counts whole
    during = [r for r in view.requests if t0 <= r["time"] <= t1]
    by_who = Counter(who(r) for r in during)
    throttled = Counter(who(r) for r in during if r["status"] == 429)
    kinds = Counter(f"{r['method']} {r['path']} {r['status']}" for r in during)
    ok = [s.sample for s in signins if s.sample.error is None]
    failed = Counter((s.sample.error or "")[:70] for s in signins if s.sample.error is not None)
    imported = {
        c["email"].lower() for c in view.customers if c["email"].lower().endswith(IMPORT_DOMAIN)
    }
    per_email = Counter(
        c["email"].lower() for c in view.customers if c["email"].lower().endswith(IMPORT_DOMAIN)
    )
    doubles = sum(1 for n in per_email.values() if n > 1)
    missing = args.users - len({import_email(i) for i in range(args.users)} & imported)
    scim_429 = sum(n for k, n in stats.statuses.items() if k.endswith(" 429"))
    posts = sum(n for k, n in stats.statuses.items() if k.startswith("POST "))

    print("\nResults")
    print(f"  duration of the import:    {duration:.1f} s ({windows:.2f} windows of 30 s)")
    print(
        f"  users created:             {stats.created} of {args.users}"
        f" (+{stats.existed} found made by an earlier try; lost: {len(stats.lost)});"
        f" {args.users / duration:.2f} users/s"
    )
    print(
        f"  SCIM requests of the IdP:  {sum(stats.statuses.values())}"
        f" ({posts} POST /Users, the rest lookups); by answer: "
        + ", ".join(f"{k} {n}" for k, n in sorted(stats.statuses.items()))
    )
    print(
        f"  429s the IdP received:     {scim_429} ({scim_429 / max(1, args.users):.2f} per user);"
        f" Retry-After values: "
        + (", ".join(f"{k} s x{n}" for k, n in sorted(stats.retry_after.items())) or "-")
        + f"; pushers waited {stats.slept:.0f} s in all"
    )
    print(f"  store requests, quota {quota} per 30 s (share = requests / ({quota} x windows)):")
    for part in ("import", "sign-in", "other"):
        print(
            f"    {part:8s} {by_who[part]:6d} requests  {share(by_who[part], quota, windows):>5s}"
            f" of the quota  ({throttled[part]} answered 429)"
        )
    print(
        f"    all      {len(during):6d} requests  {share(len(during), quota, windows):>5s}"
        f" of the quota  ({sum(throttled.values())} answered 429);"
        f" {by_who['import'] / max(1, stats.created):.2f} per imported user"
    )
    print("    by kind: " + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    base_ok = [s for s in baseline if s.error is None]
    print(
        f"  sign-ins during the import: {len(ok)} of {len(signins)} succeeded;"
        f" whole sign-in p50 {ms([s.whole for s in ok], 50)} ms,"
        f" p95 {ms([s.whole for s in ok], 95)} ms, max {ms([s.whole for s in ok], 100)} ms"
        f" (callback p50 {ms([s.callback for s in ok], 50)},"
        f" p95 {ms([s.callback for s in ok], 95)})"
    )
    print(
        f"  sign-ins before, quiet store: {len(base_ok)} of {len(baseline)} succeeded;"
        f" whole p50 {ms([s.whole for s in base_ok], 50)} ms,"
        f" p95 {ms([s.whole for s in base_ok], 95)} ms"
    )
    if ok and base_ok:
        ratio = lb.percentile([s.whole for s in ok], 50) / lb.percentile(
            [s.whole for s in base_ok], 50
        )
        print(f"  sign-in p50 during / before: {ratio:.1f}x")
    for error, n in failed.most_common(5):
        print(f"    failed sign-in x{n}: {error}")
    print(
        f"  customers in the sandbox:  {len(view.customers)} in all, {len(imported)} imported"
        f" e-mails of {args.users}; missing {missing}, duplicated {doubles};"
        f" SCIM totalResults {scim_total}"
    )
    every = missing == 0 and doubles == 0 and not stats.lost and scim_total == args.users
    print(f"  every user ended as a customer: {'yes' if every else 'NO'}")
    for line in stats.lost[:5]:
        print(f"    lost: {line}")
    timeline(stats, signins, during, t0, t1)
    return 0 if every else 1


def timeline(
    stats: PushStats, signins: list[SignIn], during: list[dict[str, Any]], t0: float, t1: float
) -> None:
    """Per 30 s from the start of the import (the sandbox's own windows start at the first
    request after a reset, so a row may straddle two of them)."""
    rows = int((t1 - t0) // WINDOW_S) + 1
    print("\nTimeline, per 30 s from the start of the import")
    print(
        "  from   store req: import sign-in  429 | SCIM: POST 201 POST 429 GET 429 |"
        " sign-ins ok/all  p50 ms  max ms"
    )
    for row in range(rows):
        lo, hi = t0 + row * WINDOW_S, t0 + (row + 1) * WINDOW_S
        reqs = [r for r in during if lo <= r["time"] < hi]
        events = Counter(e for t, e in stats.events if lo <= t < hi)
        mine = [s.sample for s in signins if lo <= s.started < hi]
        good = [s.whole for s in mine if s.error is None]
        print(
            f"  {row * WINDOW_S:4.0f} s"
            f"  {sum(1 for r in reqs if who(r) == 'import'):14d}"
            f" {sum(1 for r in reqs if who(r) == 'sign-in'):8d}"
            f" {sum(1 for r in reqs if r['status'] == 429):4d} |"
            f" {events['POST 201']:10d} {events['POST 429']:8d} {events['GET 429']:7d} |"
            f" {len(good):8d}/{len(mine):<3d} {ms(good, 50):>7s} {ms(good, 100):>7s}"
        )


# -- the run -------------------------------------------------------------------------------------


SCIM_TABLE = f"""
[stores.{lb.STORE_KEY}.connections.{lb.CONN}.scim]
enabled = true
"""


@contextlib.contextmanager
def deployment(
    args: argparse.Namespace, workdir: Path, shoppers: int
) -> Iterator[tuple[lb.Deployment, str]]:
    """The upstreams (store quota back to its default) and the broker; the SCIM token."""
    child_env = {"XDG_RUNTIME_DIR": str(workdir)}
    broker_port = lb.free_port()
    broker_url = f"http://{lb.HOST}:{broker_port}"
    with lb.upstreams(workdir, shoppers, [broker_url], child_env, False) as (urls, secrets_):
        d = lb.Deployment(
            workdir=workdir,
            broker_url=broker_url,
            floor_url="",
            sandbox_url=urls["sandbox"],
            idp_url=urls["idp"],
            store_token=secrets_["store_token"],
            upstreams_pid=secrets_["pid"],
        )
        # bench/login.py lifts the quota; this benchmark is about the real one: no switches.
        faults = f"{d.sandbox_url}/_sandbox/stores/{lb.STORE_HASH}/faults"
        httpx.post(faults, json={}, trust_env=False).raise_for_status()
        config = workdir / "broker.toml"
        config.write_text(lb.broker_config(d, broker_port, urls) + SCIM_TABLE)
        env = {**child_env, **lb.broker_env(secrets_)}
        py = sys.executable
        made = subprocess.run(
            [py, "-m", "broker.cli", "scim", "token", "--config", str(config),
             "--store", lb.STORE_KEY, "--connection", lb.CONN, "--label", "bench import"],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, check=False,
        )  # fmt: skip
        if made.returncode != 0:
            raise SystemExit(f"broker scim token failed:\n{made.stderr}")
        serve = [py, "-m", "broker.cli", "serve", "--config", str(config),
                 "--port", str(broker_port), "--workers", str(args.workers),
                 "--threads", str(args.threads)]  # fmt: skip
        with lb.gunicorn_process(
            serve, ROOT, workdir / "broker.log", f"{broker_url}/readyz", env
        ) as d.broker_pid:
            yield d, made.stdout.strip()


def bench(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="broker-scim-bench-"))
    print("Storefront SSO broker: SCIM import under a store's rate limit (bench/scim_import.py)")
    for line in lb.machine():
        print(line)
    print(f"source:  {lb.source_state(ROOT, {})}")
    print(
        f"settings: broker under gunicorn gthread, {args.workers} workers x {args.threads}"
        f" threads, SQLite; IdP and store under gunicorn; store quota: the sandbox's default\n"
        f"          import of {args.users} users by {args.concurrency} concurrent pushers;"
        f" one new shopper's sign-in every {args.signin_every:g} s meanwhile;"
        f" baseline {args.baseline} sign-ins before"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    # Enough new shoppers for the run: the quota admits at most 2.5 users/s (2 requests each).
    shoppers = 1 + args.baseline + int(args.users / args.signin_every) + 100
    try:
        with deployment(args, workdir, shoppers) as (d, token):
            return run(args, d, token, shoppers)
    finally:
        print(f"\ntotal {time.perf_counter() - started:.0f} s;"
              f" load average after: {os.getloadavg()[0]:.2f}")  # fmt: skip
        if args.keep:
            print(f"kept {workdir} (broker.log, upstreams.log, broker.toml)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, d: lb.Deployment, token: str, shoppers: int) -> int:
    base = f"{d.broker_url}/{lb.STORE_KEY}/scim/{lb.CONN}/v2"
    print(f"storefront check: {lb.check_storefront_once(d, lb.user_email(0))}")
    baseline = []
    for i in range(args.baseline):  # quiet store: a new shopper each, spaced out
        baseline.append(lb.sign_in(d, lb.user_email(1 + i)))
        time.sleep(0.5)
    # A fresh rate window for the run (the checks above spent some of the current one).
    faults = f"{d.sandbox_url}/_sandbox/stores/{lb.STORE_HASH}/faults"
    httpx.post(faults, json={}, trust_env=False).raise_for_status()
    first_shopper = 1 + args.baseline

    stats = PushStats()
    work: queue.Queue[int] = queue.Queue()
    for i in range(args.users):
        work.put(i)
    pushers = [Pusher(base, token, stats, args.max_wait) for _ in range(args.concurrency)]
    stop = threading.Event()
    signins: list[SignIn] = []
    t0 = time.time()
    loop = threading.Thread(
        target=lambda: signins.extend(
            shopper_loop(d, first_shopper, shoppers - first_shopper, args.signin_every, stop)
        ),
        daemon=True,
    )
    loop.start()
    threads = [threading.Thread(target=p.run, args=(work,), daemon=True) for p in pushers]
    for thread in threads:
        thread.start()
    last = time.monotonic()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=1)
        if time.monotonic() - last >= 30:
            last = time.monotonic()
            with stats.lock:
                created, waits = stats.created, sum(stats.retry_after.values())
            print(
                f"  {time.time() - t0:4.0f} s: {created} created, {waits} 429s so far", flush=True
            )
    t1 = time.time()
    stop.set()
    loop.join()
    for pusher in pushers:
        pusher.close()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, trust_env=False) as http:
        listed = http.get(f"{base}/Users", params={"count": "1"}, timeout=60)
        scim_total = listed.json().get("totalResults") if listed.status_code == 200 else None
    return report(args, stats, baseline, signins, store_view(d), t0, t1, scim_total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--users", type=int, default=2000, help="users to import (default 2000)")
    add("--concurrency", type=int, default=4, help="concurrent SCIM pushers (default 4)")
    add("--signin-every", type=float, default=2.0, help="seconds between sign-ins (default 2)")
    add("--baseline", type=int, default=10, help="sign-ins on a quiet store first (default 10)")
    add("--max-wait", type=float, default=900, help="give up on one user after (default 900 s)")
    add("--workers", type=int, default=2, help="broker gunicorn workers (default 2)")
    add("--threads", type=int, default=4, help="threads per worker (default 4)")
    add("--keep", action="store_true", help="keep the temporary directory and the logs")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
