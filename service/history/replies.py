"""Streamed replies: a message created in progress (``status: in_progress``) takes more text,
appended in place, until it is marked complete. Each append is a ``message.updated`` event for
the conversation's live streams (service/history/live.py)."""

from __future__ import annotations

from uuid import UUID

from service.core.errors import Conflict, NotFound
from service.core.principal import Principal
from service.core.refs import ConversationRef
from service.core.schemas import Message, MessageAppend
from service.core.settings import Settings
from service.core.validation import check_content
from service.db.pool import Connection
from service.history.conversations import check_quota, require, resolve, usage_of
from service.store import events


async def append(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    message_id: UUID,
    *,
    addition: MessageAppend,
    settings: Settings,
) -> Message:
    """Add ``addition.content`` to the end of an in-progress message and set its status; a
    Conflict naming ``status`` when the message is complete already (nothing changes)."""
    check_content(addition.content, "content", settings)
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    async with conn.transaction():
        found = await events.append_content(
            conn,
            conversation_id=conversation_id,
            scope=scope,
            message_id=message_id,
            content=addition.content,
            status=addition.status,
            tokens=addition.tokens,
        )
        if found is None:
            await require(conn, conversation_id, scope)
            raise NotFound(f"message {message_id} does not exist", field="message_id")
        message, appended, grown = found
        if not appended:
            raise Conflict(
                f"message {message_id} is complete: only a message in progress takes more text",
                field="status",
            )
        # The whole content stays within the limit an append of it would have.
        check_content(message.content, "content", settings)
        if grown > 0:
            after = await usage_of(conn, conversation_id, scope)
            check_quota(after, settings, new_conversation=False, grew=True)
    return message
