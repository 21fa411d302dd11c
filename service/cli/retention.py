"""``chatkeep prune [--dry-run]``: delete what retention says is due (README "Retention") now,
as the server does in the background, and report the counts."""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.core.settings import Settings
from service.db.pool import connected
from service.history import retention


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )


async def _run(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    async with connected(database_url, settings) as conn:
        if args.dry_run:
            erased = await retention.prune(conn, settings, dry_run=True)
            verb = "would prune"
        else:
            found = await retention.prune_unless_running(conn, settings)
            if found is None:
                print("chatkeep: another prune is running; nothing done", file=sys.stderr)
                return 1
            erased, verb = found, "pruned"
    print(
        f"{verb} {erased.conversations} conversations "
        f"({erased.messages} messages, {erased.files} files)"
    )
    return 0


def run(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(database_url, settings, args))
