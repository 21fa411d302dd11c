"""Path and query parameters shared by the controllers, with their OpenAPI descriptions."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter, SkipValidation

from service.core.principal import Principal
from service.core.refs import CONVERSATION_REF_PATTERN
from service.db.pool import Connection
from service.history.messages import NO_LOWER_BOUND, NO_UPPER_BOUND

# Handlers read the caller from the request (set by service.api.authentication.Authenticate) rather
# than from a second dependency: Litestar resolves two dependencies in an anyio task group, which
# cost a tenth of a history read's throughput (bench/NOTES.md).
AuthenticatedRequest = Request[Principal, None, State]
# The request's pooled connection (service/api/lifespan.py). Not validated: Litestar's signature
# model cannot check a union of two classes, and the value is ours, not the client's.
ConnectionDependency = NamedDependency[SkipValidation[Connection]]

# Parsed by service.core.refs.parse_conversation_ref in the handler: a UUID, or ext:{external_id}.
ConversationId = Annotated[
    str,
    PathParameter(
        pattern=CONVERSATION_REF_PATTERN,
        description="The conversation's id (a UUID), or `ext:` followed by the external id the "
        "application gave it (e.g. `ext:session-42`).",
    ),
]
MessageId = Annotated[UUID, PathParameter(description="The message's id (a UUID).")]
# Its bounds are settings: service.api.openapi.complete documents them.
Limit = Annotated[int | None, QueryParameter(description="Page size.")]
UserFilter = Annotated[str | None, QueryParameter(description="Only this user's conversations.")]
Cursor = Annotated[
    str | None,
    QueryParameter(
        name="cursor",
        description="Opaque: the `next_cursor` of the previous page; anything else is a 422.",
    ),
]
# The seq bounds service.history.messages checks, for the document only (as ge=0, Litestar would
# leave the 0 out: it tests bounds for truth).
SEQ_BOUNDS = {"minimum": NO_LOWER_BOUND, "maximum": NO_UPPER_BOUND}
Before = Annotated[
    int | None,
    QueryParameter(
        schema_extra=SEQ_BOUNDS,
        description="Only messages with a lower seq; pages backward from here.",
    ),
]
After = Annotated[
    int | None,
    QueryParameter(
        schema_extra=SEQ_BOUNDS,
        description="Only messages with a higher seq; pages forward from here.",
    ),
]
Order = Annotated[
    Literal["asc", "desc"],
    QueryParameter(description="Order of the items within the page: by seq, asc or desc."),
]
TopicFilter = Annotated[
    str | None, QueryParameter(description="Only messages labelled with this topic.")
]
# The context window (README "The context window"); service.history.context checks them.
MaxTokens = Annotated[
    int | None,
    QueryParameter(
        schema_extra={"minimum": 1, "maximum": 2**31 - 1},
        description="A context window instead of a page: the newest messages whose tokens sum "
        "to at most this, oldest first (with the prompt and system messages asked for).",
    ),
]
IncludeSystem = Annotated[
    bool,
    QueryParameter(
        description="With max_tokens: the conversation's system messages first, counted in "
        "the budget."
    ),
]
PromptName = Annotated[
    str | None,
    QueryParameter(
        description="With max_tokens: the latest version of this prompt heads the window (in "
        "`prompt`, counted in the budget). API keys only.",
    ),
]
