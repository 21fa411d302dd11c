"""Conversations: create (idempotent by id), read, patch, delete. (Listings, counts and bulk
deletes: service/history/conversation_lists.py.)"""

from __future__ import annotations

import uuid
from uuid import UUID

from msgspec import UnsetType

from service.core.errors import (
    Conflict,
    PreconditionFailed,
    QuotaExceeded,
    TooLarge,
    conversation_not_found,
)
from service.core.filters import instant
from service.core.preconditions import Precondition
from service.core.principal import Principal, Scope
from service.core.refs import ConversationRef, ExternalRef
from service.core.schemas import (
    Conversation,
    ConversationCreate,
    ConversationPatch,
    same_json,
)
from service.core.settings import Settings, env_name
from service.core.validation import (
    check_conversation_create,
    check_conversation_patch,
)
from service.db.pool import Connection
from service.store import conversations, usage
from service.store.usage import Usage


async def find(
    conn: Connection, ref: ConversationRef, scope: Scope, *, user_id: str | None = None
) -> UUID | None:
    """The id of the conversation a request names, None when the caller has none by that name.
    A UUID is taken as it is (the query that uses it checks the scope); an external id is looked
    up among the caller's conversations (only user ``user_id``'s, when given). An API key sees
    every owner's, so two owners' equal external ids are a Conflict for it."""
    if not isinstance(ref, ExternalRef):
        return ref
    found = await conversations.find_by_external_id(
        conn, external_id=ref.external_id, user_id=user_id, scope=scope
    )
    if len(found) > 1:
        raise Conflict(
            f"several conversations have the external id {ref.external_id!r}; name it by its id"
            + (" or pass user_id" if user_id is None else ""),
            field="conversation_id",
        )
    return found[0] if found else None


async def resolve(conn: Connection, ref: ConversationRef, scope: Scope) -> UUID:
    """The id of the conversation a request names; NotFound when the caller has none."""
    found = await find(conn, ref, scope)
    if found is None:
        raise conversation_not_found(ref)
    return found


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
    """(the conversation, whether this call created it). The same id (or, without one, the same
    external id) and body again returns the stored one; the same id with another body, someone
    else's id, or an external id the owner uses already, is a Conflict."""
    check_conversation_create(body, settings)
    expires_at = instant(body.expires_at, "expires_at")
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
            external_id=body.external_id,
            expires_at=expires_at,
        )
        if created:
            if user_id is not None or visitor_hash is not None:
                after = await usage_of(conn, conversation_id, principal.scope())
                check_quota(after, settings, new_conversation=True, grew=False)
            return created, True
    # One statement wrote nothing: no transaction to hold. What is stored decides the answer.
    if body.id is not None:
        existing = await conversations.get(
            conn, conversation_id=conversation_id, scope=principal.scope()
        )
    else:
        assert body.external_id is not None  # a fresh random id cannot be taken
        existing = await conversations.get_by_external_id_of_owner(
            conn, external_id=body.external_id, user_id=user_id, visitor_hash=visitor_hash
        )
    if existing is None and body.id is not None and body.external_id is not None:
        # The id is free, so the owner's external id is what is taken.
        raise Conflict(f"external id {body.external_id!r} is already used", field="external_id")
    if (
        existing is None
        or (existing.title, existing.user_id, existing.external_id, existing.expires_at)
        != (body.title, user_id, body.external_id, expires_at)
        or not same_json(existing.metadata, body.metadata)
    ):
        field = "id" if body.id is not None else "external_id"
        raise Conflict(
            f"conversation {field} is already taken by another conversation", field=field
        )
    return existing, False


async def get(conn: Connection, principal: Principal, ref: ConversationRef) -> Conversation:
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    found = await conversations.get(conn, conversation_id=conversation_id, scope=scope)
    if found is None:
        raise conversation_not_found(ref)
    return found


async def _why_unmatched(
    conn: Connection, conversation_id: UUID, scope: Scope, ref: ConversationRef
) -> Exception:
    """Why a conditional write matched nothing: the conversation is missing (or not the
    caller's), or at another version than the If-Match accepts."""
    current = await conversations.version(conn, conversation_id=conversation_id, scope=scope)
    if current is None:
        return conversation_not_found(ref)
    return PreconditionFailed(f"conversation {ref} has changed: it is at version {current}")


async def update(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    patch: ConversationPatch,
    settings: Settings,
    *,
    merge: bool = False,
    precondition: Precondition | None = None,
) -> Conversation:
    """Fields left out stay; ``title: null`` clears the title; metadata is replaced whole, or
    with ``merge`` has the patch's metadata applied as an RFC 7396 merge patch."""
    check_conversation_patch(patch, settings)
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    async with conn.transaction():
        found = await apply_patch(
            conn, conversation_id, scope, patch, settings, merge=merge, precondition=precondition
        )
        if found is None:
            raise await _why_unmatched(conn, conversation_id, scope, ref)
    return found


async def apply_patch(
    conn: Connection,
    conversation_id: UUID,
    scope: Scope,
    patch: ConversationPatch,
    settings: Settings,
    *,
    merge: bool,
    precondition: Precondition | None = None,
    field_prefix: str = "",
) -> Conversation | None:
    """Patch the conversation inside the caller's transaction; None when nothing matched. A merge
    whose result outgrows the metadata limit is TooLarge (the transaction then rolls it back)."""
    expires_at = (
        instant(patch.expires_at, f"{field_prefix}expires_at")
        if isinstance(patch.expires_at, str)
        else None
    )
    found = await conversations.update(
        conn,
        conversation_id=conversation_id,
        scope=scope,
        set_title=isinstance(patch.title, str) or patch.title is None,
        title=patch.title if isinstance(patch.title, str) else None,
        metadata=patch.metadata if isinstance(patch.metadata, dict) else None,
        merge=merge,
        if_versions=None if precondition is None else precondition.sql_versions(),
        set_expires_at=not isinstance(patch.expires_at, UnsetType),
        expires_at=expires_at,
    )
    if found is None:
        return None
    updated, metadata_bytes = found
    if merge and metadata_bytes > settings.max_metadata_bytes:
        raise TooLarge(
            f"the merged metadata would be {metadata_bytes} bytes; the limit is "
            f"{settings.max_metadata_bytes}",
            field=f"{field_prefix}metadata",
        )
    return updated


async def delete(
    conn: Connection,
    principal: Principal,
    ref: ConversationRef,
    *,
    precondition: Precondition | None = None,
) -> None:
    """The conversation and everything in it (messages, files) go in one statement."""
    scope = principal.scope()
    conversation_id = await resolve(conn, ref, scope)
    deleted = await conversations.delete(
        conn,
        conversation_id=conversation_id,
        scope=scope,
        if_versions=None if precondition is None else precondition.sql_versions(),
    )
    if not deleted:
        raise await _why_unmatched(conn, conversation_id, scope, ref)
