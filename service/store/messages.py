"""The messages table (queries in sql/messages.sql).

Rows become Structs positionally (much cheaper than by name): every query lists its columns in
the Struct's field order, which tests/integration/test_queries.py checks against the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

from service.core.principal import Scope
from service.core.revisions import Revision
from service.core.schemas import Message, NewMessage
from service.db.pool import Connection
from service.db.queries import queries

# Queries that read one page of history: (direction, filtered by topic) -> registry key.
PAGE_QUERIES = {
    ("backward", False): "messages.page_backward",
    ("forward", False): "messages.page_forward",
    ("backward", True): "messages.topic_page_backward",
    ("forward", True): "messages.topic_page_forward",
}


class Page(NamedTuple):
    messages: list[Message]
    # Content and metadata bytes of the messages up to and including the last one.
    last_running_bytes: int
    # The conversation's, read with the messages; None when there are none.
    revision: Revision | None


async def page(
    conn: Connection,
    *,
    conversation_id: UUID,
    scope: Scope,
    after_seq: int,
    before_seq: int,
    limit: int,
    max_bytes: int,
    forward: bool,
    topic: str | None,
) -> Page:
    """Up to ``limit`` messages with after_seq < seq < before_seq: the oldest of them in seq
    order when ``forward``, else the newest, newest first; no message after the one with
    which their content and metadata pass ``max_bytes``."""
    key = PAGE_QUERIES[("forward" if forward else "backward", topic is not None)]
    bounds: dict[str, Any] = {
        "after_seq": after_seq,
        "before_seq": before_seq,
        "max_rows": limit,
        "max_bytes": max_bytes,
    }
    if topic is not None:
        bounds["topic"] = topic
    rows = await queries().many(conn, key, conversation_id=conversation_id, **scope, **bounds)
    # The first eleven columns are a Message; then the running byte count and the revision.
    if not rows:
        return Page([], 0, None)
    last = rows[-1]
    return Page([Message(*row[:11]) for row in rows], last[11], Revision(last[12], last[13]))


async def get(
    conn: Connection, *, conversation_id: UUID, scope: Scope, message_id: UUID
) -> Message | None:
    row = await queries().one(
        conn, "messages.get", conversation_id=conversation_id, message_id=message_id, **scope
    )
    return Message(*row) if row else None


async def find_stored(
    conn: Connection,
    *,
    conversation_id: UUID,
    message_ids: Sequence[UUID],
    external_ids: Sequence[str],
) -> list[Message]:
    """The conversation's messages having one of these ids or external ids."""
    rows = await queries().many(
        conn,
        "messages.find_stored",
        conversation_id=conversation_id,
        message_ids=message_ids,
        external_ids=external_ids,
    )
    return [Message(*row) for row in rows]


async def append_batch(
    conn: Connection,
    *,
    conversation_id: UUID,
    last_seq: int,
    ids: Sequence[UUID],
    messages: Sequence[NewMessage],
) -> list[Message]:
    """Insert ``messages`` with seq last_seq+1... and move the conversation's counters.
    The caller holds the conversation's lock (lock_for_append) in the same transaction."""
    rows = await queries().many(
        conn,
        "messages.append_batch",
        conversation_id=conversation_id,
        last_seq=last_seq,
        ids=ids,
        roles=[message.role for message in messages],
        contents=[message.content for message in messages],
        topics=[message.topic for message in messages],
        metadata=[message.metadata for message in messages],
        external_ids=[message.external_id for message in messages],
        tokens=[message.tokens for message in messages],
        statuses=[message.status for message in messages],
    )
    return [Message(*row) for row in rows]


async def update(
    conn: Connection,
    *,
    conversation_id: UUID,
    scope: Scope,
    message_id: UUID,
    content: str | None,
    metadata: dict[str, Any] | None,
    tokens: int | None,
) -> tuple[Message, int] | None:
    """(the patched message, how many bytes it grew by: negative when it shrank). New content
    without ``tokens`` gets a new estimate."""
    row = await queries().one(
        conn,
        "messages.update",
        conversation_id=conversation_id,
        message_id=message_id,
        content=content,
        metadata=metadata,
        tokens=tokens,
        **scope,
    )
    return (Message(*row[:11]), row[11]) if row else None


async def delete(
    conn: Connection, *, conversation_id: UUID, scope: Scope, message_id: UUID
) -> bool:
    deleted: int = await queries().val(
        conn, "messages.delete", conversation_id=conversation_id, message_id=message_id, **scope
    )
    return deleted > 0


async def clear(conn: Connection, *, conversation_id: UUID, scope: Scope, topic: str | None) -> int:
    """Delete the conversation's messages (only those of ``topic`` if given); how many went."""
    deleted: int = await queries().val(
        conn, "messages.clear", conversation_id=conversation_id, topic=topic, **scope
    )
    return deleted
