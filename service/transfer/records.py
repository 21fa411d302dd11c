"""Rows as the loader writes them: one conversation with all its messages at a time.

Field order is the COPY column order (sql/transfer.sql names the columns).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class MessageRow(msgspec.Struct, array_like=True):
    conversation_id: UUID
    seq: int
    id: UUID
    role: str
    content: str
    topic: str | None
    # JSON text of an object, written to jsonb as it is.
    metadata: msgspec.Raw
    created_at: datetime


class ConversationRow(msgspec.Struct, array_like=True):
    id: UUID
    user_id: str | None
    # SHA-256 of an anonymous visitor's session id.
    owner: bytes | None
    title: str | None
    metadata: msgspec.Raw
    message_count: int
    last_seq: int
    created_at: datetime
    updated_at: datetime


class Conversation(msgspec.Struct):
    """A conversation read from a source, ready to load; ``location`` says where it came from
    (a file, a table row) for reports."""

    row: ConversationRow
    messages: list[MessageRow]
    location: str


CONVERSATION_COLUMNS = tuple(ConversationRow.__struct_fields__)
MESSAGE_COLUMNS = tuple(MessageRow.__struct_fields__)


def as_tuple(row: msgspec.Struct) -> tuple[object, ...]:
    return msgspec.structs.astuple(row)
