"""Finding conversations: list (filtered, in either order), count, delete in bulk."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, delete, get
from litestar.datastructures import State
from litestar.openapi.spec.enums import OpenAPIFormat
from litestar.params import QueryParameter

from service.api.openapi import PROBLEM_RESPONSES
from service.api.params import AuthenticatedRequest, ConnectionDependency, Cursor, Limit, UserFilter
from service.core.filters import Sort
from service.core.principal import Permission
from service.core.schemas import ConversationCount, ConversationPage, ConversationsErased
from service.history import conversation_lists

# service.api.openapi.complete documents it as the JSON object it is.
MetadataFilter = Annotated[
    str | None,
    QueryParameter(
        description="Only conversations whose metadata contains this JSON object (e.g. "
        '{"form_id": "f1"}, URL-encoded): its keys with equal values, nested objects likewise, '
        "arrays holding at least the elements given."
    ),
]
SortParameter = Annotated[
    Sort,
    QueryParameter(
        description="The order, newest first: by last update (`updated_at`) or by creation "
        "(`created_at`). A cursor belongs to the order that issued it."
    ),
]
UpdatedBefore = Annotated[
    str | None,
    QueryParameter(
        format=OpenAPIFormat.DATE_TIME,
        description="Only conversations last updated before this time (RFC 3339, with its "
        "offset), e.g. a retention cut-off.",
    ),
]
Confirm = Annotated[
    Literal["all"] | None,
    QueryParameter(
        description="`all`: delete every conversation. Required when no filter is given, "
        "refused (422) otherwise."
    ),
]


class ConversationListController(Controller):
    # The same path as ConversationController, which holds the other methods of /conversations.
    path = "/conversations"
    tags = ("conversations",)

    @get("/", responses=PROBLEM_RESPONSES)
    async def list_conversations(
        self,
        *,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        user_id: UserFilter = None,
        metadata: MetadataFilter = None,
        sort: SortParameter = "updated_at",
        limit: Limit = None,
        cursor_: Cursor = None,
    ) -> ConversationPage:
        """Conversations, newest first (by `sort`), keyset-paginated: pass `next_cursor` back
        as `cursor` for the next page; it is null on the last page. A user token or visitor
        sees only its own; an API key sees all, or one user's with `user_id`."""
        return await conversation_lists.list_page(
            conn,
            request.user,
            user_id=user_id,
            metadata=metadata,
            sort=sort,
            limit=limit,
            page_cursor=cursor_,
            settings=state.settings,
        )

    @get("/count", responses=PROBLEM_RESPONSES)
    async def count_conversations(
        self,
        *,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        user_id: UserFilter = None,
        metadata: MetadataFilter = None,
    ) -> ConversationCount:
        """How many conversations the listing with the same filters holds."""
        return await conversation_lists.count(
            conn, request.user, user_id=user_id, metadata=metadata, settings=state.settings
        )

    @delete("/", status_code=200, opt={"permission": Permission.ERASE}, responses=PROBLEM_RESPONSES)
    async def delete_conversations(
        self,
        *,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        user_id: UserFilter = None,
        metadata: MetadataFilter = None,
        updated_before: UpdatedBefore = None,
        confirm: Confirm = None,
    ) -> ConversationsErased:
        """Delete every conversation matching all the filters given, with its messages and
        files; reports how many went. Runs in batches (CHATKEEP_BULK_DELETE_BATCH
        conversations each, each committed on its own): after a failure, the batches before
        it stay deleted and calling again finishes the job. Without any filter, `confirm=all`
        is required. Only for an API key with the `erase` permission."""
        return await conversation_lists.erase(
            conn,
            request.user,
            user_id=user_id,
            metadata=metadata,
            updated_before=updated_before,
            confirm=confirm,
            settings=state.settings,
        )
