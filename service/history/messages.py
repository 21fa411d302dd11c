"""Messages: append (atomic, ordered, safe to retry), read history, get, patch, delete, clear.

An append is one transaction and a constant number of round trips whatever the batch size:
lock the conversation (creating it first if needed), look up ids a retry may have stored
already, insert the rest with consecutive seqs and move the counters in one statement.
"""

from __future__ import annotations

import uuid
from typing import Literal
from uuid import UUID

from service.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    conversation_not_found,
)
from service.core.preconditions import Precondition
from service.core.principal import Principal, Scope
from service.core.refs import ConversationRef, ExternalRef
from service.core.revisions import PageQuery, Revision
from service.core.schemas import (
    ConversationPatch,
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
from service.history.conversations import (
    apply_patch,
    check_quota,
    find,
    require,
    resolve,
    usage_of,
)
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
    return (
        (stored.role, stored.content, stored.topic, stored.external_id)
        == (new.role, new.content, new.topic, new.external_id)
        and same_json(stored.metadata, new.metadata)
        # A retry leaving tokens out matches the estimate stored.
        and new.tokens in (None, stored.tokens)
        and new.status == stored.status
    )


async def _lock(
    conn: Connection,
    ref: ConversationRef,
    principal: Principal,
    requested_user_id: str | None,
    precondition: Precondition | None,
) -> tuple[UUID, Locked, bool]:
    """(the conversation's id, the locked conversation, whether this created it)."""
    scope = principal.scope()
    created = False
    conversation_id = await find(conn, ref, scope, user_id=requested_user_id)
    locked = (
        None
        if conversation_id is None
        else await conversations.lock_for_append(conn, conversation_id=conversation_id, scope=scope)
    )
    if locked is None:
        if precondition is not None:
            # If-Match names a version of a conversation that, for this caller, does not exist.
            raise PreconditionFailed(f"conversation {ref} does not exist")
        user_id, visitor_hash = principal.new_conversation_owner(requested_user_id, field="user_id")
        external_id = ref.external_id if isinstance(ref, ExternalRef) else None
        created = await conversations.create_if_missing(
            conn,
            conversation_id=conversation_id or uuid.uuid4(),
            user_id=user_id,
            visitor_hash=visitor_hash,
            external_id=external_id,
        )
        if external_id is not None:
            # Created now, or by a concurrent first append that won the insert: found either way.
            conversation_id = await find(conn, ref, scope, user_id=requested_user_id)
        if conversation_id is not None:
            locked = await conversations.lock_for_append(
                conn, conversation_id=conversation_id, scope=scope
            )
    if locked is None or conversation_id is None:
        # Someone else's conversation (or deleted by a concurrent request since): not ours to
        # append to, and not ours to know about.
        raise conversation_not_found(ref)
    if requested_user_id is not None and requested_user_id != locked.user_id:
        # As on create: naming another user than the conversation's is a conflict, never a
        # silent append to someone else's history.
        raise Conflict(
            f"conversation {ref} does not belong to user {requested_user_id!r}",
            field="user_id",
        )
    if precondition is not None:
        precondition.require(locked.version, ref)
    return conversation_id, locked, created


def _match_stored(
    ids: list[UUID], batch: MessageBatch, stored: list[Message]
) -> tuple[list[UUID], list[UUID], list[NewMessage], dict[UUID, Message]]:
    """Which of the batch a retry stored already, matched by id or else by external id:
    (every message's id, the new ones' ids, the new messages, the stored ones by id). A stored
    message with another body is a Conflict naming what matched."""
    by_id = {message.id: message for message in stored}
    by_external_id = {message.external_id: message for message in stored if message.external_id}
    new_ids: list[UUID] = []
    new_messages: list[NewMessage] = []
    final_ids: list[UUID] = []
    for index, (message_id, message) in enumerate(zip(ids, batch.messages, strict=True)):
        where = f"messages[{index}]"
        previous = by_id.get(message_id) if message.id is not None else None
        field = f"{where}.id"
        if previous is None and message.external_id is not None:
            previous = by_external_id.get(message.external_id)
            field = f"{where}.external_id"
            if previous is not None and message.id is not None:
                raise Conflict(
                    f"external id {message.external_id!r} is used by message {previous.id}",
                    field=field,
                )
        if previous is None:
            new_ids.append(message_id)
            new_messages.append(message)
            final_ids.append(message_id)
        elif not _same_message(previous, message):
            raise Conflict(
                f"message {previous.id} is already stored with a different body", field=field
            )
        else:
            final_ids.append(previous.id)
    return final_ids, new_ids, new_messages, by_id


async def append(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    batch: MessageBatch,
    settings: Settings,
    *,
    precondition: Precondition | None = None,
) -> tuple[list[Message], int]:
    """Store the batch; returns one Message per input message, in input order, and the
    conversation's version after it.

    A message whose id (or, without an id, external id) is already stored with the same body is
    returned as stored (a retry); the same id with a different body is a Conflict and nothing of
    the batch is written. The batch's ``conversation`` patch (title, metadata merge patch) is
    applied in the same transaction, with the messages it came with: a retry that stores no new
    message applies nothing.
    """
    check_message_batch(batch, settings)
    ids = [message.id or uuid.uuid4() for message in batch.messages]
    async with conn.transaction():
        # The lock comes first: a concurrent retry of this batch waits here, then sees its rows.
        conversation_id, locked, created = await _lock(
            conn, ref, principal, batch.user_id, precondition
        )
        version = locked.version
        supplied = [message.id for message in batch.messages if message.id is not None]
        external_ids = [m.external_id for m in batch.messages if m.external_id is not None]
        found: list[Message] = []
        if supplied or external_ids:
            found = await messages.find_stored(
                conn,
                conversation_id=conversation_id,
                message_ids=supplied,
                external_ids=external_ids,
            )
        final_ids, new_ids, new_messages, stored = _match_stored(ids, batch, found)
        if new_messages:
            inserted = await messages.append_batch(
                conn,
                conversation_id=conversation_id,
                last_seq=locked.last_seq,
                ids=new_ids,
                messages=new_messages,
            )
            version += 1
            stored.update((message.id, message) for message in inserted)
            if isinstance(batch.conversation, ConversationPatch):
                patched = await apply_patch(
                    conn,
                    conversation_id,
                    principal.scope(),
                    batch.conversation,
                    settings,
                    merge=True,
                    field_prefix="conversation.",
                )
                assert patched is not None  # locked above, in this transaction
                version = patched.version
            if locked.owned:
                # After the insert: its triggers counted the exact bytes, and they hold the
                # owner's usage row until commit, so the owner's concurrent writes pass this
                # check one at a time.
                after = await usage_of(conn, conversation_id, principal.scope())
                check_quota(after, settings, new_conversation=created, grew=True)
    return [stored[message_id] for message_id in final_ids], version


def check_seq_bound(value: int | None, field: str) -> None:
    if value is not None and not NO_LOWER_BOUND <= value <= NO_UPPER_BOUND:
        raise InvalidInput(f"{field} must be a seq between 0 and {NO_UPPER_BOUND}", field=field)


async def _read(
    conn: Connection, scope: Scope, conversation_id: UUID, query: PageQuery
) -> messages.Page:
    return await messages.page(
        conn,
        conversation_id=conversation_id,
        scope=scope,
        after_seq=NO_LOWER_BOUND if query.after is None else query.after,
        before_seq=NO_UPPER_BOUND if query.before is None else query.before,
        limit=query.size + 1,
        max_bytes=query.max_bytes,
        forward=query.after is not None,
        topic=query.topic,
    )


def page_query(
    *,
    limit: int | None,
    before: int | None,
    after: int | None,
    order: Literal["asc", "desc"],
    topic: str | None,
    settings: Settings,
) -> PageQuery:
    """A plain page's query, checked and with the defaults applied."""
    size = page_size(limit, settings)
    check_seq_bound(before, "before")
    check_seq_bound(after, "after")
    reject_nul(topic, "topic")
    return PageQuery(size, before, after, order, topic, settings.max_page_bytes)


async def page(
    conn: Connection, scope: Scope, conversation_id: UUID, query: PageQuery
) -> tuple[MessagePage, Revision]:
    """A page of history and the conversation's revision it shows: by default the latest
    ``size``; ``before`` pages backward (newest below it), ``after`` forward (oldest above it).
    ``next_cursor`` continues in the same direction. A page also stops once its messages carry
    ``max_bytes`` (content and metadata), so memory follows bytes, not counts; it always holds
    at least one message."""
    forward = query.after is not None
    rows, last_running_bytes, revision = await _read(conn, scope, conversation_id, query)
    if revision is None:
        # No messages: the conversation's revision, or a 404 when it is not the caller's.
        probed = await conversations.revision(conn, conversation_id=conversation_id, scope=scope)
        if probed is None:
            raise conversation_not_found(conversation_id)
        # A write may have committed between the two statements: read again, so the page is
        # at least as new as the revision that names it (never older, so never stale).
        rows, last_running_bytes, revision = await _read(conn, scope, conversation_id, query)
        revision = revision or probed
    if last_running_bytes > query.max_bytes and len(rows) > 1:
        # The last row is the one that crossed the budget: it starts the next page.
        items = rows[:-1]
        next_cursor: int | None = items[-1].seq
    else:
        items = rows[: query.size]
        next_cursor = items[-1].seq if len(rows) > query.size else None
    # Rows come in paging order: oldest first when forward, newest first when backward.
    if forward != (query.order == "asc"):
        items.reverse()
    return MessagePage(items=items, next_cursor=next_cursor), revision


async def get(
    conn: Connection, principal: Principal, ref: ConversationRef, message_id: UUID
) -> Message:
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    found = await messages.get(
        conn, conversation_id=conversation_id, scope=scope, message_id=message_id
    )
    if found is None:
        raise await _message_not_found(conn, conversation_id, scope, message_id)
    return found


async def update(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    message_id: UUID,
    *,
    patch: MessagePatch,
    settings: Settings,
) -> Message:
    """Replace content and/or metadata (finalising a streamed reply). Refused when it grows the
    message past its owner's byte quota."""
    check_message_patch(patch, settings)
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    async with conn.transaction():
        found = await messages.update(
            conn,
            conversation_id=conversation_id,
            scope=scope,
            message_id=message_id,
            content=patch.content if isinstance(patch.content, str) else None,
            metadata=patch.metadata if isinstance(patch.metadata, dict) else None,
            tokens=patch.tokens if isinstance(patch.tokens, int) else None,
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
    conn: Connection, principal: Principal, ref: ConversationRef, message_id: UUID
) -> None:
    """One message, in one statement that also keeps the count true; seqs do not move."""
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    deleted = await messages.delete(
        conn, conversation_id=conversation_id, scope=scope, message_id=message_id
    )
    if not deleted:
        raise await _message_not_found(conn, conversation_id, scope, message_id)


async def clear(
    conn: Connection, principal: Principal, ref: ConversationRef, topic: str | None
) -> int:
    """Delete the history (one topic's, when given) in one statement; how many went."""
    reject_nul(topic, "topic")
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    deleted = await messages.clear(conn, conversation_id=conversation_id, scope=scope, topic=topic)
    if not deleted:
        await require(conn, conversation_id, scope)
    return deleted
