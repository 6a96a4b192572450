"""The ``broker`` command: run, check and maintain the single sign-on broker.

Thin commands over the functions the app itself uses (as flaskr's ``init-db`` calls
``init_db``): ``demo``, ``serve``, ``check``, ``migrate``, ``gc``, ``audit``, ``keys``,
``webhooks register``, ``admin token``, ``scim token``.
Exit status: 0 fine, 1 a check
failed, 2 the configuration is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from broker.config import Settings, load_settings
from broker.errors import BrokerError, ConfigError
from broker.storage import open_storage, schema_revision


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="broker", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="broker, sandbox store and development IdP locally")
    demo.add_argument("--port", type=int, default=5000, help="the broker's port (default 5000)")
    demo.add_argument(
        "--app",
        action="store_true",
        help="run the broker as a BigCommerce app: install it in the sandbox's control panel",
    )

    serve = commands.add_parser("serve", help="run the broker from a config file (gunicorn)")
    serve.add_argument("--config", required=True, help="the broker's TOML file")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    serve.add_argument("--threads", type=int, default=4, help="threads per process (default 4)")

    check = commands.add_parser("check", help="validate the config and reach each IdP and store")
    check.add_argument("--config", required=True, help="the broker's TOML file")

    migrate = commands.add_parser("migrate", help="bring the database to the newest schema")
    migrate.add_argument("--config", required=True, help="the broker's TOML file")

    gc = commands.add_parser("gc", help="delete expired flows, claims, counters and sessions")
    gc.add_argument("--config", required=True, help="the broker's TOML file")

    audit = commands.add_parser("audit", help="print a store's recent audit log entries")
    audit.add_argument("--config", required=True, help="the broker's TOML file")
    audit.add_argument("--store", required=True, help="the store's key in the config")
    audit.add_argument("--limit", type=int, default=50)

    keys = commands.add_parser("keys", help="make a SAML SP key pair (PEM key and certificate)")
    keys.add_argument("--out", required=True, help="directory to write <name>.key and <name>.crt")
    keys.add_argument("--name", default="saml-sp")
    keys.add_argument("--common-name", default="sso-broker")
    keys.add_argument("--days", type=int, default=3650)

    webhooks = commands.add_parser("webhooks", help="BigCommerce webhooks for a store")
    webhook_commands = webhooks.add_subparsers(dest="webhooks_command", required=True)
    register = webhook_commands.add_parser("register", help="register the broker's webhooks")
    register.add_argument("--config", required=True, help="the broker's TOML file")
    register.add_argument("--store", required=True, help="the store's key in the config")

    admin = commands.add_parser("admin", help="the admin API of a store")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    token = admin_commands.add_parser(
        "token", help="print a new admin API token (shown once; stored hashed)"
    )
    token.add_argument("--config", required=True, help="the broker's TOML file")
    token.add_argument("--store", required=True, help="a store's key, or an installed store's hash")
    token.add_argument("--label", default="broker admin token", help="what the token is for")
    token.add_argument("--revoke", action="store_true", help="revoke every token of the store")

    scim = commands.add_parser("scim", help="SCIM 2.0 provisioning of a connection")
    scim_commands = scim.add_subparsers(dest="scim_command", required=True)
    scim_token = scim_commands.add_parser(
        "token", help="print a new SCIM token for a connection (shown once; stored hashed)"
    )
    scim_token.add_argument("--config", required=True, help="the broker's TOML file")
    scim_token.add_argument(
        "--store", required=True, help="a store's key, or an installed store's hash"
    )
    scim_token.add_argument("--connection", required=True, help="the connection's key")
    scim_token.add_argument("--label", default="broker scim token", help="what the token is for")
    scim_token.add_argument(
        "--revoke", action="store_true", help="revoke every SCIM token of the connection"
    )

    rotate = commands.add_parser(
        "rotate-keys", help="re-encrypt stored secrets with the first [app].encryption_key"
    )
    rotate.add_argument("--config", required=True, help="the broker's TOML file")

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            from broker.sandbox.demo import run_demo

            run_demo(port=args.port, app=args.app)
            return 0
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
        return _check(args.config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"config: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def _serve(args: argparse.Namespace) -> int:
    # Validate in the master first: a broken file stops here with one line per problem,
    # not in every worker.
    settings = load_settings(args.config)
    # Migrate once here, before the workers start, and clear what expired meanwhile.
    storage = open_storage(settings.broker.database_url)
    storage.gc(int(time.time()), audit_before=audit_cutoff(settings, time.time()))
    storage.close()
    from gunicorn.app.base import BaseApplication

    class _Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", args.workers)
            self.cfg.set("threads", args.threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 30)
            self.cfg.set("graceful_timeout", 10)
            # No access log: callback URLs carry authorization codes.
            self.cfg.set("accesslog", None)
            # Every gunicorn on a host shares one default control socket path; not ours.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            from broker.app import create_app

            return create_app(settings)

    _Server().run()
    return 0


def _keys(args: argparse.Namespace) -> int:
    from pathlib import Path

    from broker.keys import make_key_pair

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
    """Validate the file, then reach every store's API and every connection's IdP."""
    settings = load_settings(path)
    problems = list(_reach_everything(settings))
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        count = sum(len(s.connections) for s in settings.stores.values())
        print(f"ok: {len(settings.stores)} store(s), {count} connection(s) reachable")
    return 1 if problems else 0


def _reach_everything(settings: Settings) -> list[str]:
    from broker.bigcommerce.api import BigCommerceClient
    from broker.upstream.claims import shared_identity_providers
    from broker.upstream.registry import open_provider
    from broker.upstream.saml import SAMLProvider

    problems: list[str] = []
    for store in settings.stores.values():
        client = BigCommerceClient(store, deadline_seconds=store.api_timeout_seconds)
        try:
            client.customers_by_email(["broker-check@example.invalid"])
        except BrokerError as error:
            problems.append(f"stores.{store.key}: store API: {error.message} ({error.detail})")
        finally:
            client.close()
        # Which IdP each connection declares: two connections of a store may not share one.
        declared: dict[str, str] = {}
        for conn in store.connections.values():
            provider = open_provider(conn, base_url=settings.broker.base_url, store_key=store.key)
            if not isinstance(provider, SAMLProvider):
                declared[conn.key] = provider.connection.issuer  # as configured, verbatim
            try:
                provider.probe()
                if isinstance(provider, SAMLProvider):
                    declared[conn.key] = provider.idp_entity_id()
            except BrokerError as error:
                name = f"stores.{store.key}.connections.{conn.key}"
                problems.append(f"{name}: identity provider: {error.message} ({error.detail})")
        problems.extend(shared_identity_providers(store.key, declared))
    return problems


if __name__ == "__main__":
    sys.exit(main())
