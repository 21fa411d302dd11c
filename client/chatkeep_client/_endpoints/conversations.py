"""Conversations: create, read, list, count, replace, merge-patch, delete, delete in bulk."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType

from chatkeep_client._call import (
    MERGE_PATCH,
    Call,
    ConversationRef,
    Pages,
    conversation_path,
    decoder,
    if_match_header,
    json_call,
    no_content,
    query,
)
from chatkeep_client.models import (
    Conversation,
    ConversationPage,
    ConversationsErased,
    Metadata,
)

Sort = Literal["updated_at", "created_at"]
CONFIRM_ALL = "all"


class _Create(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: UUID | None = None
    external_id: str | None = None
    title: str | None = None
    user_id: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class _Patch(msgspec.Struct, kw_only=True, omit_defaults=True):
    title: str | UnsetType | None = UNSET
    metadata: Metadata | UnsetType = UNSET


class _Count(msgspec.Struct):
    count: int


def _filter(metadata: Metadata | None) -> str | None:
    return None if metadata is None else msgspec.json.encode(metadata).decode()


def create(
    *,
    id: UUID | str | None = None,
    external_id: str | None = None,
    title: str | None = None,
    user_id: str | None = None,
    metadata: Metadata | None = None,
) -> Call[Conversation]:
    """Create a conversation. Without ``id`` nor ``external_id`` the client picks the id, so a
    retried create stores one conversation; the same id (or external id) and body again
    returns the stored one."""
    if id is None and external_id is None:
        id = uuid.uuid4()
    body = _Create(
        id=None if id is None else UUID(str(id)),
        external_id=external_id,
        title=title,
        user_id=user_id,
        metadata=metadata or {},
    )
    return json_call("POST", "/v1/conversations", body, decoder(Conversation))


def get(conversation_id: ConversationRef) -> Call[Conversation]:
    """A conversation (its ``version`` is what ``if_match=`` takes)."""
    return Call("GET", conversation_path(conversation_id), decoder(Conversation))


def page(
    *,
    user_id: str | None = None,
    metadata: Metadata | None = None,
    sort: Sort = "updated_at",
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[ConversationPage]:
    """A page of conversations, newest first by ``sort``; ``metadata`` keeps those whose
    metadata contains it. Pass the page's ``next_cursor`` as ``cursor`` for the next."""
    params = query(
        user_id=user_id, metadata=_filter(metadata), sort=sort, limit=limit, cursor=cursor
    )
    return Call("GET", "/v1/conversations", decoder(ConversationPage), params=params)


def iterate(
    *,
    user_id: str | None = None,
    metadata: Metadata | None = None,
    sort: Sort = "updated_at",
    page_size: int | None = None,
) -> Pages[ConversationPage, Conversation]:
    """Every conversation of the listing, page after page."""

    def after(previous: ConversationPage) -> Call[ConversationPage] | None:
        if previous.next_cursor is None:
            return None
        return page(
            user_id=user_id,
            metadata=metadata,
            sort=sort,
            limit=page_size,
            cursor=previous.next_cursor,
        )

    first = page(user_id=user_id, metadata=metadata, sort=sort, limit=page_size)
    return Pages(first, after, lambda listed: listed.items)


def count(*, user_id: str | None = None, metadata: Metadata | None = None) -> Call[int]:
    """How many conversations the listing with these filters holds."""
    read = decoder(_Count)
    params = query(user_id=user_id, metadata=_filter(metadata))
    return Call(
        "GET", "/v1/conversations/count", lambda response: read(response).count, params=params
    )


def update(
    conversation_id: ConversationRef,
    *,
    title: str | UnsetType | None = UNSET,
    metadata: Metadata | UnsetType = UNSET,
    if_match: int | str | None = None,
) -> Call[Conversation]:
    """Replace the title and/or the metadata (as a whole); what is left out stays. ``title=None``
    clears the title."""
    return json_call(
        "PATCH",
        conversation_path(conversation_id),
        _Patch(title=title, metadata=metadata),
        decoder(Conversation),
        headers=if_match_header(if_match),
        # Sent again after a lost answer, a conditional write would fail on its own success.
        idempotent=if_match is None,
    )


def patch_metadata(
    conversation_id: ConversationRef,
    patch: Metadata,
    *,
    title: str | UnsetType | None = UNSET,
    if_match: int | str | None = None,
) -> Call[Conversation]:
    """Merge ``patch`` into the metadata (RFC 7396: the keys it names are set, nested objects
    merged, ``None`` removes a key, the rest stays)."""
    return json_call(
        "PATCH",
        conversation_path(conversation_id),
        _Patch(title=title, metadata=patch),
        decoder(Conversation),
        content_type=MERGE_PATCH,
        headers=if_match_header(if_match),
        idempotent=if_match is None,
    )


def delete(conversation_id: ConversationRef, *, if_match: int | str | None = None) -> Call[None]:
    """Delete the conversation with its messages and files."""
    return Call(
        "DELETE",
        conversation_path(conversation_id),
        no_content,
        headers=if_match_header(if_match),
        idempotent=if_match is None,
        gone_is_done=True,
    )


def delete_many(
    *,
    user_id: str | None = None,
    metadata: Metadata | None = None,
    updated_before: datetime | None = None,
    confirm_all: bool = False,
) -> Call[ConversationsErased]:
    """Delete every conversation matching all the filters given (an API key with ``erase``).
    Without a filter it would delete everything, so it then needs ``confirm_all=True``."""
    params: dict[str, Any] = query(
        user_id=user_id,
        metadata=_filter(metadata),
        updated_before=None if updated_before is None else updated_before.isoformat(),
        confirm=CONFIRM_ALL if confirm_all else None,
    )
    return Call("DELETE", "/v1/conversations", decoder(ConversationsErased), params=params)
