"""Accounts kept by chatkeep: create, change password, disable or enable, list, and log in
(README "Accounts"). Passwords are stored as argon2id hashes only.

Hashing costs 64 MiB and up to a few hundred milliseconds of CPU by design; it runs in a worker
thread (argon2-cffi releases the GIL), so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from service.core.accounts import check_new_password, check_user_id, check_username
from service.core.errors import Conflict, NotFound, Unauthorized
from service.db.pool import Connection
from service.store import accounts
from service.store.accounts import AccountListing

# argon2id with the library's defaults (RFC 9106's second recommended option); hashes made
# with other parameters are upgraded at the next successful login.
_hasher = PasswordHasher()
# One answer for an unknown username, a wrong password and a disabled account, so a caller
# cannot learn which usernames exist.
LOGIN_REFUSED = "the username or password is wrong, or the account is disabled"


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _unknown_user_hash() -> str:
    """A hash no password is checked against for real: an unknown username still costs one
    verification, so the time of the answer does not tell that the account is missing."""
    return _hasher.hash("not an account of this service")


async def create(
    conn: Connection, *, username: str, password: str, user_id: str | None = None
) -> str:
    """Add an account; returns the user id its tokens name (the username unless given)."""
    check_username(username)
    user_id = check_user_id(username if user_id is None else user_id)
    password_hash = await _hash(check_new_password(password))
    if not await accounts.insert(
        conn, username=username, user_id=user_id, password_hash=password_hash
    ):
        if await accounts.get(conn, username=username) is not None:
            raise Conflict(f"an account {username} exists already", field="username")
        raise Conflict(f"another account logs in as user {user_id}", field="user_id")
    return user_id


async def change_password(conn: Connection, *, username: str, password: str) -> None:
    password_hash = await _hash(check_new_password(password))
    if not await accounts.set_password(conn, username=username, password_hash=password_hash):
        raise NotFound(f"no account {username}", field="username")


async def set_disabled(conn: Connection, *, username: str, disabled: bool) -> None:
    """Disable (no more logins; tokens issued already last until they expire) or enable."""
    if not await accounts.set_disabled(conn, username=username, disabled=disabled):
        raise NotFound(f"no account {username}", field="username")


async def list_accounts(conn: Connection) -> list[AccountListing]:
    """Every account, oldest first, never with its hash."""
    return await accounts.list_all(conn)


async def log_in(conn: Connection, *, username: str, password: str) -> str:
    """The user id of the account when the password is its own and it is enabled; else
    Unauthorized, the same for every reason and after the same work."""
    account = await accounts.get(conn, username=username)
    stored = account.password_hash if account else await asyncio.to_thread(_unknown_user_hash)
    matches = await asyncio.to_thread(_matches, stored, password)
    if account is None or account.disabled or not matches:
        raise Unauthorized(LOGIN_REFUSED, field="password")
    if _hasher.check_needs_rehash(stored):
        new_hash = await _hash(password)
        await accounts.rehash(conn, username=username, old_hash=stored, new_hash=new_hash)
    return account.user_id
