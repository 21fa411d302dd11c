"""One conversation from a source's loose fields: ids kept or derived (the source's own kept as
external ids), roles mapped, seq assigned in source order, missing times filled in (rules in
service/transfer/cleaning.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from service.store.transfer import ConversationRow, MessageRow
from service.transfer.cleaning import SOURCE_ROLE_KEY, Cleaner, json_raw, stable_id
from service.transfer.records import Conversation


@dataclass
class SourceMessage:
    location: str
    role: object
    content: object
    id: object = None
    topic: object = None
    metadata: object = None
    created_at: object = None


@dataclass
class SourceConversation:
    location: str
    # The source's own id, or None: then the conversation's id derives from its location.
    id: object
    # What the source calls the conversation when it has no id (a JSON file's name): its
    # external id then.
    name: object = None
    title: object = None
    user_id: object = None
    metadata: object = None
    created_at: object = None
    updated_at: object = None
    messages: list[SourceMessage] = field(default_factory=list)


def ascii_tokens(content: str) -> int | None:
    """The token estimate of estimate_tokens (migration 0011) for ASCII text, one token per
    four bytes rounded up; None for other text, left to the insert trigger. Counting here costs
    the import next to nothing (it runs while the previous batch is written) and the COPY a
    function call per row."""
    return (len(content) + 3) // 4 if content.isascii() else None


def _missing(value: object) -> bool:
    return value is None or value in ("", b"")


def conversation_id(source: SourceConversation, namespace: str) -> UUID:
    if _missing(source.id):
        return stable_id(source.location, f"{namespace}:location")
    return stable_id(source.id, namespace)


def assemble(
    cleaner: Cleaner, source: SourceConversation, namespace: str, conversation_uuid: UUID
) -> Conversation:
    loc = source.location
    created = cleaner.timestamp(source.created_at, loc, "created_at")
    updated = cleaner.timestamp(source.updated_at, loc, "updated_at")
    messages: list[MessageRow] = []
    seen_ids: set[UUID] = set()
    # A message without a time gets the one before it (or the conversation's).
    previous_time = created or datetime.now(UTC)
    for message in source.messages:
        kept = _message(cleaner, message, conversation_uuid, len(messages) + 1, seen_ids)
        if kept is None:
            continue
        kept.created_at = kept.created_at or previous_time
        previous_time = kept.created_at
        seen_ids.add(kept.id)
        messages.append(kept)
    drop_repeated_external_ids(cleaner, messages, loc)
    created = created or (messages[0].created_at if messages else updated) or datetime.now(UTC)
    updated = updated or (messages[-1].created_at if messages else created)
    title = cleaner.text(source.title, loc, "title")
    user_id = cleaner.text(source.user_id, loc, "user_id")
    external_id = (
        cleaner.external_id(source.name, loc, "name")
        if _missing(source.id)
        else cleaner.external_id(source.id, loc, "id")
    )
    conversation = ConversationRow(
        id=conversation_uuid,
        user_id=user_id or None,
        visitor_hash=None,
        title=title,
        metadata=json_raw(cleaner.metadata(source.metadata, loc)),
        message_count=len(messages),
        last_seq=len(messages),
        created_at=created,
        updated_at=max(updated, created),
        external_id=external_id,
    )
    return Conversation(conversation, messages, loc)


def drop_repeated_external_ids(cleaner: Cleaner, messages: list[MessageRow], location: str) -> None:
    """Keep each external id on the first message that has it (they are unique within a
    conversation); the others lose it (reported)."""
    seen: set[str] = set()
    for message in messages:
        if message.external_id is None:
            continue
        if message.external_id in seen:
            cleaner.report.problem(
                f"{location}: message {message.seq}",
                f"external id {message.external_id!r} repeats an earlier message's; not kept",
                "fixed",
            )
            message.external_id = None
        else:
            seen.add(message.external_id)


def _message(
    cleaner: Cleaner,
    message: SourceMessage,
    conversation_uuid: UUID,
    seq: int,
    seen_ids: set[UUID],
) -> MessageRow | None:
    loc = message.location
    if message.content is None:
        cleaner.report.problem(loc, "no content", "skipped")
        return None
    role, source_role = cleaner.role(message.role, loc)
    content = cleaner.text(message.content, loc, "content") or ""
    if _missing(message.id):
        message_id = stable_id(f"#{seq}", str(conversation_uuid))
    else:
        message_id = stable_id(message.id, str(conversation_uuid))
        if message_id in seen_ids:
            cleaner.report.problem(
                loc,
                f"duplicate message id {message.id!r}; given an id derived from its place",
                "fixed",
            )
            message_id = stable_id(f"#{seq}", str(conversation_uuid))
    metadata: dict[str, Any] = cleaner.metadata(message.metadata, loc)
    if source_role is not None:
        metadata.setdefault(SOURCE_ROLE_KEY, source_role)
    topic = cleaner.text(message.topic, loc, "topic") or None
    return MessageRow(
        conversation_id=conversation_uuid,
        seq=seq,
        id=message_id,
        role=role,
        content=content,
        topic=topic,
        metadata=json_raw(metadata),
        # Filled in by the caller when the source has none.
        created_at=cleaner.timestamp(message.created_at, loc, "created_at"),  # type: ignore[arg-type]
        external_id=None if _missing(message.id) else cleaner.external_id(message.id, loc, "id"),
        tokens=ascii_tokens(content),
    )
