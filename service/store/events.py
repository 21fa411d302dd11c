"""The event log of live updates and the rows its events name (queries in sql/events.sql)."""

from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from service.core.principal import Scope
from service.core.schemas import Conversation, Message
from service.db.pool import Connection
from service.db.queries import queries

_EVENT_COLUMNS = 4
_MESSAGE_COLUMNS = len(Message.__struct_fields__)
_CONVERSATION_COLUMNS = len(Conversation.__struct_fields__)


class LoggedEvent(NamedTuple):
    seq: int
    type: str
    message_id: UUID | None
    message_seq: int | None
    # What the event names as it is now: None when it is gone since (or names the other kind).
    message: Message | None
    conversation: Conversation | None


async def position(conn: Connection, *, conversation_id: UUID, scope: Scope) -> int | None:
    """The conversation's newest event seq (0: none), None when the caller may not see it."""
    row = await queries().one(conn, "events.position", conversation_id=conversation_id, **scope)
    return None if row is None else int(row[0])


async def after(
    conn: Connection, *, conversation_id: UUID, after_seq: int, limit: int
) -> list[LoggedEvent]:
    rows = await queries().many(
        conn,
        "events.after",
        conversation_id=conversation_id,
        after_seq=after_seq,
        max_rows=limit,
    )
    conversation_start = _EVENT_COLUMNS + _MESSAGE_COLUMNS
    conversation_end = conversation_start + _CONVERSATION_COLUMNS
    return [
        LoggedEvent(
            seq=row[0],
            type=row[1],
            message_id=row[2],
            message_seq=row[3],
            message=Message(*row[_EVENT_COLUMNS:conversation_start]) if row[4] else None,
            conversation=Conversation(*row[conversation_start:conversation_end])
            if row[conversation_start]
            else None,
        )
        for row in rows
    ]


async def owned_conversation(
    conn: Connection, *, conversation_id: UUID, owner_key: str
) -> Conversation | None:
    row = await queries().one(
        conn, "events.owned_conversation", conversation_id=conversation_id, owner_key=owner_key
    )
    return Conversation(*row) if row else None


async def append_content(
    conn: Connection,
    *,
    conversation_id: UUID,
    scope: Scope,
    message_id: UUID,
    content: str,
    status: str | None,
    tokens: int | None,
) -> tuple[Message, bool, int] | None:
    """(the message as it is now, whether it was in progress and took the text, how many bytes
    it grew by); None when the caller has no such message."""
    row = await queries().one(
        conn,
        "events.append_content",
        conversation_id=conversation_id,
        message_id=message_id,
        content=content,
        status=status,
        tokens=tokens,
        **scope,
    )
    if row is None:
        return None
    return Message(*row[:_MESSAGE_COLUMNS]), row[_MESSAGE_COLUMNS], row[_MESSAGE_COLUMNS + 1]
