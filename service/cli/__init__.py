"""The ``chatkeep`` command: serve, migrate, rollback, check, keys, users, prune, import,
export."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from service.cli import keys as keys_cli
from service.cli import retention as retention_cli
from service.cli import servers
from service.cli import transfer as transfer_cli
from service.cli import users as users_cli
from service.cli.observability import metrics_directory
from service.core import logs
from service.core.settings import Settings, SettingsError, settings_from_env
from service.db import migrations
from service.db.dburl import DatabaseUrlError, redacted
from service.db.embedded import EmbeddedError, EmbeddedPostgres
from service.db.errors import UNAVAILABLE
from service.db.pool import connect
from service.history import health

log = logging.getLogger("chatkeep")
LATENCY_SAMPLES = 5


class CommandError(Exception):
    """A command cannot go on; the message tells the operator what to do."""


def _database_url(settings: Settings) -> str:
    """CHATKEEP_DIRECT_DATABASE_URL, else DATABASE_URL, else the embedded server `chatkeep
    serve` runs in the data directory. Commands keep a session (migrations' locks, cursors,
    the prune's lock): never through a transaction pooler."""
    if settings.session_database_url:
        return settings.session_database_url
    if running := EmbeddedPostgres(Path(settings.data_dir)).running_url():
        return running
    raise CommandError(
        f"DATABASE_URL is not set and no embedded server runs in {settings.data_dir} "
        "(start one with `chatkeep serve`)"
    )


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: Settings, args: argparse.Namespace) -> int:
    embedded = None
    database_url = settings.database_url
    if not database_url:
        embedded = EmbeddedPostgres(Path(settings.data_dir))
        database_url = embedded.start()
        print(
            f"chatkeep: embedded PostgreSQL at {redacted(database_url)} "
            f"(data in {embedded.pgdata}, password in {embedded.password_file})",
            flush=True,
        )
    try:
        if embedded or args.migrate:
            applied = migrations.apply(settings.direct_database_url or database_url)
            print(f"chatkeep: migrations applied: {', '.join(applied) or 'none pending'}")
        # Workers are separate processes that read their settings from the environment.
        os.environ["DATABASE_URL"] = database_url
        # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into an exception so
        # that the embedded server below is stopped too.
        signal.signal(signal.SIGTERM, _exit_quietly)
        workers = args.workers or settings.workers
        with metrics_directory(settings, workers):
            servers.run(
                args.server,
                settings,
                host=args.host or settings.host,
                port=args.port or settings.port,
                workers=workers,
            )
    except servers.ServerMissing as exc:
        raise CommandError(str(exc)) from exc
    finally:
        if embedded:
            embedded.stop()
    return 0


def migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = migrations.apply(_database_url(settings))
    print(f"applied: {', '.join(applied)}" if applied else "nothing to apply: schema is current")
    return 0


def rollback(settings: Settings, args: argparse.Namespace) -> int:
    rolled_back = migrations.rollback(_database_url(settings), None if args.all else args.count)
    print(f"rolled back: {', '.join(rolled_back)}" if rolled_back else "nothing to roll back")
    return 0


async def _check(database_url: str, settings: Settings) -> int:
    print(f"database:  {redacted(database_url)}")
    started = time.perf_counter()
    try:
        conn = await connect(database_url, settings)
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        print(f"connect:   FAILED ({type(exc).__name__}: {exc})")
        return 1
    try:
        print(f"connect:   ok in {(time.perf_counter() - started) * 1000:.1f} ms")
        print(f"server:    {await health.server_version(conn)}")
        latency = await health.round_trip_ms(conn, LATENCY_SAMPLES)
        print(f"latency:   {latency:.2f} ms round trip (median)")
        applied, missing = await health.migration_status(conn)
        print(f"applied:   {', '.join(applied) or 'none'}")
        print(f"pending:   {', '.join(missing) or 'none'}")
        position = await health.write_position(conn)
    finally:
        await conn.close()
    problems = ["run `chatkeep migrate`"] if missing else []
    problems += await _check_pooler(settings)
    for number, url in enumerate(settings.replica_url_list, start=1):
        line, usable = await health.replica_report(url, settings, position)
        print(f"replica {number}: {line}")
        if not usable:
            problems.append(f"replica {number} cannot serve reads")
    print("status:    " + (f"NOT healthy: {'; '.join(problems)}" if problems else "healthy"))
    return 1 if problems else 0


async def _check_pooler(settings: Settings) -> list[str]:
    """The pool mode; in transaction mode the checks above ran on the direct connection, so
    the pooler that DATABASE_URL names is tried here."""
    print(f"pool mode: {settings.pool_mode}")
    if settings.pool_mode != "transaction":
        return []
    try:
        pooled = await connect(settings.database_url, settings, through_pooler=True)
    except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
        print(f"pooler:    FAILED ({type(exc).__name__}: {exc})")
        return ["the pooler (DATABASE_URL) fails"]
    try:
        print(f"pooler:    ok, {await health.round_trip_ms(pooled, LATENCY_SAMPLES):.2f} ms")
    finally:
        await pooled.close()
    return []


def check(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_check(_database_url(settings), settings))


def keys(settings: Settings, args: argparse.Namespace) -> int:
    return keys_cli.run(_database_url(settings), settings, args)


def users(settings: Settings, args: argparse.Namespace) -> int:
    return users_cli.run(_database_url(settings), settings, args)


def prune(settings: Settings, args: argparse.Namespace) -> int:
    return retention_cli.run(_database_url(settings), settings, args)


def import_(settings: Settings, args: argparse.Namespace) -> int:
    return transfer_cli.run_import(_database_url(settings), settings, args)


def export(settings: Settings, args: argparse.Namespace) -> int:
    return transfer_cli.run_export(_database_url(settings), settings, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatkeep", description="Conversation-history service on PostgreSQL."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser(
        "serve", help="run the HTTP service (embedded PostgreSQL when DATABASE_URL is unset)"
    )
    serve_parser.add_argument("--host", help="bind address (CHATKEEP_HOST, default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (CHATKEEP_PORT, default 8000)")
    serve_parser.add_argument("--workers", type=int, help="worker processes (CHATKEEP_WORKERS)")
    serve_parser.add_argument(
        "--server",
        choices=servers.SERVERS,
        default="uvicorn",
        help="HTTP server (default uvicorn; granian needs the granian extra)",
    )
    serve_parser.add_argument(
        "--migrate", action="store_true", help="apply pending migrations before serving"
    )
    serve_parser.set_defaults(run=serve)

    commands.add_parser("migrate", help="apply pending migrations").set_defaults(run=migrate)

    rollback_parser = commands.add_parser("rollback", help="roll back applied migrations")
    rollback_parser.add_argument("--count", type=int, default=1, help="how many (default 1)")
    rollback_parser.add_argument("--all", action="store_true", help="roll back every migration")
    rollback_parser.set_defaults(run=rollback)

    commands.add_parser(
        "check", help="connect, report server version, latency and migrations; exit 1 if unhealthy"
    ).set_defaults(run=check)

    keys_parser = commands.add_parser("keys", help="manage API keys of trusted back ends")
    keys_cli.add_arguments(keys_parser)
    keys_parser.set_defaults(run=keys)

    users_parser = commands.add_parser(
        "users", help="manage accounts that log in with a password (CHATKEEP_ACCOUNTS)"
    )
    users_cli.add_arguments(users_parser)
    users_parser.set_defaults(run=users)

    prune_parser = commands.add_parser(
        "prune",
        help="delete expired and idle visitors' conversations now (see README 'Retention')",
    )
    retention_cli.add_arguments(prune_parser)
    prune_parser.set_defaults(run=prune)

    import_parser = commands.add_parser(
        "import", help="bring history in (idempotent, verified; see README 'Importing')"
    )
    transfer_cli.add_import_arguments(import_parser)
    import_parser.set_defaults(run=import_)

    export_parser = commands.add_parser(
        "export", help="write everything (or one user's history) as NDJSON to standard output"
    )
    transfer_cli.add_export_arguments(export_parser)
    export_parser.set_defaults(run=export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from_env()
        if settings.log_format == "json":
            logs.configure(settings)
        code: int = args.run(settings, args)
    except (CommandError, SettingsError, DatabaseUrlError, EmbeddedError) as exc:
        print(f"chatkeep: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
