"""The prune's advisory lock and its dry run (queries in sql/retention.sql)."""

from __future__ import annotations

from datetime import datetime

from service.core.schemas import ConversationsErased
from service.db.pool import Connection
from service.db.queries import queries


async def try_lock(conn: Connection) -> bool:
    """Take the prune's lock for this connection's session; False when another holds it."""
    return bool(await queries().val(conn, "retention.try_lock"))


async def unlock(conn: Connection) -> None:
    await queries().exec(conn, "retention.unlock")


async def prunable(
    conn: Connection, *, idle_before: datetime | None, expired_at: datetime
) -> ConversationsErased:
    """What a prune would delete now (see the query)."""
    row = await queries().one(
        conn, "retention.prunable", idle_before=idle_before, expired_at=expired_at
    )
    assert row is not None  # aggregates always return a row
    return ConversationsErased(
        conversations=row["conversations"], messages=row["messages"], files=row["files"]
    )
