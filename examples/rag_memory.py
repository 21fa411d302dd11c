"""A RAG assistant's conversation memory (its in-process store's async API) on chatkeep.

Sessions are conversations tagged with the application's name in their metadata, so listing
and clearing touch this application's sessions only (and, with ``user_id``, one user's).
"""

from __future__ import annotations

from typing import Any

from msgspec import to_builtins

from chatkeep_client import AsyncChatkeep, NotFound


class ConversationMemory:
    def __init__(self, chatkeep: AsyncChatkeep, app: str, user_id: str | None = None) -> None:
        self.chatkeep, self.user_id = chatkeep, user_id
        self.scope = {"app": app}

    async def create_session(self, title: str | None = None) -> str:
        created = await self.chatkeep.conversations.create(
            title=title, user_id=self.user_id, metadata=self.scope
        )
        return str(created.id)

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        try:
            found = await self.chatkeep.conversations.get(session_id)
        except NotFound:
            return None
        session: dict[str, Any] = to_builtins(found)
        return session

    async def get_sessions(self, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        """The most recently active first. The service pages by cursor: an offset is walked."""
        wanted = offset + limit
        listing = self.chatkeep.conversations.iter(
            user_id=self.user_id, metadata=self.scope, page_size=min(wanted, 1000)
        )
        found: list[dict[str, Any]] = []
        async for conversation in listing:
            if len(found) == wanted:
                break
            found.append(to_builtins(conversation))
        return found[offset:]

    async def update_session_title(self, session_id: str, title: str) -> bool:
        try:
            await self.chatkeep.conversations.update(session_id, title=title)
        except NotFound:
            return False
        return True

    async def add_message(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any] | None = None
    ) -> str:
        message = {"role": role, "content": content, "metadata": metadata or {}}
        appended = await self.chatkeep.messages.append(session_id, [message])
        return str(appended.items[0].id)

    async def get_history(self, session_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The latest ``limit`` messages, oldest first ([] for an unknown session)."""
        try:
            page = await self.chatkeep.messages.list(session_id, limit=limit)
        except NotFound:
            return []
        return [to_builtins(message) for message in page.items]

    async def delete_session(self, session_id: str) -> bool:
        try:
            await self.chatkeep.conversations.delete(session_id)
        except NotFound:
            return False
        return True

    async def clear_all(self) -> int:
        """Delete this application's sessions (the user's, with ``user_id``); how many."""
        erased = await self.chatkeep.conversations.delete_many(
            user_id=self.user_id, metadata=self.scope
        )
        return erased.conversations
