"""Messages of a conversation: append, read history, get, patch, delete, clear."""

from __future__ import annotations

from typing import cast

from litestar import Controller, MediaType, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import Response

from service.api.openapi import PAGE_ETAG, PAGE_RESPONSES, PROBLEM_RESPONSES
from service.api.params import (
    After,
    AuthenticatedRequest,
    Before,
    ConnectionDependency,
    ConversationId,
    IncludeSystem,
    Limit,
    MaxTokens,
    MessageId,
    Order,
    PromptName,
    TopicFilter,
)
from service.api.preconditions import etag, if_match, if_none_match, not_modified
from service.core.refs import parse_conversation_ref
from service.core.schemas import (
    Cleared,
    Message,
    MessageBatch,
    MessageList,
    MessagePage,
    MessagePatch,
)
from service.history import cached_pages, context, messages


class MessageController(Controller):
    path = "/conversations/{conversation_id:str}/messages"
    tags = ("messages",)

    @post("/", status_code=201, responses=PROBLEM_RESPONSES)
    async def append_messages(
        self,
        conversation_id: ConversationId,
        data: JSONBody[MessageBatch],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[MessageList]:
        """Append 1..100 messages atomically, creating the conversation if it does not exist.
        Each gets the next seq in order. Re-posting a message id (or external id) already stored
        with the same body returns the stored message; the same id with a different body is a
        409. `conversation.metadata` is a merge patch of the conversation's metadata, committed
        with the messages. `If-Match` makes the append conditional on the conversation's
        version; the response's `ETag` is its version after the append."""
        stored, version = await messages.append(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            data,
            state.settings,
            precondition=if_match(request),
        )
        # This worker's pages of the conversation are stale now: its next read skips probing.
        state.page_cache.forget(stored[0].conversation_id)
        return Response(MessageList(items=stored), status_code=201, headers={"ETag": etag(version)})

    @get("/", responses=PAGE_RESPONSES, response_headers=[PAGE_ETAG])
    async def list_messages(
        self,
        *,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        limit: Limit = None,
        before: Before = None,
        after: After = None,
        order: Order = "asc",
        topic: TopicFilter = None,
        max_tokens: MaxTokens = None,
        include_system: IncludeSystem = False,
        prompt: PromptName = None,
    ) -> Response[MessagePage]:
        """A page of history. By default the latest `limit` (50) messages, oldest first.
        `before=S` pages backward (the newest messages below seq S); `after=S` pages forward
        (the oldest above S). `next_cursor` is the seq to pass as `before` (or `after` when
        paging forward) for the next page, null when there is none.

        With `max_tokens=N`, a context window instead: the newest messages whose token counts
        sum to at most N, oldest first, never cutting one; `include_system=true` puts the
        conversation's system messages first and `prompt=name` a prompt (in `prompt`), both
        counted in N. The response adds `tokens` (the total) and `truncated` (older messages
        were left out; `next_cursor` pages through them).

        A plain page (no context window) carries a weak `ETag` naming the conversation's
        version and the query; `If-None-Match` with it answers 304 while nothing in the
        conversation changed."""
        if max_tokens is not None or include_system or prompt is not None:
            window = await context.window(
                conn,
                request.user,
                parse_conversation_ref(conversation_id),
                max_tokens=max_tokens,
                before=before,
                include_system=include_system,
                prompt=prompt,
                limit=limit,
                after=after,
                topic=topic,
                order=order,
                settings=state.settings,
            )
            return Response(window)
        query = messages.page_query(
            limit=limit,
            before=before,
            after=after,
            order=order,
            topic=topic,
            settings=state.settings,
        )
        page = await cached_pages.read(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            query,
            cache=state.page_cache,
            if_none_match=if_none_match(request),
        )
        if page.body is None:
            return not_modified(page.etag)
        # The page comes encoded (Litestar sends bytes as they are); the annotation tells the
        # OpenAPI document what they hold.
        body = cast(MessagePage, page.body)
        return Response(body, media_type=MediaType.JSON, headers={"ETag": page.etag})

    @delete("/", status_code=200, responses=PROBLEM_RESPONSES)
    async def clear_messages(
        self,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        topic: TopicFilter = None,
    ) -> Cleared:
        """Clear the history (only one topic's messages when `topic` is given)."""
        ref = parse_conversation_ref(conversation_id)
        return Cleared(deleted=await messages.clear(conn, request.user, ref, topic))

    @get("/{message_id:str}", responses=PROBLEM_RESPONSES)
    async def get_message(
        self,
        conversation_id: ConversationId,
        message_id: MessageId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> Message:
        """One message."""
        ref = parse_conversation_ref(conversation_id)
        return await messages.get(conn, request.user, ref, message_id)

    @patch("/{message_id:str}", responses=PROBLEM_RESPONSES)
    async def patch_message(
        self,
        *,
        conversation_id: ConversationId,
        message_id: MessageId,
        data: JSONBody[MessagePatch],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Message:
        """Replace a message's content and/or metadata, e.g. to finalise a streamed reply."""
        patched = await messages.update(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            message_id,
            patch=data,
            settings=state.settings,
        )
        state.page_cache.forget(patched.conversation_id)
        return patched

    @delete("/{message_id:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def delete_message(
        self,
        conversation_id: ConversationId,
        message_id: MessageId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> None:
        """Delete one message; the seqs of the others do not change."""
        ref = parse_conversation_ref(conversation_id)
        await messages.delete(conn, request.user, ref, message_id)
