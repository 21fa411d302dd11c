"""``chatkeep import sqlite|files|ndjson`` and ``chatkeep export``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Never
from uuid import UUID

from tqdm import tqdm

from service.core.settings import Settings
from service.db.pool import connect
from service.transfer import SourceError, counters, imports
from service.transfer.attachment_layout import Layout, LayoutError
from service.transfer.export import export
from service.transfer.report import Report


def _mapping(text: str) -> tuple[str, str]:
    field, equals, column = text.partition("=")
    if not equals or not field or not column:
        raise argparse.ArgumentTypeError(f"expected FIELD=COLUMN, got {text!r}")
    return field, column


def _layout(text: str) -> Layout:
    try:
        return Layout(text)
    except LayoutError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    sources = parser.add_subparsers(dest="source", required=True)
    sqlite = sources.add_parser("sqlite", help="a SQLite database with sessions and messages")
    sqlite.add_argument("path", type=Path)
    sqlite.add_argument("--sessions-table", default="sessions")
    sqlite.add_argument("--messages-table", default="messages")
    sqlite.add_argument(
        "--map",
        type=_mapping,
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="the column holding a field, e.g. message.session_id=chat_id (repeatable; fields: "
        "session.id|title|user_id|metadata|created_at|updated_at, "
        "message.id|session_id|role|content|topic|metadata|created_at)",
    )
    files = sources.add_parser(
        "files", help="a directory of JSON conversation files (with prompts/ and attachments)"
    )
    files.add_argument("path", type=Path)
    files.add_argument(
        "--layout",
        action="append",
        type=_layout,
        metavar="PATTERN",
        help="where attachments are, below PATH, with {conversation} for the conversation's "
        "file name, source id or id; '*', '?' and '**' as in a glob, a trailing '/' for "
        "everything below; repeatable (default: '{conversation}/**')",
    )
    ndjson = sources.add_parser("ndjson", help="a `chatkeep export` file")
    ndjson.add_argument("path", type=Path)
    for source in (sqlite, files):
        source.add_argument(
            "--id-namespace",
            help="derive ids of non-UUID source ids within this name (default: the source "
            "kind); give each source its own when importing several whose ids overlap",
        )
    for source in (sqlite, files, ndjson):
        source.add_argument(
            "--dry-run", action="store_true", help="read and check everything, write nothing"
        )
        _add_metrics_file(source)


def _add_metrics_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-file",
        type=Path,
        metavar="PATH",
        help="when done, write the import and export counters here in Prometheus text format "
        "(for node_exporter's textfile collector)",
    )


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="only this user's conversations (a data-access export)")
    parser.add_argument("--conversation", type=UUID, help="only this conversation")
    parser.add_argument(
        "--output", type=Path, help="write here instead of standard output", default=None
    )
    _add_metrics_file(parser)


def _progress_bar(
    unit: str, unit_scale: bool = False
) -> tuple[Callable[[int | None], Callable[[int], object]], Callable[[], None]]:
    """A factory the importers call with the total once they know it; the bar shows only on a
    terminal (tqdm's disable=None)."""
    bars: list[tqdm[Never]] = []

    def start(total: int | None) -> Callable[[int], object]:
        bar: tqdm[Never] = tqdm(
            total=total, unit=unit, unit_scale=unit_scale, disable=None, file=sys.stderr
        )
        bars.append(bar)
        return bar.update

    def close() -> None:
        for bar in bars:
            bar.close()

    return start, close


async def _import(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    report = Report(write=lambda line: tqdm.write(line, file=sys.stderr))
    unit, scale = {"sqlite": ("msg", False), "files": ("file", False), "ndjson": ("B", True)}[
        args.source
    ]
    progress, close = _progress_bar(unit, scale)
    # A batch's COPY may run longer than a request's statement may.
    conn = await connect(database_url, settings, statement_timeout=False)
    try:
        if args.source == "sqlite":
            await imports.import_sqlite(
                conn,
                args.path,
                report,
                sessions_table=args.sessions_table,
                messages_table=args.messages_table,
                mapping=dict(args.map),
                namespace=args.id_namespace or args.source,
                dry_run=args.dry_run,
                progress=progress,
            )
        elif args.source == "files":
            await imports.import_files(
                conn,
                args.path,
                report,
                namespace=args.id_namespace or args.source,
                dry_run=args.dry_run,
                progress=progress,
                settings=settings,
                layouts=args.layout,
            )
        else:
            await imports.import_ndjson(
                conn,
                args.path,
                report,
                dry_run=args.dry_run,
                progress=progress,
                settings=settings,
            )
    except SourceError as exc:
        close()
        print(f"chatkeep: {exc}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    close()
    report.summary(sys.stdout, args.dry_run)
    if not args.dry_run:
        counters.count_import(report)
    if args.metrics_file:
        counters.write_textfile(args.metrics_file)
    return 1 if report.mismatches else 0


def _private(path: Path) -> BinaryIO:
    """``path`` opened for writing, readable by its owner only (an export is personal data),
    even when it existed before with a wider mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


async def _export(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    # One snapshot held while the output is written, however slowly its reader takes it.
    conn = await connect(database_url, settings, statement_timeout=False)
    try:
        if args.output is None:
            end = await export(
                conn, sys.stdout.buffer, user_id=args.user, conversation_id=args.conversation
            )
        else:
            with _private(args.output) as out:
                end = await export(conn, out, user_id=args.user, conversation_id=args.conversation)
    finally:
        await conn.close()
    counters.count_export(end)
    if args.metrics_file:
        counters.write_textfile(args.metrics_file)
    print(
        f"exported {end.conversations} conversations, {end.messages} messages, "
        f"{end.prompt_versions} prompt versions, {end.files} files",
        file=sys.stderr,
    )
    return 0


def run_import(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_import(database_url, settings, args))


def run_export(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_export(database_url, settings, args))
