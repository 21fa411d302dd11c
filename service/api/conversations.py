"""Conversations: create, list, read, patch, delete."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Response

from service import cursor
from service.api.params import AuthenticatedRequest, ConversationId, Cursor, Limit, UserFilter
from service.api.problems import PROBLEM_RESPONSES
from service.auth.principal import Principal
from service.db import PooledConnection
from service.errors import Conflict, Forbidden, conversation_not_found
from service.models import (
    Conversation,
    ConversationCreate,
    ConversationPage,
    ConversationPatch,
    same_json,
)
from service.settings import Settings
from service.store import conversations
from service.validation import (
    check_conversation_create,
    check_conversation_patch,
    page_size,
    reject_nul,
)


def _listing(
    principal: Principal, user_id: str | None
) -> tuple[conversations.Listing, bool | str | bytes]:
    """Whose conversations a listing shows: a trusted caller chooses, others see their own."""
    if principal.trusted:
        return ("all", True) if user_id is None else ("user", user_id)
    if principal.user_id is not None and user_id in (None, principal.user_id):
        return "user", principal.user_id
    if principal.owner is not None and user_id is None:
        return "visitor", principal.owner
    raise Forbidden("only your own conversations can be listed", field="user_id")


class ConversationController(Controller):
    path = "/conversations"
    tags = ("conversations",)

    @post("/", status_code=201, responses=PROBLEM_RESPONSES)
    async def create_conversation(
        self,
        data: JSONBody[ConversationCreate],
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[Conversation]:
        """Create a conversation. Posting the same id and body again returns it (200); the same
        id with a different body, or an id someone else uses, is a 409."""
        settings: Settings = state.settings
        check_conversation_create(data, settings)
        user_id, owner = request.user.new_conversation_owner(data.user_id, field="user_id")
        conversation_id = data.id or uuid.uuid4()
        created = await conversations.insert(
            conn,
            conversation_id=conversation_id,
            title=data.title,
            user_id=user_id,
            owner=owner,
            metadata=data.metadata,
        )
        if created:
            return Response(created, status_code=201)
        existing = await conversations.get(
            conn, conversation_id=conversation_id, scope=request.user.scope()
        )
        if (
            existing is None
            or (existing.title, existing.user_id) != (data.title, user_id)
            or not same_json(existing.metadata, data.metadata)
        ):
            raise Conflict(f"conversation id {conversation_id} is already taken", field="id")
        return Response(existing, status_code=200)

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_conversations(
        self,
        *,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
        user_id: UserFilter = None,
        limit: Limit = None,
        cursor_: Cursor = None,
    ) -> ConversationPage:
        """Conversations, newest updated first, keyset-paginated: pass `next_cursor` back as
        `cursor` for the next page; it is null on the last page. A user token or visitor sees
        only its own; an API key sees all, or one user's with `user_id`."""
        settings: Settings = state.settings
        size = page_size(limit, settings)
        reject_nul(user_id, "user_id")
        listing, subject = _listing(request.user, user_id)
        after_updated_at, after_id = cursor.decode(cursor_)
        rows = await conversations.list_recent(
            conn,
            listing=listing,
            subject=subject,
            after_updated_at=after_updated_at,
            after_id=after_id,
            limit=size + 1,
        )
        items = rows[:size]
        next_cursor = (
            cursor.encode(items[-1].updated_at, items[-1].id) if len(rows) > size else None
        )
        return ConversationPage(items=items, next_cursor=next_cursor)

    @get("/{conversation_id:str}", responses=PROBLEM_RESPONSES)
    async def get_conversation(
        self,
        conversation_id: ConversationId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> Conversation:
        """One conversation."""
        found = await conversations.get(
            conn, conversation_id=conversation_id, scope=request.user.scope()
        )
        if found is None:
            raise conversation_not_found(conversation_id)
        return found

    @patch("/{conversation_id:str}", responses=PROBLEM_RESPONSES)
    async def patch_conversation(
        self,
        conversation_id: ConversationId,
        data: JSONBody[ConversationPatch],
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
        state: State,
    ) -> Conversation:
        """Change the title and/or replace the metadata; fields left out stay as they are."""
        check_conversation_patch(data, state.settings)
        updated = await conversations.update(
            conn,
            conversation_id=conversation_id,
            scope=request.user.scope(),
            set_title=isinstance(data.title, str) or data.title is None,
            title=data.title if isinstance(data.title, str) else None,
            metadata=data.metadata if isinstance(data.metadata, dict) else None,
        )
        if updated is None:
            raise conversation_not_found(conversation_id)
        return updated

    @delete("/{conversation_id:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def delete_conversation(
        self,
        conversation_id: ConversationId,
        conn: NamedDependency[PooledConnection],
        request: AuthenticatedRequest,
    ) -> None:
        """Delete a conversation with all its messages."""
        deleted = await conversations.delete(
            conn, conversation_id=conversation_id, scope=request.user.scope()
        )
        if not deleted:
            raise conversation_not_found(conversation_id)
