"""What the service sends and takes, as msgspec Structs (the server's schemas, read side).

Fields the service may add later are ignored when decoding, and fields an older service does
not send take their defaults, so a client keeps working across service versions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from msgspec import Struct

Metadata = dict[str, Any]


class Conversation(Struct, kw_only=True):
    id: UUID
    title: str | None = None
    user_id: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    message_count: int = 0
    created_at: datetime
    updated_at: datetime
    external_id: str | None = None
    # Moved by every write to the conversation or its messages: pass it as ``if_match=``.
    version: int = 0


class ConversationPage(Struct, kw_only=True):
    items: list[Conversation]
    # Pass as ``cursor=`` for the next page; None on the last.
    next_cursor: str | None = None


class Message(Struct, kw_only=True):
    id: UUID
    conversation_id: UUID
    seq: int
    role: str
    content: str
    topic: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)
    created_at: datetime
    external_id: str | None = None


class NewMessage(Struct, kw_only=True, omit_defaults=True):
    """A message to append; plain dicts with the same keys work too."""

    role: str
    content: str
    id: UUID | None = None
    external_id: str | None = None
    topic: str | None = None
    metadata: Metadata = msgspec.field(default_factory=dict)


class MessagePage(Struct, kw_only=True):
    items: list[Message]
    # The seq to pass as ``before=`` (or ``after=`` when paging forward); None on the last page.
    next_cursor: int | None = None


class Appended(Struct, kw_only=True):
    """What an append stored (one message per message sent, in order, retries included) and
    the conversation's version after it."""

    items: list[Message]
    version: int


class FileInfo(Struct, kw_only=True):
    id: UUID
    conversation_id: UUID
    filename: str
    content_type: str
    size: int
    # Hex SHA-256 of the content.
    sha256: str
    created_at: datetime
    metadata: Metadata = msgspec.field(default_factory=dict)


class FilePage(Struct, kw_only=True):
    items: list[FileInfo]
    next_cursor: str | None = None


class PromptVersion(Struct, kw_only=True):
    name: str
    version: int
    content: str
    metadata: Metadata = msgspec.field(default_factory=dict)
    created_at: datetime


class PromptVersionPage(Struct, kw_only=True):
    items: list[PromptVersion]
    next_cursor: int | None = None


class PromptSummary(Struct, kw_only=True):
    name: str
    latest_version: int
    created_at: datetime
    updated_at: datetime


class PromptPage(Struct, kw_only=True):
    items: list[PromptSummary]
    next_cursor: str | None = None


class Erased(Struct, kw_only=True):
    """What erasing a user removed."""

    conversations: int
    messages: int


class ConversationsErased(Struct, kw_only=True):
    """What a bulk delete removed."""

    conversations: int
    messages: int
    files: int


class AccessToken(Struct, kw_only=True):
    """A user token for an account: pass ``access_token`` as ``token=``."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    expires_in: int
    user_id: str
