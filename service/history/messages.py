"""Messages: append (atomic, ordered, safe to retry), read history, get, patch, delete, clear.

An append is one transaction and a constant number of round trips whatever the batch size:
lock the conversation (creating it first if needed), look up ids a retry may have stored
already, insert the rest with consecutive seqs and move the counters in one statement.
"""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

from service.core.errors import Conflict, InvalidInput, NotFound, conversation_not_found
from service.core.principal import Principal, Scope
from service.core.schemas import (
    Message,
    MessageBatch,
    MessagePage,
    MessagePatch,
    NewMessage,
    same_json,
)
from service.core.settings import Settings
from service.core.validation import (
    check_message_batch,
    check_message_patch,
    page_size,
    reject_nul,
)
from service.db.pool import Connection
from service.history.conversations import check_quota, require, usage_of
from service.store import conversations, messages
from service.store.conversations import Locked

# seq bounds meaning "no bound": seq starts at 1 and is a bigint.
NO_LOWER_BOUND = 0
NO_UPPER_BOUND = 2**63 - 1


async def _message_not_found(
    conn: Connection, conversation_id: UUID, scope: Scope, message_id: UUID
) -> NotFound:
    """Why a message was not found: its conversation is missing (or not the caller's), or only
    the message is."""
    await require(conn, conversation_id, scope)
    return NotFound(f"message {message_id} does not exist", field="message_id")


def _same_message(stored: Message, new: NewMessage) -> bool:
    return (stored.role, stored.content, stored.topic) == (
        new.role,
        new.content,
        new.topic,
    ) and same_json(stored.metadata, new.metadata)


async def _lock(
    conn: Connection, conversation_id: UUID, principal: Principal, requested_user_id: str | None
) -> tuple[Locked, bool]:
    """(the locked conversation, whether this created it)."""
    scope = principal.scope()
    created = False
    locked = await conversations.lock_for_append(conn, conversation_id=conversation_id, scope=scope)
    if locked is None:
        user_id, visitor_hash = principal.new_conversation_owner(requested_user_id, field="user_id")
        created = await conversations.create_if_missing(
            conn, conversation_id=conversation_id, user_id=user_id, visitor_hash=visitor_hash
        )
        locked = await conversations.lock_for_append(
            conn, conversation_id=conversation_id, scope=scope
        )
    if locked is None:
        # Someone else's conversation (or deleted by a concurrent request since): not ours to
        # append to, and not ours to know about.
        raise conversation_not_found(conversation_id)
    if requested_user_id is not None and requested_user_id != locked.user_id:
        # As on create: naming another user than the conversation's is a conflict, never a
        # silent append to someone else's history.
        raise Conflict(
            f"conversation {conversation_id} does not belong to user {requested_user_id!r}",
            field="user_id",
        )
    return locked, created


async def append(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    batch: MessageBatch,
    settings: Settings,
) -> list[Message]:
    """Store the batch; returns one Message per input message, in input order.

    A message whose id is already stored with the same body is returned as stored (a retry);
    the same id with a different body is a Conflict and nothing of the batch is written.
    """
    check_message_batch(batch, settings)
    ids = [message.id or uuid.uuid4() for message in batch.messages]
    async with conn.transaction():
        # The lock comes first: a concurrent retry of this batch waits here, then sees its rows.
        locked, created = await _lock(conn, conversation_id, principal, batch.user_id)
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
                last_seq=locked.last_seq,
                ids=new_ids,
                messages=new_messages,
            )
            stored.update((message.id, message) for message in inserted)
            if locked.owned:
                # After the insert: its triggers counted the exact bytes, and they hold the
                # owner's usage row until commit, so the owner's concurrent writes pass this
                # check one at a time.
                after = await usage_of(conn, conversation_id, principal.scope())
                check_quota(after, settings, new_conversation=created, grew=True)
    return [stored[message_id] for message_id in ids]


def _check_seq_bound(value: int | None, field: str) -> None:
    if value is not None and not NO_LOWER_BOUND <= value <= NO_UPPER_BOUND:
        raise InvalidInput(f"{field} must be a seq between 0 and {NO_UPPER_BOUND}", field=field)


async def page(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    *,
    limit: int | None,
    before: int | None,
    after: int | None,
    order: Literal["asc", "desc"],
    topic: str | None,
    settings: Settings,
) -> MessagePage:
    """A page of history: by default the latest ``limit``; ``before`` pages backward (newest
    below it), ``after`` forward (oldest above it). ``next_cursor`` continues in the same
    direction. A page also stops once its messages carry ``max_page_bytes`` (content and
    metadata), so memory follows bytes, not counts; it always holds at least one message."""
    size = page_size(limit, settings)
    _check_seq_bound(before, "before")
    _check_seq_bound(after, "after")
    reject_nul(topic, "topic")
    forward = after is not None
    scope = principal.scope()
    rows, last_running_bytes = await messages.page(
        conn,
        conversation_id=conversation_id,
        scope=scope,
        after_seq=NO_LOWER_BOUND if after is None else after,
        before_seq=NO_UPPER_BOUND if before is None else before,
        limit=size + 1,
        max_bytes=settings.max_page_bytes,
        forward=forward,
        topic=topic,
    )
    if not rows:
        await require(conn, conversation_id, scope)
    if last_running_bytes > settings.max_page_bytes and len(rows) > 1:
        # The last row is the one that crossed the budget: it starts the next page.
        items = rows[:-1]
        next_cursor: int | None = items[-1].seq
    else:
        items = rows[:size]
        next_cursor = items[-1].seq if len(rows) > size else None
    # Rows come in paging order: oldest first when forward, newest first when backward.
    if forward != (order == "asc"):
        items.reverse()
    return MessagePage(items=items, next_cursor=next_cursor)


async def get(
    conn: Connection, principal: Principal, conversation_id: UUID, message_id: UUID
) -> Message:
    scope = principal.scope()
    found = await messages.get(
        conn, conversation_id=conversation_id, scope=scope, message_id=message_id
    )
    if found is None:
        raise await _message_not_found(conn, conversation_id, scope, message_id)
    return found


async def update(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    message_id: UUID,
    *,
    patch: MessagePatch,
    settings: Settings,
) -> Message:
    """Replace content and/or metadata (finalising a streamed reply). Refused when it grows the
    message past its owner's byte quota."""
    check_message_patch(patch, settings)
    scope = principal.scope()
    async with conn.transaction():
        found = await messages.update(
            conn,
            conversation_id=conversation_id,
            scope=scope,
            message_id=message_id,
            content=patch.content if isinstance(patch.content, str) else None,
            metadata=patch.metadata if isinstance(patch.metadata, dict) else None,
        )
        if found is None:
            raise await _message_not_found(conn, conversation_id, scope, message_id)
        updated, grown = found
        if grown > 0:
            # As for an append: the update's triggers hold the owner's usage row until commit.
            after = await usage_of(conn, conversation_id, scope)
            check_quota(after, settings, new_conversation=False, grew=True)
    return updated


async def delete(
    conn: Connection, principal: Principal, conversation_id: UUID, message_id: UUID
) -> None:
    """One message, in one statement that also keeps the count true; seqs do not move."""
    scope = principal.scope()
    deleted = await messages.delete(
        conn, conversation_id=conversation_id, scope=scope, message_id=message_id
    )
    if not deleted:
        raise await _message_not_found(conn, conversation_id, scope, message_id)


async def clear(
    conn: Connection, principal: Principal, conversation_id: UUID, topic: str | None
) -> int:
    """Delete the history (one topic's, when given) in one statement; how many went."""
    reject_nul(topic, "topic")
    scope = principal.scope()
    deleted = await messages.clear(conn, conversation_id=conversation_id, scope=scope, topic=topic)
    if not deleted:
        await require(conn, conversation_id, scope)
    return deleted
