"""A conversation repository (the repository pattern: create, get, list_all, update, delete)
on chatkeep, and its in-memory twin for unit tests: the same class over ``FakeChatkeep``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from chatkeep_client import Chatkeep, Conversation, NotFound, PreconditionFailed
from chatkeep_client.testing import FakeChatkeep


class StaleConversation(Exception):
    """Someone else changed the conversation since it was read."""


@dataclass(frozen=True)
class ConversationEntity:
    title: str
    owner: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    id: UUID | None = None  # None until created
    version: int = 0
    updated_at: datetime | None = None

    @classmethod
    def of(cls, stored: Conversation) -> ConversationEntity:
        return cls(
            stored.title or "",
            stored.user_id,
            stored.metadata,
            stored.id,
            stored.version,
            stored.updated_at,
        )


class ConversationRepository:
    def __init__(self, chatkeep: Chatkeep) -> None:
        self.chatkeep = chatkeep

    def create(self, entity: ConversationEntity) -> ConversationEntity:
        stored = self.chatkeep.conversations.create(
            id=entity.id, title=entity.title, user_id=entity.owner, metadata=entity.tags
        )
        return ConversationEntity.of(stored)

    def get(self, conversation_id: UUID) -> ConversationEntity | None:
        try:
            return ConversationEntity.of(self.chatkeep.conversations.get(conversation_id))
        except NotFound:
            return None

    def list_all(self, owner: str | None = None) -> list[ConversationEntity]:
        """Most recently updated first."""
        return [ConversationEntity.of(c) for c in self.chatkeep.conversations.iter(user_id=owner)]

    def update(self, entity: ConversationEntity) -> ConversationEntity:
        """Save the title and tags, unless the conversation changed since ``entity`` was read."""
        assert entity.id is not None, "create it first"
        try:
            stored = self.chatkeep.conversations.update(
                entity.id, title=entity.title, metadata=entity.tags, if_match=entity.version
            )
        except PreconditionFailed as stale:
            raise StaleConversation(str(entity.id)) from stale
        return ConversationEntity.of(stored)

    def delete(self, conversation_id: UUID) -> bool:
        try:
            self.chatkeep.conversations.delete(conversation_id)
        except NotFound:
            return False
        return True


def in_memory_repository() -> ConversationRepository:
    """The repository over an in-memory chatkeep: for the application's unit tests."""
    return ConversationRepository(FakeChatkeep())
