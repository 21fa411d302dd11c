"""What the readiness probe and `chatkeep check` ask the database (queries in sql/health.sql)."""

from __future__ import annotations

import asyncpg

from service.db.pool import Connection
from service.db.queries import queries


async def applied_migrations(conn: Connection) -> list[str]:
    """Ids of the migrations applied, oldest first; none when yoyo never ran here."""
    try:
        rows = await queries().many(conn, "health.applied_migrations")
    except asyncpg.UndefinedTableError:
        return []
    return [row["migration_id"] for row in rows]


async def server_version(conn: Connection) -> str:
    version: str = await queries().val(conn, "health.server_version")
    return version


async def ping(conn: Connection) -> None:
    """One round trip."""
    await queries().val(conn, "health.ping")
