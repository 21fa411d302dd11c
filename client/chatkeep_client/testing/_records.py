"""What the fake keeps: the caller of a request, and the stored conversations, messages, files,
prompts and accounts, with their views as the API shows them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from chatkeep_client import models
from chatkeep_client.testing import _inputs as inputs
from chatkeep_client.testing._problems import Problem


@dataclass(frozen=True)
class Caller:
    """Who is asking: an API key (sees everything), a user (token) or a visitor (session id)."""

    kind: Literal["key", "user", "visitor"]
    user_id: str | None = None
    visitor: str | None = None

    @property
    def trusted(self) -> bool:
        return self.kind == "key"

    def sees(self, conversation: StoredConversation) -> bool:
        return (
            self.trusted
            or (self.user_id is not None and conversation.user_id == self.user_id)
            or (self.visitor is not None and conversation.visitor == self.visitor)
        )

    def new_owner(self, requested: str | None) -> tuple[str | None, str | None]:
        """(user_id, visitor) of a conversation this caller creates."""
        if self.trusted:
            return requested, None
        if self.kind == "user":
            if requested not in (None, self.user_id):
                raise Problem(
                    403, "a user token creates conversations for its own user only", field="user_id"
                )
            return self.user_id, None
        if requested is not None:
            raise Problem(
                403, "an anonymous visitor cannot create a user's conversation", field="user_id"
            )
        return None, self.visitor

    def may_manage(self, user_id: str) -> bool:
        return self.trusted or (self.kind == "user" and self.user_id == user_id)


@dataclass
class StoredMessage:
    id: UUID
    seq: int
    role: str
    content: str
    topic: str | None
    metadata: dict[str, Any]
    created_at: datetime
    external_id: str | None

    def same_as(self, new: inputs.NewMessage) -> bool:
        return (self.role, self.content, self.topic, self.external_id, self.metadata) == (
            new.role,
            new.content,
            new.topic,
            new.external_id,
            new.metadata,
        )


@dataclass
class StoredFile:
    id: UUID
    filename: str
    content_type: str
    data: bytes
    created_at: datetime
    metadata: dict[str, Any]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class StoredConversation:
    id: UUID
    title: str | None
    user_id: str | None
    visitor: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    external_id: str | None
    version: int = 1
    last_seq: int = 0
    messages: dict[UUID, StoredMessage] = field(default_factory=dict)
    files: dict[UUID, StoredFile] = field(default_factory=dict)

    @property
    def owner(self) -> tuple[str | None, str | None]:
        return self.user_id, self.visitor


@dataclass
class StoredPrompt:
    versions: list[models.PromptVersion] = field(default_factory=list)
    retired: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Account:
    password: str
    user_id: str


def conversation_view(stored: StoredConversation) -> models.Conversation:
    return models.Conversation(
        id=stored.id,
        title=stored.title,
        user_id=stored.user_id,
        metadata=stored.metadata,
        message_count=len(stored.messages),
        created_at=stored.created_at,
        updated_at=stored.updated_at,
        external_id=stored.external_id,
        version=stored.version,
    )


def message_view(conversation: StoredConversation, stored: StoredMessage) -> models.Message:
    return models.Message(
        id=stored.id,
        conversation_id=conversation.id,
        seq=stored.seq,
        role=stored.role,
        content=stored.content,
        topic=stored.topic,
        metadata=stored.metadata,
        created_at=stored.created_at,
        external_id=stored.external_id,
    )


def file_view(conversation: StoredConversation, stored: StoredFile) -> models.FileInfo:
    return models.FileInfo(
        id=stored.id,
        conversation_id=conversation.id,
        filename=stored.filename,
        content_type=stored.content_type,
        size=len(stored.data),
        sha256=stored.sha256,
        created_at=stored.created_at,
        metadata=stored.metadata,
    )
