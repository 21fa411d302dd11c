"""Search over messages (the query in sql/search.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from uuid import UUID

from service.core.principal import Scope
from service.core.search import Position
from service.db.pool import Connection
from service.db.queries import queries


class Match(NamedTuple):
    """A row of search.messages, in its column order."""

    conversation_id: UUID
    conversation_title: str | None
    seq: int
    message_id: UUID
    role: str
    topic: str | None
    created_at: datetime
    rank: float
    # The content around the match (sql/search.sql says how it is marked).
    excerpt: str


async def messages(
    conn: Connection,
    *,
    query: str,
    pattern: str,
    scope: Scope,
    user_id: str | None,
    conversation_id: UUID | None,
    role: str | None,
    topic: str | None,
    since: datetime | None,
    until: datetime | None,
    after: Position,
    limit: int,
) -> list[Match]:
    """The best ``limit`` matches after ``after``; plan with the values (see the query)."""
    rows = await queries().many(
        conn,
        "search.messages",
        query=query,
        pattern=pattern,
        user_id=user_id,
        conversation_id=conversation_id,
        role=role,
        topic=topic,
        since=since,
        until=until,
        after_rank=after.rank,
        after_at=after.created_at,
        after_conversation_id=after.conversation_id,
        after_seq=after.seq,
        max_rows=limit,
        **scope,
    )
    return [Match(*row) for row in rows]
