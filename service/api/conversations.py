"""Conversations: create, list, read, patch, delete."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import Response

from service.api.openapi import PROBLEM_RESPONSES, stored_again
from service.api.params import (
    AuthenticatedRequest,
    ConnectionDependency,
    ConversationId,
    Cursor,
    Limit,
    UserFilter,
)
from service.core.schemas import (
    Conversation,
    ConversationCreate,
    ConversationPage,
    ConversationPatch,
)
from service.history import conversations


class ConversationController(Controller):
    path = "/conversations"
    tags = ("conversations",)

    @post(
        "/",
        status_code=201,
        responses={
            **PROBLEM_RESPONSES,
            **stored_again(Conversation, "The same conversation was posted again: the stored one"),
        },
    )
    async def create_conversation(
        self,
        data: JSONBody[ConversationCreate],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[Conversation]:
        """Create a conversation. Posting the same id and body again returns it (200); the same
        id with a different body, or an id someone else uses, is a 409."""
        conversation, created = await conversations.create(conn, request.user, data, state.settings)
        return Response(conversation, status_code=201 if created else 200)

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_conversations(
        self,
        *,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        user_id: UserFilter = None,
        limit: Limit = None,
        cursor_: Cursor = None,
    ) -> ConversationPage:
        """Conversations, newest updated first, keyset-paginated: pass `next_cursor` back as
        `cursor` for the next page; it is null on the last page. A user token or visitor sees
        only its own; an API key sees all, or one user's with `user_id`."""
        return await conversations.list_page(
            conn,
            request.user,
            user_id=user_id,
            limit=limit,
            page_cursor=cursor_,
            settings=state.settings,
        )

    @get("/{conversation_id:str}", responses=PROBLEM_RESPONSES)
    async def get_conversation(
        self,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> Conversation:
        """One conversation."""
        return await conversations.get(conn, request.user, conversation_id)

    @patch("/{conversation_id:str}", responses=PROBLEM_RESPONSES)
    async def patch_conversation(
        self,
        conversation_id: ConversationId,
        data: JSONBody[ConversationPatch],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Conversation:
        """Change the title and/or replace the metadata; fields left out stay as they are."""
        return await conversations.update(conn, request.user, conversation_id, data, state.settings)

    @delete("/{conversation_id:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def delete_conversation(
        self,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> None:
        """Delete a conversation with all its messages."""
        await conversations.delete(conn, request.user, conversation_id)
