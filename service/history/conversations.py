"""Conversations: create (idempotent by id), list, read, patch, delete."""

from __future__ import annotations

import uuid
from uuid import UUID

from service.core import cursor
from service.core.errors import Conflict, Forbidden, QuotaExceeded, conversation_not_found
from service.core.principal import Principal, Scope
from service.core.schemas import (
    Conversation,
    ConversationCreate,
    ConversationPage,
    ConversationPatch,
    same_json,
)
from service.core.settings import Settings, env_name
from service.core.validation import (
    check_conversation_create,
    check_conversation_patch,
    page_size,
    reject_nul,
)
from service.db.pool import Connection
from service.store import conversations, usage
from service.store.usage import Usage


async def require(conn: Connection, conversation_id: UUID, scope: Scope) -> None:
    """Tell "no such conversation" (404) from "nothing matched" when a query came back empty,
    or refuse early what needs the conversation."""
    if not await conversations.exists(conn, conversation_id=conversation_id, scope=scope):
        raise conversation_not_found(conversation_id)


def check_quota(after: Usage, settings: Settings, *, new_conversation: bool, grew: bool) -> None:
    """QuotaExceeded when a write left the conversation's owner over a quota: it created a
    conversation past the count, or added bytes past the byte quota. A write that adds nothing
    passes, so an owner over quota (after a claim) can still delete and shrink."""
    if after.owner is None:
        return
    count_limit = f"{after.owner}_max_conversations"
    if new_conversation and after.conversations > getattr(settings, count_limit):
        raise QuotaExceeded(
            f"this {after.owner} already has {after.conversations - 1} conversations; "
            f"{env_name(count_limit)} is {getattr(settings, count_limit)}"
        )
    bytes_limit = f"{after.owner}_max_bytes"
    if grew and after.bytes > getattr(settings, bytes_limit):
        raise QuotaExceeded(
            f"this {after.owner} would store {after.bytes} bytes; {env_name(bytes_limit)} is "
            f"{getattr(settings, bytes_limit)}"
        )


async def usage_of(conn: Connection, conversation_id: UUID, scope: Scope) -> Usage:
    """The usage of the owner of a conversation the transaction has just written to."""
    found = await usage.of_conversation(conn, conversation_id=conversation_id, scope=scope)
    if found is None:
        raise conversation_not_found(conversation_id)
    return found


async def create(
    conn: Connection, principal: Principal, body: ConversationCreate, settings: Settings
) -> tuple[Conversation, bool]:
    """(the conversation, whether this call created it). The same id and body again returns
    the stored one; the same id with another body, or someone else's id, is a Conflict."""
    check_conversation_create(body, settings)
    user_id, visitor_hash = principal.new_conversation_owner(body.user_id, field="user_id")
    conversation_id = body.id or uuid.uuid4()
    async with conn.transaction():
        created = await conversations.insert(
            conn,
            conversation_id=conversation_id,
            title=body.title,
            user_id=user_id,
            visitor_hash=visitor_hash,
            metadata=body.metadata,
        )
        if created:
            if user_id is not None or visitor_hash is not None:
                after = await usage_of(conn, conversation_id, principal.scope())
                check_quota(after, settings, new_conversation=True, grew=False)
            return created, True
    # One statement wrote nothing: no transaction to hold. What is stored decides the answer.
    existing = await conversations.get(
        conn, conversation_id=conversation_id, scope=principal.scope()
    )
    if (
        existing is None
        or (existing.title, existing.user_id) != (body.title, user_id)
        or not same_json(existing.metadata, body.metadata)
    ):
        raise Conflict(f"conversation id {conversation_id} is already taken", field="id")
    return existing, False


def _listing(
    principal: Principal, user_id: str | None
) -> tuple[conversations.Listing, bool | str | bytes]:
    """Whose conversations a listing shows: a trusted caller chooses, others see their own."""
    if principal.trusted:
        return ("all", True) if user_id is None else ("user", user_id)
    if principal.user_id is not None and user_id in (None, principal.user_id):
        return "user", principal.user_id
    if principal.visitor_hash is not None and user_id is None:
        return "visitor", principal.visitor_hash
    raise Forbidden("only your own conversations can be listed", field="user_id")


async def list_page(
    conn: Connection,
    principal: Principal,
    *,
    user_id: str | None,
    limit: int | None,
    page_cursor: str | None,
    settings: Settings,
) -> ConversationPage:
    """Newest updated first, from ``page_cursor`` (a previous page's next_cursor) on."""
    size = page_size(limit, settings)
    reject_nul(user_id, "user_id")
    listing, subject = _listing(principal, user_id)
    after_updated_at, after_id = cursor.decode(page_cursor)
    rows = await conversations.list_recent(
        conn,
        listing=listing,
        subject=subject,
        after_updated_at=after_updated_at,
        after_id=after_id,
        limit=size + 1,
    )
    items = rows[:size]
    next_cursor = cursor.encode(items[-1].updated_at, items[-1].id) if len(rows) > size else None
    return ConversationPage(items=items, next_cursor=next_cursor)


async def get(conn: Connection, principal: Principal, conversation_id: UUID) -> Conversation:
    found = await conversations.get(conn, conversation_id=conversation_id, scope=principal.scope())
    if found is None:
        raise conversation_not_found(conversation_id)
    return found


async def update(
    conn: Connection,
    principal: Principal,
    conversation_id: UUID,
    patch: ConversationPatch,
    settings: Settings,
) -> Conversation:
    """Fields left out stay; ``title: null`` clears the title; metadata is replaced whole."""
    check_conversation_patch(patch, settings)
    updated = await conversations.update(
        conn,
        conversation_id=conversation_id,
        scope=principal.scope(),
        set_title=isinstance(patch.title, str) or patch.title is None,
        title=patch.title if isinstance(patch.title, str) else None,
        metadata=patch.metadata if isinstance(patch.metadata, dict) else None,
    )
    if updated is None:
        raise conversation_not_found(conversation_id)
    return updated


async def delete(conn: Connection, principal: Principal, conversation_id: UUID) -> None:
    """The conversation and everything in it (messages, files) go in one statement."""
    deleted = await conversations.delete(
        conn, conversation_id=conversation_id, scope=principal.scope()
    )
    if not deleted:
        raise conversation_not_found(conversation_id)
