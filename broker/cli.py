"""The broker command: run, check and maintain the single sign-on broker.

Thin commands over the functions the app itself uses (as flaskr's init-db calls init_db):
demo, serve, check, migrate, gc, audit, keys, webhooks register, admin token, scim token,
staff plan|apply|run, rotate-keys. Exit status: 0 fine, 1 a check failed, 2 the
configuration (or a port) is not usable.
(This docstring is the --help text: plain words, no markup.)
"""

from __future__ import annotations

import argparse
import errno
import gc
import json
import logging
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from broker.config import Settings, StoreSettings, load_settings
from broker.errors import BrokerError, ConfigError
from broker.storage import open_storage, schema_revision

if TYPE_CHECKING:
    from broker.admin.checkup import Line

CONFIG_HELP = "the broker's TOML file"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default in its help, where it has one worth saying (not None or False,
    nor for a required option)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action) or text


def _version() -> str:
    try:
        return version("storefront-sso-broker")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="broker",
        description=(__doc__ or "").split("\n\n")[0].replace("\n", " "),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"broker {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(
            name, help=text, description=text, formatter_class=_HelpFormatter
        )
        return sub

    demo = command("demo", "broker, sandbox store and development IdP on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8000, help="the broker's port")
    demo.add_argument(
        "--sandbox-port", type=int, help="the sandbox store's port (default: --port + 1)"
    )
    demo.add_argument(
        "--idp-port", type=int, help="the development IdP's port (default: --port + 2)"
    )
    demo.add_argument(
        "--link",
        choices=("auto", "confirm", "deny"),
        default=None,
        help="try a link policy: the store then already has alice@example.com, with a store "
        "password (without it: no customer exists yet, each is created on the spot)",
    )
    demo.add_argument(
        "--b2b",
        action="store_true",
        help="B2B Edition: example.com users sign in as company users of Example Corp Buyers",
    )
    demo.add_argument(
        "--app",
        action="store_true",
        help="run the broker as a BigCommerce app: install it in the sandbox's control panel",
    )

    serve = command("serve", "run the broker from a config file (gunicorn)")
    serve.add_argument("--config", required=True, help=CONFIG_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on")
    serve.add_argument("--workers", type=int, default=2, help="processes")
    serve.add_argument("--threads", type=int, default=4, help="threads per process")
    serve.add_argument(
        "--keep-alive",
        type=_seconds,
        default=2,
        metavar="SECONDS",
        help="how long an idle connection stays open (behind a load balancer: above its idle "
        "timeout)",
    )

    check = command("check", "validate the config, then reach every store and IdP and list it")
    check.add_argument("--config", required=True, help=CONFIG_HELP)

    migrate = command("migrate", "bring the database to the newest schema")
    migrate.add_argument("--config", required=True, help=CONFIG_HELP)

    gc = command("gc", "delete expired flows, claims, counters and sessions")
    gc.add_argument("--config", required=True, help=CONFIG_HELP)

    audit = command("audit", "print a store's recent audit log entries")
    audit.add_argument("--config", required=True, help=CONFIG_HELP)
    audit.add_argument("--store", required=True, help="the store's key in the config")
    audit.add_argument("--limit", type=int, default=50, help="how many entries")

    keys = command(
        "keys",
        "SAML SP keys: write a key pair to files (--out), or list (--list) and roll over "
        "(--rollover) the broker's own pair, which connections without key files use",
    )
    keys.add_argument("--out", help="directory to write <name>.key and <name>.crt")
    keys.add_argument("--config", help="with --list or --rollover: the config file")
    keys.add_argument("--list", action="store_true", help="the broker's own pairs and their states")
    keys.add_argument(
        "--rollover",
        action="store_true",
        help="add a next pair, published in the SP metadata now, signing from --activate-in-days",
    )
    keys.add_argument(
        "--activate-in-days",
        type=float,
        default=14,
        help="with --rollover: days until the next pair signs (time for IdPs to refresh)",
    )
    keys.add_argument("--name", default="saml-sp", help="the files' name")
    keys.add_argument("--common-name", default="sso-broker", help="the certificate's subject CN")
    keys.add_argument("--days", type=int, default=3650, help="the certificate's validity")

    webhooks = command("webhooks", "BigCommerce webhooks for a store")
    webhook_commands = webhooks.add_subparsers(
        dest="webhooks_command", required=True, metavar="COMMAND"
    )
    register = command("register", "register the broker's webhooks", webhook_commands)
    register.add_argument("--config", required=True, help=CONFIG_HELP)
    register.add_argument("--store", required=True, help="the store's key in the config")

    admin = command("admin", "the admin API of a store")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    token = command(
        "token", "print a new admin API token (shown once; stored hashed)", admin_commands
    )
    token.add_argument("--config", required=True, help=CONFIG_HELP)
    token.add_argument("--store", required=True, help="a store's key, or an installed store's hash")
    token.add_argument("--label", default="broker admin token", help="what the token is for")
    token.add_argument("--revoke", action="store_true", help="revoke every token of the store")

    scim = command("scim", "SCIM 2.0 provisioning of a connection")
    scim_commands = scim.add_subparsers(dest="scim_command", required=True, metavar="COMMAND")
    scim_token = command(
        "token",
        "print a new SCIM token for a connection (shown once; stored hashed)",
        scim_commands,
    )
    scim_token.add_argument("--config", required=True, help=CONFIG_HELP)
    scim_token.add_argument(
        "--store", required=True, help="a store's key, or an installed store's hash"
    )
    scim_token.add_argument("--connection", required=True, help="the connection's key")
    scim_token.add_argument("--label", default="broker scim token", help="what the token is for")
    scim_token.add_argument(
        "--revoke", action="store_true", help="revoke every SCIM token of the connection"
    )

    staff = command("staff", "control-panel users from IdP groups ([stores.X.staff])")
    staff_commands = staff.add_subparsers(dest="staff_command", required=True, metavar="COMMAND")
    for name, text in (
        ("plan", "print what would change and the queue (a dry run; reads the store's users)"),
        ("apply", "plan, queue the changes and carry out what the budget allows now"),
        ("run", "keep carrying out the queue and planning again (the scheduled run)"),
    ):
        sub = command(name, text, staff_commands)
        sub.add_argument("--config", required=True, help=CONFIG_HELP)
        sub.add_argument("--store", help="one store's key (default: every store with [staff])")
        if name == "run":
            sub.add_argument(
                "--every", type=float, default=60.0, help="seconds between runs of the queue"
            )
            sub.add_argument(
                "--plan-every",
                type=float,
                default=900.0,
                help="seconds between plans (each reads the store's users: budget)",
            )

    rotate = command("rotate-keys", "re-encrypt stored secrets with the first [app].encryption_key")
    rotate.add_argument("--config", required=True, help=CONFIG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "migrate":
            return _migrate(args.config)
        if args.command == "gc":
            return _gc(args.config)
        if args.command == "audit":
            return _audit(args.config, args.store, args.limit)
        if args.command == "keys":
            return _keys(args)
        if args.command == "webhooks":
            return _register_webhooks(args.config, args.store)
        if args.command == "admin":
            return _admin_token(args.config, args.store, label=args.label, revoke=args.revoke)
        if args.command == "scim":
            return _scim_token(
                args.config, args.store, args.connection, label=args.label, revoke=args.revoke
            )
        if args.command == "rotate-keys":
            return _rotate_keys(args.config)
        if args.command == "staff":
            return _staff(args)
        return _check(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"config: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port``, or None. Bound with SO_REUSEADDR as
    gunicorn and werkzeug bind, so only a listener there (not a closing connection) counts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        return f"{host} is not an address to listen on ({error.strerror})"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use: pass --port"
            return f"cannot listen on port {port} on {host}: {error.strerror}"
    return None


def _ports_free(ports: Sequence[tuple[str, str, int]]) -> bool:
    """Each (host, flag, port) free, or one line per taken one on stderr."""
    problems = []
    for host, flag, port in ports:
        problem = port_problem(host, port)
        if problem is not None:
            problems.append(problem.replace("pass --port", f"pass {flag}"))
    for problem in problems:
        print(problem, file=sys.stderr)
    return not problems


def _demo(args: argparse.Namespace) -> int:
    from broker.sandbox.demo import HOST, DemoOptions, run_demo

    options = DemoOptions(
        port=args.port,
        sandbox_port=args.sandbox_port,
        idp_port=args.idp_port,
        link=args.link,
        b2b=args.b2b,
    )
    wanted = [
        ("--port", options.port),
        ("--sandbox-port", options.sandbox_port),
        ("--idp-port", options.idp_port),
    ]
    # Checked before anything starts: a taken port is one clear line, not a traceback.
    if not _ports_free([(HOST, flag, port) for flag, port in wanted if port]):
        return 2
    run_demo(options, app=args.app)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from broker import metrics
    from broker.events import (
        configure_json_root,
        configure_logging,
        gunicorn_logconfig,
        gunicorn_logger_class,
    )

    configure_logging()
    configure_json_root()
    # Every line of this process is JSON naming no thread or process (broker.events): the
    # records need not look them up (the logging module's own switches for this).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # Validate in the master first: a broken file stops here with one line per problem,
    # not in every worker.
    settings = load_settings(args.config)
    if not _ports_free([(args.host, "--port", args.port)]):
        return 2
    # Migrate once here, before the workers start, and clear what expired meanwhile.
    applied = _migrate_and_gc(settings)
    metrics_dir = metrics.clear_multiprocess_dir()
    _log_start(settings, args, applied, metrics_dir is not None)
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 30)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("keepalive", args.keep_alive)
            # No access log: callback URLs carry authorization codes.
            self.cfg.set("accesslog", None)
            # gunicorn's own lines (start-up, workers) as JSON, as the broker's are.
            self.cfg.set("logconfig_dict", gunicorn_logconfig())
            self.cfg.set("logger_class", gunicorn_logger_class())
            self.cfg.set(
                "child_exit", lambda _arbiter, worker: metrics.mark_worker_dead(worker.pid)
            )
            # Every gunicorn on a host shares one default control socket path; not ours.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            from broker.app import create_app

            app = create_app(settings)
            # What a worker holds once its app is built lives as long as it does: frozen, it
            # is left out of the collector's full passes, each of which would otherwise walk
            # every one of those objects (some 180,000) during a request.
            gc.collect()
            gc.freeze()
            return app

    _Server().run()
    return 0


def _migrate_and_gc(settings: Settings) -> list[str]:
    """Bring the database to the newest schema; the revisions this applied, oldest first."""
    from alembic.script import ScriptDirectory

    from broker.storage import migrate
    from broker.storage.migrate import MIGRATIONS

    storage = open_storage(settings.broker.database_url, migrate_schema=False)
    try:
        before = schema_revision(storage.engine)
        migrate(storage.engine)
        after = schema_revision(storage.engine)
        storage.gc(int(time.time()), audit_before=audit_cutoff(settings, time.time()))
    finally:
        storage.close()
    if after is None or after == before:
        return []
    script = ScriptDirectory(str(MIGRATIONS))
    return [r.revision for r in reversed(list(script.iterate_revisions(after, before)))]


def _seconds(text: str) -> int:
    """A whole number of seconds, 0 to 3600 (``--keep-alive``; 0: no keep-alive)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 3600 seconds")
    return value


def _log_start(
    settings: Settings, args: argparse.Namespace, applied: list[str], multiprocess: bool
) -> None:
    """One JSON line saying what is being served (no secret: the database URL's password
    is masked)."""
    from sqlalchemy.engine import make_url

    from broker.events import log_event

    try:
        database = make_url(settings.broker.database_url).render_as_string(hide_password=True)
    except Exception:  # a URL SQLAlchemy cannot parse: open_storage has already failed
        database = "?"
    log_event(
        "broker.starting",
        version=_version(),
        base_url=settings.broker.base_url,
        listen=f"{args.host}:{args.port}",
        workers=args.workers,
        threads=args.threads,
        keep_alive=args.keep_alive,
        stores=sorted(settings.stores),
        connections=sorted(
            f"{store.key}/{conn}"
            for store in settings.stores.values()
            for conn in store.connections
        ),
        app=settings.app is not None,
        database=database,
        migrations_applied=applied,
        metrics_multiprocess=multiprocess,
    )


def _keys(args: argparse.Namespace) -> int:
    from pathlib import Path

    from broker.keys import make_key_pair

    if args.list or args.rollover:
        if not args.config or args.out:
            print("--list and --rollover need --config (and no --out)", file=sys.stderr)
            return 2
        return _own_keys(args.config, rollover=args.rollover, days=args.activate_in_days)
    if not args.out:
        print("give --out DIR (or --config F with --list or --rollover)", file=sys.stderr)
        return 2
    try:
        key, cert = make_key_pair(
            Path(args.out), name=args.name, common_name=args.common_name, days=args.days
        )
    except FileExistsError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"ok: wrote {key} (private, mode 600) and {cert}")
    print(f'set sp_key_file = "{key}" and sp_cert_file = "{cert}" on a SAML connection,')
    print("or saml_key_file and saml_cert_file in [broker] for every SAML connection")
    return 0


def _own_keys(path: str, *, rollover: bool, days: float) -> int:
    """``broker keys --list`` / ``--rollover``: the broker's own SP key pairs."""
    import datetime

    from broker.runtime import Runtime

    settings = load_settings(path)
    storage = open_storage(settings.broker.database_url)
    try:
        ring = Runtime(settings, storage).sp_keys
        if rollover:
            added = ring.rollover(activate_in_days=days)
            when = datetime.datetime.fromtimestamp(added.activates_at, datetime.UTC)
            print(f"ok: added the next pair {added.id}, signing from {when:%Y-%m-%d %H:%M} UTC")
            print("each IdP that refreshes the SP metadata before then trusts it; register the")
            print("metadata again at IdPs that do not refresh it")
        states = ring.states()
        if not states:
            print("no pair yet: the broker makes one at the first SAML sign-in or SP metadata")
        for state in states:
            since = datetime.datetime.fromtimestamp(state.activates_at, datetime.UTC)
            until = datetime.datetime.fromtimestamp(state.not_after, datetime.UTC)
            print(
                f"{state.id}\t{state.state}\tfrom {since:%Y-%m-%d %H:%M}\t"
                f"certificate until {until:%Y-%m-%d}"
            )
    finally:
        storage.close()
    return 0


def _migrate(path: str) -> int:
    settings = load_settings(path)
    storage = open_storage(settings.broker.database_url)
    try:
        print(f"ok: database at schema version {schema_revision(storage.engine)}")
    finally:
        storage.close()
    return 0


def _gc(path: str) -> int:
    """Expired rows only cost space; run this from cron (broker serve runs it at start-up).
    It also deletes the customers a SCIM connection with ``deprovision = "delete"`` blocked
    ``delete_after_days`` ago."""
    settings = load_settings(path)
    storage = open_storage(settings.broker.database_url)
    try:
        removed = storage.gc(int(time.time()), audit_before=audit_cutoff(settings, time.time()))
        print(f"ok: {removed} expired row(s) deleted")
        from broker.provisioning.deprovision import delete_deprovisioned
        from broker.runtime import Runtime

        deleted = delete_deprovisioned(Runtime(settings, storage), int(time.time()))
        if deleted:
            print(f"ok: {deleted} deprovisioned customer(s) deleted (deprovision = delete)")
    finally:
        storage.close()
    return 0


def audit_cutoff(settings: Settings, now: float) -> int | None:
    """Audit rows older than this go (``audit_retention_days``; 0 keeps them)."""
    days = settings.broker.audit_retention_days
    return int(now) - days * 86400 if days else None


def _audit(path: str, store_key: str, limit: int) -> int:
    settings = load_settings(path)
    if settings.store(store_key) is None:
        print(f"no store {store_key!r} in {path}", file=sys.stderr)
        return 2
    storage = open_storage(settings.broker.database_url)
    try:
        for entry in reversed(storage.recent_audit(store_key, limit)):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.at))
            fields = {
                "connection": entry.connection,
                "subject": entry.subject,
                "customer": entry.customer_id,
                "ip": entry.ip,
                "detail": entry.detail,
            }
            extra = " ".join(f"{k}={_printable(v)}" for k, v in fields.items() if v is not None)
            print(f"{when} {_printable(entry.event)} {_printable(entry.outcome)} {extra}".rstrip())
    finally:
        storage.close()
    return 0


def _printable(value: object) -> str:
    """An audit value as one safe token: anything but plain printable ASCII is written as a
    JSON string (quoted, control characters and non-ASCII escaped), so a stored value can
    neither forge a line nor send escape sequences to the terminal."""
    text = str(value)
    if text and text.isascii() and text.isprintable() and not any(c in text for c in ' "\\'):
        return text
    return json.dumps(text, ensure_ascii=True)


def _register_webhooks(path: str, store_key: str) -> int:
    from broker.bigcommerce.api import BigCommerceClient
    from broker.bigcommerce.webhooks import destination, register_webhooks

    settings = load_settings(path)
    store = settings.store(store_key)
    if store is None:
        print(f"no store {store_key!r} in {path}", file=sys.stderr)
        return 2
    if not store.webhook_secret:
        print(
            f"stores.{store_key}.webhook_secret: set it first (24+ random characters)",
            file=sys.stderr,
        )
        return 2
    url = destination(settings.broker.base_url, store.key)
    client = BigCommerceClient(store)
    try:
        for done in register_webhooks(client, url, store.webhook_secret):
            already = "already registered" if done.hook_id is None else f"hook {done.hook_id}"
            print(f"ok: {done.scope} -> {url} ({already})")
    except BrokerError as error:
        print(f"stores.{store_key}: {error.message} ({error.detail})", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def _admin_token(path: str, store_key: str, *, label: str, revoke: bool) -> int:
    """A new admin API token alone on stdout (for scripts), or every token revoked. Safe
    while ``broker serve`` uses the same database: one row written in one transaction."""
    from broker.admin.tokens import issue_token

    settings = load_settings(path)
    storage = open_storage(settings.broker.database_url)
    try:
        known = (
            settings.store(store_key) is not None or storage.tenant_document(store_key) is not None
        )
        if not known:
            print(f"no store {store_key!r} in {path} or installed", file=sys.stderr)
            return 2
        now = int(time.time())
        if revoke:
            count = storage.revoke_api_tokens(store_key, "admin", now)
            print(f"ok: {count} admin token(s) of {store_key} revoked", file=sys.stderr)
            return 0
        token, _ = issue_token(storage, store=store_key, kind="admin", label=label, now=now)
        print(token)
    finally:
        storage.close()
    return 0


def _scim_token(path: str, store_key: str, connection: str, *, label: str, revoke: bool) -> int:
    """A new SCIM token of one connection alone on stdout, or that connection's SCIM tokens
    revoked. The connection must be the store's: a file store's with its ``scim`` table
    enabled; an installed store's by the connections of its stored document."""
    from broker.admin.tokens import issue_token

    settings = load_settings(path)
    storage = open_storage(settings.broker.database_url)
    try:
        filed = settings.store(store_key)
        if filed is not None:
            conn = filed.connections.get(connection)
            if conn is None:
                print(f"no connection {connection!r} in store {store_key!r}", file=sys.stderr)
                return 2
            if conn.scim is None and not revoke:
                print(
                    f"stores.{store_key}.connections.{connection}.scim: SCIM is not enabled "
                    "(set enabled = true in that table)",
                    file=sys.stderr,
                )
                return 2
        else:
            stored = storage.tenant_document(store_key)
            if stored is None:
                print(f"no store {store_key!r} in {path} or installed", file=sys.stderr)
                return 2
            connections = stored.document.get("connections")
            if not isinstance(connections, Mapping) or connection not in connections:
                print(f"no connection {connection!r} in store {store_key!r}", file=sys.stderr)
                return 2
        now = int(time.time())
        if revoke:
            count = storage.revoke_api_tokens(store_key, "scim", now, connection=connection)
            print(f"ok: {count} SCIM token(s) of {store_key}/{connection} revoked", file=sys.stderr)
            return 0
        token, _ = issue_token(
            storage, store=store_key, kind="scim", label=label, now=now, connection=connection
        )
        print(token)
    finally:
        storage.close()
    return 0


def _staff(args: argparse.Namespace) -> int:
    """``broker staff plan|apply|run``: over the stores of the file and the installed ones."""
    import threading

    from broker.admin import staff as staff_admin
    from broker.runtime import Runtime

    settings = load_settings(args.config)
    storage = open_storage(settings.broker.database_url)
    runtime = Runtime(settings, storage)

    def stores() -> list[StoreSettings]:
        found = [s for s in runtime.all_stores() if s.staff is not None]
        return [s for s in found if args.store in (None, s.key)]

    try:
        chosen = stores()
        if not chosen:
            where = f"store {args.store!r}" if args.store else "any store"
            print(f"no [staff] table in {where} of {args.config}", file=sys.stderr)
            return 2
        if args.staff_command == "run":
            stop = threading.Event()
            staff_admin.run_forever(
                runtime.staff, stores, every=args.every, plan_every=args.plan_every, stop=stop
            )
            return 0
        applied = args.staff_command == "apply"
        failed = False
        for store in chosen:
            report = runtime.staff.apply(store) if applied else runtime.staff.plan(store)
            failed = failed or bool(report.failed) or report.problem is not None
            print("\n".join(staff_admin.report_lines(store, report, applied=applied)))
        return 1 if failed else 0
    finally:
        storage.close()


def _rotate_keys(path: str) -> int:
    """Seal every stored secret again with the first key, so older keys can be dropped."""
    from broker.settings.secrets import SecretBox, rotate_document

    settings = load_settings(path)
    if settings.app is None:
        print("config: [app]: no encryption_key to rotate to", file=sys.stderr)
        return 2
    box = SecretBox(settings.app.encryption_key)
    storage = open_storage(settings.broker.database_url)
    try:
        done = 0
        for key in storage.tenant_documents():
            for _ in range(8):  # an admin's edit may come in between: read again
                row = storage.tenant_document(key)
                if row is None:
                    break
                document = rotate_document(row.document, box)
                now = int(time.time())
                if storage.replace_tenant(key, document, expected_version=row.version, now=now):
                    done += 1
                    break
            else:
                print(f"{key}: changed too often while rotating; run it again", file=sys.stderr)
                return 1
        print(f"ok: the secrets of {done} store(s) are sealed with the first key")
    finally:
        storage.close()
    return 0


def _check(path: str) -> int:
    """Validate the file, then reach every store's API and every connection's IdP: each
    check listed on stdout with a mark (✓ passed, ✗ failed, ! a warning), what to register at
    each IdP, and for each failure the URL, its answer and a hint; every failure also as one
    line on stderr (for scripts). Exit 1 on any failure."""
    from broker.admin.checkup import check_file

    settings = load_settings(path)
    out = sys.stdout
    if settings.broker.base_url.startswith("http://"):
        print("! the broker runs on plain http: fine on localhost, not in production", file=out)
    sections = check_file(settings)
    failures: list[str] = []
    for section in sections:
        print(section.title, file=out)
        for line in section.lines:
            if line.ok is None and line.detail.startswith("the broker runs on plain http"):
                continue  # said once, above
            mark = "!" if line.ok is None else "✓" if line.ok else "✗"
            label = "" if line.ok is None else f"{line.name}: "
            print(f"  {mark} {label}{line.detail}", file=out)
            if line.url and line.ok is not True:
                answer = f" -> {line.answer}" if line.answer else ""
                print(f"      GET {line.url}{answer}", file=out)
            if line.hint and line.ok is not True:
                print(f"      hint: {line.hint}", file=out)
            if line.ok is False:
                failures.append(_failure_line(section.key, line))
        if section.register:
            print("  register at the IdP:", file=out)
            width = max(len(name) for name, _ in section.register)
            for name, value in section.register:
                print(f"    {name.ljust(width)}  {value}", file=out)
    for failure in failures:
        print(failure, file=sys.stderr)
    stores = len(settings.stores)
    connections = sum(len(s.connections) for s in settings.stores.values())
    if failures:
        print(f"✗ {len(failures)} problem(s) in {stores} store(s), {connections} connection(s)")
        return 1
    print(f"ok: {stores} store(s), {connections} connection(s) reachable")
    return 0


def _failure_line(key: str, line: Line) -> str:
    """A failure as one line naming its key (as the file's problems are named)."""
    if line.name == "one IdP per connection":
        return line.detail
    where = "store API" if line.name == "store API" else f"identity provider: {line.name}"
    extra = ""
    if line.url:
        extra = f" [GET {line.url}" + (f" -> {line.answer}" if line.answer else "") + "]"
    if line.hint:
        extra += f" hint: {line.hint}"
    return f"{key}: {where}: {line.detail}{extra}"


if __name__ == "__main__":
    sys.exit(main())
