"""``chatkeep users create | passwd | disable | enable | list``: accounts kept by chatkeep
(README "Accounts"). Passwords are read from a prompt that does not echo them, or with
``--password-stdin`` from the first line of standard input (for scripts)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from service.core.errors import ChatkeepError, InvalidInput
from service.core.settings import Settings
from service.db.pool import Connection, connected
from service.history import accounts


class PasswordError(Exception):
    """No usable password was given."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="users_action", required=True)
    create = actions.add_parser("create", help="add an account that can log in")
    create.add_argument("username")
    create.add_argument(
        "--user-id",
        help="the user id its tokens name, i.e. its conversations' user_id (default: username)",
    )
    passwd = actions.add_parser("passwd", help="give an account a new password")
    passwd.add_argument("username")
    for action in (create, passwd):
        action.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input instead of a prompt",
        )
    disable = actions.add_parser(
        "disable", help="refuse the account's logins (tokens issued already run out)"
    )
    disable.add_argument("username")
    enable = actions.add_parser("enable", help="let a disabled account log in again")
    enable.add_argument("username")
    actions.add_parser("list", help="list accounts (never their passwords)")


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise PasswordError("no terminal to prompt on: pass the password with --password-stdin")
    password = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != password:
        raise PasswordError("the two passwords differ")
    return password


async def _create(conn: Connection, args: argparse.Namespace, password: str) -> str:
    user_id = await accounts.create(
        conn, username=args.username, password=password, user_id=args.user_id
    )
    return f"created account {args.username} (user id {user_id})"


async def _passwd(conn: Connection, args: argparse.Namespace, password: str) -> str:
    await accounts.change_password(conn, username=args.username, password=password)
    return f"changed the password of {args.username}"


async def _disable(conn: Connection, args: argparse.Namespace, password: str) -> str:
    await accounts.set_disabled(conn, username=args.username, disabled=True)
    return f"disabled account {args.username}"


async def _enable(conn: Connection, args: argparse.Namespace, password: str) -> str:
    await accounts.set_disabled(conn, username=args.username, disabled=False)
    return f"enabled account {args.username}"


async def _list(conn: Connection, args: argparse.Namespace, password: str) -> str:
    lines = [f"{'USERNAME':<24}{'USER ID':<24}{'CREATED':<22}DISABLED"]
    for account in await accounts.list_accounts(conn):
        disabled = f"{account.disabled_at:%Y-%m-%d %H:%M:%S}" if account.disabled_at else "-"
        lines.append(
            f"{account.username[:23]:<24}{account.user_id[:23]:<24}"
            f"{account.created_at:%Y-%m-%d %H:%M:%S}   {disabled}"
        )
    return "\n".join(lines)


ACTIONS = {
    "create": _create,
    "passwd": _passwd,
    "disable": _disable,
    "enable": _enable,
    "list": _list,
}
NEEDS_PASSWORD = {"create", "passwd"}


async def _run(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    # The password is read before connecting: a prompt must not hold a connection open.
    try:
        password = read_password(args) if args.users_action in NEEDS_PASSWORD else ""
    except PasswordError as exc:
        print(f"chatkeep: {exc}", file=sys.stderr)
        return 2
    async with connected(database_url, settings) as conn:
        try:
            print(await ACTIONS[args.users_action](conn, args, password))
        except ChatkeepError as exc:
            print(f"chatkeep: {exc.field}: {exc.detail}", file=sys.stderr)
            # 2: the input cannot be used; 1: it contradicts what is stored.
            return 2 if isinstance(exc, InvalidInput) else 1
    return 0


def run(database_url: str, settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_run(database_url, settings, args))
