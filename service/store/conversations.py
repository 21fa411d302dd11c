"""The conversations table (queries in sql/conversations.sql).

``scope`` is the caller's Principal.scope(): every query addressing one conversation matches
only conversations that caller may see.

Rows become Structs positionally (much cheaper than by name): every query lists its columns in
the Struct's field order, which tests/test_queries.py checks against the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from service.auth.principal import Scope
from service.models import Conversation, Erased
from service.queries import Connection, queries

# Whose conversations a listing shows -> the query, whose $1 is the matching subject.
LISTINGS = {
    "all": "conversations.list_recent",  # subject: trusted (a boolean)
    "user": "conversations.list_recent_for_user",  # subject: the user id
    "visitor": "conversations.list_recent_for_visitor",  # subject: the visitor hash
}
Listing = Literal["all", "user", "visitor"]


async def insert(
    conn: Connection,
    *,
    conversation_id: UUID,
    title: str | None,
    user_id: str | None,
    owner: bytes | None,
    metadata: dict[str, Any],
) -> Conversation | None:
    """The new conversation, or None when the id is taken."""
    row = await queries().one(
        conn, "conversations.insert", conversation_id, title, user_id, owner, metadata
    )
    return Conversation(*row) if row else None


async def get(conn: Connection, *, conversation_id: UUID, scope: Scope) -> Conversation | None:
    row = await queries().one(conn, "conversations.get", conversation_id, *scope)
    return Conversation(*row) if row else None


async def exists(conn: Connection, *, conversation_id: UUID, scope: Scope) -> bool:
    return bool(await queries().val(conn, "conversations.exists", conversation_id, *scope))


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
    rows = await queries().many(conn, LISTINGS[listing], subject, after_updated_at, after_id, limit)
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
        conn, "conversations.update", conversation_id, *scope, set_title, title, metadata
    )
    return Conversation(*row) if row else None


async def delete(conn: Connection, *, conversation_id: UUID, scope: Scope) -> bool:
    return await queries().execrows(conn, "conversations.delete", conversation_id, *scope) > 0


async def create_if_missing(
    conn: Connection, *, conversation_id: UUID, user_id: str | None, owner: bytes | None
) -> None:
    await queries().exec(conn, "conversations.create_if_missing", conversation_id, user_id, owner)


async def lock_for_append(conn: Connection, *, conversation_id: UUID, scope: Scope) -> int | None:
    """The last seq assigned, with the conversation locked to this transaction; None if missing
    or outside the scope."""
    last_seq: int | None = await queries().val(
        conn, "conversations.lock_for_append", conversation_id, *scope
    )
    return last_seq


async def claim(conn: Connection, *, user_id: str, owner: bytes) -> int:
    """Move a visitor's conversations to a user; how many moved."""
    return await queries().execrows(conn, "conversations.claim", user_id, owner)


async def erase_user(conn: Connection, *, user_id: str) -> Erased:
    row = await queries().one(conn, "conversations.erase_user", user_id)
    assert row is not None  # an aggregate always returns a row
    return Erased(conversations=row["conversations"], messages=row["messages"])
