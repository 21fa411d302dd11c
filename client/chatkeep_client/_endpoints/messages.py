"""Messages of a conversation: append, read history, get, replace, delete, clear."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from uuid import UUID

import httpx
import msgspec
from msgspec import UNSET, UnsetType

from chatkeep_client._call import (
    Call,
    ConversationRef,
    Pages,
    conversation_path,
    decoder,
    if_match_header,
    json_call,
    no_content,
    query,
    segment,
    version_of,
)
from chatkeep_client.models import Appended, Message, MessagePage, Metadata, NewMessage

Order = Literal["asc", "desc"]
OutgoingMessage = Mapping[str, Any] | NewMessage


class _StateChange(msgspec.Struct, kw_only=True, omit_defaults=True):
    metadata: Metadata | UnsetType = UNSET


class _Batch(msgspec.Struct, kw_only=True, omit_defaults=True):
    messages: list[Any]
    user_id: str | None = None
    conversation: _StateChange | UnsetType = UNSET


class _Items(msgspec.Struct):
    items: list[Message]


class _Cleared(msgspec.Struct):
    deleted: int


class _MessagePatch(msgspec.Struct, kw_only=True, omit_defaults=True):
    content: str | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET


def with_id(message: OutgoingMessage) -> OutgoingMessage:
    """The message with an id of its own, unless it has one or an external id already (either
    makes a retry find it stored instead of storing it twice)."""
    if isinstance(message, NewMessage):
        if message.id is None and message.external_id is None:
            return msgspec.structs.replace(message, id=uuid.uuid4())
        return message
    if message.get("id") is None and message.get("external_id") is None:
        return {**message, "id": str(uuid.uuid4())}
    return message


def _path(conversation_id: ConversationRef) -> str:
    return f"{conversation_path(conversation_id)}/messages"


def _message_path(conversation_id: ConversationRef, message_id: UUID | str) -> str:
    return f"{_path(conversation_id)}/{segment(message_id, 'message_id')}"


def append(
    conversation_id: ConversationRef,
    messages: Iterable[OutgoingMessage],
    *,
    user_id: str | None = None,
    conversation_metadata: Metadata | None = None,
    if_match: int | str | None = None,
) -> Call[Appended]:
    """Append messages (dicts or NewMessage) in one atomic batch, creating the conversation if
    needed (owned by ``user_id``). Each message without an id gets one here, so sending the
    batch again stores nothing twice. ``conversation_metadata`` is a merge patch of the
    conversation's metadata committed with the messages; ``if_match`` makes the append
    conditional on the conversation's version."""
    batch = _Batch(
        messages=[with_id(message) for message in messages],
        user_id=user_id,
        conversation=UNSET
        if conversation_metadata is None
        else _StateChange(metadata=conversation_metadata),
    )
    read = decoder(_Items)

    def decode(response: httpx.Response) -> Appended:
        return Appended(items=read(response).items, version=version_of(response))

    # With if_match a repeat would fail on the version its own first attempt moved.
    return json_call(
        "POST",
        _path(conversation_id),
        batch,
        decode,
        headers=if_match_header(if_match),
        idempotent=if_match is None,
    )


def page(
    conversation_id: ConversationRef,
    *,
    limit: int | None = None,
    before: int | None = None,
    after: int | None = None,
    order: Order = "asc",
    topic: str | None = None,
) -> Call[MessagePage]:
    """A page of history: by default the latest ``limit`` (50), oldest first. ``before=S`` pages
    backward, ``after=S`` forward; pass ``next_cursor`` on in the same direction."""
    params = query(limit=limit, before=before, after=after, order=order, topic=topic)
    return Call("GET", _path(conversation_id), decoder(MessagePage), params=params)


def iterate(
    conversation_id: ConversationRef,
    *,
    topic: str | None = None,
    page_size: int | None = None,
    newest_first: bool = False,
) -> Pages[MessagePage, Message]:
    """Every message, oldest first (newest first with ``newest_first``), page after page."""

    def at(cursor: int | None) -> Call[MessagePage]:
        if newest_first:
            return page(conversation_id, limit=page_size, before=cursor, order="desc", topic=topic)
        return page(conversation_id, limit=page_size, after=cursor or 0, topic=topic)

    def following(previous: MessagePage) -> Call[MessagePage] | None:
        return None if previous.next_cursor is None else at(previous.next_cursor)

    return Pages(at(None), following, lambda listed: listed.items)


def get(conversation_id: ConversationRef, message_id: UUID | str) -> Call[Message]:
    return Call("GET", _message_path(conversation_id, message_id), decoder(Message))


def update(
    conversation_id: ConversationRef,
    message_id: UUID | str,
    *,
    content: str | UnsetType = UNSET,
    metadata: Metadata | UnsetType = UNSET,
) -> Call[Message]:
    """Replace the content and/or the metadata (finalising a streamed reply, say)."""
    return json_call(
        "PATCH",
        _message_path(conversation_id, message_id),
        _MessagePatch(content=content, metadata=metadata),
        decoder(Message),
    )


def delete(conversation_id: ConversationRef, message_id: UUID | str) -> Call[None]:
    """Delete one message; the others keep their seqs."""
    return Call("DELETE", _message_path(conversation_id, message_id), no_content, gone_is_done=True)


def clear(conversation_id: ConversationRef, *, topic: str | None = None) -> Call[int]:
    """Delete the history (one topic's only, with ``topic``); how many messages went."""
    read = decoder(_Cleared)
    return Call(
        "DELETE",
        _path(conversation_id),
        lambda response: read(response).deleted,
        params=query(topic=topic),
    )
