"""chatkeep's export format, version 1: newline-delimited JSON, one object per line, each with a
``type``. docs/EXPORT_FORMAT.md describes it for readers outside chatkeep.

    {"type": "header", "format": "chatkeep", "version": 1, "exported_at": ..., ...}
    {"type": "conversation", ...}      followed by its messages, in seq order
    {"type": "message", ...}
    {"type": "prompt_version", ...}    (full exports only)
    {"type": "end", "conversations": N, "messages": M, "prompt_versions": P}

Every value is as stored: ids, seq (with any gaps deletes left), last_seq, timestamps
(RFC 3339, microseconds), metadata, and the visitor hash (hex) of anonymous conversations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

FORMAT: Literal["chatkeep"] = "chatkeep"
VERSION = 1


class Header(msgspec.Struct, tag_field="type", tag="header", kw_only=True):
    format: Literal["chatkeep"]
    version: int
    exported_at: datetime
    # What the export was limited to, if anything.
    user_id: str | None = None
    conversation_id: UUID | None = None


class ConversationLine(msgspec.Struct, tag_field="type", tag="conversation", kw_only=True):
    id: UUID
    user_id: str | None
    # Hex SHA-256 of an anonymous visitor's session id; "owner" in the format, as published.
    visitor_hash: str | None = msgspec.field(name="owner")
    title: str | None
    metadata: msgspec.Raw
    message_count: int
    last_seq: int
    created_at: datetime
    updated_at: datetime


class MessageLine(msgspec.Struct, tag_field="type", tag="message", kw_only=True):
    conversation_id: UUID
    seq: int
    id: UUID
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    topic: str | None
    metadata: msgspec.Raw
    created_at: datetime


class PromptVersionLine(msgspec.Struct, tag_field="type", tag="prompt_version", kw_only=True):
    name: str
    version: int
    content: str
    metadata: msgspec.Raw
    created_at: datetime
    retired: bool


class End(msgspec.Struct, tag_field="type", tag="end", kw_only=True):
    conversations: int
    messages: int
    prompt_versions: int


Line = Header | ConversationLine | MessageLine | PromptVersionLine | End
decoder = msgspec.json.Decoder(Line)
encoder = msgspec.json.Encoder()
