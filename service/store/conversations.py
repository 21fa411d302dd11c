"""The conversations table (queries in sql/conversations.sql).

``scope`` is the caller's Principal.scope(): every query addressing one conversation matches
only conversations that caller may see.

Rows become Structs positionally (much cheaper than by name): every query lists its columns in
the Struct's field order, which tests/integration/test_queries.py checks against the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from service.core.principal import Scope
from service.core.revisions import Revision
from service.core.schemas import Conversation, Erased
from service.db.pool import Connection
from service.db.queries import queries


async def insert(
    conn: Connection,
    *,
    conversation_id: UUID,
    title: str | None,
    user_id: str | None,
    visitor_hash: bytes | None,
    metadata: dict[str, Any],
    external_id: str | None,
    expires_at: datetime | None,
) -> Conversation | None:
    """The new conversation, or None when the id, or the owner's external id, is taken."""
    row = await queries().one(
        conn,
        "conversations.insert",
        conversation_id=conversation_id,
        title=title,
        user_id=user_id,
        visitor_hash=visitor_hash,
        metadata=metadata,
        external_id=external_id,
        expires_at=expires_at,
    )
    return Conversation(*row) if row else None


async def get_by_external_id_of_owner(
    conn: Connection, *, external_id: str, user_id: str | None, visitor_hash: bytes | None
) -> Conversation | None:
    row = await queries().one(
        conn,
        "conversations.get_by_external_id_of_owner",
        external_id=external_id,
        user_id=user_id,
        visitor_hash=visitor_hash,
    )
    return Conversation(*row) if row else None


async def find_by_external_id(
    conn: Connection, *, external_id: str, user_id: str | None, scope: Scope
) -> list[UUID]:
    """Ids of the caller's conversations with that external id (of that user, unless None);
    at most two."""
    rows = await queries().many(
        conn,
        "conversations.find_by_external_id",
        external_id=external_id,
        user_id=user_id,
        **scope,
    )
    return [row["id"] for row in rows]


async def get(conn: Connection, *, conversation_id: UUID, scope: Scope) -> Conversation | None:
    row = await queries().one(conn, "conversations.get", conversation_id=conversation_id, **scope)
    return Conversation(*row) if row else None


async def exists(conn: Connection, *, conversation_id: UUID, scope: Scope) -> bool:
    return bool(
        await queries().val(conn, "conversations.exists", conversation_id=conversation_id, **scope)
    )


async def update(
    conn: Connection,
    *,
    conversation_id: UUID,
    scope: Scope,
    set_title: bool,
    title: str | None,
    metadata: dict[str, Any] | None,
    merge: bool,
    if_versions: list[int] | None,
    set_expires_at: bool = False,
    expires_at: datetime | None = None,
) -> tuple[Conversation, int] | None:
    """(the updated conversation, its metadata's size), or None when nothing matched."""
    row = await queries().one(
        conn,
        "conversations.update",
        conversation_id=conversation_id,
        set_title=set_title,
        title=title,
        metadata=metadata,
        merge=merge,
        if_versions=if_versions,
        set_expires_at=set_expires_at,
        expires_at=expires_at,
        **scope,
    )
    return (Conversation(*row[:10]), row[10]) if row else None


async def version(conn: Connection, *, conversation_id: UUID, scope: Scope) -> int | None:
    """The conversation's version; None when the caller may not see it."""
    found: int | None = await queries().val(
        conn, "conversations.version", conversation_id=conversation_id, **scope
    )
    return found


async def revision(conn: Connection, *, conversation_id: UUID, scope: Scope) -> Revision | None:
    """The conversation's version and creation time; None when the caller may not see it."""
    row = await queries().one(
        conn, "conversations.revision", conversation_id=conversation_id, **scope
    )
    return Revision(*row) if row else None


async def delete(
    conn: Connection, *, conversation_id: UUID, scope: Scope, if_versions: list[int] | None
) -> bool:
    deleted = await queries().execrows(
        conn,
        "conversations.delete",
        conversation_id=conversation_id,
        if_versions=if_versions,
        **scope,
    )
    return deleted > 0


async def create_if_missing(
    conn: Connection,
    *,
    conversation_id: UUID,
    user_id: str | None,
    visitor_hash: bytes | None,
    external_id: str | None = None,
) -> bool:
    """Whether this created the conversation (not when the id or external id is taken)."""
    created = await queries().execrows(
        conn,
        "conversations.create_if_missing",
        conversation_id=conversation_id,
        user_id=user_id,
        visitor_hash=visitor_hash,
        external_id=external_id,
    )
    return created > 0


class Locked(NamedTuple):
    # The last seq the conversation assigned.
    last_seq: int
    # The user it belongs to.
    user_id: str | None
    # Whether a user or a visitor owns it (its quotas apply).
    owned: bool
    # Its version before this transaction's writes.
    version: int


async def lock_for_append(
    conn: Connection, *, conversation_id: UUID, scope: Scope
) -> Locked | None:
    """The conversation, locked to this transaction; None if missing or outside the scope."""
    row = await queries().one(
        conn, "conversations.lock_for_append", conversation_id=conversation_id, **scope
    )
    return Locked(*row) if row else None


async def claim(conn: Connection, *, user_id: str, visitor_hash: bytes) -> tuple[int, list[str]]:
    """Move a visitor's conversations to a user: (how many moved, the external ids both use,
    which stopped it)."""
    row = await queries().one(
        conn, "conversations.claim", user_id=user_id, visitor_hash=visitor_hash
    )
    assert row is not None  # an aggregate always returns a row
    return row["moved"], list(row["clashing"])


async def erase_user(conn: Connection, *, user_id: str) -> Erased:
    row = await queries().one(conn, "conversations.erase_user", user_id=user_id)
    assert row is not None  # an aggregate always returns a row
    return Erased(conversations=row["conversations"], messages=row["messages"])
