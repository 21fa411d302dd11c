"""The conversations table (queries in sql/conversations.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from service.models import Conversation
from service.queries import Connection, queries


async def insert(
    conn: Connection,
    *,
    conversation_id: UUID,
    title: str | None,
    user_id: str | None,
    metadata: dict[str, Any],
) -> Conversation | None:
    """The new conversation, or None when the id is taken."""
    row = await queries().one(
        conn, "conversations.insert", conversation_id, title, user_id, metadata
    )
    return Conversation(**row) if row else None


async def get(conn: Connection, *, conversation_id: UUID) -> Conversation | None:
    row = await queries().one(conn, "conversations.get", conversation_id)
    return Conversation(**row) if row else None


async def exists(conn: Connection, *, conversation_id: UUID) -> bool:
    return bool(await queries().val(conn, "conversations.exists", conversation_id))


async def list_recent(
    conn: Connection,
    *,
    user_id: str | None,
    after_updated_at: datetime,
    after_id: UUID,
    limit: int,
) -> list[Conversation]:
    """Newest updated first, strictly after the keyset position (after_updated_at, after_id)."""
    if user_id is None:
        rows = await queries().many(
            conn, "conversations.list_recent", after_updated_at, after_id, limit
        )
    else:
        rows = await queries().many(
            conn, "conversations.list_recent_for_user", user_id, after_updated_at, after_id, limit
        )
    return [Conversation(**row) for row in rows]


async def update(
    conn: Connection,
    *,
    conversation_id: UUID,
    set_title: bool,
    title: str | None,
    metadata: dict[str, Any] | None,
) -> Conversation | None:
    row = await queries().one(
        conn, "conversations.update", conversation_id, set_title, title, metadata
    )
    return Conversation(**row) if row else None


async def delete(conn: Connection, *, conversation_id: UUID) -> bool:
    return await queries().execrows(conn, "conversations.delete", conversation_id) > 0


async def create_if_missing(
    conn: Connection, *, conversation_id: UUID, user_id: str | None
) -> None:
    await queries().exec(conn, "conversations.create_if_missing", conversation_id, user_id)


async def lock_for_append(conn: Connection, *, conversation_id: UUID) -> int | None:
    """The last seq assigned, with the conversation locked to this transaction; None if missing."""
    last_seq: int | None = await queries().val(
        conn, "conversations.lock_for_append", conversation_id
    )
    return last_seq
