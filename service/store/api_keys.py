"""The api_keys table (queries in sql/api_keys.sql)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from service.core.principal import Permission
from service.db.pool import Connection
from service.db.queries import queries


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What verifying a request needs to know about a key."""

    id: str
    name: str
    secret_hash: bytes
    permissions: frozenset[Permission]
    revoked: bool


class KeyListing(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    permissions: list[str]
    created_at: datetime
    revoked_at: datetime | None


async def insert(
    conn: Connection,
    *,
    key_id: str,
    name: str,
    secret_hash: bytes,
    permissions: Iterable[Permission],
) -> None:
    await queries().exec(
        conn,
        "api_keys.insert",
        key_id=key_id,
        name=name,
        secret_hash=secret_hash,
        permissions=sorted(permission.value for permission in set(permissions)),
    )


async def get(conn: Connection, *, key_id: str) -> KeyRecord | None:
    row = await queries().one(conn, "api_keys.get", key_id=key_id)
    if row is None:
        return None
    return KeyRecord(
        id=row["id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        permissions=frozenset(Permission(value) for value in row["permissions"]),
        revoked=row["revoked"],
    )


async def list_all(conn: Connection) -> list[KeyListing]:
    return [KeyListing(**row) for row in await queries().many(conn, "api_keys.list")]


async def revoke(conn: Connection, *, key_id: str) -> bool:
    """Whether the key was active until now."""
    return await queries().execrows(conn, "api_keys.revoke", key_id=key_id) > 0
