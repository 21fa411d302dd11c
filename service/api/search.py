"""GET /v1/search: the messages a caller may see, matching a query."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import State
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import QueryParameter

from service.api.openapi import PROBLEM_RESPONSES
from service.api.params import (
    AuthenticatedRequest,
    ConnectionDependency,
    Cursor,
    Limit,
    TopicFilter,
    UserFilter,
)
from service.core.refs import CONVERSATION_REF_PATTERN
from service.core.schemas import ROLE_PATTERN, SearchPage
from service.core.search import MAX_QUERY_CHARS
from service.history import search

Query = Annotated[
    str,
    QueryParameter(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What to search for (at most 256 characters). Words match in any "
        'inflection ("invoices" finds "invoice"), with web-search syntax: "quotes" for a '
        "phrase, `or` between alternatives, `-word` to exclude. The text as it is also matches "
        "anywhere in a message, case-insensitively: Japanese or Chinese text, identifiers "
        "(`ORD-2024-00042`, `E1234`), parts of words.",
    ),
]
InConversation = Annotated[
    str | None,
    QueryParameter(
        pattern=CONVERSATION_REF_PATTERN,
        description="Only this conversation's messages: its id, or `ext:{external_id}`.",
    ),
]
RoleFilter = Annotated[
    str | None,
    QueryParameter(pattern=ROLE_PATTERN, description="Only messages with this role."),
]
Since = Annotated[
    str | None,
    QueryParameter(
        format=OpenAPIFormat.DATE_TIME,
        description="Only messages created at or after this time (RFC 3339, with its offset).",
    ),
]
Until = Annotated[
    str | None,
    QueryParameter(
        format=OpenAPIFormat.DATE_TIME,
        description="Only messages created before this time (RFC 3339, with its offset).",
    ),
]


class SearchController(Controller):
    path = "/search"
    tags = ("search",)

    @get("/", responses=PROBLEM_RESPONSES)
    async def search_messages(
        self,
        *,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        q: Query,
        user_id: UserFilter = None,
        conversation_id: InConversation = None,
        role: RoleFilter = None,
        topic: TopicFilter = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = None,
        cursor_: Cursor = None,
    ) -> SearchPage:
        """Messages matching `q`, best first: a user token or visitor searches its own
        conversations; an API key all of them, or one user's with `user_id`. Each hit names
        its conversation (id, title) and message (seq, id, role, topic, created_at) and carries
        a `snippet`: an excerpt, HTML-escaped, with each match between `<mark>` and `</mark>`.
        Keyset-paginated: pass `next_cursor` back as `cursor`; it is null on the last page."""
        return await search.find(
            conn,
            request.user,
            q=q,
            user_id=user_id,
            conversation=conversation_id,
            role=role,
            topic=topic,
            since=since,
            until=until,
            limit=limit,
            page_cursor=cursor_,
            settings=state.settings,
        )
