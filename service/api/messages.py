"""Messages of a conversation: append, read history, get, patch, delete, clear."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody

from service import appending
from service.api.lookups import require_conversation
from service.api.params import (
    After,
    AuthenticatedRequest,
    Before,
    ConversationId,
    Limit,
    MessageId,
    Order,
    TopicFilter,
)
from service.api.problems import PROBLEM_RESPONSES
from service.db import PooledConnection
from service.errors import InvalidInput, NotFound
from service.models import Cleared, Message, MessageBatch, MessageList, MessagePage, MessagePatch
from service.settings import Settings
from service.store import messages
from service.validation import (
    check_message_batch,
    check_message_patch,
    page_size,
    reject_nul,
)

# seq bounds meaning "no bound": seq starts at 1 and is a bigint.
NO_LOWER_BOUND = 0
NO_UPPER_BOUND = 2**63 - 1


def _message_not_found(message_id: object) -> NotFound:
    return NotFound(f"message {message_id} does not exist", field="message_id")


def _check_seq_bound(value: int | None, field: str) -> None:
    if value is not None and not NO_LOWER_BOUND <= value <= NO_UPPER_BOUND:
        raise InvalidInput(f"{field} must be a seq between 0 and {NO_UPPER_BOUND}", field=field)


class MessageController(Controller):
    path = "/conversations/{conversation_id:str}/messages"
    tags = ("messages",)

    @post("/", status_code=201, responses=PROBLEM_RESPONSES)
    async def append_messages(
        self,
        conversation_id: ConversationId,
        data: JSONBody[MessageBatch],
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
    ) -> MessageList:
        """Append 1..100 messages atomically, creating the conversation if it does not exist.
        Each gets the next seq in order. Re-posting a message id already stored with the same
        body returns the stored message; the same id with a different body is a 409."""
        check_message_batch(data, state.settings)
        return MessageList(items=await appending.append(conn, conversation_id, data, request.user))

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_messages(
        self,
        *,
        conversation_id: ConversationId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        before: Before = None,
        after: After = None,
        order: Order = "asc",
        topic: TopicFilter = None,
    ) -> MessagePage:
        """A page of history. By default the latest `limit` (50) messages, oldest first.
        `before=S` pages backward (the newest messages below seq S); `after=S` pages forward
        (the oldest above S). `next_cursor` is the seq to pass as `before` (or `after` when
        paging forward) for the next page, null when there is none."""
        settings: Settings = state.settings
        size = page_size(limit, settings)
        _check_seq_bound(before, "before")
        _check_seq_bound(after, "after")
        reject_nul(topic, "topic")
        forward = after is not None
        rows = await messages.page(
            conn,
            conversation_id=conversation_id,
            scope=request.user.scope(),
            after_seq=NO_LOWER_BOUND if after is None else after,
            before_seq=NO_UPPER_BOUND if before is None else before,
            limit=size + 1,
            forward=forward,
            topic=topic,
        )
        if not rows:
            await require_conversation(conn, conversation_id, request.user.scope())
        items = rows[:size]
        next_cursor = items[-1].seq if len(rows) > size else None
        # Rows come in paging order: oldest first when forward, newest first when backward.
        if forward != (order == "asc"):
            items.reverse()
        return MessagePage(items=items, next_cursor=next_cursor)

    @delete("/", status_code=200, responses=PROBLEM_RESPONSES)
    async def clear_messages(
        self,
        conversation_id: ConversationId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        topic: TopicFilter = None,
    ) -> Cleared:
        """Clear the history (only one topic's messages when `topic` is given)."""
        reject_nul(topic, "topic")
        deleted = await messages.clear(
            conn, conversation_id=conversation_id, scope=request.user.scope(), topic=topic
        )
        if not deleted:
            await require_conversation(conn, conversation_id, request.user.scope())
        return Cleared(deleted=deleted)

    @get("/{message_id:str}", responses=PROBLEM_RESPONSES)
    async def get_message(
        self,
        conversation_id: ConversationId,
        message_id: MessageId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> Message:
        """One message."""
        found = await messages.get(
            conn, conversation_id=conversation_id, scope=request.user.scope(), message_id=message_id
        )
        if found is None:
            await require_conversation(conn, conversation_id, request.user.scope())
            raise _message_not_found(message_id)
        return found

    @patch("/{message_id:str}", responses=PROBLEM_RESPONSES)
    async def patch_message(
        self,
        *,
        conversation_id: ConversationId,
        message_id: MessageId,
        data: JSONBody[MessagePatch],
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
    ) -> Message:
        """Replace a message's content and/or metadata, e.g. to finalise a streamed reply."""
        check_message_patch(data, state.settings)
        updated = await messages.update(
            conn,
            conversation_id=conversation_id,
            scope=request.user.scope(),
            message_id=message_id,
            content=data.content if isinstance(data.content, str) else None,
            metadata=data.metadata if isinstance(data.metadata, dict) else None,
        )
        if updated is None:
            await require_conversation(conn, conversation_id, request.user.scope())
            raise _message_not_found(message_id)
        return updated

    @delete("/{message_id:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def delete_message(
        self,
        conversation_id: ConversationId,
        message_id: MessageId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> None:
        """Delete one message; the seqs of the others do not change."""
        deleted = await messages.delete(
            conn, conversation_id=conversation_id, scope=request.user.scope(), message_id=message_id
        )
        if not deleted:
            await require_conversation(conn, conversation_id, request.user.scope())
            raise _message_not_found(message_id)
