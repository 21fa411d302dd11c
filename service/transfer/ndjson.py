"""chatkeep's export format, version 4: newline-delimited JSON, one object per line, each with a
``type``. docs/EXPORT_FORMAT.md describes it for readers outside chatkeep.

    {"type": "header", "format": "chatkeep", "version": 4, "exported_at": ..., ...}
    {"type": "conversation", ...}      followed by its messages, in seq order, then its files
    {"type": "message", ...}
    {"type": "file", ...}              followed by its bytes, one file_chunk line per stored chunk
    {"type": "file_chunk", "file_id": ..., "data": "<base64>"}
    {"type": "prompt_version", ...}    (full exports only)
    {"type": "end", "conversations": N, "messages": M, "prompt_versions": P, "files": F}

Version 3 is version 4 without the expiry of conversations and the token counts of messages
(read as none, and as the estimate). Version 2 is version 3 without external ids and versions
of conversations, external ids of messages and metadata of files (roles were the four core
ones); version 1 is version 2 without files (and without "files" in the end line). Readers
take all four: what an older version lacks is absent (no external id, version 1, file metadata
{}, no expiry, estimated tokens).

Every value is as stored: ids, seq (with any gaps deletes left), last_seq, timestamps
(RFC 3339, microseconds), metadata, and the visitor hash (hex) of anonymous conversations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

FORMAT: Literal["chatkeep"] = "chatkeep"
VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
EMPTY_OBJECT = msgspec.Raw(b"{}")


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
    # Since version 3.
    external_id: str | None = None
    version: Annotated[int, msgspec.Meta(ge=1)] = 1
    # Since version 4.
    expires_at: datetime | None = None


class MessageLine(msgspec.Struct, tag_field="type", tag="message", kw_only=True):
    conversation_id: UUID
    seq: int
    id: UUID
    # Any role name since version 3 (the importer cleans it as any source's).
    role: str
    content: str
    topic: str | None
    metadata: msgspec.Raw
    created_at: datetime
    # Since version 3.
    external_id: str | None = None
    # Since version 4; absent: the importer stores the estimate.
    tokens: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None


class PromptVersionLine(msgspec.Struct, tag_field="type", tag="prompt_version", kw_only=True):
    name: str
    version: int
    content: str
    metadata: msgspec.Raw
    created_at: datetime
    retired: bool


class FileLine(msgspec.Struct, tag_field="type", tag="file", kw_only=True):
    conversation_id: UUID
    id: UUID
    filename: str
    content_type: str
    # Size and hex SHA-256 of the bytes the file_chunk lines after it hold; the importer
    # checks both against them (values that cannot match fail that check).
    size: int
    sha256: str
    created_at: datetime
    # Since version 3; the importer takes a value that is not an object as {} (reported).
    metadata: msgspec.Raw = EMPTY_OBJECT


class FileChunkLine(msgspec.Struct, tag_field="type", tag="file_chunk", kw_only=True):
    file_id: UUID
    # Base64 in the line.
    data: bytes


class End(msgspec.Struct, tag_field="type", tag="end", kw_only=True):
    conversations: int
    messages: int
    prompt_versions: int
    # Version 1 has no files.
    files: int = 0


Line = Header | ConversationLine | MessageLine | FileLine | FileChunkLine | PromptVersionLine | End
decoder = msgspec.json.Decoder(Line)
encoder = msgspec.json.Encoder()
