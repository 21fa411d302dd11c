"""The accounts table (queries in sql/accounts.sql)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from service.db.pool import Connection
from service.db.queries import queries


class AccountRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What logging in needs to know about an account."""

    user_id: str
    password_hash: str
    disabled: bool


class AccountListing(msgspec.Struct, frozen=True, kw_only=True):
    username: str
    user_id: str
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None


async def insert(conn: Connection, *, username: str, user_id: str, password_hash: str) -> bool:
    """Whether the account was added (False: its username or user id is taken)."""
    added = await queries().val(
        conn, "accounts.insert", username=username, user_id=user_id, password_hash=password_hash
    )
    return added is not None


async def get(conn: Connection, *, username: str) -> AccountRecord | None:
    row = await queries().one(conn, "accounts.get", username=username)
    return None if row is None else AccountRecord(**row)


async def list_all(conn: Connection) -> list[AccountListing]:
    return [AccountListing(**row) for row in await queries().many(conn, "accounts.list")]


async def set_password(conn: Connection, *, username: str, password_hash: str) -> bool:
    """Whether the account exists."""
    changed = await queries().execrows(
        conn, "accounts.set_password", username=username, password_hash=password_hash
    )
    return changed > 0


async def rehash(conn: Connection, *, username: str, old_hash: str, new_hash: str) -> bool:
    """Whether ``old_hash`` was still the account's and is now ``new_hash``."""
    changed = await queries().execrows(
        conn, "accounts.rehash", username=username, old_hash=old_hash, new_hash=new_hash
    )
    return changed > 0


async def set_disabled(conn: Connection, *, username: str, disabled: bool) -> bool:
    """Whether the account exists."""
    changed = await queries().execrows(
        conn, "accounts.set_disabled", username=username, disabled=disabled
    )
    return changed > 0
