"""Appending a batch of messages: atomic, ordered, and safe to retry.

One transaction, a constant number of round trips whatever the batch size:
lock the conversation (creating it first if needed), look up ids a retry may have stored
already, insert the rest with consecutive seqs and move the counters in one statement.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from service.auth.principal import Principal
from service.errors import Conflict, conversation_not_found
from service.models import Message, MessageBatch, NewMessage, same_json
from service.queries import Connection
from service.store import conversations, messages


def _same_message(stored: Message, new: NewMessage) -> bool:
    return (stored.role, stored.content, stored.topic) == (
        new.role,
        new.content,
        new.topic,
    ) and same_json(stored.metadata, new.metadata)


async def _lock(
    conn: Connection, conversation_id: UUID, principal: Principal, requested_user_id: str | None
) -> int:
    scope = principal.scope()
    last_seq = await conversations.lock_for_append(
        conn, conversation_id=conversation_id, scope=scope
    )
    if last_seq is None:
        user_id, owner = principal.new_conversation_owner(requested_user_id, field="user_id")
        await conversations.create_if_missing(
            conn, conversation_id=conversation_id, user_id=user_id, owner=owner
        )
        last_seq = await conversations.lock_for_append(
            conn, conversation_id=conversation_id, scope=scope
        )
    if last_seq is None:
        # Someone else's conversation (or deleted by a concurrent request since): not ours to
        # append to, and not ours to know about.
        raise conversation_not_found(conversation_id)
    return last_seq


async def append(
    conn: Connection, conversation_id: UUID, batch: MessageBatch, principal: Principal
) -> list[Message]:
    """Store the batch; returns one Message per input message, in input order.

    A message whose id is already stored with the same body is returned as stored (a retry);
    the same id with a different body is a Conflict and nothing of the batch is written.
    """
    ids = [message.id or uuid.uuid4() for message in batch.messages]
    async with conn.transaction():
        # The lock comes first: a concurrent retry of this batch waits here, then sees its rows.
        last_seq = await _lock(conn, conversation_id, principal, batch.user_id)
        supplied = [message.id for message in batch.messages if message.id is not None]
        stored: dict[UUID, Message] = {}
        if supplied:
            found = await messages.find_by_ids(
                conn, conversation_id=conversation_id, message_ids=supplied
            )
            stored = {message.id: message for message in found}
        new_ids: list[UUID] = []
        new_messages: list[NewMessage] = []
        for index, (message_id, message) in enumerate(zip(ids, batch.messages, strict=True)):
            previous = stored.get(message_id)
            if previous is None:
                new_ids.append(message_id)
                new_messages.append(message)
            elif not _same_message(previous, message):
                raise Conflict(
                    f"message {message_id} is already stored with a different body",
                    field=f"messages[{index}].id",
                )
        if new_messages:
            inserted = await messages.append_batch(
                conn,
                conversation_id=conversation_id,
                last_seq=last_seq,
                ids=new_ids,
                messages=new_messages,
            )
            stored.update((message.id, message) for message in inserted)
    return [stored[message_id] for message_id in ids]
