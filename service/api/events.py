"""Live updates over Server-Sent Events (README "Live updates"), and appending to a streamed
reply.

The streams go out through Litestar's Stream rather than its ServerSentEvent: the hub encodes
each event once per worker (service/history/live.py) and a thousand subscribers share those
bytes, where ServerSentEvent would encode every event again for each of them. A stream holds
no pooled connection: it takes one only to check access (here, before the response starts)
and to read the log (the hub).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream
from msgspec import UNSET, Meta, Struct, UnsetType

from service.api.admission import UNGATED
from service.api.consistency import PRIMARY
from service.api.openapi import PROBLEM_RESPONSES
from service.api.params import (
    AuthenticatedRequest,
    ConnectionDependency,
    ConversationId,
    MessageId,
)
from service.core.errors import InvalidInput
from service.core.refs import parse_conversation_ref
from service.core.schemas import Message, MessageAppend
from service.core.validation import reject_nul
from service.history import live, replies

MEDIA_TYPE = "text/event-stream"
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    # Proxies (nginx) must pass each event on at once rather than buffer the response.
    "X-Accel-Buffering": "no",
}


class ConversationEvent(Struct, kw_only=True):
    """One event of a conversation's stream, as a Server-Sent Events parser reads it."""

    event: Literal[
        "message.created",
        "message.updated",
        "message.deleted",
        "conversation.updated",
        "conversation.deleted",
        "reset",
    ]
    # JSON: a Message, a Conversation, {id, conversation_id, seq}, {id} or {reason}.
    data: str
    # The event's seq in the conversation's log: send it back as Last-Event-ID.
    id: Annotated[str, Meta(pattern="^[0-9]+$")] | UnsetType = UNSET
    retry: int | UnsetType = UNSET


class OwnerEvent(Struct, kw_only=True):
    """One event of an owner's stream, as a Server-Sent Events parser reads it."""

    event: Literal[
        "ready", "conversation.created", "conversation.updated", "conversation.deleted", "reset"
    ]
    # JSON: a Conversation, {id}, {reason} or {}.
    data: str
    retry: int | UnsetType = UNSET


def stream_responses(event: type[Struct]) -> dict[int, ResponseSpec]:
    """The stream's 200: each event described as OpenAPI (before 3.2) describes a stream's."""
    return {
        **PROBLEM_RESPONSES,
        200: ResponseSpec(
            data_container=event,
            media_type=MEDIA_TYPE,
            description='Server-Sent Events, until the client leaves (README "Live updates")',
            generate_examples=False,
        ),
    }


LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        pattern="^[0-9]{1,18}$",
        description="The id of the last event the client received: the stream continues "
        "after it (a browser's EventSource sends it when it reconnects). Wins over `after`.",
    ),
]
AfterEvent = Annotated[
    str | None,
    QueryParameter(
        pattern="^[0-9]{1,18}$",
        description="Continue after this event id (0: from the oldest event kept).",
    ),
]
OwnerUserId = Annotated[
    str | None,
    QueryParameter(
        min_length=1,
        max_length=255,
        description="Whose conversations: required with an API key; a user token or visitor "
        "follows its own.",
    ),
]


def stream(frames: AsyncIterator[bytes]) -> Stream:
    return Stream(frames, media_type=MEDIA_TYPE, headers=STREAM_HEADERS)


class EventController(Controller):
    tags = ("events",)

    @get(
        "/conversations/{conversation_id:str}/events",
        responses=stream_responses(ConversationEvent),
        # Its start must agree with the primary's event log, which the hub follows.
        # A stream holds no admission slot for its life (its opening query is short).
        opt={PRIMARY: True, UNGATED: True},
    )
    async def conversation_events(
        self,
        *,
        conversation_id: ConversationId,
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
        last_event_id: LastEventId = None,
        after: AfterEvent = None,
    ) -> Stream:
        """The conversation's changes as they happen: `message.created`, `message.updated`,
        `message.deleted`, `conversation.updated`, `conversation.deleted`. Each event's id is
        its seq in the conversation's event log; reconnecting with `Last-Event-ID` (or `after`)
        first sends what was missed, then live events. A `reset` event asks the client to load
        the history again (it was further behind than the log keeps)."""
        position = live.parse_position(last_event_id, "Last-Event-ID")
        if position is None:
            position = live.parse_position(after, "after")
        ref = parse_conversation_ref(conversation_id)
        found, start, reset = await live.open_conversation(conn, request.user, ref, position)
        hub: live.Hub = state.hub
        return stream(hub.conversation_frames(found, start, reset=reset))

    @get("/events", responses=stream_responses(OwnerEvent))
    async def owner_events(
        self,
        *,
        request: AuthenticatedRequest,
        state: State,
        user_id: OwnerUserId = None,
    ) -> Stream:
        """Changes to the list of one user's (or the visitor's own) conversations, as they
        happen: `conversation.created`, `conversation.updated` (its title, metadata, or a new
        message), `conversation.deleted`. Starts with `ready`: load the list then. Events have
        no ids; after reconnecting (or a `reset` event), load the list again."""
        reject_nul(user_id, "user_id")
        owner_user_id, visitor_hash = request.user.new_conversation_owner(user_id, field="user_id")
        key = live.owner_key(owner_user_id, visitor_hash)
        if key is None:
            raise InvalidInput("an API key names whose conversations to follow", field="user_id")
        hub: live.Hub = state.hub
        return stream(hub.owner_frames(key))

    @post(
        "/conversations/{conversation_id:str}/messages/{message_id:str}/append",
        status_code=200,
        responses=PROBLEM_RESPONSES,
    )
    async def append_to_message(
        self,
        *,
        conversation_id: ConversationId,
        message_id: MessageId,
        data: JSONBody[MessageAppend],
        conn: ConnectionDependency,
        request: AuthenticatedRequest,
        state: State,
    ) -> Message:
        """Add text to the end of a message created with `status: in_progress` (a reply being
        streamed); `status: complete` finishes it (a complete message takes no more: 409).
        Subscribers get a `message.updated` event with the message as it now is."""
        extended = await replies.append(
            conn,
            request.user,
            parse_conversation_ref(conversation_id),
            message_id,
            addition=data,
            settings=state.settings,
        )
        # As for an append: this worker's pages of the conversation are stale now.
        state.page_cache.forget(extended.conversation_id)
        return extended
