"""``chatkeep keys create | list | revoke``: API keys for trusted back ends."""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.core.errors import InvalidInput, NotFound
from service.core.principal import Permission
from service.core.settings import Settings
from service.db.pool import Connection, connected
from service.history import keys

DEFAULT_PERMISSIONS = [Permission.READ, Permission.WRITE]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="keys_action", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--permission",
        dest="permissions",
        action="append",
        choices=[permission.value for permission in Permission],
        help="repeat for several; default: read and write (erase deletes whole users)",
    )
    actions.add_parser("list", help="list keys (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key; every worker refuses it at once")
    revoke.add_argument("key_id", help="the id shown by `keys list` (ck_<id>_... in the key)")


async def _create(conn: Connection, args: argparse.Namespace) -> int:
    permissions = [Permission(value) for value in args.permissions or DEFAULT_PERMISSIONS]
    try:
        token = await keys.issue(conn, name=args.name, permissions=permissions)
    except InvalidInput as exc:
        print(f"chatkeep: --{exc.field} {exc.detail}", file=sys.stderr)
        return 2
    print(
        f"created key {token.split('_')[1]} ({', '.join(sorted(permissions))}); "
        "store it now, it is not shown again:",
        file=sys.stderr,
    )
    print(token)
    return 0


async def _list(conn: Connection, args: argparse.Namespace) -> int:
    print(f"{'ID':<14}{'NAME':<24}{'PERMISSIONS':<20}{'CREATED':<22}REVOKED")
    for key in await keys.list_keys(conn):
        revoked = f"{key.revoked_at:%Y-%m-%d %H:%M:%S}" if key.revoked_at else "-"
        print(
            f"{key.id:<14}{key.name[:23]:<24}{','.join(key.permissions):<20}"
            f"{key.created_at:%Y-%m-%d %H:%M:%S}   {revoked}"
        )
    return 0


async def _revoke(conn: Connection, args: argparse.Namespace) -> int:
    try:
        await keys.revoke(conn, key_id=args.key_id)
    except NotFound as exc:
        print(f"chatkeep: {exc.detail}", file=sys.stderr)
        return 1
    print(f"revoked key {args.key_id}")
    return 0


ACTIONS = {"create": _create, "list": _list, "revoke": _revoke}


async def _run(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    async with connected(database_url, settings) as conn:
        return await ACTIONS[args.keys_action](conn, args)


def run(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(database_url, settings, args))
