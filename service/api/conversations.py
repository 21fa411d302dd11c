"""Conversations: create, read, patch, delete. (Listing, counting and deleting in bulk:
service/api/conversation_lists.py, on the same path.)"""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import Response

from service.api.openapi import PAGE_RESPONSES, PROBLEM_RESPONSES, stored_again
from service.api.params import (
    AuthenticatedRequest,
    ConnectionDependency,
    ConversationId,
)
from service.api.preconditions import etag, if_match, if_none_match, not_modified
from service.core.refs import parse_conversation_ref
from service.core.revisions import matches_any
from service.core.schemas import (
    Conversation,
    ConversationCreate,
    ConversationPatch,
)
from service.history import conversations

MERGE_PATCH = "application/merge-patch+json"


def _with_etag(conversation: Conversation, status_code: int = 200) -> Response[Conversation]:
    return Response(
        conversation, status_code=status_code, headers={"ETag": etag(conversation.version)}
    )


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
        return _with_etag(conversation, 201 if created else 200)

    @get("/{conversation_id:str}", responses=PAGE_RESPONSES)
    async def get_conversation(
        self,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> Response[Conversation]:
        """One conversation; its `ETag` is its version, for `If-Match` on later writes. With
        `If-None-Match` naming it, a 304 without the body."""
        ref = parse_conversation_ref(conversation_id)
        found = _with_etag(await conversations.get(conn, request.user, ref))
        tags = if_none_match(request)
        if tags is not None and matches_any(tags, etag(found.content.version)):
            return not_modified(found.headers["ETag"])
        return found

    @patch("/{conversation_id:str}", responses=PROBLEM_RESPONSES)
    async def patch_conversation(
        self,
        conversation_id: ConversationId,
        data: JSONBody[ConversationPatch],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Response[Conversation]:
        """Change the title and/or the metadata; fields left out stay as they are. With
        `Content-Type: application/merge-patch+json` the metadata is merged (RFC 7396: nested
        keys set, `null` removes a key, the rest kept); with `application/json` it is replaced
        whole. `If-Match: "<version>"` makes the write conditional: 412 when the conversation
        has changed since."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        updated = await conversations.update(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            data,
            state.settings,
            merge=media_type == MERGE_PATCH,
            precondition=if_match(request),
        )
        return _with_etag(updated)

    @delete("/{conversation_id:str}", status_code=204, responses=PROBLEM_RESPONSES)
    async def delete_conversation(
        self,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
    ) -> None:
        """Delete a conversation with all its messages; `If-Match` makes it conditional."""
        await conversations.delete(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            precondition=if_match(request),
        )
