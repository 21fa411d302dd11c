"""The conversations table (queries in sql/conversations.sql).

``scope`` is the caller's Principal.scope(): every query addressing one conversation matches
only conversations that caller may see.

Rows become Structs positionally (much cheaper than by name): every query lists its columns in
the Struct's field order, which tests/integration/test_queries.py checks against the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple
from uuid import UUID

from service.core.principal import Scope
from service.core.schemas import Conversation, Erased
from service.db.pool import Connection
from service.db.queries import queries

# Whose conversations a listing shows -> the query and the name of its subject parameter.
LISTINGS = {
    "all": ("conversations.list_recent", "caller_trusted"),  # subject: True
    "user": ("conversations.list_recent_for_user", "user_id"),
    "visitor": ("conversations.list_recent_for_visitor", "visitor_hash"),
}
Listing = Literal["all", "user", "visitor"]


async def insert(
    conn: Connection,
    *,
    conversation_id: UUID,
    title: str | None,
    user_id: str | None,
    visitor_hash: bytes | None,
    metadata: dict[str, Any],
) -> Conversation | None:
    """The new conversation, or None when the id is taken."""
    row = await queries().one(
        conn,
        "conversations.insert",
        conversation_id=conversation_id,
        title=title,
        user_id=user_id,
        visitor_hash=visitor_hash,
        metadata=metadata,
    )
    return Conversation(*row) if row else None


async def get(conn: Connection, *, conversation_id: UUID, scope: Scope) -> Conversation | None:
    row = await queries().one(conn, "conversations.get", conversation_id=conversation_id, **scope)
    return Conversation(*row) if row else None


async def exists(conn: Connection, *, conversation_id: UUID, scope: Scope) -> bool:
    return bool(
        await queries().val(conn, "conversations.exists", conversation_id=conversation_id, **scope)
    )


async def list_recent(
    conn: Connection,
    *,
    listing: Listing,
    subject: bool | str | bytes,
    after_updated_at: datetime,
    after_id: UUID,
    limit: int,
) -> list[Conversation]:
    """Newest updated first, strictly after the keyset position (after_updated_at, after_id);
    whose conversations: see LISTINGS."""
    key, subject_name = LISTINGS[listing]
    rows = await queries().many(
        conn,
        key,
        after_updated_at=after_updated_at,
        after_id=after_id,
        max_rows=limit,
        **{subject_name: subject},
    )
    return [Conversation(*row) for row in rows]


async def update(
    conn: Connection,
    *,
    conversation_id: UUID,
    scope: Scope,
    set_title: bool,
    title: str | None,
    metadata: dict[str, Any] | None,
) -> Conversation | None:
    row = await queries().one(
        conn,
        "conversations.update",
        conversation_id=conversation_id,
        set_title=set_title,
        title=title,
        metadata=metadata,
        **scope,
    )
    return Conversation(*row) if row else None


async def delete(conn: Connection, *, conversation_id: UUID, scope: Scope) -> bool:
    deleted = await queries().execrows(
        conn, "conversations.delete", conversation_id=conversation_id, **scope
    )
    return deleted > 0


async def create_if_missing(
    conn: Connection, *, conversation_id: UUID, user_id: str | None, visitor_hash: bytes | None
) -> bool:
    """Whether this created the conversation."""
    created = await queries().execrows(
        conn,
        "conversations.create_if_missing",
        conversation_id=conversation_id,
        user_id=user_id,
        visitor_hash=visitor_hash,
    )
    return created > 0


class Locked(NamedTuple):
    # The last seq the conversation assigned.
    last_seq: int
    # The user it belongs to.
    user_id: str | None
    # Whether a user or a visitor owns it (its quotas apply).
    owned: bool


async def lock_for_append(
    conn: Connection, *, conversation_id: UUID, scope: Scope
) -> Locked | None:
    """The conversation, locked to this transaction; None if missing or outside the scope."""
    row = await queries().one(
        conn, "conversations.lock_for_append", conversation_id=conversation_id, **scope
    )
    return Locked(*row) if row else None


async def claim(conn: Connection, *, user_id: str, visitor_hash: bytes) -> int:
    """Move a visitor's conversations to a user; how many moved."""
    return await queries().execrows(
        conn, "conversations.claim", user_id=user_id, visitor_hash=visitor_hash
    )


async def erase_user(conn: Connection, *, user_id: str) -> Erased:
    row = await queries().one(conn, "conversations.erase_user", user_id=user_id)
    assert row is not None  # an aggregate always returns a row
    return Erased(conversations=row["conversations"], messages=row["messages"])
